"""Application Auto Scaling that acts: ECS services scale on the requests their load balancer really served.

moto stores scalable targets and scaling policies and never acts on one. Here a thread does, for every
scalable target ``ecs:service:DesiredCount`` with a TargetTrackingScaling policy on the predefined metric
``ALBRequestCountPerTarget``, what Application Auto Scaling and its CloudWatch alarms do on AWS:

- every 1-minute period the metric is the requests the ALB forwarded to the target group in that period
  (``LoadBalancers.request_counts``, counted as it serves them) divided by the group's healthy targets; a
  period with no request has no datapoint (ELB publishes RequestCount only while requests flow), and a
  missing datapoint leaves an alarm without data, so it does not act;
- the high alarm acts when 3 datapoints in a row are above the target value, the low alarm when 15 in a
  row are below 90% of it (never with DisableScaleIn); each acts again at every period it stays in ALARM;
- the new capacity is ceil(capacity * metric / target), within MinCapacity and MaxCapacity; during a
  scale-out cooldown the capacity added by that scale-out counts as already there (only a larger scale-out
  acts), a scale-in waits out its cooldown (a scale-out ends it); the defaults are ECS's 300 seconds;
- a target whose SuspendedState suspends dynamic scaling out (or in) does not scale that way;
- a change sets the service's desiredCount as UpdateService does (the scheduler starts or stops tasks) and
  is recorded as a scaling activity, which ``DescribeScalingActivities`` (moto has none) answers in AWS's shape.

Periods and cooldowns run on the local AWS's clock (``clock.wait``): a minute lasts six seconds at the
default speed. A change is made as an UpdateService request through the local AWS itself, carrying its
activity in the ``X-Labkit-Internal`` header: the journal keeps both, so a restart or a restore brings back
the scaled desired count and its history. Datapoints and alarm states start afresh, as a service's tasks do.
"""
from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field

from .. import clock
from ..fidelity.applicationautoscaling import ALB_METRIC, ECS_DIMENSION, ecs_service
from ..http import Request, Response, json_response
from ..internal import json_write, marker_of
from . import Claim, Extension

log = logging.getLogger("labkit.autoscaling")
TARGET = "AnyScaleFrontendService."
PERIOD_S = 60          # the metric's period (AWS seconds)
HIGH_DATAPOINTS = 3    # the high alarm: 3 of 3 one-minute datapoints above the target
LOW_DATAPOINTS = 15    # the low alarm: 15 of 15 below LOW_SHARE of the target
LOW_SHARE = 0.9
DEFAULT_COOLDOWN_S = 300  # ECS services' default scale-out and scale-in cooldowns
ACTIVITIES_KEPT = 100
SERVING = ("healthy",)  # HealthyHostCount: the targets that count in the per-target metric


@dataclass
class Tracking:
    """One policy's metric and alarms."""
    started: float                  # the current period's start (monotonic)
    counted: int                    # the group's request count at that start
    datapoints: deque = field(default_factory=lambda: deque(maxlen=LOW_DATAPOINTS))
    total: int = 0                  # datapoints taken so far (missing ones included)
    out_at: float | None = None     # last scale-out (monotonic) and the capacity before it
    out_from: int = 0
    in_at: float | None = None      # last scale-in


