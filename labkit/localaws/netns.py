"""Network namespaces for what the local AWS runs "inside a VPC" (tasks, and later one per VPC).

A course namespace is ``labkit-<name>``: its loopback is up, each of its VPC addresses sits on that
loopback as a /32, and it has no other interface and no route. So from inside it nothing outside the
namespace can be reached, the host's own services and networks included; the only way in or out is a
socket this process makes inside it (``connect``, ``listen``), which is where the load balancer and
the network fabric enforce their rules.

The opposite rule holds for the host's own namespace: nothing is ever sent from it to a VPC address,
which on a real machine would leave over its default route. ``connect`` reaches a VPC address only
inside the namespace that holds it, or, in loopback mode, at the local port it was published to;
any other address is refused before a socket is made.

Loopback mode (no root, no ``ip``, another OS, or ``LABKIT_NETNS=off``): ``create`` returns a
namespace that exists only here, its programs run on the host, and each address:port they serve is
published to a loopback port (``publish``, or ``listen``, which publishes what it binds).

Python 3.11 has no ``os.setns``: each real namespace gets one thread that entered it with ``setns(2)``
and makes sockets there on request. A socket keeps the namespace it was made in, so the caller then
uses it from any thread.
"""
from __future__ import annotations

import ctypes
import ipaddress
import os
import queue
import re
import shutil
import socket
import subprocess
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LabkitError

PREFIX = "labkit-"
NETNS_DIR = Path("/run/netns")  # where `ip netns` keeps its names
# Which process owns each course namespace: another local AWS's are never touched, a dead one's are swept.
OWNERS_DIR = Path("/run/labkit-netns")
CLONE_NEWNET = 0x40000000
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")
OFF_VALUES = ("0", "off", "no", "false", "loopback")


class NetnsError(LabkitError):
    """A namespace could not be made or used; the message says which and why."""


@dataclass
class Namespace:
    name: str  # the full name, ``labkit-<name>``
    addresses: list[str] = field(default_factory=list)
    real: bool = True  # False in loopback mode: a name and addresses, nothing in the kernel
    sources: list[str] = field(default_factory=list)  # addresses it sends from only (``add_address``)

    @property
    def path(self) -> Path:
        return NETNS_DIR / self.name

    def exec_prefix(self) -> list[str]:
        """The argv prefix that runs a command inside it (empty in loopback mode: it runs on the host)."""
        if not self.real:
            return []
        if shutil.which("nsenter"):
            return ["nsenter", f"--net={self.path}", "--"]
        return ["ip", "netns", "exec", self.name]

    def delete(self) -> None:
        _forget(self)
        if self.real:
            _stop_maker(self.name)
            _ip("netns", "delete", self.name, check=False)
            (OWNERS_DIR / self.name).unlink(missing_ok=True)


# -- state of this process ------------------------------------------------------

_lock = threading.RLock()
_namespaces: dict[str, Namespace] = {}
_held: dict[str, list[Namespace]] = {}        # VPC address -> the namespaces that hold it
_published: dict[tuple[str, int], int] = {}   # (VPC address, port) -> loopback port
_makers: dict[str, "_Maker"] = {}
_available: bool | None = None


def available() -> bool:
    """Whether real namespaces can be made here (root, ``ip netns`` and ``setns`` work); asked once."""
    global _available
    if os.environ.get("LABKIT_NETNS", "").strip().lower() in OFF_VALUES:
        return False
    if _available is None:
        _available = _probe()
    return _available


def mode() -> str:
    return "namespaces" if available() else "loopback"


def _probe() -> bool:
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("ip"):
        return False
    name = f"{PREFIX}probe-{os.getpid()}"
    owner = OWNERS_DIR / name
    try:
        OWNERS_DIR.mkdir(mode=0o700, exist_ok=True)
        owner.write_text(str(os.getpid()))  # another process's sweep must not take it mid-probe
        if _ip("netns", "add", name, check=False).returncode != 0:
            return False
        maker = _Maker(NETNS_DIR / name)
        try:
            maker.call(lambda: socket.socket().close())
        finally:
            maker.stop()
        return True
    except (OSError, NetnsError):
        return False
    finally:
        _ip("netns", "delete", name, check=False)
        owner.unlink(missing_ok=True)


