"""Application Auto Scaling: capacities in order, an ECS service's desired count kept within them, a
policy only for a registered target, ALBRequestCountPerTarget only with the label of a group the service
is attached to, and a deregistered target's policies gone with it.

moto registers a MinCapacity above MaxCapacity, leaves an ECS service's desiredCount outside the range it
registers, stores a policy for a target nobody registered, accepts any ResourceLabel (or none) for
ALBRequestCountPerTarget, and keeps a deregistered target's policies. AWS refuses the first, third and
fourth, clamps the second and deletes the last; lab 05's scaling step can see each one. The rules are
AWS's documented ones; where AWS documents no wording for a refusal, the message says the rule plainly.
The capacity order is enforced for every namespace, as AWS does, and so is AWS's floor: a MinCapacity of 0
only where AWS allows it (ECS services, Lambda provisioned concurrency, Spot Fleet, Aurora, EMR, custom
resources), at least 1 everywhere else (DynamoDB capacity, among others).
"""
from __future__ import annotations

import re

ALB_METRIC = "ALBRequestCountPerTarget"
ECS_DIMENSION = "ecs:service:DesiredCount"
# app/<lb name>/<lb id>/targetgroup/<tg name>/<tg id>: the ends of the two ARNs, as AWS documents it.
LABEL = re.compile(r"app/[^/]+/[^/]+/targetgroup/[^/]+/[^/]+")

# AWS's words (ValidationException unless noted).
MIN_ABOVE_MAX = "Minimum capacity cannot be greater than maximum capacity"
MIN_BELOW_ONE = "Minimum capacity for {namespace} resources must be at least 1"  # AWS documents the rule, not words
ZERO_ALLOWED = ("ecs", "lambda", "ec2", "rds", "elasticmapreduce", "custom-resource")
NO_TARGET = ("No scalable target registered for service namespace: {namespace}, resource ID: {resource}, "
             "scalable dimension: {dimension}")  # ObjectNotFoundException
NEEDS_LABEL = "ResourceLabel must be specified for predefined metric type ALBRequestCountPerTarget"
BAD_LABEL = ("Invalid resource label {label}: expected app/<load balancer name>/<id>/targetgroup/"
             "<target group name>/<id>")
NOT_ATTACHED = "Target group {group} is not attached to the scalable target {resource}"
ONLY_ECS = "The ALBRequestCountPerTarget metric type applies only to Spot Fleets and ECS services"


def label_of(lb_arn: str, tg_arn: str) -> str:
    """The ResourceLabel AWS builds from a load balancer's and a target group's ARNs."""
    return f"{lb_arn.split(':loadbalancer/', 1)[-1]}/{tg_arn.split(':', 5)[-1]}"


def apply() -> None:
    from moto.applicationautoscaling.exceptions import AWSValidationException
    from moto.applicationautoscaling.models import ApplicationAutoscalingBackend
    from moto.core.exceptions import JsonRESTError

    register, put, deregister = (ApplicationAutoscalingBackend.register_scalable_target,
                                 ApplicationAutoscalingBackend.put_scaling_policy,
                                 ApplicationAutoscalingBackend.deregister_scalable_target)

    def register_scalable_target(self, namespace, r_id, dimension, min_capacity, max_capacity, *args, **kwargs):
        existing = self.targets.get(dimension, {}).get(r_id)
        low = min_capacity if min_capacity is not None else getattr(existing, "min_capacity", None)
        high = max_capacity if max_capacity is not None else getattr(existing, "max_capacity", None)
        if low is not None and high is not None and int(low) > int(high):
            raise AWSValidationException(MIN_ABOVE_MAX)
        if low is not None and int(low) < 1 and namespace not in ZERO_ALLOWED:
            raise AWSValidationException(MIN_BELOW_ONE.format(namespace=namespace))
        target = register(self, namespace, r_id, dimension, min_capacity, max_capacity, *args, **kwargs)
        if dimension == ECS_DIMENSION:
            _clamp_desired_count(self, r_id, target.min_capacity, target.max_capacity)
        return target

    def put_scaling_policy(self, policy_name, service_namespace, resource_id, scalable_dimension, policy_body,
                           policy_type, *args, **kwargs):
        if resource_id not in self.targets.get(scalable_dimension, {}):
            raise JsonRESTError("ObjectNotFoundException", NO_TARGET.format(
                namespace=service_namespace, resource=resource_id, dimension=scalable_dimension))
        spec = (policy_body or {}).get("PredefinedMetricSpecification") or {}
        if policy_type == "TargetTrackingScaling" and spec.get("PredefinedMetricType") == ALB_METRIC:
            _check_label(self, service_namespace, resource_id, spec.get("ResourceLabel"))
        return put(self, policy_name, service_namespace, resource_id, scalable_dimension, policy_body, policy_type,
                   *args, **kwargs)

    def deregister_scalable_target(self, namespace, r_id, dimension):
        deregister(self, namespace, r_id, dimension)
        for key, policy in list(self.policies.items()):  # AWS deletes the target's policies with it
            if (policy.service_namespace, policy.resource_id, policy.scalable_dimension) == (namespace, r_id, dimension):
                policy.delete_alarms(self.account_id, self.region_name)
                del self.policies[key]

    ApplicationAutoscalingBackend.register_scalable_target = register_scalable_target
    ApplicationAutoscalingBackend.put_scaling_policy = put_scaling_policy
    ApplicationAutoscalingBackend.deregister_scalable_target = deregister_scalable_target


def ecs_service(backend, resource_id: str):
    """The ACTIVE ECS service a scalable target's ResourceId (service/<cluster>/<service>) names, or None."""
    parts = resource_id.split("/")
    if len(parts) != 3 or parts[0] != "service":
        return None
    for service in backend.ecs_backend.services.values():
        if service.cluster_name == parts[1] and service.name == parts[2] and service.status == "ACTIVE":
            return service
    return None


def _clamp_desired_count(backend, resource_id: str, low, high) -> None:
    """AWS moves a service's desired count into a newly registered range at once."""
    service = ecs_service(backend, resource_id)
    if service is None:
        return
    count = int(service.desired_count or 0)
    if low is not None and count < int(low):
        service.desired_count = int(low)
    elif high is not None and count > int(high):
        service.desired_count = int(high)


def _check_label(backend, namespace: str, resource_id: str, label: str | None) -> None:
    from moto.applicationautoscaling.exceptions import AWSValidationException
    from moto.elbv2.models import elbv2_backends

    if namespace != "ecs":
        if namespace != "ec2":
            raise AWSValidationException(ONLY_ECS)
        return
    if not label:
        raise AWSValidationException(NEEDS_LABEL)
    if not LABEL.fullmatch(label):
        raise AWSValidationException(BAD_LABEL.format(label=label))
    elbv2 = elbv2_backends[backend.account_id][backend.region_name]
    lb_part, tg_part = label.split("/targetgroup/", 1)
    group = next((g for g in elbv2.target_groups.values() if g.arn.endswith(":targetgroup/" + tg_part)), None)
    balancer = next((b for b in elbv2.load_balancers.values() if b.arn.endswith(":loadbalancer/" + lb_part)), None)
    service = ecs_service(backend, resource_id)
    attached = group is not None and service is not None and any(
        b.get("targetGroupArn") == group.arn for b in service.load_balancers or [])
    if balancer is None or not attached or balancer.arn not in (group.load_balancer_arns or []):
        raise AWSValidationException(NOT_ATTACHED.format(group=f"targetgroup/{tg_part}", resource=resource_id))
