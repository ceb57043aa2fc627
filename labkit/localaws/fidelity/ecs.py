"""ECS: Fargate task sizes, awsvpc networking, execution roles and awsvpc port mappings are refused
as AWS refuses them; services keep their circuit breaker, grace period and placement; a load balancer
must name a container and port the task definition has, in a target group whose target type its
network mode registers; RunTask places at most 10 tasks a call.

moto registers any task definition (256 CPU with 4096 MiB, bridge networking on
Fargate, awslogs without an execution role) and its ``create_service`` drops the
circuit breaker, the health-check grace period and the placement settings. AWS
refuses the first and keeps the second; a lab 05 check can see both, so the
local AWS does what AWS does. The wording of each refusal is AWS's own, except the RunTask count's
(AWS documents the limit, not its words).
"""
from __future__ import annotations

import re

from .elbv2 import target_type

# The one table of Fargate task sizes: task CPU units -> the memory values (MiB) Fargate offers
# for it. The 8 and 16 vCPU sizes need Linux platform version 1.4.0 or later.
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}

# What AWS says, word for word (ClientException unless noted).
NETWORK_MODE = "Fargate only supports network mode \u2018awsvpc\u2019."
TASK_LEVEL = "Fargate requires that '{}' be defined at the task level."
NO_SIZE = ("No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. "
           "See the Amazon ECS documentation for the valid values.")
AWSLOGS_ROLE = "Fargate requires task definition to have execution role ARN to support log driver awslogs."
SECRETS_ROLE = ("When you are specifying container secrets, you must also specify a value for "
                "'executionRoleArn'.")
SAME_PORTS = "When networkMode={mode}, the host ports and container ports in port mappings must match."
# InvalidParameterException:
NO_CONTAINER = "The container {name} does not exist in the task definition."
NO_PORT = "The container {name} did not have a container port {port} defined."
FARGATE_PLACEMENT = "Placement {what} are not supported with FARGATE launch type."
NETWORK_CONFIGURATION = "Network Configuration must be provided when networkMode 'awsvpc' is specified."
TARGET_TYPE = ("The provided target group {group} has target type {kind}, which is incompatible with the {mode} "
               "network mode specified in the task definition.")
RUN_TASK_MAX = 10  # tasks one RunTask call may place; AWS documents the limit, not its words
RUN_TASK_COUNT = "count must be between 1 and 10: one RunTask call places at most 10 tasks."

# AWS fills these in when a service is created without them.
DEFAULT_DEPLOYMENT = {"deploymentCircuitBreaker": {"enable": False, "rollback": False},
                      "maximumPercent": 200, "minimumHealthyPercent": 100}


def units(value, unit: str) -> int | None:
    """A task size as AWS stores it: "1 vCPU" -> 1024, "2 GB" -> 2048, "512" -> 512; None if unreadable."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(value))
    if not match:
        return None
    number, suffix = float(match.group(1)), match.group(2).lower()
    if suffix in ("vcpu", "gb"):
        number *= 1024
    elif suffix:
        return None
    return int(number) if number == int(number) else None


def fargate_size_valid(cpu, memory) -> bool:
    """Whether Fargate offers this task cpu/memory pair (values in units or "1 vCPU"/"2 GB" form)."""
    c, m = units(cpu, "cpu"), units(memory, "memory")
    return c in FARGATE_SIZES and m in FARGATE_SIZES[c]


def task_definition_refusal(*, requires_compatibilities, network_mode, cpu, memory, execution_role_arn,
                            container_definitions) -> str | None:
    """AWS's ClientException message for a task definition it would refuse, or None."""
    fargate = "FARGATE" in (requires_compatibilities or [])
    containers = container_definitions or []
    if fargate:
        if (network_mode or "bridge") != "awsvpc":
            return NETWORK_MODE
        for name, value in (("cpu", cpu), ("memory", memory)):
            if value in (None, ""):
                return TASK_LEVEL.format(name)
        if not fargate_size_valid(cpu, memory):
            return NO_SIZE.format(cpu=cpu, memory=memory)
        if not execution_role_arn and any((c.get("logConfiguration") or {}).get("logDriver") == "awslogs"
                                          for c in containers):
            return AWSLOGS_ROLE
    if not execution_role_arn and any(c.get("secrets") for c in containers):
        return SECRETS_ROLE
    if network_mode in ("awsvpc", "host"):  # the task owns its ports: nothing to map them to
        for c in containers:
            for mapping in c.get("portMappings") or []:
                host = mapping.get("hostPort")
                if host not in (None, 0) and host != mapping.get("containerPort"):
                    return SAME_PORTS.format(mode=network_mode)
    return None


