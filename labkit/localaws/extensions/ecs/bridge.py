"""What a task in its own network namespace may still reach on the host: the local AWS and its credentials.

A namespace has only its loopback and its VPC address, no route anywhere (``netns``), so
the task's SDK could not reach the local AWS (``AWS_ENDPOINT_URL``) or the container
credentials endpoint. For each of those ports a listener inside the namespace, on its
own 127.0.0.1 and the same port, forwards each connection to the host's 127.0.0.1: the
task's environment names the same URLs in both modes, and nothing else leaves it.
"""
from __future__ import annotations

import logging
import socket
import threading

log = logging.getLogger("labkit.ecs")


class Bridge:
    def __init__(self, netns, namespace, ports: list[int]):
        self._listeners = []
        self._closed = threading.Event()
        for port in ports:
            listener = netns.listen(namespace, "127.0.0.1", port)
            self._listeners.append(listener)
            threading.Thread(target=self._accept, args=(listener, port), daemon=True,
                             name=f"ecs-bridge-{port}").start()

    def _accept(self, listener: socket.socket, port: int) -> None:
        while not self._closed.is_set():
            try:
                inside, _ = listener.accept()
            except OSError:
                return
            try:
                outside = socket.create_connection(("127.0.0.1", port), timeout=10)
            except OSError as exc:
                log.info("bridge to 127.0.0.1:%d refused: %s", port, exc)
                inside.close()
                continue
            for source, sink in ((inside, outside), (outside, inside)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        for listener in self._listeners:
            try:
                listener.close()
            except OSError:
                pass


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        source.settimeout(None)
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock, how in ((sink, socket.SHUT_WR), (source, socket.SHUT_RD)):
            try:
                sock.shutdown(how)
            except OSError:
                pass
