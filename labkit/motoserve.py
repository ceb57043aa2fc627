"""The local AWS process: moto's server app behind a small recorder.

Run as ``python -m labkit.motoserve --port P --journal FILE``; learners start
it with ``python -m labkit up``.

Why not moto's own recorder alone: replaying its log re-creates resources
with *new* random ids, so a bucket policy that names a distribution ARN, or a
subnet that names a VPC id, no longer matches after a restore. Here every
state-changing request is numbered and moto's random generator is seeded from
that number, and reads run on a saved-and-restored generator, so replaying
the writes in order rebuilds the same ids. The journal uses the line format
of moto's recorder (method, url, headers, body).
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import logging
import os
import threading
from pathlib import Path
from urllib.parse import parse_qs

from .target import is_read

log = logging.getLogger("labkit.motoserve")
CONTROL = "/_labkit/"  # our own control paths (replay, journal), never recorded


def classify(method: str, path: str, headers: dict, body: bytes) -> str:
    """'read', 'write' or 'control' for one request, erring towards 'write'."""
    if path.startswith(CONTROL):
        return "control"
    if path.startswith("/moto-api/"):
        # reset is handled by us; config/seed change state and are journaled.
        return "write" if method == "POST" else "read"
    target = headers.get("X-Amz-Target") or headers.get("x-amz-target")
    if target:
        return "read" if is_read(target.rsplit(".", 1)[-1]) else "write"
    action = None
    if "Action=" in (body[:200].decode("latin-1") if body else ""):
        action = parse_qs(body.decode("latin-1")).get("Action", [None])[0]
    if action:
        return "read" if is_read(action) else "write"
    return "read" if method in ("GET", "HEAD", "OPTIONS") else "write"


class Recorder:
    """WSGI middleware: numbers writes, seeds moto's randomness, journals writes."""

    def __init__(self, app, journal: Path):
        from moto.moto_api._internal import mock_random

        self.app = app
        self.journal = journal
        self.random = mock_random
        self.lock = threading.RLock()  # one request at a time keeps ids deterministic
        self.writes = 0
        self.replaying = False

    # -- WSGI ---------------------------------------------------------------
    def __call__(self, environ, start_response):
        body = _read_body(environ)
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        headers = _headers(environ)
        kind = classify(method, path, headers, body)
        if kind == "control":
            return self._control(path, method, body, start_response)
        if path == "/moto-api/reset" and method == "POST":
            with self.lock:
                response = _collect(self.app, environ, start_response)
                self.reset()
                return response
        with self.lock:
            if kind == "read":
                state = self.random.getstate()
                try:
                    return _collect(self.app, environ, start_response)
                finally:
                    self.random.setstate(state)
            self.writes += 1
            self.random.seed(self.writes)
            if not self.replaying:
                self._append(method, environ, headers, body)
            return _collect(self.app, environ, start_response)

    # -- journal ------------------------------------------------------------
    def _append(self, method, environ, headers, body):
        query = environ.get("QUERY_STRING")
        url = f"http://{environ.get('HTTP_HOST', 'localhost')}{environ.get('RAW_URI') or environ.get('PATH_INFO', '')}"
        if query and "?" not in url:
            url += f"?{query}"
        entry = {"method": method, "url": url, "headers": headers,
                 "body": base64.b64encode(body).decode("ascii"), "body_encoded": True}
        with self.journal.open("a") as fh:
            fh.write(json.dumps(entry) + "\n")

    def reset(self):
        with self.lock:
            self.writes = 0
            self.journal.write_text("")

    def replay(self, lines: list[str]) -> int:
        """Re-send journaled writes through the app, in order, rebuilding state."""
        from werkzeug.test import EnvironBuilder

        count = 0
        with self.lock:
            self.replaying = True
            try:
                kept = []
                for number, line in enumerate(lines, 1):
                    if not line.strip():
                        continue
                    try:
                        entry = json.loads(line)
                        body = (base64.b64decode(entry["body"]) if entry.get("body_encoded")
                                else (entry.get("body") or "").encode())
                        headers = {k: v for k, v in entry["headers"].items()
                                   if k.lower() not in ("content-length", "transfer-encoding")}
                        builder = EnvironBuilder(method=entry["method"], base_url=_base(entry["url"]),
                                                 path=_path(entry["url"]), query_string=_query(entry["url"]),
                                                 headers=headers, data=body)
                        environ = builder.get_environ()
                        environ["RAW_URI"] = _path_and_query(entry["url"])
                        self(environ, lambda *a, **k: None)
                    except Exception as exc:  # a torn last line (a killed process) must not cost the rest
                        log.warning("journal line %d skipped: %s", number, exc)
                        continue
                    kept.append(line)
                    count += 1
            finally:
                self.replaying = False
            # The replayed writes are the journal now.
            self.journal.write_text("".join(line + "\n" for line in kept))
        return count

    def _control(self, path, method, body, start_response):
        if path == CONTROL + "replay" and method == "POST":
            self.app_reset()
            count = self.replay(body.decode("utf-8").splitlines())
            return _json(start_response, {"replayed": count})
        if path == CONTROL + "journal" and method == "GET":
            data = self.journal.read_text() if self.journal.exists() else ""
            start_response("200 OK", [("Content-Type", "application/x-ndjson")])
            return [data.encode()]
        if path == CONTROL + "status":
            return _json(start_response, {"writes": self.writes, "pid": os.getpid()})
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [b'{"error": "unknown control path"}']

    def app_reset(self):
        from moto.moto_api._internal.models import moto_api_backend

        with self.lock:
            moto_api_backend.reset()
            self.reset()


