"""grpc interop client cases (doc/interop-test-descriptions.md in grpc/grpc)
against grpc.testing.TestService, with grpcio as the independent HTTP/2 stack.

Usage: interop_client.py --server_host=HOST --server_port=PORT --test_case=CASES
CASES is one case name, several separated by commas, or "all". Each case
prints "PASS name" or "FAIL name: reason"; the exit code is 1 if any failed
(2 for bad usage). Stubs come from tests/interop/setup.sh (target/interop/gen
on PYTHONPATH). Every call has a deadline, so no case can hang.
"""

import argparse
import queue
import sys

import grpc

from src.proto.grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc

# Deadline of every call that is not about deadlines.
DEADLINE_S = 20
LARGE_REQUEST = 271828
LARGE_RESPONSE = 314159
REQUEST_SIZES = [27182, 8, 1828, 45904]
RESPONSE_SIZES = [31415, 9, 2653, 58979]
ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"
INITIAL_VALUE = "test_initial_metadata_value"
TRAILING_VALUE = b"\xab\xab\xab"
SPECIAL_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"


class Failed(Exception):
    """A case's assertion did not hold."""


def check(condition, what):
    if not condition:
        raise Failed(what)


class Pipe:
    """A request iterator the case feeds one message at a time (for
    ping-pong), closed by the case to half-close the call."""

    def __init__(self):
        self._queue = queue.Queue()

    def add(self, request):
        self._queue.put(request)

    def close(self):
        self._queue.put(None)

    def __iter__(self):
        return self

    def __next__(self):
        # Bounded wait: a case that forgets to close cannot hang the client.
        item = self._queue.get(timeout=DEADLINE_S)
        if item is None:
            raise StopIteration
        return item


def payload(size):
    return messages_pb2.Payload(body=b"\0" * size)


def check_payload(response, size, what):
    body = response.payload.body
    check(len(body) == size, f"{what}: payload is {len(body)} bytes, expected {size}")
    check(body == b"\0" * size, f"{what}: payload is not all zeros")
    check(
        response.payload.type == messages_pb2.COMPRESSABLE,
        f"{what}: payload type {response.payload.type}, expected COMPRESSABLE",
    )


def output_request(size, request_size=None, status=None):
    request = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=size)]
        if size is not None
        else []
    )
    if request_size is not None:
        request.payload.CopyFrom(payload(request_size))
    if status is not None:
        request.response_status.CopyFrom(status)
    return request


def expect_error(error, code, what, details=None):
    check(error.code() == code, f"{what}: status {error.code()}, expected {code}: {error.details()}")
    if details is not None:
        check(
            error.details() == details,
            f"{what}: message {error.details()!r}, expected {details!r}",
        )


def empty_unary(stub, _channel):
    response = stub.EmptyCall(empty_pb2.Empty(), timeout=DEADLINE_S)
    check(isinstance(response, empty_pb2.Empty), f"response is {type(response)}")
    check(response.ByteSize() == 0, "response is not zero bytes")


def large_unary(stub, _channel):
    request = messages_pb2.SimpleRequest(
        response_size=LARGE_RESPONSE, payload=payload(LARGE_REQUEST)
    )
    response = stub.UnaryCall(request, timeout=DEADLINE_S)
    check_payload(response, LARGE_RESPONSE, "response")


def client_streaming(stub, _channel):
    requests = (
        messages_pb2.StreamingInputCallRequest(payload=payload(size))
        for size in REQUEST_SIZES
    )
    response = stub.StreamingInputCall(requests, timeout=DEADLINE_S)
    check(
        response.aggregated_payload_size == 74922,
        f"aggregated_payload_size {response.aggregated_payload_size}, expected 74922",
    )


def server_streaming(stub, _channel):
    request = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[
            messages_pb2.ResponseParameters(size=size) for size in RESPONSE_SIZES
        ]
    )
    responses = list(stub.StreamingOutputCall(request, timeout=DEADLINE_S))
    check(len(responses) == 4, f"{len(responses)} responses, expected 4")
    for i, (response, size) in enumerate(zip(responses, RESPONSE_SIZES)):
        check_payload(response, size, f"response {i + 1}")


def ping_pong(stub, _channel):
    pipe = Pipe()
    responses = stub.FullDuplexCall(pipe, timeout=DEADLINE_S)
    try:
        for i, (request_size, size) in enumerate(zip(REQUEST_SIZES, RESPONSE_SIZES)):
            pipe.add(output_request(size, request_size))
            response = next(responses)
            check_payload(response, size, f"response {i + 1}")
    finally:
        pipe.close()
    rest = list(responses)
    check(not rest, f"{len(rest)} responses after the fourth")
    check(responses.code() == grpc.StatusCode.OK, f"status {responses.code()}")


def empty_stream(stub, _channel):
    responses = list(stub.FullDuplexCall(iter([]), timeout=DEADLINE_S))
    check(not responses, f"{len(responses)} responses, expected none")


def timeout_on_sleeping_server(stub, _channel):
    pipe = Pipe()
    responses = stub.FullDuplexCall(pipe, timeout=0.001)
    pipe.add(output_request(None, request_size=27182))
    try:
        for _ in responses:
            pass
        raise Failed("the call succeeded, expected DEADLINE_EXCEEDED")
    except grpc.RpcError as error:
        expect_error(error, grpc.StatusCode.DEADLINE_EXCEEDED, "call")
    finally:
        pipe.close()


def cancel_after_begin(stub, _channel):
    pipe = Pipe()
    future = stub.StreamingInputCall.future(pipe, timeout=DEADLINE_S)
    future.cancel()
    pipe.close()
    check(future.cancelled(), "the call is not cancelled")
    check(future.code() == grpc.StatusCode.CANCELLED, f"status {future.code()}, expected CANCELLED")


