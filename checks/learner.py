"""Run learner code in a separate, limited, isolated process, never in the grader's.

``Session(request, aws=...)`` starts ``checks/learner_child.py`` with a scrubbed environment, a
wall-time limit per step (the whole process tree is killed), an address-space limit and no core
dumps; requests and answers are JSON lines on pipes of their own, and the learner's prints go to
stdout/stderr, kept apart and shown as a short tail when something fails.

Where Linux lets an unprivileged user make namespaces, the child runs under ``unshare``: its
own pid namespace (it cannot see or signal the local AWS or the grader, and every process it
started dies with it) and its own mount namespace with an empty tmpfs over the labkit state
folder (the install secret, the journal and remembered verdicts are out of its reach). Elsewhere
it is still a separate process with the same limits, killed as a process group; ``isolation()``
names which applied, in one short phrase.

A grading run starts one such child, the ``Zygote``, with boto3 already loaded, and has it fork a
fresh process per check: each check's learner code still gets a process (and module import) of its
own, killed with its process group when it overruns, and everything any check started ends with the
zygote's pid namespace when the run ends, before the run's grading session lifts its lockdown.
"""
from __future__ import annotations

import base64
import functools
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import threading
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from labkit.config import REPO_ROOT, state_dir

CHILD = Path(__file__).with_name("learner_child.py")
WALL_S = 20.0  # one run: loading boto3 (and moto for the sandbox) plus the learner's calls
MEMORY_BYTES = 1 << 30  # address space: enough for Python, boto3 and moto; a hog stops here
TAIL = 300  # characters of the learner's output shown in a failure message
# What Python needs, and nothing that points at the learner's account or the real state folder.
KEEP_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SYSTEMROOT", "TMPDIR", "VIRTUAL_ENV")
EXTRA_PATH: list[str] = []  # folders the child may import from besides the repository (tests' stand-ins)
PHRASES = {"namespaces": "own process, pid and mount namespaces",
           "process": "own process (no namespaces here)"}


