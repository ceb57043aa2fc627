"""The task runner: one process per container, started from an unpacked image and its task definition.

It knows nothing of moto: it is given a :class:`TaskPlan` (what ``plan.py`` reads from
the task definition, the image config and the run request) and keeps each task's real
lifecycle, which the extension shows in DescribeTasks:

- PROVISIONING -> PENDING (secrets, logs checked) -> RUNNING (every container started)
  -> STOPPING -> STOPPED, with stoppedReason/stopCode as ECS words them;
- a container's exitCode; an essential container's exit stops the task;
- the container health check run on its interval, retries and start period;
- memory held to the container's limit (resident memory watched, an address-space
  rlimit behind it), reported as ECS's OutOfMemoryError with exit code 137;
- stdout and stderr, line by line, to the awslogs group and stream, signed with the
  execution role's credentials;
- stop: SIGTERM to the container's process group, SIGKILL after its stopTimeout.

Every process is started from one long-lived thread with the parent-death signal set
(``setpriv``, or ``launch.py``): the signal fires when the thread that forked exits, so no task
outlives the local AWS even when it is killed.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from ... import clock
from ..lambdarun import _rss_mb as rss_mb

log = logging.getLogger("labkit.ecs")
LAUNCH = Path(__file__).with_name("launch.py")
WATCH_S = 0.1  # how often running containers are looked at (exit, memory)
ADDRESS_SPACE_HEADROOM_MB = 1024  # as for Lambda: interpreters reserve far more than they touch
SETPRIV, PRLIMIT = shutil.which("setpriv"), shutil.which("prlimit")


def now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class LogTarget:
    group: str
    region: str
    stream: str
    create_group: bool = False


@dataclass
class HealthCheck:
    argv: list[str]
    interval: float = 30.0
    timeout: float = 5.0
    retries: int = 3
    start_period: float = 0.0


@dataclass
class ContainerPlan:
    name: str
    argv: list[str]
    env: dict
    cwd: Path
    essential: bool = True
    uid: int | None = None  # switched to when the local AWS runs as root
    gid: int | None = None
    port_mappings: list[int] = field(default_factory=list)  # containerPort values (tcp)
    host_ports: dict[int, int] = field(default_factory=dict)  # containerPort -> loopback port (loopback mode)
    memory_mb: int | None = None
    health: HealthCheck | None = None
    log: LogTarget | None = None
    stop_timeout: float = 30.0
    image: str = ""
    image_digest: str | None = None
    exec_prefix: list[str] = field(default_factory=list)  # a network namespace's, when the task has one


@dataclass
class TaskPlan:
    arn: str
    containers: list[ContainerPlan]
    log_creds: dict | None = None  # the execution role's session, for awslogs
    failure: tuple[str, str] | None = None  # (stopCode, stoppedReason): stop before starting anything
    private_ip: str | None = None
    on_stop: Callable | None = None  # called as the task stops, before it reads STOPPED (namespaces, ports)


@dataclass
class ContainerRun:
    plan: ContainerPlan
    proc: subprocess.Popen | None = None
    last_status: str = "PENDING"
    exit_code: int | None = None
    reason: str | None = None
    health_status: str = "UNKNOWN"
    oom: bool = False
    started: float | None = None  # monotonic


@dataclass
class TaskRun:
    plan: TaskPlan
    containers: list[ContainerRun]
    last_status: str = "PROVISIONING"
    desired_status: str = "RUNNING"
    health_status: str = "UNKNOWN"
    stopped_reason: str | None = None
    stop_code: str | None = None
    created_at: datetime = field(default_factory=now)
    started_at: datetime | None = None
    stopping_at: datetime | None = None
    stopped_at: datetime | None = None
    changed: threading.Event = field(default_factory=threading.Event)
    finishing: bool = False
    released: bool = False  # its plan's on_stop has run

    @property
    def arn(self) -> str:
        return self.plan.arn

    @property
    def task_id(self) -> str:
        return self.plan.arn.rsplit("/", 1)[-1]


class Runner:
    """Every task the local AWS runs, and the threads that start, watch and stop them."""

    def __init__(self, log_clients=None, on_change: Callable[[TaskRun], None] | None = None):
        self.log_clients = log_clients  # sessions.Clients, for awslogs
        self.on_change = on_change
        self.lock = threading.RLock()
        self.tasks: dict[str, TaskRun] = {}
        self._forker = ThreadPoolExecutor(1, "ecs-spawn")  # one long-lived forking thread (see above)
        self._logs: queue.Queue = queue.Queue()
        self._closed = threading.Event()
        threading.Thread(target=self._watch, name="ecs-watch", daemon=True).start()
        threading.Thread(target=self._ship_logs, name="ecs-logs", daemon=True).start()

    # -- the public entry points -------------------------------------------------
    def start(self, plan: TaskPlan, prepare: Callable[[TaskPlan], None] | None = None) -> TaskRun:
        """Start ``plan`` in the background; ``prepare`` (secrets, images) runs first, in PENDING,
        and may set ``plan.failure``; it fills ``plan.containers`` (the images must be found first).
        Returns at once, in PROVISIONING."""
        run = TaskRun(plan, [])
        with self.lock:
            self.tasks[plan.arn] = run
        threading.Thread(target=self._start, args=(run, prepare), name=f"ecs-start-{run.task_id[:8]}",
                         daemon=True).start()
        return run

    def stop(self, arn: str, reason: str = "Task stopped by user", code: str = "UserInitiated") -> None:
        """Stop a task (SIGTERM, then SIGKILL after each container's stopTimeout), in the background."""
        with self.lock:
            run = self.tasks.get(arn)
            if run is None or run.desired_status == "STOPPED":
                return
            self._stopping(run, code, reason)
        threading.Thread(target=self._terminate, args=(run,), daemon=True).start()

    # ECS's DEACTIVATING, for a task leaving a load balancer: desired STOPPED at once (it leaves its
    # service's running tasks and its replacement starts), the stop signal only once it has drained.
    def deactivate(self, arn: str, reason: str, code: str) -> bool:
        """Mark a running task DEACTIVATING, desired STOPPED; False if it is not running (nothing changed)."""
        with self.lock:
            run = self.tasks.get(arn)
            if run is None or run.desired_status == "STOPPED" or run.last_status != "RUNNING":
                return False
            self._stopping(run, code, reason)
            run.last_status, run.stopping_at = "DEACTIVATING", None
        return True

    def finish_deactivating(self, arn: str) -> None:
        """Send a DEACTIVATING task its stop signal (STOPPING, then STOPPED), in the background."""
        with self.lock:
            run = self.tasks.get(arn)
            if run is None or run.last_status in ("STOPPED", "STOPPING") or run.finishing:
                return
            run.last_status, run.stopping_at = "STOPPING", now()
            self._changed(run)
        threading.Thread(target=self._terminate, args=(run,), daemon=True, name="ecs-stop").start()

    def get(self, arn: str) -> TaskRun | None:
        with self.lock:
            return self.tasks.get(arn)

    def all(self) -> list[TaskRun]:
        with self.lock:
            return list(self.tasks.values())

    def clear(self) -> None:
        """Stop every task now and forget them (reset, restore)."""
        with self.lock:
            runs, self.tasks = list(self.tasks.values()), {}
        for run in runs:
            with self.lock:
                if run.desired_status != "STOPPED":
                    self._stopping(run, "TaskFailedToStart" if run.last_status != "RUNNING" else "UserInitiated",
                                   "Task stopped because the local AWS was reset")
            for container in run.containers:
                _kill(container, signal.SIGKILL)
        for run in runs:
            for container in run.containers:
                if container.proc is not None:
                    try:
                        container.proc.wait(5)
                    except subprocess.TimeoutExpired:
                        log.warning("container %s of %s did not stop", container.plan.name, run.task_id)
            self._finish(run)

    def close(self) -> None:
        self.clear()
        self._closed.set()
        self._logs.put(None)
        self._forker.shutdown(wait=False)

    def pids(self) -> list[int]:
        with self.lock:
            return [c.proc.pid for r in self.tasks.values() for c in r.containers
                    if c.proc is not None and c.proc.poll() is None]

    # -- starting ---------------------------------------------------------------------
    def _start(self, run: TaskRun, prepare) -> None:
        plan = run.plan
        self._set(run, last_status="PENDING")
        if prepare is not None and plan.failure is None:
            try:
                prepare(plan)
            except Exception as exc:  # a bug of ours must not leave the task PENDING for ever
                log.exception("task %s could not be prepared", run.task_id)
                plan.failure = ("TaskFailedToStart", f"ResourceInitializationError: {exc}")
        with self.lock:
            late = run.finishing or run.last_status == "STOPPED"
        if late:  # stopped while it was being prepared: give back what the preparation made (its namespace)
            self._release(run)
            return
        if plan.failure is None:
            plan.failure = self._check_logs(plan)
        with self.lock:
            run.containers = [ContainerRun(c) for c in plan.containers]
        if plan.failure is not None:
            with self.lock:
                self._stopping(run, *plan.failure)
            self._finish(run)
            return
        for container in run.containers:
            with self.lock:
                if run.desired_status == "STOPPED":
                    break
            try:
                container.proc = self._forker.submit(self._spawn, container.plan).result()
            except OSError as exc:
                with self.lock:
                    container.reason = f"CannotStartContainerError: {exc}"
                    self._stopping(run, "TaskFailedToStart", f"CannotStartContainerError: {exc.strerror or exc}")
                self._terminate(run)
                return
            container.started = time.monotonic()
            container.last_status = "RUNNING"
            threading.Thread(target=self._read, args=(run, container), daemon=True).start()
            if container.plan.health is not None:
                threading.Thread(target=self._health, args=(run, container), daemon=True).start()
        with self.lock:
            if run.desired_status == "RUNNING":
                run.started_at = now()
                run.last_status = "RUNNING"
                run.health_status = self._task_health(run)
        self._changed(run)

    def _spawn(self, plan: ContainerPlan) -> subprocess.Popen:
        address_space = None
        if plan.memory_mb:
            address_space = (max(4 * plan.memory_mb, 1024) + ADDRESS_SPACE_HEADROOM_MB) * 1024 * 1024
        return _popen(plan, plan.argv, address_space, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def _check_logs(self, plan: TaskPlan) -> tuple[str, str] | None:
        """What the awslogs driver checks before a container starts: that the stream can be made."""
        for container in plan.containers:
            target = container.log
            if target is None or self.log_clients is None:
                continue
            if plan.log_creds is None:
                return ("TaskFailedToStart", "ResourceInitializationError: failed to validate logger args: "
                        "the task has no execution role to send logs to CloudWatch Logs with")
            client = self.log_clients.get("logs", target.region, plan.log_creds)
            try:
                if target.create_group:
                    try:
                        client.create_log_group(logGroupName=target.group)
                    except client.exceptions.ResourceAlreadyExistsException:
                        pass
                client.create_log_stream(logGroupName=target.group, logStreamName=target.stream)
            except client.exceptions.ResourceAlreadyExistsException:
                pass
            except Exception as exc:
                code = getattr(exc, "response", {}).get("Error", {})
                detail = f"{code.get('Code', type(exc).__name__)}: {code.get('Message', exc)}"
                return ("TaskFailedToStart", "ResourceInitializationError: failed to validate logger args: "
                        f"create stream has been retried 1 times: failed to create Cloudwatch log stream: {detail}")
        return None

    # -- watching ---------------------------------------------------------------------
    def _read(self, run: TaskRun, container: ContainerRun) -> None:
        """The container's output, line by line, to its log stream; then its exit."""
        out = container.proc.stdout
        for raw in iter(out.readline, b""):
            if container.plan.log is not None and run.plan.log_creds is not None:
                message = raw.decode("utf-8", "replace").rstrip("\n")
                self._logs.put((container.plan.log, run.plan.log_creds, int(time.time() * 1000), message))
        out.close()
        code = container.proc.wait()
        self._exited(run, container, code)

    def _exited(self, run: TaskRun, container: ContainerRun, code: int) -> None:
        with self.lock:
            container.last_status = "STOPPED"
            container.exit_code = 128 - code if code < 0 else code  # killed by signal N: 128 + N, as Docker says
            if container.oom:
                container.reason = "OutOfMemoryError: Container killed due to memory usage"
            stop = run.desired_status == "RUNNING" and container.plan.essential
            if stop:
                self._stopping(run, "EssentialContainerExited", "Essential container in task exited")
        if stop:
            self._terminate(run)
        elif all(c.last_status == "STOPPED" or c.proc is None for c in run.containers):
            self._finish(run)
        else:
            self._changed(run)

    def _watch(self) -> None:
        while not self._closed.wait(WATCH_S):
            for run in self.all():
                for container in run.containers:
                    limit = container.plan.memory_mb
                    if not limit or container.proc is None or container.last_status != "RUNNING":
                        continue
                    rss = rss_mb(container.proc.pid)
                    if rss and rss > limit and not container.oom:
                        container.oom = True  # its exit then says why
                        _kill(container, signal.SIGKILL)

    def _health(self, run: TaskRun, container: ContainerRun) -> None:
        """Docker's health check as ECS runs it: a probe every ``interval``; ``retries`` failures in a
        row make it UNHEALTHY; failures in the start period do not count, and during it the probe
        runs every second, or every interval when the local clock makes that shorter (a success ends
        the start period)."""
        check, plan = container.plan.health, container.plan
        failures, started = 0, time.monotonic()
        in_start = check.start_period > 0
        wait = min(1.0, clock.wait(check.interval)) if in_start else clock.wait(check.interval)
        while not self._closed.wait(wait):
            if container.last_status != "RUNNING" or run.desired_status != "RUNNING":
                return
            ok = self._probe(plan, check)
            in_start = in_start and time.monotonic() - started < clock.start_allowance(check.start_period)
            with self.lock:
                if ok:
                    failures, in_start = 0, False
                    container.health_status = "HEALTHY"
                elif not in_start:
                    failures += 1
                    if failures >= check.retries:
                        container.health_status = "UNHEALTHY"
                previous = run.health_status
                run.health_status = self._task_health(run)
            if run.health_status != previous:
                self._changed(run)
            wait = min(1.0, clock.wait(check.interval)) if in_start else clock.wait(check.interval)

    def _probe(self, plan: ContainerPlan, check: HealthCheck) -> bool:
        try:
            proc = self._forker.submit(_popen, plan, check.argv, None, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL).result()
        except OSError:
            return False
        try:
            return proc.wait(check.timeout) == 0
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.wait()
            return False

    @staticmethod
    def _task_health(run: TaskRun) -> str:
        checked = [c for c in run.containers if c.plan.essential and c.plan.health is not None]
        if any(c.health_status == "UNHEALTHY" for c in checked):
            return "UNHEALTHY"
        if checked and all(c.health_status == "HEALTHY" for c in checked):
            return "HEALTHY"
        return "UNKNOWN"

    # -- stopping ---------------------------------------------------------------------
    def _stopping(self, run: TaskRun, code: str, reason: str) -> None:
        """Mark ``run`` as being stopped (with the lock held); its first reason is the one kept."""
        if run.desired_status == "STOPPED":
            return
        run.desired_status = "STOPPED"
        run.stop_code, run.stopped_reason = code, reason
        run.stopping_at = now()
        if run.last_status == "RUNNING":
            run.last_status = "STOPPING"
        self._changed(run)

    def _terminate(self, run: TaskRun) -> None:
        for container in run.containers:
            _kill(container, signal.SIGTERM)
        for container in run.containers:
            if container.proc is None:
                continue
            try:
                container.proc.wait(container.plan.stop_timeout)
            except subprocess.TimeoutExpired:
                _kill(container, signal.SIGKILL)
                container.proc.wait()
        # The readers record each exit; wait for them so the task stops with its exit codes.
        deadline = time.monotonic() + 5
        while any(c.proc is not None and c.last_status != "STOPPED" for c in run.containers) \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        self._finish(run)

    def _release(self, run: TaskRun) -> None:
        """Call the plan's ``on_stop`` once (a task stopped mid-preparation meets it twice)."""
        with self.lock:
            if run.released or run.plan.on_stop is None:
                return
            run.released = True
        try:
            run.plan.on_stop()
        except Exception:
            log.exception("clean-up after task %s failed", run.task_id)

    def _finish(self, run: TaskRun) -> None:
        with self.lock:
            if run.last_status == "STOPPED" or run.finishing:
                return
            run.finishing = True
        # What the task held (credentials, namespace, address) is released before it reads STOPPED.
        self._release(run)
        with self.lock:
            for container in run.containers:
                container.last_status = "STOPPED"
            run.last_status = "STOPPED"
            run.stopped_at = now()
        self._changed(run)

    # -- plumbing ---------------------------------------------------------------------
    def _set(self, run: TaskRun, **values) -> None:
        with self.lock:
            for key, value in values.items():
                setattr(run, key, value)
        self._changed(run)

    def _changed(self, run: TaskRun) -> None:
        run.changed.set()
        if self.on_change is not None:
            try:
                self.on_change(run)
            except Exception:
                log.exception("task change not heard")

    def _ship_logs(self) -> None:
        from ..sessions import put_log_events

        while True:
            item = self._logs.get()
            if item is None:
                return
            batches: dict = {}
            while item is not None:
                target, creds, when, message = item
                key = (target.group, target.stream, target.region, creds["AccessKeyId"])
                batches.setdefault(key, (target, creds, []))[2].append({"timestamp": when, "message": message})
                try:
                    item = self._logs.get_nowait()
                except queue.Empty:
                    item = None
            for target, creds, events in batches.values():
                try:
                    put_log_events(self.log_clients.get("logs", target.region, creds), target.group, target.stream,
                                   events, create_group=target.create_group)
                except Exception as exc:  # as on AWS, logs the role may not write are lost
                    log.warning("logs of %s not delivered: %s", target.stream, exc)

    def wait(self, arn: str, status: str, timeout: float = 30.0) -> TaskRun | None:
        """Block until task ``arn`` reaches ``status`` (for tests and benchmarks); the run, or None."""
        deadline = time.monotonic() + timeout
        order = ["PROVISIONING", "PENDING", "RUNNING", "STOPPING", "STOPPED"]
        while time.monotonic() < deadline:
            run = self.get(arn)
            if run is not None:
                if status in ("HEALTHY", "UNHEALTHY"):
                    if run.health_status == status:
                        return run
                elif order.index(run.last_status) >= order.index(status):
                    return run
                run.changed.clear()
                run.changed.wait(0.05)
            else:
                time.sleep(0.02)
        return None


def _popen(plan: ContainerPlan, argv: list[str], address_space: int | None, **streams) -> subprocess.Popen:
    """Start ``argv`` as ``plan``'s container (its user, folder, environment, namespace), dying with this
    process: util-linux's setpriv and prlimit where they exist (nothing to start but the command, and
    no interpreter the container's user must be able to run), else ``launch.py``.

    The user is switched after the namespace is entered (entering one needs root), by setpriv or
    launch.py, never by Popen, and the parent-death signal is set after the switch, which clears it."""
    env = dict(plan.env)
    switch = os.geteuid() == 0 and plan.uid is not None
    gid = plan.gid if plan.gid is not None else plan.uid
    if SETPRIV and (PRLIMIT or not address_space):
        limit = [PRLIMIT, f"--as={address_space}:", "--"] if address_space else []
        user = [f"--reuid={plan.uid}", f"--regid={gid}", "--clear-groups"] if switch else []
        command = [SETPRIV, *user, "--pdeathsig", "KILL", "--", *limit, *argv]
    else:
        from .plan import task_python  # an interpreter the container's user may run

        env["LABKIT_LAUNCH"] = json.dumps({"parent": os.getpid(), "argv": argv, "address_space": address_space,
                                           "uid": plan.uid if switch else None, "gid": gid if switch else None})
        command = [task_python()[0], "-S", "-E", str(LAUNCH)]
    return subprocess.Popen([*plan.exec_prefix, *command], cwd=plan.cwd, env=env, stdin=subprocess.DEVNULL,
                            start_new_session=True, **streams)


def _kill(container: ContainerRun, sig: int) -> None:
    if container.proc is None or container.proc.poll() is not None:
        return
    try:
        os.killpg(container.proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            container.proc.send_signal(sig)
        except OSError:
            pass
