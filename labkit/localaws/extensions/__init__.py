"""Runtimes the local AWS adds to moto, each one module behind one small protocol.

moto stores configuration; an extension runs what it describes (Lambda code,
API stages, and in later labs container tasks, load balancers, engines). An
extension module defines a subclass of :class:`Extension` named
``EXTENSION``; adding a runtime is that module plus its name in
``REGISTERED``. The app asks each extension, in this order, whether it claims
a request, and tells every extension about writes to the services it lists,
about resets, and about restores.
"""
from __future__ import annotations

import importlib
from enum import Enum
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from pathlib import Path

    from ..app import LocalAWS
    from ..http import Request, Response

# Modules of this package, asked in this order. One line per runtime.
REGISTERED = (
    "lambdarun",  # Lambda's Invoke runs the deployed code
    "gateway",    # REST API stages answer at /_api/<api id>/<stage>/...
    "registry",   # the local ECR's OCI distribution API at /v2/...
    "elb",        # each ALB listener answers on its own loopback port, targets probed for real
    "ecs",        # ECS tasks run as processes; services keep their desired count
    "autoscaling",  # target tracking on the requests the ALB served sets a service's desired count
    "rds",        # a DB instance (PostgreSQL) is a real PostgreSQL on loopback
    "elasticache",  # a real Valkey for every cache node, at the endpoints the describe calls report
    "vpcnet",     # a probe from inside a VPC (its own namespace) reaches what PrivateLink and gateway endpoints allow
    "counts",     # the local AWS's own request counts (DynamoDB reads per table) at /_counts/dynamodb
)


class Claim(Enum):
    DATA = "data"    # served outside the journal and the lock (a request to a running thing)
    READ = "read"    # answered under the lock, changes nothing
    WRITE = "write"  # a change of state the extension keeps: journaled, and replayed through it


class Extension:
    """One runtime. Override what it needs; every hook has a do-nothing default."""

    name: str = ""
    # moto services (credential-scope names) whose writes this extension hears; "*" hears all.
    services: tuple[str, ...] = ()

    def __init__(self, host: "LocalAWS"):
        self.host = host

    def claims(self, request: "Request") -> Claim | None:
        """Whether this extension answers ``request`` (and how), or None to leave it to moto."""
        return None

    def handle(self, request: "Request") -> "Response":
        raise NotImplementedError

    def written(self, service: str | None, request: "Request") -> None:
        """A write to one of ``services`` was applied (``service`` None: unsigned, could be any)."""

    def reset(self) -> None:
        """The local AWS was emptied: forget everything, stop what runs."""

    def restored(self) -> None:
        """A journal was replayed: the state was rebuilt under this extension."""

    def checkpoint_state(self) -> object:
        """What this extension keeps outside moto, picklable, for a checkpoint; None when it keeps nothing.

        An extension that claims writes (Claim.WRITE) keeps state: the lines a checkpoint replaces are not
        replayed through it again, so it must return that state here and take it back in ``load_checkpoint``."""
        return None

    def load_checkpoint(self, state: object) -> None:
        """Take back what ``checkpoint_state`` returned (a checkpoint was loaded; ``restored`` follows)."""

    def save_data(self, folder: "Path") -> None:
        """Copy what this extension keeps outside moto and the journal (engine data) into ``folder``
        (new and empty). Called when a snapshot is saved (``snapshots/NAME.data/<extension name>/``)
        and when `labkit start` keeps a built start state."""

    def load_data(self, folder: "Path | None") -> None:
        """Before ``restored()`` after a restore: the data saved in ``folder`` (None: none was saved,
        start empty). ``restored()`` then starts the engines the replayed state names."""

    def close(self) -> None:
        """The local AWS is stopping: stop every process this extension started."""

    def status(self) -> dict:
        """What it runs, for ``labkit status``."""
        return {}

    def hears(self, service: str | None) -> bool:
        return "*" in self.services or service is None or service in self.services


def load(host: "LocalAWS", names: tuple[str, ...] = REGISTERED) -> list[Extension]:
    """One instance of each registered extension (a name of this package's module, or a dotted path)."""
    found = []
    for name in names:
        module = importlib.import_module(name if "." in name else f"{__name__}.{name}")
        found.append(module.EXTENSION(host))
    return found


Look = Callable[[], object]
