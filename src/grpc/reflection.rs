//! Server reflection (`grpc.reflection.v1`, also answered under the older
//! `v1alpha` name, whose wire format is the same) so `grpcurl` and other
//! tools can list the services and fetch their schemas without a `.proto`.
//!
//! The schemas come from [`crate::proto::FILE_DESCRIPTOR_SET`]. To stay
//! small, the descriptors are not decoded into full `prost-types` structs:
//! a thin view below reads only the names needed to find a symbol (package,
//! dependencies, messages, enums, services, methods) and the raw encoded
//! file is handed to the client as it is.

use bytes::Bytes;
use prost::Message;

use super::message;
use super::status::Status;
use crate::status::Code;

/// Types generated from `proto/grpc/reflection/v1/reflection.proto`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/grpc.reflection.v1.rs"));
}

use pb::server_reflection_request::MessageRequest;
use pb::server_reflection_response::MessageResponse;

/// The `v1alpha` name under which reflection is served too (same wire format).
pub const V1ALPHA_SERVICE: &str = "grpc.reflection.v1alpha.ServerReflection";

/// `google.protobuf.FileDescriptorSet`, each file kept encoded.
#[derive(Clone, PartialEq, Message)]
struct FileSet {
    #[prost(bytes = "bytes", repeated, tag = "1")]
    file: Vec<Bytes>,
}

/// The parts of `google.protobuf.FileDescriptorProto` needed to find symbols.
#[derive(Clone, PartialEq, Message)]
struct FileView {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    package: String,
    #[prost(string, repeated, tag = "3")]
    dependency: Vec<String>,
    #[prost(message, repeated, tag = "4")]
    message_type: Vec<MessageView>,
    #[prost(message, repeated, tag = "5")]
    enum_type: Vec<NamedView>,
    #[prost(message, repeated, tag = "6")]
    service: Vec<ServiceView>,
}

/// `DescriptorProto`: a message type and what it nests.
#[derive(Clone, PartialEq, Message)]
struct MessageView {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, repeated, tag = "3")]
    nested_type: Vec<MessageView>,
    #[prost(message, repeated, tag = "4")]
    enum_type: Vec<NamedView>,
}

/// Any descriptor whose field 1 is its name (enums, methods).
#[derive(Clone, PartialEq, Message)]
struct NamedView {
    #[prost(string, tag = "1")]
    name: String,
}

/// `ServiceDescriptorProto`.
#[derive(Clone, PartialEq, Message)]
struct ServiceView {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, repeated, tag = "2")]
    method: Vec<NamedView>,
}

/// One schema file: its view and its encoded bytes.
struct File {
    view: FileView,
    raw: Bytes,
}

/// Every served schema file.
fn files() -> Vec<File> {
    let set = FileSet::decode(crate::proto::FILE_DESCRIPTOR_SET).unwrap_or_default();
    set.file
        .into_iter()
        .filter_map(|raw| {
            let view = FileView::decode(raw.clone()).ok()?;
            Some(File { view, raw })
        })
        .collect()
}

