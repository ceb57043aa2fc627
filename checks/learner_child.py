"""The child side of checks.learner: runs a learner module's functions, far from the grader.

Started as ``python checks/learner_child.py READ_FD WRITE_FD`` (a file, not ``-m``: importing the
``checks`` package would load the grader). It reads JSON lines from READ_FD and answers each with
one JSON line on WRITE_FD; the learner's prints go to its stdout/stderr, which the grader keeps
apart. It imports nothing of the grader (no ``checks``
package code runs here but this file) so learner code has nothing of the grader's to patch.

The first line opens a session: ``module`` (path), ``client`` (how to build the DynamoDB client: an endpoint with
credentials, or ``chain`` for the normal AWS credential chain), optional ``sandbox`` (create_table
arguments: the client then talks to an empty moto of its own, in this process, reaching no
network), ``max_calls``, ``page_limit`` (Query and Scan pages forced that small, where no grading
server forces them) and ``functions`` (answered with those the module defines). Every further line is a step, one of:

- ``{"call": name, "args": [...], "kwargs": {...}, "client": bool}``: call a function of the module,
  with the client first when ``client``; answers its result as JSON (or the error), the DynamoDB
  calls it made (counted here) and, in the sandbox, the writes;
- ``{"put": table, "item": {...}}`` / ``{"get": table, "key": {...}}``: set up or look at the sandbox.
"""
from __future__ import annotations

import base64
import json
import os
import sys

_write, _dumps, _exit = os.write, json.dumps, os._exit  # kept before learner code can replace them
READS = ("GetItem", "BatchGetItem", "Query", "Scan")
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


class TooManyCalls(RuntimeError):
    pass


class WriteRefused(RuntimeError):
    """A read session's courtesy: the write is refused before it is sent (the server refuses it anyway)."""


def plain(value, depth=0):
    """A JSON-able copy: Decimal as int or float, sets as sorted lists, bytes as text."""
    if depth > 50:
        return "..."
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value
    kind = type(value).__name__
    if kind == "Decimal":
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {str(k): plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((plain(v, depth + 1) for v in value), key=str)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if kind == "Binary":  # boto3's wrapper for binary attributes
        return bytes(value.value).decode("utf-8", "replace")
    meta = getattr(value, "meta", None)
    service = getattr(getattr(meta, "service_model", None), "service_name", None)
    return {"__object__": kind, "module": type(value).__module__, "service": service}


def _error(exc) -> dict:
    if isinstance(exc, WriteRefused):
        return {"type": "WriteRefused", "code": str(exc), "message": "refused"}
    response = getattr(exc, "response", None)
    code = (response or {}).get("Error", {}).get("Code") if isinstance(response, dict) else None
    message = (response or {}).get("Error", {}).get("Message") if code else str(exc)
    return {"type": type(exc).__name__, "code": code, "message": str(message)[:300],
            "os_error": isinstance(exc, OSError),
            "mistake": isinstance(exc, (TypeError, ValueError, AttributeError, NameError, ImportError, LookupError))}


class Counter:
    """The DynamoDB calls made through one client, as the grader counts them where no server log exists."""

    def __init__(self, max_calls: int, page_limit: int | None, reads_only: bool):
        self.max_calls, self.page_limit, self.reads_only = max_calls, page_limit, reads_only
        self.calls, self.writes, self.started = [], [], 0

    def params(self, params, model, context, **_):
        self.started += 1
        if self.started > self.max_calls:
            raise TooManyCalls(f"it made more than {self.max_calls} DynamoDB calls for one answer; does its loop end?")
        if model.name in WRITES and self.reads_only:
            raise WriteRefused(model.name)
        if self.page_limit and model.name == "Query":
            # Small pages, as the grading server forces them: a function must follow LastEvaluatedKey.
            params["Limit"] = min(params.get("Limit") or self.page_limit, self.page_limit)
        context["learner"] = {"index": params.get("IndexName"), "limit": params.get("Limit"),
                              "start": bool(params.get("ExclusiveStartKey"))}
        if model.name in WRITES:
            self.writes.append([model.name, bool(params.get("ConditionExpression"))])

    def answer(self, parsed, model, context, **_):
        if model.name not in READS:
            return
        call = dict(context.get("learner", {}), op=model.name)
        if model.name == "GetItem":
            call["read"] = call["returned"] = 1 if parsed.get("Item") else 0
        else:
            call["read"] = parsed.get("ScannedCount", parsed.get("Count", 0))
            call["returned"] = parsed.get("Count", 0)
        call["more"] = "LastEvaluatedKey" in parsed
        self.calls.append(call)

    def take(self):
        calls, writes = self.calls, self.writes
        self.calls, self.writes, self.started = [], [], 0
        return calls, writes


_WARM = None  # in a forked child: the zygote's botocore session, its service model already parsed


def _session(warm: bool = True, **kwargs):
    import boto3

    # Never for the sandbox: moto's mock hooks into sessions made after moto is imported, and the warm one
    # was made before; a sandbox client on it would send to AWS's real address.
    return boto3.Session(botocore_session=_WARM, **kwargs) if warm and _WARM is not None else boto3.Session(**kwargs)


def _client(spec: dict, sandbox: bool):
    from botocore.config import Config

    config = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 1, "mode": "standard"})
    region = spec.get("region") or "us-east-1"
    if sandbox:
        # AWS's own address: moto's mock answers it in this process; nothing leaves the machine.
        return _session(False, aws_access_key_id="sandbox", aws_secret_access_key="sandbox",
                        region_name=region).client("dynamodb", config=config,
                                                        endpoint_url=f"https://dynamodb.{region}.amazonaws.com")
    if spec.get("chain"):
        return _session(region_name=region).client("dynamodb", config=config)
    return _session(region_name=region, **spec.get("credentials", {})).client(
        "dynamodb", config=config, endpoint_url=spec.get("endpoint"))


