//! gRPC server reflection (`grpc.reflection.v1` and `v1alpha`), so stock
//! tools (`grpcurl -plaintext HOST:50051 list`, `describe`) work.
//!
//! tonic-reflection's own service decodes every descriptor into the full
//! `prost-types` model at startup; that decoder alone costs about 90 KB of
//! binary. Reflection only needs names and the encoded files, so [`Index`]
//! reads just the fields it needs (file name, package, message, enum and
//! service names) with a few small prost structs, and answers with the
//! files' original bytes. tonic-reflection still supplies the generated
//! message types and service stubs.

use std::pin::Pin;
use std::sync::Arc;

use prost::Message;
use tonic::codegen::tokio_stream::{Stream, StreamExt};

/// `FileDescriptorSet`, keeping each file encoded.
#[derive(Clone, PartialEq, Message)]
struct FileSet {
    #[prost(bytes = "vec", repeated, tag = "1")]
    file: Vec<Vec<u8>>,
}

/// The parts of `FileDescriptorProto` that define symbols.
#[derive(Clone, PartialEq, Message)]
struct FileDesc {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    package: String,
    #[prost(message, repeated, tag = "4")]
    message_type: Vec<MessageDesc>,
    #[prost(message, repeated, tag = "5")]
    enum_type: Vec<Named>,
    #[prost(message, repeated, tag = "6")]
    service: Vec<ServiceDesc>,
}

/// `DescriptorProto`: a message, with its nested messages and enums.
#[derive(Clone, PartialEq, Message)]
struct MessageDesc {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, repeated, tag = "3")]
    nested_type: Vec<MessageDesc>,
    #[prost(message, repeated, tag = "4")]
    enum_type: Vec<Named>,
}

/// `ServiceDescriptorProto`: a service and its methods.
#[derive(Clone, PartialEq, Message)]
struct ServiceDesc {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, repeated, tag = "2")]
    method: Vec<Named>,
}

/// Any descriptor of which only the name (field 1) matters here.
#[derive(Clone, PartialEq, Message)]
struct Named {
    #[prost(string, tag = "1")]
    name: String,
}

/// What reflection answers from: every file, every fully-qualified symbol,
/// and the service names.
#[derive(Debug, Default)]
pub struct Index {
    /// (file name, encoded `FileDescriptorProto`).
    files: Vec<(String, Vec<u8>)>,
    /// (fully-qualified symbol, index into `files`).
    symbols: Vec<(String, usize)>,
    /// Fully-qualified service names, in registration order.
    services: Vec<String>,
}

impl Index {
    /// Indexes encoded `FileDescriptorSet`s; a file already seen (by name)
    /// is skipped.
    pub fn new(sets: &[&[u8]]) -> Result<Index, prost::DecodeError> {
        let mut index = Index::default();
        for set in sets {
            for bytes in FileSet::decode(*set)?.file {
                let file = FileDesc::decode(bytes.as_slice())?;
                if index.files.iter().any(|(name, _)| *name == file.name) {
                    continue;
                }
                let at = index.files.len();
                let scope = file.package.as_str();
                for service in &file.service {
                    let name = qualify(scope, &service.name);
                    for method in &service.method {
                        index.symbols.push((qualify(&name, &method.name), at));
                    }
                    index.symbols.push((name.clone(), at));
                    // A service can come in two sets (ours and tonic-reflection's
                    // copy of reflection.proto); list it once.
                    if !index.services.contains(&name) {
                        index.services.push(name);
                    }
                }
                for message in &file.message_type {
                    index.add_message(scope, message, at);
                }
                for e in &file.enum_type {
                    index.symbols.push((qualify(scope, &e.name), at));
                }
                index.files.push((file.name, bytes));
            }
        }
        Ok(index)
    }

    fn add_message(&mut self, scope: &str, message: &MessageDesc, at: usize) {
        let name = qualify(scope, &message.name);
        for nested in &message.nested_type {
            self.add_message(&name, nested, at);
        }
        for e in &message.enum_type {
            self.symbols.push((qualify(&name, &e.name), at));
        }
        self.symbols.push((name, at));
    }

