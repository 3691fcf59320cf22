//! grpc's interop `grpc.testing.TestService` on tonic (cargo feature
//! `interop`): tonic's generated trait, adapted to the shared logic in
//! [`crate::service::interop`]. This file only moves messages and waits;
//! every answer comes from the shared module.
//!
//! The metadata echo is a wrapper around the whole service ([`EchoMetadata`])
//! rather than code in each method: tonic has no way for a unary handler to
//! add trailers to a successful response, so the wrapper adds
//! `x-grpc-test-echo-trailing-bin` to the trailers as they pass.

use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::Frame;
use tonic::body::Body;
use tonic::codegen::http::{HeaderValue, Request, Response};
use tonic::codegen::Service;
use tonic::metadata::{BinaryMetadataValue, MetadataMap};
use tonic::server::NamedService;

use super::call::LimitedBody;
use super::routes::status;
use super::stream::{channel, pause, ChannelStream, Sender};
use crate::proto::testing::test_service_server::{self, TestServiceServer};
use crate::proto::testing::{
    Empty, SimpleRequest, SimpleResponse, StreamingInputCallRequest, StreamingInputCallResponse,
    StreamingOutputCallRequest, StreamingOutputCallResponse,
};
use crate::service::interop::{self, MetadataEcho, OutputPlan};

/// The served TestService, with the metadata echo around it.
pub(super) fn service(decode: usize, encode: usize) -> EchoMetadata {
    EchoMetadata(
        TestServiceServer::new(TestService {
            max_message_size: decode,
        })
        .max_decoding_message_size(decode)
        .max_encoding_message_size(encode),
    )
}

/// The TestService implementation.
pub(super) struct TestService {
    /// The message size limit, for responses and held requests.
    max_message_size: usize,
}

type Streamed = ChannelStream<StreamingOutputCallResponse>;

#[tonic::async_trait]
impl test_service_server::TestService for TestService {
    async fn empty_call(
        &self,
        request: tonic::Request<Empty>,
    ) -> Result<tonic::Response<Empty>, tonic::Status> {
        Ok(tonic::Response::new(interop::empty_call(request.get_ref())))
    }

    async fn unary_call(
        &self,
        request: tonic::Request<SimpleRequest>,
    ) -> Result<tonic::Response<SimpleResponse>, tonic::Status> {
        interop::unary_call(request.get_ref(), self.max_message_size)
            .map(tonic::Response::new)
            .map_err(status)
    }

    type StreamingOutputCallStream = Streamed;

    async fn streaming_output_call(
        &self,
        request: tonic::Request<StreamingOutputCallRequest>,
    ) -> Result<tonic::Response<Streamed>, tonic::Status> {
        let plan =
            interop::output_plan(request.get_ref(), self.max_message_size).map_err(status)?;
        let (tx, stream) = channel();
        tokio::spawn(async move {
            send_plan(&tx, plan).await;
        });
        Ok(tonic::Response::new(stream))
    }

    async fn streaming_input_call(
        &self,
        request: tonic::Request<tonic::Streaming<StreamingInputCallRequest>>,
    ) -> Result<tonic::Response<StreamingInputCallResponse>, tonic::Status> {
        let mut requests = request.into_inner();
        let mut sum = interop::InputSum::default();
        while let Some(request) = requests.message().await? {
            sum.push(&request).map_err(status)?;
        }
        Ok(tonic::Response::new(sum.finish()))
    }

    type FullDuplexCallStream = Streamed;

    async fn full_duplex_call(
        &self,
        request: tonic::Request<tonic::Streaming<StreamingOutputCallRequest>>,
    ) -> Result<tonic::Response<Streamed>, tonic::Status> {
        let mut requests = request.into_inner();
        let max = self.max_message_size;
        let (tx, stream) = channel();
        tokio::spawn(async move {
            // Each request is answered as it arrives; the loop ends with the
            // client's half-close, a failed plan, or the call going away.
            loop {
                let next = tokio::select! {
                    next = requests.message() => next,
                    _ = tx.closed() => return,
                };
                let plan = match next {
                    Ok(Some(request)) => interop::output_plan(&request, max).map_err(status),
                    Ok(None) => return,
                    Err(e) => Err(e),
                };
                let going = match plan {
                    Ok(plan) => send_plan(&tx, plan).await,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        false
                    }
                };
                if !going {
                    return;
                }
            }
        });
        Ok(tonic::Response::new(stream))
    }

    type HalfDuplexCallStream = Streamed;

    async fn half_duplex_call(
        &self,
        request: tonic::Request<tonic::Streaming<StreamingOutputCallRequest>>,
    ) -> Result<tonic::Response<Streamed>, tonic::Status> {
        let mut requests = request.into_inner();
        let mut held = interop::HalfDuplex::new(self.max_message_size, self.max_message_size);
        while let Some(request) = requests.message().await? {
            held.push(&request).map_err(status)?;
        }
        let (tx, stream) = channel();
        tokio::spawn(async move {
            for plan in held.finish() {
                if !send_plan(&tx, plan).await {
                    return;
                }
            }
        });
        Ok(tonic::Response::new(stream))
    }

    async fn unimplemented_method(
        &self,
        _request: tonic::Request<Empty>,
    ) -> Result<tonic::Response<Empty>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "grpc.testing.TestService/UnimplementedMethod is not implemented",
        ))
    }
}

