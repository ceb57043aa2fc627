"""Container instances as hosts: each registered one has a network namespace of its own, where its tasks run.

On AWS a container instance is an EC2 instance with the ECS agent: its ``bridge`` and ``host`` tasks
share the instance's network and are reached at its private address (host mode: at the container
port; bridge: at the host port Docker maps, a static ``hostPort`` or, with ``hostPort`` 0, one the
agent picks from the ephemeral range and reports in the task's ``networkBindings``). Here each
container instance of every cluster (ACTIVE or DRAINING) gets the namespace
``labkit-<EC2 instance id>-<install tag>`` (``netns``) holding the EC2 instance's private address,
and nothing else: no route, so a task on one instance reaches no other instance; the local AWS
reaches it with ``netns.connect``. A bridge listener in it carries the local AWS's endpoint and the
credentials endpoint, as for an awsvpc task. In loopback mode the namespace is only a name, and each
host port is published to a loopback port. awsvpc tasks on an instance keep their own namespace.

When a container instance is deregistered, or its EC2 instance stops or terminates, its tasks stop
("Host EC2 (instance ...) terminated.") and its namespace goes (AWS leaves a force-deregistered
instance's tasks running, untracked; here nothing runs that no record names).
Called with the host's lock held; the namespaces are made there (a few ``ip`` calls, on registration).
"""
from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass, field
from urllib.parse import urlparse

from . import placing

log = logging.getLogger("labkit.ecs")
EPHEMERAL = (32768, 60999)  # Linux's ip_local_port_range, where the agent finds a dynamic host port
DEREGISTERED = "Container instance {} was deregistered"
HOST_GONE = "Host EC2 (instance {}) {}."


@dataclass
class Host:
    arn: str  # the container instance
    ec2_id: str
    address: str | None
    namespace: object | None = None  # netns.Namespace, real or loopback mode's
    bridge: object | None = None
    ports: set = field(default_factory=set)  # host ports its tasks hold (static and dynamic)


class Hosts:
    def __init__(self, runtime):
        self.runtime = runtime
        self.hosts: dict[str, Host] = {}  # container instance ARN -> its host
        self.lock = threading.Lock()  # ports are taken from task start threads
        self.tag = hashlib.sha256(str(runtime.host.state_dir.resolve()).encode()).hexdigest()[:6]

    # -- which instances exist (host lock held) ------------------------------------------
    def sync(self) -> None:
        """Make a host for each registered container instance whose EC2 instance runs; retire the rest."""
        from .tasks import _backends

        wanted = {}
        for backend in _backends():
            for cluster in list(backend.container_instances):
                for ci in backend.container_instances.get(cluster, {}).values():
                    if ci.status in ("ACTIVE", "DRAINING") and cluster != "orphaned":
                        wanted[ci.container_instance_arn] = ci
        for arn in [a for a in self.hosts if a not in wanted or not placing.ec2_running(wanted[a])]:
            ci = wanted.get(arn)
            if ci is None:
                reason = DEREGISTERED.format(arn.rsplit("/", 1)[-1])
            else:
                instance = placing.ec2_instance(ci)
                reason = HOST_GONE.format(ci.ec2_instance_id, getattr(instance, "state", "stopped"))
            self.retire(arn, reason)
        for arn, ci in wanted.items():
            if arn not in self.hosts and placing.ec2_running(ci):
                self.hosts[arn] = self._make(ci)

    def _make(self, ci) -> Host:
        from .tasks import netns, network_mode

        instance = placing.ec2_instance(ci)
        address = getattr(instance, "private_ip", None) if instance is not None else None
        host = Host(ci.container_instance_arn, ci.ec2_instance_id, address)
        if netns is None or not address:
            return host
        try:
            host.namespace = netns.create(self.name(ci.ec2_instance_id), [address])
            if network_mode() == "namespaces":
                ports = [urlparse(self.runtime.host.endpoint).port, self.runtime.credentials.port()]
                from .bridge import Bridge

                host.bridge = Bridge(netns, host.namespace, [p for p in ports if p])
        except Exception as exc:
            log.warning("container instance %s has no namespace (%s): its tasks run on loopback ports", ci.id, exc)
            if host.namespace is not None:
                host.namespace.delete()
            host.namespace = None
        return host

    def name(self, ec2_id: str) -> str:
        """The namespace of the instance, less ``labkit-``: its EC2 id and this install's tag (two local AWSs
        on one machine may hold the same instance ids)."""
        return f"{ec2_id.lower()}-{self.tag}"

    def retire(self, arn: str, reason: str) -> None:
        host = self.hosts.pop(arn, None)
        if host is None:
            return
        runner = self.runtime.runner
        for run in runner.all():
            if self.runtime.infos.get(run.arn, {}).get("instance") == arn and run.desired_status != "STOPPED":
                self.runtime.scheduler.release(run.arn)
                runner.stop(run.arn, reason, "TerminationNotice")
        self._drop(host)

    def _drop(self, host: Host) -> None:
        if host.bridge is not None:
            host.bridge.close()
        if host.namespace is not None:
            try:
                host.namespace.delete()
            except Exception:
                log.exception("the namespace of %s was not removed", host.arn)

    def clear(self) -> None:
        """Every host goes (reset, close); the runner stops the tasks."""
        hosts, self.hosts = list(self.hosts.values()), {}
        for host in hosts:
            self._drop(host)

    def get(self, arn: str | None) -> Host | None:
        return self.hosts.get(arn) if arn else None

    # -- host ports (a task's start thread) ------------------------------------------------
    def bind(self, host: Host, mode: str, mappings: list[dict]) -> dict[int, int]:
        """containerPort -> host port for one container's tcp mappings: host mode its own port, bridge the
        static hostPort or a free one of the ephemeral range. Raises ValueError when a port is taken."""
        wanted = [(int(m["containerPort"]), int(m["containerPort"]) if mode == "host" else int(m.get("hostPort") or 0))
                  for m in mappings if m.get("containerPort") and (m.get("protocol") or "tcp") == "tcp"]
        with self.lock:
            taken = set(host.ports)
            out = {}
            for inner, outer in wanted:
                if not outer:
                    outer = next((p for p in range(*EPHEMERAL) if p not in taken), 0)
                if not outer or outer in taken:
                    raise ValueError(f"Bind for 0.0.0.0:{outer} failed: port is already allocated")
                taken.add(outer)
                out[inner] = outer
            host.ports = taken
        return out

    def unbind(self, host: Host, ports) -> None:
        with self.lock:
            host.ports.difference_update(ports)