def _load(path: str, source: bytes):
    import types

    module = types.ModuleType("queries")
    module.__file__ = path
    sys.modules["queries"] = module
    sys.path.insert(0, os.path.dirname(path))  # its sibling modules, where the folder is visible
    try:
        exec(compile(source, path, "exec"), module.__dict__)
    except SyntaxError as exc:
        return None, f"{os.path.basename(path)} does not compile: {exc.msg} on line {exc.lineno}."
    except BaseException as exc:  # the learner's import-time code failed; say how, in one sentence
        return None, f"Importing {os.path.basename(path)} failed: {type(exc).__name__}: {str(exc)[:200]}."
    return module, None


def _step(step: dict, module, client, observer, counter) -> dict:
    if "put" in step:
        observer.put_item(TableName=step["put"], Item=step["item"])
        return {}
    if "get" in step:
        return {"item": plain(observer.get_item(TableName=step["get"], Key=step["key"]).get("Item"))}
    name = step["call"]
    func = getattr(module, name, None)
    if not callable(func):
        return {"missing": True}
    try:
        if "client_from" in step:  # the learner's own factory makes the client (the read path, L04.18)
            made = step["client_from"]
            client = getattr(module, made["call"])(*made.get("args", []))
        args = ([client] if step.get("client") else []) + list(step.get("args", []))
        value = func(*args, **step.get("kwargs", {}))
        out = {"value": plain(value)}
    except BaseException as exc:  # whatever the learner's code raised, SystemExit too, comes back as data
        out = {"error": _error(exc)}
    out["calls"], out["writes"] = counter.take()
    return out


def _open(request: dict):
    """(module, client, observer, counter) for the session ``request`` asks, or an answer saying why not."""
    sandbox = request.get("sandbox")
    if sandbox is not None:
        from moto import mock_aws

        mock_aws().start()
    counter = Counter(request.get("max_calls", 50), request.get("page_limit"), sandbox is None)
    client = _client(request.get("client", {}), sandbox is not None)
    observer = None
    if sandbox is not None:
        observer = _client({"region": request.get("client", {}).get("region")}, True)
        for table in sandbox:
            observer.create_table(**table)
    events = client.meta.events
    events.register("provide-client-params.dynamodb", counter.params)
    events.register("after-call.dynamodb", counter.answer)
    module, problem = _load(request["module"], base64.b64decode(request["source"]))
    return module, client, observer, counter, problem


