"""grpcio Echo call over TLS (optionally mutual TLS), for tests/tls.rs.

Usage: tls_client.py HOST:PORT CA_PEM [CLIENT_CERT_PEM CLIENT_KEY_PEM]

Prints the reply text and exits 0, or prints the gRPC error on stderr and
exits 1. Needs the stubs from tests/interop/setup.sh on PYTHONPATH.
"""

import sys

import grpc

import echo_pb2
import echo_pb2_grpc


def main() -> int:
    if len(sys.argv) not in (3, 5):
        print(__doc__, file=sys.stderr)
        return 2
    target, ca = sys.argv[1], sys.argv[2]
    with open(ca, "rb") as f:
        root = f.read()
    key = chain = None
    if len(sys.argv) == 5:
        with open(sys.argv[3], "rb") as f:
            chain = f.read()
        with open(sys.argv[4], "rb") as f:
            key = f.read()
    credentials = grpc.ssl_channel_credentials(
        root_certificates=root, private_key=key, certificate_chain=chain
    )
    with grpc.secure_channel(target, credentials) as channel:
        stub = echo_pb2_grpc.EchoStub(channel)
        try:
            reply = stub.Reply(echo_pb2.EchoRequest(message="grpcio over TLS"), timeout=10)
        except grpc.RpcError as e:
            print(f"{e.code().name}: {e.details()}", file=sys.stderr)
            return 1
    print(reply.message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
