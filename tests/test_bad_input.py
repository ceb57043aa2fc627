"""Bad input to a learner-facing command: one sentence, a non-zero exit, never a traceback, nothing lost.

Each row is one bad input (environment, files in a fresh state folder, argv)
for ``python -m labkit ...`` or ``python -m checks ...``, run as a real
subprocess under a time limit. Every row also plants a learner's state (a
journal, a snapshot, settings, a work file) and asserts it is byte for byte
intact afterwards. Nothing here can reach a real AWS endpoint: the credential
chain is cut off from the network (no instance metadata) and
``AWS_ENDPOINT_URL`` points at a closed loopback port.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TIME_LIMIT = 90  # seconds; a hang fails the row instead of the suite

# A learner's state, planted in every row's state folder before the command runs.
JOURNAL = b'{"n": 1, "method": "PUT", "url": "http://localhost/ada-site", "headers": {}, "body": ""}\n'
STATE = {
    "journal.ndjson": JOURNAL,
    "snapshots/mine.ndjson": JOURNAL,
    "snapshots/mine.json": b'{"state": "lab 01", "saved": 1, "writes": 1}\n',
    "settings.json": b'{"prefix": "ada", "region": "us-east-1", "target": "local"}\n',
}
SLEEPER = "<pid of a process that is alive but no server>"


@dataclass
class Row:
    id: str
    argv: tuple  # ("labkit", ...) or ("checks", ...)
    env: dict = field(default_factory=dict)  # None unsets a variable
    files: dict = field(default_factory=dict)  # path in the state folder -> bytes, str (JSON text) or None (a folder)
    home: str | None = None  # "file", "/proc/...": a LABKIT_HOME that is not a usable folder
    says: str = ""  # the sentence must contain this (case-insensitive)
    full: bool = False  # stdout is /dev/full
    repo: dict | None = None  # files to plant in a copy of the repository (build-notebooks)
    server: bool = False  # runs against the running local AWS holding one write

    def __str__(self):
        return self.id


def _rec(**fields) -> str:
    import json

    record = {"pid": 0, "port": 4747, "endpoint": "http://localhost:4747", "state": "empty"}
    record.update(fields)
    return json.dumps({k: v for k, v in record.items() if v is not ...})


def _settings(**fields) -> str:
    import json

    data = {"prefix": "ada", "region": "us-east-1", "target": "local"}
    data.update(fields)
    return json.dumps(data)


LIVE_NO_CREDS = {"LABS_TARGET": "live", "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}

# The first lab number the course does not have yet: selecting it must be one sentence, whichever labs exist.
UNWRITTEN = next(f"{n:02d}" for n in range(1, 100) if not list((Path(__file__).parents[1] / "course").glob(f"{n:02d}-*.py")))

ROWS = [
    # -- settings.json of the wrong JSON type, or with fields of the wrong type --------
    *[Row(f"settings-{name}-{cmd[0]}", cmd, files={"settings.json": text}, says="settings.json")
      for name, text in [("list", "[]"), ("number", "42"), ("string", '"ada"'), ("null", "null"), ("true", "true")]
      for cmd in [("checks", "00"), ("labkit", "api")]],
    Row("settings-empty-file", ("checks", "00"), files={"settings.json": ""}, says="settings.json"),
    Row("settings-truncated", ("checks", "00"), files={"settings.json": '{"prefix": "ad'}, says="settings.json"),
    Row("settings-binary", ("checks", "00"), files={"settings.json": b"\xff\xfe\x00\x81garbage"}, says="settings.json"),
    Row("settings-is-a-folder", ("checks", "00"), files={"settings.json": None}, says="settings.json"),
    Row("settings-prefix-number", ("checks", "00"), files={"settings.json": _settings(prefix=5)}, says="prefix"),
    Row("settings-prefix-list", ("labkit", "api"), files={"settings.json": _settings(prefix=["ada"])}, says="prefix"),
    Row("settings-prefix-invalid", ("checks", "00"), files={"settings.json": _settings(prefix="Ada_Lovelace")}, says="prefix"),
    Row("settings-prefix-too-long", ("checks", "00"), files={"settings.json": _settings(prefix="a" * 40)}, says="prefix"),
    Row("settings-prefix-invalid-start", ("labkit", "start", "01"), files={"settings.json": _settings(prefix="-ada")},
        says="prefix"),
    Row("settings-region-list", ("checks", "00"), files={"settings.json": _settings(region=["us-east-1"])}, says="region"),
    Row("settings-region-number", ("labkit", "api"), files={"settings.json": _settings(region=1)}, says="region"),
    Row("settings-region-unknown", ("checks", "00"), files={"settings.json": _settings(region="mars-north-1")},
        says="region"),
    Row("settings-region-unknown-api", ("labkit", "api"), files={"settings.json": _settings(region="moon")}, says="region"),
    Row("settings-target-number", ("checks", "00"), files={"settings.json": _settings(target=1)}, says="target"),
    Row("settings-target-unknown", ("checks", "00"), files={"settings.json": _settings(target="cloud")}, says="target"),
    Row("settings-target-dict", ("labkit", "cleanup"), files={"settings.json": _settings(target={"a": 1})}, says="target"),
    # -- environment overrides --------------------------------------------------------
    Row("prefix-empty", ("checks", "00"), env={"LABS_PREFIX": ""}, says="LABS_PREFIX"),
    Row("prefix-empty-api", ("labkit", "api"), env={"LABS_PREFIX": ""}, says="LABS_PREFIX"),
    Row("prefix-invalid", ("checks", "00"), env={"LABS_PREFIX": "Bad Prefix!"}, says="LABS_PREFIX"),
    Row("target-garbage", ("checks", "00"), env={"LABS_TARGET": "garbage"}, says="LABS_TARGET"),
    Row("target-empty", ("checks", "00"), env={"LABS_TARGET": ""}, says="LABS_TARGET"),
    Row("target-garbage-start", ("labkit", "start", "01"), env={"LABS_TARGET": "garbage"}, says="LABS_TARGET"),
    Row("live-region-unknown", ("checks", "00"), env={"LABS_TARGET": "live", "AWS_REGION": "mars-1"}, says="region"),
    Row("live-no-credentials-checks", ("checks", "00"), env=LIVE_NO_CREDS, says="credentials"),
    Row("live-no-credentials-api", ("labkit", "api"), env=LIVE_NO_CREDS, says="credentials"),
    Row("live-no-credentials-cleanup", ("labkit", "cleanup", "--live", "--dry-run"), env=LIVE_NO_CREDS, says="credentials"),
    Row("profile-unknown-api", ("labkit", "api", "--live"), env={"AWS_PROFILE": "nosuch"}, says="profile"),
    Row("profile-unknown-checks", ("checks", "00", "--live"), env={"AWS_PROFILE": "nosuch"}, says="profile"),
    Row("live-no-network-api", ("labkit", "api", "--live"), says="reach"),
    Row("live-no-network-checks", ("checks", "00", "--live"), says="reach"),
    Row("live-no-network-cleanup", ("labkit", "cleanup", "--live", "--dry-run"), says="reach"),
    *[Row(f"port-{value or 'blank'}", ("labkit", "status"), env={"LABS_AWS_PORT": value}, says="LABS_AWS_PORT")
      for value in ["0", "70000", "abc", "²", "-1", " 4747", "4747.0", "1" * 30]],
    Row("port-abc-checks", ("checks", "00"), env={"LABS_AWS_PORT": "abc"}, says="LABS_AWS_PORT"),
    # -- the server record ------------------------------------------------------------
    *[Row(f"record-{name}-{'-'.join(cmd[1:])}", cmd, files={"server.json": text}, says="server.json",
          env={"LABS_AWS_PORT": None})  # without it, the record says where the server is
      for name, text in [
          ("pid-text", _rec(pid="abc")), ("pid-float", _rec(pid=1.5)), ("pid-huge", _rec(pid=10 ** 30)),
          ("pid-negative", _rec(pid=-7)), ("pid-true", _rec(pid=True)), ("pid-missing", _rec(pid=...)),
          ("no-endpoint", _rec(pid=SLEEPER, endpoint=...)), ("no-port", _rec(pid=SLEEPER, port=...)),
          ("port-text", _rec(port="abc")), ("port-huge", _rec(port=70000)),
          ("endpoint-not-loopback", _rec(endpoint="http://10.255.255.1:4747")), ("endpoint-number", _rec(endpoint=5)),
          ("list", "[1, 2]"), ("null", "null"), ("binary", b"\x00\xff\xfe"), ("truncated", '{"pid": 12'),
      ]
      for cmd in [("labkit", "status"), ("labkit", "down"), ("checks", "00")]],
    Row("record-no-endpoint-up", ("labkit", "up"), files={"server.json": _rec(pid=SLEEPER, endpoint=...)}, says="server.json"),
    Row("record-pid-text-up", ("labkit", "up"), files={"server.json": _rec(pid="abc")}, says="server.json"),
    # -- the state folder ---------------------------------------------------------------
    *[Row(f"home-{kind.strip('/').replace('/', '-')}-{'-'.join(cmd[1:])}", cmd, home=kind, says="LABKIT_HOME")
      for kind in ["file", "/proc/labkit-home", "/proc", "/dev/null"]
      for cmd in [("labkit", "status"), ("labkit", "up"), ("labkit", "snapshots"), ("checks", "00")]],
    Row("home-read-only", ("labkit", "up"), home="read-only", says="LABKIT_HOME"),
    Row("work-dir-is-a-file", ("labkit", "start", "01"), env={"LABS_WORK_DIR": "<a file>"}, says="LABS_WORK_DIR"),
    Row("work-dir-in-proc", ("labkit", "start", "01"), env={"LABS_WORK_DIR": "/proc/labkit-work"}, says="LABS_WORK_DIR"),
    Row("record-is-a-folder", ("labkit", "status"), files={"server.json": None}, says="server.json"),
    Row("journal-is-a-folder-up", ("labkit", "up"), files={"journal.ndjson": None}, says="journal.ndjson"),
    Row("aws-config-binary", ("labkit", "api", "--live"), env={"AWS_CONFIG_FILE": "<a binary file>"}, says="profile"),
    Row("aws-max-attempts-text", ("labkit", "api", "--live"), env={"AWS_MAX_ATTEMPTS": "abc"}, says="AWS"),
    Row("target-upper-case", ("checks", "00"), env={"LABS_TARGET": "LIVE"}, says="LABS_TARGET"),
    Row("prefix-not-ascii", ("labkit", "api"), env={"LABS_PREFIX": "adä"}, says="LABS_PREFIX"),
    # -- argv ---------------------------------------------------------------------------
    *[Row(f"start-{arg or 'blank'}", ("labkit", "start", arg), says="lab")
      for arg in ["²", "99", "abc", "-1", "", "1.5", "L99", "١"]],
    Row("labkit-unknown-command", ("labkit", "fly"), says="fly"),
    Row("labkit-missing-argument", ("labkit", "save"), says="name"),
    Row("labkit-unknown-option", ("labkit", "status", "--colour"), says="--colour"),
    Row("restore-unknown", ("labkit", "restore", "nosuch"), says="snapshot"),
    Row("restore-blank", ("labkit", "restore", ""), says="snapshot"),
    Row("restore-path", ("labkit", "restore", "../settings"), says="snapshot"),
    Row("cleanup-live-unasked", ("labkit", "cleanup", "--live"), says="--yes"),
    *[Row(f"checks-{arg or 'blank'}", ("checks", arg), says=arg or "check")
      for arg in ["99", "abc", "-1", "L99.01", "²", "L01.01-L99", "", "L1.1"]],
    Row("checks-range-reversed", ("checks", "L01.04-L01.01"), says="reversed"),
    Row("checks-range-empty", ("checks", f"L{UNWRITTEN}.01-L{UNWRITTEN}.09"), says=f"L{UNWRITTEN}.01-L{UNWRITTEN}.09"),
    Row("checks-step-ungraded", ("checks", "04.4"), says="graded steps are"),  # lab 04's step 4 only measures
    Row("checks-step-unknown", ("checks", "04.99"), says="no checks in step 99"),
    Row("checks-step-no-lab", ("checks", f"{UNWRITTEN}.1"), says=f"no lab '{UNWRITTEN}'"),
    Row("checks-step-malformed", ("checks", "04.3.1"), says="04.3.1"),
    Row("checks-list-empty-entry", ("checks", "L01.01,"), says="empty entry"),
    Row("checks-format-xml", ("checks", "00", "--format", "xml"), says="xml"),
    Row("checks-unknown-option", ("checks", "00", "--colour"), says="--colour"),
    # -- stdout on a full device --------------------------------------------------------
    Row("full-labkit-status", ("labkit", "status"), full=True, says="output"),
    Row("full-labkit-snapshots", ("labkit", "snapshots"), full=True, says="output"),
    Row("full-labkit-help", ("labkit", "--help"), full=True, says="output"),
    Row("full-checks-list", ("checks", "00", "--list"), full=True, says="output"),
    Row("full-checks-help", ("checks", "--help"), full=True, says="output"),
    # -- course sources and notebooks (in a copy of the repository) ---------------------
    Row("source-binary", ("labkit", "build-notebooks", "--check"), repo={"course/09-broken.py": b"\xff\xfe\x00\x81"},
        says="09-broken.py"),
    Row("source-folder", ("labkit", "build-notebooks"), repo={"course/09-broken.py": None}, says="09-broken.py"),
    Row("source-unclosed-solution", ("labkit", "build-notebooks", "--check"),
        repo={"course/09-broken.py": "# %%\n# BEGIN SOLUTION\nx = 1\n"}, says="09-broken.py"),
    Row("notebook-folder", ("labkit", "build-notebooks"), repo={"labs/00-<slug>.ipynb": None}, says=".ipynb"),
    # -- against a running local AWS that holds the learner's work ------------------------
    Row("server-target-garbage-start", ("labkit", "start", "01"), env={"LABS_TARGET": "garbage"}, server=True,
        says="LABS_TARGET"),
    Row("server-prefix-invalid-start", ("labkit", "start", "01"), env={"LABS_PREFIX": "X"}, server=True, says="LABS_PREFIX"),
    Row("server-start-superscript", ("labkit", "start", "²"), server=True, says="lab"),
    Row("server-save-bad-name", ("labkit", "save", "../../x"), server=True, says="snapshot"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _hashes(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "server.log"}


def _plant(folder: Path, files: dict) -> None:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        if content is None:
            path.mkdir()
        else:
            path.write_bytes(content if isinstance(content, bytes) else content.encode())


def _base_env(tmp_path: Path, closed_port: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LABS_", "LABKIT_"))}
    env.update({
        "LABKIT_HOME": str(tmp_path / "home"), "LABS_WORK_DIR": str(tmp_path / "work"),
        "LABS_AWS_PORT": str(closed_port),
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",  # the credential chain must not look for a cloud host
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port}",  # "live" calls go to a closed loopback port
        "PYTHONPATH": str(REPO), "NO_COLOR": "1",
    })
    return env


def _repo_copy(tmp_path: Path, files: dict) -> Path:
    copy = tmp_path / "repo"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("labkit", "checks", "course", "labs", "solutions"):
        shutil.copytree(REPO / name, copy / name, ignore=ignore)
    first = sorted((REPO / "course").glob("00-*.py"))[0].stem.split("-", 1)[1]
    _plant(copy, {k.replace("<slug>", first): v for k, v in files.items()})
    return copy


def _one_sentence(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    return len(lines) == 1 and re.search(r"[.!?][)\"'`]?$", lines[0].rstrip()) is not None


@pytest.fixture
def sleeper():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    yield process.pid
    process.kill()
    process.wait()


def _run(row: Row, tmp_path: Path, sleeper_pid: int, server=None) -> tuple[subprocess.CompletedProcess, Path, Path]:
    closed = _free_port()
    env = _base_env(tmp_path, closed)
    home = tmp_path / "home"
    if server is not None:
        home = server.home
        env.update(server.env)
    else:
        _plant(home, STATE)
    alive = f'"{SLEEPER}"', str(sleeper_pid)  # a pid, as a JSON number
    _plant(home, {k: v.replace(*alive) if isinstance(v, str) else v for k, v in row.files.items()})
    work = tmp_path / "work"
    _plant(work, {"handler.py": b"def handler(event, context):\n    return 'mine'\n"})
    if row.home == "file":
        (tmp_path / "home-file").write_text("not a folder\n")
        env["LABKIT_HOME"] = str(tmp_path / "home-file")
    elif row.home == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders; the /proc rows stand in for it")
        home.chmod(0o555)
    elif row.home:
        env["LABKIT_HOME"] = row.home
    for key, value in row.env.items():
        if value is None:
            env.pop(key, None)
        elif value == "<a file>":
            (tmp_path / "a-file").write_text("x\n")
            env[key] = str(tmp_path / "a-file")
        elif value == "<a binary file>":
            (tmp_path / "a-binary-file").write_bytes(b"\xff\xfe\x00[\x81")
            env[key] = str(tmp_path / "a-binary-file")
        else:
            env[key] = value
    cwd = _repo_copy(tmp_path, row.repo) if row.repo is not None else REPO
    env["PYTHONPATH"] = str(cwd)
    module, *args = row.argv
    stdout = open("/dev/full", "w") if row.full else subprocess.PIPE
    try:
        done = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, stdout=stdout,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, timeout=TIME_LIMIT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{row}: no answer within {TIME_LIMIT} s (a hang)")
    finally:
        if row.full:
            stdout.close()
        if row.home == "read-only":
            home.chmod(0o755)
    return done, home, work


def _assert_clean(row: Row, done: subprocess.CompletedProcess) -> None:
    output = (done.stdout or "") + (done.stderr or "")
    assert "Traceback" not in output and "Exception ignored" not in output, f"{row}: a traceback:\n{output}"
    assert done.returncode != 0, f"{row}: exit 0 for bad input:\n{output}"
    assert _one_sentence(output), f"{row}: not one sentence:\n{output}"
    assert row.says.lower() in output.lower(), f"{row}: the sentence does not mention {row.says!r}:\n{output}"


@pytest.mark.parametrize("row", [r for r in ROWS if not r.server], ids=str)
def test_bad_input_is_one_sentence_and_keeps_the_state(row, tmp_path, sleeper):
    planted = {k: hashlib.sha256(v).hexdigest() for k, v in STATE.items() if k not in row.files}
    done, home, work = _run(row, tmp_path, sleeper)
    try:
        _assert_clean(row, done)
        after = _hashes(tmp_path / "home")
        assert {k: after.get(k) for k in planted} == planted, f"{row}: the learner's state changed"
        assert sorted(p.name for p in (tmp_path / "home" / "snapshots").iterdir()) == ["mine.json", "mine.ndjson"]
        assert (work / "handler.py").read_bytes().endswith(b"'mine'\n")
    finally:
        if row.argv[:2] == ("labkit", "up") and home.is_dir():
            # a row that wrongly started a server must not leave it running
            subprocess.run([sys.executable, "-m", "labkit", "down"], cwd=REPO, capture_output=True, timeout=60,
                           env={**_base_env(tmp_path, 1), "LABKIT_HOME": str(home)})


@pytest.mark.parametrize("row", [r for r in ROWS if r.server], ids=str)
def test_bad_input_leaves_the_running_local_aws_as_it_was(row, tmp_path, sleeper, local):
    from labkit import localaws

    s3 = __import__("boto3").client("s3", endpoint_url=local.endpoint, region_name="us-east-1",
                                    aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="ada-site")
    localaws.save("mine", force=True)  # an empty state is never saved
    journal, snapshots = localaws.read_journal(), localaws.list_snapshots()
    try:
        done, _, _ = _run(row, tmp_path, sleeper, server=local)
        _assert_clean(row, done)
        assert localaws.read_journal() == journal, f"{row}: the local AWS state changed"
        planted = {n.split("/")[1].split(".")[0] for n in row.files}
        assert localaws.list_snapshots() == sorted(set(snapshots) | planted), f"{row}: a snapshot was made or lost"
    finally:
        for name in row.files:
            (local.home / name).unlink(missing_ok=True)


# -- what the table cannot say: bad input that is survived, and the guard itself --------------

def _cli(args, env, cwd=REPO, **kw):
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIME_LIMIT, **kw)


def test_up_keeps_a_journal_it_cannot_read(tmp_path):
    """The server skips unreadable lines and rewrites the journal: `up` keeps the original as a snapshot first."""
    env = {**_base_env(tmp_path, _free_port()), "LABS_AWS_PORT": str(_free_port())}
    home = tmp_path / "home"
    home.mkdir()
    garbage = b"\x00\xff\xfe garbage\n\x81\x82{\"n\":\n" + JOURNAL
    (home / "journal.ndjson").write_bytes(garbage)
    try:
        done = _cli(("labkit", "up"), env)
        assert done.returncode == 0 and "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
        assert "2 line(s) of your journal cannot be read" in done.stdout
        kept = list((home / "snapshots").glob("damaged-journal-*.damaged"))
        assert [p.read_bytes() for p in kept] == [garbage] and str(kept[0]) in done.stdout
    finally:
        _cli(("labkit", "down"), env)


def test_a_torn_last_line_is_not_called_damage(tmp_path):
    from labkit.localaws.journal import header_line, unreadable_lines

    assert unreadable_lines(JOURNAL + b'{"n": 2, "meth') == 0
    assert unreadable_lines(JOURNAL + b"[1]\n\xff\n") == 2
    assert unreadable_lines(header_line("checkpoint.1.ab.pickle", 1, 1) + JOURNAL) == 0  # a compacted journal


def test_a_snapshot_whose_note_is_damaged_still_restores(local):
    from labkit import localaws

    s3 = __import__("boto3").client("s3", endpoint_url=local.endpoint, region_name="us-east-1",
                                    aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="ada-noted")
    localaws.save("noted")
    (local.home / "snapshots" / "noted.json").write_bytes(b"\xff not json")
    localaws.reset()
    try:
        done = _cli(("labkit", "restore", "noted"), {**os.environ, **local.env})
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        assert "ada-noted" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    finally:
        for name in ("noted.ndjson", "noted.json"):
            (local.home / "snapshots" / name).unlink(missing_ok=True)


def test_a_damaged_notebook_is_stale_and_rebuilt(tmp_path):
    copy = _repo_copy(tmp_path, {"labs/00-<slug>.ipynb": b"\xff\xfe\x00\x81"})
    env = {**_base_env(tmp_path, _free_port()), "PYTHONPATH": str(copy)}
    damaged = next((copy / "labs").glob("00-*.ipynb"))
    checked = _cli(("labkit", "build-notebooks", "--check"), env, cwd=copy)
    assert checked.returncode == 1 and f"stale: {damaged}" in checked.stdout, checked.stdout + checked.stderr
    built = _cli(("labkit", "build-notebooks"), env, cwd=copy)
    assert built.returncode == 0, built.stderr
    assert __import__("json").loads(damaged.read_text())["nbformat"] == 4


def test_a_closed_pipe_ends_quietly(tmp_path):
    read, write = os.pipe()
    os.close(read)  # nobody will read: every write is EPIPE, deterministically
    try:
        done = subprocess.run([sys.executable, "-m", "labkit", "snapshots"], cwd=REPO, env=_base_env(tmp_path, _free_port()),
                              stdout=write, stderr=subprocess.PIPE, text=True, timeout=TIME_LIMIT)
    finally:
        os.close(write)
    assert done.returncode == 141 and done.stderr == ""


def test_the_guard_turns_a_surprise_into_one_sentence_and_a_log(monkeypatch, capsys, tmp_path):
    from labkit import cli

    def surprise():
        raise RuntimeError("boom\non two lines")

    monkeypatch.setattr(sys, "argv", ["labkit", "status"])
    with pytest.raises(SystemExit) as exit_:
        cli.run(surprise, "labkit")
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert _one_sentence(err) and "RuntimeError: boom on two lines" in err and "--debug" in err, err
    log = tmp_path / "labkit-home" / "errors.log"
    assert str(log) in err and "Traceback" in log.read_text() and "boom" in log.read_text()

    monkeypatch.setattr(sys, "argv", ["labkit", "status", "--debug"])
    with pytest.raises(RuntimeError):
        cli.run(surprise, "labkit")


def test_configure_replaces_settings_it_cannot_read(tmp_path):
    import labkit
    from labkit.errors import LabkitError

    home = tmp_path / "labkit-home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "settings.json").write_text('{"prefix": "Not Valid", "region": ["x"]}')
    with pytest.raises(LabkitError, match="settings.json"):
        labkit.configure()
    assert labkit.configure(prefix="ada").prefix == "ada"
    assert labkit.settings().region == "us-east-1"
    with pytest.raises(LabkitError, match="Prefix"):
        labkit.configure(prefix=5)