def cancel_after_first_response(stub, _channel):
    pipe = Pipe()
    responses = stub.FullDuplexCall(pipe, timeout=DEADLINE_S)
    pipe.add(output_request(31415, 27182))
    check_payload(next(responses), 31415, "first response")
    responses.cancel()
    try:
        next(responses)
        raise Failed("a response after cancel, expected CANCELLED")
    except grpc.RpcError as error:
        expect_error(error, grpc.StatusCode.CANCELLED, "call")
    finally:
        pipe.close()


def status_cases(stub, message):
    status = messages_pb2.EchoStatus(code=2, message=message)
    try:
        stub.UnaryCall(messages_pb2.SimpleRequest(response_status=status), timeout=DEADLINE_S)
        raise Failed("UnaryCall succeeded, expected UNKNOWN")
    except grpc.RpcError as error:
        expect_error(error, grpc.StatusCode.UNKNOWN, "UnaryCall", message)


def status_code_and_message(stub, _channel):
    message = "test status message"
    status_cases(stub, message)
    pipe = Pipe()
    status = messages_pb2.EchoStatus(code=2, message=message)
    pipe.add(messages_pb2.StreamingOutputCallRequest(response_status=status))
    pipe.close()
    try:
        list(stub.FullDuplexCall(pipe, timeout=DEADLINE_S))
        raise Failed("FullDuplexCall succeeded, expected UNKNOWN")
    except grpc.RpcError as error:
        expect_error(error, grpc.StatusCode.UNKNOWN, "FullDuplexCall", message)


def special_status_message(stub, _channel):
    status_cases(stub, SPECIAL_MESSAGE)


def check_echoed(initial, trailing, what):
    initial = dict(initial or ())
    trailing = dict(trailing or ())
    check(
        initial.get(ECHO_INITIAL) == INITIAL_VALUE,
        f"{what}: initial metadata {initial}, expected {ECHO_INITIAL}={INITIAL_VALUE}",
    )
    check(
        trailing.get(ECHO_TRAILING) == TRAILING_VALUE,
        f"{what}: trailing metadata {trailing}, expected {ECHO_TRAILING}={TRAILING_VALUE!r}",
    )


def custom_metadata(stub, _channel):
    metadata = ((ECHO_INITIAL, INITIAL_VALUE), (ECHO_TRAILING, TRAILING_VALUE))
    request = messages_pb2.SimpleRequest(
        response_size=LARGE_RESPONSE, payload=payload(LARGE_REQUEST)
    )
    response, call = stub.UnaryCall.with_call(request, metadata=metadata, timeout=DEADLINE_S)
    check_payload(response, LARGE_RESPONSE, "UnaryCall response")
    check_echoed(call.initial_metadata(), call.trailing_metadata(), "UnaryCall")

    pipe = Pipe()
    responses = stub.FullDuplexCall(pipe, metadata=metadata, timeout=DEADLINE_S)
    pipe.add(output_request(LARGE_RESPONSE, LARGE_REQUEST))
    pipe.close()
    got = list(responses)
    check(len(got) == 1, f"FullDuplexCall: {len(got)} responses, expected 1")
    check_payload(got[0], LARGE_RESPONSE, "FullDuplexCall response")
    check_echoed(responses.initial_metadata(), responses.trailing_metadata(), "FullDuplexCall")


def unimplemented_method(_stub, channel):
    call = channel.unary_unary(
        "/grpc.testing.TestService/UnimplementedCall",
        request_serializer=empty_pb2.Empty.SerializeToString,
        response_deserializer=empty_pb2.Empty.FromString,
    )
    try:
        call(empty_pb2.Empty(), timeout=DEADLINE_S)
        raise Failed("the call succeeded, expected UNIMPLEMENTED")
    except grpc.RpcError as error:
        expect_error(error, grpc.StatusCode.UNIMPLEMENTED, "call")


def unimplemented_service(_stub, channel):
    stub = test_pb2_grpc.UnimplementedServiceStub(channel)
    try:
        stub.UnimplementedCall(empty_pb2.Empty(), timeout=DEADLINE_S)
        raise Failed("the call succeeded, expected UNIMPLEMENTED")
    except grpc.RpcError as error:
        expect_error(error, grpc.StatusCode.UNIMPLEMENTED, "call")


CASES = {
    case.__name__: case
    for case in [
        empty_unary,
        large_unary,
        client_streaming,
        server_streaming,
        ping_pong,
        empty_stream,
        timeout_on_sleeping_server,
        cancel_after_begin,
        cancel_after_first_response,
        status_code_and_message,
        special_status_message,
        custom_metadata,
        unimplemented_method,
        unimplemented_service,
    ]
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server_host", default="127.0.0.1")
    parser.add_argument("--server_port", type=int, required=True)
    parser.add_argument("--test_case", required=True)
    args = parser.parse_args()
    names = list(CASES) if args.test_case == "all" else args.test_case.split(",")
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(f"unknown test case(s): {', '.join(unknown)}; known: {', '.join(CASES)}", file=sys.stderr)
        return 2
    failed = 0
    target = f"{args.server_host}:{args.server_port}"
    for name in names:
        # A fresh channel per case, so one case's failure cannot leak into the next.
        with grpc.insecure_channel(target) as channel:
            stub = test_pb2_grpc.TestServiceStub(channel)
            try:
                CASES[name](stub, channel)
                print(f"PASS {name}", flush=True)
            except (Failed, grpc.RpcError, queue.Empty, StopIteration) as error:
                failed += 1
                reason = error
                if isinstance(error, grpc.RpcError):
                    reason = f"{error.code()}: {error.details()}"
                print(f"FAIL {name}: {reason!r}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
