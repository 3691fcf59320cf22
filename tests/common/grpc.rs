//! gRPC-level helpers on the tonic client (feature `client`): channels to a
//! test server, a raw-bytes codec for malformed requests, and the few
//! reflection messages the suite needs.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use prost::bytes::{Buf, BufMut, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic::Status;

use lean_grpc::proto::echo::echo_client::EchoClient;
use lean_grpc::proto::echo::EchoRequest;

/// Per-call timeout for the suite's tonic clients: generous for a loaded
/// 2-core CI machine, but bounded.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Opens one HTTP/2 connection to `url`.
pub async fn channel(url: &str) -> Channel {
    Endpoint::from_shared(url.to_owned())
        .expect("valid url")
        .connect_timeout(Duration::from_secs(10))
        .timeout(CALL_TIMEOUT)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e:?}"))
}

/// An Echo client on a fresh connection, with no message-size cap on
/// decoding (the server's limits are what is under test).
pub async fn echo_client(url: &str) -> EchoClient<Channel> {
    EchoClient::new(channel(url).await)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX)
}

/// One `Reply` call; returns the reply text or the status.
pub async fn reply(client: &mut EchoClient<Channel>, message: &str) -> Result<String, Status> {
    client
        .reply(EchoRequest {
            message: message.to_owned(),
        })
        .await
        .map(|r| r.into_inner().message)
}

/// Sends one raw request message (already protobuf-encoded, or garbage) to
/// `path` and returns the raw reply message bytes.
pub async fn raw_unary(
    channel: Channel,
    path: &'static str,
    body: Vec<u8>,
) -> Result<Bytes, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    grpc.unary(
        tonic::Request::new(Bytes::from(body)),
        PathAndQuery::from_static(path),
        BytesCodec,
    )
    .await
    .map(|r| r.into_inner())
}

/// A codec that passes message bytes through untouched.
#[derive(Clone, Copy, Default)]
pub struct BytesCodec;

/// Encoder half of [`BytesCodec`].
pub struct BytesEncoder;

/// Decoder half of [`BytesCodec`].
pub struct BytesDecoder;

impl Codec for BytesCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = BytesEncoder;
    type Decoder = BytesDecoder;
    fn encoder(&mut self) -> BytesEncoder {
        BytesEncoder
    }
    fn decoder(&mut self) -> BytesDecoder {
        BytesDecoder
    }
}

impl Encoder for BytesEncoder {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for BytesDecoder {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n)))
    }
}

/// A request-body stream fed from a channel, so a test decides when the
/// request message is sent (a "slow" client).
pub struct LateStream(pub tokio::sync::mpsc::Receiver<Bytes>);

impl tonic::codegen::tokio_stream::Stream for LateStream {
    type Item = Bytes;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.0.poll_recv(cx)
    }
}

/// `grpc.reflection.v1.ServerReflectionRequest` (only the fields used here).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReflectionRequest {
    /// Field 1: host.
    #[prost(string, tag = "1")]
    pub host: String,
    /// Field 7: list_services (the oneof member asking for the service list).
    #[prost(string, optional, tag = "7")]
    pub list_services: Option<String>,
}

/// `grpc.reflection.v1.ServerReflectionResponse` (only the fields used here).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReflectionResponse {
    /// Field 6: list_services_response.
    #[prost(message, optional, tag = "6")]
    pub list_services_response: Option<ListServiceResponse>,
}

/// `grpc.reflection.v1.ListServiceResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListServiceResponse {
    /// Field 1: the services.
    #[prost(message, repeated, tag = "1")]
    pub service: Vec<ServiceResponse>,
}

/// `grpc.reflection.v1.ServiceResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ServiceResponse {
    /// Field 1: fully-qualified service name.
    #[prost(string, tag = "1")]
    pub name: String,
}
