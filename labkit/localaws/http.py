"""One request and one response, as the app and its extensions see them."""
from __future__ import annotations

import io
import json
import re
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


def _read_body(environ) -> bytes:
    """Read the whole body once, and leave a re-readable copy for moto."""
    try:
        length = max(int(environ.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        length = 0
    stream = environ.get("wsgi.input")
    if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked" and stream is not None:
        body = stream.read()
    else:
        body = stream.read(length) if (stream is not None and length) else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    return body
