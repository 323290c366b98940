"""A bare HTTP/2 gRPC client for what grpcio's own client refuses to send (non-ASCII header bytes)."""

from __future__ import annotations

import socket
import struct

import h2.config
import h2.connection
import h2.events


def call(target: str, method: str, message: bytes, headers: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """Send one unary call with exactly these extra `headers` and return the response headers and
    trailers merged (`grpc-status` among them)."""
    host, _, port = target.rpartition(":")
    config = h2.config.H2Configuration(
        client_side=True, validate_outbound_headers=False, normalize_outbound_headers=False
    )
    connection = h2.connection.H2Connection(config=config)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        connection.initiate_connection()
        stream = connection.get_next_available_stream_id()
        request_headers = [
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", method.encode()),
            (b":authority", target.encode()),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
            *headers,
        ]
        connection.send_headers(stream, request_headers)
        connection.send_data(stream, b"\x00" + struct.pack(">I", len(message)) + message, end_stream=True)
        sock.sendall(connection.data_to_send())
        answer: dict[bytes, bytes] = {}
        while True:
            data = sock.recv(65536)
            if not data:
                return answer
            for event in connection.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
                    answer.update((bytes(k), bytes(v)) for k, v in event.headers)
                if isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
                    return answer
            sock.sendall(connection.data_to_send())
