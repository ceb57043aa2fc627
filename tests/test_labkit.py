"""labkit against a real local AWS process: up/down/status, snapshots, lab starts, errors."""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest

import labkit
from checks import Status, grade, select
from labkit import localaws
from labkit.errors import LabkitError
from labkit.target import Target

pytestmark = pytest.mark.server


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True, text=True, timeout=120)


def test_up_is_idempotent_and_status_says_where(local):
    again = localaws.up()
    assert again["already"] and again["endpoint"] == local.endpoint
    run = _cli("status")
    assert run.returncode == 0 and local.endpoint in run.stdout


def test_state_survives_down_and_up(local):
    t = Target("local", prefix="ada", region="us-east-1")
    t.client("s3").create_bucket(Bucket="ada-keep")
    oac = t.client("cloudfront").create_origin_access_control(OriginAccessControlConfig={
        "Name": "ada-keep", "SigningProtocol": "sigv4", "SigningBehavior": "always",
        "OriginAccessControlOriginType": "s3"})["OriginAccessControl"]["Id"]
    assert localaws.down()
    assert localaws.running() is None
    info = localaws.up()
    assert info["restored"]
    fresh = Target("local", prefix="ada", region="us-east-1")
    assert "ada-keep" in [b["Name"] for b in fresh.client("s3").list_buckets()["Buckets"]]
    # Same ids after the replay, so policies that name them stay valid.
    ids = [o["Id"] for o in fresh.client("cloudfront").list_origin_access_controls()["OriginAccessControlList"]["Items"]]
    assert ids == [oac]


def test_snapshot_save_restore_and_reset(local):
    t = Target("local", prefix="ada", region="us-east-1")
    t.client("s3").create_bucket(Bucket="ada-snap")
    localaws.save("mine")
    assert "mine" in localaws.list_snapshots()
    localaws.reset()
    assert t.client("s3").list_buckets()["Buckets"] == []
    assert localaws.restore("mine") >= 1
    assert [b["Name"] for b in t.client("s3").list_buckets()["Buckets"]] == ["ada-snap"]


def test_snapshot_survives_down_and_up(local):
    t = Target("local", prefix="ada", region="us-east-1")
    t.client("s3").create_bucket(Bucket="ada-snap2")
    localaws.save("before-restart")
    localaws.reset()
    localaws.down()
    localaws.up()
    assert localaws.restore("before-restart") >= 1
    assert "ada-snap2" in [b["Name"] for b in Target("local", prefix="ada").client("s3").list_buckets()["Buckets"]]


def test_unknown_snapshot_is_one_sentence_and_exit_2(local):
    run = _cli("restore", "nope")
    assert run.returncode == 2 and "no snapshot named 'nope'" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_bad_snapshot_name_is_refused(local):
    with pytest.raises(LabkitError):
        localaws.save("../escape")


def test_start_01_builds_the_end_of_lab_00_for_this_learner(local):
    labkit.configure(prefix="eve", region="eu-west-1")  # not the defaults: start must keep them
    run = _cli("start", "01")
    assert run.returncode == 0, run.stderr
    assert (labkit.settings().prefix, labkit.settings().region) == ("eve", "eu-west-1")
    t = Target("local")
    assert (t.prefix, t.region) == ("eve", "eu-west-1")
    lab00 = grade(select("00"), t)
    assert lab00.count(Status.FAIL) == 0 and lab00.earned == lab00.possible
    lab01 = grade(select("01"), t)
    assert lab01.earned < lab01.possible
    assert "start of lab 01" in _cli("status").stdout


def test_reset_and_start_keep_what_was_there_as_a_snapshot(local):
    Target("local", prefix="ada").client("s3").create_bucket(Bucket="ada-precious")
    run = _cli("start", "01")
    assert run.returncode == 0 and "before-start-01" in run.stdout
    assert "ada-precious" not in [b["Name"] for b in Target("local").client("s3").list_buckets()["Buckets"]]
    run = _cli("reset")
    assert run.returncode == 0 and "before-reset" in run.stdout
    localaws.restore("before-start-01")
    assert "ada-precious" in [b["Name"] for b in Target("local").client("s3").list_buckets()["Buckets"]]


def test_a_second_start_replays_the_kept_state_and_rewrites_the_work_files(local):
    import shutil

    from labkit import config

    shutil.rmtree(config.state_dir() / "starts", ignore_errors=True)
    first = _cli("start", "03")
    assert first.returncode == 0 and "Building the end state of lab 02" in first.stdout, first.stdout
    contract = config.work_dir() / "orders-api.yaml"  # lab 02's solution writes it
    written = contract.read_text()
    contract.write_text("edited since")

    second = _cli("start", "03")
    assert second.returncode == 0 and "Replaying" in second.stdout and "Building" not in second.stdout, second.stdout
    assert contract.read_text() == written
    lab02 = grade(select("02"), Target("local"))
    assert lab02.count(Status.FAIL) == 0 and lab02.earned == lab02.possible, lab02

    later = _cli("start", "04")  # goes on from the kept start of lab 03: only lab 03 is built
    assert later.returncode == 0, later.stderr
    assert "Replaying the start state of lab 03" in later.stdout and "Building the end state of lab 03" in later.stdout
    assert "Building the end state of lab 02" not in later.stdout, later.stdout
    lab03 = grade(select("03"), Target("local"))
    assert lab03.count(Status.FAIL) == 0 and lab03.earned == lab03.possible, lab03
    assert contract.read_text() == written  # an earlier lab's work file is part of the state it went on from

    labkit.configure(prefix="zed")  # another prefix needs its own names: built again
    assert "Building the end state of lab 00" in _cli("start", "03").stdout


