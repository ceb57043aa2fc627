"""Target health as a load balancer sees it: real probes on each target group's schedule.

Each target of a target group that a listener uses is probed every ``interval`` seconds (from
inside its namespace, through ``netns.connect``) the way the group's health check protocol says:
HTTP ``GET <path>`` (HTTPS: the same over TLS, the target's certificate not verified, as ELB
does), or for TCP only a connection that opens (an NLB's default). Its state follows ELB's
rules: ``initial`` until ``healthy_threshold`` probes in a row pass (healthy) or
``unhealthy_threshold`` fail (unhealthy, with the reason of the last failure); a healthy target
turns unhealthy after ``unhealthy_threshold`` failures in a row and back after ``healthy_threshold``
successes. A deregistered target drains for the group's deregistration delay; the targets of a
group no listener uses are ``unused``. Probes run on a small pool, so a thousand targets cost a few
threads, not a thousand.

Intervals, timeouts and delays run on the local AWS's clock (``clock.py``): the probes are the
same as AWS's, only the waits between them are shorter.
"""
from __future__ import annotations

import http.client
import logging
import re
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .. import clock, netns

log = logging.getLogger("labkit.elb")
WORKERS = 4
TICK_S = 0.25  # the scheduler's longest sleep
USER_AGENT = "ELB-HealthChecker/2.0"

REGISTERING = ("initial", "Elb.RegistrationInProgress", "Target registration is in progress")
CHECKING = ("initial", "Elb.InitialHealthChecking", "Initial health checks in progress")
HEALTHY = ("healthy", None, None)
DRAINING = ("draining", "Target.DeregistrationInProgress", "Target deregistration is in progress")
NOT_IN_USE = ("unused", "Target.NotInUse", "Target group is not configured to receive traffic from the load balancer")
DISABLED = ("unavailable", "Target.HealthCheckDisabled", "Health checks are disabled")


@dataclass(frozen=True)
class HealthCheck:
    enabled: bool = True
    protocol: str = "HTTP"
    path: str = "/"
    port: str = "traffic-port"
    interval: float = 30.0
    timeout: float = 5.0
    healthy: int = 5
    unhealthy: int = 2
    matcher: str = "200"

    def port_for(self, target_port: int) -> int:
        return int(target_port) if self.port in ("traffic-port", "", None) else int(self.port)


@dataclass(frozen=True)
class Group:
    """A target group as the load balancer serves it (read from moto)."""
    arn: str
    name: str
    check: HealthCheck
    targets: tuple            # ((id, port), ...) registered
    in_use: bool              # a listener's rule or default action forwards to it
    deregistration_delay: float = 300.0
    addresses: dict = field(default_factory=dict)  # instance id -> its private address (target type instance)

    def address(self, target_id: str) -> str:
        """Where a target is reached: its IP, or an instance's private address."""
        return self.addresses.get(target_id, target_id)


@dataclass
class TargetHealth:
    state: str = REGISTERING[0]
    reason: str | None = REGISTERING[1]
    description: str | None = REGISTERING[2]
    successes: int = 0
    failures: int = 0
    due: float = 0.0
    busy: bool = False
    drain_until: float | None = None
    probes: int = 0

    def set(self, triple) -> None:
        self.state, self.reason, self.description = triple


def code_matches(matcher: str, code: int) -> bool:
    """ALB's matcher: "200", "200,202", "200-299"."""
    for part in str(matcher or "200").split(","):
        part = part.strip()
        if "-" in part:
            low, _, high = part.partition("-")
            if low.isdigit() and high.isdigit() and int(low) <= code <= int(high):
                return True
        elif part.isdigit() and int(part) == code:
            return True
    return False


