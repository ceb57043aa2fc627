"""The local AWS's WSGI app: moto's server app, made durable and repeatable, with extensions.

A request goes, in order, through:

0. the guard (``guard.py``): a foreign ``Host``, any browser ``Origin`` and a
   control path without the install's secret are refused (never on replay);
   then the grading rules (``grading.py``): a grading session's key is
   read-only and its calls are logged, and a lockdown refuses every write
   and control path from anyone (never on replay either);
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

import logging
import os
import re
import secrets
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from . import clock, extensions, snapshots
from .extensions import Claim
from .grading import Grading
from .guard import Guard, forget_secret, read_secret, without_cors
from .http import BodyRefused, Request, Response, StatusKept, json_response
from .journal import (CONTROL, REPLAYING, Journal, JournalFull, classify, crash_point, entry_for, environ_for,
                      header_line, parse_lines, split_header, write_atomically)

log = logging.getLogger("labkit.localaws")
# Journal lines after which the state is folded into a checkpoint (a test hook may lower it).
COMPACT_EVERY = max(int(os.environ.get("LABKIT_COMPACT_EVERY") or 2000), 1)
# The checkpoints a journal or a restore may name: the journal's own, or one kept beside a snapshot.
# Where extensions' data (engine data) is kept beside a state: a snapshot's, or a kept start state's.
DATA_NAME = re.compile(r"^(snapshots/" + snapshots.NAME.pattern.strip("^$") + r"|starts/\d{2})\.data$")
CHECKPOINT_NAME = re.compile(r"^(checkpoint\.[\w.-]+\.pickle|snapshots/" + snapshots.NAME.pattern.strip("^$")
                             + r"\.checkpoint)$")


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
        self.emptying = False  # while the state about to be replaced is kept (before a reset or a restore)
        self.base: str | None = None  # the checkpoint file the journal starts from
        self.history: list[bytes] = []  # the journal lines that checkpoint holds, compressed
        self.changes = 0  # how many changes the checkpoint holds
        self.tail = 0  # journal lines after the checkpoint
        self.extensions: list[extensions.Extension] = extensions.load(self, extension_names) if endpoint else []
        self.guard = Guard(urlparse(endpoint).port if endpoint else None, read_secret(self.state_dir))
        self.grading = Grading(on_end=self.journal.cut_foreign)  # sessions: in memory only, never state

    def extension(self, name: str) -> extensions.Extension:
        return next(e for e in self.extensions if e.name == name)

    # -- WSGI -------------------------------------------------------------
    def __call__(self, environ, start_response):
        start_response = without_cors(start_response)
        try:
            request = Request.from_environ(environ)
        except BodyRefused as refused:  # too large, or not arriving: answered without waiting for it
            return refused.response().send(start_response)
        refused = self.guard.refusal(request)
        if refused is not None:
            return refused.send(start_response)
        authorized = self.guard.authorized(request)
        forget_secret(request)
        gate = self.grading.gate(request, self.is_write(request))
        if isinstance(gate, Response):
            return gate.send(start_response)  # refused: never journaled, never reaching moto or an extension
        if request.path.startswith(CONTROL):
            return self._control(request, authorized).send(start_response)
        if gate is not None:  # signed with a grading session's key: logged, its pages capped
            return self.grading.serve(gate, request, self.dispatch, start_response)
        return self.dispatch(request, start_response)

    def is_write(self, request: Request) -> bool:
        """Whether ``request`` would change state: a write as the journal classifies it, or one an extension claims."""
        return classify(request) == "write" or any(ext.claims(request) is Claim.WRITE for ext in self.extensions)

    def dispatch(self, request: Request, start_response):
        start_response = StatusKept(start_response)
        for ext in self.extensions:
            claim = ext.claims(request)
            if claim is Claim.DATA:
                return ext.handle(request).send(start_response)  # outside the lock, never journaled
            if claim is not None:
                answer = lambda ext=ext: ext.handle(request).send(start_response)  # noqa: E731
                return self._serve(request, "write" if claim is Claim.WRITE else "read", answer, start_response, ext)
        if request.path == "/moto-api/reset" and request.method == "POST":
            with self.lock:
                refused = self._locked(request) or self._keep_before("before-reset")
                if refused is not None:
                    return refused.send(start_response)
                try:
                    self.reset()  # the journal first: on a full disk nothing is reset
                except OSError as exc:
                    return _refused(exc).send(start_response)
                return list(self.moto(request.environ, start_response))
        # Run the whole response inside the lock so lazily generated bodies draw from the seeded generator.
        return self._serve(request, classify(request), lambda: list(self.moto(request.environ, start_response)),
                           start_response)

    def _serve(self, request: Request, kind: str, answer, start_response: StatusKept, claimant=None):
        with self.lock:
            if kind != "write":
                state = self.random.getstate()
                try:
                    return answer()
                finally:
                    self.random.setstate(state)
            refused = self._locked(request)
            if refused is not None:
                return refused.send(start_response)
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
                if offset is not None:
                    self.tail += 1
                    if self.tail >= COMPACT_EVERY:
                        self._compact_quietly()
            return out

    def _heard(self, request: Request, claimant=None) -> None:
        _, service = request.scope
        for ext in self.extensions:
            if ext is not claimant and ext.hears(service):
                ext.written(service, request)

    # -- the app's own paths -----------------------------------------------
    def _control(self, request: Request, authorized: bool = False) -> Response:
        name = request.path[len(CONTROL):]
        if name == "replay" and request.method == "POST":
            with self.lock:
                refused = self._locked(request) or self._keep_before("before-restore")
                if refused is not None:
                    return refused
                params = parse_qs(request.query)
                data = (params.get("data") or [""])[0]
                if data and not DATA_NAME.match(data):
                    return json_response({"message": f"{data!r} is not a saved data folder."}, 400)
                self.reset_all()
                return json_response({"replayed": self.replay(request.body, saved=self.state_dir / data if data else None)})
        if name == "data" and request.method == "POST":
            target = (parse_qs(request.query).get("save") or [""])[0]
            if not DATA_NAME.match(target):
                return json_response({"message": f"{target!r} is not a place for saved data."}, 400)
            with self.lock:
                try:
                    self.save_data(self.state_dir / target)
                except OSError as exc:
                    return _refused(exc)
            return json_response({"saved": target})
        if name == "snapshot" and request.method == "POST":
            return self._snapshot(request, parse_qs(request.query))
        if name == "grading" or name.startswith("grading/"):
            with self.lock:  # a session opens between requests: none that it would refuse is under way
                return self.grading.control(request)
        if name == "journal" and request.method == "GET":
            return Response(200, self.plain_journal(), {"Content-Type": "application/x-ndjson"})
        if name == "status" and not authorized:
            return json_response({"local_aws": "labkit", "pid": os.getpid()})  # who it is, nothing it holds
        if name == "status":
            self.journal.cut_foreign()
            return json_response({"local_aws": "labkit", "writes": self.writes, "pid": os.getpid(),
                                  "clock_speed": clock.speed(),
                                  "extensions": {e.name: e.status() for e in self.extensions},
                                  "grading": self.grading.status(), "foreign_journal_appends": self.journal.foreign})
        return json_response({"error": "unknown control path"}, 404)

    def _locked(self, request: Request) -> Response | None:
        """A lockdown's refusal, asked again under the lock (never of a replay: it rebuilds what was)."""
        return None if self.replaying else self.grading.locked(request, write=True)

    # -- state ---------------------------------------------------------------
    def _keep_before(self, name: str) -> Response | None:
        """Keep the journal as snapshot ``name`` before it is emptied; the refusal if it cannot be kept."""
        try:
            kept = self._keep_state(name, self.plain_journal())
            self._attach(kept)
            if kept:
                self.emptying = True  # the data is replaced next: an extension may move it rather than copy it
                try:
                    self.save_data(snapshots.data_of(snapshots.folder(self.state_dir), kept))
                finally:
                    self.emptying = False
        except OSError as exc:
            log.error("state not kept before %s: %s", name, exc)
            return _refused(exc)
        return None

    def _keep_state(self, name: str, data: bytes) -> str | None:
        """``snapshots.keep_before``, except that while engines hold data a snapshot with the same journal
        is not the same state (rows live outside the journal): then the state is kept as ``name`` itself."""
        engines = self.state_dir / "engines"
        held = engines.is_dir() and any(p.is_dir() and not p.name.endswith("-template") and any(p.iterdir())
                                        for p in engines.iterdir())  # a template is a cache, not state
        if data.strip() and held:
            snapshots.write(snapshots.folder(self.state_dir), name, data, state=snapshots.state_label(self.state_dir),
                            force=True)
            return name
        return snapshots.keep_before(self.state_dir, name, data)

    def _snapshot(self, request: Request, params: dict) -> Response:
        """Save the state as a snapshot, here where its checkpoint is: ``name``, ``force``, and ``keep``
        (keep a copy unless a snapshot holds this state already, as `reset` and `start` do)."""
        from ..errors import LabkitError

        name = (params.get("name") or [""])[0]
        with self.lock:
            refused = self._locked(request)
            if refused is not None:
                return refused
            data = self.plain_journal()
            try:
                if params.get("keep"):
                    kept = self._keep_state(name, data)
                else:
                    kept = name
                    snapshots.write(snapshots.folder(self.state_dir), name, data, state=snapshots.state_label(self.state_dir),
                                    force=bool(params.get("force")))
                self._attach(kept)
                if kept:
                    self.save_data(snapshots.data_of(snapshots.folder(self.state_dir), kept))
            except LabkitError as exc:
                return json_response({"message": str(exc)}, 409)
            except OSError as exc:
                message = (f"The snapshot {name!r} could not be saved ({exc.strerror or exc}); the previous one, "
                           "if any, is kept. Free some disk space and try again.")
                return json_response({"message": message}, 507)
            return json_response({"name": kept, "writes": data.count(b"\n")})

    def _attach(self, name: str | None) -> None:
        """Keep the current checkpoint beside snapshot ``name``: it holds the first part of the
        snapshot's lines, so a restore loads it and replays only the rest."""
        if name and self.base:
            snapshots.attach_checkpoint(snapshots.folder(self.state_dir), name, self.state_dir / self.base)

    def replay(self, data: bytes, saved: Path | None | object = ...) -> int:
        """Rebuild the state from a journal (a checkpoint, then the lines after it); returns the changes.

        ``saved``: for a restore, the folder of extension data saved with that state (None: none, start
        empty); left out when the server starts, where the engines' own data is the state's already."""
        header, data = split_header(data)
        kept: list[bytes] = []
        with self.lock:
            self.base, self.history, self.changes, start = None, [], 0, 0
            if header:
                data = self._load_checkpoint(header["checkpoint"], data)
                start = self.writes if self.base else 0
            self.replaying = True
            REPLAYING.set()
            try:
                for number, raw, entry, problem in parse_lines(data):
                    if entry is None:  # a torn last line (a killed process) must not cost the rest
                        log.warning("journal line %d skipped: %s", number, problem)
                        continue
                    try:
                        sequence = int(entry.get("n") or self.writes + 1)
                        if sequence <= start:
                            continue  # already in the checkpoint
                        self.writes = sequence - 1  # a rejected write left a gap: seed as it was seeded
                        self.dispatch(Request.from_environ(environ_for(entry)), lambda *a, **k: None)
                    except Exception as exc:
                        log.warning("journal line %d skipped: %s", number, exc)
                        continue
                    kept.append(raw)
                    if len(kept) % 5000 == 0:
                        log.info("replayed %d change(s)", len(kept))
            finally:
                self.replaying = False
                REPLAYING.clear()
            lines = b"".join(line + b"\n" for line in kept)
            # the replayed writes are the journal now
            self.journal.rewrite((header_line(self.base, start, self.changes) if self.base else b"") + lines)
            self.tail = len(kept)
            self._forget_checkpoints(keep=self.base)
            for ext in self.extensions:
                if saved is not ...:
                    folder = saved / ext.name if isinstance(saved, Path) else None
                    ext.load_data(folder if folder is not None and folder.is_dir() else None)
                ext.restored()
            replayed = self.changes + len(kept)  # before a compaction folds the lines into the checkpoint
            if self.tail >= COMPACT_EVERY:
                self._compact_quietly()
        return replayed

    def _load_checkpoint(self, name: str, tail: bytes) -> bytes:
        """Load checkpoint ``name``; returns the lines still to replay (all of them if it does not load)."""
        from moto.moto_api._internal.models import moto_api_backend

        from . import checkpoint

        beside_snapshot = name.startswith("snapshots/")  # then ``tail`` is the snapshot: every line, its own too
        if not CHECKPOINT_NAME.match(name):
            log.error("checkpoint name %r refused: every line is replayed instead", name)
            return tail
        try:
            blob = (self.state_dir / name).read_bytes()
        except OSError as exc:
            log.error("checkpoint %s cannot be read (%s): only the changes after it are replayed", name, exc)
            return tail
        if beside_snapshot:
            try:
                prefix = checkpoint.lines(checkpoint.history(blob))
            except (checkpoint.Unusable, ValueError):
                prefix = None
            if prefix is None or not tail.startswith(prefix):  # not the checkpoint of these lines: replay them all
                log.warning("checkpoint %s does not match its snapshot: every line is replayed", name)
                return tail
        try:
            loaded = checkpoint.restore(blob)
            self.random.setstate(loaded["random"])
            self.writes, self.history, self.changes, self.base = loaded["n"], loaded["history"], loaded["changes"], name
            for ext in self.extensions:
                if ext.name in loaded["extensions"]:
                    ext.load_checkpoint(loaded["extensions"][ext.name])
            if beside_snapshot:
                # The journal gets a checkpoint of its own: the snapshot's may be replaced later.
                self.base = f"checkpoint.{self.writes}.{secrets.token_hex(4)}.pickle"
                try:
                    os.link(self.state_dir / name, self.state_dir / self.base)
                except OSError:
                    write_atomically(self.state_dir / self.base, blob)
                return tail[len(prefix):]
            return tail
        except checkpoint.Unusable as exc:
            if beside_snapshot:
                log.warning("checkpoint %s not loaded (%s): every line of the snapshot is replayed", name, exc)
                moto_api_backend.reset()
                self.writes, self.history, self.changes, self.base = 0, [], 0, None
                return tail
            log.warning("checkpoint %s not loaded (%s): replaying the changes it holds instead", name, exc)
            moto_api_backend.reset()  # whatever part of it loaded
            self.writes = 0
            try:
                return checkpoint.lines(checkpoint.history(blob)) + tail
            except (checkpoint.Unusable, ValueError) as again:
                log.error("checkpoint %s is damaged (%s): only the changes after it are replayed", name, again)
                return tail

    def compact(self) -> None:
        """Fold the journal into a new checkpoint; each step leaves a journal that replays to the same state."""
        from . import checkpoint

        with self.lock:
            begun = time.monotonic()
            _, tail = split_header(self.journal.read())
            history = self.history + ([checkpoint.compress(tail)] if tail.strip() else [])
            changes = self.changes + sum(1 for line in tail.splitlines() if line.strip())
            name = f"checkpoint.{self.writes}.{secrets.token_hex(4)}.pickle"
            kept = {e.name: state for e in self.extensions if (state := e.checkpoint_state()) is not None}
            write_atomically(self.state_dir / name, checkpoint.capture(self.writes, self.random.getstate(), history,
                                                                       changes, kept))
            crash_point("compact:checkpoint-written")
            self.journal.rewrite(header_line(name, self.writes, changes))  # the one step that switches to it
            crash_point("compact:journal-switched")
            self.base, self.history, self.changes, self.tail = name, history, changes, 0
            self._forget_checkpoints(keep=name)
            log.info("compacted %d change(s) into %s in %.2f s", changes, name, time.monotonic() - begun)

    def _compact_quietly(self) -> None:
        try:
            self.compact()
        except Exception:  # the journal still holds every change: a failed compaction costs only speed
            log.exception("compaction failed; the journal keeps growing until the next one")

    def _forget_checkpoints(self, keep: str | None = None) -> None:
        for path in self.state_dir.glob("checkpoint.*.pickle"):
            if path.name != keep:
                path.unlink(missing_ok=True)
        # what a killed rewrite left aside (this process's own are in flight only under the lock we hold)
        for pattern in (f".{self.journal.path.name}.*.tmp", ".checkpoint.*.tmp"):
            for path in self.state_dir.glob(pattern):
                path.unlink(missing_ok=True)

    def save_data(self, target: Path) -> None:
        """Have every extension copy its data into ``target`` (replacing what was there), written aside first
        so a failed copy leaves the older data whole."""
        import shutil

        from ..config import private_dir

        aside = target.with_name(f".{target.name}.tmp")
        shutil.rmtree(aside, ignore_errors=True)
        private_dir(aside)
        try:
            for ext in self.extensions:
                folder = aside / ext.name
                folder.mkdir(mode=0o700)
                ext.save_data(folder)
                if not any(folder.iterdir()):
                    folder.rmdir()
        except BaseException:
            shutil.rmtree(aside, ignore_errors=True)
            raise
        shutil.rmtree(target, ignore_errors=True)
        os.replace(aside, target)

    def plain_journal(self) -> bytes:
        """Every change that made the current state, as plain journal lines (what a snapshot holds)."""
        from . import checkpoint

        with self.lock:
            _, tail = split_header(self.journal.read())
            return checkpoint.lines(self.history) + tail

    def reset(self) -> None:
        """Forget the journal, its checkpoint and what extensions hold (moto itself is reset by the caller)."""
        with self.lock:
            self.journal.rewrite(b"")  # first, and atomically: a journal without a header ignores any checkpoint
            self.writes, self.base, self.history, self.changes, self.tail = 0, None, [], 0, 0
            self._forget_checkpoints()
            for ext in self.extensions:
                ext.reset()

    def reset_all(self) -> None:
        """Empty moto and the extensions before a replay; the journal stays until the replay rewrites it."""
        from moto.moto_api._internal.models import moto_api_backend

        with self.lock:
            moto_api_backend.reset()
            self.writes = 0
            for ext in self.extensions:
                ext.reset()

    def close(self) -> None:
        try:
            self.journal.cut_foreign()  # before the next start replays it
        except OSError:
            log.exception("the journal could not be checked for foreign lines")
        for ext in self.extensions:
            try:
                ext.close()
            except Exception:  # stopping must go on for the others
                log.exception("extension %s did not stop cleanly", ext.name)
        try:
            from . import netns

            netns.remove_all()  # what an extension left behind: no namespace outlives the local AWS
        except Exception:
            log.exception("network namespaces could not all be removed")

    # -- moto's models, for extensions -----------------------------------------
    def read_backend(self, look):
        """Run ``look`` on moto's models under the lock, without moving the seeded generator."""
        with self.lock:
            state = self.random.getstate()
            try:
                return look()
            finally:
                self.random.setstate(state)


def _refused(exc: OSError) -> Response:
    message = (f"The local AWS could not save this change, so it refused it: {exc.strerror or exc}. "
               "Free some disk space and try again; nothing you built is lost.")
    return json_response({"__type": "ServiceUnavailableException", "message": message, "Message": message}, 503,
                         {"x-amzn-ErrorType": "ServiceUnavailableException"})


def build_app(journal: Path, endpoint: str | None = None,
              extension_names: tuple[str, ...] = extensions.REGISTERED) -> LocalAWS:
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from .fidelity import apply_server, speed

    apply_server()
    dispatcher = DomainDispatcherApplication(create_backend_app)
    speed.remember_backend_hosts(dispatcher)
    return LocalAWS(dispatcher, journal, endpoint, extension_names)
