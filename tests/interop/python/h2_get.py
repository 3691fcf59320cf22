"""Sends one plain HTTP/2 request with the python-hyper `h2` library and
prints what came back, one item per line:

    status 415
    grpc-status 12      (only if present)
    ended               (the server finished the stream)

Usage: h2_get.py HOST PORT METHOD PATH [CONTENT_TYPE]
A second, independent HTTP/2 implementation checks that the server answers
non-gRPC requests with a complete response instead of dropping the stream.
"""

import socket
import sys

import h2.config
import h2.connection
import h2.events


def main():
    host, port, method, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    ctype = sys.argv[5] if len(sys.argv) > 5 else None
    sock = socket.create_connection((host, port), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    headers = [(":method", method), (":scheme", "http"), (":path", path), (":authority", host)]
    if ctype:
        headers.append(("content-type", ctype))
    conn.send_headers(1, headers, end_stream=True)
    sock.sendall(conn.data_to_send())
    out = []
    done = False
    while not done:
        data = sock.recv(65535)
        if not data:
            out.append("closed")
            break
        for event in conn.receive_data(data):
            if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                for name, value in event.headers:
                    name, value = name.decode(), value.decode()
                    if name in (":status", "grpc-status"):
                        out.append(f"{name.lstrip(':')} {value}")
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                out.append("ended")
                done = True
            elif isinstance(event, h2.events.StreamReset):
                out.append(f"reset {event.error_code}")
                done = True
            elif isinstance(event, h2.events.ConnectionTerminated):
                out.append(f"goaway {event.error_code}")
                done = True
        sock.sendall(conn.data_to_send())
    sock.close()
    print("\n".join(out))


if __name__ == "__main__":
    main()
