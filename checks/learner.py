"""Run learner code in a separate, limited, isolated process, never in the grader's.

``run(request)`` starts ``checks/learner_child.py`` with a scrubbed environment, a wall-time
limit (the whole process tree is killed), an address-space limit and no core dumps, sends it
one JSON request on a pipe of its own and reads one JSON answer from another: the learner's
prints go to stdout/stderr, kept apart and shown as a short tail when something fails.

Where Linux lets an unprivileged user make namespaces, the child runs under ``unshare``: its
own pid namespace (it cannot see or signal the local AWS or the grader, and every process it
started dies with it) and its own mount namespace with an empty tmpfs over the labkit state
folder (the install secret, the journal and remembered verdicts are out of its reach). Elsewhere
it is still a separate process with the same limits, killed as a process group; ``isolation()``
names which applied, in one short phrase.
"""
from __future__ import annotations

import functools
import json
import os
import resource
import shutil
import signal
import subprocess
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
PHRASES = {"namespaces": "own process, pid and mount namespaces",
           "process": "own process (no namespaces here)"}


@dataclass
class Answer:
    """What the child said, or why it said nothing."""

    results: list[dict] = field(default_factory=list)
    problem: str | None = None  # the module could not be used (missing, does not compile, import failed)
    failure: str | None = None  # the run itself failed: killed for time or memory, or died
    output: str = ""  # the tail of what the learner's code printed

    def said(self) -> str:
        """The output's tail as a clause for a message, or nothing."""
        text = " ".join(self.output.split())
        return f" (it printed: {text[-TAIL:]!r})" if text else ""


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
               PYTHONPATH=str(REPO_ROOT), PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1",
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


def _command(read_fd: int, write_fd: int, hidden: list[Path]) -> list[str]:
    python = [sys.executable, "-s", str(CHILD), str(read_fd), str(write_fd)]
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


def run(request: dict, *, aws: dict[str, str], wall_s: float = WALL_S, hide_state: bool = True) -> Answer:
    """Send ``request`` (see checks.learner_child) to a fresh child; ``aws`` are its AWS_* variables."""
    hidden = [state_dir().resolve()] if hide_state else []
    with tempfile.TemporaryDirectory(prefix="labkit-learner-") as home, \
            tempfile.TemporaryFile() as output:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        try:
            process = subprocess.Popen(
                _command(to_child_r, from_child_w, hidden), env=_environment(home, aws), cwd=home,
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                pass_fds=(to_child_r, from_child_w), preexec_fn=_limits, start_new_session=True)
        except OSError as exc:
            for fd in (to_child_r, to_child_w, from_child_r, from_child_w):
                os.close(fd)
            return Answer(failure=f"the learner's code could not be started ({exc.strerror})")
        os.close(to_child_r)
        os.close(from_child_w)
        answer, failure = _exchange(process, to_child_w, from_child_r, json.dumps(request).encode(), wall_s)
        output.seek(0)
        printed = output.read()[-4 * TAIL:].decode("utf-8", "replace")
    if failure:
        return Answer(failure=failure, output=printed)
    return Answer(results=answer.get("results", []), problem=answer.get("problem"),
                  failure=answer.get("failure"), output=printed)


def _exchange(process, write_fd: int, read_fd: int, request: bytes, wall_s: float):
    """(the child's answer, None) or (None, why there is none); the child is gone when this returns."""
    import selectors
    import time

    deadline = time.monotonic() + wall_s
    chunks: list[bytes] = []
    try:
        with selectors.DefaultSelector() as selector:
            os.set_blocking(write_fd, False)
            selector.register(read_fd, selectors.EVENT_READ)
            selector.register(write_fd, selectors.EVENT_WRITE)
            pending, open_ = request, True
            while open_:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None, f"it was stopped after {wall_s:g} s (an endless loop, or a call that never returns)"
                for key, _ in selector.select(min(left, 1.0)):
                    if key.fd == write_fd:
                        try:
                            pending = pending[os.write(write_fd, pending):]
                        except BrokenPipeError:
                            pending = b""
                        if not pending:
                            selector.unregister(write_fd)
                            os.close(write_fd)
                            write_fd = -1
                    else:
                        chunk = os.read(read_fd, 1 << 16)
                        if chunk:
                            chunks.append(chunk)
                        else:
                            open_ = False
        code = process.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return None, f"it was stopped after {wall_s:g} s (an endless loop, or a call that never returns)"
    finally:
        _kill(process)
        for fd in (write_fd, read_fd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
    data = b"".join(chunks)
    if not data:
        return None, _died(code)
    try:
        return json.loads(data), None
    except ValueError:
        return None, "its answer was not readable (did it write to the grader's pipe?)"


def _died(code: int) -> str:
    if code in (-signal.SIGKILL, 137):
        return "it was killed (out of memory, or by a signal)"
    if code < 0:
        return f"it died of signal {signal.Signals(-code).name}"
    return (f"it ran out of memory (the limit is {MEMORY_BYTES >> 20} MiB)" if code == 1
            else f"it exited with code {code} before answering")


def _kill(process) -> None:
    """The child and everything it started: its process group (and, in a pid namespace, all of it)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
