"""Start, stop and inspect the local AWS; save and restore its state.

The server runs in the background (``python -m labkit.localaws``) and journals every
write to ``.labkit/journal.ndjson``; on start it replays that journal, so
stopping the server or rebooting never loses what the learner built.
Snapshots (``snapshots.py``) are plain journals, every change in order, saved
by the server itself so that the checkpoint it holds is kept beside them.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .. import config as cfg
from ..errors import LabkitError
from . import clock, grading, guard, snapshots
from .journal import count_changes, header_line

NOT_RUNNING = "The local AWS is not running; start it with `python -m labkit up`."
START_LOCK = "start.lock"  # held around check-start-record, so two `up`s give one server


def _record_path() -> Path:
    return cfg.server_record_path()


def journal_path() -> Path:
    return cfg.state_dir() / "journal.ndjson"


def snapshot_dir() -> Path:
    return snapshots.folder(cfg.state_dir())


@contextlib.contextmanager
def _start_lock():
    fd = os.open(cfg.state_dir() / START_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a second `up` waits here, then finds the first one's server
        yield
    finally:
        os.close(fd)


def _read_record() -> dict | None:
    return cfg.read_server_record()  # checked there: a damaged record is one sentence


def _write_record(record: dict) -> None:
    cfg.write_private(_record_path(), json.dumps(record, indent=2) + "\n")


# Every wait on the server is bounded: it answers its control paths in milliseconds, so a
# status probe that takes a second means something else (or a stuck server) holds the port.
STATUS_TIMEOUT_S = 1.0
BUSY_TIMEOUT_S = 10.0  # the second chance a live server of this folder gets to answer its status
CONTROL_TIMEOUT_S = 5.0


def _http(method: str, url: str, data: bytes | None = None, timeout: float = CONTROL_TIMEOUT_S,
          secret: bool = True, headers: dict | None = None) -> bytes:
    """A control request, with this install's secret (the server refuses control paths without it)."""
    headers = {**({guard.SECRET_HEADER: guard.read_secret(cfg.state_dir()) or ""} if secret else {}), **(headers or {})}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise LabkitError(_reason(exc)) from None


def _reason(exc: "urllib.error.HTTPError") -> str:
    try:
        body = exc.read().decode("utf-8", "replace").strip()
        message = json.loads(body).get("message") if body.startswith("{") else body
    except (OSError, ValueError, AttributeError):
        message = None
    return message or f"The local AWS answered {exc.code} to a control request; its log is {cfg.state_dir() / 'server.log'}."


def _ask(method: str, url: str, data: bytes | None = None, timeout: float = CONTROL_TIMEOUT_S,
         headers: dict | None = None) -> bytes:
    """``_http`` for commands: a server that does not answer is one sentence, not a traceback."""
    try:
        return _http(method, url, data, timeout, headers=headers)
    except OSError as exc:
        raise LabkitError(f"The local AWS at {url} did not answer within {timeout:g} s ({exc}); "
                          "stop it with `python -m labkit down` and start it again with `python -m labkit up`.") from None


def _answers(endpoint: str, secret: bool = True, timeout: float = STATUS_TIMEOUT_S) -> dict | None:
    """The server's own status if a course server answers there, else None (full only for this install's)."""
    try:
        info = json.loads(_http("GET", f"{endpoint}/_labkit/status", timeout=timeout, secret=secret))
    except (OSError, ValueError, LabkitError):
        return None
    return info if isinstance(info, dict) else None


def _ours(info: dict | None, pid: int) -> bool:
    """Whether a status answer is this state folder's server, ``pid``: only it knows this folder's secret."""
    return bool(info) and "writes" in info and info.get("pid") == pid


def _serves_this_folder(pid: int, endpoint: str | None) -> bool:
    """Whether ``pid`` is the course's server for this state folder (so it may be signalled)."""
    if endpoint and _ours(_answers(endpoint), pid):
        return True
    try:  # a server too busy to answer: its command line names this folder's journal
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    journal = str(journal_path().resolve()).encode()
    return b"labkit.localaws" in args and journal in args


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def endpoint_up(endpoint: str) -> bool:
    """Whether anything accepts connections at ``endpoint`` (cheap: no HTTP)."""
    url = urllib.parse.urlparse(endpoint)
    try:
        with socket.create_connection((url.hostname, url.port or 80), timeout=1.0):
            return True
    except OSError:
        return False


