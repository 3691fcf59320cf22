//! gRPC server reflection (`grpc.reflection.v1`, and the older `v1alpha`
//! whose messages are the same on the wire), so `grpcurl` and other tools can
//! list the services and fetch their schemas without a `.proto`. The one
//! implementation, used by both flavours; sans-IO: request bytes in,
//! response out.
//!
//! [`Reflection`] is built once from the encoded descriptor set
//! ([`crate::proto::FILE_DESCRIPTOR_SET`]) and the names of the services the
//! server registered: it lists exactly those, and refuses to start for a
//! registered service the descriptor set does not describe. To stay small,
//! the descriptors are not decoded into full `prost-types` structs: thin
//! views read only the names needed to find a symbol, and each file goes to
//! the client as the bytes it was compiled to, followed by the files it
//! depends on.

use std::fmt;

use prost::Message;

use crate::status::Code;

/// Types generated from `proto/grpc/reflection/v1/reflection.proto`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/grpc.reflection.v1.rs"));
}

use pb::server_reflection_request::MessageRequest;
use pb::server_reflection_response::MessageResponse;

/// Fully-qualified name of reflection v1.
pub const V1: &str = "grpc.reflection.v1.ServerReflection";
/// Fully-qualified name of reflection v1alpha.
pub const V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";
/// The one method of both versions.
pub const METHOD: &str = "ServerReflectionInfo";

/// `google.protobuf.FileDescriptorSet`, each file kept encoded.
#[derive(Clone, PartialEq, Message)]
struct FileSet {
    #[prost(bytes = "vec", repeated, tag = "1")]
    file: Vec<Vec<u8>>,
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

/// Why a [`Reflection`] could not be built.
#[derive(Debug)]
pub enum BuildError {
    /// The descriptor set (or a file in it) is not valid protobuf.
    Decode(prost::DecodeError),
    /// A registered service is not described by the descriptor set.
    Undescribed(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Decode(e) => write!(f, "descriptor set does not decode: {e}"),
            BuildError::Undescribed(name) => {
                write!(f, "service {name} is served but not in the descriptor set")
            }
        }
    }
}

impl std::error::Error for BuildError {}

/// What reflection answers from: every schema file, every fully-qualified
/// symbol, and the served services.
#[derive(Debug)]
pub struct Reflection {
    /// (file name, its dependencies, encoded `FileDescriptorProto`).
    files: Vec<(String, Vec<String>, Vec<u8>)>,
    /// (fully-qualified symbol, index into `files`).
    symbols: Vec<(String, usize)>,
    /// The served services, fully qualified, in registration order.
    services: Vec<String>,
}

impl Reflection {
    /// Indexes an encoded `FileDescriptorSet` for the `services` the server
    /// registered (fully-qualified names; listed in this order, each once).
    /// Fails if the set does not decode or does not describe a service.
    pub fn new<S: Into<String>>(
        descriptor_set: &[u8],
        services: impl IntoIterator<Item = S>,
    ) -> Result<Reflection, BuildError> {
        let mut index = Reflection {
            files: Vec::new(),
            symbols: Vec::new(),
            services: Vec::new(),
        };
        for raw in FileSet::decode(descriptor_set)
            .map_err(BuildError::Decode)?
            .file
        {
            let file = FileView::decode(raw.as_slice()).map_err(BuildError::Decode)?;
            if index.files.iter().any(|(name, _, _)| *name == file.name) {
                continue;
            }
            let at = index.files.len();
            index.add_file(&file, at);
            index.files.push((file.name, file.dependency, raw));
        }
        for service in services {
            let service = service.into();
            if index.services.contains(&service) {
                continue;
            }
            if index.file_index(&service).is_none() {
                return Err(BuildError::Undescribed(service));
            }
            index.services.push(service);
        }
        Ok(index)
    }

    fn add_file(&mut self, file: &FileView, at: usize) {
        let scope = file.package.as_str();
        for service in &file.service {
            let name = qualify(scope, &service.name);
            for method in &service.method {
                self.symbols.push((qualify(&name, &method.name), at));
            }
            self.symbols.push((name, at));
        }
        for message in &file.message_type {
            self.add_message(scope, message, at);
        }
        for e in &file.enum_type {
            self.symbols.push((qualify(scope, &e.name), at));
        }
    }

    fn add_message(&mut self, scope: &str, message: &MessageView, at: usize) {
        let name = qualify(scope, &message.name);
        for nested in &message.nested_type {
            self.add_message(&name, nested, at);
        }
        for e in &message.enum_type {
            self.symbols.push((qualify(&name, &e.name), at));
        }
        self.symbols.push((name, at));
    }

    /// The served services, fully qualified.
    pub fn services(&self) -> &[String] {
        &self.services
    }

    /// Index of the file defining `symbol` (a leading `.` is allowed).
    fn file_index(&self, symbol: &str) -> Option<usize> {
        let symbol = symbol.strip_prefix('.').unwrap_or(symbol);
        self.symbols
            .iter()
            .find(|(s, _)| s == symbol)
            .map(|(_, at)| *at)
    }

