"""A learner can finish every starter from its TODOs: nothing later code needs is made only inside a solution."""
from __future__ import annotations

import pytest

from labkit.authoring import notebooks
from labkit.authoring.starters import problems

LABS = notebooks.labs()


@pytest.mark.parametrize("lab", LABS, ids=[lab.name for lab in LABS])
def test_every_starter_todo_names_what_later_code_needs(lab):
    assert problems(lab.text(), f"course/{lab.path.name}") == []


def source(*cells: str) -> str:
    return "".join(f"# %%\n{cell.strip()}\n\n" for cell in cells)


SOLVED = "# BEGIN SOLUTION\n{body}\n# END SOLUTION"


def test_a_variable_made_only_in_a_solution_and_used_later_is_caught():
    made = "# TODO: look the distribution up.\n" + SOLVED.format(body='distribution_arn = lookup()["ARN"]')
    used_later = "# TODO: write the policy.\n" + SOLVED.format(body="put_policy(distribution_arn)")
    found = problems(source(made, used_later), "lab")
    assert len(found) == 1 and "`distribution_arn`" in found[0] and "look the distribution up" in found[0]
    # Visible code counts too, and a name the TODO asks for, or one made outside the block, is fine.
    assert problems(source(made, "print(distribution_arn)"), "lab") != []
    assert problems(source(made.replace("look the distribution up", "set distribution_arn to the distribution's ARN"),
                           used_later)) == []
    assert problems(source("distribution_arn = None\n" + made, used_later)) == []


def test_a_plain_word_in_prose_does_not_count_as_asking_for_it():
    made = "# TODO: set a strong password.\n" + SOLVED.format(body='password = "x" * 30')
    assert problems(source(made, "login(password)")) != []
    for asked in ("set `password`", "set a strong one (password)", "set the (user, password) pair"):
        assert problems(source(made.replace("set a strong password", asked), "login(password)")) == [], asked


def test_functions_imports_and_scopes():
    made = "# TODO: write the helper.\n" + SOLVED.format(body="import zlib\ndef helper(x):\n    y = x\n    return y")
    found = problems(source(made, "helper(zlib.crc32(b''))"))
    assert any("`zlib`" in f for f in found) and not any("`y`" in f or "`x`" in f for f in found)
    assert problems(source(made.replace("write the helper", "write helper(x), importing `zlib`"),
                           "helper(zlib.crc32(b''))")) == []
    # A name local to a function or a comprehension outside the block is not a use of the block's name.
    loop = "# TODO: count.\n" + SOLVED.format(body="n = 1\nitem = 2")
    assert problems(source(loop, "def f(n):\n    return n\n[item for item in range(3)]")) == []


def test_a_folder_made_only_in_a_solution_and_read_later_is_caught():
    made = ('out = work_dir() / "orders"\npath = out / "handler.py"\n'
            "# TODO: write the handler to `path`.\n" + SOLVED.format(body='out.mkdir()\npath.write_text("code")'))
    found = problems(source(made, "print(path.read_text())"), "lab")
    assert len(found) == 1 and "`out`" in found[0]
    assert problems(source(made.replace('path = out', 'out.mkdir()\npath = out'), "print(path.read_text())")) == []
    assert problems(source(made.replace("to `path`", "to `path`, creating `out`"), "print(path.read_text())")) == []
    assert problems(source(made, "print(path)")) == []  # printing a path needs nothing on disk


@pytest.mark.parametrize("write", [
    'with open("work/report.txt", "w") as fh:\n    fh.write("x")',
    'import zipfile\nwith zipfile.ZipFile("work/report.txt", "w") as z:\n    pass',
    'Path("work/report.txt").write_text("x")',
    'os.makedirs("work/report.txt")',
])
def test_files_written_by_every_kind_of_call_are_caught(write):
    made = "# TODO: write the report.\n" + SOLVED.format(body=write)
    assert problems(source(made, 'print(open("work/report.txt").read())')) != []
    assert problems(source(made, 'print("work/report.txt")')) == []
