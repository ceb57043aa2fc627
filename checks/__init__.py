"""The course grader.

In a notebook: ``checks.run("L01.02")`` (one check), ``checks.run("01")`` (a
lab) or ``checks.run("L01.01-L01.05")`` (a range); ``"01.3"`` is lab 01's step 3. In a terminal:
``python -m checks 01``. Checks only read; see ``checks.core``.
"""
from __future__ import annotations

import importlib
import os
import pkgutil
import re

from .core import (  # noqa: F401  (the public surface)
    LIVE_ONLY,
    REGISTRY,
    Report,
    Status,
    UnknownSelection,
    check,
    failed,
    grade,
    passed,
    select,
    skipped,
)

# One module (or package) per lab, found by name: adding a lab adds checks/labNN.py and nothing here.
LAB_MODULES = tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if re.fullmatch(r"lab\d\d", m.name)))
DEFAULT_DOCS_URL = "http://127.0.0.1:8000/"  # when no docs server recorded its port (labkit.docs)


def load_all() -> None:
    for name in LAB_MODULES:
        importlib.import_module(f"checks.{name}")


def docs_url(ref: str) -> str:
    """``labs/01-static-front-end.md#bucket-policy`` -> a link into the docs site."""
    from labkit.docs import recorded_url

    base = (os.environ.get("LABS_DOCS_URL") or recorded_url() or DEFAULT_DOCS_URL).rstrip("/") + "/"
    page, _, anchor = ref.partition("#")
    page = page.removesuffix(".md")
    page = "" if page == "index" else page + "/"
    return f"{base}{page}#{anchor}" if anchor else f"{base}{page}"


class Problem:
    """One sentence shown in place of a report when grading could not start."""

    def __init__(self, message: str):
        self.message = message

    def _repr_html_(self) -> str:
        from html import escape

        return f'<div style="color:#b00020"><b>Grading could not start:</b> {escape(self.message)}</div>'

    def __str__(self) -> str:
        return f"Grading could not start: {self.message}"

    __repr__ = __str__


def run(spec: str = "all", target=None, live: bool | None = None):
    """Grade from a notebook; returns a report that renders as a table."""
    from labkit.errors import LabkitError
    from labkit.target import Target

    from .core import preflight

    try:
        chosen = select(spec)
        target = target or Target.from_settings(live=live)
        preflight(target)
    except (UnknownSelection, LabkitError) as exc:
        return Problem(str(exc))
    return grade(chosen, target)
