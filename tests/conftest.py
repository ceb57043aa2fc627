"""Shared fixtures: an isolated state folder, fake AWS credentials, in-process moto.

``aws`` yields a writable in-process target (prefix ``ada``, region
``us-east-1``); ``grade(target, check_id)`` runs one registered check the way
the grader does. State builders live in ``tests/states.py``.
"""
from __future__ import annotations

import functools

import pytest

import checks
from checks.core import Result, run_check
from labkit.target import Target

# `local` and `free_port`: the real local AWS process, for tests that need it.
pytest_plugins = ("tests.localaws",)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """No test reads or writes the repository's .labkit folder."""
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "labkit-home"))
    monkeypatch.setenv("LABS_WORK_DIR", str(tmp_path / "work"))


@pytest.fixture(autouse=True)
def _fake_aws_env(tmp_path, monkeypatch):
    """Dummy credentials and no user AWS config, so nothing can reach a real account."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                 "AWS_REGION", "AWS_ENDPOINT_URL", "LABS_TARGET", "LABS_PREFIX"):
        monkeypatch.delenv(name, raising=False)


@functools.cache
def _shared_loader():
    import botocore.loaders

    return botocore.loaders.create_loader()


def fast_session(region: str = "us-east-1"):
    """The session ``Target.session()`` builds for a local target, but reading botocore's
    service models through one shared (caching) loader: parsing them per test is slow."""
    import boto3
    import botocore.session

    core = botocore.session.Session()
    core.register_component("data_loader", _shared_loader())
    return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                         region_name=region, botocore_session=core)


@pytest.fixture
def aws():
    """A writable target on in-process moto (boto3 clients with no endpoint), as faithful as the local AWS."""
    import moto

    from labkit.localaws.fidelity import apply_models

    apply_models()
    with moto.mock_aws():
        target = Target("inprocess", prefix="ada", region="us-east-1")
        target._session = fast_session(target.region)
        yield target


def grade(target: Target, check_id: str) -> Result:
    """Run one registered check on ``target`` exactly as the grader does."""
    checks.load_all()
    return run_check(checks.REGISTRY[check_id], target)


@pytest.fixture(name="grade")
def _grade_fixture():
    """The ``grade`` helper as a fixture, for tests that prefer not to import it."""
    return grade