def load_balancer_refusal(load_balancers, container_definitions) -> str | None:
    """AWS's InvalidParameterException message for a loadBalancers entry the task definition cannot serve."""
    containers = {c.get("name"): c for c in container_definitions or []}
    for lb in load_balancers or []:
        name, port = lb.get("containerName"), lb.get("containerPort")
        if name not in containers:
            return NO_CONTAINER.format(name=name)
        ports = {m.get("containerPort") for m in containers[name].get("portMappings") or []}
        if port not in ports:
            return NO_PORT.format(name=name, port=port)
    return None


def effective_launch_type(given, capacity_provider_strategy) -> str | None:
    """The launch type a request runs on: its launchType, or FARGATE when its capacity providers are Fargate's."""
    providers = {p.get("capacityProvider") for p in capacity_provider_strategy or []}
    if not given and providers and providers <= {"FARGATE", "FARGATE_SPOT"}:
        return "FARGATE"
    return given


def placement_refusal(launch_type, strategy, constraints) -> str | None:
    if launch_type != "FARGATE":
        return None
    if strategy:
        return FARGATE_PLACEMENT.format(what="strategies")
    if constraints:
        return FARGATE_PLACEMENT.format(what="constraints")
    return None


def apply() -> None:
    _register_task_definition()
    _create_service()
    _update_service()
    _run_task()
    _network_without_security_groups()


def _register_task_definition() -> None:
    from moto.ecs.exceptions import EcsClientException
    from moto.ecs.models import EC2ContainerServiceBackend

    original = EC2ContainerServiceBackend.register_task_definition

    def register_task_definition(self, family, container_definitions, *args, **kwargs):
        refusal = task_definition_refusal(
            requires_compatibilities=kwargs.get("requires_compatibilities"), network_mode=kwargs.get("network_mode"),
            cpu=kwargs.get("cpu"), memory=kwargs.get("memory"), execution_role_arn=kwargs.get("execution_role_arn"),
            container_definitions=container_definitions)
        if refusal:
            raise EcsClientException(refusal)
        # AWS stores sizes as unit strings ("1 vCPU" -> "1024") and fills an awsvpc hostPort from containerPort.
        for key, unit in (("cpu", "cpu"), ("memory", "memory")):
            if kwargs.get(key) not in (None, "") and units(kwargs[key], unit) is not None:
                kwargs[key] = str(units(kwargs[key], unit))
        if kwargs.get("network_mode") == "awsvpc":
            for c in container_definitions or []:
                for mapping in c.get("portMappings") or []:
                    if mapping.get("containerPort") is not None and not mapping.get("hostPort"):
                        mapping["hostPort"] = mapping["containerPort"]
        return original(self, family, container_definitions, *args, **kwargs)

    EC2ContainerServiceBackend.register_task_definition = register_task_definition


def _task_definition(backend, name):
    if not name:
        return None
    from moto.ecs.exceptions import TaskDefinitionNotFoundException

    try:
        return backend.describe_task_definition(name)
    except TaskDefinitionNotFoundException:
        return None  # moto's own handler says so


def _network_required(task_definition, network_configuration) -> bool:
    return (task_definition is not None and task_definition.network_mode == "awsvpc"
            and not (network_configuration or {}).get("awsvpcConfiguration"))


def target_type_refusal(load_balancers, network_mode: str, type_of) -> str | None:
    """AWS's refusal of a target group whose target type (``type_of(arn)``) the task's network mode cannot
    register: awsvpc tasks register by IP, bridge and host tasks as their instance."""
    for lb in load_balancers or []:
        group = lb.get("targetGroupArn")
        kind = type_of(group) if group else None
        if kind == "ip" and network_mode in ("bridge", "host") or kind == "instance" and network_mode == "awsvpc":
            return TARGET_TYPE.format(group=group, kind=kind, mode=network_mode)
    return None


