"""Who may talk to the local AWS: the course's own clients on this machine, and no web page.

The local AWS answers on loopback without AWS credentials, so the danger is a
page in the learner's browser: it can make the browser send requests to
``localhost`` (cross-origin requests carry an ``Origin`` header) or point its
own domain at 127.0.0.1 (DNS rebinding: the ``Host`` header is then the
page's domain). boto3, the Lambda workers and labkit itself send neither, so:

- a ``Host`` that is not this server's loopback name and port is refused;
- a request with an ``Origin`` not in ``ALLOWED_ORIGINS`` is refused, and no
  response carries ``Access-Control-*`` headers (moto's flask-cors adds them);
- the control paths (``/_labkit/``, ``/moto-api/``) also need the per-install
  secret kept owner-only in the state folder, sent as ``X-Labkit-Secret``.
  ``/_labkit/status`` answers without it, but then only that it is the
  course's local AWS and its pid (what any local user sees in ``ps``).

This runs on requests from the network only, never on a journal's replay.
"""
from __future__ import annotations

import fcntl
import hmac
import os
import secrets
from pathlib import Path

from .http import Request, Response

SECRET_FILE = "secret"
SECRET_HEADER = "X-Labkit-Secret"
# Marks a write the local AWS makes itself (``internal.py``: a scale-out, a rollback): journaled with the
# marker so a replay rebuilds what made it; no request from outside may carry it.
INTERNAL_HEADER = "X-Labkit-Internal"
ALLOWED_ORIGINS: tuple[str, ...] = ()  # none are needed today; a future browser client would be listed here
GUARDED = ("/_labkit/", "/moto-api/")
OPEN_WITHOUT_SECRET = ("/_labkit/status",)
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
SERVER_LOCK = "server.lock"  # held for the server's lifetime: one server per state folder
ALREADY_SERVED = 3  # the server's exit code when another server holds the state folder


def hold_state_folder(folder: Path) -> int | None:
    """Lock ``folder`` for this process's lifetime (the fd is never closed), or None if a server holds it."""
    fd = os.open(folder / SERVER_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def secret_path(folder: Path) -> Path:
    return folder / SECRET_FILE


def read_secret(folder: Path) -> str | None:
    try:
        return secret_path(folder).read_text().strip() or None
    except OSError:
        return None


def ensure_secret(folder: Path) -> str:
    """The state folder's secret, made (owner-only) if it has none yet."""
    from ..config import write_private

    found = read_secret(folder)
    if found:
        return found
    write_private(secret_path(folder), secrets.token_urlsafe(32) + "\n")
    return read_secret(folder) or ""


def host_allowed(host: str, port: int | None) -> bool:
    """``localhost:PORT``, ``127.0.0.1:PORT``, ``[::1]:PORT`` or ``<name>.localhost:PORT`` (S3 virtual hosts).

    The same names without a port are allowed too (an in-process test client sends them): a page
    rebinding its own domain to this machine must name this port, and its name is not one of these.
    """
    host = (host or "").strip().lower()
    name, sep, given = host.rpartition(":")
    if not sep or "]" in given:  # no port (an IPv6 literal's colons end before "]")
        name, given = host, None
    if given is not None and port is not None and given != str(port):
        return False
    return name in LOOPBACK_NAMES or (name.endswith(".localhost") and "[" not in name and ":" not in name)


def _refusal(sentence: str) -> Response:
    return Response(403, (sentence + "\n").encode(), {"Content-Type": "text/plain; charset=utf-8"})


class Guard:
    def __init__(self, port: int | None, secret: str | None, origins: tuple[str, ...] = ALLOWED_ORIGINS):
        self.port = port
        self.secret = secret
        self.origins = origins

    def authorized(self, request: Request) -> bool:
        given = request.environ.get("HTTP_X_LABKIT_SECRET", "")
        return bool(self.secret) and hmac.compare_digest(given.encode(), self.secret.encode())

    def refusal(self, request: Request) -> Response | None:
        """The answer that refuses ``request``, or None when it may go on."""
        if not host_allowed(request.environ.get("HTTP_HOST", ""), self.port):
            return _refusal("The local AWS answers only requests addressed to localhost on its own port.")
        origin = request.environ.get("HTTP_ORIGIN")
        if origin is not None and origin not in self.origins:
            return _refusal("The local AWS does not answer web pages (cross-origin browser requests); "
                            "use boto3 or labkit from your own code.")
        if request.header(INTERNAL_HEADER):
            return _refusal(f"The {INTERNAL_HEADER} header is the local AWS's own; requests from outside cannot carry it.")
        if request.path.startswith(GUARDED) and request.path not in OPEN_WITHOUT_SECRET and not self.authorized(request):
            return _refusal(f"The local AWS's control paths need the {SECRET_HEADER} header from this install's "
                            "state folder; use `python -m labkit` instead.")
        return None


def forget_secret(request: Request) -> None:
    """Drop the secret from the request before it is served: it must never reach the journal or a snapshot."""
    request.environ.pop("HTTP_X_LABKIT_SECRET", None)
    request.headers.pop(SECRET_HEADER.title(), None)


def without_cors(start_response):
    """A start_response that drops every ``Access-Control-*`` header: no page may read an answer."""
    def start(status, headers, exc_info=None):
        headers = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
        return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)
    return start
