"""The journal: every change the local AWS acknowledged, in order, one JSON line each.

The state lives in memory (moto); the journal is what makes it durable. Each
line is one state-changing request in the line format of moto's recorder
(method, url, headers, base64 body) plus ``n``, the request's sequence
number: moto's random generator is seeded from ``n`` before the request runs,
so replaying the lines rebuilds the same ids. A line is written before the
request is answered and taken back if the request changed nothing (it was
rejected), so the journal holds only what changed state.

Rewrites (after replay, a reset, a compaction) are atomic: written aside,
synced, renamed over the old file. A write that cannot be journaled (a full
disk) is refused, leaves no torn line and does not move the sequence.

After a compaction the journal's first line is a header naming the
checkpoint (``checkpoint.py``) that holds every change up to its ``n``; the
lines after it are the changes made since.

Test hook: ``LABKIT_CRASH_AT=<point>`` makes the server kill itself with
SIGKILL when it reaches that point of a rewrite or a compaction (see
``crash_point``), so tests can prove a crash there loses nothing.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import signal
import threading
from pathlib import Path

from .http import Request

log = logging.getLogger("labkit.localaws")
CONTROL = "/_labkit/"  # the local AWS's own control paths, never journaled
REPLAYING = threading.Event()  # set while a journal is being replayed (fidelity patches ask)


class JournalFull(OSError):
    """The journal could not take a line (the disk is full or failing): the change is refused."""


def classify(request: Request) -> str:
    """'read', 'write' or 'control' for one request, erring towards 'write'."""
    from ..target import is_read

    if request.path.startswith(CONTROL):
        return "control"
    if request.path.startswith("/moto-api/"):
        # reset is handled by the app; config/seed change state and are journaled.
        return "write" if request.method == "POST" else "read"
    action = request.action
    if action:
        return "read" if is_read(action) else "write"
    return "read" if request.method in ("GET", "HEAD", "OPTIONS") else "write"


def entry_for(request: Request, number: int) -> dict:
    """The journal line for one request, replayable as it was received."""
    environ = request.environ
    path = environ.get("RAW_URI") or environ.get("PATH_INFO", "")
    url = f"http://{environ.get('HTTP_HOST', 'localhost')}{path}"
    if request.query and "?" not in url:
        url += f"?{request.query}"
    return {"method": request.method, "url": url, "headers": request.headers,
            "body": base64.b64encode(request.body).decode("ascii"), "body_encoded": True, "n": number}


def environ_for(entry: dict) -> dict:
    """A WSGI environ that sends a journal line through the app again."""
    from urllib.parse import unquote

    from werkzeug.test import EnvironBuilder

    body = base64.b64decode(entry["body"]) if entry.get("body_encoded") else (entry.get("body") or "").encode()
    headers = {k: v for k, v in entry["headers"].items() if k.lower() not in ("content-length", "transfer-encoding")}
    scheme, rest = entry["url"].split("://", 1)
    host, _, tail = rest.partition("/")
    path_and_query = "/" + tail
    path, _, query = path_and_query.partition("?")
    environ = EnvironBuilder(method=entry["method"], base_url=f"{scheme}://{host}", path=unquote(path),
                             query_string=query, headers=headers, data=body).get_environ()
    environ["RAW_URI"] = path_and_query
    return environ


def crash_point(name: str) -> None:
    """The test hook: die here, as ``kill -9`` would, when LABKIT_CRASH_AT names this point."""
    if os.environ.get("LABKIT_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def header_line(checkpoint: str, number: int, changes: int) -> bytes:
    """The journal's first line after a compaction: its checkpoint holds ``changes`` changes, up to ``number``."""
    return (json.dumps({"checkpoint": checkpoint, "n": number, "changes": changes}) + "\n").encode()


def count_changes(path: Path) -> int:
    """How many changes a journal file holds (its checkpoint's and the lines after it)."""
    try:
        with open(path, "rb") as handle:
            header, first = split_header(handle.readline())
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except OSError:
        return 0
    return (int(header.get("changes") or 0) if header else first.count(b"\n")) + lines