def _defined(module, names) -> list[str]:
    return [n for n in names if callable(getattr(module, n, None))]


def _send(write_fd: int, answer: dict) -> None:
    data = _dumps(answer, default=str).encode() + b"\n"
    while data:
        data = data[_write(write_fd, data):]


def _serve(read_fd: int, write_fd: int) -> None:
    """One JSON line opens the session (answered ``ready`` or why not); each further line is a step."""
    lines = os.fdopen(read_fd, "rb", buffering=0)
    reader = iter(lines.readline, b"")
    try:
        first = json.loads(next(reader))
        module, client, observer, counter, problem = _open(first)
        _send(write_fd, {"problem": problem} if problem else
              {"defined": _defined(module, first.get("functions", []))})
        if problem:
            _exit(0)
        for line in reader:
            _send(write_fd, _step(json.loads(line), module, client, observer, counter))
    except BaseException as exc:  # the child's own failure (or a learner's exit): say so rather than die silently
        try:
            _send(write_fd, {"failure": f"{type(exc).__name__}: {str(exc)[:300]}"})
        except BaseException:
            pass
    sys.stdout.flush()
    sys.stderr.flush()
    _exit(0)  # no atexit handlers or threads of the learner's run after the last answer


def _zygote(sock_fd: int) -> None:
    """Load boto3 once, then fork a fresh child for every request on the socket, until it closes.

    Each request is one message: JSON (``env``: the child's AWS_* variables, ``home``: its folder) with
    three descriptors (the child's input, its answers, its output). In a pid namespace this process is
    its first: it reaps every process that ends there, and when it ends the kernel ends them all.
    When a child ends, its exit status goes down its answer pipe as a last line, so the grader can say
    how it died without being its parent.
    """
    import signal
    import socket

    import boto3  # noqa: F401  (what every child needs, loaded once)
    import botocore.session

    global _WARM
    _WARM = botocore.session.get_session()
    _WARM.get_service_model("dynamodb")  # parsed once here, shared by every fork

    answers: dict[int, int] = {}  # child pid -> a copy of its answer pipe, for its exit status

    def reap(*_):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            fd = answers.pop(pid, None)
            if fd is not None:
                code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
                try:
                    os.write(fd, _dumps({"exited": code}).encode() + b"\n")
                except OSError:
                    pass
                os.close(fd)

    sock = socket.socket(fileno=sock_fd)
    signal.signal(signal.SIGCHLD, reap)
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, 1 << 16, 3)
        except InterruptedError:
            continue
        except OSError:
            break
        if not message:
            break  # the grader closed the socket: this run is over
        request = json.loads(message)
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])  # no reap between fork and keeping the pipe
        pid = os.fork()
        if pid == 0:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGCHLD])
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            sock.close()
            os.setsid()  # its own process group: the grader stops it and what it started together
            for fd in (1, 2):
                os.dup2(fds[2], fd)
            os.close(fds[2])
            for key in [k for k in os.environ if k.startswith("AWS_")]:
                del os.environ[key]
            os.environ.update(request.get("env", {}))
            home = request.get("home")
            if home:
                os.makedirs(home, mode=0o700, exist_ok=True)
                os.environ["HOME"] = home
                os.chdir(home)
            _serve(fds[0], fds[1])
        answers[pid] = os.dup(fds[1])
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGCHLD])
        for fd in fds:
            os.close(fd)
        sock.send(_dumps({"pid": pid}).encode())
    _exit(0)


def main() -> None:
    if sys.argv[1] == "--zygote":
        _zygote(int(sys.argv[2]))
    _serve(int(sys.argv[1]), int(sys.argv[2]))


if __name__ == "__main__":
    main()
