//! grpc's interop `grpc.testing.TestService` (cargo feature `interop`): the
//! server behaviour of grpc's interop-test-descriptions, as plain functions
//! over the prost messages, so both flavours answer the same.
//!
//! Nothing here knows a runtime or reads a clock: a flavour asks for a
//! [`Step`] list or a response and does the waiting (`interval_us`) and the
//! sending itself. Failures are `(Code, reason)`, sent as the call's status.
//!
//! Limits a flavour must apply: every payload size is checked against the
//! message limit it passes in, and [`HalfDuplex`] holds at most that many
//! request bytes, so no request can make the server allocate more than a
//! bounded amount.

use std::time::Duration;

use crate::proto::testing::{
    Empty, Payload, PayloadType, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingInputCallRequest, StreamingInputCallResponse, StreamingOutputCallRequest,
    StreamingOutputCallResponse,
};
use crate::status::Code;

/// Fully-qualified name of the served service.
pub const SERVICE: &str = "grpc.testing.TestService";

/// Request metadata whose value the server echoes in its initial metadata.
pub const ECHO_INITIAL: &str = "x-grpc-test-echo-initial";
/// Binary request metadata whose (decoded) value the server echoes in its trailers.
pub const ECHO_TRAILING_BIN: &str = "x-grpc-test-echo-trailing-bin";

/// The longest pause one response may ask for (`interval_us`): 10 s. A
/// longer wait is an INVALID_ARGUMENT rather than a stream held open for
/// up to 35 minutes (the most an `int32` of microseconds can say).
pub const MAX_INTERVAL: Duration = Duration::from_secs(10);

/// Bytes a `SimpleResponse` / `StreamingOutputCallResponse` needs beyond its
/// payload body: field tags and length prefixes (at most 1 + 5 for the
/// payload message, 1 + 5 for the body, 2 for the type). A body this much
/// smaller than the message limit always fits.
pub const RESPONSE_OVERHEAD: usize = 16;

/// Why a call ends with a non-OK status: the code and the reason.
pub type Failure = (Code, String);

/// `EmptyCall`: an empty response.
pub fn empty_call(_request: &Empty) -> Empty {
    Empty {}
}

/// `UnaryCall`: the status the client asked for in `response_status`, or a
/// response carrying a COMPRESSABLE payload of `response_size` zero bytes.
/// `max_message_size` bounds the response.
pub fn unary_call(
    request: &SimpleRequest,
    max_message_size: usize,
) -> Result<SimpleResponse, Failure> {
    requested_status(request.response_status.as_ref())?;
    check_uncompressed(
        request.expect_compressed.as_ref().map(|b| b.value),
        request.response_compressed.as_ref().map(|b| b.value),
    )?;
    payload_type(request.response_type)?;
    let size = payload_size(request.response_size, max_message_size)?;
    Ok(SimpleResponse {
        payload: Some(payload(size)),
        ..SimpleResponse::default()
    })
}

/// One response of a streamed call: wait `delay`, then send
/// [`output_response`]`(size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// Pause before this response (`interval_us`).
    pub delay: Duration,
    /// Payload bytes in the response.
    pub size: usize,
}

/// What one `StreamingOutputCallRequest` asks for (in `StreamingOutputCall`,
/// and for each request of `FullDuplexCall` / `HalfDuplexCall`): the
/// responses to send in order, then the status to end the call with, if
/// the request set a non-OK `response_status` (sent after the responses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputPlan {
    /// The responses, in order.
    pub steps: Vec<Step>,
    /// A status that ends the call after the responses.
    pub end_with: Option<Failure>,
}

/// Checks a `StreamingOutputCallRequest` and returns its [`OutputPlan`].
/// Each response's size is bounded by `max_message_size`.
pub fn output_plan(
    request: &StreamingOutputCallRequest,
    max_message_size: usize,
) -> Result<OutputPlan, Failure> {
    payload_type(request.response_type)?;
    let end_with = requested_status(request.response_status.as_ref()).err();
    let steps = request
        .response_parameters
        .iter()
        .map(|p| step(p, max_message_size))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(OutputPlan { steps, end_with })
}

/// Checks one `ResponseParameters`.
fn step(params: &ResponseParameters, max_message_size: usize) -> Result<Step, Failure> {
    check_uncompressed(None, params.compressed.as_ref().map(|b| b.value))?;
    let size = payload_size(params.size, max_message_size)?;
    let micros = u64::try_from(params.interval_us).map_err(|_| {
        (
            Code::InvalidArgument,
            format!("interval_us {} is negative", params.interval_us),
        )
    })?;
    let delay = Duration::from_micros(micros);
    if delay > MAX_INTERVAL {
        return Err((
            Code::InvalidArgument,
            format!(
                "interval_us {micros} is over the limit of {} µs",
                MAX_INTERVAL.as_micros()
            ),
        ));
    }
    Ok(Step { delay, size })
}