/// `prefix.name`, or `name` at the top level.
fn qualify(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Whether `file` defines the fully-qualified `symbol`.
fn defines(file: &FileView, symbol: &str) -> bool {
    fn in_message(m: &MessageView, prefix: &str, symbol: &str) -> bool {
        let name = qualify(prefix, &m.name);
        name == symbol
            || m.enum_type
                .iter()
                .any(|e| qualify(&name, &e.name) == symbol)
            || m.nested_type.iter().any(|n| in_message(n, &name, symbol))
    }
    let pkg = file.package.as_str();
    file.message_type.iter().any(|m| in_message(m, pkg, symbol))
        || file
            .enum_type
            .iter()
            .any(|e| qualify(pkg, &e.name) == symbol)
        || file.service.iter().any(|s| {
            let name = qualify(pkg, &s.name);
            name == symbol || s.method.iter().any(|m| qualify(&name, &m.name) == symbol)
        })
}

/// The file at `index` followed by its transitive dependencies, each once.
fn with_dependencies(files: &[File], index: usize) -> Vec<Bytes> {
    let mut order = vec![index];
    let mut i = 0;
    while let Some(&at) = order.get(i) {
        if let Some(file) = files.get(at) {
            for dep in &file.view.dependency {
                if let Some(d) = files.iter().position(|f| &f.view.name == dep) {
                    if !order.contains(&d) {
                        order.push(d);
                    }
                }
            }
        }
        i += 1;
    }
    order
        .into_iter()
        .filter_map(|i| files.get(i).map(|f| f.raw.clone()))
        .collect()
}

/// Answers one reflection request.
fn answer(request: &pb::ServerReflectionRequest) -> MessageResponse {
    let files = files();
    let not_found = |what: String| {
        MessageResponse::ErrorResponse(pb::ErrorResponse {
            error_code: Code::NotFound.as_i32(),
            error_message: what,
        })
    };
    let found = |index: Option<usize>, what: String| match index {
        Some(i) => MessageResponse::FileDescriptorResponse(pb::FileDescriptorResponse {
            file_descriptor_proto: with_dependencies(&files, i)
                .into_iter()
                .map(Vec::from)
                .collect(),
        }),
        None => not_found(what),
    };
    match &request.message_request {
        Some(MessageRequest::ListServices(_)) => {
            let mut service: Vec<pb::ServiceResponse> = files
                .iter()
                .flat_map(|f| {
                    f.view.service.iter().map(|s| pb::ServiceResponse {
                        name: qualify(&f.view.package, &s.name),
                    })
                })
                .collect();
            // The same service is also served under its older name (see the module doc).
            service.push(pb::ServiceResponse {
                name: V1ALPHA_SERVICE.into(),
            });
            MessageResponse::ListServicesResponse(pb::ListServiceResponse { service })
        }
        Some(MessageRequest::FileByFilename(name)) => found(
            files.iter().position(|f| &f.view.name == name),
            format!("file not found: {name}"),
        ),
        Some(MessageRequest::FileContainingSymbol(symbol)) => found(
            files.iter().position(|f| defines(&f.view, symbol)),
            format!("symbol not found: {symbol}"),
        ),
        // No served schema declares extensions.
        Some(MessageRequest::FileContainingExtension(ext)) => {
            not_found(format!("extension not found: {}", ext.containing_type))
        }
        Some(MessageRequest::AllExtensionNumbersOfType(name)) => {
            if files.iter().any(|f| defines(&f.view, name)) {
                MessageResponse::AllExtensionNumbersResponse(pb::ExtensionNumberResponse {
                    base_type_name: name.clone(),
                    extension_number: Vec::new(),
                })
            } else {
                not_found(format!("type not found: {name}"))
            }
        }
        None => MessageResponse::ErrorResponse(pb::ErrorResponse {
            error_code: Code::InvalidArgument.as_i32(),
            error_message: "empty reflection request".into(),
        }),
    }
}

/// One message of `ServerReflectionInfo`: decodes the request and returns
/// the framed response.
pub fn reflect(request: Bytes) -> Result<Bytes, Status> {
    let request = pb::ServerReflectionRequest::decode(&request[..])
        .map_err(|e| Status::new(crate::service::DECODE_ERROR, e.to_string()))?;
    let response = pb::ServerReflectionResponse {
        valid_host: request.host.clone(),
        message_response: Some(answer(&request)),
        original_request: Some(request),
    };
    Ok(message::encode(&response))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(req: MessageRequest) -> MessageResponse {
        let request = pb::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(req.clone()),
        };
        let mut d = message::Decoder::new(1 << 20);
        d.push(reflect(Bytes::from(request.encode_to_vec())).unwrap());
        let r = pb::ServerReflectionResponse::decode(d.next_message().unwrap().unwrap()).unwrap();
        assert_eq!(r.original_request.unwrap().message_request, Some(req));
        r.message_response.unwrap()
    }

    fn file_names(r: MessageResponse) -> Vec<String> {
        let MessageResponse::FileDescriptorResponse(f) = r else {
            panic!("expected files, got {r:?}");
        };
        f.file_descriptor_proto
            .into_iter()
            .map(|raw| FileView::decode(raw.as_slice()).unwrap().name)
            .collect()
    }

    #[test]
    fn lists_every_service() {
        let MessageResponse::ListServicesResponse(l) =
            ask(MessageRequest::ListServices(String::new()))
        else {
            panic!("expected a service list");
        };
        let mut names: Vec<_> = l.service.into_iter().map(|s| s.name).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "echo.Echo",
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection"
            ]
        );
    }

    #[test]
    fn finds_files_by_symbol_and_name() {
        for symbol in [
            "echo.Echo",
            "echo.Echo.Reply",
            "echo.EchoRequest",
            "echo.EchoReply",
        ] {
            assert_eq!(
                file_names(ask(MessageRequest::FileContainingSymbol(symbol.into()))),
                ["echo.proto"]
            );
        }
        assert_eq!(
            file_names(ask(MessageRequest::FileContainingSymbol(
                "grpc.health.v1.HealthCheckResponse.ServingStatus".into()
            ))),
            ["grpc/health/v1/health.proto"]
        );
        assert_eq!(
            file_names(ask(MessageRequest::FileByFilename("echo.proto".into()))),
            ["echo.proto"]
        );
    }

    #[test]
    fn unknown_names_are_not_found() {
        for req in [
            MessageRequest::FileContainingSymbol("echo.Nope".into()),
            MessageRequest::FileContainingSymbol("echo".into()),
            MessageRequest::FileByFilename("nope.proto".into()),
        ] {
            let MessageResponse::ErrorResponse(e) = ask(req) else {
                panic!("expected an error response");
            };
            assert_eq!(e.error_code, Code::NotFound.as_i32());
        }
    }

    #[test]
    fn undecodable_request_is_decode_error() {
        assert_eq!(
            reflect(Bytes::from_static(&[0x1A, 0x05])).unwrap_err().code,
            crate::service::DECODE_ERROR
        );
    }
}
