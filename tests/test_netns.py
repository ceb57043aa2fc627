"""Course namespaces: nothing inside reaches out, nothing from the host is sent to a VPC address.

Real namespaces need root and ``ip netns``; those tests skip with the reason elsewhere. The
loopback-mode tests run everywhere.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

import pytest

from labkit.localaws import netns

needs_namespaces = pytest.mark.skipif(not netns.available(),
                                      reason="network namespaces need root and `ip netns` (loopback mode here)")
TAG = f"t{os.getpid()}"  # namespace names of this test process only: other runs on the machine keep theirs


@pytest.fixture
def clean():
    yield
    netns.remove_all()


def _host_address() -> str | None:
    """A non-loopback address of the host's own namespace, if it has one."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        address = line.split()[3].split("/")[0]
        if not address.startswith("127."):
            return address
    return None


def _served_once(sock: socket.socket, answer: bytes) -> threading.Thread:
    def serve():
        conn, _ = sock.accept()
        with conn:
            conn.recv(100)
            conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


PROBE = r"""
import socket, sys
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect((host, int(port)))
        print(target, "REACHED")
    except OSError as exc:
        print(target, "failed", exc.errno)
    finally:
        s.close()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.sendto(b"x", (host, int(port)))
        print(target, "udp SENT")
    except OSError as exc:
        print(target, "udp failed", exc.errno)
"""


@needs_namespaces
def test_nothing_outside_the_namespace_is_reachable_from_inside(clean):
    host_server = socket.socket()
    host_server.bind(("127.0.0.1", 0))
    host_server.listen()
    host_port = host_server.getsockname()[1]
    inside = netns.create(f"{TAG}-a", ["10.0.1.10"])
    netns.create(f"{TAG}-b", ["10.0.2.20"])  # another course VPC: not reachable from a either
    targets = [f"127.0.0.1:{host_port}", "8.8.8.8:53", "10.0.2.20:80", "10.0.1.11:80"]
    if _host_address():
        targets.append(f"{_host_address()}:22")
    try:
        out = subprocess.run(inside.exec_prefix() + [sys.executable, "-c", PROBE, *targets],
                             capture_output=True, text=True, timeout=60)
    finally:
        host_server.close()
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2 * len(targets)
    assert not [line for line in lines if "REACHED" in line]
    # UDP to anything but the namespace's own loopback has no route: it never leaves
    assert not [line for line in lines if "udp SENT" in line and not line.startswith("127.0.0.1")]


@needs_namespaces
def test_the_namespace_has_its_addresses_on_lo_and_no_route(clean):
    inside = netns.create(f"{TAG}-c", ["10.0.3.30", "10.0.3.31"])
    addresses = subprocess.run(inside.exec_prefix() + ["ip", "-o", "addr", "show"], capture_output=True, text=True).stdout
    links = subprocess.run(inside.exec_prefix() + ["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    routes = subprocess.run(inside.exec_prefix() + ["ip", "route", "show"], capture_output=True, text=True).stdout
    assert "10.0.3.30/32" in addresses and "10.0.3.31/32" in addresses
    assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]
    assert routes.strip() == ""


@needs_namespaces
def test_connect_reaches_a_server_listening_inside(clean):
    inside = netns.create(f"{TAG}-d", ["10.0.4.40"])
    server = netns.listen(inside, "10.0.4.40", 8080)
    thread = _served_once(server, b"from inside")
    with netns.connect("10.0.4.40", 8080, timeout=5) as conn:
        conn.sendall(b"hello")
        assert conn.recv(100) == b"from inside"
    thread.join(5)
    server.close()


def test_connect_to_an_unknown_vpc_address_makes_no_socket(monkeypatch):
    made = []
    real_socket, real_create = socket.socket, socket.create_connection

    def spy_socket(*args, **kwargs):
        made.append(args)
        return real_socket(*args, **kwargs)

    def spy_create(*args, **kwargs):
        made.append(args)
        return real_create(*args, **kwargs)

    monkeypatch.setattr(socket, "socket", spy_socket)
    monkeypatch.setattr(socket, "create_connection", spy_create)
    for address in ("10.0.9.9", "172.31.0.5", "8.8.8.8"):
        with pytest.raises(ConnectionRefusedError):
            netns.connect(address, 80, timeout=1)
    assert made == []


def test_loopback_mode_publishes_what_it_listens_on(monkeypatch, clean):
    monkeypatch.setenv("LABKIT_NETNS", "off")
    assert netns.mode() == "loopback"
    virtual = netns.create(f"{TAG}-e", ["10.0.5.50"])
    assert virtual.exec_prefix() == [] and not virtual.real
    server = netns.listen(virtual, "10.0.5.50", 9000)
    assert netns.published()[("10.0.5.50", 9000)] == server.getsockname()[1]
    thread = _served_once(server, b"published")
    with netns.connect("10.0.5.50", 9000, timeout=5) as conn:
        conn.sendall(b"hi")
        assert conn.recv(100) == b"published"
    thread.join(5)
    server.close()
    netns.unpublish("10.0.5.50", 9000)
    with pytest.raises(ConnectionRefusedError):
        netns.connect("10.0.5.50", 9000, timeout=1)


def test_bad_names_and_addresses_are_one_sentence():
    with pytest.raises(netns.NetnsError, match="cannot name a namespace"):
        netns.create("Bad Name", [])
    with pytest.raises(netns.NetnsError, match="not an IP address"):
        netns.create(f"{TAG}-f", ["10.0.0"])
    with pytest.raises(netns.NetnsError, match="loopback"):
        netns.publish("127.0.0.2", 80, 8080)


@needs_namespaces
def test_remove_all_leaves_no_course_namespace_of_this_process(clean):
    for letter in "ghi":
        netns.create(f"{TAG}-{letter}", [f"10.0.6.{ord(letter)}"])
    assert {f"labkit-{TAG}-{x}" for x in "ghi"} <= set(netns.listed())
    netns.remove_all()
    assert not [name for name in netns.listed() if name.startswith(f"labkit-{TAG}")]
    assert netns.namespaces() == [] and netns.published() == {}


@needs_namespaces
def test_remove_all_sweeps_what_a_killed_process_left(clean):
    code = (f"from labkit.localaws import netns; netns.create('{TAG}-orphan', ['10.0.7.1']); "
            "import os; os._exit(0)")  # gone without deleting it, as a killed local AWS would be
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=os.getcwd())
    assert f"labkit-{TAG}-orphan" in netns.listed()
    netns.remove_all()
    assert f"labkit-{TAG}-orphan" not in netns.listed()


@needs_namespaces
def test_remove_all_sweeps_an_owner_record_whose_namespace_never_came(clean):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True, timeout=60).stdout.strip()
    record = netns.OWNERS_DIR / f"labkit-{TAG}-norecord"
    netns.OWNERS_DIR.mkdir(mode=0o700, exist_ok=True)
    record.write_text(dead)  # killed between writing its record and adding the namespace
    alive = netns.OWNERS_DIR / f"labkit-{TAG}-stillmaking"
    alive.write_text(str(os.getppid()))  # a live process about to add its namespace keeps its record
    try:
        netns.remove_all()
        assert not record.exists() and alive.exists()
    finally:
        alive.unlink(missing_ok=True)
