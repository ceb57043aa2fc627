"""Where a task of the EC2 launch type runs: moto's container instances read for ``placement.py``.

Each ACTIVE container instance of the cluster offers its registered CPU and memory less what the
tasks placed on it and not yet stopped need; its tasks' groups feed ``distinctInstance``. Called
with the host's lock held (it reads moto and the runner's truth).
"""
from __future__ import annotations

from ... import placement


def instances(backend, cluster: str, runner) -> list[placement.ContainerInstance]:
    out = []
    live = [t for t in backend.tasks.get(cluster, {}).values() if _alive(t, runner)]
    for ci in backend.container_instances.get(cluster, {}).values():
        if ci.status != "ACTIVE":
            continue
        total = {r["name"]: r.get("integerValue", 0) for r in ci.registered_resources}
        here = [t for t in live if t.container_instance_arn == ci.container_instance_arn]
        cpu = total.get("CPU", 0) - sum(_needs(t).get("CPU", 0) for t in here)
        memory = total.get("MEMORY", 0) - sum(_needs(t).get("MEMORY", 0) for t in here)
        attrs = {k: str(v) for k, v in (ci.attributes or {}).items() if v is not None}
        out.append(placement.ContainerInstance(
            id=ci.container_instance_arn, availability_zone=attrs.get("ecs.availability-zone", ""),
            instance_type=attrs.get("ecs.instance-type", ""), attributes=attrs, cpu=cpu, memory=memory,
            tasks=tuple(t.group or "" for t in here)))
    return out


def place(backend, cluster: str, runner, definition, group: str, constraints, strategy) -> placement.Placement:
    """The instance ECS would choose for one task of ``definition`` in ``group`` (or ECS's reason why none)."""
    needs = backend._calculate_task_resource_requirements(definition)
    return placement.place(instances(backend, cluster, runner),
                           placement.TaskNeeds(cpu=int(needs.get("CPU") or 0), memory=int(needs.get("MEMORY") or 0),
                                               group=group),
                           constraints or [], strategy or [])


def _needs(task) -> dict:
    return getattr(task, "resource_requirements", None) or {}


def _alive(task, runner) -> bool:
    if not task.container_instance_arn:
        return False
    run = runner.get(task.task_arn)
    return (run.last_status != "STOPPED") if run is not None else task.desired_status == "RUNNING"
