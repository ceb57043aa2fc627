"""Where moto does the same work again on every request: remembered once. Speed only, never behaviour.

A replay sends every journaled change through moto again, so per-request
waste is paid thousands of times at each ``labkit up`` or restore.
"""
from __future__ import annotations

import functools


def apply() -> None:
    _remember_method_names()


def _remember_method_names() -> None:
    """moto lists a response class's methods (``inspect.getmembers``) for every request it answers;
    the classes do not change once the fidelity patches are in, so list each one once."""
    from moto.core import responses

    original = responses.method_names_from_class

    @functools.lru_cache(maxsize=None)
    def method_names(clazz) -> frozenset:
        return frozenset(original(clazz))

    responses.method_names_from_class = method_names


def remember_backend_hosts(dispatcher) -> None:
    """moto lists its package folder on disk for every backend lookup (about a hundred times a
    request); the answer depends on the host name alone, so remember it."""
    dispatcher.get_backend_for_host = functools.lru_cache(maxsize=1024)(dispatcher.get_backend_for_host)
