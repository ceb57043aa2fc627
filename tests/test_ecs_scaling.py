"""Service auto scaling in the local AWS: target tracking on ALBRequestCountPerTarget, from real requests.

The server runs with ``LABKIT_CLOCK_SPEED`` 50, so a one-minute metric period lasts 1.2 s. Load is sent
through the ALB's real listener in bursts of a known size right after the scaler closes a period (read from
its status), so each datapoint is that burst divided by the healthy targets: the outcomes depend on counts,
never on how fast this machine is. Waits poll with generous bounds; nothing asserts a time.
"""
from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest

from labkit.target import Target
from tests.ecs_support import container, network, push_image, register, wait_for
from tests.localaws import local_aws_at_speed

SPEED = "50"
CLUSTER = "lab"
RESOURCE = f"service/{CLUSTER}/web"
DIMENSION = "ecs:service:DesiredCount"


_scaling_server, server = local_aws_at_speed(SPEED, "server")


class Shop:
    """An ALB on port 80 forwarding to an ip target group, and the service web registered in it."""

    def __init__(self, server, count: int = 2, interval: int = 5):
        import labkit.balancers

        t = Target("local", prefix="ecs", region="us-east-1")
        self.server = server
        self.ecs, ecr, ec2, self.elb = (t.client(n) for n in ("ecs", "ecr", "ec2", "elbv2"))
        self.scaling = t.client("application-autoscaling")
        self.ecs.create_cluster(clusterName=CLUSTER)
        net = network(ec2)
        vpc = ec2.describe_subnets(SubnetIds=net["awsvpcConfiguration"]["subnets"])["Subnets"][0]["VpcId"]
        other = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.2.0/24", AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
        self.lb = self.elb.create_load_balancer(Name="web", Subnets=[net["awsvpcConfiguration"]["subnets"][0], other],
                                                Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
        self.group = self.elb.create_target_group(
            Name="web", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip", HealthCheckPath="/health",
            HealthCheckIntervalSeconds=interval, HealthyThresholdCount=2 if interval == 5 else 5)["TargetGroups"][0]["TargetGroupArn"]
        self.elb.create_listener(LoadBalancerArn=self.lb, Protocol="HTTP", Port=80,
                                 DefaultActions=[{"Type": "forward", "TargetGroupArn": self.group}])
        image, _ = push_image(ecr, server.home, "web")
        self.ecs.create_service(cluster=CLUSTER, serviceName="web", taskDefinition=register(self.ecs, "web", [container(image)]),
                                desiredCount=count, launchType="FARGATE", networkConfiguration=net,
                                loadBalancers=[{"targetGroupArn": self.group, "containerName": "web", "containerPort": 8080}])
        self.url = labkit.balancers.url(t, "web", 80)
        assert self.healthy_at_least(count) >= count

    @property
    def label(self) -> str:
        return f"{self.lb.split(':loadbalancer/')[1]}/{self.group.split(':')[-1]}"

    def healthy(self) -> int:
        found = self.elb.describe_target_health(TargetGroupArn=self.group)["TargetHealthDescriptions"]
        return sum(d["TargetHealth"]["State"] == "healthy" for d in found)

    def healthy_at_least(self, n: int) -> int:
        return wait_for(self.healthy, lambda found: found >= n, timeout=120)

    def desired(self) -> int:
        return self.ecs.describe_services(cluster=CLUSTER, services=["web"])["services"][0]["desiredCount"]

    def scale(self, low: int, high: int, target: float, **config) -> None:
        self.scaling.register_scalable_target(ServiceNamespace="ecs", ResourceId=RESOURCE, ScalableDimension=DIMENSION,
                                              MinCapacity=low, MaxCapacity=high)
        self.scaling.put_scaling_policy(
            PolicyName="requests", ServiceNamespace="ecs", ResourceId=RESOURCE, ScalableDimension=DIMENSION,
            PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={
                "TargetValue": target, "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "ALBRequestCountPerTarget", "ResourceLabel": self.label}, **config})

    def activities(self) -> list[dict]:
        return self.scaling.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=RESOURCE)["ScalingActivities"]

    def datapoints(self) -> int:
        from labkit.localaws import control

        policies = control._answers(self.server.endpoint)["extensions"]["autoscaling"]["policies"]
        return max((p["datapoints"] for p in policies.values()), default=0)

    def periods(self, n: int, burst: int = 0, until=None) -> int:
        """Let ``n`` metric periods close (fewer when ``until()`` comes true), sending ``burst`` requests through
        the listener at the start of each; returns how many closed."""
        closed, seen = 0, self.datapoints()
        deadline = time.monotonic() + 30 + n * 10
        while closed < n and time.monotonic() < deadline and not (until and until()):
            for _ in range(burst):
                assert self.get() == 200
            while self.datapoints() == seen and time.monotonic() < deadline:
                time.sleep(0.05)
            closed, seen = closed + (self.datapoints() - seen), self.datapoints()
        return closed

    def get(self) -> int:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=10) as answer:
                return answer.status
        except urllib.error.HTTPError as refused:
            return refused.code


def test_requests_through_the_listener_scale_the_service_out_to_its_maximum(server):
    shop = Shop(server)
    shop.scale(2, 4, target=1)
    assert shop.periods(4) == 4  # no request, no datapoint: an alarm without data does nothing
    assert shop.activities() == [] and shop.desired() == 2
    shop.periods(8, burst=8, until=lambda: shop.activities())  # 4 per target per minute, the target is 1
    found = shop.activities()
    assert len(found) == 1, found
    activity = found[0]
    assert (activity["StatusCode"], activity["Description"]) == ("Successful", "Setting desired count to 4.")
    assert activity["Cause"].startswith(f"monitor alarm TargetTracking-{RESOURCE}-AlarmHigh-")
    assert activity["Cause"].endswith("in state ALARM triggered policy requests")
    assert (activity["ResourceId"], activity["ScalableDimension"]) == (RESOURCE, DIMENSION)
    assert shop.desired() == 4  # ceil(2 * 4 / 1) = 8, within MaxCapacity 4
    assert shop.healthy_at_least(4) == 4  # the scheduler started the tasks and registered them
    assert shop.periods(4, burst=8) == 4
    assert len(shop.activities()) == 1 and shop.desired() == 4  # at the maximum: nothing more to do
    from labkit import localaws

    localaws.down()  # the scale-out was journaled: a restart keeps the desired count and its history
    localaws.up()
    assert shop.desired() == 4
    assert [a["ActivityId"] for a in shop.activities()] == [activity["ActivityId"]]


def test_a_scale_out_cooldown_counts_the_added_capacity_as_there(server):
    shop = Shop(server, interval=60)  # a new task is healthy after five 60-second checks: five periods
    shop.scale(2, 10, target=1, ScaleOutCooldown=3000)  # 60 s here: longer than the test
    shop.periods(8, burst=4, until=lambda: shop.activities())  # 2 per target: ceil(2 * 2 / 1) = 4
    first = shop.activities()
    assert len(first) == 1 and first[0]["Description"] == "Setting desired count to 4."
    # Until the new tasks are healthy the metric stays 2 per target: without the cooldown the next period
    # would ask ceil(4 * 2 / 1) = 8; with it, the 2 tasks added count as there and nothing larger is asked.
    assert shop.periods(6, burst=4) == 6
    assert len(shop.activities()) == 1 and shop.desired() == 4


def test_a_suspended_target_does_not_scale_out_until_resumed(server):
    shop = Shop(server)
    shop.scale(2, 4, target=1)
    shop.scaling.register_scalable_target(ServiceNamespace="ecs", ResourceId=RESOURCE, ScalableDimension=DIMENSION,
                                          SuspendedState={"DynamicScalingOutSuspended": True})
    assert shop.periods(6, burst=8) == 6
    assert shop.activities() == [] and shop.desired() == 2
    shop.scaling.register_scalable_target(ServiceNamespace="ecs", ResourceId=RESOURCE, ScalableDimension=DIMENSION,
                                          SuspendedState={"DynamicScalingOutSuspended": False})
    shop.periods(4, burst=8, until=lambda: shop.activities())  # the alarm is still in ALARM: it acts at once
    assert [a["Description"] for a in shop.activities()] == ["Setting desired count to 4."]


def test_low_traffic_for_fifteen_periods_scales_in_to_the_minimum(server):
    shop = Shop(server, count=4)
    shop.scale(2, 4, target=10)
    assert shop.periods(14, burst=4) == 14  # 1 per target, below 90% of 10: but 14 datapoints are not 15
    assert shop.activities() == [] and shop.desired() == 4
    shop.periods(6, burst=4, until=lambda: shop.activities())
    found = shop.activities()
    assert [a["Description"] for a in found] == ["Setting desired count to 2."]  # ceil(4 * 1 / 10) = 1, min 2
    assert "-AlarmLow-" in found[0]["Cause"]
    assert wait_for(shop.healthy, lambda n: n == 2, timeout=120) == 2


# -- AWS's rules moto does not keep (in-process moto with the local AWS's fidelity) ----------------------

def _service_behind(aws):
    ec2, elb, ecs = aws.client("ec2"), aws.client("elbv2"), aws.client("ecs")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
               for i, z in ((1, "a"), (2, "b"))]
    lb = elb.create_load_balancer(Name="web", Subnets=subnets, Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
    groups = [elb.create_target_group(Name=name, Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip")[
        "TargetGroups"][0]["TargetGroupArn"] for name in ("web", "other")]
    for group, port in zip(groups, (80, 81)):
        elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=port,
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": group}])
    ecs.create_cluster(clusterName=CLUSTER)
    definition = ecs.register_task_definition(
        family="web", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{"name": "web", "image": "web", "portMappings": [{"containerPort": 8080}]}])
    ecs.create_service(cluster=CLUSTER, serviceName="web", desiredCount=1, launchType="FARGATE",
                       taskDefinition=definition["taskDefinition"]["taskDefinitionArn"],
                       networkConfiguration={"awsvpcConfiguration": {"subnets": subnets}},
                       loadBalancers=[{"targetGroupArn": groups[0], "containerName": "web", "containerPort": 8080}])
    return lb, groups


