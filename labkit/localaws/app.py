"""The local AWS's WSGI app: moto's server app, made durable and repeatable, with extensions.

A request goes, in order, through:

1. the control paths (``/_labkit/...``: status, journal, replay), which are
   the app's own and never journaled;
2. the extensions (``extensions.REGISTERED``), each of which may claim it:
   data-plane requests run outside the lock, claimed reads and writes under it;
3. moto, for everything else.

Why not moto's own recorder: replaying its log re-creates resources with
*new* random ids, so a bucket policy that names a distribution ARN, or a
subnet that names a VPC id, no longer matches after a restore. Here every
state-changing request is numbered and moto's random generator is seeded
from that number (``journal.py``), and reads run on a saved-and-restored
generator, so replaying the writes in order rebuilds the same ids. Requests
are served one at a time under one lock for the same reason.
"""
from __future__ import annotations

import functools
import logging
import os
import threading
from pathlib import Path

from . import extensions
from .extensions import Claim
from .http import Request, Response, json_response
from .journal import CONTROL, REPLAYING, Journal, JournalFull, classify, entry_for, environ_for, parse_lines

log = logging.getLogger("labkit.localaws")


class LocalAWS:
    """The app: numbers and journals writes, seeds moto's randomness, routes to extensions."""

    def __init__(self, moto_app, journal: Path, endpoint: str | None = None,
                 extension_names: tuple[str, ...] = extensions.REGISTERED):
        from moto.moto_api._internal import mock_random

        self.moto = moto_app
        self.journal = Journal(journal)
        self.state_dir = journal.parent
        self.endpoint = endpoint
        self.random = mock_random
        self.lock = threading.RLock()  # one request at a time keeps ids deterministic
        self.writes = 0  # the sequence number of the last write
        self.replaying = False
        self.extensions: list[extensions.Extension] = extensions.load(self, extension_names) if endpoint else []

    def extension(self, name: str) -> extensions.Extension:
        return next(e for e in self.extensions if e.name == name)

    # -- WSGI -------------------------------------------------------------
    def __call__(self, environ, start_response):
        request = Request.from_environ(environ)
        if request.path.startswith(CONTROL):
            return self._control(request).send(start_response)
        return self.dispatch(request, start_response)

    def dispatch(self, request: Request, start_response):
        start_response = _Status(start_response)
        for ext in self.extensions:
            claim = ext.claims(request)
            if claim is Claim.DATA:
                return ext.handle(request).send(start_response)  # outside the lock, never journaled
            if claim is not None:
                answer = lambda ext=ext: ext.handle(request).send(start_response)  # noqa: E731
                return self._serve(request, "write" if claim is Claim.WRITE else "read", answer, start_response, ext)
        if request.path == "/moto-api/reset" and request.method == "POST":
            with self.lock:
                out = list(self.moto(request.environ, start_response))
                self.reset()
                return out
        # Run the whole response inside the lock so lazily generated bodies draw from the seeded generator.
        return self._serve(request, classify(request), lambda: list(self.moto(request.environ, start_response)),
                           start_response)

    def _serve(self, request: Request, kind: str, answer, start_response: "_Status", claimant=None):
        with self.lock:
            if kind != "write":
                state = self.random.getstate()
                try:
                    return answer()
                finally:
                    self.random.setstate(state)
            number = self.writes + 1
            offset = None
            if not self.replaying:
                try:
                    offset = self.journal.append(entry_for(request, number))
                except JournalFull as exc:
                    log.error("write refused: %s", exc)
                    return _refused(exc).send(start_response)
            self.writes = number
            self.random.seed(number)
            out = answer()
            if offset is not None and (start_response.status or 0) >= 400:
                self.journal.take_back(offset)  # rejected: it changed nothing, so it is not part of the state
            else:
                self._heard(request, claimant)
            return out

    def _heard(self, request: Request, claimant=None) -> None:
        _, service = request.scope
        for ext in self.extensions:
            if ext is not claimant and ext.hears(service):
                ext.written(service, request)

    # -- the app's own paths -----------------------------------------------
    def _control(self, request: Request) -> Response:
        name = request.path[len(CONTROL):]
        if name == "replay" and request.method == "POST":
            self.reset_all()
            return json_response({"replayed": self.replay(request.body)})
        if name == "journal" and request.method == "GET":
            return Response(200, self.journal.read(), {"Content-Type": "application/x-ndjson"})
        if name == "status":
            return json_response({"writes": self.writes, "pid": os.getpid(),
                                  "extensions": {e.name: e.status() for e in self.extensions}})
        return json_response({"error": "unknown control path"}, 404)

    # -- state ---------------------------------------------------------------
    def replay(self, data: bytes) -> int:
        """Re-send journaled writes through the app, in order, rebuilding state; returns how many."""
        kept: list[bytes] = []
        with self.lock:
            self.replaying = True
            REPLAYING.set()
            try:
                for number, raw, entry, problem in parse_lines(data):
                    if entry is None:  # a torn last line (a killed process) must not cost the rest
                        log.warning("journal line %d skipped: %s", number, problem)
                        continue
                    try:
                        sequence = int(entry.get("n") or self.writes + 1)
                        self.writes = sequence - 1  # a rejected write left a gap: seed as it was seeded
                        self.dispatch(Request.from_environ(environ_for(entry)), lambda *a, **k: None)
                    except Exception as exc:
                        log.warning("journal line %d skipped: %s", number, exc)
                        continue
                    kept.append(raw)
            finally:
                self.replaying = False
                REPLAYING.clear()
            self.journal.rewrite(b"".join(line + b"\n" for line in kept))  # the replayed writes are the journal now
            for ext in self.extensions:
                ext.restored()
        return len(kept)

    def reset(self) -> None:
        """Forget the journal and what extensions hold (moto itself was reset by the caller)."""
        with self.lock:
            self.writes = 0
            self.journal.rewrite(b"")
            for ext in self.extensions:
                ext.reset()

    def reset_all(self) -> None:
        from moto.moto_api._internal.models import moto_api_backend

        with self.lock:
            moto_api_backend.reset()
            self.reset()

    def close(self) -> None:
        for ext in self.extensions:
            try:
                ext.close()
            except Exception:  # stopping must go on for the others
                log.exception("extension %s did not stop cleanly", ext.name)

    # -- moto's models, for extensions -----------------------------------------
    def read_backend(self, look):
        """Run ``look`` on moto's models under the lock, without moving the seeded generator."""
        with self.lock:
            state = self.random.getstate()
            try:
                return look()
            finally:
                self.random.setstate(state)


