"""Elastic Load Balancing v2: an NLB's ARNs say net, health-check settings stay within AWS's ranges,
a port takes one listener, and rule priorities run from 1 to 50000.

moto writes ``loadbalancer/app/`` into every load balancer ARN (an NLB's included, and so its
listeners'), stores health-check settings outside AWS's ranges, never notices a second listener
on a port (it compares the port with listener ARNs), and accepts rule priorities above 50000.
Labs 05 and 06 read ARNs and build these; the local AWS answers as AWS would.
"""
from __future__ import annotations

import inspect
import threading

# The ARN segment for each load balancer type.
ARN_KIND = {"application": "app", "network": "net", "gateway": "gwy"}
# AWS's ranges for target-group health checks (request name -> (min, max)).
HEALTH_CHECK_RANGES = {
    "healthCheckIntervalSeconds": (5, 300),
    "healthCheckTimeoutSeconds": (2, 120),
    "healthyThresholdCount": (2, 10),
    "unhealthyThresholdCount": (2, 10),
}
RULE_PRIORITY = (1, 50000)

_creating = threading.local()


def out_of_range(name: str, value, low: int, high: int) -> str | None:
    """AWS's validation message for a number outside [low, high], or None."""
    if value is None:
        return None
    number = int(value)
    if number < low:
        return (f"1 validation error detected: Value '{number}' at '{name}' failed to satisfy constraint: "
                f"Member must have value greater than or equal to {low}")
    if number > high:
        return (f"1 validation error detected: Value '{number}' at '{name}' failed to satisfy constraint: "
                f"Member must have value less than or equal to {high}")
    return None


def apply() -> None:
    _arn_names_the_type()
    _health_check_ranges()
    _one_listener_per_port()
    _rule_priority_range()


def _arn_names_the_type() -> None:
    from moto.elbv2 import models

    make = models.make_arn_for_load_balancer
    original = models.ELBv2Backend.create_load_balancer

    def make_arn(account_id, lb_id, name, region_name):
        arn = make(account_id=account_id, lb_id=lb_id, name=name, region_name=region_name)
        kind = getattr(_creating, "kind", "app")
        return arn.replace(":loadbalancer/app/", f":loadbalancer/{kind}/", 1)

    def create_load_balancer(self, *args, **kwargs):
        _creating.kind = ARN_KIND.get(kwargs.get("loadbalancer_type") or "application", "app")
        try:
            return original(self, *args, **kwargs)
        finally:
            _creating.kind = "app"

    models.make_arn_for_load_balancer = make_arn
    models.ELBv2Backend.create_load_balancer = create_load_balancer


def _check_ranges(values: dict) -> None:
    from moto.elbv2.exceptions import ValidationError

    for name, (low, high) in HEALTH_CHECK_RANGES.items():
        message = out_of_range(name, values.get(name), low, high)
        if message:
            raise ValidationError(message)


def _health_check_ranges() -> None:
    from moto.elbv2.models import ELBv2Backend

    create, modify = ELBv2Backend.create_target_group, ELBv2Backend.modify_target_group

    def create_target_group(self, name, **kwargs):
        _check_ranges({"healthCheckIntervalSeconds": kwargs.get("healthcheck_interval_seconds"),
                       "healthCheckTimeoutSeconds": kwargs.get("healthcheck_timeout_seconds"),
                       "healthyThresholdCount": kwargs.get("healthy_threshold_count"),
                       "unhealthyThresholdCount": kwargs.get("unhealthy_threshold_count")})
        return create(self, name, **kwargs)

    def modify_target_group(self, arn, *args, **kwargs):
        given = inspect.signature(modify).bind(self, arn, *args, **kwargs).arguments  # moto passes them by position
        _check_ranges({"healthCheckIntervalSeconds": given.get("health_check_interval"),
                       "healthCheckTimeoutSeconds": given.get("health_check_timeout"),
                       "healthyThresholdCount": given.get("healthy_threshold_count"),
                       "unhealthyThresholdCount": given.get("unhealthy_threshold_count")})
        return modify(self, arn, *args, **kwargs)

    ELBv2Backend.create_target_group = create_target_group
    ELBv2Backend.modify_target_group = modify_target_group


def _one_listener_per_port() -> None:
    from moto.elbv2.exceptions import DuplicateListenerError
    from moto.elbv2.models import ELBv2Backend

    original = ELBv2Backend.create_listener

    def create_listener(self, load_balancer_arn, protocol, port, *args, **kwargs):
        balancer = self.load_balancers.get(load_balancer_arn)
        if balancer is not None and any(str(l.port) == str(port) for l in balancer.listeners.values()):
            raise DuplicateListenerError()
        return original(self, load_balancer_arn, protocol, port, *args, **kwargs)

    ELBv2Backend.create_listener = create_listener


def _rule_priority_range() -> None:
    from moto.elbv2.exceptions import ValidationError
    from moto.elbv2.models import ELBv2Backend

    create, reorder = ELBv2Backend.create_rule, ELBv2Backend.set_rule_priorities

    def create_rule(self, listener_arn, conditions, priority, *args, **kwargs):
        message = out_of_range("priority", priority, *RULE_PRIORITY)
        if message:
            raise ValidationError(message)
        return create(self, listener_arn, conditions, priority, *args, **kwargs)

    def set_rule_priorities(self, rule_priorities, *args, **kwargs):
        for entry in rule_priorities or []:
            message = out_of_range("priority", entry.get("Priority") if isinstance(entry, dict) else None,
                                   *RULE_PRIORITY)
            if message:
                raise ValidationError(message)
        return reorder(self, rule_priorities, *args, **kwargs)

    ELBv2Backend.set_rule_priorities = set_rule_priorities
    ELBv2Backend.create_rule = create_rule
