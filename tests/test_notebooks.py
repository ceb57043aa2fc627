"""The lab notebooks: in sync with their sources, no leaked solutions, starters score less.

The solutions themselves run under nbval (``pytest --nbval-lax``, see tests/solution_notebooks.py).
"""
from __future__ import annotations

import json

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from checks import Status, grade, select
from labkit.authoring import notebooks
from labkit.target import Target

LABS = notebooks.labs()
IDS = [lab.name for lab in LABS]


def test_committed_notebooks_match_their_sources():
    stale = notebooks.build(check_only=True)
    assert stale == [], f"stale notebooks {stale}: run `python -m labkit build-notebooks`"


@pytest.mark.parametrize("lab", LABS, ids=IDS)
def test_starters_hold_no_solution_text(lab):
    source = lab.path.read_text()
    blocks = notebooks.solution_blocks(source)
    assert blocks, f"{lab.name} has no solution blocks"
    starter = notebooks.notebook_path(lab, "starter").read_text()
    code = "\n".join("".join(c["source"]) for c in json.loads(starter)["cells"] if c["cell_type"] == "code")
    given = {line.strip() for line in notebooks.starter_code(source).splitlines()}  # text outside the blocks
    leaked = [line.strip() for block in blocks for line in block.splitlines()
              if len(line.strip()) > 6 and line.strip() not in given and line.strip() in code]
    assert leaked == []
    assert code.count("raise NotImplementedError") == len(blocks)
    assert notebooks.BEGIN not in starter and notebooks.END not in starter


def test_starter_code_replaces_each_block_with_its_todo():
    src = "x = 1\n# TODO: make y\n# BEGIN SOLUTION\ny = 2\n# END SOLUTION\nprint(y)"
    out = notebooks.starter_code(src)
    assert "# TODO: make y\n" + notebooks.STARTER_RAISE in out and "y = 2" not in out and "print(y)" in out
    assert notebooks.solution_code(src) == "x = 1\n# TODO: make y\ny = 2\nprint(y)"


def _execute(path, expect_error=False):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    if expect_error:
        with pytest.raises(CellExecutionError) as err:
            client.execute()
        assert "NotImplementedError" in str(err.value)
    else:
        client.execute()
    return nb


@pytest.mark.server
@pytest.mark.notebooks
@pytest.mark.parametrize("lab", LABS, ids=IDS)
def test_starters_stop_at_their_first_todo_and_score_less(local, lab):
    from labkit.starts import start

    start(lab.number)
    _execute(notebooks.notebook_path(lab, "starter"), expect_error=True)
    report = grade(select(lab.number), Target("local"))
    assert report.earned < report.possible
    assert report.count(Status.ERROR) == 0


def test_docs_view_of_each_notebook_links_into_the_site():
    for lab in LABS:
        page = notebooks.notebook_markdown(lab)
        assert "](../site/" not in page and "NotImplementedError" in page