def create(name: str, addresses: list[str]) -> Namespace:
    """Namespace ``labkit-<name>`` with ``addresses`` on its loopback and no route anywhere."""
    if not NAME.match(name or ""):
        raise NetnsError(f"{name!r} cannot name a namespace: use lowercase letters, digits and dashes.")
    for address in addresses:
        _check_address(address)
    full = PREFIX + name
    with _lock:
        if full in _namespaces:
            raise NetnsError(f"The namespace {full} exists already.")
        namespace = Namespace(full, list(addresses), real=available())
        if namespace.real:
            _make(namespace)
        _namespaces[full] = namespace
        for address in addresses:
            _held.setdefault(address, []).append(namespace)
    return namespace


def add_address(namespace: Namespace, address: str, reachable: bool = True) -> None:
    """Put one more VPC address on ``namespace``'s loopback (nothing to do when it holds it already).
    ``reachable`` False: a source address only (a load balancer's, as its target sees it): ``connect``
    never goes to this namespace for it."""
    _check_address(address)
    with _lock:
        if address in namespace.addresses or address in namespace.sources:
            return
        if namespace.real:
            _ip("-n", namespace.name, "addr", "add", f"{address}/32", "dev", "lo")
        if reachable:
            namespace.addresses.append(address)
            _held.setdefault(address, []).append(namespace)
        else:
            namespace.sources.append(address)


def _make(namespace: Namespace) -> None:
    owner = OWNERS_DIR / namespace.name
    if namespace.path.exists():
        if _owner_alive(owner):
            raise NetnsError(f"The namespace {namespace.name} belongs to another running local AWS.")
        _ip("netns", "delete", namespace.name, check=False)  # left by a local AWS that was killed
    OWNERS_DIR.mkdir(mode=0o700, exist_ok=True)
    owner.write_text(str(os.getpid()))  # before the namespace: a sweep never sees one without its owner
    try:
        _ip("netns", "add", namespace.name)
        _ip("-n", namespace.name, "link", "set", "lo", "up")
        for address in namespace.addresses:
            _ip("-n", namespace.name, "addr", "add", f"{address}/32", "dev", "lo")
    except NetnsError:
        _ip("netns", "delete", namespace.name, check=False)
        owner.unlink(missing_ok=True)
        raise


def _forget(namespace: Namespace) -> None:
    with _lock:
        _namespaces.pop(namespace.name, None)
        for address in namespace.addresses:
            holders = [n for n in _held.get(address, []) if n is not namespace]
            if holders:
                _held[address] = holders
            else:
                _held.pop(address, None)
                for key in [k for k in _published if k[0] == address]:
                    _published.pop(key)


def namespaces() -> list[Namespace]:
    with _lock:
        return list(_namespaces.values())


def holder(address: str) -> Namespace | None:
    """The one namespace of this process that holds ``address``, or None (none, or more than one)."""
    with _lock:
        holders = _held.get(address) or []
        return holders[0] if len(holders) == 1 else None


# -- sockets ----------------------------------------------------------------------

def connect(address: str, port: int, timeout: float, namespace: Namespace | None = None,
            source: str | None = None) -> socket.socket:
    """A TCP connection to ``address:port`` made where that address lives.

    Inside the namespace holding ``address`` (``namespace`` picks one when VPCs overlap); a loopback
    address directly; an address published in loopback mode at its loopback port. Anything else raises
    ConnectionRefusedError before a socket exists: no packet to a VPC address leaves the host's namespace.
    ``source``: in a real namespace, the address (one the namespace holds) the connection comes from.
    """
    if _is_loopback(address):
        return socket.create_connection((address, port), timeout=timeout)
    with _lock:
        if namespace is None:
            holders = _held.get(address) or []
            namespace = holders[0] if len(holders) == 1 else None
        local_port = _published.get((address, int(port)))
    if namespace is not None and namespace.real:
        sock = _maker(namespace).call(lambda: socket.socket(_family(address), socket.SOCK_STREAM))
        try:
            if source is not None:
                sock.bind((source, 0))
            sock.settimeout(timeout)
            sock.connect((address, int(port)))
        except BaseException:
            sock.close()
            raise
        return sock
    if local_port is not None:
        return socket.create_connection(("127.0.0.1", local_port), timeout=timeout)
    raise ConnectionRefusedError(111, f"{address}:{port} is not reachable from the local AWS "
                                      "(no course namespace holds it and nothing is published there)")