def _create_service() -> None:
    from moto.ecs.exceptions import InvalidParameterException
    from moto.ecs.responses import EC2ContainerServiceResponse

    original = EC2ContainerServiceResponse.create_service

    def create_service(self):
        task_definition = _task_definition(self.ecs_backend, self._get_param("taskDefinition"))
        strategy, constraints = self._get_param("placementStrategy"), self._get_param("placementConstraints")
        kind = effective_launch_type(self._get_param("launchType"), self._get_param("capacityProviderStrategy"))
        refusal = placement_refusal(kind, strategy, constraints)
        if refusal is None and task_definition is not None:
            refusal = load_balancer_refusal(self._get_param("loadBalancers"), task_definition.container_definitions)
        if refusal is None and task_definition is not None:
            refusal = target_type_refusal(self._get_param("loadBalancers"), task_definition.network_mode or "bridge",
                                          target_type)
        if refusal is None and _network_required(task_definition, self._get_param("networkConfiguration")):
            refusal = NETWORK_CONFIGURATION
        if refusal:
            raise InvalidParameterException(refusal)
        result = original(self)
        service = self.ecs_backend._get_service(self._get_param("cluster", "default"), self._get_param("serviceName"))
        given = self._get_param("deploymentConfiguration") or {}
        service.deployment_configuration = {**DEFAULT_DEPLOYMENT, **given}
        if self._get_param("healthCheckGracePeriodSeconds") is not None:
            service.health_check_grace_period_seconds = self._get_int_param("healthCheckGracePeriodSeconds")
        service.placement_strategy = strategy or []
        service.placement_constraints = constraints or []
        return result

    EC2ContainerServiceResponse.create_service = create_service


def _update_service() -> None:
    """update_service stores placement settings; on a Fargate service AWS refuses them as create_service does."""
    from moto.ecs.exceptions import InvalidParameterException
    from moto.ecs.responses import EC2ContainerServiceResponse

    original = EC2ContainerServiceResponse.update_service

    def update_service(self):
        service = self.ecs_backend._get_service(self._get_param("cluster", "default"),
                                                (self._get_param("service") or "").split("/")[-1])
        refusal = placement_refusal(service.launch_type, self._get_param("placementStrategy"),
                                    self._get_param("placementConstraints"))
        if refusal:
            raise InvalidParameterException(refusal)
        return original(self)

    EC2ContainerServiceResponse.update_service = update_service


def _run_task() -> None:
    from moto.ecs.exceptions import InvalidParameterException
    from moto.ecs.responses import EC2ContainerServiceResponse

    original = EC2ContainerServiceResponse.run_task

    def run_task(self):
        task_definition = _task_definition(self.ecs_backend, self._get_param("taskDefinition"))
        kind = effective_launch_type(self._get_param("launchType"), self._get_param("capacityProviderStrategy"))
        refusal = placement_refusal(kind, self._get_param("placementStrategy"), self._get_param("placementConstraints"))
        count = self._get_param("count", 1)
        if refusal is None and (not isinstance(count, int) or not 1 <= count <= RUN_TASK_MAX):
            refusal = RUN_TASK_COUNT
        if refusal is None and _network_required(task_definition, self._get_param("networkConfiguration")):
            refusal = NETWORK_CONFIGURATION
        if refusal:
            raise InvalidParameterException(refusal)
        return original(self)

    EC2ContainerServiceResponse.run_task = run_task


def _network_without_security_groups() -> None:
    """securityGroups is optional (AWS uses the VPC's default group); moto's check raised KeyError, a 500."""
    from moto.ecs.models import Service

    original = Service._validate_network

    def validate_network(self, nc):
        config = nc.get("awsvpcConfiguration") or {}
        if "securityGroups" in config:
            return original(self, nc)
        original(self, {**nc, "awsvpcConfiguration": {**config, "securityGroups": []}})
        return nc

    Service._validate_network = validate_network