    /// The encoded file called `name`.
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, bytes)| bytes.as_slice())
    }

    /// The encoded file defining `symbol` (a service, method, message or enum).
    pub fn file_containing(&self, symbol: &str) -> Option<&[u8]> {
        let symbol = symbol.strip_prefix('.').unwrap_or(symbol);
        let (_, at) = self.symbols.iter().find(|(s, _)| s == symbol)?;
        self.files.get(*at).map(|(_, bytes)| bytes.as_slice())
    }

    /// Whether `symbol` names a message type.
    fn is_symbol(&self, symbol: &str) -> bool {
        self.file_containing(symbol).is_some()
    }

    /// Every service, fully qualified.
    pub fn services(&self) -> &[String] {
        &self.services
    }
}

/// `scope.name`, or `name` at the top level.
fn qualify(scope: &str, name: &str) -> String {
    if scope.is_empty() {
        name.to_owned()
    } else {
        format!("{scope}.{name}")
    }
}

/// gRPC status NOT_FOUND, as reflection's `ErrorResponse` carries it.
const NOT_FOUND: i32 = crate::status::Code::NotFound as i32;

/// Implements one version of the reflection service over an [`Index`]; v1
/// and v1alpha have identical messages in different packages.
macro_rules! reflection_version {
    ($service:ident, $pb:ident) => {
        /// Server reflection over an [`Index`], this protocol version.
        #[derive(Clone, Debug)]
        pub struct $service(pub Arc<Index>);

        #[tonic::async_trait]
        impl tonic_reflection::pb::$pb::server_reflection_server::ServerReflection for $service {
            type ServerReflectionInfoStream = Pin<
                Box<
                    dyn Stream<
                            Item = Result<
                                tonic_reflection::pb::$pb::ServerReflectionResponse,
                                tonic::Status,
                            >,
                        > + Send,
                >,
            >;

            async fn server_reflection_info(
                &self,
                request: tonic::Request<
                    tonic::Streaming<tonic_reflection::pb::$pb::ServerReflectionRequest>,
                >,
            ) -> Result<tonic::Response<Self::ServerReflectionInfoStream>, tonic::Status> {
                let index = Arc::clone(&self.0);
                let answers = request
                    .into_inner()
                    .map(move |request| request.map(|request| $pb::answer(&index, request)));
                Ok(tonic::Response::new(Box::pin(answers)))
            }
        }

        mod $pb {
            use super::{Index, NOT_FOUND};
            use tonic_reflection::pb::$pb::server_reflection_request::MessageRequest;
            use tonic_reflection::pb::$pb::server_reflection_response::MessageResponse;
            use tonic_reflection::pb::$pb::{
                ErrorResponse, ExtensionNumberResponse, FileDescriptorResponse,
                ListServiceResponse, ServerReflectionRequest, ServerReflectionResponse,
                ServiceResponse,
            };

            /// The response to one reflection request.
            pub(super) fn answer(
                index: &Index,
                request: ServerReflectionRequest,
            ) -> ServerReflectionResponse {
                let file = |found: Option<&[u8]>, what: &str| match found {
                    Some(bytes) => {
                        MessageResponse::FileDescriptorResponse(FileDescriptorResponse {
                            file_descriptor_proto: vec![bytes.to_vec()],
                        })
                    }
                    None => not_found(what),
                };
                let response = match &request.message_request {
                    Some(MessageRequest::FileByFilename(name)) => {
                        file(index.file(name), &format!("file '{name}'"))
                    }
                    Some(MessageRequest::FileContainingSymbol(symbol)) => {
                        file(index.file_containing(symbol), &format!("symbol '{symbol}'"))
                    }
                    Some(MessageRequest::FileContainingExtension(_)) => {
                        not_found("extension (none are defined)")
                    }
                    // grpcurl asks this while describing; an empty list, not an error.
                    Some(MessageRequest::AllExtensionNumbersOfType(name))
                        if index.is_symbol(name) =>
                    {
                        MessageResponse::AllExtensionNumbersResponse(ExtensionNumberResponse {
                            base_type_name: name.clone(),
                            extension_number: Vec::new(),
                        })
                    }
                    Some(MessageRequest::AllExtensionNumbersOfType(name)) => {
                        not_found(&format!("type '{name}'"))
                    }
                    Some(MessageRequest::ListServices(_)) => {
                        MessageResponse::ListServicesResponse(ListServiceResponse {
                            service: index
                                .services()
                                .iter()
                                .map(|name| ServiceResponse { name: name.clone() })
                                .collect(),
                        })
                    }
                    None => MessageResponse::ErrorResponse(ErrorResponse {
                        error_code: crate::status::Code::InvalidArgument as i32,
                        error_message: "empty reflection request".into(),
                    }),
                };
                ServerReflectionResponse {
                    valid_host: request.host.clone(),
                    original_request: Some(request),
                    message_response: Some(response),
                }
            }

            fn not_found(what: &str) -> MessageResponse {
                MessageResponse::ErrorResponse(ErrorResponse {
                    error_code: NOT_FOUND,
                    error_message: format!("{what} not found"),
                })
            }
        }
    };
}

