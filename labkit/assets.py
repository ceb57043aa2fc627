"""Files the labs hand to the learner (the single-page app for lab 01, ...)."""
from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
SITE_DIR = ASSETS / "site"


# The Content-Type each site file is uploaded with: what browsers expect. The HTML standard names
# text/javascript the one type for scripts (application/javascript is obsolete), and a module
# script with the wrong type is refused; the lab text, the check and its hint all read this table.
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


def content_type(path: Path) -> str:
    """The Content-Type to upload ``path`` with (``CONTENT_TYPES``), else S3's default for unknown bytes."""
    return CONTENT_TYPES.get(path.suffix, "application/octet-stream")


def site_files() -> list[Path]:
    """The single-page app's files, in a stable order."""
    return sorted(p for p in SITE_DIR.rglob("*") if p.is_file())


LAB04_DIR = ASSETS / "lab04"


def lab04_orders() -> list[dict]:
    """Lab 04's provided orders, oldest first (see assets/lab04/generate.py)."""
    import json

    with open(LAB04_DIR / "orders.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]


def lab04_stock() -> list[dict]:
    """Lab 04's provided stock levels, one entry per SKU."""
    import json

    return json.loads((LAB04_DIR / "stock.json").read_text())