def listen(namespace: Namespace, address: str, port: int, backlog: int = 64) -> socket.socket:
    """A listening TCP socket at ``address:port`` inside ``namespace``.

    In loopback mode it listens on a free loopback port and publishes ``address:port`` to it, so
    ``connect(address, port)`` reaches it the same way in both modes."""
    if not namespace.real:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(backlog)
        publish(address, port, sock.getsockname()[1])
        return sock

    def make():
        sock = socket.socket(_family(address), socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, int(port)))
            sock.listen(backlog)
        except BaseException:
            sock.close()
            raise
        return sock

    return _maker(namespace).call(make)


def publish(address: str, port: int, local_port: int) -> None:
    """Loopback mode: ``address:port`` is served at ``127.0.0.1:local_port``."""
    _check_address(address)
    with _lock:
        _published[(address, int(port))] = int(local_port)


def unpublish(address: str, port: int) -> None:
    with _lock:
        _published.pop((address, int(port)), None)


def published() -> dict[tuple[str, int], int]:
    with _lock:
        return dict(_published)


def remove_all() -> None:
    """Delete every course namespace of this process, and those a dead local AWS left; forget every publication."""
    for namespace in namespaces():
        namespace.delete()
    with _lock:
        _published.clear()
        _held.clear()
    if not available():
        return
    for name in listed():
        if not _owner_alive(OWNERS_DIR / name):
            _ip("netns", "delete", name, check=False)
            (OWNERS_DIR / name).unlink(missing_ok=True)
    kernel = set(listed())
    for owner in _owner_records():  # a process killed between its record and its namespace leaves only the record
        if owner.name not in kernel and not _owner_alive(owner):
            owner.unlink(missing_ok=True)


def listed() -> list[str]:
    """The course namespaces the kernel knows (any process's)."""
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(PREFIX))
    except OSError:
        return []


# -- helpers ---------------------------------------------------------------------

def _owner_records() -> list[Path]:
    try:
        return [p for p in OWNERS_DIR.iterdir() if p.name.startswith(PREFIX)]
    except OSError:
        return []


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetnsError(f"`ip {' '.join(args)}` could not run ({exc}).") from exc
    if check and done.returncode != 0:
        raise NetnsError(f"`ip {' '.join(args)}` failed: {(done.stderr or done.stdout).strip() or done.returncode}.")
    return done


def _owner_alive(owner: Path) -> bool:
    try:
        pid = int(owner.read_text().strip())
    except (OSError, ValueError):
        return False
    if pid == os.getpid():
        return False  # this process: its own registry says what it still uses
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _check_address(address: str) -> None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise NetnsError(f"{address!r} is not an IP address.") from None
    if ip.is_loopback:
        raise NetnsError(f"{address} is a loopback address, not a VPC address.")


def _is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _family(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


_libc = None


def _setns(path: Path) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {path} failed: {os.strerror(err)}")
    finally:
        os.close(fd)


class _Maker:
    """A thread that lives inside one namespace and runs small jobs there (making sockets)."""

    def __init__(self, path: Path):
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        entered: Future = Future()
        self.thread = threading.Thread(target=self._run, args=(path, entered), name=f"netns-{path.name}", daemon=True)
        self.thread.start()
        entered.result()  # raises when setns failed

    def _run(self, path: Path, entered: Future) -> None:
        try:
            _setns(path)
        except BaseException as exc:
            entered.set_exception(exc)
            return
        entered.set_result(None)
        while True:
            job = self.jobs.get()
            if job is None:
                return
            work, done = job
            try:
                done.set_result(work())
            except BaseException as exc:
                done.set_exception(exc)

    def call(self, work):
        done: Future = Future()
        self.jobs.put((work, done))
        return done.result()

    def stop(self) -> None:
        self.jobs.put(None)


def _maker(namespace: Namespace) -> _Maker:
    with _lock:
        maker = _makers.get(namespace.name)
        if maker is None:
            maker = _makers[namespace.name] = _Maker(namespace.path)
        return maker


def _stop_maker(name: str) -> None:
    with _lock:
        maker = _makers.pop(name, None)
    if maker is not None:
        maker.stop()
