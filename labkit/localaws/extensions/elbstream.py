"""A Network Load Balancer's TCP listener: each connection goes, byte for byte, to one target.

The listener's port on 127.0.0.1 accepts a connection, the load balancer picks a target of the
listener's target group (round robin among the healthy; all of them when none is healthy, as NLB
fails open), connects to it through ``netns.connect`` and copies bytes both ways until either
side closes or nothing moves for NLB's TCP idle timeout (350 s). No target to pick, or a target
that refuses, and the client's connection is closed at once (NLB resets it).

``pipe`` serves any accepted client socket this way, which is how another part of the local AWS
(a PrivateLink endpoint) hands a connection to the load balancer.
"""
from __future__ import annotations

import logging
import selectors
import socket
import socketserver
import threading

from .. import netns

log = logging.getLogger("labkit.elb")
BIND = "127.0.0.1"
IDLE_S = 350.0          # NLB's TCP idle timeout
CONNECT_S = 10.0
CHUNK = 65536
MAX_CONNECTIONS = 256   # per listener; more wait to be accepted


def pipe(client: socket.socket, target: socket.socket, idle: float = IDLE_S) -> int:
    """Copy bytes both ways until both sides finished (a half-close is passed on) or ``idle`` seconds
    pass without a byte; closes both sockets. Returns the bytes moved."""
    moved = 0
    open_ends = {client: target, target: client}
    selector = selectors.DefaultSelector()
    try:
        for sock in open_ends:
            sock.setblocking(True)
            selector.register(sock, selectors.EVENT_READ)
        while open_ends:
            ready = selector.select(idle)
            if not ready:
                break  # idle for too long: NLB drops the flow
            for key, _ in ready:
                source = key.fileobj
                other = open_ends.get(source)
                if other is None:
                    continue
                try:
                    data = source.recv(CHUNK)
                except OSError:
                    data = b""
                if data:
                    try:
                        other.sendall(data)
                        moved += len(data)
                        continue
                    except OSError:
                        return moved
                # this side finished sending: pass the half-close on, keep reading the other way
                selector.unregister(source)
                del open_ends[source]
                try:
                    other.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
    finally:
        selector.close()
        for sock in (client, target):
            try:
                sock.close()
            except OSError:
                pass
    return moved


def connect_to(picked: tuple[str, int], source: str | None = None) -> socket.socket | None:
    """A connection to target ``picked``; from ``source`` (the load balancer's address) when given and the
    target lives in a namespace, which then holds that address too (the target sees it as the peer)."""
    address, port = picked
    try:
        holder = netns.holder(address) if source else None
        if holder is not None and holder.real:
            netns.add_address(holder, source, reachable=False)
            return netns.connect(address, port, CONNECT_S, namespace=holder, source=source)
        return netns.connect(address, port, CONNECT_S)
    except OSError as exc:
        log.info("target %s:%s refused a connection from the network load balancer: %s", address, port, exc)
        return None


def reset(client: socket.socket) -> None:
    """Close with an RST, as NLB does when it has nowhere to send a connection."""
    try:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    try:
        client.close()
    except OSError:
        pass


class StreamServer(socketserver.ThreadingTCPServer):
    """One TCP listener's port; ``route(client, source)`` serves each accepted connection."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, route, port: int, name: str):
        self.route = route
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__((BIND, port), socketserver.BaseRequestHandler)
        self.port = self.server_address[1]
        self.name = name
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                                       name=f"elb-{self.port}", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def process_request(self, request, client_address):
        self.slots.acquire()
        threading.Thread(target=self._serve, args=(request, client_address), name=f"elb-{self.port}-flow",
                         daemon=True).start()

    def _serve(self, request, client_address) -> None:
        try:
            self.route(request, client_address)
        except Exception:
            log.exception("the local network load balancer failed a connection")
            reset(request)
        finally:
            self.slots.release()

    def shutdown_request(self, request):  # the flow's thread closes it when the flow ends
        pass