@functools.cache
def _unshare() -> list[str] | None:
    """The unshare prefix when user, pid and mount namespaces work here without privilege, else None."""
    if not sys.platform.startswith("linux") or not (shutil.which("unshare") and shutil.which("setpriv")):
        return None
    prefix = ["unshare", "--map-root-user", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc"]
    try:
        probe = subprocess.run(prefix + ["true"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return prefix if probe.returncode == 0 else None


def isolation() -> str:
    """Which isolation learner code gets on this machine, as a short phrase."""
    return PHRASES["namespaces" if _unshare() else "process"]


def _environment(home: str, aws: dict[str, str]) -> dict[str, str]:
    env = {k: os.environ[k] for k in KEEP_ENV if k in os.environ}
    env.update(HOME=home, LABKIT_HOME=os.path.join(home, "labkit"), LABS_WORK_DIR=os.path.join(home, "work"),
               PYTHONPATH=os.pathsep.join([str(REPO_ROOT), *EXTRA_PATH]), PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1",
               AWS_CONFIG_FILE=os.path.join(home, "no-aws-config"),
               AWS_SHARED_CREDENTIALS_FILE=os.path.join(home, "no-aws-credentials"),
               MOTO_ALLOW_NONEXISTENT_REGION="false")
    env.update(aws)
    return env


def _limits() -> None:  # in the child, before it runs anything
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _frozen() -> list[Path]:
    """Folders the learner's code must not change on disk: the grader, labkit, Python and its packages."""
    found = []
    for path in (REPO_ROOT, Path(sys.prefix), Path(sys.base_prefix)):
        path = path.resolve()
        if path.is_dir() and not any(path == p or p in path.parents for p in found):
            found.append(path)
    return found


def _command(args: list[str], hidden: list[Path]) -> list[str]:
    python = [sys.executable, "-s", str(CHILD), *args]
    prefix = _unshare()
    if not prefix:
        return python
    steps = [f"mount --bind {_quote(p)} {_quote(p)} && mount -o remount,bind,ro {_quote(p)}" for p in _frozen()]
    steps += [f"mount -t tmpfs -o size=64k,mode=0700 labkit-hidden {_quote(p)}" for p in hidden]
    mounts = " && ".join(steps)
    # Mount while privileged inside the namespace, then drop every capability for good: the learner's
    # code cannot unmount the tmpfs, and what it starts can gain none back.
    drop = "exec setpriv --no-new-privs --bounding-set=-all --inh-caps=-all -- \"$@\""
    return prefix + ["sh", "-c", f"{mounts + ' && ' if mounts else ''}{drop}", "learner"] + python


def _quote(path: Path) -> str:
    import shlex

    return shlex.quote(str(path))


class Session:
    """One child holding the learner's module: ``open`` it, then ``step`` as often as needed, then ``close``.

    A step that overruns ``wall_s`` kills the child (and all it started); every later step then
    answers the same failure. ``aws`` are the child's AWS_* variables (nothing else of the grader's
    environment reaches it).
    """

    def __init__(self, request: dict, *, aws: dict[str, str], wall_s: float | None = None, hide_state: bool = True,
                 zygote: "Zygote | None" = None):
        self.wall_s = WALL_S if wall_s is None else wall_s
        # The module's source travels with the request: the child's namespaces may hide the folder it
        # lives in (a work folder inside the state folder), and what the grader read is what is graded.
        request = dict(request, source=base64.b64encode(Path(request["module"]).read_bytes()).decode())
        self.failure: str | None = None  # the child is gone: killed for time or memory, or died
        self._home = tempfile.TemporaryDirectory(prefix="labkit-learner-")
        self._output = tempfile.TemporaryFile()
        self._buffer = b""
        self.process = None
        self._init = None  # in a pid namespace of its own: its first process, whose end is the end of all in it
        self._own_namespace = False  # started by itself (not forked by a zygote), so it may have one
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        try:
            if zygote is not None:
                self.process = zygote.fork(aws, (to_child_r, from_child_w, self._output.fileno()))
            if self.process is None:  # no zygote, or it could not fork: a child of its own
                hidden = [state_dir().resolve()] if hide_state else []
                self.process = subprocess.Popen(
                    _command([str(to_child_r), str(from_child_w)], hidden), env=_environment(self._home.name, aws),
                    cwd=self._home.name, stdin=subprocess.DEVNULL, stdout=self._output, stderr=subprocess.STDOUT,
                    pass_fds=(to_child_r, from_child_w), preexec_fn=_limits, start_new_session=True)
                self._own_namespace = True
        except OSError as exc:
            self.failure = f"could not be started ({exc.strerror})"
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self._defined: list[str] = []
        self._problem: str | None = None
        self._opened = self.failure is not None  # the child's first answer is read when first needed
        if self.failure is None:
            # Sent now, answered later: children for several checks load side by side.
            self._send(request)

    def _open(self) -> None:
        if not self._opened:
            self._opened = True
            if self._own_namespace and _unshare():
                self._init = _first_child(self.process.pid)
            first = self._answer()
            self._problem = first.get("problem")
            self._defined = first.get("defined", [])

    @property
    def problem(self) -> str | None:
        self._open()
        return self._problem

    @property
    def defined(self) -> list[str]:
        self._open()
        return self._defined

    def step(self, step: dict) -> dict:
        """The child's answer to ``step``, or ``{"failure": why}`` when it has none."""
        self._open()
        if self.failure:
            return {"failure": self.failure}
        if not self._send(step):
            return {"failure": self.failure}
        return self._answer()

    def _send(self, message: dict) -> bool:
        import time

        try:
            _write_all(self._to_child, json.dumps(message).encode() + b"\n", time.monotonic() + self.wall_s)
        except TimeoutError:
            self._gone(f"was stopped after {self.wall_s:g} s (an endless loop, or a call that never returns)")
            return False
        except OSError:
            pass  # it is gone; reading its answer says how
        return True

    def _answer(self) -> dict:
        import time

        deadline = time.monotonic() + self.wall_s
        try:
            line = self._read_line(deadline)
        except TimeoutError:
            return self._gone(f"was stopped after {self.wall_s:g} s (an endless loop, or a call that never returns)")
        except OSError:
            line = b""
        if not line:
            return self._gone(_died(self._wait()))
        try:
            answer = json.loads(line)
        except ValueError:
            return self._gone("answered something unreadable")
        if "exited" in answer:  # a forked child ended before answering; its zygote says how
            return self._gone(_died(answer["exited"]))
        if "failure" in answer:
            self._gone(answer["failure"])
        return answer

    def _read_line(self, deadline: float) -> bytes:
        import select
        import time

        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self._from_child], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(self._from_child, 1 << 16)
                if not chunk:
                    return b""
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _wait(self) -> int:
        try:
            return self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return -signal.SIGKILL

    def _gone(self, why: str) -> dict:
        self.failure = self.failure or why
        self._stop()
        return {"failure": self.failure}

    def _stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            _kill(self.process, self._init)

    def output(self) -> str:
        """The tail of what the learner's code printed so far."""
        try:
            self._output.seek(0, os.SEEK_END)
            size = self._output.tell()
            self._output.seek(max(0, size - 4 * TAIL))
            return self._output.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def said(self) -> str:
        """The output's tail as a clause for a message, or nothing."""
        text = " ".join(self.output().split())
        return f" (it printed: {text[-TAIL:]!r})" if text else ""

    def close(self) -> None:
        """Stop the child and everything it started (a forked child: its process group; what it started
        in a group of its own ends with the zygote, when the run ends); forget its files."""
        if self.process is not None and self.process.returncode is None and self._to_child >= 0:
            os.close(self._to_child)  # the end of its input: it exits, and its pid namespace with it
            self._to_child = -1
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._stop()
        _gone(self._init)
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        self._to_child = self._from_child = -1
        self._output.close()
        self._home.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()


class _Forked:
    """A child a zygote forked, as the grader sees it: its pid here, whether it still exists, and a way to
    stop it and its process group that can never hit a process that merely reuses its number."""

    def __init__(self, pid: int):
        self.pid = pid
        self._fd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None

    def _exists(self) -> bool:  # running, or ended and not yet reaped: its pid and group are still its own
        try:
            if self._fd is not None:
                signal.pidfd_send_signal(self._fd, 0)
                return True
            os.kill(self.pid, 0)
            return True
        except (ProcessLookupError, OSError):
            return False

    @property
    def returncode(self) -> int | None:
        return None if self._running() else 0

    def _running(self) -> bool:
        if not self._exists():
            return False
        try:
            state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X")

    def wait(self, timeout: float | None = None) -> int:
        import time

        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        while self._running():
            if time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired("learner child", timeout)
            time.sleep(0.005)
        return 0

    def kill_group(self) -> None:
        if self._exists():  # while it exists, the group of its number is its own
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def __del__(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Zygote:
    """One warm child per grading run: started once (in the namespaces, with boto3 loaded), it forks a fresh
    process for each check, so every check's learner code still runs in a process of its own without paying
    for Python's and boto3's start again. Its pid namespace (where there is one) ends when it closes, and with
    it everything any check started."""

    def __init__(self, hide_state: bool = True):
        self._lock = threading.Lock()
        self._home = tempfile.TemporaryDirectory(prefix="labkit-learner-")
        self._output = tempfile.TemporaryFile()
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._count = 0
        self.process = self._init = None
        hidden = [state_dir().resolve()] if hide_state else []
        try:
            self.process = subprocess.Popen(
                _command(["--zygote", str(theirs.fileno())], hidden), env=_environment(self._home.name, {}),
                cwd=self._home.name, stdin=subprocess.DEVNULL, stdout=self._output, stderr=subprocess.STDOUT,
                pass_fds=(theirs.fileno(),), preexec_fn=_limits, start_new_session=True)
        except OSError:
            self.process = None
        finally:
            theirs.close()

    def _pid(self) -> int | None:
        """The zygote's own pid here: unshare's first child in a pid namespace, else the process itself."""
        if self._init is None and self.process is not None:
            self._init = _first_child(self.process.pid) if _unshare() else self.process.pid
        return self._init

    def fork(self, aws: dict[str, str], fds: tuple[int, int, int]) -> _Forked | None:
        """A fresh child reading ``fds[0]``, answering on ``fds[1]``, printing to ``fds[2]``; None if the zygote
        cannot fork one (it is gone), so the caller starts a child of its own."""
        if self.process is None or self.process.poll() is not None:
            return None
        with self._lock:
            self._count += 1
            request = {"env": aws, "home": os.path.join(self._home.name, str(self._count))}
            try:
                socket.send_fds(self._sock, [json.dumps(request).encode()], list(fds))
                self._sock.settimeout(WALL_S)
                answer = json.loads(self._sock.recv(1 << 12) or b"null")
            except (OSError, ValueError):
                return None
        inner = (answer or {}).get("pid")
        host = self._host_pid(inner) if inner else None
        return _Forked(host) if host else None

    def _host_pid(self, inner: int) -> int | None:
        """The pid here of the zygote's child numbered ``inner`` in its namespace."""
        parent = self._pid()
        if parent is None:
            return None
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            return None
        for child in children:
            try:
                status = Path(f"/proc/{child}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("NSpid:") and int(line.split()[-1]) == inner:
                    return int(child)
        return None

    def close(self) -> None:
        """End the zygote, and with its namespace every process a check started (idempotent)."""
        if self._sock.fileno() < 0:
            return
        self._sock.close()
        if self.process is not None:
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            _kill(self.process, self._pid() if _unshare() else None)
        self._output.close()
        self._home.cleanup()


def _write_all(fd: int, data: bytes, deadline: float) -> None:
    import select
    import time

    while data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        _, ready, _ = select.select([], [fd], [], min(left, 1.0))
        if ready:
            data = data[os.write(fd, data[:1 << 16]):]


def _died(code: int) -> str:
    if code in (-signal.SIGKILL, 137):
        return "was killed (out of memory, or by a signal)"
    if code < 0:
        return f"died of signal {signal.Signals(-code).name}"
    return f"exited with code {code} before answering"


def _kill(process, init: int | None = None) -> None:
    """The child and everything it started: its process group and, in a pid namespace, all of it."""
    if isinstance(process, _Forked):
        process.kill_group()
    for kill, pid in ((os.kill, init), (os.killpg, None if isinstance(process, _Forked) else process.pid)):
        if pid and pid > 0:
            try:
                kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    _gone(init)


def _first_child(pid: int) -> int | None:
    """The process ``unshare`` (``pid``) forked: the first process of the new pid namespace."""
    import time

    for _ in range(50):
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return None
        if children:
            return int(children[0])
        time.sleep(0.01)
    return None


def _gone(pid: int | None, wait_s: float = 5.0) -> None:
    """Wait until ``pid``, a pid namespace's first process, has ended: the kernel ends every other process of
    its namespace before that, so nothing the learner started outlives the run."""
    import time

    deadline = time.monotonic() + wait_s
    while pid and time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.01)


# -- what checks use: a learner module's functions, called in the child -------------------------

@dataclass
class Call:
    """One call of a learner function: its JSON value, or the sentence saying what went wrong."""

    name: str
    value: object = None
    error: str | None = None  # "get_order raised ...", "... was stopped after 20 s ..."
    calls: list[dict] = field(default_factory=list)  # the DynamoDB reads it made: op, index, limit, read, returned
    through_client: bool = True  # whether its calls went through the client it was given
    writes: list[list] = field(default_factory=list)  # in the sandbox: [operation, had a ConditionExpression]
    raw_error: dict | None = None  # what the child said of the exception: type, code, message, os_error, mistake

    def ops(self, name: str) -> list[dict]:
        return [c for c in self.calls if c["op"] == name]

    @property
    def read(self) -> int:
        return sum(c.get("read", 0) for c in self.calls)


class Functions:
    """The learner's module in a child: ``problem``, ``defines(name)``, ``call(name, ...)``."""

    def __init__(self, session: Session, defined: list[str], path: Path):
        self.session, self.defined, self.path = session, defined, path
        self.log: _Log | None = None  # the grading session's log that counts the reads (set by checks.learner.reads)

    @property
    def problem(self) -> str | None:
        return self.session.problem or (self.session.failure and
                                        f"{self.path.name} {self.session.failure}{self.session.said()}.")

    def defines(self, name: str) -> bool:
        return name in self.defined

    def call(self, name: str, *args, client: bool = True, client_from: dict | None = None, **kwargs) -> Call:
        step = {"call": name, "args": list(args), "kwargs": kwargs, "client": client}
        if client_from:
            step["client_from"] = client_from
        if self.log is not None:
            self.log.new()  # what came before (the module's import, say) is not this call's
        answer = self.session.step(step)
        if "failure" in answer:
            return Call(name, error=f"{name} {answer['failure']}{self.session.said()} (it ran in its "
                                    f"{isolation()})")
        call = Call(name, value=answer.get("value"), calls=answer.get("calls", []), writes=answer.get("writes", []))
        call.through_client = bool(call.calls)
        if "error" in answer:
            call.raw_error = answer["error"]
            call.error = _sentence(name, answer["error"])
        if self.log is not None:  # the server's log, not what the child says, counts the reads
            mine = self.log.new()
            call.calls = [_counted(c) for c in mine if c.get("service") == "dynamodb"]
            tried = [c["operation"] for c in mine if not _reads(c)]
            if tried and not call.error:
                call.error = f"{name} tried a write ({tried[0]}); a read function must only read"
        return call

    def close(self) -> None:
        self.session.close()

    def put(self, table: str, item: dict) -> None:
        self.session.step({"put": table, "item": item})

    def get(self, table: str, key: dict) -> dict | None:
        return self.session.step({"get": table, "key": key}).get("item")



def _reads(logged: dict) -> bool:
    from labkit.target import is_read

    return is_read(str(logged.get("operation", "")))


def _counted(logged: dict) -> dict:
    """A server log entry as the checks count reads: op, index, limit, read, returned, more."""
    op = logged.get("operation")
    if op == "GetItem":
        read = returned = 1 if logged.get("item") else 0
    else:
        returned = logged.get("count") or 0
        read = logged.get("scanned_count", returned) or returned
    return {"op": op, "index": logged.get("index"), "limit": logged.get("limit_applied") or logged.get("limit"),
            "read": read, "returned": returned, "more": bool(logged.get("last_evaluated_key")),
            "status": logged.get("status")}


def _sentence(name: str, error: dict) -> str:
    kind, code, message = error.get("type"), error.get("code"), error.get("message")
    if kind == "WriteRefused":
        return f"{name} tried a write ({code}); a read function must only read"
    if kind == "TooManyCalls":
        return f"{name} was stopped: {message}"
    if kind == "MemoryError":
        return f"{name} ran out of memory (the limit is {MEMORY_BYTES >> 20} MiB)"
    if code:
        return f"{name} raised {code}: {message}"
    return f"{name} raised {kind}: {message}"


def start(path: Path, functions: tuple[str, ...], *, client: dict, aws: dict[str, str],
          sandbox: list[dict] | None = None, page_limit: int | None = None, max_calls: int = 50,
          zygote: Zygote | None = None) -> Functions:
    """The module at ``path`` loaded in a fresh child (see checks.learner_child for ``client`` and ``sandbox``)."""
    request = {"module": str(path), "client": client, "functions": list(functions), "max_calls": max_calls}
    if sandbox is not None:
        request["sandbox"] = sandbox
    if page_limit:
        request["page_limit"] = page_limit
    session = Session(request, aws=aws, zygote=zygote)
    return Functions(session, session.defined, path)


def _zygote(t) -> Zygote:
    """The grading run's zygote, started when a check first needs a child."""
    def make():
        zygote = Zygote()
        _closing(t, zygote.close, "learner.zygote")
        return zygote

    return t.memo("learner.zygote", make)


def _inprocess_endpoint(t) -> str:
    """In-process moto (the tests' target) served on a loopback port, so a child can reach the same state."""
    def serve():
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        _closing(t, server.stop, "learner.inprocess-endpoint")
        host, port = server.get_host_and_port()
        return f"http://{host}:{port}"

    return t.memo("learner.inprocess-endpoint", serve)


def _once(close):
    """``close`` that runs at most once, and never raises (it runs from finalizers and atexit too)."""
    state = {"done": False}

    def run():
        if not state["done"]:
            state["done"] = True
            try:
                close()
            except Exception:
                pass

    return run


def _closing(owner, close, key: str | None = None) -> None:
    """``close`` when ``owner`` (a target) closes (the grading run ends), or is gone, or the grader exits;
    on closing, the memo ``key`` is forgotten too, so a later run starts afresh."""
    import atexit
    import weakref

    ref = weakref.ref(owner)  # no strong reference back: the finalizer must not keep the target alive
    close = _once(close)

    def done():
        close()
        found = ref()
        if found is not None and key:
            found._memo.pop(key, None)

    owner.closing(done)
    weakref.finalize(owner, close)
    atexit.register(close)


def _live_endpoint(t) -> str | None:
    """Where a live target's calls go when not AWS itself: the endpoint the grader's own chain names."""
    return os.environ.get("AWS_ENDPOINT_URL")


def _live_aws(t) -> dict[str, str]:
    """The grader's own credentials (its normal chain, resolved here) as the child's variables."""
    frozen = t.session().get_credentials().get_frozen_credentials()
    env = {"AWS_ACCESS_KEY_ID": frozen.access_key, "AWS_SECRET_ACCESS_KEY": frozen.secret_key,
           "AWS_DEFAULT_REGION": t.region}
    if frozen.token:
        env["AWS_SESSION_TOKEN"] = frozen.token
    return env


def reads(t, path: Path, functions: tuple[str, ...], *, page_limit: int | None = None, scope: str = "",
          scopes: tuple[str, ...] = ()) -> Functions:
    """The learner's module in a child that reads ``t``'s account: one child per ``scope`` (a check) and grading
    run, so what one check's run does to its process cannot reach another check. The first call starts the
    children of every scope in ``scopes`` at once, so they load side by side.

    On the local AWS the children get a grading session's credentials: the server refuses their writes, locks
    every write from anyone out while the session is open, forces ``page_limit`` pages and logs every call,
    and the reads are counted from that log, out of the learner's reach. On a live account the child gets the
    grader's own credentials and reads are counted in the child; there the shipped read-only policy
    (labkit/policies/grader-readonly.json) is what keeps the account unchanged.
    """
    client, aws, log = t.memo("learner.where", lambda: _where(t, page_limit))

    def child(name: str):
        key = f"learner.reads.{path}.{name}"

        def open_():
            found = start(path, functions, client=client, aws=aws, page_limit=None if log else page_limit,
                          zygote=_zygote(t))
            found.log = log
            _closing(t, found.close, key)
            return found

        return t.memo(key, open_)

    for name in scopes:
        child(name)
    return child(scope)


def _where(t, page_limit: int | None):
    """(the child's client spec, its AWS_* variables, the server's call log or None) for target ``t``."""
    if t.is_live:
        aws, client = _live_aws(t), {"region": t.region, "chain": True}
        endpoint = _live_endpoint(t)
        if endpoint:
            aws["AWS_ENDPOINT_URL"] = endpoint
        return client, aws, None
    endpoint = _inprocess_endpoint(t) if t.mode == "inprocess" else t.endpoint
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    session = _grading_session(t, page_limit) if t.mode == "local" else None
    if session is not None:
        keys = {k: v for k, v in session.credentials.items() if k != "region_name"}
        _closing(t, session.close, "learner.where")
        zygote = t._memo.get("learner.zygote")
        if zygote is not None:  # started before the session: it must still end first (closers run newest first),
            t.closing(zygote.close)  # so nothing a check left running writes once the lockdown lifts
    aws = {"AWS_ACCESS_KEY_ID": keys["aws_access_key_id"], "AWS_SECRET_ACCESS_KEY": keys["aws_secret_access_key"],
           "AWS_DEFAULT_REGION": t.region, "AWS_ENDPOINT_URL": endpoint}
    return {"region": t.region, "endpoint": endpoint, "credentials": keys}, aws, session and _Log(session)


class _Log:
    """A grading session's call log, read in pieces: each piece is what was called since the last."""

    def __init__(self, session):
        self.session, self.seen = session, 0

    def new(self) -> list[dict]:
        logged = self.session.calls()
        found, self.seen = logged[self.seen:], len(logged)
        return found


LOCKDOWN_S = 120  # the longest a grading run holds the local AWS read-only; it ends sooner when the run does


def _grading_session(t, page_limit: int | None):
    """A grading session on the local AWS ``t`` talks to, or None where the server offers none."""
    from labkit.errors import LabkitError
    from labkit.localaws.control import open_grading_session

    try:
        session = open_grading_session(page_limit=page_limit, lockdown=True, seconds=LOCKDOWN_S)
    except (LabkitError, OSError, ValueError, KeyError):
        return None
    if session.endpoint.rstrip("/") != (t.endpoint or "").rstrip("/"):
        session.close()  # another server than the one graded: its log would not see the calls
        return None
    return session


def sandbox(t, path: Path, functions: tuple[str, ...], tables: list[dict]) -> Functions:
    """The learner's module in a child whose client talks to an empty moto of its own (create_table
    arguments ``tables``): no endpoint, no credentials, nothing of the environment that could reach
    an account. One per grading run and set of tables."""
    key = f"learner.sandbox.{path}.{json.dumps(tables, sort_keys=True, default=str)}"

    def open_():
        found = start(path, functions, client={"region": "us-east-1"}, sandbox=tables, zygote=_zygote(t),
                      aws={"AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox",
                           "AWS_DEFAULT_REGION": "us-east-1"})
        _closing(t, found.close, key)
        return found

    return t.memo(key, open_)