def test_start_unknown_lab_is_one_sentence_and_exit_2(local):
    run = _cli("start", "42")
    assert run.returncode == 2 and "no lab" in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_port_taken_by_another_program_is_one_sentence(local, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        monkeypatch.setenv("LABS_AWS_PORT", str(sock.getsockname()[1]))
        monkeypatch.setenv("LABKIT_HOME", str(local.home / "other"))
        run = _cli("up")
    assert run.returncode == 2 and "taken by another program" in run.stderr


def test_commands_without_a_running_server_say_how_to_start_it(monkeypatch, tmp_path, free_port):
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path))
    monkeypatch.setenv("LABS_AWS_PORT", str(free_port))
    for command in (["save", "x"], ["reset"], ["start", "01"]):
        run = _cli(*command)
        assert run.returncode == 2 and "labkit up" in run.stderr, command
    assert _cli("status").returncode == 1


def test_configure_validates_the_prefix(monkeypatch, tmp_path):
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path))
    monkeypatch.delenv("LABS_PREFIX", raising=False)
    with pytest.raises(LabkitError):
        labkit.configure(prefix="Not_Valid")
    with pytest.raises(LabkitError, match="not an AWS region"):
        labkit.configure(prefix="ada", region="us-east-7")
    assert labkit.configure(prefix="ada-lovelace").prefix == "ada-lovelace"
    assert labkit.target().prefix == "ada-lovelace"


def test_target_names_and_tags():
    t = Target("local", prefix="ada", region="us-east-1")
    assert t.name("site") == "ada-site"
    assert {"Key": "lab", "Value": "01"} in t.tags("01")
    assert t.tag_map("01")["course"] == labkit.COURSE_ID


def test_live_target_without_credentials_is_one_sentence(monkeypatch, tmp_path):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(LabkitError, match="credentials"):
        Target("live", prefix="ada", region="us-east-1").session()


def test_a_torn_journal_line_does_not_cost_the_rest(local):
    t = Target("local", prefix="ada", region="us-east-1")
    t.client("s3").create_bucket(Bucket="ada-torn")
    localaws.down()
    with localaws.journal_path().open("a") as journal:
        journal.write('{"method": "PUT", "url": "http://local')  # the process died mid-write
    localaws.up()
    assert "ada-torn" in [b["Name"] for b in Target("local", prefix="ada").client("s3").list_buckets()["Buckets"]]
    assert "http://local\n" not in localaws.journal_path().read_text()  # the torn line is dropped


def test_notebooks_and_grader_find_a_server_started_on_another_port(local, monkeypatch):
    monkeypatch.delenv("LABS_AWS_PORT")  # only the server record knows the port now
    assert Target("local").endpoint == local.endpoint
    assert _cli("status").returncode == 0


def test_server_runs_with_the_settings_the_course_needs(local):
    import json
    import urllib.request

    from labkit import config
    from labkit.localaws import guard

    secret = {guard.SECRET_HEADER: guard.read_secret(config.state_dir())}
    with urllib.request.urlopen(urllib.request.Request(f"{local.endpoint}/moto-api/config", headers=secret)) as reply:
        assert json.load(reply)["lambda"]["use_docker"] is False  # Lambda without Docker
    iam = Target("local", prefix="ada").client("iam")
    arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    assert iam.get_policy(PolicyArn=arn)["Policy"]["Arn"] == arn  # AWS-managed policies are loaded


def test_editing_a_file_in_a_subpackage_changes_the_code_digest(tmp_path, monkeypatch):
    from labkit import remember

    package = tmp_path / "toy"
    (package / "inner" / "deeper").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "inner" / "__init__.py").write_text("")
    module = package / "inner" / "deeper" / "runtime.py"
    module.write_text("LIMIT = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = remember.code_digest("toy")
    module.write_text("LIMIT = 2\n")
    assert remember.code_digest("toy") != before


def test_a_start_state_is_rebuilt_when_labkit_code_changes(monkeypatch):
    from labkit import remember, starts
    from labkit.authoring import notebooks

    before = [lab for lab in notebooks.labs() if lab.number < "02"]
    key = starts._fingerprint(before)
    assert starts._fingerprint(before) == key  # stable while nothing changes
    real = remember.code_digest
    monkeypatch.setattr(remember, "code_digest", lambda *names: real(*names) + "-edited")
    assert starts._fingerprint(before) != key


def test_a_process_that_ended_but_was_not_reaped_is_not_running():
    """A zombie (ended, not yet reaped, as under a container's lazy first process) does not count as running,
    so `down` does not wait out its timeout for a server that has already stopped."""
    import os
    import subprocess
    import time
    from pathlib import Path

    from labkit.config import process_alive

    child = subprocess.Popen(["sleep", "0"])
    for _ in range(200):  # it ends at once; this test's process never reaps it until the end
        if Path(f"/proc/{child.pid}/stat").exists() and \
                Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            break
        time.sleep(0.01)
    try:
        assert not process_alive(child.pid)
        assert process_alive(os.getpid())
    finally:
        child.wait()