    /// The file at `at` followed by its transitive dependencies, each once.
    fn with_dependencies(&self, at: usize) -> Vec<Vec<u8>> {
        let mut order = vec![at];
        let mut i = 0;
        while let Some(&next) = order.get(i) {
            if let Some((_, deps, _)) = self.files.get(next) {
                for dep in deps {
                    let found = self.files.iter().position(|(name, _, _)| name == dep);
                    if let Some(d) = found.filter(|d| !order.contains(d)) {
                        order.push(d);
                    }
                }
            }
            i += 1;
        }
        order
            .into_iter()
            .filter_map(|i| self.files.get(i).map(|(_, _, raw)| raw.clone()))
            .collect()
    }

    /// Answers one decoded request.
    pub fn respond(&self, request: pb::ServerReflectionRequest) -> pb::ServerReflectionResponse {
        let response = match &request.message_request {
            Some(MessageRequest::ListServices(_)) => {
                MessageResponse::ListServicesResponse(pb::ListServiceResponse {
                    service: self
                        .services
                        .iter()
                        .map(|name| pb::ServiceResponse { name: name.clone() })
                        .collect(),
                })
            }
            Some(MessageRequest::FileByFilename(name)) => self
                .file_response(self.files.iter().position(|(n, _, _)| n == name), || {
                    format!("file not found: {name}")
                }),
            Some(MessageRequest::FileContainingSymbol(symbol)) => self
                .file_response(self.file_index(symbol), || {
                    format!("symbol not found: {symbol}")
                }),
            // No served schema declares extensions.
            Some(MessageRequest::FileContainingExtension(ext)) => error(
                Code::NotFound,
                format!(
                    "extension {} of {} not found",
                    ext.extension_number, ext.containing_type
                ),
            ),
            // grpcurl asks this while describing: an empty list, not an error.
            Some(MessageRequest::AllExtensionNumbersOfType(name)) => {
                if self.file_index(name).is_some() {
                    MessageResponse::AllExtensionNumbersResponse(pb::ExtensionNumberResponse {
                        base_type_name: name.clone(),
                        extension_number: Vec::new(),
                    })
                } else {
                    error(Code::NotFound, format!("type not found: {name}"))
                }
            }
            None => error(Code::InvalidArgument, "empty reflection request".into()),
        };
        pb::ServerReflectionResponse {
            valid_host: request.host.clone(),
            message_response: Some(response),
            original_request: Some(request),
        }
    }

    fn file_response(&self, at: Option<usize>, what: impl FnOnce() -> String) -> MessageResponse {
        match at {
            Some(at) => MessageResponse::FileDescriptorResponse(pb::FileDescriptorResponse {
                file_descriptor_proto: self.with_dependencies(at),
            }),
            None => error(Code::NotFound, what()),
        }
    }

    /// Answers one encoded `ServerReflectionRequest` (v1 or v1alpha) with an
    /// encoded `ServerReflectionResponse`, or the status that ends the call
    /// for a request that does not decode.
    pub fn answer(&self, request: &[u8]) -> Result<Vec<u8>, (Code, String)> {
        let request = pb::ServerReflectionRequest::decode(request)
            .map_err(|e| (crate::service::DECODE_ERROR, e.to_string()))?;
        Ok(self.respond(request).encode_to_vec())
    }
}

/// An `ErrorResponse` (the stream goes on; only this request failed).
fn error(code: Code, message: String) -> MessageResponse {
    MessageResponse::ErrorResponse(pb::ErrorResponse {
        error_code: code.as_i32(),
        error_message: message,
    })
}

