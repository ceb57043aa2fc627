"""Loopback listeners that stand where an AWS endpoint's DNS name would: each forwards every
connection to the engine it names *now*, so a failover moves the primary endpoint without the
client changing its address, and (with a TLS context) serves in-transit encryption in front of
an engine that has none compiled in.
"""
from __future__ import annotations

import logging
import socket
import ssl
import threading
from typing import Callable

log = logging.getLogger("labkit.fronts")
CHUNK = 65536


class Front:
    """127.0.0.1:``port`` forwarding to 127.0.0.1:``target()`` (None: refuse), TLS when ``tls`` is given."""

    def __init__(self, name: str, port: int, target: Callable[[], int | None], tls: ssl.SSLContext | None = None):
        self.name = name
        self.port = port
        self.target = target
        self.tls = tls
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))  # raises OSError when taken: the caller picks another port
        sock.listen(64)
        self._listener = sock
        threading.Thread(target=self._accept, name=f"front-{self.name}", daemon=True).start()

    def _accept(self) -> None:
        listener = self._listener
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        port = self.target()
        if port is None:
            client.close()
            return
        try:
            if self.tls is not None:
                client.settimeout(10)
                client = self.tls.wrap_socket(client, server_side=True)
                client.settimeout(None)
            engine = socket.create_connection(("127.0.0.1", port), timeout=5)
            engine.settimeout(None)
        except (OSError, ssl.SSLError):
            client.close()
            return
        for sock in (client, engine):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._open.update((client, engine))
        threading.Thread(target=self._pump, args=(engine, client), daemon=True).start()
        self._pump(client, engine)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(CHUNK)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def drop_connections(self) -> None:
        """Close every forwarded connection (a failover: clients reconnect to the new primary)."""
        with self._lock:
            socks = list(self._open)
        for sock in socks:
            self._close(sock)

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        self.drop_connections()
