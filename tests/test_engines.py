"""The engine platform (``labkit.localaws.engines``) with plain processes: who runs them, what they reach,
how they stop, and what a learner reads when one cannot start."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from labkit.localaws import engines

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the engine platform is tested on Linux")


def _state(tmp_path) -> Path:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "secret").write_text("install secret")
    (state / "secret").chmod(0o600)
    return state


def _status(pid: int, field: str) -> str:
    return next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if line.startswith(field + ":")).split()[1]


def test_an_engine_reaches_its_own_data_folder_and_nothing_else_of_the_state(tmp_path):
    state = _state(tmp_path)
    data = engines.data_root(state) / "one"
    script = f"echo kept > {data}/file && cat {data}/file && cat {state / 'secret'}"
    done = tmp_path / "done.log"
    engines.run(["/bin/sh", "-c", script + " || echo refused"], data_dir=data, log_file=done)
    out = done.read_text()
    assert "kept" in out and (data / "file").read_text() == "kept\n"
    if os.geteuid() == 0:  # as the unprivileged engine user: its folder through the descriptor, the secret refused
        assert "refused" in out and "install secret" not in out
        assert (data / "file").stat().st_uid == engines.engine_user()[0]
        assert oct(state.stat().st_mode & 0o777) == "0o700"  # nothing was opened up for it


def test_an_engine_runs_unprivileged_in_its_own_group_and_stop_ends_it(tmp_path):
    state = _state(tmp_path)
    process = engines.Process("sleeper", ["/bin/sleep", "60"], data_dir=engines.data_root(state) / "s",
                              log_file=state / "engines" / "s.log")
    process.start(lambda: True)
    try:
        assert process.alive and os.getpgid(process.pid) == process.pid != os.getpgid(0)
        if os.geteuid() == 0:
            assert _status(process.pid, "Uid") != "0"
        assert _status(process.pid, "PPid") == str(os.getpid())
    finally:
        process.stop()
    assert not process.alive
    process.stop()  # twice is harmless


def test_an_engine_that_stops_while_starting_is_one_sentence_quoting_its_log(tmp_path):
    state = _state(tmp_path)
    process = engines.Process("broken", ["/bin/sh", "-c", "echo 'FATAL: could not bind 127.0.0.1'; exit 3"],
                              data_dir=None, log_file=state / "broken.log")
    with pytest.raises(engines.EngineError, match=r"stopped while starting \(exit 3\); its log says: FATAL: could not bind"):
        process.start(lambda: False)


def test_an_engine_not_ready_in_time_is_stopped_and_named(tmp_path):
    state = _state(tmp_path)
    process = engines.Process("slow", ["/bin/sleep", "60"], data_dir=None, log_file=state / "slow.log")
    with pytest.raises(engines.EngineError, match="was not ready within 0.2 s"):
        process.start(lambda: False, timeout=0.2)
    assert not process.alive


def test_free_ports_are_loopback_ports_nothing_listens_on():
    port = engines.free_port()
    assert 0 < port < 65536 and engines.port_free(port) and not engines.listening(port)
