"""Fixtures for tests that need the real local AWS process (one per test worker)."""
from __future__ import annotations

import os
import shutil
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalAWS:
    home: Path
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def env(self) -> dict:
        # The server stops by itself when this test worker is gone, even killed: no server outlives a run.
        return {"LABKIT_HOME": str(self.home), "LABS_AWS_PORT": str(self.port), "LABKIT_EXIT_WITH_PID": str(os.getpid())}


@contextmanager
def _env(values: dict):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def free_port() -> int:
    """A port nothing listens on."""
    return _port()


@pytest.fixture(scope="session")
def _local_server(tmp_path_factory):
    from labkit import localaws

    info = LocalAWS(tmp_path_factory.mktemp("local-aws"), _port())
    with _env(info.env):
        localaws.up()
    yield info
    with _env(info.env):
        localaws.down()


@pytest.fixture
def local(_local_server, monkeypatch):
    """The running local AWS, emptied, with this test's environment pointing at it."""
    from labkit import localaws

    for key, value in _local_server.env.items():
        monkeypatch.setenv(key, value)
    localaws.up()  # a test may have stopped it
    localaws.reset()
    (_local_server.home / "settings.json").unlink(missing_ok=True)  # a test may have configured a learner
    for kept in (_local_server.home / "snapshots").glob("*"):  # another test's snapshots are not this test's
        shutil.rmtree(kept) if kept.is_dir() else kept.unlink()  # NAME.data/: the engine data saved with one
    return _local_server


def local_aws_at_speed(speed: str, name: str, env: dict | None = None):
    """A test module's own local AWS whose clock runs ``speed`` times AWS's (``LABKIT_CLOCK_SPEED``), as
    two fixtures: the process, started once per module, and ``name``, which empties it for each test.
    Use as ``_process, server = local_aws_at_speed("50", "server")`` at module level; ``env``: more
    variables the process starts with (``LABKIT_NETNS=off`` for loopback mode)."""
    process_name = f"_{name}_process"

    @pytest.fixture(scope="module", name=process_name)
    def process(tmp_path_factory):
        from labkit import localaws

        info = LocalAWS(tmp_path_factory.mktemp(f"{name}-aws"), _port())
        with _env({**info.env, "LABKIT_CLOCK_SPEED": speed, **(env or {})}):
            localaws.up()
        yield info
        with _env(info.env):
            localaws.down()

    @pytest.fixture(name=name)
    def emptied(request, monkeypatch):
        from labkit import localaws

        info = request.getfixturevalue(process_name)
        for key, value in {**info.env, "LABKIT_CLOCK_SPEED": speed, **(env or {})}.items():
            monkeypatch.setenv(key, value)
        localaws.up()  # a test may have stopped it
        localaws.reset()
        return info

    return process, emptied


@pytest.fixture
def local_target(local):
    """A target on the running local AWS for the tables' learner, ada."""
    from labkit.target import Target

    return Target("local", prefix="ada", region="us-east-1")
