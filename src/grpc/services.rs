//! The served methods, as pure functions from request message bytes to
//! reply message bytes (already length-prefixed) or a [`Status`].
//!
//! The session does the HTTP/2 and streaming part; everything here can be
//! tested without a connection. The Echo behaviour itself and the status for
//! each bad input come from [`crate::service`], shared with the tokio build.

use bytes::Bytes;
use prost::Message;

use super::message;
use super::status::Status;
use crate::proto::echo::EchoRequest;
use crate::proto::health::health_check_response::ServingStatus;
use crate::proto::health::{HealthCheckRequest, HealthCheckResponse};
use crate::proto::{ECHO_SERVICE, HEALTH_SERVICE};
use crate::status::Code;

/// A method this server serves, found from the request's `:path`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `echo.Echo/Reply` (unary).
    EchoReply,
    /// `grpc.health.v1.Health/Check` (unary).
    HealthCheck,
    /// `grpc.health.v1.Health/Watch` (server streaming).
    HealthWatch,
    /// `grpc.reflection.v1[alpha].ServerReflection/ServerReflectionInfo`
    /// (bidirectional streaming; cargo feature `reflection`).
    #[cfg(feature = "reflection")]
    Reflection,
}

impl Method {
    /// The method for a `:path`, or `None` (→ UNIMPLEMENTED).
    pub fn route(path: &[u8]) -> Option<Method> {
        let (service, method) = std::str::from_utf8(path)
            .ok()?
            .strip_prefix('/')?
            .split_once('/')?;
        match (service, method) {
            (ECHO_SERVICE, "Reply") => Some(Method::EchoReply),
            (HEALTH_SERVICE, "Check") => Some(Method::HealthCheck),
            (HEALTH_SERVICE, "Watch") => Some(Method::HealthWatch),
            #[cfg(feature = "reflection")]
            (
                "grpc.reflection.v1.ServerReflection" | "grpc.reflection.v1alpha.ServerReflection",
                "ServerReflectionInfo",
            ) => Some(Method::Reflection),
            _ => None,
        }
    }
}

/// The status for an undecodable request message (as tonic-prost: the
/// decoder's error text, code [`crate::service::DECODE_ERROR`]).
fn decode_error(e: prost::DecodeError) -> Status {
    Status::new(crate::service::DECODE_ERROR, e.to_string())
}

/// `echo.Echo/Reply`: decodes an `EchoRequest` (prost checks that
/// `message` is valid UTF-8) and returns the framed `EchoReply`.
pub fn echo_reply(request: Bytes) -> Result<Bytes, Status> {
    let request = EchoRequest::decode(request).map_err(decode_error)?;
    Ok(message::encode(&crate::service::reply(&request)))
}

/// The health of `service`: "" (the whole server) and `echo.Echo` are
/// SERVING until shutdown starts, NOT_SERVING after; any other name is
/// NOT_FOUND, as tonic-health answers for a service never registered.
pub fn health_of(service: &str, serving: bool) -> Result<ServingStatus, Status> {
    if service.is_empty() || service == ECHO_SERVICE {
        Ok(if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        })
    } else {
        Err(Status::new(Code::NotFound, "service not registered"))
    }
}

/// The framed `HealthCheckResponse` carrying `status`.
pub fn health_response(status: ServingStatus) -> Bytes {
    message::encode(&HealthCheckResponse {
        status: status as i32,
    })
}

/// Decodes a `HealthCheckRequest` and returns the service name it asks about.
pub fn health_request(request: Bytes) -> Result<String, Status> {
    Ok(HealthCheckRequest::decode(request)
        .map_err(decode_error)?
        .service)
}

