"""Elastic Load Balancing v2: an NLB's ARNs say net, health-check settings stay within AWS's ranges,
a port takes one listener, rule priorities run from 1 to 50000, listeners forward only to target
groups of a protocol they can carry, and an NLB has an address in each of its subnets.

moto writes ``loadbalancer/app/`` into every load balancer ARN (an NLB's included, and so its
listeners'), stores health-check settings outside AWS's ranges, never notices a second listener
on a port (it compares the port with listener ARNs), accepts rule priorities above 50000, lets a
TCP listener forward to an HTTP target group (and an ALB's to a TCP one), takes a path or a matcher
for a TCP health check, gives an NLB's HTTP health checks ALB's matcher, gives an NLB no
address, and keeps one port per target id (AWS keys a target by id and port). Here an NLB gets,
as on AWS, one network interface per subnet ("ELB net/<name>/<id>", type ``network_load_balancer``) whose private address is the one its subnet mapping asked for or
one the subnet has free; DescribeLoadBalancers reports it under LoadBalancerAddresses where AWS
does (an internal NLB's mapping that named it). Labs 05 and 06 read ARNs and build these; the
local AWS answers as AWS would.
"""
from __future__ import annotations

import hashlib
import inspect
import ipaddress
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
# Which target-group protocols each listener protocol forwards to (AWS's compatibility table).
FORWARDS_TO = {"HTTP": {"HTTP", "HTTPS"}, "HTTPS": {"HTTP", "HTTPS"}, "TCP": {"TCP", "TCP_UDP"},
               "TLS": {"TCP", "TLS"}, "UDP": {"UDP", "TCP_UDP"}, "TCP_UDP": {"TCP_UDP"}}
NETWORK_PROTOCOLS = ("TCP", "TLS", "UDP", "TCP_UDP")
NLB_HTTP_MATCHER = "200-399"  # an NLB's HTTP/HTTPS health checks pass on these codes unless told
NLB_INTERFACE = "network_load_balancer"

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
    _compatible_protocols()
    _tcp_health_checks()
    _nlb_addresses()
    _targets_by_id_and_port()


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


def incompatible(backend, listener_protocol: str, actions) -> str | None:
    """AWS's message when a forward action names a target group the listener's protocol cannot carry."""
    allowed = FORWARDS_TO.get(str(listener_protocol or "").upper())
    if allowed is None:
        return None
    for action in actions or []:
        data = action if isinstance(action, dict) else getattr(action, "data", {}) or {}
        if data.get("Type") != "forward":
            continue
        arns = [data.get("TargetGroupArn")] + [g.get("TargetGroupArn") for g in
                                               (data.get("ForwardConfig") or {}).get("TargetGroups") or []]
        for arn in filter(None, arns):
            group = backend.target_groups.get(arn)
            if group is not None and group.protocol and group.protocol not in allowed:
                return f"The listener and its associated target group '{arn}' have incompatible protocols"
    return None


def _compatible_protocols() -> None:
    from moto.elbv2.exceptions import ELBClientError
    from moto.elbv2.models import ELBv2Backend

    create, modify, rule = ELBv2Backend.create_listener, ELBv2Backend.modify_listener, ELBv2Backend.create_rule

    def refuse(message):
        if message:
            raise ELBClientError("IncompatibleProtocols", message)

    # moto's own parameter orders (its responses pass these by name, ModifyListener by position)
    def create_listener(self, load_balancer_arn, protocol, port, *args, **kwargs):
        actions = kwargs.get("actions", args[2] if len(args) > 2 else None)
        balancer = self.load_balancers.get(load_balancer_arn)
        if balancer is not None and (balancer.type == "network") == (str(protocol).upper() in NETWORK_PROTOCOLS):
            refuse(incompatible(self, protocol, actions))  # a protocol the type cannot have: moto says so
        return create(self, load_balancer_arn, protocol, port, *args, **kwargs)

    def modify_listener(self, arn, port=None, protocol=None, ssl_policy=None, certificates=None, actions=None):
        listener = next((l for lb in self.load_balancers.values() for l in lb.listeners.values() if l.arn == arn), None)
        if listener is not None:
            refuse(incompatible(self, protocol or listener.protocol,
                                actions or [a.data for a in listener.default_actions]))
        return modify(self, arn, port, protocol, ssl_policy, certificates, actions)

    def create_rule(self, listener_arn, conditions, priority, actions, *args, **kwargs):
        listener = next((l for lb in self.load_balancers.values() for l in lb.listeners.values()
                         if l.arn == listener_arn), None)
        if listener is not None:
            refuse(incompatible(self, listener.protocol, actions))
        return rule(self, listener_arn, conditions, priority, actions, *args, **kwargs)

    ELBv2Backend.create_listener = create_listener
    ELBv2Backend.modify_listener = modify_listener
    ELBv2Backend.create_rule = create_rule


