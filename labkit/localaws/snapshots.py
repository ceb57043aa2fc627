"""Snapshots: copies of the journal under ``<state dir>/snapshots/``, kept so that nothing is lost.

A snapshot is ``NAME.ndjson`` (journal lines) and ``NAME.json`` (its meta:
state label, time, writes, size and digest), and, when the state was large
enough to have one, ``NAME.checkpoint``: the checkpoint it was saved from, so
a restore loads it instead of replaying every line (it is checked against the
lines before it is trusted, and ignored when it does not match). Both are written owner-only and
atomically, the lines first and the meta last, and the lines are checked to
be journal entries before the meta is written: a snapshot without a meta
that matches its lines (a 0-byte, cut or edited file) is not listed and does
not restore; one whose note is missing or damaged is judged by its lines alone. Used by ``control`` (save, restore) and by the
server itself, which keeps the state before a reset or a replay empties it.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path

from ..config import private_dir, write_private
from ..errors import LabkitError
from .journal import parse_lines

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def folder(state_dir: Path) -> Path:
    return private_dir(state_dir / "snapshots")


def lines_path(where: Path, name: str) -> Path:
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
    path = lines_path(where, name)
    meta = path.with_suffix(".json")
    if not force and (path.exists() or meta.exists()):
        raise LabkitError(f"There is already a snapshot named {name!r}; choose another name, or add --force to replace it.")
    why = problem(data)
    if why:
        raise LabkitError(f"The state was not saved as snapshot {name!r} because {why}.")
    meta.unlink(missing_ok=True)  # while the lines change, the snapshot is not listed
    checkpoint_of(where, name).unlink(missing_ok=True)  # it belonged to the lines being replaced
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
    path = lines_path(where, name)
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


def state_label(state_dir: Path) -> str:
    """The label of the state the local AWS holds now (``labkit status`` shows it)."""
    try:
        label = json.loads((state_dir / "server.json").read_text()).get("state", "unknown")
    except (OSError, ValueError, AttributeError):
        return "unknown"
    return label if isinstance(label, str) else "unknown"


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
    state = state_label(state_dir)
    if problem(data):  # not a whole journal (cannot happen by append): kept anyway, never listed
        keep_damaged(where, name, data)
        return None
    write(where, name, data, state=state, force=True)
    return name


def keep_damaged(where: Path, name: str, data: bytes) -> Path:
    """Keep lines that are not a whole journal as ``NAME.damaged``: nothing is thrown away, but
    they are never listed or restored."""
    return write_private(where / f"{name}.damaged", data)


def data_of(where: Path, name: str) -> Path:
    """The folder of engine data saved with snapshot ``name`` (``NAME.data/<extension>/``)."""
    return where / f"{name}.data"


def checkpoint_of(where: Path, name: str) -> Path:
    return where / f"{name}.checkpoint"


def attach_checkpoint(where: Path, name: str, source: Path) -> None:
    """Keep the checkpoint ``source`` beside snapshot ``name`` (a hard link: no copy, and the
    journal's own later compactions cannot remove it)."""
    target = checkpoint_of(where, name)
    try:
        if target.exists() and os.path.samefile(source, target):
            return  # kept already (renaming a link over itself would leave the link aside)
    except OSError:
        pass
    aside = target.with_name(f".{target.name}.tmp")
    aside.unlink(missing_ok=True)
    try:
        os.link(source, aside)
    except OSError:
        write_private(aside, source.read_bytes())
    os.replace(aside, target)