def split_header(data: bytes) -> tuple[dict | None, bytes]:
    """(the header naming a checkpoint, or None; the lines after it)."""
    if not data.startswith(b'{"checkpoint"'):
        return None, data
    first, _, rest = data.partition(b"\n")
    try:
        header = json.loads(first)
        if isinstance(header.get("checkpoint"), str) and isinstance(header.get("n"), int):
            return header, rest
    except ValueError:
        pass
    return None, data


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old file or the new, never a torn one."""
    aside = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        crash_point(f"rewrite:{path.name}:aside")
        os.replace(aside, path)
    except OSError:
        aside.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Journal:
    """The journal file: appended a line per change, rewritten only atomically.

    The server is its only writer, so it knows the file and its size after its own last write. What
    another process did to it (learner code under grading could forge a change that way) is undone
    before the next append, read, rewrite, session end and stop, and kept beside it as
    ``<journal>.foreign.<n>``, never replayed: appended bytes are cut off; a file put in its place (or
    its removal) is answered by writing the server's own lines back, from the file it still holds open.
    """

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._fd: int | None = None  # the server's own file, open for as long as it is the journal
        self._size = 0
        self.foreign = 0  # how many times foreign changes were undone since this server started
        try:  # what the last run left is ours: it is replayed and rewritten at start
            self._hold(os.open(self.path, os.O_RDWR))
        except FileNotFoundError:
            pass

    def _hold(self, fd: int) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd = fd
        self._size = os.fstat(fd).st_size

    def _ours(self, stat: os.stat_result | None) -> bool:
        if self._fd is None:
            return stat is None or stat.st_size == 0  # nothing written yet: an empty file is nothing to undo
        own = os.fstat(self._fd)
        return stat is not None and (stat.st_dev, stat.st_ino) == (own.st_dev, own.st_ino)

    def exists(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > 0

    def read(self) -> bytes:
        with self._lock:
            self._cut_foreign()
            try:
                return self.path.read_bytes()
            except FileNotFoundError:
                return b""

    def cut_foreign(self) -> None:
        with self._lock:
            self._cut_foreign()

    def _cut_foreign(self) -> None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            stat = None
        if not self._ours(stat):
            self._put_back(stat)
        elif stat is not None and stat.st_size > self._size:
            aside = self._foreign_path()
            with open(self.path, "rb+") as journal:
                journal.seek(self._size)
                with os.fdopen(os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as kept:
                    shutil.copyfileobj(journal, kept)
                journal.truncate(self._size)
            self._said(f"{stat.st_size - self._size} byte(s) another process appended to it were cut off", aside)
        elif stat is not None and stat.st_size < self._size:  # nothing to cut; the lines lost are said
            log.error("the journal %s shrank from %d to %d bytes outside the local AWS", self.path, self._size,
                      stat.st_size)
            self._size = stat.st_size

    def _put_back(self, stat: os.stat_result | None) -> None:
        """Another file is at the journal's path, or none is: keep that one aside and write ours back."""
        aside = None
        if stat is not None:
            aside = self._foreign_path()
            os.rename(self.path, aside)
        ours = b""
        if self._fd is not None:
            parts, done = [], 0
            while done < self._size:
                piece = os.pread(self._fd, min(1 << 20, self._size - done), done)
                if not piece:
                    break
                parts.append(piece)
                done += len(piece)
            ours = b"".join(parts)
        write_atomically(self.path, ours)
        self._hold(os.open(self.path, os.O_RDWR))
        self._said("it was replaced by another file" if aside else "it was removed", aside)

    def _said(self, what: str, aside: Path | None) -> None:
        self.foreign += 1
        kept = f"; that is kept as {aside.name}" if aside else ""
        log.warning("the journal %s was changed by another process: %s%s; it is never replayed", self.path.name,
                    what, kept)

    def _foreign_path(self) -> Path:
        taken = {p.name for p in self.path.parent.glob(f"{self.path.name}.foreign.*")}
        n = 1
        while f"{self.path.name}.foreign.{n}" in taken:
            n += 1
        return self.path.with_name(f"{self.path.name}.foreign.{n}")

    def append(self, entry: dict) -> int:
        """Write one line; returns the file's size before it, for ``take_back``. Raises JournalFull."""
        line = (json.dumps(entry) + "\n").encode()
        with self._lock:
            try:
                self._cut_foreign()
                if self._fd is None:
                    self._hold(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            except OSError as exc:
                raise JournalFull(exc.errno, f"the journal {self.path} could not be checked ({exc.strerror})") from None
            offset = self._size
            try:
                # At the server's own end, not O_APPEND's: bytes appended since the check are overwritten
                # or left after this line, where the next check finds them.
                written = os.pwrite(self._fd, line, offset)
                if written != len(line):
                    raise OSError(28, "short write")
            except OSError as exc:
                os.ftruncate(self._fd, offset)  # never leave half a line
                raise JournalFull(exc.errno, f"the journal {self.path} could not be written ({exc.strerror})") from None
            self._size = offset + len(line)
            return offset

    def take_back(self, offset: int) -> None:
        """Remove the last line (the request it records changed nothing)."""
        with self._lock:
            self._cut_foreign()
            os.ftruncate(self._fd, offset)
            self._size = offset

    def rewrite(self, data: bytes) -> None:
        with self._lock:
            try:
                self._cut_foreign()  # kept aside, not folded into the new journal
            except OSError as exc:
                log.error("the journal %s could not be checked for foreign changes: %s", self.path, exc)
            write_atomically(self.path, data)
            self._hold(os.open(self.path, os.O_RDWR))


def parse_lines(data: bytes):
    """(line, entry) for each whole line; a torn or foreign line is skipped with its number."""
    for number, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
            if not isinstance(entry, dict) or "method" not in entry or "url" not in entry:
                raise ValueError("not a journal entry")
        except ValueError as exc:
            yield number, raw, None, exc
            continue
        yield number, raw, entry, None


def unreadable_lines(data: bytes) -> int:
    """How many whole lines of a journal are not journal entries: damage. Its checkpoint header is
    not, and neither is a last line with no newline yet (a write torn by a crash)."""
    _, data = split_header(data)
    whole = data[: data.rfind(b"\n") + 1]
    return sum(1 for _, _, entry, _ in parse_lines(whole) if entry is None)