/// The response one [`Step`] sends: a COMPRESSABLE payload of `size` zero bytes.
pub fn output_response(size: usize) -> StreamingOutputCallResponse {
    StreamingOutputCallResponse {
        payload: Some(payload(size)),
    }
}

/// `StreamingInputCall`: sums the request payload sizes as they arrive.
#[derive(Debug, Default)]
pub struct InputSum {
    total: i32,
}

impl InputSum {
    /// Adds one request; fails the call if it expected compression (this
    /// server negotiates none) or the sum would not fit the response's `int32`.
    pub fn push(&mut self, request: &StreamingInputCallRequest) -> Result<(), Failure> {
        check_uncompressed(request.expect_compressed.as_ref().map(|b| b.value), None)?;
        let len = request.payload.as_ref().map_or(0, |p| p.body.len());
        self.total = i32::try_from(len)
            .ok()
            .and_then(|len| self.total.checked_add(len))
            .ok_or_else(|| {
                (
                    Code::OutOfRange,
                    "aggregated payload size does not fit an int32".to_owned(),
                )
            })?;
        Ok(())
    }

    /// The response: the aggregated payload size.
    pub fn finish(self) -> StreamingInputCallResponse {
        StreamingInputCallResponse {
            aggregated_payload_size: self.total,
        }
    }
}

/// `HalfDuplexCall`: holds every request until the client half-closes,
/// then the calls's responses are those of each request in order.
#[derive(Debug)]
pub struct HalfDuplex {
    plans: Vec<OutputPlan>,
    /// Request bytes held so far.
    held: usize,
    /// Most request bytes held at once.
    limit: usize,
    max_message_size: usize,
}

impl HalfDuplex {
    /// Holds at most `limit` bytes of requests (their encoded sizes), and
    /// plans responses of at most `max_message_size` bytes.
    pub fn new(limit: usize, max_message_size: usize) -> HalfDuplex {
        HalfDuplex {
            plans: Vec::new(),
            held: 0,
            limit,
            max_message_size,
        }
    }

    /// Takes one request (checked at once, so a bad one fails the call
    /// before the client finishes sending).
    pub fn push(&mut self, request: &StreamingOutputCallRequest) -> Result<(), Failure> {
        self.held = self
            .held
            .saturating_add(prost::Message::encoded_len(request));
        if self.held > self.limit {
            return Err((
                Code::ResourceExhausted,
                format!(
                    "HalfDuplexCall holds at most {} bytes of requests",
                    self.limit
                ),
            ));
        }
        self.plans
            .push(output_plan(request, self.max_message_size)?);
        Ok(())
    }

    /// The plans of the held requests, in order.
    pub fn finish(self) -> Vec<OutputPlan> {
        self.plans
    }
}

/// What the interop metadata echo sends back: the value of
/// [`ECHO_INITIAL`] for the initial metadata and the decoded value of
/// [`ECHO_TRAILING_BIN`] for the trailers, each if the request had it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataEcho {
    /// Value for [`ECHO_INITIAL`] in the response's initial metadata.
    pub initial: Option<Vec<u8>>,
    /// Bytes for [`ECHO_TRAILING_BIN`] in the trailers (sent base64-encoded).
    pub trailing_bin: Option<Vec<u8>>,
}

impl MetadataEcho {
    /// Picks the echoed keys out of the request metadata; `lookup(key)`
    /// returns a key's value (a `-bin` key's decoded bytes).
    pub fn from_request(mut lookup: impl FnMut(&str) -> Option<Vec<u8>>) -> MetadataEcho {
        MetadataEcho {
            initial: lookup(ECHO_INITIAL),
            trailing_bin: lookup(ECHO_TRAILING_BIN),
        }
    }

    /// Whether there is nothing to echo.
    pub fn is_empty(&self) -> bool {
        self.initial.is_none() && self.trailing_bin.is_none()
    }
}

/// A COMPRESSABLE payload of `size` zero bytes.
pub fn payload(size: usize) -> Payload {
    Payload {
        r#type: PayloadType::Compressable as i32,
        body: vec![0; size],
    }
}

/// `Err` with the `response_status` the client asked for, when it is not OK.
fn requested_status(status: Option<&crate::proto::testing::EchoStatus>) -> Result<(), Failure> {
    match status {
        Some(s) if s.code != 0 => Err((Code::from_i32(s.code), s.message.clone())),
        _ => Ok(()),
    }
}