def probe(address: str, port: int, check: HealthCheck, timeout: float) -> tuple:
    """One health check: (True, None, None) or (False, reason, description)."""
    try:
        sock = netns.connect(address, port, timeout)
    except socket.timeout:
        return False, "Target.Timeout", "Request timed out"
    except OSError:
        return False, "Target.FailedHealthChecks", "Health checks failed"
    protocol = (check.protocol or "HTTP").upper()
    if protocol == "TCP":  # the connection opened: that is the whole check
        sock.close()
        return True, None, None
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        sock.settimeout(timeout)
        if protocol == "HTTPS":
            sock = _unverified().wrap_socket(sock, server_hostname=None)
        conn.sock = sock
        conn.request("GET", check.path or "/", headers={"User-Agent": USER_AGENT, "Connection": "close"})
        response = conn.getresponse()
        response.read(65536)
        code = response.status
    except socket.timeout:
        return False, "Target.Timeout", "Request timed out"
    except (OSError, http.client.HTTPException):
        return False, "Target.FailedHealthChecks", "Health checks failed"
    finally:
        conn.close()
        sock.close()
    if code_matches(check.matcher, code):
        return True, None, None
    return False, "Target.ResponseCodeMismatch", f"Health checks failed with these codes: [{code}]"


def _unverified() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # ELB does not verify a target's certificate
    return context


