"""Start, stop and inspect the local AWS; save and restore its state.

The server runs in the background (``python -m labkit.localaws``) and journals every
write to ``.labkit/journal.ndjson``; on start it replays that journal, so
stopping the server or rebooting never loses what the learner built.
Snapshots are plain journals (every change, in order), whether or not the
server keeps part of its own journal as a checkpoint.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from .. import config as cfg
from ..errors import LabkitError
from .journal import count_changes, write_atomically

NOT_RUNNING = "The local AWS is not running; start it with `python -m labkit up`."
SNAPSHOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _record_path() -> Path:
    return cfg.state_dir() / "server.json"


def journal_path() -> Path:
    return cfg.state_dir() / "journal.ndjson"


def snapshot_dir() -> Path:
    path = cfg.state_dir() / "snapshots"
    path.mkdir(exist_ok=True)
    return path


def _read_record() -> dict | None:
    try:
        return json.loads(_record_path().read_text())
    except (OSError, ValueError):
        return None


def _write_record(record: dict) -> None:
    _record_path().write_text(json.dumps(record, indent=2) + "\n")


def _alive(pid: int) -> bool:
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _http(method: str, url: str, data: bytes | None = None, timeout: float = 5.0) -> bytes:
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 503:  # the local AWS refused a change it could not save (a full disk): say its sentence
            try:
                message = json.loads(exc.read()).get("message")
            except (OSError, ValueError, AttributeError):
                message = None
            raise LabkitError(message or "The local AWS could not save this change (is the disk full?).") from None
        raise


def _answers(endpoint: str) -> dict | None:
    """The server's own status if a course server answers there, else None."""
    try:
        return json.loads(_http("GET", f"{endpoint}/_labkit/status", timeout=1.0))
    except (OSError, ValueError):
        return None


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def endpoint_up(endpoint: str) -> bool:
    """Whether anything accepts connections at ``endpoint`` (cheap: no HTTP)."""
    from urllib.parse import urlparse

    url = urlparse(endpoint)
    try:
        with socket.create_connection((url.hostname, url.port or 80), timeout=1.0):
            return True
    except OSError:
        return False


def running() -> dict | None:
    """The record of the running server, or None when it is not running."""
    record = _read_record()
    if record and _alive(record["pid"]) and _answers(record["endpoint"]):
        return record
    return None


def require_running() -> dict:
    record = running()
    if record is None:
        raise LabkitError(NOT_RUNNING)
    return record


def up(port: int | None = None, quiet: bool = False, progress=None) -> dict:
    """Start the local AWS in the background (idempotent); ``progress(sentence)`` hears a long replay."""
    record = running()
    if record:
        return {**record, "already": True}
    port = port or cfg.port()
    endpoint = f"http://localhost:{port}"
    if _port_taken(port):
        other = _answers(endpoint)
        if other:
            raise LabkitError(
                f"Another course local AWS (pid {other.get('pid')}) already listens on port {port}, started from another "
                "folder; stop it (kill that pid) or set LABS_AWS_PORT to a free port."
            )
        raise LabkitError(
            f"Port {port} is taken by another program; set LABS_AWS_PORT to a free port and run `python -m labkit up` again."
        )
    state = cfg.state_dir()
    log = open(state / "server.log", "ab")
    log_from = log.seek(0, os.SEEK_END)
    journal_file = journal_path()
    replaying = journal_file.exists() and journal_file.stat().st_size > 0
    changes = count_changes(journal_file) if replaying else 0
    process = subprocess.Popen(
        [sys.executable, "-m", "labkit.localaws", "--port", str(port), "--journal", str(journal_file)],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
        cwd=str(cfg.REPO_ROOT), env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    # A checkpoint loads in seconds; a long plain journal (an old one, a fresh restore) replays at about
    # a thousand changes a second, so allow ten times that and never less than the old two minutes.
    deadline = time.monotonic() + (max(120, 30 + changes / 100) if replaying else 30)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LabkitError(f"The local AWS stopped while starting; its log is {state / 'server.log'}.")
        if _answers(endpoint):
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
    """Stop the server; its journal stays, so `up` brings the state back."""
    record = _read_record()
    if not record or not _alive(record["pid"]):
        return False
    os.kill(record["pid"], signal.SIGTERM)
    for _ in range(100):
        if not _alive(record["pid"]):
            break
        time.sleep(0.05)
    else:
        os.kill(record["pid"], signal.SIGKILL)
    _write_record({**record, "pid": 0, "stopped": time.time()})
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
            "writes": info.get("writes", 0), "snapshots": list_snapshots()}


def summary() -> str:
    """One or two sentences on where the local AWS is and what it holds."""
    info = status()
    snaps = ", ".join(info["snapshots"]) or "none"
    if not info["running"]:
        return f"The local AWS is not running (it would listen at {info['endpoint']}). Snapshots: {snaps}."
    return (f"The local AWS is running at {info['endpoint']} (pid {info['pid']}).\n"
            f"State: {info['state']}; {info['writes']} change(s) journaled. Snapshots: {snaps}.")


def keep_copy(name: str) -> str | None:
    """Save the current state as snapshot ``name`` unless it is empty; returns the name kept."""
    record = require_running()
    if not json.loads(_http("GET", f"{record['endpoint']}/_labkit/status")).get("writes"):
        return None
    save(name)
    return name


def reset() -> None:
    """Empty the local AWS (the journal too)."""
    record = require_running()
    _http("POST", f"{record['endpoint']}/moto-api/reset", data=b"")
    set_state_label("empty")


def _snapshot_file(name: str) -> Path:
    if not SNAPSHOT_NAME.match(name or ""):
        raise LabkitError(f"{name!r} is not a snapshot name; use letters, digits, '.', '_' or '-' (up to 64).")
    return snapshot_dir() / f"{name}.ndjson"


def list_snapshots() -> list[str]:
    return sorted(p.stem for p in snapshot_dir().glob("*.ndjson"))


def read_journal() -> bytes:
    """The state-changing requests that made the current state (what a snapshot holds)."""
    record = require_running()
    return _http("GET", f"{record['endpoint']}/_labkit/journal", timeout=30)


def replay(lines: bytes) -> int:
    """Replace the local AWS state with the one ``lines`` (a journal) make; returns the writes replayed."""
    record = require_running()
    return json.loads(_http("POST", f"{record['endpoint']}/_labkit/replay", data=lines, timeout=300))["replayed"]


def save(name: str) -> Path:
    record = require_running()
    path = _snapshot_file(name)
    journal_ = read_journal()
    meta = {"state": record.get("state", "unknown"), "saved": time.time(), "writes": journal_.count(b"\n")}
    try:  # atomically, the journal first: a full disk keeps the previous snapshot whole, never a 0-byte one
        write_atomically(path, journal_)
        write_atomically(path.with_suffix(".json"), (json.dumps(meta) + "\n").encode())
    except OSError as exc:
        raise LabkitError(f"The snapshot {name!r} could not be saved ({exc.strerror or exc}); "
                          "the previous one, if any, is kept. Free some disk space and try again.") from None
    return path


def restore(name: str) -> int:
    """Replace the local AWS state with a snapshot; returns the writes replayed."""
    path = _snapshot_file(name)
    if not path.exists():
        known = ", ".join(list_snapshots()) or "none yet"
        raise LabkitError(f"There is no snapshot named {name!r} (saved snapshots: {known}).")
    replayed = replay(path.read_bytes())
    meta_path = path.with_suffix(".json")
    label = json.loads(meta_path.read_text()).get("state") if meta_path.exists() else None
    set_state_label(f"snapshot {name}" + (f" ({label})" if label else ""))
    return replayed
