"""ECS services: the service scheduler moto does not have.

moto records services and never starts a task. Here a scheduler thread, a few times a
second, does what ECS's does for each ACTIVE replica service:

- keeps ``desiredCount`` tasks of the primary deployment running: a task that stops
  (killed, crashed, stopped by hand) is replaced, and one whose health check says
  UNHEALTHY is stopped and replaced ("Task failed container health checks");
- rolls a new revision out (UpdateService): new tasks start while the total stays within
  ``maximumPercent`` of the desired count, old ones stop only while the healthy count stays
  at or above ``minimumHealthyPercent``; the rollout is COMPLETED once the new revision's
  tasks are all healthy and no old one runs;
- the deployment circuit breaker: when a rollout's tasks keep failing (half the desired
  count, at least 3 and at most 200, as ECS counts) the deployment FAILS, and with rollback
  the last deployment that completed becomes the primary again; its tasks never stopped;
- registers each running task's address and containerPort in the service's target
  groups, and takes it out before the task is stopped (scale in, replacement, an unhealthy task,
  StopTask, DeleteService): the target drains for its group's ``deregistration_delay.timeout_seconds`` (on the
  local clock) while requests already sent to it finish and new ones go elsewhere, and only then is
  the task sent its stop signal, as ECS does; the wait runs on a thread of its own, not under the lock;
  with a load balancer a task counts as healthy once every target group says so, and one the
  load balancer reports unhealthy is stopped and replaced ("Task failed ELB health checks"),
  after ``healthCheckGracePeriodSeconds`` (which holds for container health checks too);
- replaces the tasks on a container instance set to DRAINING: replacements start elsewhere within
  ``maximumPercent``, and the draining instance's tasks stop while ``minimumHealthyPercent`` holds;
- says what it did in the service's events, in ECS's words, newest first.

Settings moto drops on CreateService (the circuit breaker and the rest of the deployment
configuration, the health check grace period, placement, the network configuration
tasks need) are kept on the service when the write is heard, replay included. Deployments
and tasks are not journaled: after a restore the scheduler starts the service afresh.
"""
from __future__ import annotations

import logging
import math
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ... import clock
from ...fidelity.elbv2 import target_type
from ...internal import json_write

log = logging.getLogger("labkit.ecs")
TICK_S = 0.25
DEFAULT_DEPLOYMENT = {"maximumPercent": 200, "minimumHealthyPercent": 100,
                      "deploymentCircuitBreaker": {"enable": False, "rollback": False}}
UNHEALTHY_REASON = "Task failed container health checks"
ELB_UNHEALTHY_REASON = "Task failed ELB health checks in (target-group {})"
# Target states that let a task serve: healthy, or a group that checks nothing or serves no listener.
ELB_SERVING = ("healthy", "unused", "unavailable")
EVENTS_KEPT = 100  # ECS shows the last 100
DRAIN_GRACE_S = 5.0  # how long past the delay a stop waits for the load balancer to finish draining


def now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Deployment:
    id: str
    task_definition: str
    status: str = "PRIMARY"  # PRIMARY | ACTIVE | INACTIVE
    rollout_state: str = "IN_PROGRESS"  # IN_PROGRESS | COMPLETED | FAILED
    rollout_reason: str = ""
    failed_tasks: int = 0
    tasks: list[str] = field(default_factory=list)  # task ARNs started for it and not yet forgotten
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)
    stopping: set = field(default_factory=set)  # ARNs the scheduler itself stops (not failures)


@dataclass
class ServiceState:
    arn: str
    deployments: list[Deployment]
    events: list[dict] = field(default_factory=list)
    steady: bool = False
    last_good: Deployment | None = None
    registered: dict = field(default_factory=dict)  # task ARN -> [(target group ARN, ip, port)]
    balanced: bool = False  # the service has load balancers: ELB health counts