class Checker:
    """Keeps every target's health by probing it; ``update`` hands it the groups as they are now."""

    def __init__(self, on_tick=None, probe_fn=probe):
        self.lock = threading.Lock()
        self.groups: dict[str, Group] = {}
        self.health: dict[str, dict[tuple, TargetHealth]] = {}
        self.probe_fn = probe_fn
        self.on_tick = on_tick  # called about once a second: the owner reads the groups again
        self.stopping = threading.Event()
        self.pool: ThreadPoolExecutor | None = None
        self.thread: threading.Thread | None = None

    # -- what is registered -------------------------------------------------------
    def update(self, groups: dict[str, Group]) -> None:
        now = time.monotonic()
        with self.lock:
            for arn in list(self.health):
                if arn not in groups:
                    del self.health[arn]
            for arn, group in groups.items():
                before = self.groups.get(arn)
                targets = self.health.setdefault(arn, {})
                became_used = group.in_use and not (before and before.in_use)
                for key in group.targets:
                    found = targets.get(key)
                    if found is None or found.state == "draining" or became_used:
                        targets[key] = TargetHealth(due=now)
                for key, found in list(targets.items()):
                    if key in group.targets:
                        continue
                    if not group.in_use:
                        del targets[key]
                    elif found.state != "draining":
                        found.set(DRAINING)
                        found.drain_until = now + clock.wait(group.deregistration_delay)
            self.groups = dict(groups)

    # -- what the load balancer asks --------------------------------------------
    def describe(self, arn: str) -> dict[tuple, tuple]:
        """(id, port) -> (state, reason, description) for every target the group shows, draining ones too."""
        with self.lock:
            group = self.groups.get(arn)
            found = {}
            for key, health in self.health.get(arn, {}).items():
                if group is not None and not group.in_use and key in group.targets:
                    found[key] = NOT_IN_USE
                elif group is not None and not group.check.enabled and health.state != "draining":
                    found[key] = DISABLED
                else:
                    found[key] = (health.state, health.reason, health.description)
            return found

    def routable(self, arn: str) -> list[tuple]:
        """The targets a request may go to: the healthy ones; when none is healthy and some failed their
        checks, all that are not draining (ALB fails open); none while all are still initial."""
        with self.lock:
            group = self.groups.get(arn)
            if group is None:
                return []
            states = {key: self.health.get(arn, {}).get(key) for key in group.targets}
            if not group.check.enabled:
                return list(group.targets)
            healthy = [k for k, h in states.items() if h is not None and h.state == "healthy"]
            if healthy:
                return healthy
            if any(h is not None and h.state == "unhealthy" for h in states.values()):
                return [k for k, h in states.items() if h is not None and h.state in ("unhealthy", "initial")]
            return []

    def timeout(self, check: HealthCheck) -> float:
        return check.timeout  # not a wait: the clock leaves it as configured

    # -- the schedule ----------------------------------------------------------------
    def start(self) -> None:
        if self.thread is None:
            self.pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="elb-health")
            self.thread = threading.Thread(target=self._loop, name="elb-health", daemon=True)
            self.thread.start()

    def stop(self) -> None:
        # No join: the caller may hold the local AWS's lock, which the loop's next read waits for;
        # the loop sees ``stopping`` and ends, and a probe in flight ends within its timeout.
        self.stopping.set()
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        self.thread = self.pool = None

    def _loop(self) -> None:
        last_tick = 0.0
        while not self.stopping.is_set():
            now = time.monotonic()
            if self.on_tick is not None and now - last_tick >= 1.0:
                last_tick = now
                try:
                    self.on_tick(self)
                except Exception:
                    log.exception("target groups could not be read again")
            wait = self._dispatch(time.monotonic())
            self.stopping.wait(min(TICK_S, max(wait, 0.01)))

    def _dispatch(self, now: float) -> float:
        """Start the probes that are due; returns how long until the next one."""
        soonest = TICK_S
        with self.lock:
            for arn, targets in self.health.items():
                group = self.groups.get(arn)
                for key, health in list(targets.items()):
                    if health.state == "draining":
                        if health.drain_until is not None and now >= health.drain_until:
                            del targets[key]
                        continue
                    if group is None or not group.in_use or not group.check.enabled or health.busy:
                        continue
                    if health.due > now:
                        soonest = min(soonest, health.due - now)
                        continue
                    health.busy = True
                    health.due = now + clock.wait(group.check.interval)
                    try:
                        self.pool.submit(self._probe, arn, key, health, group.check, group.address(key[0]))
                    except RuntimeError:  # the pool is shutting down
                        return TICK_S
        return soonest

    def _probe(self, arn: str, key: tuple, health: TargetHealth, check: HealthCheck, address: str) -> None:
        port = key[1]
        try:
            ok, reason, description = self.probe_fn(address, check.port_for(port), check, self.timeout(check))
        except Exception as exc:  # a bug in probing is the load balancer's, not the target's
            log.exception("health check of %s:%s failed to run", address, port)
            ok, reason, description = False, "Elb.InternalError", f"Health checks failed to run: {exc}"
        with self.lock:
            health.busy = False
            if self.health.get(arn, {}).get(key) is not health or health.state == "draining":
                return  # deregistered while the probe ran
            health.probes += 1
            if ok:
                health.successes, health.failures = health.successes + 1, 0
                if health.state != "healthy" and health.successes >= check.healthy:
                    health.set(HEALTHY)
                elif health.state == "initial":
                    health.set(CHECKING)
            else:
                health.failures, health.successes = health.failures + 1, 0
                if health.state == "unhealthy" or health.failures >= check.unhealthy:
                    health.set(("unhealthy", reason, description))
                elif health.state == "initial":
                    health.set(CHECKING)


def check_from(model) -> HealthCheck:
    """A moto target group's health check settings."""
    matcher = (getattr(model, "matcher", None) or {}).get("HttpCode") or "200"
    return HealthCheck(
        enabled=bool(getattr(model, "health_check_enabled", True)),
        protocol=str(getattr(model, "health_check_protocol", None) or "HTTP"),
        path=str(getattr(model, "health_check_path", None) or "/"),
        port=str(getattr(model, "health_check_port", None) or "traffic-port"),
        interval=float(getattr(model, "health_check_interval_seconds", None) or 30),
        timeout=float(getattr(model, "health_check_timeout_seconds", None) or 5),
        healthy=int(getattr(model, "healthy_threshold_count", None) or 5),
        unhealthy=int(getattr(model, "unhealthy_threshold_count", None) or 2),
        matcher=re.sub(r"\s+", "", str(matcher)),
    )
