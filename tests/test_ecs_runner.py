"""The task runner on its own: an unpacked root folder and an image config in, a real process out."""
from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from labkit.localaws.extensions.ecs import plan, runner
from tests.ecs_support import APP, get_json, pid_alive


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def root():
    # Not under pytest's own (private) temp folder: a container runs unprivileged and must read its image.
    base = Path(tempfile.mkdtemp(prefix="labkit-runner-test-"))
    folder = base / "root"
    (folder / "app").mkdir(parents=True)
    (folder / "app" / "app.py").write_text(APP)
    for path in (base, folder, folder / "app"):
        path.chmod(0o755)
    (folder / "app" / "app.py").chmod(0o644)
    yield folder
    shutil.rmtree(base, ignore_errors=True)


def _plan(root, tmp_path, port, **definition):
    config = {"Cmd": ["python", "/app/app.py"], "WorkingDir": "/app", "Env": ["PORT=8080", "FROM_IMAGE=yes"]}
    spec = {"name": "web", "image": "local", "portMappings": [{"containerPort": 8080}], "stopTimeout": 2}
    spec.update(definition)
    return plan.container(spec, config, root, task_id="0123456789abcdef", task_memory=512, extra_env={},
                          secrets={"TOKEN": "from-secrets"}, bin_dir=plan.python_wrapper(root.parent / "bin"),
                          shim_dir=Path(plan.__file__).with_name("shim"), host_ports={8080: port},
                          region="us-east-1")


@pytest.mark.parametrize("launcher", ["setpriv", "launch.py"])
def test_a_task_runs_answers_and_stops(root, tmp_path, monkeypatch, launcher):
    if launcher == "launch.py":
        monkeypatch.setattr(runner, "SETPRIV", None)  # machines without util-linux start through launch.py
    elif not runner.SETPRIV:
        pytest.skip("no setpriv here")
    port = _port()
    tasks = runner.Runner()
    try:
        run = tasks.start(runner.TaskPlan("arn:aws:ecs:us-east-1:123456789012:task/c/0123456789abcdef",
                                          [_plan(root, tmp_path, port)]))
        assert tasks.wait(run.arn, "RUNNING").last_status == "RUNNING"
        seen = get_json(port)
        assert (seen["env"]["FROM_IMAGE"], seen["env"]["TOKEN"]) == ("yes", "from-secrets")
        pid = run.containers[0].proc.pid
        tasks.stop(run.arn, "enough")
        done = tasks.wait(run.arn, "STOPPED")
        assert (done.stopped_reason, done.containers[0].exit_code) == ("enough", 143)
        assert not pid_alive(pid)
    finally:
        tasks.close()


def test_close_stops_every_task(root, tmp_path):
    tasks = runner.Runner()
    ports = [_port(), _port()]
    for n, port in enumerate(ports):
        tasks.start(runner.TaskPlan(f"arn:aws:ecs:us-east-1:123456789012:task/c/{n:016d}",
                                    [_plan(root, tmp_path, port, stopTimeout=30)]))
    for port in ports:
        get_json(port)
    pids = tasks.pids()
    assert len(pids) == 2
    tasks.close()  # does not wait the 30 s stopTimeout: the local AWS is stopping
    assert not any(pid_alive(p) for p in pids)


def test_a_task_stopped_while_it_is_prepared_gives_back_what_the_preparation_made(root, tmp_path):
    """A service deleted while its new task pulls its image: the namespace the preparation made must go too."""
    arn = "arn:aws:ecs:us-east-1:123456789012:task/c/00000000000000aa"
    preparing, go_on, released = threading.Event(), threading.Event(), []

    def prepare(plan_):
        preparing.set()
        go_on.wait(30)  # the stop arrives now, before on_stop exists
        plan_.on_stop = lambda: released.append("namespace")
        plan_.containers = [_plan(root, tmp_path, _port())]

    tasks = runner.Runner()
    try:
        tasks.start(runner.TaskPlan(arn, []), prepare=prepare)
        assert preparing.wait(30)
        tasks.stop(arn, "service deleted")
        assert tasks.wait(arn, "STOPPED").last_status == "STOPPED"
        go_on.set()
        deadline = time.monotonic() + 30
        while not released and time.monotonic() < deadline:
            time.sleep(0.02)
        assert released == ["namespace"] and not tasks.pids()
    finally:
        go_on.set()
        tasks.close()