class Scaler(Extension):
    name = "autoscaling"
    services = ("ecs",)  # hears its own UpdateService requests, live and replayed

    def __init__(self, host):
        super().__init__(host)
        self.tracking: dict[str, Tracking] = {}   # policy ARN -> its metric
        self.activities: list[dict] = []          # newest first
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="autoscaling", daemon=True)
        self._thread.start()

    # -- DescribeScalingActivities ------------------------------------------------------
    def claims(self, request: Request) -> Claim | None:
        return Claim.READ if request.header("X-Amz-Target") == TARGET + "DescribeScalingActivities" else None

    def handle(self, request: Request) -> Response:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            body = {}
        namespace = body.get("ServiceNamespace")
        if not namespace:
            message = ("1 validation error detected: Value null at 'serviceNamespace' failed to satisfy constraint: "
                       "Member must not be null")
            return json_response({"__type": "ValidationException", "message": message}, 400,
                                 {"x-amzn-ErrorType": "ValidationException"})
        region = request.scope[0] or "us-east-1"
        found = [a for a in self.activities if a["_region"] == region and a["ServiceNamespace"] == namespace
                 and body.get("ResourceId") in (None, a["ResourceId"])
                 and body.get("ScalableDimension") in (None, a["ScalableDimension"])]
        start = int(body.get("NextToken") or 0) if str(body.get("NextToken") or "0").isdigit() else 0
        size = max(1, min(int(body.get("MaxResults") or 50), 50))
        page = [{k: v for k, v in a.items() if not k.startswith("_")} for a in found[start:start + size]]
        out = {"ScalingActivities": page}
        if start + size < len(found):
            out["NextToken"] = str(start + size)
        return json_response(out)

    # -- hooks --------------------------------------------------------------------------
    def reset(self) -> None:
        with self.host.lock:
            self.tracking.clear()
            self.activities.clear()

    def written(self, service, request) -> None:
        activity = marker_of(request).get("scaling_activity")
        if isinstance(activity, dict) and all(a["ActivityId"] != activity.get("ActivityId") for a in self.activities):
            self.activities.insert(0, activity)
            del self.activities[ACTIVITIES_KEPT:]

    def restored(self) -> None:
        with self.host.lock:
            self.tracking.clear()  # the activities came back with the replayed UpdateService requests

    def checkpoint_state(self) -> object:
        return list(self.activities)  # a checkpoint replaces the lines that carried them

    def load_checkpoint(self, state: object) -> None:
        self.activities = list(state or [])

    def close(self) -> None:
        self._closed.set()

    def status(self) -> dict:
        with self.host.lock:
            return {"policies": {arn: {"datapoints": tr.total, "recent": list(tr.datapoints)}
                                 for arn, tr in self.tracking.items()},
                    "activities": len(self.activities)}

    # -- the loop -----------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._closed.wait(min(0.25, clock.wait(PERIOD_S) / 4)):
            try:
                self.tick()
            except Exception:
                log.exception("the scaler failed a round")

    def tick(self) -> None:
        from moto.applicationautoscaling.models import applicationautoscaling_backends

        with self.host.lock:
            if self.host.replaying:
                return
            seen = set()
            for account in list(applicationautoscaling_backends.keys()):
                for region in list(applicationautoscaling_backends[account].keys()):
                    backend = applicationautoscaling_backends[account][region]
                    for policy in list(backend.policies.values()):
                        if _tracks_requests(policy):
                            seen.add(policy.policy_arn)
                            self._track(backend, policy)
            for arn in [a for a in self.tracking if a not in seen]:
                del self.tracking[arn]

    # -- one policy ---------------------------------------------------------------------
    def _track(self, backend, policy) -> None:
        target = backend.targets.get(ECS_DIMENSION, {}).get(policy.resource_id)
        service = ecs_service(backend, policy.resource_id)
        group = _group(backend, policy)
        if target is None or service is None or group is None:
            return
        counted = self._requests(group)
        now = time.monotonic()
        tr = self.tracking.get(policy.policy_arn)
        if tr is None:
            self.tracking[policy.policy_arn] = Tracking(now, counted)
            return
        if now - tr.started < clock.wait(PERIOD_S):
            return
        served = counted - tr.counted if counted >= tr.counted else counted  # counters start again after a reset
        healthy = self._healthy(group)
        tr.datapoints.append(served / healthy if served > 0 and healthy > 0 else None)
        tr.total += 1
        tr.started, tr.counted = now, counted
        self._evaluate(backend, policy, target, service, tr, now)

    def _evaluate(self, backend, policy, target, service, tr: Tracking, now: float) -> None:
        config = policy.target_tracking_scaling_policy_configuration or {}
        goal = float(config.get("TargetValue") or 0)
        if goal <= 0:
            return
        points = list(tr.datapoints)
        suspended = target.suspended_state or {}
        current = int(service.desired_count or 0)
        low, high = int(target.min_capacity or 0), int(target.max_capacity or 0)
        metric = points[-1]
        recent = points[-HIGH_DATAPOINTS:]
        if len(recent) == HIGH_DATAPOINTS and all(p is not None and p > goal for p in recent):
            if suspended.get("DynamicScalingOutSuspended"):
                return
            cooling = tr.out_at is not None and now - tr.out_at < clock.wait(
                config.get("ScaleOutCooldown", DEFAULT_COOLDOWN_S))
            base = tr.out_from if cooling else current  # what the cooling scale-out added counts as there
            wanted = min(max(math.ceil(base * metric / goal), low), high)
            if wanted > current:
                tr.out_at, tr.out_from, tr.in_at = now, current, None
                self._set(backend, policy, service, wanted, "AlarmHigh")
            return
        if config.get("DisableScaleIn") or suspended.get("DynamicScalingInSuspended"):
            return
        if len(points) == LOW_DATAPOINTS and all(p is not None and p < goal * LOW_SHARE for p in points):
            if tr.in_at is not None and now - tr.in_at < clock.wait(config.get("ScaleInCooldown", DEFAULT_COOLDOWN_S)):
                return
            wanted = min(max(math.ceil(current * metric / goal), low), high)
            if wanted < current:
                tr.in_at = now
                self._set(backend, policy, service, wanted, "AlarmLow")

    def _set(self, backend, policy, service, count: int, which: str) -> None:
        """Set the desired count with an UpdateService request through the local AWS (journaled, so kept across
        a restart), its activity in AWS's words riding along for DescribeScalingActivities."""
        alarm = next((a.name for a in policy.alarms if f"-{which}-" in a.name),
                     f"TargetTracking-{policy.resource_id}-{which}-{uuid.uuid4()}")
        stamp = time.time()
        activity = {
            "ActivityId": str(uuid.uuid4()), "ServiceNamespace": "ecs", "ResourceId": policy.resource_id,
            "ScalableDimension": ECS_DIMENSION, "Description": f"Setting desired count to {count}.",
            "Cause": f"monitor alarm {alarm} in state ALARM triggered policy {policy.policy_name}",
            "StartTime": stamp, "EndTime": stamp, "StatusCode": "Successful",
            "StatusMessage": f"Successfully set desired count to {count}. Change successfully fulfilled by ecs.",
            "_region": backend.region_name}
        _, cluster, name = policy.resource_id.split("/", 2)
        if not json_write(self.host, account=backend.account_id, region=backend.region_name, scope="ecs",
                          target="AmazonEC2ContainerServiceV20141113.UpdateService",
                          body={"cluster": cluster, "service": name, "desiredCount": count},
                          marker={"scaling_activity": activity}):
            return
        log.info("%s: desired count set to %d by %s", policy.resource_id, count, policy.policy_name)

    # -- what the load balancer saw -----------------------------------------------------
    def _balancers(self):
        try:
            return self.host.extension("elb")
        except StopIteration:
            return None

    def _requests(self, group_arn: str) -> int:
        elb = self._balancers()
        return sum(elb.request_counts(group_arn).values()) if elb is not None else 0

    def _healthy(self, group_arn: str) -> int:
        elb = self._balancers()
        checker = getattr(elb, "checker", None)
        if checker is None:
            return 0
        return sum(1 for state in checker.describe(group_arn).values() if state[0] in SERVING)


def _tracks_requests(policy) -> bool:
    config = policy.target_tracking_scaling_policy_configuration or {}
    spec = config.get("PredefinedMetricSpecification") or {}
    return (policy.policy_type == "TargetTrackingScaling" and policy.service_namespace == "ecs"
            and policy.scalable_dimension == ECS_DIMENSION and spec.get("PredefinedMetricType") == ALB_METRIC)


def _group(backend, policy) -> str | None:
    """The target group ARN the policy's ResourceLabel names (app/<lb>/<id>/targetgroup/<tg>/<id>)."""
    from moto.elbv2.models import elbv2_backends

    label = ((policy.target_tracking_scaling_policy_configuration or {}).get("PredefinedMetricSpecification")
             or {}).get("ResourceLabel") or ""
    if "/targetgroup/" not in label:
        return None
    tail = ":targetgroup/" + label.split("/targetgroup/", 1)[1]
    groups = elbv2_backends[backend.account_id][backend.region_name].target_groups
    return next((arn for arn in groups if arn.endswith(tail)), None)


EXTENSION = Scaler