reflection_version!(ReflectionV1, v1);
reflection_version!(ReflectionV1Alpha, v1alpha);

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    fn index() -> Index {
        Index::new(&[
            crate::proto::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        ])
        .expect("descriptor sets decode")
    }

    fn ask(request: MessageRequest) -> MessageResponse {
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(request),
        };
        v1::answer(&index(), request)
            .message_response
            .expect("a response")
    }

    /// The `name` field of an encoded FileDescriptorProto.
    fn file_name(bytes: &[u8]) -> String {
        FileDesc::decode(bytes).expect("file decodes").name
    }

    fn answered_file(response: MessageResponse) -> String {
        match response {
            MessageResponse::FileDescriptorResponse(r) => {
                assert_eq!(r.file_descriptor_proto.len(), 1);
                file_name(&r.file_descriptor_proto[0])
            }
            other => panic!("expected a file, got {other:?}"),
        }
    }

    #[test]
    fn lists_served_services() {
        let MessageResponse::ListServicesResponse(list) =
            ask(MessageRequest::ListServices(String::new()))
        else {
            panic!("expected a service list");
        };
        let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "echo.Echo",
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection"
            ]
        );
    }

    #[test]
    fn finds_files_by_symbol_and_name() {
        for symbol in [
            "echo.Echo",
            "echo.Echo.Reply",
            "echo.EchoRequest",
            ".echo.EchoReply",
        ] {
            let answer = ask(MessageRequest::FileContainingSymbol(symbol.into()));
            assert_eq!(answered_file(answer), "echo.proto", "{symbol}");
        }
        // A nested enum: HealthCheckResponse.ServingStatus.
        let nested = "grpc.health.v1.HealthCheckResponse.ServingStatus";
        let answer = ask(MessageRequest::FileContainingSymbol(nested.into()));
        assert_eq!(answered_file(answer), "grpc/health/v1/health.proto");
        let answer = ask(MessageRequest::FileByFilename("echo.proto".into()));
        assert_eq!(answered_file(answer), "echo.proto");
    }

    #[test]
    fn unknown_names_are_not_found() {
        for request in [
            MessageRequest::FileContainingSymbol("echo.Nope".into()),
            MessageRequest::FileByFilename("nope.proto".into()),
            MessageRequest::AllExtensionNumbersOfType("echo.Nope".into()),
        ] {
            match ask(request) {
                MessageResponse::ErrorResponse(e) => assert_eq!(e.error_code, NOT_FOUND),
                other => panic!("expected NOT_FOUND, got {other:?}"),
            }
        }
    }

    #[test]
    fn known_types_have_no_extensions() {
        let answer = ask(MessageRequest::AllExtensionNumbersOfType(
            "echo.EchoRequest".into(),
        ));
        let MessageResponse::AllExtensionNumbersResponse(r) = answer else {
            panic!("expected an extension list");
        };
        assert_eq!(r.base_type_name, "echo.EchoRequest");
        assert!(r.extension_number.is_empty());
    }

    #[test]
    fn files_are_not_duplicated() {
        let twice = Index::new(&[
            crate::proto::FILE_DESCRIPTOR_SET,
            crate::proto::FILE_DESCRIPTOR_SET,
        ])
        .expect("decodes");
        assert_eq!(twice.files.len(), index().files.len() - 1);
    }
}