def _tcp_health_checks() -> None:
    from moto.elbv2.exceptions import InvalidConfigurationRequest
    from moto.elbv2.models import ELBv2Backend

    create = ELBv2Backend.create_target_group

    def create_target_group(self, name, **kwargs):
        protocol = str(kwargs.get("protocol") or "").upper()
        checks = str(kwargs.get("healthcheck_protocol") or ("TCP" if protocol in NETWORK_PROTOCOLS else "HTTP")).upper()
        if checks == "TCP":
            if kwargs.get("healthcheck_path"):
                raise InvalidConfigurationRequest("Health check paths are not supported for TCP health checks")
            if (kwargs.get("matcher") or {}).get("HttpCode"):
                raise InvalidConfigurationRequest("Health check matchers are not supported for TCP health checks")
        elif protocol in NETWORK_PROTOCOLS and not (kwargs.get("matcher") or {}).get("HttpCode"):
            kwargs["matcher"] = {"HttpCode": NLB_HTTP_MATCHER}
        if protocol in ("HTTP", "HTTPS") and checks == "TCP":
            raise InvalidConfigurationRequest(
                f"Health check protocol 'TCP' is not supported for target groups with the protocol '{protocol}'")
        return create(self, name, **kwargs)

    ELBv2Backend.create_target_group = create_target_group


def _nlb_addresses() -> None:
    from moto.elbv2 import models

    create, delete = models.ELBv2Backend.create_load_balancer, models.ELBv2Backend.delete_load_balancer

    def create_load_balancer(self, *args, **kwargs):
        lb = create(self, *args, **kwargs)
        if lb.type == "network":
            asked = {m.get("SubnetId"): m.get("PrivateIPv4Address") for m in kwargs.get("subnet_mappings") or []}
            lb._labkit_addresses = {}
            for subnet in lb.subnets:
                wanted = asked.get(subnet.id)
                ip = wanted or free_address(self.ec2_backend, subnet, lb.arn)
                eni = self.ec2_backend.create_network_interface(
                    subnet, ip, description=f"ELB net/{lb.name}/{lb.arn.rsplit('/', 1)[-1]}")
                eni.interface_type = NLB_INTERFACE
                # AWS reports the address in DescribeLoadBalancers when an internal NLB's mapping named it
                lb._labkit_addresses[subnet.id] = (eni.id, ip, bool(wanted) and lb.scheme == "internal")
        return lb

    def delete_load_balancer(self, arn):
        lb = self.load_balancers.get(arn)
        for eni_id, _, _ in (getattr(lb, "_labkit_addresses", None) or {}).values():
            self.ec2_backend.enis.pop(eni_id, None)
        return delete(self, arn)

    def availability_zones(lb):
        zones = []
        kept = getattr(lb, "_labkit_addresses", None) or {}
        for subnet in lb.subnets:
            zone = models.AvailabilityZone(subnet)
            found = kept.get(subnet.id)
            if lb.type == "network":
                zone.load_balancer_addresses = [{"PrivateIPv4Address": found[1]}] if found and found[2] else []
            zones.append(zone)
        return zones

    models.ELBv2Backend.create_load_balancer = create_load_balancer
    models.ELBv2Backend.delete_load_balancer = delete_load_balancer
    models.FakeLoadBalancer.availability_zones = property(availability_zones)