class _Status:
    """A start_response that remembers the status code (a rejected write is taken back)."""

    def __init__(self, start_response):
        self.start_response = start_response
        self.status: int | None = None

    def __call__(self, status, headers, exc_info=None):
        try:
            self.status = int(str(status).split(" ", 1)[0])
        except ValueError:
            self.status = None
        return self.start_response(status, headers, exc_info) if exc_info else self.start_response(status, headers)


def _refused(exc: OSError) -> Response:
    message = (f"The local AWS could not save this change, so it refused it: {exc.strerror or exc}. "
               "Free some disk space and try again; nothing you built is lost.")
    return json_response({"__type": "ServiceUnavailableException", "message": message, "Message": message}, 503,
                         {"x-amzn-ErrorType": "ServiceUnavailableException"})


def build_app(journal: Path, endpoint: str | None = None,
              extension_names: tuple[str, ...] = extensions.REGISTERED) -> LocalAWS:
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from .fidelity import apply_server

    apply_server()
    dispatcher = DomainDispatcherApplication(create_backend_app)
    # moto lists its package folder on disk for every lookup (about a hundred times a request);
    # the answer depends on the host name alone, so remember it.
    dispatcher.get_backend_for_host = functools.lru_cache(maxsize=1024)(dispatcher.get_backend_for_host)
    return LocalAWS(dispatcher, journal, endpoint, extension_names)
