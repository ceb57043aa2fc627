"""The local Lambda runner: runs exactly the deployed code, as Lambda would.

moto keeps a function's configuration and zip but cannot run it without
Docker. This extension answers Lambda's Invoke API itself, and its runner
(also used by the API gateway's Lambda proxy integrations) does:

- verify the zip against the function's ``CodeSha256``, and refuse to run it
  when the source folder it was packaged from has changed since (the learner
  would otherwise test code that is not what they are reading);
- run it in a separate Python process (``lambdaworker.py``) with the
  function's handler, environment, timeout and memory setting, and the
  execution role's temporary credentials, so the local AWS enforces the
  role's policies on every call the handler makes;
- keep that process warm for the next invocation, like a Lambda sandbox, within
  Lambda's concurrency rules sized for a laptop (``lambdapool.py``: reserved and
  account concurrency with 429s, queued inits, idle sandboxes retired);
- hold each sandbox to its memory setting while it runs (its resident memory is
  watched, with an address-space limit behind that), reported as Lambda's OOM;
- ship the handler's log lines to ``/aws/lambda/<name>`` using the role's
  credentials, so a role without log permissions loses its logs, as on AWS;
- answer in Lambda's own shapes (unhandled error payload, timeout, OOM).
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import queue
import re
import select
import shutil
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from ... import lambdas
from .. import courseca
from ..http import Request, Response
from . import Claim, Extension
from .lambdapool import RESERVED, THROTTLE_MESSAGE, Limits, Pool, Throttled
from .sessions import Clients, assume_role, put_log_events

log = logging.getLogger("labkit.lambda")
INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
INIT_TIMEOUT_S = 10  # Lambda's init phase limit
RUNTIME_BASE_MB = 40  # as lambdaworker.py counts it: Lambda's Python runtime before handler code
WATCH_S = 0.1  # how often a running sandbox's resident memory is looked at
SUPPORTED_PREFIX = "python3."


@dataclass
class FunctionSpec:
    """What the runner needs to know about one deployed function version."""

    name: str
    arn: str
    region: str
    account: str
    handler: str
    runtime: str
    env: dict
    timeout: int
    memory: int
    role: str
    code_sha: str
    code: bytes = field(repr=False)
    reserved: int | None = None  # reserved concurrency (PutFunctionConcurrency); not part of the sandbox

    def key(self) -> tuple:
        # A new sandbox whenever anything that shapes it changes (code, config, role).
        return (self.arn, self.code_sha, self.handler, self.runtime, json.dumps(self.env, sort_keys=True),
                self.timeout, self.memory, self.role)


@dataclass
class Invocation:
    payload: bytes
    function_error: str | None = None  # "Unhandled" like Lambda's X-Amz-Function-Error
    logs: list[str] = field(default_factory=list)
    duration_ms: float = 0.0
    throttled: str | None = None  # the Reason of Lambda's 429, when no sandbox could be had

    @property
    def body(self):
        return json.loads(self.payload) if self.payload else None


class Worker:
    def __init__(self, spec: FunctionSpec, code_dir: Path, env: dict, creds: dict):
        self.spec = spec
        self.creds = creds
        self.stream = time.strftime("%Y/%m/%d", time.gmtime()) + "/[$LATEST]" + uuid.uuid4().hex
        env = dict(env, AWS_LAMBDA_LOG_STREAM_NAME=self.stream)
        started = time.perf_counter()
        # Run the file, not the module: importing the labkit package would bloat the sandbox.
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("lambdaworker.py"))],
                                     cwd=code_dir, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.init_reply = self._read(INIT_TIMEOUT_S)
        self.init_ms = (time.perf_counter() - started) * 1000
        self.used = False  # the first invocation's REPORT carries the init duration, as on Lambda
        self.last_used = time.monotonic()
        self.generation = None
        baseline = (self.init_reply or {}).get("baseline_mb")
        # Resident memory the function may reach: the interpreter's own start-up plus its setting,
        # counted as the worker counts Max Memory Used.
        self.rss_limit_mb = baseline + spec.memory - RUNTIME_BASE_MB if baseline else None

    def _read(self, timeout_s: float, watch: bool = False) -> dict | None:
        deadline = time.monotonic() + max(timeout_s, 0)
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(min(left, WATCH_S) if watch else left, 0))
            if ready:
                line = self.proc.stdout.readline()
                return json.loads(line) if line else {"crashed": self.proc.poll()}
            if left <= 0:
                return None
            if watch and self.rss_limit_mb:
                rss = _rss_mb(self.proc.pid)
                if rss and rss > self.rss_limit_mb:  # over its memory setting while running: Lambda kills it
                    return {"oom_mb": rss - self.rss_limit_mb + self.spec.memory}

    def call(self, message: dict, timeout_s: float) -> dict | None:
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()
        return self._read(timeout_s, watch=True)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):  # sandboxes come and go: do not leak their pipes
            try:
                pipe.close()
            except OSError:
                pass


def _rss_mb(pid: int) -> int | None:
    """A process's resident memory now (Linux); None where /proc is not there."""
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // (1024 * 1024)
    except (OSError, ValueError, IndexError):
        return None


