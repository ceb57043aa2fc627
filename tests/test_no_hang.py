"""No learner command hangs on a port held by a listener that accepts and never answers."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUARD_S = 120  # a guard against a hang, not a speed assertion


@pytest.fixture
def silent_port():
    """A loopback port whose listener accepts connections and never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=GUARD_S,
                          env={**os.environ, **env})


def one_sentence(text: str) -> str:
    text = text.strip()
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    return text


def test_checks_say_the_local_aws_did_not_answer(silent_port):
    done = run("-m", "checks", "00", LABS_AWS_PORT=str(silent_port))
    assert done.returncode == 2
    message = one_sentence(done.stderr)
    assert f"The local AWS at http://localhost:{silent_port} accepted the connection but did not answer" in message


def test_live_checks_say_the_endpoint_override_did_not_answer(silent_port):
    url = f"http://localhost:{silent_port}"
    done = run("-m", "checks", "00", "--live", AWS_ENDPOINT_URL=url)
    assert done.returncode == 2
    assert f"The AWS endpoint set in AWS_ENDPOINT_URL at {url} accepted the connection but did not answer" in \
        one_sentence(done.stderr)


def test_live_cleanup_says_the_endpoint_override_did_not_answer(silent_port):
    url = f"http://localhost:{silent_port}"
    done = run("-m", "labkit", "cleanup", "--live", "--dry-run", AWS_ENDPOINT_URL=url)
    assert done.returncode == 2
    assert f"The AWS endpoint set in AWS_ENDPOINT_URL at {url} accepted the connection" in one_sentence(done.stderr)


def test_labkit_status_and_up_name_the_held_port(silent_port):
    status = run("-m", "labkit", "status", LABS_AWS_PORT=str(silent_port))
    assert status.returncode == 1
    assert "another program holds that port without answering" in one_sentence(status.stdout)
    up = run("-m", "labkit", "up", LABS_AWS_PORT=str(silent_port))
    assert up.returncode == 2
    assert f"Port {silent_port} is taken by another program" in one_sentence(up.stderr)


def test_a_control_call_that_gets_no_answer_is_one_sentence(silent_port, monkeypatch):
    from labkit.errors import LabkitError
    from labkit.localaws import control

    with pytest.raises(LabkitError, match=f"localhost:{silent_port}.* did not answer within 0.5 s"):
        control._ask("GET", f"http://localhost:{silent_port}/_labkit/journal", timeout=0.5)


def test_clients_bound_their_waits_per_purpose():
    from labkit.target import Target

    t = Target("local", prefix="ada", region="us-east-1", endpoint="http://localhost:1")
    assert (t.client("s3").meta.config.connect_timeout, t.client("s3").meta.config.read_timeout) == (2, 30)
    assert t.client("lambda").meta.config.read_timeout == 905  # Invoke waits out the function's own timeout
    live = Target("live", prefix="ada", region="us-east-1")
    live._session = t.session()
    assert live.client("dynamodb").meta.config.read_timeout == 60
