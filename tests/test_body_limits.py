"""Request bodies are read within bounds: API Gateway's 10 MB limit, and no wait on a body that never comes.

Raw sockets against the real local AWS process, because these are the requests
an HTTP client library would refuse to send.
"""
from __future__ import annotations

import http.client
import json
import socket

GUARD_S = 60  # against a hang, not a speed assertion


def exchange(port: int, head: str, body: bytes = b"") -> tuple[int, dict, bytes]:
    """Send a raw request (perhaps announcing more body than it sends) and read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=GUARD_S) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        return answer.status, dict(answer.getheaders()), answer.read()


def request(path: str, port: int, length: str, method: str = "POST") -> str:
    return (f"{method} {path} HTTP/1.1\nHost: localhost:{port}\nContent-Type: application/json\n"
            f"Content-Length: {length}\n")


def test_a_gateway_body_over_10_mb_gets_api_gateways_413_before_it_is_sent(local):
    status, headers, body = exchange(local.port, request("/_api/abc/v1/orders", local.port, str(11 * 1024 * 1024)),
                                     b"{" + b" " * 1024)  # the rest is never sent: the answer must not wait for it
    assert status == 413
    assert json.loads(body)["message"] == "Request Too Long"
    assert headers["x-amzn-ErrorType"] == "RequestTooLargeException"


def test_a_bad_content_length_is_a_400_at_once(local):
    for length in ("-1", "lots", "12abc"):
        status, _, body = exchange(local.port, request("/_api/abc/v1/orders", local.port, length), b"{}")
        assert status == 400, length
        assert "is not a byte count" in json.loads(body)["message"]


def test_a_body_shorter_than_announced_is_a_400_not_a_hang(local):
    for path in ("/_api/abc/v1/orders", "/"):  # the gateway, and moto's own paths
        sent = b'{"orderId": "o-1"}'
        status, _, body = exchange(local.port, request(path, local.port, "100"), sent)
        assert status == 400, path
        assert f"ended after {len(sent)} of the 100 bytes" in json.loads(body)["message"]


def test_moto_still_takes_bodies_larger_than_the_gateways_limit(local_target):
    s3 = local_target.client("s3")
    s3.create_bucket(Bucket="ada-big")
    blob = b"x" * (12 * 1024 * 1024)
    s3.put_object(Bucket="ada-big", Key="site.bin", Body=blob)
    assert s3.head_object(Bucket="ada-big", Key="site.bin")["ContentLength"] == len(blob)


def test_a_connection_that_sends_nothing_is_closed(tmp_path, monkeypatch):
    from labkit import localaws
    from tests.localaws import _port

    port = _port()
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LABS_AWS_PORT", str(port))
    monkeypatch.setenv("LABKIT_IDLE_CONNECTION_S", "1")
    localaws.up()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=GUARD_S) as sock:
            assert sock.recv(1) == b""  # closed by the server (a timeout here would raise instead)
        status, _, _ = exchange(port, f"GET /_labkit/status HTTP/1.1\nHost: localhost:{port}\nConnection: close\n")
        assert status == 200  # and it goes on serving
    finally:
        localaws.down()
