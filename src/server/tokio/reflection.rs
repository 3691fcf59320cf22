//! Server reflection v1 and v1alpha on tonic: a thin adapter that hands each
//! request message's bytes to the one implementation,
//! [`crate::grpc::reflection::Reflection`], and sends back its bytes. A
//! pass-through codec spares decoding into tonic types and back.

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes};
use tonic::body::Body;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::{Request, Response};
use tonic::codegen::tokio_stream::{Stream, StreamExt};
use tonic::codegen::Service;
use tonic::server::{Grpc, NamedService, StreamingService};

use super::call::LimitedBody;
use super::routes::status;
use crate::grpc::reflection::{self, Reflection};

/// A reflection protocol version: the service name it is served under.
pub(super) trait Version: Send + Sync + 'static {
    /// Fully-qualified service name.
    const NAME: &'static str;
}

/// `grpc.reflection.v1`.
pub(super) struct V1;
impl Version for V1 {
    const NAME: &'static str = reflection::V1;
}

/// `grpc.reflection.v1alpha` (same messages, older name).
pub(super) struct V1Alpha;
impl Version for V1Alpha {
    const NAME: &'static str = reflection::V1ALPHA;
}

/// The reflection service under version `V`'s name.
pub(super) struct ReflectionService<V> {
    index: Arc<Reflection>,
    max_message_size: usize,
    version: PhantomData<V>,
}

impl<V> ReflectionService<V> {
    /// Serves `index`, accepting requests of at most `max_message_size` bytes.
    pub(super) fn new(index: Arc<Reflection>, max_message_size: usize) -> Self {
        ReflectionService {
            index,
            max_message_size,
            version: PhantomData,
        }
    }
}

impl<V> Clone for ReflectionService<V> {
    fn clone(&self) -> Self {
        ReflectionService::new(Arc::clone(&self.index), self.max_message_size)
    }
}

impl<V: Version> NamedService for ReflectionService<V> {
    const NAME: &'static str = V::NAME;
}

impl<V: Version> Service<Request<LimitedBody>> for ReflectionService<V> {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<LimitedBody>) -> Self::Future {
        let method = request.uri().path().rsplit('/').next() == Some(reflection::METHOD);
        let answers = Answers(Arc::clone(&self.index));
        let mut grpc = Grpc::new(RawCodec)
            .apply_max_message_size_config(Some(self.max_message_size), Some(usize::MAX));
        Box::pin(async move {
            if !method {
                return Ok(tonic::Status::unimplemented("unknown reflection method").into_http());
            }
            Ok(grpc.streaming(answers, request).await)
        })
    }
}

/// One reflection call: each request message, as it arrives, is answered.
struct Answers(Arc<Reflection>);

type AnswerStream = Pin<Box<dyn Stream<Item = Result<Bytes, tonic::Status>> + Send>>;

impl StreamingService<Bytes> for Answers {
    type Response = Bytes;
    type ResponseStream = AnswerStream;
    type Future =
        Pin<Box<dyn Future<Output = Result<tonic::Response<AnswerStream>, tonic::Status>> + Send>>;

    fn call(&mut self, request: tonic::Request<tonic::Streaming<Bytes>>) -> Self::Future {
        let index = Arc::clone(&self.0);
        let answers = request.into_inner().map(move |message| {
            let message = message?;
            index.answer(&message).map(Bytes::from).map_err(status)
        });
        let answers: AnswerStream = Box::pin(answers);
        Box::pin(async move { Ok(tonic::Response::new(answers)) })
    }
}

/// A codec that passes message bytes through untouched.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n)))
    }
}
