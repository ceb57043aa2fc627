"""Files the labs hand to the learner (the single-page app for lab 01, ...)."""
from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
SITE_DIR = ASSETS / "site"


def site_files() -> list[Path]:
    """The single-page app's files, in a stable order."""
    return sorted(p for p in SITE_DIR.rglob("*") if p.is_file())