def free_address(ec2_backend, subnet, seed: str) -> str:
    """An address of ``subnet`` no interface holds, drawn from ``seed`` (so a replay draws the same one);
    never one of the five AWS keeps (the first four and the last)."""
    network = ipaddress.ip_network(subnet.cidr_block, strict=False)
    taken = {e.private_ip_address for e in ec2_backend.enis.values() if getattr(e.subnet, "id", None) == subnet.id}
    usable = network.num_addresses - 5
    start = int(hashlib.sha256(f"{seed}/{subnet.id}".encode()).hexdigest(), 16) % usable
    for step in range(usable):
        candidate = str(network.network_address + 4 + (start + step) % usable)
        if candidate not in taken:
            return candidate
    raise models_error(f"There are not enough free addresses in subnet '{subnet.id}' to allocate to the load balancer")


def models_error(message: str):
    from moto.elbv2.exceptions import InvalidConfigurationRequest

    return InvalidConfigurationRequest(message)


def _targets_by_id_and_port() -> None:
    """A target is an id and a port: one instance may be registered at several ports (ECS registers each
    bridge task on an instance at its own dynamic host port). moto keys targets by id alone, so a second
    port replaced the first."""
    from moto.elbv2.exceptions import InvalidTargetError, TargetNotRunning
    from moto.elbv2.models import FakeHealthStatus, FakeTargetGroup

    original_health = FakeTargetGroup.health_for

    def key(group, target) -> tuple:
        return target["Id"], int(target.get("Port") or group.port or 0)

    def register(self, targets):
        for target in targets:
            instance = self.ec2_backend.get_instance_by_id(target["Id"])
            if instance is not None and instance.state != "running":
                raise TargetNotRunning(instance_id=target["Id"])
            found = key(self, target)
            self.targets[found] = {"Id": found[0], "Port": found[1]}
            self.deregistered_targets.pop(found, None)

    def deregister(self, targets):
        for target in targets:
            found = key(self, target)
            taken = self.targets.pop(found, None)
            if taken is None:
                raise InvalidTargetError()
            self.deregistered_targets[found] = taken

    def deregister_terminated_instances(self, instance_ids):
        for found in [k for k in self.targets if k[0] in instance_ids]:
            self.terminated_targets[found] = self.targets.pop(found)

    def health_for(self, target, ec2_backend):
        if "Port" in target:
            registered = self.targets.get(key(self, target))
        else:
            registered = next((t for k, t in self.targets.items() if k[0] == target["Id"]), None)
        if registered is None:
            return original_health(self, target, ec2_backend)  # moto's answers for a target it does not hold
        if registered["Id"].startswith("i-"):
            instance = ec2_backend.get_instance_by_id(registered["Id"])
            if instance and instance.state == "stopped":
                return FakeHealthStatus(registered["Id"], registered["Port"], self.health_check_port, "unused",
                                        "Target.InvalidState", "Target is in the stopped state")
        return FakeHealthStatus(registered["Id"], registered["Port"], self.health_check_port, "healthy")

    FakeTargetGroup.register = register
    FakeTargetGroup.deregister = deregister
    FakeTargetGroup.deregister_terminated_instances = deregister_terminated_instances
    FakeTargetGroup.health_for = health_for


def target_type(group_arn: str) -> str | None:
    """The target type (ip, instance, lambda, alb) of the target group named by ARN, or None when none is."""
    from moto.elbv2.models import elbv2_backends

    try:
        account, region = group_arn.split(":")[4], group_arn.split(":")[3]
        return elbv2_backends[account][region].target_groups[group_arn].target_type
    except (IndexError, KeyError, AttributeError):
        return None
