"""Where a task of the EC2 launch type runs: moto's container instances read for ``placement.py``.

Each ACTIVE container instance of the cluster whose EC2 instance is running offers its registered
CPU and memory less what the tasks placed on it and not yet stopped need, and the static host ports
those tasks hold; its tasks' groups feed ``distinctInstance``. Called with the host's lock held (it
reads moto and the runner's truth).
"""
from __future__ import annotations

from ... import placement


def instances(backend, cluster: str, runner) -> list[placement.ContainerInstance]:
    out = []
    for ci in backend.container_instances.get(cluster, {}).values():
        if ci.status != "ACTIVE" or not ec2_running(ci):
            continue
        left = remaining(backend, cluster, ci, runner)
        attrs = {k: str(v) for k, v in (ci.attributes or {}).items() if v is not None}
        out.append(placement.ContainerInstance(
            id=ci.container_instance_arn, availability_zone=attrs.get("ecs.availability-zone", ""),
            instance_type=attrs.get("ecs.instance-type", ""), attributes=attrs, cpu=left["CPU"],
            memory=left["MEMORY"], tasks=tuple(t.group or "" for t in left["tasks"]), ports=frozenset(left["PORTS"])))
    return out


def remaining(backend, cluster: str, ci, runner) -> dict:
    """What ``ci`` has left: {"CPU", "MEMORY", "PORTS" (held), "tasks" (placed, not stopped)}."""
    total = {r["name"]: r.get("integerValue", 0) for r in ci.registered_resources}
    here = [t for t in backend.tasks.get(cluster, {}).values()
            if t.container_instance_arn == ci.container_instance_arn and _alive(t, runner)]
    return {"CPU": total.get("CPU", 0) - sum(_needs(t).get("CPU", 0) or 0 for t in here),
            "MEMORY": total.get("MEMORY", 0) - sum(_needs(t).get("MEMORY", 0) or 0 for t in here),
            "PORTS": {p for t in here for p in static_ports(t.task_definition_arn, backend)}, "tasks": here}


# A service that names no strategy is spread over zones (standalone tasks have no default).
SERVICE_DEFAULT_STRATEGY = ({"type": "spread", "field": "attribute:ecs.availability-zone"},)


def place(backend, cluster: str, runner, definition, group: str, constraints, strategy) -> placement.Placement:
    """The instance ECS would choose for one task of service ``group`` (or ECS's reason why none)."""
    return placement.place(instances(backend, cluster, runner), needs(backend, definition, group),
                           constraints or [], strategy or list(SERVICE_DEFAULT_STRATEGY))


def needs(backend, definition, group: str) -> placement.TaskNeeds:
    found = backend._calculate_task_resource_requirements(definition)
    return placement.TaskNeeds(cpu=int(found.get("CPU") or 0), memory=int(found.get("MEMORY") or 0), group=group,
                               ports=frozenset(definition_ports(definition)))


def definition_ports(definition) -> list[int]:
    """The host ports a task of ``definition`` holds on its instance: bridge's static hostPort values and
    host mode's containerPort values (awsvpc tasks have their own interface; hostPort 0 is dynamic)."""
    mode = definition.network_mode or "bridge"
    if mode not in ("bridge", "host"):
        return []
    out = []
    for c in definition.container_definitions:
        for m in c.get("portMappings") or []:
            port = m.get("containerPort") if mode == "host" else m.get("hostPort")
            if port:
                out.append(int(port))
    return out


def static_ports(definition_arn: str, backend) -> list[int]:
    try:
        return definition_ports(backend.describe_task_definition(definition_arn))
    except Exception:
        return []


def ec2_running(ci) -> bool:
    """Whether the EC2 instance behind ``ci`` runs (a terminated or stopped one runs no task)."""
    instance = ec2_instance(ci)
    return instance is None or instance.state in ("pending", "running")


def ec2_instance(ci):
    from moto.ec2.models import ec2_backends

    try:
        return ec2_backends[ci._account_id][ci.region_name].get_instance(ci.ec2_instance_id)
    except Exception:
        return None


def _needs(task) -> dict:
    return getattr(task, "resource_requirements", None) or {}


def _alive(task, runner) -> bool:
    if not task.container_instance_arn:
        return False
    run = runner.get(task.task_arn)
    return (run.last_status != "STOPPED") if run is not None else task.desired_status == "RUNNING"
