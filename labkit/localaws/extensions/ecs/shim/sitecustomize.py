"""Loaded by a task's Python in loopback mode (no network namespace): containerPort -> host port.

(Also by a bridge task in its container instance's namespace, whose containerPort is served at
its host port there: ``LABKIT_PORT_ANY_HOST`` keeps the address it listens on.)

Without a namespace of its own, every task shares the host's loopback, so two tasks
listening on the same containerPort would collide, and an app binding 0.0.0.0 would be
reachable from the network. The runner gives each containerPort a free loopback port
(``LABKIT_PORT_MAP``: "8080=41234,..."); here bind() and connect() are translated, and
every listening address is held to loopback.
"""
import os
import socket

_MAP = {}
for _pair in filter(None, os.environ.pop("LABKIT_PORT_MAP", "").split(",")):
    _inner, _, _outer = _pair.partition("=")
    _MAP[int(_inner)] = int(_outer)
_LOCAL = {"", "0.0.0.0", "127.0.0.1", "localhost", "::", "::1"}
# A bridge task in its instance's own namespace: its port moves to the host port, its address stays.
_ANY_HOST = os.environ.pop("LABKIT_PORT_ANY_HOST", "") == "1"


def _translate(address, listening):
    if not (isinstance(address, tuple) and len(address) >= 2 and isinstance(address[0], str)):
        return address
    host, port = address[0], address[1]
    if _ANY_HOST:
        pass
    elif listening and host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif listening and host == "::":
        host = "::1"
    if host in _LOCAL and port in _MAP:
        port = _MAP[port]
    return (host, port) + tuple(address[2:])


_bind, _connect, _connect_ex = socket.socket.bind, socket.socket.connect, socket.socket.connect_ex
socket.socket.bind = lambda self, address: _bind(self, _translate(address, True))
socket.socket.connect = lambda self, address: _connect(self, _translate(address, False))
socket.socket.connect_ex = lambda self, address: _connect_ex(self, _translate(address, False))
