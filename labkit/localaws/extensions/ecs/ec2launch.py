"""RunTask on the EC2 launch type, and the container instance calls, as ECS answers them.

moto's RunTask drops ``placementStrategy`` and ``placementConstraints``, fills instances in the order
it keeps them and answers ``failures: []`` whatever was left unplaced; its RegisterContainerInstance
drops the ``totalResources`` and ``attributes`` the agent sends; and its DescribeContainerInstances
counts only what its own RunTask placed. Here:

- RunTask (launchType EC2, or a cluster whose tasks run on instances) places each of its ``count``
  tasks through ``placement.py`` with the request's strategy and constraints, records each task's
  containerInstanceArn, and reports a task that fits nowhere in ``failures`` as ECS does:
  ``{"arn": <the instance that came closest>, "reason": "RESOURCE:MEMORY"}`` (``RESOURCE:CPU``,
  ``RESOURCE:PORTS``, ``MemberOf placement constraint unsatisfied.``, ...); a cluster without
  container instances is refused ("No Container Instances were found in your cluster.");
- an awsvpc task gets its interface in a subnet of its instance's zone (an interface attaches only
  to an instance in its own zone);
- RegisterContainerInstance keeps ``totalResources`` and ``attributes``;
- DescribeContainerInstances (and DeregisterContainerInstance's running-tasks refusal) see
  remainingResources, runningTasksCount and pendingTasksCount from what really runs there.
"""
from __future__ import annotations

import threading

from ... import placement
from . import placing

_request = threading.local()  # the RunTask being answered (the host's lock serialises requests)
FARGATE_PROVIDERS = ("FARGATE", "FARGATE_SPOT")


def _runner():
    from .tasks import _ACTIVE

    return _ACTIVE[0].runner if _ACTIVE else None


def install() -> None:
    from moto.ecs.models import EC2ContainerServiceBackend as Backend
    from moto.ecs.responses import EC2ContainerServiceResponse as Responses

    if getattr(Backend, "_labkit_ec2", False):
        return
    Backend._labkit_ec2 = True
    respond, register = Responses.run_task, Responses.register_container_instance
    run_task, describe, deregister = (Backend.run_task, Backend.describe_container_instances,
                                      Backend.deregister_container_instance)

    def respond_run_task(self):
        _request.placement = {"strategy": self._get_param("placementStrategy") or [],
                              "constraints": self._get_param("placementConstraints") or [], "failures": []}
        try:
            result = respond(self)
            result.result["failures"] = _request.placement["failures"]
            return result
        finally:
            _request.placement = None

    def backend_run_task(self, cluster_str, task_definition_str, count, overrides, started_by, tags, launch_type,
                         networking_configuration=None, group=None, platform_version=None,
                         capacity_provider_strategy=None):
        wanted = getattr(_request, "placement", None)
        cluster = self._get_cluster(cluster_str)
        strategy = capacity_provider_strategy
        if not launch_type and not strategy:
            strategy = cluster.default_capacity_provider_strategy
        provider = strategy[0]["capacityProvider"] if strategy else None
        if wanted is None or launch_type in ("FARGATE", "EXTERNAL") or provider in FARGATE_PROVIDERS:
            return run_task(self, cluster_str, task_definition_str, count, overrides, started_by, tags, launch_type,
                            networking_configuration, group, platform_version, capacity_provider_strategy)
        return _place(self, cluster, task_definition_str, count, overrides, started_by, tags,
                      launch_type or ("EC2" if not provider else ""), networking_configuration, group,
                      platform_version, provider, wanted)

    def respond_register(self):
        result = register(self)
        ci = result.result["containerInstance"]
        total = {r.get("name"): r for r in self._get_param("totalResources") or []}
        for resources in (ci.registered_resources, ci.remaining_resources):
            for entry in resources:
                given = total.get(entry["name"])
                if given is not None and given.get("integerValue") is not None:
                    entry["integerValue"] = int(given["integerValue"])
        for attribute in self._get_param("attributes") or []:
            if attribute.get("name"):
                ci.attributes[attribute["name"]] = attribute.get("value")
        return result

    def describe_container_instances(self, cluster_str, ids):
        found, failures = describe(self, cluster_str, ids)
        for ci in found:
            truth(self, ci)
        return found, failures

    def deregister_container_instance(self, cluster_str, container_instance_str, force):
        cluster = self._get_cluster(cluster_str)
        ci = self.container_instances.get(cluster.name, {}).get(container_instance_str.split("/")[-1])
        if ci is not None:
            truth(self, ci)
        return deregister(self, cluster_str, container_instance_str, force)

    Responses.run_task, Responses.register_container_instance = respond_run_task, respond_register
    Backend.run_task = backend_run_task
    Backend.describe_container_instances = describe_container_instances
    Backend.deregister_container_instance = deregister_container_instance


