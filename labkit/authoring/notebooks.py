"""Lab sources -> starter and solution notebooks, and lab start states.

Each lab has one source, ``course/NN-slug.py``, in Jupytext's percent format
(``# %%`` code cells, ``# %% [markdown]`` text cells). Solution code sits
between ``# BEGIN SOLUTION`` and ``# END SOLUTION``; the ``# TODO:`` lines
just above a block tell the learner what to write. The solution notebook
drops the markers; the starter replaces each block with one
``raise NotImplementedError`` line.

A code cell whose output must stay stable starts with ``# NBVAL_CHECK_OUTPUT``
and is followed by a ``# %% [output]`` cell holding that output: the solution
notebook stores it, and the self-test (``pytest --nbval-lax``) compares it.
The starter drops the marker (a learner's output is theirs).
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
CHECK_OUTPUT = "# NBVAL_CHECK_OUTPUT"
CHECK_CALL = re.compile(r"^\s*checks\.run\(", re.M)


@dataclass
class Cell:
    kind: str  # "code", "markdown" or "output" (the expected output of the code cell before it)
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
            if kind in ("markdown", "output"):
                body = "\n".join(_unmark(l) for l in body.splitlines())
            if body.strip():
                cells.append(Cell(kind, body))

    for line in text.splitlines():
        if line.startswith("# %%"):
            flush()
            kind = "markdown" if "[markdown]" in line else "output" if "[output]" in line else "code"
            lines = []
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
    cells, previous = [], None
    for index, cell in enumerate(lab_.cells()):
        source, before, previous = cell.source, previous, cell
        if cell.kind == "output":
            if before is None or before.kind != "code" or not before.source.startswith(CHECK_OUTPUT):
                raise LabkitError(f"course/{lab_.path.name}: an [output] cell must follow a code cell that starts with "
                                  f"{CHECK_OUTPUT}.")
            if variant == "solution":
                # A stored output needs an execution count, or nbval takes the cell for one never run.
                number = sum(c["cell_type"] == "code" for c in cells)
                cells[-1].update(execution_count=number, outputs=[
                    {"name": "stdout", "output_type": "stream", "text": _lines(source + "\n")}])
            continue
        if cell.kind == "markdown":
            source = concept_links(source)
        if cell.kind == "code":
            try:
                source = solution_code(source) if variant == "solution" else _unchecked(starter_code(source))
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


DOCS_PATH = "/labkit-docs/"  # where JupyterLab serves the built site (labkit.jupyter)
SITE_LINK = re.compile(r"\]\(\.\./site/([^)#]*?)(?:index)?\.md(#[^)]*)?\)")


def concept_links(markdown: str) -> str:
    """``](../site/labs/01-x.md#a)`` -> ``](/labkit-docs/labs/01-x/#a)``: the rendered page, not the Markdown.

    A root-relative link is no file to JupyterLab, so it opens in the browser, where ``make lab`` serves the site."""
    return SITE_LINK.sub(lambda m: f"]({DOCS_PATH}{m.group(1).rstrip('/') + '/' if m.group(1) else ''}{m.group(2) or ''})",
                         markdown)


def _unchecked(code: str) -> str:
    return code.removeprefix(CHECK_OUTPUT + "\n") if code.startswith(CHECK_OUTPUT) else code


def _lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    return lines


def notebook_path(lab_: Lab, variant: str, root: Path | None = None) -> Path:
    folder = LABS_DIR if variant == "starter" else SOLUTIONS_DIR
    return (root / folder.name if root else folder) / f"{lab_.name}.ipynb"


def fingerprint(cells: list) -> str:
    """A digest of a notebook's cells, stored in what build writes: an edit afterwards no longer matches it."""
    return hashlib.sha256(json.dumps(cells, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def render(lab_: Lab, variant: str) -> str:
    nb = notebook(lab_, variant)
    nb["metadata"]["course"]["generated"] = fingerprint(nb["cells"])
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def edited_since_generated(path: Path) -> bool:
    """True when the notebook at ``path`` is not what build wrote there (someone filled or edited it)."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        made = nb["metadata"]["course"]["generated"]
        return fingerprint(nb["cells"]) != made
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        return False  # damaged, or written before fingerprints: nothing of a learner's to keep there
    except OSError:
        return False


def build(check_only: bool = False, root: Path | None = None, kept: list[Path] | None = None) -> list[Path]:
    """Write every lab's notebooks (under ``root``, default the repository); with check_only, return the
    stale ones instead. A notebook edited since it was generated is never overwritten: it goes on ``kept``."""
    stale = []
    for item in labs():
        for variant in ("starter", "solution"):
            path = notebook_path(item, variant, root)
            text = render(item, variant)
            if path.is_dir():
                raise LabkitError(f"{_shown(path)} is a folder where the notebook goes; remove it and build again.")
            if not path.exists() or _read_or_none(path) != text:
                if not check_only and edited_since_generated(path):
                    if kept is not None:
                        kept.append(path)
                    continue
                stale.append(path)
                if not check_only:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(text, encoding="utf-8")
    return stale


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


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
    parts = []
    for index, cell in enumerate(c for c in lab_.cells() if c.kind != "output"):
        text = cell.source if cell.kind == "markdown" else _unchecked(starter_code(cell.source))
        if cell.kind == "markdown":
            text = text.replace("](../site/", "](../").replace(".ipynb)", ".md)")
            parts.append(text)
            if index == 0:
                parts.append(f'!!! info "This page is the starter notebook"\n    Open `my-labs/{lab_.name}.ipynb` in '
                             "JupyterLab (`make lab` makes your copy from `labs/`) to work through it; the `TODO` cells "
                             "are yours to write.")
        else:
            parts.append(f"```python\n{text}\n```")
    return "\n\n".join(parts) + "\n"
