"""A learner's filled notebooks survive course updates and notebook builds.

Layout: labs/ and solutions/ are generated and committed; the learner fills
copies in my-labs/ (git-ignored), made only where none exists. build-notebooks
also keeps a generated notebook that was edited after it was generated.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from labkit import mylabs
from labkit.authoring import notebooks

ROOT = Path(__file__).resolve().parent.parent


def _fill(path: Path, code: str) -> str:
    """Write ``code`` into the first TODO cell, with an output, as Jupyter would save it; returns the text."""
    nb = json.loads(path.read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code" and "NotImplementedError" in "".join(c["source"]))
    cell["source"] = [code]
    cell["execution_count"], cell["outputs"] = 7, [{"name": "stdout", "output_type": "stream", "text": ["mine\n"]}]
    text = json.dumps(nb, indent=1) + "\n"
    path.write_text(text)
    return text


def test_the_learners_folder_is_git_ignored_and_the_originals_are_not():
    assert shutil.which("git"), "git is needed to tell what a pull may touch"
    run = subprocess.run(["git", "check-ignore", "-q", "my-labs/01-static-front-end.ipynb"], cwd=ROOT)
    assert run.returncode == 0, "my-labs/ must be git-ignored, or a pull could conflict with a filled notebook"
    run = subprocess.run(["git", "check-ignore", "-q", "labs/01-static-front-end.ipynb"], cwd=ROOT)
    assert run.returncode == 1, "labs/ holds the committed originals"
    assert mylabs.MY_LABS == ROOT / "my-labs"


def test_copies_are_made_once_and_a_filled_copy_is_never_touched(tmp_path):
    originals, mine = tmp_path / "labs", tmp_path / "my-labs"
    shutil.copytree(notebooks.LABS_DIR, originals)
    told = mylabs.prepare(originals, mine)
    assert len(told) == len(notebooks.labs()) and all(line.startswith("made my-labs/") for line in told)
    filled = _fill(mine / "01-static-front-end.ipynb", "print('my own upload code')\n")
    assert mylabs.prepare(originals, mine) == []  # nothing new: nothing said, nothing written
    assert (mine / "01-static-front-end.ipynb").read_text() == filled
    # The course changes lab 01 (a pull): the copy stays, and the learner is told.
    nb = json.loads((originals / "01-static-front-end.ipynb").read_text())
    nb["cells"][0]["source"] = ["# Lab 01, revised\n"]
    (originals / "01-static-front-end.ipynb").write_text(json.dumps(nb, indent=1) + "\n")
    told = mylabs.prepare(originals, mine)
    assert (mine / "01-static-front-end.ipynb").read_text() == filled
    assert told == ["labs/01-static-front-end.ipynb changed in the course since your copy was made; your "
                    "my-labs/01-static-front-end.ipynb is kept as it is (open the original to see what is new)."]


def test_build_notebooks_twice_over_a_filled_notebook_loses_nothing(tmp_path):
    written = notebooks.build(root=tmp_path)
    assert len(written) == 2 * len(notebooks.labs())
    starter = tmp_path / "labs" / "01-static-front-end.ipynb"
    filled = _fill(starter, "print('filled by hand in labs/')\n")
    for _ in range(2):
        kept: list = []
        assert notebooks.build(root=tmp_path, kept=kept) == []
        assert kept == [starter]
        assert starter.read_text() == filled
    # A notebook generated from an older source, untouched since, is still brought up to date.
    solution = tmp_path / "solutions" / "01-static-front-end.ipynb"
    nb = json.loads(solution.read_text())
    nb["cells"][0]["source"] = ["# the course source as it was\n"]
    nb["metadata"]["course"]["generated"] = notebooks.fingerprint(nb["cells"])
    solution.write_text(json.dumps(nb, indent=1) + "\n")
    assert notebooks.build(root=tmp_path, kept=[]) == [solution]
    assert solution.read_text() == notebooks.render(notebooks.lab("01"), "solution")


def test_build_notebooks_says_which_notebooks_it_kept(tmp_path, monkeypatch, capsys):
    from labkit.__main__ import main

    monkeypatch.setattr(notebooks, "LABS_DIR", tmp_path / "labs")
    monkeypatch.setattr(notebooks, "SOLUTIONS_DIR", tmp_path / "solutions")
    assert main(["build-notebooks"]) == 0
    _fill(tmp_path / "labs" / "00-setup.ipynb", "print('mine')\n")
    capsys.readouterr()
    assert main(["build-notebooks"]) == 0
    out = capsys.readouterr().out
    assert "kept: " in out and "00-setup.ipynb" in out and "edited since it was generated" in out
