"""Lab sources -> starter and solution notebooks, and lab start states.

Each lab has one source, ``course/NN-slug.py``, in Jupytext's percent format
(``# %%`` code cells, ``# %% [markdown]`` text cells). Solution code sits
between ``# BEGIN SOLUTION`` and ``# END SOLUTION``; the ``# TODO:`` lines
just above a block tell the learner what to write. The solution notebook
drops the markers; the starter replaces each block with one
``raise NotImplementedError`` line.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import LabkitError
from ..config import REPO_ROOT

SOURCES = REPO_ROOT / "course"
LABS_DIR = REPO_ROOT / "labs"
SOLUTIONS_DIR = REPO_ROOT / "solutions"
BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
CHECK_CALL = re.compile(r"^\s*checks\.run\(", re.M)


@dataclass
class Cell:
    kind: str  # "code" or "markdown"
    source: str


@dataclass
class Lab:
    number: str
    slug: str
    path: Path

    @property
    def name(self) -> str:
        return f"{self.number}-{self.slug}"

    def cells(self) -> list[Cell]:
        return parse(self.text())

    @property
    def title(self) -> str:
        """The lab's title as its notebook's heading spells it (``# Lab 02: API first`` -> ``API first``).

        The heading, not the file name: a slug cannot spell API or DynamoDB.
        """
        found = re.search(rf"^# # Lab {self.number}: (.+)$", self.text(), re.M)
        return found.group(1).strip() if found else self.slug.replace("-", " ").capitalize()

    def text(self) -> str:
        """The source, or one sentence naming it when it is not a readable UTF-8 text file."""
        where = f"course/{self.path.name}"
        try:
            return self.path.read_text(encoding="utf-8")
        except IsADirectoryError:
            raise LabkitError(f"{where} is a folder, not a lab source; remove it or rename it.") from None
        except UnicodeDecodeError:
            raise LabkitError(f"{where} is not UTF-8 text (a binary file?); restore it with `git checkout {where}`.") from None
        except OSError as exc:
            raise LabkitError(f"{where} cannot be read ({exc.strerror}).") from None


def labs() -> list[Lab]:
    found = []
    for path in sorted(SOURCES.glob("[0-9][0-9]-*.py")):
        number, slug = path.stem.split("-", 1)
        found.append(Lab(number, slug, path))
    return found


def lab(number: str) -> Lab:
    # ASCII digits only: "²".isdigit() is true, and int() refuses it.
    key = f"{int(number):02d}" if re.fullmatch(r"[0-9]{1,3}", str(number)) else str(number)
    for item in labs():
        if item.number == key:
            return item
    raise LabkitError(f"There is no lab {number!r}; the labs are {', '.join(l.number for l in labs())}.")


# -- parsing ------------------------------------------------------------------

def parse(text: str) -> list[Cell]:
    cells: list[Cell] = []
    kind, lines = None, []

    def flush():
        if kind is not None:
            body = "\n".join(lines).strip("\n")
            if kind == "markdown":
                body = "\n".join(_unmark(l) for l in body.splitlines())
            if body.strip():
                cells.append(Cell(kind, body))

    for line in text.splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        elif kind is not None:
            lines.append(line)
    flush()
    return cells


def _unmark(line: str) -> str:
    if line.startswith("# "):
        return line[2:]
    return "" if line.strip() == "#" else line


def solution_code(source: str) -> str:
    return "\n".join(l for l in source.splitlines() if l.strip() not in (BEGIN, END))


STARTER_RAISE = 'raise NotImplementedError("your code goes here: see the TODO above")'


def starter_code(source: str) -> str:
    out, inside = [], False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}{STARTER_RAISE}")
        elif stripped == END:
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError("a # BEGIN SOLUTION block has no # END SOLUTION")
    return "\n".join(out)


def solution_blocks(source: str) -> list[str]:
    blocks, current = [], None
    for line in source.splitlines():
        if line.strip() == BEGIN:
            current = []
        elif line.strip() == END:
            blocks.append("\n".join(current or []))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


# -- notebooks -------------------------------------------------------------------

def notebook(lab_: Lab, variant: str) -> dict:
    """The notebook JSON for ``variant`` 'starter' or 'solution' (deterministic)."""
    cells = []
    for index, cell in enumerate(lab_.cells()):
        source = cell.source
        if cell.kind == "code":
            try:
                source = solution_code(source) if variant == "solution" else starter_code(source)
            except ValueError as exc:
                raise LabkitError(f"course/{lab_.path.name}: {exc}.") from None
        cell_id = hashlib.sha1(f"{lab_.name}/{index}".encode()).hexdigest()[:12]
        entry = {"cell_type": cell.kind, "id": cell_id, "metadata": {}, "source": _lines(source)}
        if cell.kind == "code":
            entry.update(execution_count=None, outputs=[])
        cells.append(entry)
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
            "course": {"lab": lab_.number, "variant": variant, "source": f"course/{lab_.path.name}"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    return lines


def notebook_path(lab_: Lab, variant: str) -> Path:
    return (LABS_DIR if variant == "starter" else SOLUTIONS_DIR) / f"{lab_.name}.ipynb"


def render(lab_: Lab, variant: str) -> str:
    return json.dumps(notebook(lab_, variant), indent=1, ensure_ascii=False) + "\n"


def build(check_only: bool = False) -> list[Path]:
    """Write every lab's notebooks; with check_only, return the stale ones instead."""
    stale = []
    for item in labs():
        for variant in ("starter", "solution"):
            path = notebook_path(item, variant)
            text = render(item, variant)
            if path.is_dir():
                raise LabkitError(f"{path.relative_to(REPO_ROOT)} is a folder where the notebook goes; remove it and build again.")
            if not path.exists() or _read_or_none(path) != text:
                stale.append(path)
                if not check_only:
                    path.parent.mkdir(exist_ok=True)
                    path.write_text(text, encoding="utf-8")
    return stale


def _read_or_none(path: Path) -> str | None:
    """A built notebook's text; one that is not UTF-8 (damaged) is simply stale, and rewritten."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None


# -- lab start states ------------------------------------------------------------

def run_solution(lab_: Lab) -> None:
    """Execute a lab's solution code in-process (check cells skipped): its end state."""
    namespace: dict = {"__name__": f"lab{lab_.number}"}
    for cell in lab_.cells():
        if cell.kind != "code" or CHECK_CALL.search(cell.source):
            continue
        code = solution_code(cell.source)
        exec(compile(code, f"{lab_.path.name}", "exec"), namespace)


# -- the docs' view of a lab -------------------------------------------------------

def notebook_markdown(lab_: Lab) -> str:
    """The starter notebook as a docs page (links rewritten for the site)."""
    nb = notebook(lab_, "starter")
    parts = []
    for index, cell in enumerate(nb["cells"]):
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            text = text.replace("](../site/", "](../").replace(".ipynb)", ".md)")
            parts.append(text)
            if index == 0:
                parts.append(f'!!! info "This page is the starter notebook"\n    Open `labs/{lab_.name}.ipynb` in '
                             "JupyterLab (`make lab`) to work through it; the `TODO` cells are yours to write.")
        else:
            parts.append(f"```python\n{text}\n```")
    return "\n\n".join(parts) + "\n"
