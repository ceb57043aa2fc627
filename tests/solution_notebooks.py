"""The self-test of the solution notebooks: ``pytest --nbval-lax`` runs each one, in lab order.

nbval runs a notebook's code cells in one kernel, in order, and compares the
outputs of the cells marked ``# NBVAL_CHECK_OUTPUT`` (``--dist loadfile``
keeps a notebook's cells on one worker). This plugin adds what nbval cannot
know about the course:

- a local AWS of this test session's own (own state folder, free port),
  started before the first notebook and stopped when the session ends;
- under ``--dist loadfile`` the solution notebooks are one scope, so one
  worker runs them all, in lab order, each going on from the state the one
  before built, as a learner does (every other file stays its own scope);
- where lab NN-1 did not just run here to full marks (a notebook run alone,
  or one after a failure), the local AWS is first put into the state lab NN
  starts from (``labkit start NN``), so each notebook also stands alone;
- after a notebook's last cell, one more item, ``full-marks``, runs the
  notebook a second time over the state it built (learners re-run cells)
  and asserts that the lab then scores full marks.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

SOLUTIONS = Path(__file__).resolve().parent.parent / "solutions"
_session: dict = {}


def _notebook_env(tmp_path_factory) -> dict:
    """The environment the kernels and the grading here share; the local AWS started on first use."""
    if "env" not in _session:
        from labkit import localaws
        from tests.localaws import LocalAWS, _env, _port

        root = tmp_path_factory.mktemp("solution-notebooks")
        info = LocalAWS(root / "labkit-home", _port())
        env = dict(info.env, LABS_WORK_DIR=str(root / "work"), LABS_TARGET="local",
                   AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
                   AWS_CONFIG_FILE=str(root / "no-aws-config"), AWS_SHARED_CREDENTIALS_FILE=str(root / "no-aws-credentials"))
        with _env(env):
            localaws.up()
        _session["env"] = env
    return _session["env"]


def _is_notebook_file(node) -> bool:
    return node.__class__.__name__ == "IPyNbFile"


def pytest_ignore_collect(collection_path, config):
    # Only the solutions are self-tested as notebooks; labs/ and a learner's copies are not.
    if collection_path.suffix == ".ipynb" and collection_path.parent != SOLUTIONS:
        return True
    return None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    """After each solution notebook's last cell, its full-marks item (same file, so same worker)."""
    out, last_file = [], None
    for item in items:
        parent = item.parent
        if last_file is not None and parent is not last_file:
            out.append(FullMarks.from_parent(last_file, name="full-marks"))
            last_file = None
        out.append(item)
        if _is_notebook_file(parent):
            last_file = parent
    if last_file is not None:
        out.append(FullMarks.from_parent(last_file, name="full-marks"))
    items[:] = out


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_setup(item):
    """A notebook's first cell: its lab's start state, and the kernel (started now) gets the session's environment."""
    if not _is_notebook_file(item.parent) or isinstance(item, FullMarks):
        yield
        return
    from tests.localaws import _env

    env = _notebook_env(item.config._tmp_path_factory)
    with _env(env):
        if getattr(item.parent, "kernel", None) is None:  # nbval starts the kernel in this setup
            from labkit import localaws
            from labkit.starts import start

            number = _lab_number(item.parent)
            localaws.up()
            if _session.get("full_marks") != f"{int(number) - 1:02d}":
                start(number)
        yield


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """--dist loadfile, with every solution notebook in one scope: one worker runs them in lab order."""
    if config.getoption("dist", None) != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class NotebooksTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return f"{SOLUTIONS.name}/" if scope.startswith(f"{SOLUTIONS.name}/") and scope.endswith(".ipynb") else scope

    return NotebooksTogether(config, log)


def pytest_sessionfinish(session):
    env = _session.pop("env", None)
    if env:
        from labkit import localaws
        from tests.localaws import _env

        with _env(env):
            localaws.down()


def _lab_number(notebook_file) -> str:
    return Path(str(notebook_file.path)).name[:2]


class FullMarks(pytest.Item):
    """The lab's solution, run once more over its own end state, scores full marks."""

    def runtest(self):
        from nbclient import NotebookClient
        import nbformat

        from checks import Status, grade, select
        from labkit.target import Target
        from tests.localaws import _env

        path = Path(str(self.parent.path))
        env = _notebook_env(self.config._tmp_path_factory)
        with _env(env):
            nb = nbformat.read(path, as_version=4)
            NotebookClient(nb, timeout=300, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            report = grade(select(_lab_number(self.parent)), Target("local"))
        bad = [(r.check.id, r.status.value, r.message) for r in report.results if r.status in (Status.FAIL, Status.ERROR)]
        assert bad == [], f"{path.name} run twice does not score full marks: {bad}"
        assert report.earned == report.possible > 0
        _session["full_marks"] = _lab_number(self.parent)  # the next lab may go on from here

    def reportinfo(self):
        return self.path, None, f"{self.parent.name}::full-marks"
