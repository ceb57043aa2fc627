"""Verdicts remembered by content: a slow judgement of unchanged input is asked once.

The grader remembers, for example, whether a contract is valid OpenAPI or how
a learner's write functions behaved, keyed by a digest of everything the
verdict depends on. Remembering is an optimisation only: an unreadable or
unwritable store just means computing again.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Callable

from .config import state_dir, write_private

KEEP = 50  # a learner's recent versions; the file stays small


def digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()


def code_digest(*packages: str) -> str:
    """A digest of every Python file of the named packages, subpackages included (path and content)."""
    import importlib.util
    from pathlib import Path

    h = hashlib.sha256()
    for name in packages:
        root = Path(importlib.util.find_spec(name).origin).parent
        for path in sorted(root.rglob("*.py")):
            h.update(f"{name}/{path.relative_to(root)}".encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def remembered(store: str, key: str, compute: Callable[[], Any]) -> Any:
    """``compute()`` (a JSON value), remembered under ``key`` in the state folder's ``store``."""
    path = state_dir() / store
    try:
        verdicts = json.loads(path.read_text())
    except (OSError, ValueError):
        verdicts = {}
    if key not in verdicts:
        verdicts[key] = compute()
        try:
            write_private(path, json.dumps(dict(list(verdicts.items())[-KEEP:])))
        except OSError:
            pass
    return verdicts[key]