/// `prefix.name`, or `name` at the top level.
fn qualify(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// The services the runtime-free flavour serves (its dispatch is
/// `grpc::services`), for [`reflect`].
#[cfg(feature = "runtime-free")]
const RUNTIME_FREE_SERVICES: [&str; 4] = [
    crate::proto::ECHO_SERVICE,
    crate::proto::HEALTH_SERVICE,
    V1,
    V1ALPHA,
];

/// One message of `ServerReflectionInfo` in the runtime-free flavour:
/// decodes the request and returns the framed response. The index is built
/// on first use and kept.
#[cfg(feature = "runtime-free")]
pub fn reflect(request: bytes::Bytes) -> Result<bytes::Bytes, super::status::Status> {
    use std::sync::OnceLock;
    static INDEX: OnceLock<Result<Reflection, String>> = OnceLock::new();
    let index = INDEX
        .get_or_init(|| {
            Reflection::new(crate::proto::FILE_DESCRIPTOR_SET, RUNTIME_FREE_SERVICES)
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| super::status::Status::new(Code::Internal, e.clone()))?;
    let request = pb::ServerReflectionRequest::decode(&request[..])
        .map_err(|e| super::status::Status::new(crate::service::DECODE_ERROR, e.to_string()))?;
    Ok(super::message::encode(&index.respond(request)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVED: [&str; 4] = [
        crate::proto::ECHO_SERVICE,
        crate::proto::HEALTH_SERVICE,
        V1,
        V1ALPHA,
    ];

    fn index() -> Reflection {
        Reflection::new(crate::proto::FILE_DESCRIPTOR_SET, SERVED).expect("builds")
    }

    fn ask(req: MessageRequest) -> MessageResponse {
        let request = pb::ServerReflectionRequest {
            host: "h".into(),
            message_request: Some(req.clone()),
        };
        let bytes = index().answer(&request.encode_to_vec()).expect("decodes");
        let r = pb::ServerReflectionResponse::decode(bytes.as_slice()).expect("response decodes");
        assert_eq!(r.valid_host, "h");
        assert_eq!(
            r.original_request.expect("echoed").message_request,
            Some(req)
        );
        r.message_response.expect("a response")
    }

    fn file_names(r: MessageResponse) -> Vec<String> {
        let MessageResponse::FileDescriptorResponse(f) = r else {
            panic!("expected files, got {r:?}");
        };
        f.file_descriptor_proto
            .into_iter()
            .map(|raw| FileView::decode(raw.as_slice()).expect("file").name)
            .collect()
    }

    #[test]
    fn lists_exactly_the_served_services_in_order() {
        let MessageResponse::ListServicesResponse(l) =
            ask(MessageRequest::ListServices(String::new()))
        else {
            panic!("expected a service list");
        };
        let names: Vec<_> = l.service.into_iter().map(|s| s.name).collect();
        assert_eq!(names, SERVED);
    }

    #[test]
    fn refuses_a_service_it_cannot_describe() {
        let built = Reflection::new(crate::proto::FILE_DESCRIPTOR_SET, ["echo.Nope"]);
        assert!(matches!(built, Err(BuildError::Undescribed(ref s)) if s == "echo.Nope"));
        assert!(matches!(
            Reflection::new(&[0x0a, 0x05], SERVED),
            Err(BuildError::Decode(_))
        ));
        let twice = Reflection::new(crate::proto::FILE_DESCRIPTOR_SET, [V1, V1]).expect("ok");
        assert_eq!(twice.services(), [V1]);
    }

    #[test]
    fn finds_files_by_symbol_and_name() {
        for symbol in [
            "echo.Echo",
            "echo.Echo.Reply",
            "echo.Echo.ReplyMany",
            "echo.EchoRequest",
            ".echo.EchoReply",
        ] {
            assert_eq!(
                file_names(ask(MessageRequest::FileContainingSymbol(symbol.into()))),
                ["echo.proto"],
                "{symbol}"
            );
        }
        assert_eq!(
            file_names(ask(MessageRequest::FileContainingSymbol(
                "grpc.health.v1.HealthCheckResponse.ServingStatus".into()
            ))),
            ["grpc/health/v1/health.proto"]
        );
        assert_eq!(
            file_names(ask(MessageRequest::FileContainingSymbol(V1ALPHA.into()))),
            ["grpc/reflection/v1alpha/reflection.proto"]
        );
        assert_eq!(
            file_names(ask(MessageRequest::FileByFilename("echo.proto".into()))),
            ["echo.proto"]
        );
    }

    #[cfg(feature = "interop")]
    #[test]
    fn a_file_comes_with_its_dependencies() {
        let index = Reflection::new(
            crate::proto::FILE_DESCRIPTOR_SET,
            [crate::service::interop::SERVICE],
        )
        .expect("TestService is described");
        let request = pb::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "grpc.testing.TestService.UnaryCall".into(),
            )),
        };
        let mut names = file_names(index.respond(request).message_response.expect("answer"));
        assert_eq!(names.remove(0), "src/proto/grpc/testing/test.proto");
        names.sort();
        assert_eq!(
            names,
            [
                "src/proto/grpc/testing/empty.proto",
                "src/proto/grpc/testing/messages.proto"
            ]
        );
    }

    #[test]
    fn unknown_names_are_not_found() {
        for req in [
            MessageRequest::FileContainingSymbol("echo.Nope".into()),
            MessageRequest::FileContainingSymbol("echo".into()),
            MessageRequest::FileByFilename("nope.proto".into()),
            MessageRequest::AllExtensionNumbersOfType("echo.Nope".into()),
            MessageRequest::FileContainingExtension(pb::ExtensionRequest {
                containing_type: "echo.EchoRequest".into(),
                extension_number: 100,
            }),
        ] {
            let MessageResponse::ErrorResponse(e) = ask(req) else {
                panic!("expected an error response");
            };
            assert_eq!(e.error_code, Code::NotFound.as_i32());
        }
    }

    #[test]
    fn known_types_have_no_extensions() {
        let MessageResponse::AllExtensionNumbersResponse(r) = ask(
            MessageRequest::AllExtensionNumbersOfType("echo.EchoRequest".into()),
        ) else {
            panic!("expected an extension list");
        };
        assert_eq!(r.base_type_name, "echo.EchoRequest");
        assert!(r.extension_number.is_empty());
    }

    #[test]
    fn undecodable_request_is_decode_error() {
        assert_eq!(
            index().answer(&[0x1A, 0x05]).map_err(|e| e.0),
            Err(crate::service::DECODE_ERROR)
        );
    }
}