/// Checks that `request` decodes as the request type of `method`, without
/// running the method: what tonic does with extra messages of a unary call.
pub fn decode_only(method: Method, request: Bytes) -> Result<(), Status> {
    match method {
        Method::EchoReply => EchoRequest::decode(request).map(drop),
        Method::HealthCheck | Method::HealthWatch => HealthCheckRequest::decode(request).map(drop),
        #[cfg(feature = "reflection")]
        Method::Reflection => {
            super::reflection::pb::ServerReflectionRequest::decode(request).map(drop)
        }
    }
    .map_err(decode_error)
}

/// `grpc.health.v1.Health/Check`.
pub fn health_check(request: Bytes, serving: bool) -> Result<Bytes, Status> {
    let service = health_request(request)?;
    Ok(health_response(health_of(&service, serving)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unframe<M: Message + Default>(framed: Bytes) -> M {
        let mut d = message::Decoder::new(1 << 20);
        d.push(framed);
        let body = d.next_message().unwrap().unwrap();
        assert!(!d.is_partial());
        M::decode(body).unwrap()
    }

    #[test]
    fn routes() {
        assert_eq!(Method::route(b"/echo.Echo/Reply"), Some(Method::EchoReply));
        assert_eq!(
            Method::route(b"/grpc.health.v1.Health/Check"),
            Some(Method::HealthCheck)
        );
        assert_eq!(
            Method::route(b"/grpc.health.v1.Health/Watch"),
            Some(Method::HealthWatch)
        );
        for unknown in [
            &b"/"[..],
            b"",
            b"/echo.Echo/Other",
            b"echo.Echo/Reply",
            b"/echo.Echo/Reply/x",
            b"/\xff/Reply",
        ] {
            assert_eq!(Method::route(unknown), None);
        }
    }

    #[test]
    fn echo_replies() {
        let req = EchoRequest {
            message: "Hello World!".into(),
        }
        .encode_to_vec();
        let reply: crate::proto::echo::EchoReply = unframe(echo_reply(Bytes::from(req)).unwrap());
        assert_eq!(reply.message, "You said: Hello World!");
        // The empty message (all defaults) is a valid request.
        let reply: crate::proto::echo::EchoReply = unframe(echo_reply(Bytes::new()).unwrap());
        assert_eq!(reply.message, "You said: ");
    }

    #[test]
    fn echo_rejects_bad_protobuf_and_bad_utf8() {
        // Field 1, length-delimited, claims 5 bytes but has 1.
        let e = echo_reply(Bytes::from_static(&[0x0A, 0x05, b'a'])).unwrap_err();
        assert_eq!(e.code, crate::service::DECODE_ERROR);
        // Field 1 holding the invalid UTF-8 byte 0xFF.
        let e = echo_reply(Bytes::from_static(&[0x0A, 0x01, 0xFF])).unwrap_err();
        assert_eq!(e.code, crate::service::DECODE_ERROR);
    }

    #[test]
    fn decode_only_checks_without_answering() {
        let unknown = HealthCheckRequest {
            service: "nope".into(),
        }
        .encode_to_vec();
        assert_eq!(
            decode_only(Method::HealthCheck, Bytes::from(unknown)),
            Ok(())
        );
        let bad = Bytes::from_static(&[0x0A, 0x01, 0xFF]);
        assert_eq!(
            decode_only(Method::EchoReply, bad).unwrap_err().code,
            crate::service::DECODE_ERROR
        );
    }

    #[test]
    fn health_follows_shutdown() {
        for name in ["", "echo.Echo"] {
            let req = Bytes::from(
                HealthCheckRequest {
                    service: name.into(),
                }
                .encode_to_vec(),
            );
            let r: HealthCheckResponse = unframe(health_check(req.clone(), true).unwrap());
            assert_eq!(r.status, ServingStatus::Serving as i32);
            let r: HealthCheckResponse = unframe(health_check(req, false).unwrap());
            assert_eq!(r.status, ServingStatus::NotServing as i32);
        }
        let req = Bytes::from(
            HealthCheckRequest {
                service: "nope".into(),
            }
            .encode_to_vec(),
        );
        assert_eq!(health_check(req, true).unwrap_err().code, Code::NotFound);
    }
}
