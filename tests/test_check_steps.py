"""Every check declares the notebook step that grades it, and the notebooks' check cells agree.

A step is a lab's numbered heading (``## 3. The REST API``). Each step's check
cells run only that step's checks, each check is run in exactly one check
cell of the step it declares, and a cell that grades the whole lab stands
outside every step (after "What you built"). So "the check for lab 04 step 3"
is ``python -m checks 04.3``, and the notebook shows it where step 3 ends.
"""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections import Counter

import pytest

import checks
from checks.core import REGISTRY, UnknownSelection, select
from labkit.authoring import notebooks

LABS = notebooks.labs()
STEP_HEADING = re.compile(r"^## (?:(\d+)\.|\S)", re.M)  # "## 3. Title" opens step 3; any other "## " closes it


def check_cells(cells: list[tuple[str, str]]) -> list[tuple[int | None, list[str]]]:
    """(the step it sits in, or None, and the specs it runs) for each check cell of (kind, source) cells."""
    step, found = None, []
    for kind, source in cells:
        if kind == "markdown":
            for heading in STEP_HEADING.finditer(source):
                step = int(heading.group(1)) if heading.group(1) else None
        elif notebooks.CHECK_CALL.search(source):
            specs = [node.args[0].value for node in ast.walk(ast.parse(source))
                     if isinstance(node, ast.Call) and ast.unparse(node.func) == "checks.run"
                     and node.args and isinstance(node.args[0], ast.Constant)]
            found.append((step, specs))
    return found


def disagreements(lab: str, cells: list[tuple[str, str]]) -> list[str]:
    """One sentence per way the lab's check cells and its checks' declared steps disagree."""
    out, runs = [], Counter()
    for step, specs in check_cells(cells):
        for spec in specs:
            chosen = select(spec)
            if step is None:
                if spec != lab:
                    out.append(f"lab {lab}: the cell running {spec!r} is outside every step; only a cell grading "
                               f"the whole lab ({lab!r}) belongs there.")
                continue
            for c in chosen:
                runs[c.id] += 1
                if (c.lab, c.step) != (lab, step):
                    out.append(f"lab {lab}: step {step}'s check cell runs {c.id}, which declares lab {c.lab} "
                               f"step {c.step}.")
    for c in (c for c in REGISTRY.values() if c.lab == lab):
        if runs[c.id] != 1:
            out.append(f"lab {lab}: {c.id} (step {c.step}) is run by {runs[c.id]} check cells of its step, not one.")
    return out


def _cells(path) -> list[tuple[str, str]]:
    return [(c["cell_type"], "".join(c["source"])) for c in json.loads(path.read_text())["cells"]]


@pytest.mark.parametrize("lab", LABS, ids=[lab.name for lab in LABS])
def test_each_step_runs_exactly_its_own_checks(lab):
    assert disagreements(lab.number, _cells(notebooks.notebook_path(lab, "starter"))) == []


def test_every_lab_with_checks_has_a_notebook():
    checks.load_all()
    assert {c.lab for c in REGISTRY.values()} <= {lab.number for lab in LABS}


def test_a_check_cell_in_the_wrong_step_is_caught():
    checks.load_all()
    good = [("markdown", "## 1. The bucket"), ("code", 'checks.run("L01.01-L01.03")'),
            ("markdown", "## 2. Files"), ("code", 'checks.run("L01.04")'),
            ("markdown", "## 3. CDN"), ("code", 'checks.run("L01.05-L01.10")'),
            ("markdown", "## 4. Policy"), ("code", 'checks.run("L01.11-L01.13")'),
            ("markdown", "## What you built"), ("code", 'checks.run("01")')]
    assert disagreements("01", good) == []
    moved = good[:3] + [("code", 'checks.run("L01.04-L01.05")')] + good[4:]  # L01.05 run in step 2 as well
    found = disagreements("01", moved)
    assert any("step 2's check cell runs L01.05" in f for f in found)
    assert any("L01.05 (step 3) is run by 2" in f for f in found)
    missing = good[:7] + good[8:]  # step 4's cell gone: only the whole-lab cell runs its checks
    assert any("L01.11 (step 4) is run by 0" in f for f in disagreements("01", missing))
    whole_lab_in_a_step = good[:7] + [("code", 'checks.run("01")')] + good[8:]
    assert any("L01.01, which declares lab 01 step 1" in f for f in disagreements("01", whole_lab_in_a_step))
    assert any("outside every step" in f for f in disagreements("01", good + [("code", 'checks.run("L01.04")')]))


# -- the declaration ---------------------------------------------------------------------

def test_every_check_declares_a_step_its_lab_has():
    checks.load_all()
    for c in REGISTRY.values():
        source = notebooks.lab(c.lab).text()
        assert re.search(rf"^# ## {c.step}\. ", source, re.M), f"{c.id} declares step {c.step}, which lab {c.lab} lacks"


@pytest.mark.parametrize("step", [None, 0, -1, True, "3", 2.0])
def test_registering_without_a_positive_whole_step_is_refused(step):
    kw = {} if step is None else {"step": step}
    with pytest.raises(ValueError, match="L99.03.*step"):
        checks.check("L99.03", "no step", points=1, hint="h", docs="index.md#x", **kw)
    assert "L99.03" not in REGISTRY


def test_the_declared_step_is_kept_on_the_check():
    try:
        checks.check("L99.04", "a step", step=7, points=1, hint="h", docs="index.md#x")(lambda t: None)
        assert REGISTRY["L99.04"].step == 7
    finally:
        REGISTRY.pop("L99.04", None)


# -- selecting by step ---------------------------------------------------------------------

@pytest.mark.parametrize("spec", ["04.3", "4.3", "04.03", "lab04.3", " 04.3 "])
def test_a_step_selects_the_checks_it_declares(spec):
    checks.load_all()
    expected = [c.id for c in REGISTRY.values() if c.lab == "04" and c.step == 3]
    assert expected and [c.id for c in select(spec)] == sorted(expected)


def test_a_comma_list_selects_each_part_once_in_id_order():
    assert [c.id for c in select("L03.07, L03.05,L03.05")] == ["L03.05", "L03.07"]
    assert [c.id for c in select("03.5")] == ["L03.05", "L03.07"]


@pytest.mark.parametrize("spec,words", [("04.4", "graded steps are 1, 2, 3, 5"), ("09.1", "no lab '09'"),
                                        ("04.0", "no checks in step 0"), ("L01.01,,L01.02", "empty entry")])
def test_a_bad_step_or_list_is_one_sentence(spec, words):
    with pytest.raises(UnknownSelection, match=re.escape(words)) as err:
        select(spec)
    assert str(err.value).count(". ") == 0 and "\n" not in str(err.value)


def test_the_catalogue_and_list_show_steps_in_course_order():
    from checks.catalogue import catalogue_markdown

    catalogue = catalogue_markdown()
    lab03 = catalogue[catalogue.index("## Lab 03"):catalogue.index("## Lab 04")]
    assert "| 4 | `L03.06` |" in lab03 and lab03.index("`L03.06`") < lab03.index("`L03.05`")
    listed = subprocess.run([sys.executable, "-m", "checks", "--list", "03"], capture_output=True, text=True, check=True,
                            cwd=notebooks.REPO_ROOT)
    rows = listed.stdout.splitlines()
    assert rows[4].startswith("L03.06  step 4 ") and rows[5].startswith("L03.05  step 5 ")