def _headers(environ) -> dict:
    out = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            out[key[5:].replace("_", "-").title()] = value
    if environ.get("CONTENT_TYPE"):
        out["Content-Type"] = environ["CONTENT_TYPE"]
    # boto3's X-Amz-* headers keep their case in AWS docs; title() is fine for moto.
    return out


def _read_body(environ) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
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


def _collect(app, environ, start_response):
    # Run the whole response inside the lock so lazily generated bodies
    # draw from the seeded generator too.
    return list(app(environ, start_response))


def _json(start_response, data):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(data).encode()]


def _base(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{rest.split('/', 1)[0]}"


def _path_and_query(url: str) -> str:
    rest = url.split("://", 1)[1]
    return "/" + rest.split("/", 1)[1] if "/" in rest else "/"


def _path(url: str) -> str:
    from urllib.parse import unquote

    return unquote(_path_and_query(url).split("?", 1)[0])


def _query(url: str) -> str:
    pq = _path_and_query(url)
    return pq.split("?", 1)[1] if "?" in pq else ""


def _deterministic_backends():
    """Seed moto's generator by name when a region backend is first built.

    moto builds backends lazily (EC2's default VPC is made on first touch),
    maybe during a read that is not journaled; seeding by name makes the ids
    the same whenever that first touch happens.
    """
    import zlib

    from moto.core import base_backend
    from moto.moto_api._internal import mock_random

    original = base_backend.AccountSpecificBackend.__getitem__

    def getitem(self, region_name):
        if region_name in self.keys() or (region_name == "global" and "aws" in self.keys()):
            return original(self, region_name)
        state = mock_random.getstate()
        mock_random.seed(zlib.crc32(f"{self.backend.__name__}/{self.account_id}/{region_name}".encode()))
        try:
            return original(self, region_name)
        finally:
            mock_random.setstate(state)

    base_backend.AccountSpecificBackend.__getitem__ = getitem


def _lean_iam_policies():
    """Load AWS-managed IAM policies once per process, and only in the aws partition.

    moto builds an IAM backend per partition and parses ~1,600 managed policies
    for each on every reset (about 1 s); learners only ever use the aws one.
    """
    import json as _json

    from moto.iam import models as iam

    parsed: dict = {}

    def init_aws_policies(self):
        if not iam.load_iam_aws_managed_policies() or self.region_name not in ("global", "aws"):
            return []
        if not parsed:
            parsed.update(_json.loads(iam.aws_managed_policies_data))
        return [iam.AWSManagedPolicy.from_data(name, self.account_id, self.region_name, d) for name, d in parsed.items()]

    iam.IAMBackend._init_aws_policies = init_aws_policies


def build_app(journal: Path):
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    from moto.core.config import default_user_config
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    # FACTS: without Docker, Lambda must use the stub backend, set before any Lambda call.
    default_user_config["lambda"] = {"use_docker": False}
    _deterministic_backends()
    _lean_iam_policies()
    app = DomainDispatcherApplication(create_backend_app)
    return Recorder(app, journal)


def main(argv=None):
    parser = argparse.ArgumentParser(description="The course's local AWS (moto with a deterministic journal).")
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--journal", type=Path, required=True)
    args = parser.parse_args(argv)

    from werkzeug.serving import run_simple
    from moto.moto_server.werkzeug_app import MotoRequestHandler  # keeps moto's header handling

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log: it would grow without bound
    os.environ["MOTO_PORT"] = str(args.port)  # moto builds some URLs (queues, endpoints) from it
    recorder = build_app(args.journal)
    if args.journal.exists() and args.journal.read_text().strip():
        # Bring back what the last session built: the journal is the state.
        lines = args.journal.read_text().splitlines()
        recorder.replay(lines)
    else:
        args.journal.write_text("")
    run_simple(args.host, args.port, recorder, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