class Scheduler:
    def __init__(self, runtime):
        self.runtime = runtime
        self.host = runtime.host
        self.states: dict[str, ServiceState] = {}
        self.draining: dict[str, float] = {}  # task ARN -> when its targets have drained (monotonic)
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ecs-scheduler", daemon=True)
        self._thread.start()
        install()

    # -- hooks --------------------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def task_changed(self, run) -> None:
        if run.last_status == "STOPPED" or run.health_status == "UNHEALTHY":
            self._wake.set()

    def clear(self) -> None:
        with self.host.lock:
            self.states.clear()
            self.draining.clear()

    def close(self) -> None:
        self._closed.set()
        self._wake.set()

    # -- the loop -----------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(TICK_S)
            self._wake.clear()
            if self._closed.is_set():
                return
            try:
                self.tick()
            except Exception:
                log.exception("the service scheduler failed a round")

    def tick(self) -> None:
        from .tasks import _backends

        with self.host.lock:
            if self.host.replaying:
                return
            state = self.host.random.getstate()
            # Tasks made here are not journaled: draw their ids from fresh randomness, then put the
            # seeded generator back so journaled writes replay to the same ids.
            self.host.random.seed(secrets.randbits(64))
            try:
                seen = set()
                for backend in list(_backends()):
                    for service in list(backend.services.values()):
                        seen.add(_key(service))
                        self._schedule(backend, service)
                for arn in [a for a in self.states if a not in seen]:
                    self._retire(self.states.pop(arn))
            finally:
                self.host.random.setstate(state)

    # -- one service ------------------------------------------------------------------------
    def _schedule(self, backend, service) -> None:
        runner = self.runtime.runner
        st = self.states.get(_key(service))
        if (service.deployment_controller or {}).get("type", "ECS") != "ECS" or service.scheduling_strategy != "REPLICA":
            return
        if st is None:
            if not service.task_definition:
                return
            st = self.states[_key(service)] = ServiceState(service.arn, [Deployment(_deployment_id(),
                                                                                  service.task_definition)])
        if service.status != "ACTIVE":
            self._retire(st)
            service.running_count = service.pending_count = 0
            return
        st.balanced = any(b.get("targetGroupArn") for b in service.load_balancers or [])
        primary = st.deployments[0]
        if service.task_definition and service.task_definition != primary.task_definition:
            self._new_deployment(st, service, service.task_definition)
            primary = st.deployments[0]
        config = {**DEFAULT_DEPLOYMENT, **(getattr(service, "deployment_configuration", None) or {})}
        breaker = config.get("deploymentCircuitBreaker") or {}
        desired = max(int(service.desired_count or 0), 0)

        # What became of each task: stopped ones are forgotten (a failure unless the scheduler stopped it),
        # unhealthy ones are stopped.
        for deployment in st.deployments:
            for arn in list(deployment.tasks):
                run = runner.get(arn)
                if run is None or run.last_status == "STOPPED":
                    deployment.tasks.remove(arn)
                    if arn not in deployment.stopping:
                        deployment.failed_tasks += 1
                        deployment.updated_at = now()
                    deployment.stopping.discard(arn)
                    st.steady = False
                elif arn in deployment.stopping or not self._past_grace(service, run):
                    continue
                elif run.health_status == "UNHEALTHY":
                    deployment.failed_tasks += 1
                    self._stop_unhealthy(st, service, deployment, arn, UNHEALTHY_REASON,
                                         "failed container health checks.")
                elif (group := self._elb_unhealthy(st, arn)) is not None:
                    deployment.failed_tasks += 1
                    self._stop_unhealthy(st, service, deployment, arn, ELB_UNHEALTHY_REASON.format(group),
                                         f"failed ELB health checks in (target-group {group}).")

        # The circuit breaker.
        threshold = min(max(math.ceil(desired * 0.5), 3), 200)
        if (breaker.get("enable") and primary.rollout_state == "IN_PROGRESS" and primary.failed_tasks >= threshold
                and st.last_good is not primary):
            primary.rollout_state = "FAILED"
            primary.rollout_reason = "ECS deployment circuit breaker: tasks failed to start."
            primary.updated_at = now()
            self._event(st, service, f"(deployment {primary.id}) deployment failed: tasks failed to start.")
            if breaker.get("rollback") and st.last_good is not None:
                good = st.last_good
                self._event(st, service, f"rolling back to deployment {good.id}.")
                self._new_deployment(st, service, good.task_definition, rollback_of=good)
                # As the UpdateService ECS makes: journaled, so a restart does not bring the broken revision back.
                if not json_write(self.host, account=service._account_id, region=service.region_name, scope="ecs",
                                  target="AmazonEC2ContainerServiceV20141113.UpdateService",
                                  body={"cluster": service.cluster_name, "service": service.name,
                                        "taskDefinition": good.task_definition}):
                    service.task_definition = good.task_definition
                primary = st.deployments[0]

        # Place and stop tasks within the deployment configuration's bounds.
        # A task draining after StopTask is on its way out: ECS starts its replacement at once.
        alive = {d.id: [a for a in d.tasks if a not in d.stopping and a not in self.draining] for d in st.deployments}
        healthy = {d.id: [a for a in alive[d.id] if self._healthy(st, runner.get(a))] for d in st.deployments}
        # Tasks on a DRAINING container instance are replaced elsewhere, within the same bounds as a rollout.
        leaving = _on_draining_instances(backend, service, alive[primary.id])
        total = sum(len(v) for v in alive.values())
        max_total = math.floor(desired * config["maximumPercent"] / 100)
        min_healthy = math.ceil(desired * config["minimumHealthyPercent"] / 100)
        started = []
        if primary.rollout_state != "FAILED":
            room = min(desired - (len(alive[primary.id]) - len(leaving)), max(max_total - total, 0))
            for _ in range(max(room, 0)):
                arn = self._start(backend, service, primary)
                if arn:
                    started.append(arn)
        if started:
            st.steady = False
            self._event(st, service, f"has started {len(started)} tasks: "
                        + " ".join(f"(task {_short(a)})" for a in started) + ".")
        stopped = []
        healthy_total = sum(len(v) for v in healthy.values())
        # Old deployments: their tasks go while enough healthy ones remain (unhealthy or starting ones first).
        for deployment in st.deployments[1:]:
            ordered = sorted(alive[deployment.id], key=lambda a: a in healthy[deployment.id])
            for arn in ordered:
                is_healthy = arn in healthy[deployment.id]
                if is_healthy and healthy_total - 1 < min_healthy and len(healthy[primary.id]) < desired:
                    break
                self._stop(deployment, arn, primary)
                stopped.append(arn)
                healthy_total -= is_healthy
        # The primary's tasks on draining instances go once their replacements keep enough healthy.
        for arn in sorted(leaving, key=lambda a: a in healthy[primary.id]):
            is_healthy = arn in healthy[primary.id]
            if is_healthy and healthy_total - 1 < min_healthy:
                break
            self._stop(primary, arn, primary)
            stopped.append(arn)
            healthy_total -= is_healthy
        # The primary itself, when it has more than desired (a draining instance's tasks first).
        remaining = [a for a in alive[primary.id] if a not in stopped]
        extra = len(remaining) - desired
        if extra > 0:
            ordered = sorted(remaining, key=lambda a: (a not in leaving, a in healthy[primary.id]))
            for arn in ordered[:extra]:
                self._stop(primary, arn, primary)
                stopped.append(arn)
        if stopped:
            st.steady = False
            self._event(st, service, f"has stopped {len(stopped)} running tasks: "
                        + " ".join(f"(task {_short(a)})" for a in stopped) + ".")

        # Completion and steady state.
        old_alive = any(d.tasks for d in st.deployments[1:])
        if (primary.rollout_state == "IN_PROGRESS" and len(healthy[primary.id]) >= desired
                and len(alive[primary.id]) == desired and not old_alive):
            primary.rollout_state = "COMPLETED"
            primary.rollout_reason = f"ECS deployment {primary.id} completed."
            primary.updated_at = now()
            self._event(st, service, f"(deployment {primary.id}) deployment completed.")
            st.last_good = primary
        if not old_alive:
            for deployment in st.deployments[1:]:
                deployment.status = "INACTIVE"
            st.deployments = [primary]
        if (not st.steady and primary.rollout_state == "COMPLETED" and not old_alive
                and len(alive[primary.id]) == len(healthy[primary.id]) == desired):
            st.steady = True
            self._event(st, service, "has reached a steady state.")
        self._balance(st, service)
        self._mirror(st, service)

    def _balance(self, st: ServiceState, service) -> None:
        """Register the service's running tasks in its target groups and take out those that stop,
        as ECS does for a service with load balancers (the ALB's own backend, like RegisterTargets)."""
        balancers = [b for b in service.load_balancers or [] if b.get("targetGroupArn")]
        st.balanced = bool(balancers)
        if not balancers and not st.registered:
            return
        runner = self.runtime.runner
        serving = {a for d in st.deployments for a in d.tasks if a not in d.stopping and a not in self.draining}
        changed = False
        for arn in list(st.registered):
            run = runner.get(arn)
            if arn not in serving or run is None or run.last_status != "RUNNING":
                changed = True
                for group, ip, port in st.registered.pop(arn):
                    _targets(service, group, ip, port, register=False)
        for arn in serving:
            run = runner.get(arn)
            if arn in st.registered or run is None or run.last_status != "RUNNING" or not run.plan.private_ip:
                continue
            done = []
            for balancer in balancers:
                port = int(balancer.get("containerPort") or 0)
                where = self._target_of(run, balancer["targetGroupArn"], port) if port else None
                if where and _targets(service, balancer["targetGroupArn"], *where, register=True):
                    done.append((balancer["targetGroupArn"], *where))
            st.registered[arn] = done
            changed = True
        if changed:
            self._tell_balancers()

    def _target_of(self, run, group_arn: str, container_port: int) -> tuple[str, int] | None:
        """The (id, port) ECS registers for a task's container port: an awsvpc task's address and that port;
        a bridge or host task's host port on its instance, as the EC2 instance id in a target group of type
        instance (its address in one of type ip)."""
        info = self.runtime.infos.get(run.arn, {})
        if info.get("network_mode") not in ("bridge", "host"):
            return run.plan.private_ip, container_port
        found = self.runtime.target(run.arn, container_port)
        if found is None:
            return None
        if target_type(group_arn) == "instance":
            host = self.runtime.hosts.get(info.get("instance"))
            return (host.ec2_id, found[1]) if host is not None else None
        return found

    def release(self, arn: str) -> float:
        """Take task ``arn`` out of its target groups before it stops (StopTask, scale in, replacement):
        the load balancer sends it nothing new (the host's lock is held). Returns the real seconds its
        targets drain: the longest deregistration delay of the groups a listener uses, on the local clock."""
        return self._release(arn)[0]

    def _release(self, arn: str) -> tuple[float, list]:
        drain, targets = 0.0, []
        for st in self.states.values():
            if arn in st.registered:
                taken = st.registered.pop(arn)
                for group, ip, port in taken:
                    _targets_quietly(group, ip, port)
                self._tell_balancers()
                targets += taken
                drain = max([drain] + [self._drain_time(group) for group, _, _ in taken])
        return drain, targets

    def _drain_time(self, group_arn: str) -> float:
        try:
            found = self.host.extension("elb").groups.get(group_arn)
        except StopIteration:
            return 0.0
        # A group no listener uses has nothing to drain: its targets go at once.
        return clock.wait(found.deregistration_delay) if found is not None and found.in_use else 0.0

    def stop_after_draining(self, arn: str, reason: str, code: str = "ServiceSchedulerInitiated") -> None:
        """Deregister task ``arn`` and stop it once its targets have drained (at once if it had none);
        the host's lock is held, the wait is not."""
        if arn in self.draining:
            return
        wait, targets = self._release(arn)
        self._stop_drained(arn, wait, targets, reason, code)

    def _stop_drained(self, arn: str, wait: float, targets: list, reason: str, code: str) -> None:
        """Stop task ``arn`` once ``targets`` (taken out of their groups already) drained for ``wait`` seconds."""
        if wait <= 0 or not self.runtime.runner.deactivate(arn, reason, code):
            self.runtime.runner.stop(arn, reason, code)
            return
        self.draining[arn] = time.monotonic() + wait
        threading.Thread(target=self._stop_when_drained, args=(arn, wait, targets, reason, code), daemon=True,
                         name="ecs-draining").start()

    def _stop_when_drained(self, arn: str, wait: float, targets: list, reason: str, code: str) -> None:
        if self._closed.wait(wait):
            return  # the local AWS is closing: its tasks stop with it
        # ECS waits for the load balancer to say the targets are gone (its probes' next round, here)
        deadline = time.monotonic() + DRAIN_GRACE_S
        while self._still_draining(targets) and time.monotonic() < deadline:
            if self._closed.wait(0.05):
                return
        with self.host.lock:
            if self.draining.pop(arn, None) is None:
                return  # reset or restored meanwhile: the task is gone already
            self.runtime.runner.finish_deactivating(arn)
        self._wake.set()

    def _tell_balancers(self) -> None:
        try:
            balancers = self.host.extension("elb")
        except StopIteration:
            return
        try:
            balancers.refresh()
        except Exception:
            log.exception("the load balancers did not hear of a target change")

    def _still_draining(self, targets: list) -> bool:
        try:
            checker = self.host.extension("elb").checker
        except StopIteration:
            return False
        if checker is None:
            return False
        return any(checker.describe(group).get((ip, port), ("gone",))[0] == "draining" for group, ip, port in targets)

    def _elb_states(self, st: ServiceState, arn: str) -> list[tuple[str, str]]:
        """(target group ARN, state) for each group task ``arn`` is registered in, as the probes see it."""
        registered = st.registered.get(arn) or []
        if not registered:
            return []
        try:
            checker = self.host.extension("elb").checker
        except StopIteration:
            return []
        out = []
        for group, ip, port in registered:
            seen = checker.describe(group) if checker is not None else {}
            out.append((group, seen.get((ip, port), ("initial",))[0]))
        return out

    def _elb_unhealthy(self, st: ServiceState, arn: str) -> str | None:
        return next((group for group, state in self._elb_states(st, arn) if state == "unhealthy"), None)

    def _past_grace(self, service, run) -> bool:
        grace = int(getattr(service, "health_check_grace_period_seconds", None) or 0)
        started = max((c.started for c in run.containers if c.started is not None), default=None)
        return started is None or time.monotonic() - started >= clock.start_allowance(grace)

    def _stop_unhealthy(self, st: ServiceState, service, deployment: Deployment, arn: str, reason: str,
                        what: str) -> None:
        deployment.stopping.add(arn)
        self.stop_after_draining(arn, reason, "ServiceSchedulerInitiated")
        self._event(st, service, f"has stopped 1 running tasks: (task {_short(arn)}).")
        self._event(st, service, f"(task {_short(arn)}) {what}")
        st.steady = False

    def _healthy(self, st: ServiceState, run) -> bool:
        """Running, its container health checks pass, and (behind a load balancer) every target group
        it is registered in says healthy; a task the service has not registered yet is not."""
        if run is None or run.last_status != "RUNNING":
            return False
        checked = any(c.plan.health is not None for c in run.containers if c.plan.essential)
        if checked and run.health_status != "HEALTHY":
            return False
        if not st.balanced:
            return True
        states = self._elb_states(st, run.arn)
        return bool(states) and all(state in ELB_SERVING for _, state in states)

    def _new_deployment(self, st: ServiceState, service, task_definition: str, rollback_of=None) -> None:
        new = Deployment(_deployment_id(), task_definition)
        if rollback_of is not None:  # the last good revision's tasks that still run serve the rollback
            for deployment in st.deployments:
                if deployment.task_definition == task_definition:
                    new.tasks += [a for a in deployment.tasks if a not in deployment.stopping]
                    deployment.tasks = [a for a in deployment.tasks if a in deployment.stopping]
        for deployment in st.deployments:
            deployment.status = "ACTIVE"
        st.deployments.insert(0, new)
        st.steady = False

    def _start(self, backend, service, deployment: Deployment) -> str | None:
        from moto.ecs.models import Task

        try:
            definition = backend.describe_task_definition(deployment.task_definition)
            cluster = backend._get_cluster(service.cluster_name)
            network = getattr(service, "_labkit_network", None)
            instance = None
            if (service.launch_type or "FARGATE") == "EC2":
                from . import ec2launch, placing

                chosen = placing.place(backend, cluster.name, self.runtime.runner, definition, f"service:{service.name}",
                                       getattr(service, "placement_constraints", None),
                                       getattr(service, "placement_strategy", None))
                if chosen.instance is None:
                    self._unplaced(service, chosen.reason)
                    return None
                instance = chosen.instance.id
                network = ec2launch.in_zone(network, chosen.instance.availability_zone, backend)
            task = Task(cluster=cluster, task_definition=definition, container_instance_arn=instance,
                        resource_requirements=backend._calculate_task_resource_requirements(definition),
                        backend=backend, group=f"service:{service.name}", launch_type=service.launch_type or "FARGATE",
                        started_by=deployment.id, networking_configuration=network,
                        platform_version=service.platform_version)
        except Exception as exc:
            log.warning("service %s: no task placed: %s", service.name, exc)
            return None
        backend.tasks.setdefault(cluster.name, {})[task.task_arn] = task
        self.runtime.adopt(backend, task)
        deployment.tasks.append(task.task_arn)
        return task.task_arn

    def _unplaced(self, service, reason: str | None) -> None:
        st = self.states.get(_key(service))
        text = ("was unable to place a task because no container instance met all of its requirements. "
                f"Reason: {reason}")
        if st is not None and not (st.events and st.events[0]["message"].endswith(text)):
            self._event(st, service, text)  # said once, as ECS does, until something changes

    def _stop(self, deployment: Deployment, arn: str, primary: Deployment) -> None:
        deployment.stopping.add(arn)
        self.stop_after_draining(arn, f"Scaling activity initiated by (deployment {primary.id})")

    def _retire(self, st: ServiceState) -> None:
        """A deleted service's tasks leave their target groups and drain before they stop, as on a scale-in."""
        leaving = [a for d in st.deployments for a in d.tasks]
        for deployment in st.deployments:
            deployment.stopping.update(deployment.tasks)
        for arn in list(st.registered):
            if arn not in leaving:
                for group, ip, port in st.registered.pop(arn):
                    _targets_quietly(group, ip, port)
        for arn in leaving:
            if arn in self.draining:
                continue
            taken = st.registered.pop(arn, [])
            for group, ip, port in taken:
                _targets_quietly(group, ip, port)
            if taken:
                self._tell_balancers()
            wait = max([0.0] + [self._drain_time(group) for group, _, _ in taken])
            self._stop_drained(arn, wait, taken, "Service deleted or scaled to zero", "ServiceSchedulerInitiated")

    def _event(self, st: ServiceState, service, text: str) -> None:
        message = f"(service {service.name}) {text}"
        st.events.insert(0, {"id": str(uuid.uuid4()), "createdAt": now(), "message": message})
        del st.events[EVENTS_KEPT:]

    def _mirror(self, st: ServiceState, service) -> None:
        runner = self.runtime.runner
        running = pending = 0
        deployments = []
        for d in st.deployments:
            runs = [runner.get(a) for a in d.tasks]
            r = sum(1 for x in runs if x is not None and x.last_status == "RUNNING")
            p = sum(1 for x in runs if x is not None and x.last_status in ("PROVISIONING", "PENDING"))
            running, pending = running + r, pending + p
            deployments.append({
                "id": d.id, "status": d.status, "taskDefinition": d.task_definition,
                "desiredCount": service.desired_count if d is st.deployments[0] else len(d.tasks),
                "pendingCount": p, "runningCount": r, "failedTasks": d.failed_tasks,
                "createdAt": d.created_at, "updatedAt": d.updated_at, "launchType": service.launch_type,
                "platformVersion": service.platform_version, "rolloutState": d.rollout_state,
                "rolloutStateReason": d.rollout_reason or f"ECS deployment {d.id} in progress.",
                "networkConfiguration": getattr(service, "_labkit_network", None)})
        service.deployments = deployments
        service.running_count, service.pending_count = running, pending
        service.events = list(st.events)

    # -- for tests and benchmarks ------------------------------------------------------------
    def state(self, service_arn: str) -> ServiceState | None:
        with self.host.lock:
            return next((st for st in self.states.values() if st.arn == service_arn), None)


