"""The local AWS is the learner's: only the course's own clients get in, and nothing acknowledged is lost.

Against real server processes: the guard (Host, Origin, the control secret),
snapshots kept before the state is emptied, owner-only state files, loopback
only, one server per state folder, `down` never signalling a foreign pid, and
servers that stop when the process they watch is gone.
"""
from __future__ import annotations

import http.client
import ipaddress
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labkit import config, localaws
from labkit.localaws import guard
from labkit.target import Target

pytestmark = pytest.mark.server


def _raw(port: int, method: str, path: str, headers: dict | None = None, host: str | None = None,
         body: bytes = b"") -> tuple[int, dict, bytes]:
    """One request with exactly the Host and headers given (urllib would fill in its own)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", f"localhost:{port}" if host is None else host)
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        reply = conn.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        conn.close()


def _secret() -> dict:
    return {guard.SECRET_HEADER: guard.read_secret(config.state_dir())}


def _buckets() -> list[str]:
    return [b["Name"] for b in Target("local", prefix="ada").client("s3").list_buckets()["Buckets"]]


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True, text=True, timeout=180, env=env)


def _one_sentence(text: str) -> bool:
    return len(text.strip().splitlines()) == 1 and "Traceback" not in text


# -- Host: no DNS rebinding -----------------------------------------------------------

def test_a_foreign_host_is_refused_and_the_loopback_names_are_served(local):
    for host in ("attacker.example:%d" % local.port, f"localhost:{local.port + 1}", "attacker.example",
                 "127.0.0.2:%d" % local.port, ""):
        code, _, body = _raw(local.port, "GET", "/", host=host)
        assert code == 403 and b"localhost on its own port" in body and _one_sentence(body.decode()), host
    for host in (f"localhost:{local.port}", f"127.0.0.1:{local.port}", f"[::1]:{local.port}", f"LocalHost:{local.port}"):
        code, _, body = _raw(local.port, "GET", "/_labkit/status", host=host)
        assert code == 200 and json.loads(body)["local_aws"] == "labkit", host
    # S3 virtual-host addressing is a name under localhost: it reaches S3 (no such bucket), not the guard.
    code, _, body = _raw(local.port, "GET", "/", host=f"ada-nobucket.localhost:{local.port}")
    assert code == 404 and b"NoSuchBucket" in body


def test_host_rule_unit():
    assert guard.host_allowed("bucket.localhost:4811", 4811)
    assert not guard.host_allowed("localhost.attacker.example:4811", 4811)
    assert not guard.host_allowed("evil.example:4811", 4811) and not guard.host_allowed("", 4811)
    assert not guard.host_allowed("[::1]:4812", 4811) and not guard.host_allowed("a.localhost:4812", 4811)
    # Without a port (an in-process client), only the loopback names themselves.
    assert guard.host_allowed("localhost", 4811) and guard.host_allowed("[::1]", 4811)
    assert not guard.host_allowed("evil.example", 4811) and not guard.host_allowed("::1", 4811)


def test_a_replayed_journal_keeps_the_host_it_was_received_with(local):
    # The guard is on the network path only: a line received on another port (a restarted server) replays.
    Target("local", prefix="ada").client("s3").create_bucket(Bucket="ada-elsewhere")
    lines = localaws.read_journal().replace(f"localhost:{local.port}".encode(), b"localhost:1")
    assert b"localhost:1" in lines
    localaws.reset()
    assert localaws.replay(lines) >= 1
    assert "ada-elsewhere" in _buckets()


# -- Origin: no web page -------------------------------------------------------------

def test_browser_requests_are_refused_and_answers_carry_no_cors_headers(local):
    Target("local", prefix="ada").client("s3").create_bucket(Bucket="ada-kept")
    page = {"Origin": "http://attacker.example"}
    # A page that would empty the state, even holding the secret, and its preflight.
    code, headers, body = _raw(local.port, "POST", "/moto-api/reset", {**page, **_secret()})
    assert code == 403 and b"web pages" in body and not [h for h in headers if h.startswith("access-control-")]
    code, headers, _ = _raw(local.port, "OPTIONS", "/moto-api/reset",
                            {**page, "Access-Control-Request-Method": "POST"})
    assert code == 403 and not [h for h in headers if h.startswith("access-control-")]
    code, _, _ = _raw(local.port, "POST", "/", page, body=b"Action=GetParameters&Names.member.1=x")
    assert code == 403
    assert _buckets() == ["ada-kept"]
    # moto's own CORS answer (flask-cors) is stripped from what boto3 sees too.
    code, headers, _ = _raw(local.port, "GET", "/")
    assert code == 200 and not [h for h in headers if h.startswith("access-control-")]
    code, headers, _ = _raw(local.port, "OPTIONS", "/ada-kept")
    assert not [h for h in headers if h.startswith("access-control-")]


def test_boto3_clients_send_no_origin_and_still_work(local):
    t = Target("local", prefix="ada")
    t.client("ssm").put_parameter(Name="/ada/secret", Value="v", Type="SecureString")
    assert t.client("ssm").get_parameter(Name="/ada/secret", WithDecryption=True)["Parameter"]["Value"] == "v"


def test_a_request_from_outside_cannot_carry_the_local_aws_own_marker(local):
    marker = {guard.INTERNAL_HEADER: json.dumps({"scaling_activity": {"ActivityId": "forged"}}),
              "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.ListClusters",
              "Content-Type": "application/x-amz-json-1.1"}
    code, _, body = _raw(local.port, "POST", "/", marker, body=b"{}")
    assert code == 403 and guard.INTERNAL_HEADER.encode() in body
    code, _, _ = _raw(local.port, "POST", "/", {k: v for k, v in marker.items() if k != guard.INTERNAL_HEADER}, body=b"{}")
    assert code != 403


# -- the control secret -------------------------------------------------------------

def test_control_paths_without_the_secret_are_403_and_change_nothing(local):
    Target("local", prefix="ada").client("s3").create_bucket(Bucket="ada-intact")
    writes = json.loads(_raw(local.port, "GET", "/_labkit/status", _secret())[2])["writes"]
    for method, path in (("POST", "/moto-api/reset"), ("POST", "/_labkit/replay"), ("GET", "/_labkit/journal"),
                         ("GET", "/moto-api/config"), ("GET", "/moto-api/data.json"), ("POST", "/moto-api/seed?a=1")):
        for headers in ({}, {guard.SECRET_HEADER: "guessed"}):
            code, _, body = _raw(local.port, method, path, headers)
            assert code == 403 and guard.SECRET_HEADER.encode() in body, (method, path, headers)
    assert _buckets() == ["ada-intact"]
    assert json.loads(_raw(local.port, "GET", "/_labkit/status", _secret())[2])["writes"] == writes
    assert localaws.read_journal().count(b"\n") == writes


def test_status_without_the_secret_says_only_who_it_is(local):
    Target("local", prefix="ada").client("s3").create_bucket(Bucket="ada-private")
    code, _, body = _raw(local.port, "GET", "/_labkit/status")
    assert code == 200 and set(json.loads(body)) == {"local_aws", "pid"}
    full = json.loads(_raw(local.port, "GET", "/_labkit/status", _secret())[2])
    assert full["writes"] >= 1 and "extensions" in full


def test_the_secret_is_owner_only_and_never_journaled(local):
    secret = guard.read_secret(config.state_dir())
    assert secret and len(secret) >= 32
    code, _, _ = _raw(local.port, "POST", "/moto-api/config", {**_secret(), "Content-Type": "application/json"},
                      body=json.dumps({"lambda": {"use_docker": False}}).encode())  # the course's own setting
    assert code in (200, 201)
    assert stat.S_IMODE(guard.secret_path(config.state_dir()).stat().st_mode) == 0o600
    journal = localaws.read_journal()
    assert b"moto-api/config" in journal and secret.encode() not in journal and b"X-Labkit-Secret" not in journal


# -- nothing is emptied without a snapshot -------------------------------------------

def test_a_reset_by_any_path_keeps_the_state_as_before_reset(local):
    Target("local", prefix="ada").client("s3").create_bucket(Bucket="ada-before")
    code, _, _ = _raw(local.port, "POST", "/moto-api/reset", _secret())  # not through labkit's CLI
    assert code == 200 and _buckets() == []
    assert "before-reset" in localaws.list_snapshots()
    localaws.restore("before-reset")
    assert _buckets() == ["ada-before"]


def test_a_reset_that_cannot_keep_the_state_is_refused_and_changes_nothing(local):
    Target("local", prefix="ada").client("s3").create_bucket(Bucket="ada-unkeepable")
    from labkit.localaws.control import snapshot_dir

    folder = snapshot_dir()
    aside = folder.with_name("snapshots.aside")
    folder.rename(aside)
    folder.write_text("in the way")  # the snapshot cannot be written (as a full disk would do)
    try:
        code, _, body = _raw(local.port, "POST", "/moto-api/reset", _secret())
        assert code == 503 and b"nothing you built is lost" in body
        code, _, _ = _raw(local.port, "POST", "/_labkit/replay", _secret(), body=b"")
        assert code == 503
    finally:
        folder.unlink()
        aside.rename(folder)
    assert _buckets() == ["ada-unkeepable"]


def test_a_state_already_in_a_snapshot_does_not_overwrite_an_older_kept_one(local):
    t = Target("local", prefix="ada")
    t.client("s3").create_bucket(Bucket="ada-first")
    assert _cli("reset").returncode == 0  # before-reset holds ada-first
    t.client("s3").create_bucket(Bucket="ada-second")
    localaws.save("guard-second", force=True)
    assert _cli("reset").stdout.strip().endswith("Your previous state is snapshot 'guard-second'.")
    localaws.restore("before-reset")
    assert _buckets() == ["ada-first"]


def test_a_restore_keeps_the_state_it_replaces_as_before_restore(local):
    t = Target("local", prefix="ada")
    t.client("s3").create_bucket(Bucket="ada-old")
    localaws.save("guard-old", force=True)
    localaws.reset()
    t.client("s3").create_bucket(Bucket="ada-new")
    localaws.restore("guard-old")
    assert _buckets() == ["ada-old"]
    localaws.restore("before-restore")
    assert _buckets() == ["ada-new"]


def test_save_over_a_snapshot_refuses_unless_forced(local):
    Target("local", prefix="ada").client("s3").create_bucket(Bucket="ada-one")
    assert _cli("save", "guard-twice", "--force").returncode == 0
    again = _cli("save", "guard-twice")
    assert again.returncode == 2 and "already a snapshot named 'guard-twice'" in again.stderr
    assert _one_sentence(again.stderr)
    Target("local", prefix="ada").client("s3").create_bucket(Bucket="ada-two")
    assert _cli("save", "guard-twice", "--force").returncode == 0
    localaws.reset()
    localaws.restore("guard-twice")
    assert _buckets() == ["ada-one", "ada-two"]


def test_empty_or_damaged_snapshots_are_not_listed_and_do_not_restore(local):
    Target("local", prefix="ada").client("s3").create_bucket(Bucket="ada-whole")
    localaws.save("guard-good", force=True)
    folder = config.state_dir() / "snapshots"
    good = (folder / "guard-good.ndjson").read_bytes()
    meta = (folder / "guard-good.json").read_text()
    (folder / "guard-empty.ndjson").write_bytes(b"")
    (folder / "guard-empty.json").write_text(meta)
    (folder / "guard-torn.ndjson").write_bytes(good[: len(good) // 2])  # a copy cut short
    (folder / "guard-torn.json").write_text(meta)
    (folder / "guard-edited.ndjson").write_bytes(b"x" * len(good))  # same size, not journal lines
    (folder / "guard-edited.json").write_text(meta)
    (folder / "guard-nometa.ndjson").write_bytes(good)  # a crash between the lines and the meta
    (folder / "guard-tornmeta.ndjson").write_bytes(good[: len(good) // 2].rstrip(b"\n")[:-1])  # cut short, and no note to tell
    listed = localaws.list_snapshots()
    # Whole lines without their note are still a snapshot (the note only holds the label and a digest).
    assert {"guard-good", "guard-nometa"} <= set(listed)
    assert not {"guard-empty", "guard-torn", "guard-edited", "guard-tornmeta"} & set(listed)
    for name in ("guard-empty", "guard-torn", "guard-edited", "guard-tornmeta"):
        run = _cli("restore", name)
        assert run.returncode == 2 and f"Snapshot '{name}' is damaged" in run.stderr and _one_sentence(run.stderr), name
    assert _buckets() == ["ada-whole"]


def test_an_empty_state_is_not_saved_as_a_snapshot(local):
    run = _cli("save", "guard-nothing")
    assert run.returncode == 2 and "empty" in run.stderr and _one_sentence(run.stderr)
    assert "guard-nothing" not in localaws.list_snapshots()


# -- owner-only state files -----------------------------------------------------------

def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_files_are_owner_only(local):
    import labkit
    from labkit import remember, starts

    Target("local", prefix="ada").client("s3").create_bucket(Bucket="ada-mode")
    labkit.configure(prefix="ada")
    localaws.save("guard-mode", force=True)
    remember.remembered("guard-verdicts", "key", lambda: True)
    starts._keep("99", "key", time.time())
    home = config.state_dir()
    try:
        assert _mode(home) == 0o700 and _mode(home / "snapshots") == 0o700 and _mode(home / "starts") == 0o700
        for name in ("journal.ndjson", "server.json", "server.log", "secret", "settings.json", "guard-verdicts",
                     "snapshots/guard-mode.ndjson", "snapshots/guard-mode.json", "starts/99.ndjson", "starts/99.json"):
            assert _mode(home / name) == 0o600, name
    finally:
        for name in ("starts/99.ndjson", "starts/99.json", "guard-verdicts", "settings.json"):
            (home / name).unlink(missing_ok=True)


def test_a_loose_state_folder_is_tightened(tmp_path, monkeypatch):
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    monkeypatch.setenv("LABKIT_HOME", str(loose))
    assert _mode(config.state_dir()) == 0o700


# -- loopback only ----------------------------------------------------------------------

def _listening(pid: int) -> list[str]:
    """Local addresses of the TCP sockets ``pid`` listens on, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        found = re.match(r"socket:\[(\d+)\]", os.readlink(fd)) if fd.exists() else None
        if found:
            inodes.add(found.group(1))
    out = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                raw = fields[1].split(":")[0]
                if width == 8:
                    out.append(".".join(str(b) for b in bytes.fromhex(raw)[::-1]))
                else:
                    words = [bytes.fromhex(raw[i:i + 8])[::-1].hex() for i in range(0, 32, 8)]
                    out.append(str(ipaddress.IPv6Address(bytes.fromhex("".join(words)))))
    return out


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads the listening sockets from /proc")
def test_the_server_listens_on_loopback_only(local):
    addresses = _listening(localaws.running()["pid"])
    assert addresses and all(a in ("127.0.0.1", "::1") for a in addresses), addresses