/// Sends one plan's responses, each after its pause, then its closing
/// status if it has one. Returns whether the call goes on (false when the
/// plan ended it or the client went away).
async fn send_plan(tx: &Sender<StreamingOutputCallResponse>, plan: OutputPlan) -> bool {
    for step in plan.steps {
        if !pause(tx, step.delay).await {
            return false;
        }
        if tx
            .send(Ok(interop::output_response(step.size)))
            .await
            .is_err()
        {
            return false;
        }
    }
    match plan.end_with {
        Some(failure) => {
            let _ = tx.send(Err(status(failure))).await;
            false
        }
        None => true,
    }
}

/// TestService with the interop metadata echo: the request's
/// `x-grpc-test-echo-initial` goes back in the initial metadata, its
/// `x-grpc-test-echo-trailing-bin` in the trailers.
#[derive(Clone)]
pub(super) struct EchoMetadata(TestServiceServer<TestService>);

impl NamedService for EchoMetadata {
    const NAME: &'static str = interop::SERVICE;
}

impl Service<Request<LimitedBody>> for EchoMetadata {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<Request<LimitedBody>>::poll_ready(&mut self.0, cx)
    }

    fn call(&mut self, request: Request<LimitedBody>) -> Self::Future {
        let metadata = MetadataMap::from_headers(request.headers().clone());
        let echo = MetadataEcho::from_request(|key| {
            if key.ends_with("-bin") {
                let value = metadata.get_bin(key)?.to_bytes().ok()?;
                Some(value.to_vec())
            } else {
                Some(metadata.get(key)?.as_bytes().to_vec())
            }
        });
        let mut inner = self.0.clone();
        Box::pin(async move {
            let Ok(()) =
                poll_fn(|cx| Service::<Request<LimitedBody>>::poll_ready(&mut inner, cx)).await;
            let Ok(response) = inner.call(request).await;
            Ok(echo_into(response, &echo))
        })
    }
}

/// Adds the echoed metadata to a response: the initial value to its
/// headers, the trailing one to its trailers (to the headers too when they
/// are the trailers, in a Trailers-Only response).
fn echo_into(mut response: Response<Body>, echo: &MetadataEcho) -> Response<Body> {
    if echo.is_empty() {
        return response;
    }
    if let Some(value) = echo
        .initial
        .as_deref()
        .and_then(|v| HeaderValue::from_bytes(v).ok())
    {
        response.headers_mut().insert(interop::ECHO_INITIAL, value);
    }
    let Some(trailing) = echo.trailing_bin.as_deref().and_then(encode_bin) else {
        return response;
    };
    if response.headers().contains_key("grpc-status") {
        response
            .headers_mut()
            .insert(interop::ECHO_TRAILING_BIN, trailing);
        return response;
    }
    response.map(|body| {
        Body::new(TrailerEcho {
            inner: body,
            value: Some(trailing),
        })
    })
}

/// The echoed binary value as it goes on the wire (base64, encoded by tonic).
fn encode_bin(bytes: &[u8]) -> Option<HeaderValue> {
    let mut metadata = MetadataMap::new();
    metadata.insert_bin(
        interop::ECHO_TRAILING_BIN,
        BinaryMetadataValue::from_bytes(bytes),
    );
    metadata.into_headers().remove(interop::ECHO_TRAILING_BIN)
}

/// A response body that adds `x-grpc-test-echo-trailing-bin` to its trailers.
struct TrailerEcho {
    inner: Body,
    value: Option<HeaderValue>,
}

impl http_body::Body for TrailerEcho {
    type Data = tonic::codegen::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_trailers() {
                Ok(mut trailers) => {
                    if let Some(value) = this.value.take() {
                        trailers.insert(interop::ECHO_TRAILING_BIN, value);
                    }
                    Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
