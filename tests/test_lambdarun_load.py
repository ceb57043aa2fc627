"""The Lambda runner under load behaves as Lambda does: concurrency limits with 429s, no failures
within the limits, idle sandboxes retired, memory held to the function's setting.

The runner tests use real sandboxes (worker processes) with limits given to the
runner; the Invoke tests go through the real local AWS process.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from labkit import lambdas
from labkit.localaws.extensions.lambdapool import ACCOUNT, RESERVED, Limits
from labkit.localaws.extensions.lambdarun import FunctionSpec, Runner
from labkit.target import Target

SLEEPER = "import time\ndef main(event, context):\n    time.sleep(event.get('sleep', 0))\n    return {'ok': event.get('n')}\n"
HOG = ("import time\nheld = []\ndef main(event, context):\n    held.append(bytearray(event['mb'] * 1024 * 1024))\n"
       "    time.sleep(event.get('sleep', 0))\n    return {'held': len(held)}\n")


def spec_for(folder: Path, source: str, name: str = "load", memory: int = 128, reserved: int | None = None,
             timeout: int = 60) -> FunctionSpec:
    folder.mkdir(exist_ok=True)
    (folder / "app.py").write_text(source)
    code = lambdas.package(folder)
    return FunctionSpec(name=name, arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}", region="us-east-1",
                        account="123456789012", handler="app.main", runtime="python3.12", env={}, timeout=timeout,
                        memory=memory, role="arn:aws:iam::123456789012:role/load", code_sha=lambdas.code_sha256(code),
                        code=code, reserved=reserved)


@pytest.fixture
def runner_with(tmp_path, free_port):
    made: list[Runner] = []

    def make(**limits) -> Runner:
        creds = {"AccessKeyId": "testing", "SecretAccessKey": "testing", "SessionToken": "testing"}
        # Nothing listens at the endpoint: these handlers call no AWS API, and their logs are dropped.
        runner = Runner(f"http://localhost:{free_port}", tmp_path / "code", lambda spec: creds,
                        Limits.for_this_machine(**limits))
        made.append(runner)
        return runner

    yield make
    for runner in made:
        runner.close()


def at_once(count: int, call) -> list:
    """``call(i)`` from ``count`` threads released together; the results in order."""
    results: list = [None] * count
    gate = threading.Barrier(count)

    def run(i):
        gate.wait()
        results[i] = call(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def test_two_dozen_requests_at_once_within_the_limit_all_succeed(runner_with, tmp_path):
    runner = runner_with(concurrency=24, parallel_inits=2)
    spec = spec_for(tmp_path / "fn", SLEEPER)
    results = at_once(24, lambda i: runner.invoke(spec, {"n": i, "sleep": 0.2}))
    assert [r.throttled for r in results] == [None] * 24
    assert [r.function_error for r in results] == [None] * 24, [r.body for r in results if r.function_error]
    assert sorted(r.body["ok"] for r in results) == list(range(24))
    assert runner.pool.status()["peak_sandboxes"] <= 24


def test_over_the_local_limit_invoke_is_throttled_not_queued(runner_with, tmp_path):
    runner = runner_with(concurrency=4)
    spec = spec_for(tmp_path / "fn", SLEEPER)
    results = at_once(8, lambda i: runner.invoke(spec, {"n": i, "sleep": 3}))
    assert sorted(str(r.throttled) for r in results) == [ACCOUNT] * 4 + ["None"] * 4
    assert all(r.function_error is None for r in results if not r.throttled)
    assert runner.pool.status()["peak_sandboxes"] <= 4


def test_sandboxes_alive_never_outnumber_the_limit(runner_with, tmp_path):
    runner = runner_with(concurrency=2)
    for n in range(3):  # three functions in turn: each new one evicts the longest-idle sandbox
        spec = spec_for(tmp_path / f"fn{n}", SLEEPER, name=f"fn{n}")
        assert runner.invoke(spec, {"n": n}).body == {"ok": n}
    assert runner.pool.status()["sandboxes"] == 2 and len(runner.pool.pids()) == 2


def test_an_idle_sandbox_is_retired(runner_with, tmp_path):
    runner = runner_with(idle_s=0.5)
    spec = spec_for(tmp_path / "fn", SLEEPER)
    assert runner.invoke(spec, {"n": 1}).body == {"ok": 1}
    [pid] = runner.pool.pids()
    deadline = time.monotonic() + 60  # a guard: the reaper looks every idle_s / 4
    while runner.pool.pids() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert runner.pool.status()["warm_sandboxes"] == 0 and runner.pool.status()["sandboxes"] == 0
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    assert runner.invoke(spec, {"n": 2}).body == {"ok": 2}  # and the next request starts a fresh one


def test_a_sandbox_over_its_memory_is_stopped_while_it_runs(runner_with, tmp_path):
    runner = runner_with()
    spec = spec_for(tmp_path / "fn", HOG, memory=128)
    # Without the watch, this would run until the caller's 30 s patience ran out (a timeout, not OOM).
    result = runner.invoke(spec, {"mb": 300, "sleep": 600}, caller_timeout_s=30)
    assert result.function_error == "Unhandled"
    assert result.body["errorType"] == "Runtime.OutOfMemory", result.body
    assert runner.pool.status()["sandboxes"] == 0


def test_a_sandboxs_address_space_is_held_near_its_memory_setting():
    worker_dir = Path(__file__).resolve().parent.parent / "labkit" / "localaws" / "extensions"
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import lambdaworker as w; w.hold_address_space(128)\n"
             "try:\n    bytearray(4 * 1024 ** 3)\nexcept MemoryError:\n    print('refused')\n")
    done = subprocess.run([sys.executable, "-c", probe, str(worker_dir)], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "refused", done.stderr


def test_limits_are_sized_from_the_machine_and_overridable(monkeypatch):
    monkeypatch.delenv("LABKIT_LAMBDA_CONCURRENCY", raising=False)
    sized = Limits.for_this_machine()
    assert 2 <= sized.concurrency <= 32 and 1 <= sized.parallel_inits <= sized.concurrency
    monkeypatch.setenv("LABKIT_LAMBDA_CONCURRENCY", "3")
    monkeypatch.setenv("LABKIT_LAMBDA_IDLE_S", "7.5")
    assert (Limits.for_this_machine().concurrency, Limits.for_this_machine().idle_s) == (3, 7.5)


# -- through the local AWS: reserved concurrency and Lambda's 429 --------------------------------

@pytest.fixture
def deployed(local, tmp_path):
    t = Target("local", prefix="ld", region="us-east-1")
    role = t.client("iam").create_role(RoleName="ld-fn", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text(SLEEPER)
    t.client("lambda").create_function(FunctionName="ld-sleeper", Runtime="python3.12", Role=role, Handler="app.main",
                                       Code={"ZipFile": lambdas.package(tmp_path / "fn")}, Timeout=20)
    return t


def test_reserved_concurrency_of_one_throttles_the_second_invoke(deployed):
    lam = deployed.client("lambda")
    lam.put_function_concurrency(FunctionName="ld-sleeper", ReservedConcurrentExecutions=1)

    def call(i):
        try:
            answer = lam.invoke(FunctionName="ld-sleeper", Payload=json.dumps({"n": i, "sleep": 3}))
            return json.loads(answer["Payload"].read())
        except lam.exceptions.TooManyRequestsException as exc:
            return exc.response

    results = at_once(2, call)
    throttled = [r for r in results if "Error" in r]
    assert len(throttled) == 1, results
    assert throttled[0]["Error"]["Code"] == "TooManyRequestsException"
    assert throttled[0]["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert throttled[0]["Reason"] == RESERVED
    assert [r for r in results if "Error" not in r][0]["ok"] in (0, 1)


def test_reserved_concurrency_of_zero_stops_every_invoke(deployed):
    lam = deployed.client("lambda")
    lam.put_function_concurrency(FunctionName="ld-sleeper", ReservedConcurrentExecutions=0)
    with pytest.raises(lam.exceptions.TooManyRequestsException) as caught:
        lam.invoke(FunctionName="ld-sleeper", Payload=b"{}")
    assert caught.value.response["Reason"] == RESERVED
    lam.delete_function_concurrency(FunctionName="ld-sleeper")
    assert json.loads(lam.invoke(FunctionName="ld-sleeper", Payload=b'{"n": 5}')["Payload"].read()) == {"ok": 5}


def test_memory_is_counted_from_the_sandbox_not_the_process_that_started_it(runner_with, tmp_path):
    ballast = bytearray(400 * 1024 * 1024)  # the starting process is big, as the local AWS is (Linux keeps ru_maxrss across exec)
    runner = runner_with()
    spec = spec_for(tmp_path / "fn", HOG, memory=128)
    result = runner.invoke(spec, {"mb": 200}, caller_timeout_s=30)
    del ballast
    assert result.function_error == "Unhandled" and result.body["errorType"] == "Runtime.OutOfMemory", result.body