def error_body(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


class Runner:
    """A pool of warm workers keyed by function configuration."""

    def __init__(self, endpoint: str, code_root: Path, assume_role, limits: Limits | None = None):
        self.endpoint = endpoint
        self.code_root = code_root
        self.assume_role = assume_role  # (spec) -> {"AccessKeyId", "SecretAccessKey", "SessionToken"}
        self.pool = Pool(limits or Limits.for_this_machine(), self._start)
        self.lock = threading.Lock()
        self.logs: queue.Queue = queue.Queue()
        self._log_clients = Clients(endpoint)
        self._sessions: dict[str, dict] = {}  # role ARN -> its session credentials, shared by its sandboxes
        threading.Thread(target=self._ship_logs, name="lambda-logs", daemon=True).start()

    # -- the public entry point ---------------------------------------------
    def invoke(self, spec: FunctionSpec, event, request_id: str | None = None,
               caller_timeout_s: float | None = None) -> Invocation:
        """Run one event; ``caller_timeout_s`` is a caller's shorter patience (API Gateway's 29 s)."""
        request_id = request_id or str(uuid.uuid4())
        limit_s = min(spec.timeout, caller_timeout_s) if caller_timeout_s else spec.timeout
        if not (spec.runtime or "").startswith(SUPPORTED_PREFIX):
            return Invocation(error_body("Runtime.InvalidRuntime",
                                         f"The local runner runs Python functions only; {spec.name} uses {spec.runtime!r}."),
                              "Unhandled")
        refusal = self._check_code(spec)
        if refusal:
            return Invocation(refusal, "Unhandled")
        try:
            worker = self.pool.acquire(spec)
        except Throttled as throttled:
            return Invocation(b"", throttled=throttled.reason)
        keep = False
        try:
            result, keep = self._run(worker, spec, event, request_id, limit_s)
        finally:
            self.pool.release(worker, keep)
        return result

    def _run(self, worker: Worker, spec: FunctionSpec, event, request_id: str, limit_s: float) -> tuple[Invocation, bool]:
        """One invocation in ``worker``; (the result, whether the sandbox may serve again)."""
        if worker.init_reply is None or "init_error" in worker.init_reply or "crashed" in worker.init_reply:
            return self._init_failure(worker, request_id), False
        started = time.perf_counter()
        deadline_ms = time.time() * 1000 + spec.timeout * 1000
        reply = worker.call({"event": event, "request_id": request_id, "arn": spec.arn, "deadline_ms": deadline_ms},
                            limit_s)
        duration = (time.perf_counter() - started) * 1000
        init_ms = None if worker.used else worker.init_ms
        worker.used = True
        if reply is None:  # the timeout: Lambda stops the sandbox (and so does a caller giving up, here)
            worker.kill()
            result = Invocation(error_body("Sandbox.Timedout",
                                           f"RequestId: {request_id} Error: Task timed out after {limit_s:.2f} seconds"),
                                "Unhandled", [], duration)
            self._log(worker, request_id, [f"{_stamp()} {request_id} Task timed out after {limit_s:.2f} seconds"],
                      duration, init_ms, None)
            return result, False
        if "crashed" in reply:
            worker.kill()
            return Invocation(error_body("Runtime.ExitError",
                                         f"RequestId: {request_id} Error: Runtime exited with error: exit status {reply['crashed']}"),
                              "Unhandled", [], duration), False
        logs = reply.get("logs", [])
        max_mb = reply.get("max_rss_mb")
        if "oom_mb" in reply or reply.get("oom"):  # caught while running, or its address space ran out
            max_mb = max(reply.get("oom_mb") or 0, max_mb or 0, spec.memory + 1)
        if max_mb and max_mb > spec.memory:
            worker.kill()  # over the memory setting: Lambda kills the sandbox
            shipped = self._log(worker, request_id, logs, duration, init_ms, max_mb)
            return Invocation(error_body("Runtime.OutOfMemory",
                                         f"RequestId: {request_id} Error: Runtime exited with error: signal: killed "
                                         f"(used {max_mb} MB of {spec.memory} MB)"), "Unhandled", shipped, duration), False
        shipped = self._log(worker, request_id, logs, duration, init_ms, max_mb)  # Tail returns these, as Lambda does
        if "error" in reply:
            return Invocation(json.dumps(reply["error"]).encode(), "Unhandled", shipped, duration), True
        return Invocation(reply["result"].encode(), None, shipped, duration), True

    def clear(self) -> None:
        """Stop every sandbox (after a reset the role sessions they hold are gone)."""
        with self.lock:
            self._sessions.clear()
        self.pool.clear()

    def close(self) -> None:
        with self.lock:
            self._sessions.clear()
        self.pool.close()

    # -- code ---------------------------------------------------------------
    def _check_code(self, spec: FunctionSpec) -> bytes | None:
        if base64.b64encode(hashlib.sha256(spec.code).digest()).decode() != spec.code_sha:
            return error_body("Labkit.CodeNotFound",
                              f"The local AWS holds no code matching {spec.name}'s CodeSha256 {spec.code_sha}; deploy it again.")
        message = lambdas.drift(spec.code)
        if message:
            return error_body("Labkit.DeployedCodeDiffers", message[0].upper() + message[1:] + ".")
        return None

    def _code_dir(self, spec: FunctionSpec) -> Path:
        folder = self.code_root / hashlib.sha256(spec.code).hexdigest()
        if not folder.is_dir():
            partial = folder.with_name(folder.name + f".{os.getpid()}.{threading.get_ident()}")
            shutil.rmtree(partial, ignore_errors=True)
            zipfile.ZipFile(io.BytesIO(spec.code)).extractall(partial)
            try:
                partial.rename(folder)
            except OSError:  # another thread won the race: its copy is identical
                shutil.rmtree(partial, ignore_errors=True)
        return folder

    # -- sandboxes ----------------------------------------------------------
    def _start(self, spec: FunctionSpec) -> Worker:
        """A new sandbox for ``spec`` (the pool calls it with a concurrency slot and an init turn held)."""
        with self.lock:
            # One session per role: moto's ids are seeded, so two sessions made at
            # once would share an access key id and one of them would be refused.
            creds = self._sessions.get(spec.role)
            if creds is None:
                creds = self._sessions[spec.role] = self.assume_role(spec)
        return Worker(spec, self._code_dir(spec), self._env(spec, creds), creds)

    def _env(self, spec: FunctionSpec, creds: dict) -> dict:
        env = {k: str(v) for k, v in (spec.env or {}).items()}
        env.update({
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PYTHONDONTWRITEBYTECODE": "1",
            "_HANDLER": spec.handler or "",
            "AWS_REGION": spec.region,
            "AWS_DEFAULT_REGION": spec.region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "LAMBDA_TASK_ROOT": str(self.code_root),
            # The handler's boto3 talks to the local AWS, as the execution role.
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
            "AWS_SESSION_TOKEN": creds["SessionToken"],
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_MAX_ATTEMPTS": "1",
            "MALLOC_ARENA_MAX": "2",  # per-thread malloc arenas would inflate the address space it is held to
        })
        trust = courseca.folder(self.code_root.parent) / "trust.pem"
        if trust.exists():  # as Lambda's trust store holds the roots AWS's endpoints chain to: the course CA too
            env["SSL_CERT_FILE"] = str(trust)
        return env

    def _init_failure(self, worker: Worker, request_id: str) -> Invocation:
        reply = worker.init_reply
        worker.kill()
        if reply is None:
            payload = error_body("Runtime.InitTimeout", f"RequestId: {request_id} Error: init timed out after {INIT_TIMEOUT_S} seconds")
            logs: list[str] = []
        elif "crashed" in reply:
            payload = error_body("Runtime.ExitError", f"RequestId: {request_id} Error: Runtime exited during init")
            logs = []
        else:
            payload = json.dumps(reply["init_error"]).encode()
            logs = reply.get("logs", []) + [f"[ERROR] {reply['init_error']['errorType']}: {reply['init_error']['errorMessage']}"]
        self._log(worker, request_id, logs, 0.0, worker.init_ms, None)
        return Invocation(payload, "Unhandled", logs)

    # -- logs ---------------------------------------------------------------
    def _log(self, worker: Worker, request_id: str, lines: list[str], duration_ms: float,
             init_ms: float | None, max_mb: int | None) -> list[str]:
        spec = worker.spec
        report = (f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
                  f"Billed Duration: {max(1, int(duration_ms + 0.999))} ms\tMemory Size: {spec.memory} MB"
                  + (f"\tMax Memory Used: {max_mb} MB" if max_mb else "")
                  + (f"\tInit Duration: {init_ms:.2f} ms" if init_ms else ""))
        messages = ([f"START RequestId: {request_id} Version: $LATEST", *lines, f"END RequestId: {request_id}", report])
        self.logs.put((spec, worker.creds, worker.stream, messages, int(time.time() * 1000)))
        return messages

    def _ship_logs(self) -> None:
        # Like Lambda, deliver in batches: one PutLogEvents per stream for what has
        # piled up, so a busy function costs the local AWS one call, not one per request.
        while True:
            batches: dict = {}
            item = self.logs.get()
            while item is not None:
                spec, creds, stream, messages, when = item
                key = (spec.arn, stream, creds["AccessKeyId"], creds["SessionToken"])
                batches.setdefault(key, [spec, creds, stream, []])[3].extend(
                    {"timestamp": when, "message": m} for m in messages)
                try:
                    item = self.logs.get_nowait()
                except queue.Empty:
                    item = None
            for spec, creds, stream, events in batches.values():
                try:
                    self._put_logs(spec, creds, stream, events)
                except Exception as exc:  # on AWS too, a role without log rights loses its logs
                    log.warning("logs of %s not delivered: %s", spec.name, exc)

    def _put_logs(self, spec, creds, stream, events: list[dict]) -> None:
        put_log_events(self._log_clients.get("logs", spec.region, creds), f"/aws/lambda/{spec.name}", stream, events)


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"


# -- the extension: Lambda's Invoke API, and function lookups for others ------------

class LambdaRuntime(Extension):
    name = "lambda"
    services = ()  # it reads each function afresh on every invoke

    def __init__(self, host):
        super().__init__(host)
        self.runner = Runner(host.endpoint, host.state_dir / "lambda-code", self.assume_role)

    def claims(self, request: Request) -> Claim | None:
        if request.method == "POST" and INVOKE.match(request.path):
            return Claim.DATA
        return None

    def handle(self, request: Request) -> Response:
        name = unquote(INVOKE.match(request.path).group("name"))
        region, _ = request.scope
        try:
            spec, _ = self.spec(name, region)
        except LookupError as exc:
            return _lambda_error(404, "ResourceNotFoundException", f"Function not found: {name} ({exc})")
        kind = request.header("X-Amz-Invocation-Type", "RequestResponse")
        if kind == "DryRun":
            return Response(204)
        try:
            event = json.loads(request.body) if request.body else {}
        except ValueError:
            return _lambda_error(400, "InvalidRequestContentException", "Could not parse request body into json")
        if kind == "Event":
            threading.Thread(target=self._invoke_later, args=(spec, event), daemon=True).start()
            return Response(202)
        result = self.runner.invoke(spec, event)
        if result.throttled:
            return _throttled(result.throttled)
        headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST"}
        if result.function_error:
            headers["X-Amz-Function-Error"] = result.function_error
        if request.header("X-Amz-Log-Type") == "Tail":
            tail = "\n".join(result.logs).encode()[-4096:]
            headers["X-Amz-Log-Result"] = base64.b64encode(tail).decode()
        return Response(200, result.payload, headers)

    def reset(self) -> None:
        self.runner.clear()  # their role sessions are gone with the state

    def restored(self) -> None:
        self.runner.clear()

    def close(self) -> None:
        self.runner.close()

    def status(self) -> dict:
        return self.runner.pool.status()

    def _invoke_later(self, spec: FunctionSpec, event) -> None:
        # Lambda queues asynchronous events and retries them while throttled; here for up to two minutes.
        deadline = time.monotonic() + 120
        while self.runner.invoke(spec, event).throttled and time.monotonic() < deadline:
            time.sleep(1)

    # -- moto's models ----------------------------------------------------------
    def spec(self, name_or_arn: str, region: str | None = None, account: str | None = None):
        """(FunctionSpec, resource policy or None) of a deployed function; LookupError if there is none."""
        from moto.awslambda.utils import get_backend  # the Docker-free backend fidelity chose

        from ...config import LOCAL_ACCOUNT_ID

        if name_or_arn.startswith("arn:"):
            region, account = name_or_arn.split(":")[3:5]
        region, account = region or "us-east-1", account or LOCAL_ACCOUNT_ID

        def look():
            backend = get_backend(account, region)
            try:
                fn = backend.get_function(name_or_arn)
            except Exception as exc:
                log.info("function lookup failed: %r", exc)
                raise LookupError(f"No Lambda function {name_or_arn} in the local AWS ({region}).") from None
            try:
                policy = json.loads(json.loads(backend.get_policy(fn.function_name))["Policy"])
            except Exception as exc:  # no policy yet: nothing may invoke it
                log.debug("no resource policy on %s: %r", fn.function_name, exc)
                policy = None
            return FunctionSpec(name=fn.function_name, arn=fn.function_arn.split(":$LATEST")[0], region=region,
                                account=account, handler=fn.handler, runtime=fn.run_time,
                                env=dict(fn.environment_vars or {}), timeout=int(fn.timeout or 3),
                                memory=int(fn.memory_size or 128), role=fn.role, code_sha=fn.code_sha_256,
                                code=fn.code_bytes or b"", reserved=_reserved(fn)), policy

        return self.host.read_backend(look)

    def assume_role(self, spec: FunctionSpec) -> dict:
        return assume_role(self.host, spec.account, spec.region, spec.role, spec.name)


def _reserved(fn) -> int | None:
    # moto keeps PutFunctionConcurrency's value on the function (a string or an int), None when unset.
    value = getattr(fn, "reserved_concurrency", None)
    try:
        return None if value is None or value == "" else int(value)
    except (TypeError, ValueError):
        return None


def _throttled(reason: str) -> Response:
    """Lambda's 429 for Invoke over a concurrency limit (TooManyRequestsException with its Reason)."""
    note = ("the function's reserved concurrency is in use" if reason == RESERVED
            else "the local AWS's concurrency limit (LABKIT_LAMBDA_CONCURRENCY) is in use")
    body = {"Type": "User", "message": THROTTLE_MESSAGE, "Reason": reason, "localNote": note}
    return Response(429, json.dumps(body).encode(), {"Content-Type": "application/json", "Retry-After": "1",
                                                     "x-amzn-ErrorType": "TooManyRequestsException"})


def _lambda_error(status: int, error_type: str, message: str) -> Response:
    return Response(status, json.dumps({"Type": "User", "message": message}).encode(),
                    {"Content-Type": "application/json", "x-amzn-ErrorType": error_type})


EXTENSION = LambdaRuntime