/// Checks a requested payload type: COMPRESSABLE is the only one there is.
fn payload_type(requested: i32) -> Result<(), Failure> {
    match PayloadType::try_from(requested) {
        Ok(PayloadType::Compressable) => Ok(()),
        Err(_) => Err((
            Code::InvalidArgument,
            format!("unknown payload type {requested}"),
        )),
    }
}

/// Checks a requested payload size against the message limit.
fn payload_size(requested: i32, max_message_size: usize) -> Result<usize, Failure> {
    let size = usize::try_from(requested).map_err(|_| {
        (
            Code::InvalidArgument,
            format!("response size {requested} is negative"),
        )
    })?;
    let most = max_message_size.saturating_sub(RESPONSE_OVERHEAD);
    if size > most {
        return Err((
            Code::ResourceExhausted,
            format!("response size {size} is over this server's limit of {most} bytes"),
        ));
    }
    Ok(size)
}

/// This server negotiates no message compression: a request that says it
/// was compressed (`expect_compressed`) cannot be, and a compressed response
/// cannot be given. The interop descriptions ask for INVALID_ARGUMENT when
/// `expect_compressed` does not match the request; asking for a compressed
/// response is UNIMPLEMENTED.
fn check_uncompressed(
    expect_compressed: Option<bool>,
    response_compressed: Option<bool>,
) -> Result<(), Failure> {
    if expect_compressed == Some(true) {
        return Err((
            Code::InvalidArgument,
            "expected a compressed request, but this server accepts only uncompressed messages"
                .to_owned(),
        ));
    }
    if response_compressed == Some(true) {
        return Err((
            Code::Unimplemented,
            "compressed responses are not supported by this server".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testing::{BoolValue, EchoStatus};

    const LIMIT: usize = 4 << 20;

    fn params(size: i32, interval_us: i32) -> ResponseParameters {
        ResponseParameters {
            size,
            interval_us,
            compressed: None,
        }
    }

    #[test]
    fn large_unary_reply() {
        let request = SimpleRequest {
            response_size: 314_159,
            payload: Some(payload(271_828)),
            ..SimpleRequest::default()
        };
        let response = unary_call(&request, LIMIT).expect("ok");
        let body = response.payload.expect("payload");
        assert_eq!(body.r#type, PayloadType::Compressable as i32);
        assert_eq!(body.body, vec![0; 314_159]);
    }

    #[test]
    fn response_status_is_echoed() {
        let message = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n";
        let request = SimpleRequest {
            response_status: Some(EchoStatus {
                code: 2,
                message: message.into(),
            }),
            ..SimpleRequest::default()
        };
        assert_eq!(
            unary_call(&request, LIMIT),
            Err((Code::Unknown, message.into()))
        );
        // Code 0 is "no status asked for".
        let ok = SimpleRequest {
            response_status: Some(EchoStatus::default()),
            ..SimpleRequest::default()
        };
        assert!(unary_call(&ok, LIMIT).is_ok());
    }

    #[test]
    fn sizes_are_bounded() {
        let ask = |response_size| SimpleRequest {
            response_size,
            ..SimpleRequest::default()
        };
        assert_eq!(
            unary_call(&ask(-1), LIMIT).map_err(|e| e.0),
            Err(Code::InvalidArgument)
        );
        let most = (1000 - RESPONSE_OVERHEAD) as i32;
        let fits = unary_call(&ask(most), 1000).expect("fits");
        assert!(prost::Message::encoded_len(&fits) <= 1000);
        assert_eq!(
            unary_call(&ask(most + 1), 1000).map_err(|e| e.0),
            Err(Code::ResourceExhausted)
        );
        let unknown_type = SimpleRequest {
            response_type: 7,
            ..SimpleRequest::default()
        };
        assert_eq!(
            unary_call(&unknown_type, LIMIT).map_err(|e| e.0),
            Err(Code::InvalidArgument)
        );
    }

    #[test]
    fn compression_is_refused_clearly() {
        let expect = SimpleRequest {
            expect_compressed: Some(BoolValue { value: true }),
            ..SimpleRequest::default()
        };
        assert_eq!(
            unary_call(&expect, LIMIT).map_err(|e| e.0),
            Err(Code::InvalidArgument)
        );
        let respond = SimpleRequest {
            response_compressed: Some(BoolValue { value: true }),
            ..SimpleRequest::default()
        };
        assert_eq!(
            unary_call(&respond, LIMIT).map_err(|e| e.0),
            Err(Code::Unimplemented)
        );
        let not = SimpleRequest {
            expect_compressed: Some(BoolValue { value: false }),
            response_compressed: Some(BoolValue { value: false }),
            ..SimpleRequest::default()
        };
        assert!(unary_call(&not, LIMIT).is_ok());
    }

    #[test]
    fn output_plan_follows_parameters() {
        let request = StreamingOutputCallRequest {
            response_parameters: vec![params(31415, 0), params(9, 1500), params(2653, 0)],
            response_status: Some(EchoStatus {
                code: 9,
                message: "late".into(),
            }),
            ..StreamingOutputCallRequest::default()
        };
        let plan = output_plan(&request, LIMIT).expect("valid");
        assert_eq!(
            plan.steps,
            [
                Step {
                    delay: Duration::ZERO,
                    size: 31415
                },
                Step {
                    delay: Duration::from_micros(1500),
                    size: 9
                },
                Step {
                    delay: Duration::ZERO,
                    size: 2653
                },
            ]
        );
        assert_eq!(
            plan.end_with,
            Some((Code::FailedPrecondition, "late".into()))
        );
        assert_eq!(output_response(9).payload.map(|p| p.body.len()), Some(9));
    }

    #[test]
    fn output_plan_rejects_bad_parameters() {
        let with = |p| StreamingOutputCallRequest {
            response_parameters: vec![params(1, 0), p],
            ..StreamingOutputCallRequest::default()
        };
        let too_long = MAX_INTERVAL.as_micros() as i32 + 1;
        for (p, code) in [
            (params(-5, 0), Code::InvalidArgument),
            (params(1, -1), Code::InvalidArgument),
            (params(1, too_long), Code::InvalidArgument),
            (params(LIMIT as i32, 0), Code::ResourceExhausted),
        ] {
            assert_eq!(output_plan(&with(p), LIMIT).map_err(|e| e.0), Err(code));
        }
        let empty = output_plan(&StreamingOutputCallRequest::default(), LIMIT).expect("ok");
        assert_eq!(
            empty,
            OutputPlan {
                steps: vec![],
                end_with: None
            }
        );
    }

    #[test]
    fn input_sizes_add_up() {
        let mut sum = InputSum::default();
        for size in [27182, 8, 1828, 45904] {
            let request = StreamingInputCallRequest {
                payload: Some(payload(size)),
                expect_compressed: None,
            };
            sum.push(&request).expect("ok");
        }
        sum.push(&StreamingInputCallRequest::default())
            .expect("no payload");
        assert_eq!(sum.finish().aggregated_payload_size, 74922);

        let mut sum = InputSum {
            total: i32::MAX - 1,
        };
        let two = StreamingInputCallRequest {
            payload: Some(payload(2)),
            expect_compressed: None,
        };
        assert_eq!(sum.push(&two).map_err(|e| e.0), Err(Code::OutOfRange));
        let compressed = StreamingInputCallRequest {
            payload: None,
            expect_compressed: Some(BoolValue { value: true }),
        };
        assert_eq!(
            InputSum::default().push(&compressed).map_err(|e| e.0),
            Err(Code::InvalidArgument)
        );
    }

    #[test]
    fn half_duplex_holds_a_bounded_amount() {
        let request = StreamingOutputCallRequest {
            response_parameters: vec![params(3, 0)],
            payload: Some(payload(100)),
            ..StreamingOutputCallRequest::default()
        };
        let one = prost::Message::encoded_len(&request);
        let mut half = HalfDuplex::new(2 * one, LIMIT);
        half.push(&request).expect("first");
        half.push(&request).expect("second");
        assert_eq!(
            half.push(&request).map_err(|e| e.0),
            Err(Code::ResourceExhausted)
        );
        let mut half = HalfDuplex::new(2 * one, LIMIT);
        half.push(&request).expect("first");
        let plans = half.finish();
        assert_eq!(plans.len(), 1);
        assert_eq!(
            plans[0].steps,
            [Step {
                delay: Duration::ZERO,
                size: 3
            }]
        );
    }

    #[test]
    fn metadata_echo_picks_its_keys() {
        let echo = MetadataEcho::from_request(|key| match key {
            ECHO_INITIAL => Some(b"test_initial_metadata_value".to_vec()),
            ECHO_TRAILING_BIN => Some(vec![0xab, 0xab, 0xab]),
            _ => None,
        });
        assert_eq!(
            echo.initial.as_deref(),
            Some(&b"test_initial_metadata_value"[..])
        );
        assert_eq!(echo.trailing_bin, Some(vec![0xab, 0xab, 0xab]));
        assert!(MetadataEcho::from_request(|_| None).is_empty());
    }

    #[test]
    fn empty_is_empty() {
        assert_eq!(empty_call(&Empty {}), Empty {});
    }
}