def test_a_non_loopback_address_is_refused_before_anything_starts(tmp_path, free_port):
    run = subprocess.run([sys.executable, "-m", "labkit.localaws", "--host", "0.0.0.0", "--port", str(free_port),
                          "--journal", str(tmp_path / "journal.ndjson")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "loopback only" in run.stderr and _one_sentence(run.stderr)


# -- one server per state folder --------------------------------------------------------

def _servers_of(journal: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                args = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"labkit.localaws" in args and str(journal).encode() in args:
                pids.append(int(proc.name))
    return pids


def _own_env(home: Path, port: int) -> dict:
    return {**os.environ, "LABKIT_HOME": str(home), "LABS_AWS_PORT": str(port), "LABKIT_EXIT_WITH_PID": str(os.getpid())}


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="counts processes from /proc")
def test_two_ups_at_once_give_one_server(tmp_path, free_port):
    env = _own_env(tmp_path / "home", free_port)
    both = [subprocess.Popen([sys.executable, "-m", "labkit", "up"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        outs = [p.communicate(timeout=180) for p in both]
        assert [p.returncode for p in both] == [0, 0], outs
        pids = {re.search(r"pid (\d+)", out).group(1) for out, _ in outs}
        assert len(pids) == 1, outs
        assert any("already running" in out for out, _ in outs)
        assert _servers_of((tmp_path / "home" / "journal.ndjson").resolve()) == [int(pids.pop())]
    finally:
        _cli("down", env=env)


def test_a_second_server_on_the_same_state_folder_refuses_to_start(local, free_port):
    run = subprocess.run([sys.executable, "-m", "labkit.localaws", "--port", str(free_port),
                          "--journal", str(localaws.journal_path())], capture_output=True, text=True, timeout=60)
    assert run.returncode == guard.ALREADY_SERVED and "already serves" in run.stderr and _one_sentence(run.stderr)
    assert localaws.running() is not None


# -- down never signals a foreign pid -----------------------------------------------------

def test_down_leaves_a_foreign_pid_alive_and_says_so(tmp_path, free_port):
    home = tmp_path / "home"
    home.mkdir()
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        (home / "server.json").write_text(json.dumps({"pid": stranger.pid, "port": free_port,
                                                      "endpoint": f"http://localhost:{free_port}"}))
        run = _cli("down", env=_own_env(home, free_port))
        assert stranger.poll() is None  # still alive: it was never signalled
        assert run.returncode == 2 and f"pid {stranger.pid} is not this folder's local AWS" in run.stderr
        assert _one_sentence(run.stderr)
        assert json.loads((home / "server.json").read_text())["pid"] == 0  # not tried again
    finally:
        stranger.kill()
        stranger.wait()


# -- servers do not outlive what they watch ----------------------------------------------

def test_the_server_stops_when_the_watched_process_is_gone(tmp_path, free_port):
    home = config.private_dir(tmp_path / "home")
    watched = subprocess.Popen(["sleep", "60"])
    server = subprocess.Popen([sys.executable, "-m", "labkit.localaws", "--port", str(free_port),
                               "--journal", str(home / "journal.ndjson")],
                              env={**os.environ, "LABKIT_EXIT_WITH_PID": str(watched.pid)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):  # wait (bounded) until it serves, so the stop below is the watch's doing
            if server.poll() is not None or _answers(free_port):
                break
            time.sleep(0.1)
        assert server.poll() is None and _answers(free_port)
        watched.kill()
        watched.wait()
        assert server.wait(timeout=60) == 0  # exited cleanly through its SIGTERM handler (app.close())
        assert "is gone; stopping" in server.stderr.read()
    finally:
        watched.kill()
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)


def _answers(port: int) -> bool:
    try:
        return _raw(port, "GET", "/_labkit/status")[0] == 200
    except OSError:
        return False