def _place(backend, cluster, definition_str, count, overrides, started_by, tags, launch_type, network, group,
           platform_version, provider, wanted) -> list:
    from moto.ecs.exceptions import InvalidParameterException
    from moto.ecs.models import Task

    definition = backend.describe_task_definition(definition_str)
    group = group or f"family:{definition.family}"
    candidates = placing.instances(backend, cluster.name, _runner())
    if not candidates:
        raise InvalidParameterException(placement.NO_INSTANCES)
    try:
        placements, _ = placement.place_tasks(candidates, placing.needs(backend, definition, group), int(count or 1),
                                              wanted["constraints"], wanted["strategy"])
    except placement.PlacementError as exc:
        raise InvalidParameterException(str(exc)) from None
    requirements = backend._calculate_task_resource_requirements(definition)
    tasks = []
    backend.tasks.setdefault(cluster.name, {})
    for chosen in placements:
        if chosen.instance is None:
            failure = {"reason": chosen.reason}
            if chosen.nearest is not None:
                failure = {"arn": chosen.nearest.id, **failure}
            wanted["failures"].append(failure)
            continue
        task = Task(cluster, definition, chosen.instance.id, requirements, backend=backend, group=group,
                    overrides=overrides or {}, started_by=started_by or "", tags=tags or [], launch_type=launch_type,
                    networking_configuration=in_zone(network, chosen.instance.availability_zone, backend),
                    platform_version=platform_version, capacity_provider_name=provider)
        backend.tasks[cluster.name][task.task_arn] = task
        tasks.append(task)
    return tasks


def in_zone(network: dict | None, zone: str, backend) -> dict | None:
    """``network`` with a subnet of ``zone`` first (moto attaches a task's interface in the first subnet)."""
    config = (network or {}).get("awsvpcConfiguration")
    if not config or not zone:
        return network
    from moto.ec2.models import ec2_backends

    ec2 = ec2_backends[backend.account_id][backend.region_name]

    def zone_of(subnet_id):
        try:
            return ec2.get_subnet(subnet_id).availability_zone
        except Exception:
            return None

    subnets = list(config.get("subnets") or [])
    ordered = sorted(subnets, key=lambda s: zone_of(s) != zone)  # stable: the learner's order within a zone
    # securityGroups is optional (the VPC's default group); moto's Task reads it always.
    return {**network, "awsvpcConfiguration": {"securityGroups": [], **config, "subnets": ordered}}


def truth(backend, ci) -> None:
    """Write what runs on ``ci`` onto moto's record: remaining resources and task counts."""
    runner = _runner()
    if runner is None:
        return
    left = placing.remaining(backend, ci.cluster_name, ci, runner)
    for entry in ci.remaining_resources:
        if entry["name"] in ("CPU", "MEMORY"):
            entry["integerValue"] = left[entry["name"]]
        elif entry["name"] == "PORTS":
            registered = next((r.get("stringSetValue") or [] for r in ci.registered_resources if r["name"] == "PORTS"), [])
            entry["stringSetValue"] = list(registered) + [str(p) for p in sorted(left["PORTS"])]
    states = [runner.get(t.task_arn) for t in left["tasks"]]
    ci.running_tasks_count = sum(1 for run in states if run is None or run.last_status in ("RUNNING", "STOPPING"))
    ci.pending_tasks_count = len(states) - ci.running_tasks_count
    ci.agent_connected = placing.ec2_running(ci)
