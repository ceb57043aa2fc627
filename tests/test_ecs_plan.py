"""How a container's command, user and ports are read from its task definition over its image, as Docker does."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from labkit.localaws.extensions.ecs import plan

IMAGE = {"Entrypoint": ["/docker-entrypoint.sh"], "Cmd": ["serve", "--port", "8080"]}


def test_the_definitions_command_replaces_the_images_cmd_and_keeps_its_entrypoint():
    assert plan.command({"command": ["migrate"]}, IMAGE) == ["/docker-entrypoint.sh", "migrate"]
    assert plan.command({}, IMAGE) == ["/docker-entrypoint.sh", "serve", "--port", "8080"]


def test_an_entry_point_in_the_definition_drops_the_images_cmd_as_docker_does():
    assert plan.command({"entryPoint": ["python", "app.py"]}, IMAGE) == ["python", "app.py"]
    assert plan.command({"entryPoint": ["sh", "-c"], "command": ["echo hi"]}, IMAGE) == ["sh", "-c", "echo hi"]


def test_no_command_at_all_is_dockers_error():
    with pytest.raises(plan.PlanError, match="No command specified"):
        plan.command({}, {})


def test_the_images_python_and_paths_are_read_from_the_unpacked_root(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "app.py").write_text("")
    argv = plan.resolve_argv(["/usr/local/bin/python3", "/app/app.py", "/not/in/image", "-v"], tmp_path)
    assert argv == [plan.task_python()[0], str(tmp_path / "app" / "app.py"), "/not/in/image", "-v"]


def test_a_user_is_found_in_the_images_passwd_and_an_unknown_one_is_refused(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("app:x:1234:2345:app:/home/app:/bin/sh\n")
    assert plan.user("app", tmp_path) == (1234, 2345, "/home/app")
    assert plan.user("77:88", tmp_path) == (77, 88, "/")
    with pytest.raises(plan.PlanError, match="unable to find user ghost"):
        plan.user("ghost-user-that-does-not-exist", tmp_path)


def test_a_health_check_naming_localhost_reaches_the_containers_own_port_in_loopback_mode(tmp_path):
    check = plan.health({"healthCheck": {"command": ["CMD-SHELL", "curl -f http://localhost:8080/ || exit 1"],
                                         "interval": 10, "retries": 2, "startPeriod": 5}}, {}, tmp_path,
                        plan.port_rewriter({8080: 41234}))
    assert check.argv == ["/bin/sh", "-c", "curl -f http://127.0.0.1:41234/ || exit 1"]
    assert (check.interval, check.retries, check.start_period) == (10.0, 2, 5.0)
    assert plan.health({"healthCheck": {"command": ["NONE"]}}, {}, tmp_path, plan.port_rewriter({})) is None


def test_in_loopback_mode_a_python_app_binding_every_address_listens_on_loopback_only(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        outer = probe.getsockname()[1]
    script = ("import socket; s = socket.socket(); s.bind(('0.0.0.0', 8080)); s.listen(); "
              "print(s.getsockname(), flush=True)")
    shim = Path(plan.__file__).with_name("shim")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30,
                         env=dict(os.environ, PYTHONPATH=str(shim), LABKIT_PORT_MAP=f"8080={outer}"))
    assert out.stdout.strip() == f"('127.0.0.1', {outer})", out.stderr