def keep_settings(service, body: dict, created: bool) -> None:
    """Keep on ``service`` what moto drops from a CreateService/UpdateService request ``body``."""
    configuration = body.get("deploymentConfiguration")
    if created or configuration:
        service.deployment_configuration = {**DEFAULT_DEPLOYMENT,
                                            **(getattr(service, "deployment_configuration", None) or {}),
                                            **(configuration or {})}
    for key, attr in (("healthCheckGracePeriodSeconds", "health_check_grace_period_seconds"),
                      ("placementStrategy", "placement_strategy"),
                      ("placementConstraints", "placement_constraints"),
                      ("networkConfiguration", "network_configuration"),
                      ("enableExecuteCommand", "enable_execute_command")):
        if key in body:
            setattr(service, attr, body[key])
    if "networkConfiguration" in body:
        service._labkit_network = body["networkConfiguration"]


def install() -> None:
    """CreateService and UpdateService keep those settings before moto answers (so the answer shows them)."""
    import json

    from moto.ecs.responses import EC2ContainerServiceResponse as Responses

    if getattr(Responses, "_labkit_services", False):
        return
    Responses._labkit_services = True
    create, update = Responses.create_service, Responses.update_service

    def wrapped(original, created):
        def action(self):
            result = original(self)
            try:
                body = json.loads(self.body or "{}")
            except ValueError:
                body = {}
            keep_settings(result.result["service"], body, created)
            return result
        return action

    Responses.create_service = wrapped(create, True)
    Responses.update_service = wrapped(update, False)


