"""The learner's own notebooks: copies of ``labs/`` made on first use in ``my-labs/`` (git-ignored).

``labs/`` and ``solutions/`` are the course's generated, committed originals:
``git pull`` and ``labkit build-notebooks`` may change them. A learner fills
the copy in ``my-labs/`` instead, which neither ever touches: a copy is made
only where none exists, so a course update never conflicts with or
overwrites filled work. When the course's original of a lab changes after
its copy was made, ``make lab`` says so and keeps the copy.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from .authoring import notebooks
from .config import REPO_ROOT
from .errors import LabkitError

MY_LABS = REPO_ROOT / "my-labs"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _copied_from(copy: Path) -> str | None:
    """The digest of the original the copy was made from (kept in its metadata), or None."""
    try:
        return json.loads(copy.read_text(encoding="utf-8"))["metadata"]["course"].get("copied_from")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def prepare(originals: Path = notebooks.LABS_DIR, mine: Path = MY_LABS) -> list[str]:
    """Copy every lab notebook that has no copy in ``mine`` yet; never touches an existing copy.

    Returns one line per thing worth telling: the copies made, and the labs whose original changed
    since their copy was made."""
    told = []
    try:
        mine.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LabkitError(f"Cannot create {mine} for your notebooks ({exc.strerror}).") from None
    for original in sorted(originals.glob("[0-9][0-9]-*.ipynb")):
        copy = mine / original.name
        digest = _digest(original)
        if copy.exists():
            if _copied_from(copy) not in (None, digest):
                told.append(f"{original.parent.name}/{original.name} changed in the course since your copy was made; "
                            f"your {mine.name}/{copy.name} is kept as it is (open the original to see what is new).")
            continue
        try:
            nb = json.loads(original.read_text(encoding="utf-8"))
            nb.setdefault("metadata", {}).setdefault("course", {})["copied_from"] = digest
            text = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
        except ValueError:  # not JSON (a damaged original): copy the bytes, Jupyter will say what is wrong
            shutil.copyfile(original, copy)
        else:
            partial = copy.with_name(f".{copy.name}.partial")
            partial.write_text(text, encoding="utf-8")
            try:
                os.link(partial, copy)  # whole or not at all, and never over a copy that appeared meanwhile
            except FileExistsError:
                continue
            finally:
                partial.unlink()
        told.append(f"made {mine.name}/{copy.name} (yours to fill in) from {original.parent.name}/{original.name}")
    return told
