"""One request and one response, as the app and its extensions see them."""
from __future__ import annotations

import io
import json
import re
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs

# The service a SigV4-signed request is for, from its credential scope.
SCOPE = re.compile(r"Credential=[^/]+/\d+/(?P<region>[\w-]+)/(?P<service>[\w-]+)/")
REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
           403: "Forbidden", 404: "Not Found", 409: "Conflict", 413: "Payload Too Large", 421: "Misdirected Request",
           429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout", 507: "Insufficient Storage"}


@dataclass
class Request:
    environ: dict = field(repr=False)
    method: str
    path: str
    query: str
    headers: dict  # Title-Case names, as moto expects them
    body: bytes = field(repr=False)

    @classmethod
    def from_environ(cls, environ: dict) -> "Request":
        return cls(environ, environ.get("REQUEST_METHOD", "GET").upper(), environ.get("PATH_INFO", ""),
                   environ.get("QUERY_STRING", ""), _headers(environ), _read_body(environ))

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.title(), default)

    @property
    def scope(self) -> tuple[str | None, str | None]:
        """(region, service) from the signature, or (None, None) for an unsigned request."""
        found = SCOPE.search(self.header("Authorization"))
        return (found.group("region"), found.group("service")) if found else (None, None)

    @property
    def action(self) -> str | None:
        """The operation: X-Amz-Target's, or the query protocol's Action (in the body or the URL)."""
        target = self.header("X-Amz-Target")
        if target:
            return target.rsplit(".", 1)[-1]
        for text in (self.query, self.body[:4096].decode("latin-1") if self.body else ""):
            if "Action=" in text:
                found = parse_qs(text).get("Action")
                if found:
                    return found[0]
        return None


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict = field(default_factory=dict)

    def send(self, start_response) -> list[bytes]:
        start_response(f"{self.status} {REASONS.get(self.status, 'Status')}", list(self.headers.items()))
        return [self.body]


class StatusKept:
    """A start_response that remembers the status code (the app takes a rejected write back; grading logs it)."""

    def __init__(self, start_response):
        self.start_response = start_response
        self.status: int | None = None

    def __call__(self, status, headers, exc_info=None):
        try:
            self.status = int(str(status).split(" ", 1)[0])
        except ValueError:
            self.status = None
        return self.start_response(status, headers, exc_info) if exc_info else self.start_response(status, headers)


def json_response(data, status: int = 200, headers: dict | None = None) -> Response:
    return Response(status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})


def _headers(environ) -> dict:
    out = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            out[key[5:].replace("_", "-").title()] = value
    if environ.get("CONTENT_TYPE"):
        out["Content-Type"] = environ["CONTENT_TYPE"]
    return out


class BodyRefused(Exception):
    """A request body the local AWS will not read: too large, or not arriving as announced."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status

    def response(self) -> Response:
        # API Gateway's error shape ({"message": ...} and x-amzn-ErrorType); boto3 reads "message" too.
        kind = "RequestTooLargeException" if self.status == 413 else "BadRequestException"
        return Response(self.status, json.dumps({"message": str(self), "__type": kind}).encode(),
                        {"Content-Type": "application/json", "x-amzn-ErrorType": kind})


GATEWAY_PREFIX = "/_api/"
# API Gateway's REST API payload limit is 10 MB (its quotas page; the REQUEST_TOO_LARGE gateway
# response is a 413). moto's own paths take the labs' S3 uploads and Lambda zips: a much larger
# cap, but still one, since the whole body is held in memory.
GATEWAY_BODY_LIMIT = 10 * 1024 * 1024
BODY_LIMIT = 512 * 1024 * 1024
BODY_IDLE_S = 5.0     # a body that stops arriving for this long never will: answer 400, do not wait on
BODY_DEADLINE_S = 120.0  # and however it trickles, reading one body ends by then
CHUNK = 1024 * 1024


def _read_body(environ) -> bytes:
    """Read the whole body once, bounded in size and time, and leave a re-readable copy for moto."""
    gateway = environ.get("PATH_INFO", "").startswith(GATEWAY_PREFIX)
    cap = GATEWAY_BODY_LIMIT if gateway else BODY_LIMIT
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    raw = (environ.get("CONTENT_LENGTH") or "").strip()
    if chunked:
        length = None
    elif not raw:
        length = 0
    elif raw.isdigit():
        length = int(raw)
    else:  # -1, garbage: API Gateway's front answers 400 at once, reading nothing
        raise BodyRefused(400, f"Bad Request: Content-Length {raw[:40]!r} is not a byte count.")
    if length is not None and length > cap:  # refused before reading a byte of it
        raise BodyRefused(413, _too_long(gateway, cap))
    stream = environ.get("wsgi.input")
    body = _read_bounded(stream, environ.get("werkzeug.socket"), length, cap, gateway) if stream is not None else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    return body


def _too_long(gateway: bool, cap: int) -> str:
    if gateway:
        return "Request Too Long"  # API Gateway's own words for REQUEST_TOO_LARGE
    return f"Request Too Long: the local AWS takes bodies up to {cap // (1024 * 1024)} MiB."


def _read_bounded(stream, sock, length: int | None, cap: int, gateway: bool) -> bytes:
    """``length`` bytes (or a chunked body to its end), waiting at most BODY_IDLE_S for each piece."""
    if length == 0:
        return b""
    previous = sock.gettimeout() if sock is not None else None
    if sock is not None:
        # Werkzeug's server reads from this socket with no timeout: a client that announced more
        # than it sends would hold the thread (and the learner's command) forever. On a refusal the
        # short timeout stays, so the server's own drain of unread bytes is bounded too.
        sock.settimeout(BODY_IDLE_S)
    deadline = time.monotonic() + BODY_DEADLINE_S
    parts: list[bytes] = []
    got = 0
    read = getattr(stream, "read1", stream.read)  # what has arrived, not a wait for all of it
    while length is None or got < length:
        want = CHUNK if length is None else min(CHUNK, length - got)
        try:
            piece = read(want)
        except (OSError, ValueError):  # socket.timeout is an OSError
            piece = None
        if not piece:
            if length is None and piece == b"":
                break  # the end of a chunked body
            if length is None:
                raise BodyRefused(400, f"Bad Request: the chunked body stopped after {got} bytes "
                                       f"(nothing more, or a malformed chunk, within {BODY_IDLE_S:g} s).")
            raise BodyRefused(400, f"Bad Request: the body ended after {got} of the {length} bytes its "
                                   f"Content-Length announced (nothing more arrived within {BODY_IDLE_S:g} s).")
        parts.append(piece)
        got += len(piece)
        if got > cap:
            raise BodyRefused(413, _too_long(gateway, cap))
        if time.monotonic() > deadline:
            raise BodyRefused(400, f"Bad Request: the body did not arrive within {BODY_DEADLINE_S:g} s.")
    if sock is not None:
        sock.settimeout(previous)  # the response may take its time to be read
    return b"".join(parts)