def _targets(service, group: str, ip: str, port: int, register: bool) -> bool:
    from moto.elbv2.models import elbv2_backends

    try:
        backend = elbv2_backends[service._account_id][service.region_name]
        change = backend.register_targets if register else backend.deregister_targets
        change(group, [{"Id": ip, "Port": port}])
        return True
    except Exception as exc:
        log.warning("service %s: target %s:%d not %s: %s", service.name, ip, port,
                    "registered" if register else "deregistered", exc)
        return False


def _targets_quietly(group: str, ip: str, port: int) -> None:
    """Deregister from a target group named by ARN (the service itself may be gone)."""
    from moto.elbv2.models import elbv2_backends

    account, region = group.split(":")[4], group.split(":")[3]
    try:
        elbv2_backends[account][region].deregister_targets(group, [{"Id": ip, "Port": port}])
    except Exception as exc:
        log.info("target %s:%d not deregistered: %s", ip, port, exc)


def _on_draining_instances(backend, service, arns: list) -> list:
    """Those of tasks ``arns`` that run on a container instance the learner set to DRAINING."""
    draining = {ci.container_instance_arn for ci in backend.container_instances.get(service.cluster_name, {}).values()
                if ci.status == "DRAINING"}
    if not draining:
        return []
    tasks = backend.tasks.get(service.cluster_name, {})
    return [a for a in arns if a in tasks and getattr(tasks[a], "container_instance_arn", None) in draining]


def _key(service) -> str:
    """A service's state key: moto's short ARNs name no cluster, so two clusters' services of one name share one."""
    return f"{service.cluster_name}/{service.name}"


def _deployment_id() -> str:
    return f"ecs-svc/{secrets.randbelow(10 ** 19):019d}"


def _short(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]