def _label(lb: str, group: str) -> str:
    return f"{lb.split(':loadbalancer/')[1]}/{group.split(':')[-1]}"


def _policy(scaling, label=None):
    spec = {"PredefinedMetricType": "ALBRequestCountPerTarget", **({"ResourceLabel": label} if label else {})}
    return scaling.put_scaling_policy(
        PolicyName="requests", ServiceNamespace="ecs", ResourceId=RESOURCE, ScalableDimension=DIMENSION,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={"TargetValue": 50, "PredefinedMetricSpecification": spec})


def test_capacities_are_ordered_and_registering_clamps_the_desired_count(aws):
    _service_behind(aws)
    scaling, ecs = aws.client("application-autoscaling"), aws.client("ecs")
    with pytest.raises(scaling.exceptions.ValidationException, match="Minimum capacity cannot be greater"):
        scaling.register_scalable_target(ServiceNamespace="ecs", ResourceId=RESOURCE, ScalableDimension=DIMENSION,
                                         MinCapacity=4, MaxCapacity=2)
    scaling.register_scalable_target(ServiceNamespace="ecs", ResourceId=RESOURCE, ScalableDimension=DIMENSION,
                                     MinCapacity=2, MaxCapacity=4)
    assert ecs.describe_services(cluster=CLUSTER, services=["web"])["services"][0]["desiredCount"] == 2  # was 1
    with pytest.raises(scaling.exceptions.ValidationException, match="Minimum capacity cannot be greater"):
        scaling.register_scalable_target(ServiceNamespace="ecs", ResourceId=RESOURCE, ScalableDimension=DIMENSION,
                                         MinCapacity=5)  # above the registered maximum 4
    with pytest.raises(scaling.exceptions.ValidationException, match="Minimum capacity cannot be greater"):
        scaling.register_scalable_target(ServiceNamespace="dynamodb", ResourceId="table/orders",
                                         ScalableDimension="dynamodb:table:ReadCapacityUnits", MinCapacity=100,
                                         MaxCapacity=5)  # every namespace, as on AWS
    with pytest.raises(scaling.exceptions.ValidationException, match="must be at least 1"):
        scaling.register_scalable_target(ServiceNamespace="dynamodb", ResourceId="table/orders",
                                         ScalableDimension="dynamodb:table:ReadCapacityUnits", MinCapacity=0,
                                         MaxCapacity=5)  # DynamoDB's capacity is at least one unit
    scaling.register_scalable_target(ServiceNamespace="ecs", ResourceId=RESOURCE, ScalableDimension=DIMENSION,
                                     MinCapacity=0, MaxCapacity=4)  # a service may scale to none


def test_a_request_count_policy_needs_a_target_and_the_label_of_an_attached_group(aws):
    lb, (web, other) = _service_behind(aws)
    scaling = aws.client("application-autoscaling")
    with pytest.raises(scaling.exceptions.ObjectNotFoundException, match="No scalable target registered"):
        _policy(scaling, _label(lb, web))
    scaling.register_scalable_target(ServiceNamespace="ecs", ResourceId=RESOURCE, ScalableDimension=DIMENSION,
                                     MinCapacity=2, MaxCapacity=4)
    with pytest.raises(scaling.exceptions.ValidationException, match="ResourceLabel must be specified"):
        _policy(scaling)
    with pytest.raises(scaling.exceptions.ValidationException, match="Invalid resource label"):
        _policy(scaling, "targetgroup/web/123")
    with pytest.raises(scaling.exceptions.ValidationException, match="is not attached"):
        _policy(scaling, _label(lb, other))  # a group of this ALB, but the service is not in it
    assert _policy(scaling, _label(lb, web))["PolicyARN"]
    scaling.deregister_scalable_target(ServiceNamespace="ecs", ResourceId=RESOURCE, ScalableDimension=DIMENSION)
    assert scaling.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"] == []  # gone with it