def running() -> dict | None:
    """The record of the running server, or None when it is not running."""
    record = _read_record()
    if not record or not cfg.process_alive(record.get("pid") or 0):
        return None
    if _ours(_answers(record["endpoint"]), record["pid"]):
        return record
    # Alive but silent for a second: a loaded machine or a long replay, not a stopped server; ask once more.
    if _serves_this_folder(record["pid"], None) and _ours(_answers(record["endpoint"], timeout=BUSY_TIMEOUT_S),
                                                          record["pid"]):
        return record
    return None


def require_running() -> dict:
    record = running()
    if record is None:
        raise LabkitError(NOT_RUNNING)
    return record


def up(port: int | None = None, quiet: bool = False, progress=None) -> dict:
    """Start the local AWS in the background (idempotent, and one server however many start it at once);
    ``progress(sentence)`` hears a long replay."""
    with _start_lock():
        return _up(port, progress)


def _up(port: int | None, progress=None) -> dict:
    record = running()
    if record:
        return {**record, "already": True}
    port = port or cfg.port()
    endpoint = f"http://localhost:{port}"
    if _port_taken(port):
        other = _answers(endpoint, secret=False)  # not ours: it gets no secret
        if other:
            raise LabkitError(
                f"Another course local AWS (pid {other.get('pid')}) already listens on port {port}, started from another "
                "folder; stop it (kill that pid) or set LABS_AWS_PORT to a free port."
            )
        raise LabkitError(
            f"Port {port} is taken by another program; set LABS_AWS_PORT to a free port and run `python -m labkit up` again."
        )
    state = cfg.state_dir()
    guard.ensure_secret(state)  # before the process starts: it reads the secret from this folder
    log = os.open(state / "server.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.fchmod(log, 0o600)  # a log made by an older version
        log_from = os.lseek(log, 0, os.SEEK_END)
        journal_file = journal_path().resolve()
        replaying = journal_file.exists() and journal_file.stat().st_size > 0
        changes = count_changes(journal_file) if replaying else 0
        process = subprocess.Popen(
            [sys.executable, "-m", "labkit.localaws", "--port", str(port), "--journal", str(journal_file)],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
            cwd=str(cfg.REPO_ROOT), env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    finally:
        os.close(log)
    # A checkpoint loads in seconds; a long plain journal (an old one, a fresh restore) replays at about
    # a thousand changes a second, so allow ten times that and never less than the old two minutes.
    deadline = time.monotonic() + (max(120, 30 + changes / 100) if replaying else 30)
    while time.monotonic() < deadline:
        code = process.poll()
        if code == guard.ALREADY_SERVED:
            raise LabkitError(f"Another local AWS already serves {state} but left no record; stop it "
                              "(see `ps` for labkit.localaws) and run `python -m labkit up` again.")
        if code is not None:
            raise LabkitError(f"The local AWS stopped while starting; its log is {state / 'server.log'}.")
        if _ours(_answers(endpoint), process.pid):
            break
        if progress and changes > 5000:
            log_from = _replay_progress(state / "server.log", log_from, changes, progress)
        time.sleep(0.05)
    else:
        process.terminate()
        raise LabkitError(f"The local AWS did not answer within the time limit; its log is {state / 'server.log'}.")
    previous = _read_record() or {}
    record = {"pid": process.pid, "port": port, "endpoint": endpoint, "started": time.time(),
              "state": previous.get("state", "empty") if replaying else "empty"}
    _write_record(record)
    return {**record, "already": False, "restored": replaying}


def _replay_progress(log_file: Path, offset: int, changes: int, progress) -> int:
    """Tell ``progress`` of the server's "replayed N change(s)" lines written since ``offset``; returns the new offset."""
    try:
        with open(log_file, "rb") as handle:
            handle.seek(offset)
            text = handle.read()
    except OSError:
        return offset
    complete = text.rfind(b"\n") + 1
    for found in re.findall(rb"replayed (\d+) change", text[:complete]):
        progress(f"  ... {int(found)} of {changes} change(s) replayed")
    return offset + complete


def down() -> bool:
    """Stop the server; its journal stays, so `up` brings the state back. Never signals another program."""
    with _start_lock():
        return _down()


def _down() -> bool:
    record = _read_record()
    if not record or not cfg.process_alive(record.get("pid") or 0):
        return False
    if not _serves_this_folder(record["pid"], record.get("endpoint")):
        _write_record({**record, "pid": 0})
        raise LabkitError(f"The recorded pid {record['pid']} is not this folder's local AWS (another program has it "
                          "now), so nothing was stopped.")
    os.kill(record["pid"], signal.SIGTERM)
    for _ in range(100):
        if not cfg.process_alive(record["pid"]):
            break
        time.sleep(0.05)
    else:
        os.kill(record["pid"], signal.SIGKILL)
    try:
        _write_record({**record, "pid": 0, "stopped": time.time()})
    except OSError:  # a full disk: the server is stopped all the same, and its pid is checked before any use
        pass
    return True


def set_state_label(label: str) -> None:
    record = _read_record() or {}
    record["state"] = label
    _write_record(record)


def status() -> dict:
    record = running()
    if record is None:
        return {"running": False, "endpoint": cfg.local_endpoint(), "snapshots": list_snapshots()}
    info = _answers(record["endpoint"]) or {}
    return {"running": True, "endpoint": record["endpoint"], "pid": record["pid"], "state": record.get("state", "unknown"),
            "writes": info.get("writes", 0), "clock_speed": info.get("clock_speed", 1.0), "snapshots": list_snapshots()}


def network_mode(endpoint: str | None) -> str | None:
    """How the local AWS at ``endpoint`` runs tasks and container instances: "namespaces" (each its own network
    namespace) or "loopback"; None when no course server of this install answers there."""
    info = _answers(endpoint) if endpoint else None
    return ((info or {}).get("extensions") or {}).get("ecs", {}).get("network")


def summary() -> str:
    """One or two sentences on where the local AWS is and what it holds."""
    info = status()
    snaps = ", ".join(info["snapshots"]) or "none"
    if not info["running"]:
        held = ""
        if endpoint_up(info["endpoint"]):  # something accepts there, and it is not a course server that answers
            held = " and another program holds that port without answering; set LABS_AWS_PORT to a free port"
        return f"The local AWS is not running (it would listen at {info['endpoint']}){held}. Snapshots: {snaps}."
    return (f"The local AWS is running at {info['endpoint']} (pid {info['pid']}).\n"
            f"State: {info['state']}; {info['writes']} change(s) journaled. Snapshots: {snaps}.\n"
            f"Clock: {clock.describe(info['clock_speed'])}.")


def keep_copy(name: str) -> str | None:
    """Keep the current state as snapshot ``name`` (replacing one of that name) unless it is empty or a
    snapshot holds it already; returns the snapshot that holds it."""
    return _snapshot(name, keep=True)["name"]


def _snapshot(name: str, **flags) -> dict:
    """Have the server save its state as snapshot ``name`` (it holds the checkpoint that goes with it)."""
    record = require_running()
    query = urllib.parse.urlencode({"name": name, **{k: "1" for k, v in flags.items() if v}})
    return json.loads(_ask("POST", f"{record['endpoint']}/_labkit/snapshot?{query}", data=b"", timeout=120))


def reset() -> None:
    """Empty the local AWS (the journal too); the server keeps a non-empty state as snapshot before-reset."""
    record = require_running()
    _ask("POST", f"{record['endpoint']}/moto-api/reset", data=b"")
    set_state_label("empty")


def list_snapshots() -> list[str]:
    """The snapshots that would restore: written whole and unchanged since."""
    return snapshots.names(snapshot_dir())


def read_journal() -> bytes:
    """The state-changing requests that made the current state (what a snapshot holds)."""
    record = require_running()
    return _ask("GET", f"{record['endpoint']}/_labkit/journal", timeout=30)


def replay(lines: bytes, data: str | None = None) -> int:
    """Replace the local AWS state with the one ``lines`` (a journal) make; returns the writes replayed.
    ``data``: the engine data saved with that state (``snapshots/NAME.data``, ``starts/NN.data``); without
    it the engines start empty."""
    record = require_running()
    query = "?" + urllib.parse.urlencode({"data": data}) if data else ""
    return json.loads(_ask("POST", f"{record['endpoint']}/_labkit/replay{query}", data=lines, timeout=300))["replayed"]


def save_data(where: str) -> None:
    """Have the server copy its engine data to ``where`` (``starts/NN.data``), beside a kept state."""
    record = require_running()
    _ask("POST", f"{record['endpoint']}/_labkit/data?" + urllib.parse.urlencode({"save": where}), data=b"", timeout=120)


def save(name: str, force: bool = False) -> Path:
    """Keep the current state as snapshot ``name``; an existing one is replaced only with ``force``."""
    snapshots.lines_path(snapshot_dir(), name)  # a bad name is one sentence before anything is sent
    _snapshot(name, force=force)
    return snapshots.lines_path(snapshot_dir(), name)


def restore(name: str) -> int:
    """Replace the local AWS state with a snapshot (the server keeps the current one as before-restore)."""
    lines, meta = snapshots.read(snapshot_dir(), name)
    if snapshots.checkpoint_of(snapshot_dir(), name).exists():  # loaded, after the server checks it matches
        lines = header_line(f"snapshots/{name}.checkpoint", 0, 0) + lines
    data = snapshots.data_of(snapshot_dir(), name)
    replayed = replay(lines, data=f"snapshots/{name}.data" if data.is_dir() else None)
    label = meta.get("state")
    set_state_label(f"snapshot {name}" + (f" ({label})" if label else ""))
    return replayed


class GradingSession:
    """An open grading session: read-only credentials whose every call the server logs.

    While it is open with ``lockdown``, the local AWS refuses every write from anyone and every control
    path but its own; it ends on ``close()`` or by itself after its ``seconds``."""

    def __init__(self, endpoint: str, answer: dict, region: str):
        self.id: str = answer["id"]
        self.endpoint = endpoint
        self.access_key_id: str = answer["access_key_id"]
        self.secret_access_key: str = answer["secret_access_key"]
        self.region = region
        self._token: str = answer["token"]
        self.closed = False

    def __repr__(self) -> str:  # never the secret key or the token
        return f"GradingSession(id={self.id!r}, access_key_id={self.access_key_id!r}, endpoint={self.endpoint!r})"

    @property
    def credentials(self) -> dict:
        """Keyword arguments for ``boto3.Session``."""
        return {"aws_access_key_id": self.access_key_id, "aws_secret_access_key": self.secret_access_key,
                "region_name": self.region}

    def _call(self, method: str) -> dict:
        url = f"{self.endpoint}{grading.PATH}/{self.id}"
        return json.loads(_ask(method, url, headers={grading.TOKEN_HEADER: self._token}))

    def calls(self) -> list[dict]:
        """The requests made with this session's key, in order (the server keeps the first 2000)."""
        return self._call("GET")["calls"]

    def close(self) -> None:
        """End the session (the lockdown lifts); closing twice is harmless."""
        if not self.closed:
            self._call("DELETE")
            self.closed = True

    def __enter__(self) -> "GradingSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_grading_session(page_limit: int | None = None, lockdown: bool = True,
                         seconds: int = grading.DEFAULT_SECONDS) -> GradingSession:
    """Open a grading session on the running local AWS (see ``grading_session``)."""
    if page_limit is not None and (isinstance(page_limit, bool) or not isinstance(page_limit, int) or page_limit < 1):
        raise LabkitError(f"A grading session's page_limit must be None or a whole number of at least 1, not {page_limit!r}.")
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds <= grading.MAX_SECONDS:
        raise LabkitError(f"A grading session lasts 1 to {grading.MAX_SECONDS} whole seconds, not {seconds!r}.")
    record = require_running()
    body = json.dumps({"page_limit": page_limit, "lockdown": bool(lockdown), "seconds": seconds}).encode()
    answer = json.loads(_ask("POST", f"{record['endpoint']}{grading.PATH}", data=body))
    return GradingSession(record["endpoint"], answer, cfg.load_settings().region)


@contextlib.contextmanager
def grading_session(page_limit: int | None = None, lockdown: bool = True, seconds: int = grading.DEFAULT_SECONDS):
    """A grading session for the ``with`` block: its credentials are read-only in the server, every call made
    with them is logged (``.calls()``), ``page_limit`` caps DynamoDB Query and Scan pages, and ``lockdown``
    makes the whole local AWS read-only until the block ends (or ``seconds`` pass, whichever is first)."""
    session = open_grading_session(page_limit, lockdown, seconds)
    try:
        yield session
    except BaseException:
        try:
            session.close()
        except LabkitError:  # the first error is the one to see; the session ends by itself anyway
            pass
        raise
    session.close()
