"""Snapshots: copies of the journal under ``<state dir>/snapshots/``, kept so that nothing is lost.

A snapshot is ``NAME.ndjson`` (journal lines) and ``NAME.json`` (its meta:
state label, time, writes, size and digest). Both are written owner-only and
atomically, the lines first and the meta last, and the lines are checked to
be journal entries before the meta is written: a snapshot without a meta
that matches its lines (a 0-byte, cut or edited file) is not listed and does
not restore; one whose note is missing or damaged is judged by its lines alone. Used by ``control`` (save, restore) and by the
server itself, which keeps the state before a reset or a replay empties it.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

from ..config import private_dir, write_private
from ..errors import LabkitError
from .journal import parse_lines

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def folder(state_dir: Path) -> Path:
    return private_dir(state_dir / "snapshots")


def _lines(where: Path, name: str) -> Path:
    if not NAME.match(name or ""):
        raise LabkitError(f"{name!r} is not a snapshot name; use letters, digits, '.', '_' or '-' (up to 64).")
    return where / f"{name}.ndjson"


def problem(data: bytes) -> str | None:
    """Why ``data`` is not a whole journal, or None when every line is a journal entry."""
    if not data.strip():
        return "it is empty"
    for number, _, entry, _ in parse_lines(data):
        if entry is None:
            return f"line {number} is not a journal entry"
    return None


def write(where: Path, name: str, data: bytes, state: str = "unknown", force: bool = False) -> Path:
    """Keep ``data`` as snapshot ``name``; refuses an existing name unless ``force``."""
    path = _lines(where, name)
    meta = path.with_suffix(".json")
    if not force and (path.exists() or meta.exists()):
        raise LabkitError(f"There is already a snapshot named {name!r}; choose another name, or add --force to replace it.")
    why = problem(data)
    if why:
        raise LabkitError(f"The state was not saved as snapshot {name!r} because {why}.")
    meta.unlink(missing_ok=True)  # while the lines change, the snapshot is not listed
    write_private(path, data)
    write_private(meta, json.dumps({"state": state, "saved": time.time(), "writes": data.count(b"\n"),
                                    "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                                    "mtime_ns": path.stat().st_mtime_ns}) + "\n")
    return path


def _meta(path: Path) -> dict | None:
    try:
        meta = json.loads(path.with_suffix(".json").read_text())
        return meta if isinstance(meta, dict) else None
    except (OSError, ValueError):
        return None


def _listed(path: Path) -> bool:
    meta = _meta(path)
    try:
        size = path.stat().st_size
    except OSError:
        return False
    if not size:
        return False
    if meta is None:  # lines written whole, note lost (a crash between them, a damaged note): the lines decide
        try:
            return problem(path.read_bytes()) is None
        except OSError:
            return False
    try:
        if "sha256" in meta:
            if meta.get("bytes") != size:
                return False
            if meta.get("mtime_ns") == path.stat().st_mtime_ns:
                return True  # untouched since it was checked whole and written (the cheap, usual case)
            return hashlib.sha256(path.read_bytes()).hexdigest() == meta["sha256"]  # copied, or edited
        return problem(path.read_bytes()) is None  # an older snapshot without a digest: check its lines
    except OSError:
        return False


def names(where: Path) -> list[str]:
    return sorted(p.stem for p in where.glob("*.ndjson") if _listed(p))


def read(where: Path, name: str) -> tuple[bytes, dict]:
    """The snapshot's lines and meta, checked whole; one sentence when it is missing or damaged."""
    path = _lines(where, name)
    if not path.exists():
        known = ", ".join(names(where)) or "none yet"
        raise LabkitError(f"There is no snapshot named {name!r} (saved snapshots: {known}).")
    data = path.read_bytes()
    meta = _meta(path) or {}
    why = problem(data)
    if why is None and "sha256" in meta and hashlib.sha256(data).hexdigest() != meta["sha256"]:
        why = "it changed after it was saved"
    if why:
        raise LabkitError(f"Snapshot {name!r} is damaged ({why}), so it was not restored; your current state is unchanged.")
    return data, meta


def holding(where: Path, data: bytes) -> str | None:
    """The listed snapshot that already holds exactly ``data``, if any: keeping it again under
    another name would only overwrite an older kept state."""
    digest = hashlib.sha256(data).hexdigest()
    for path in sorted(where.glob("*.ndjson")):
        meta = _meta(path)
        if meta and meta.get("sha256") == digest and meta.get("bytes") == len(data) and _listed(path):
            return path.stem
    return None


def keep_before(state_dir: Path, name: str, data: bytes) -> str | None:
    """Keep a non-empty state about to be replaced as snapshot ``name`` (overwriting an older one of
    that name) unless a snapshot already holds it; returns the snapshot that holds it. Raises OSError
    if it cannot be written, and then the caller must not replace the state."""
    if not data.strip():
        return None
    where = folder(state_dir)
    held = holding(where, data)
    if held:
        return held
    try:
        state = json.loads((state_dir / "server.json").read_text()).get("state", "unknown")
    except (OSError, ValueError, AttributeError):
        state = "unknown"
    if problem(data):  # not a whole journal (cannot happen by append): kept anyway, never listed
        write_private(where / f"{name}.damaged", data)
        return None
    write(where, name, data, state=state, force=True)
    return name
