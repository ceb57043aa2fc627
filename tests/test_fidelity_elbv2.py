"""Load balancers on the local AWS: ARNs, health checks, listeners and rules as AWS has them."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from labkit.localaws.fidelity.elbv2 import HEALTH_CHECK_RANGES


def refused(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


@pytest.fixture
def vpc(aws):
    ec2 = aws.client("ec2")
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
    return ec2.describe_vpcs()["Vpcs"][0]["VpcId"], subnets


def test_an_nlb_arn_says_net_and_an_alb_arn_says_app(aws, vpc):
    elbv2 = aws.client("elbv2")
    nlb = elbv2.create_load_balancer(Name="ada-provider", Type="network", Scheme="internal",
                                     Subnets=vpc[1])["LoadBalancers"][0]
    alb = elbv2.create_load_balancer(Name="ada-orders", Subnets=vpc[1])["LoadBalancers"][0]
    assert ":loadbalancer/net/ada-provider/" in nlb["LoadBalancerArn"] and nlb["Type"] == "network"
    assert ":loadbalancer/app/ada-orders/" in alb["LoadBalancerArn"]
    group = elbv2.create_target_group(Name="ada-provider", Protocol="TCP", Port=8080, VpcId=vpc[0],
                                      TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    listener = elbv2.create_listener(LoadBalancerArn=nlb["LoadBalancerArn"], Protocol="TCP", Port=80,
                                     DefaultActions=[{"Type": "forward", "TargetGroupArn": group}])
    assert ":listener/net/ada-provider/" in listener["Listeners"][0]["ListenerArn"]
    described = elbv2.describe_load_balancers(LoadBalancerArns=[nlb["LoadBalancerArn"]])["LoadBalancers"][0]
    assert described["Type"] == "network"


@pytest.mark.parametrize("setting, value, bound", [
    ("HealthCheckIntervalSeconds", 301, "less than or equal to 300"),
    ("HealthCheckTimeoutSeconds", 121, "less than or equal to 120"),
    ("HealthyThresholdCount", 11, "less than or equal to 10"),
    ("UnhealthyThresholdCount", 11, "less than or equal to 10"),
])
def test_health_check_settings_outside_aws_ranges_are_refused(aws, vpc, setting, value, bound):
    elbv2 = aws.client("elbv2")
    extra = {"HealthCheckIntervalSeconds": 300} if setting == "HealthCheckTimeoutSeconds" else {}
    code, message = refused(lambda: elbv2.create_target_group(Name="ada-orders", Protocol="HTTP", Port=8080,
                                                              VpcId=vpc[0], TargetType="ip", **{setting: value},
                                                              **extra))
    name = setting[0].lower() + setting[1:]
    assert code == "ValidationError" and f"Value '{value}' at '{name}'" in message and bound in message
    group = elbv2.create_target_group(Name="ada-orders", Protocol="HTTP", Port=8080, VpcId=vpc[0],
                                      TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    assert refused(lambda: elbv2.modify_target_group(TargetGroupArn=group, **{setting: value}, **extra))[0] == \
        "ValidationError"
    assert HEALTH_CHECK_RANGES[name][1] == value - 1


def test_a_second_listener_on_a_port_is_refused(aws, vpc):
    elbv2 = aws.client("elbv2")
    alb = elbv2.create_load_balancer(Name="ada-orders", Subnets=vpc[1])["LoadBalancers"][0]["LoadBalancerArn"]
    group = elbv2.create_target_group(Name="ada-orders", Protocol="HTTP", Port=8080, VpcId=vpc[0],
                                      TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    listen = dict(LoadBalancerArn=alb, Protocol="HTTP", DefaultActions=[{"Type": "forward", "TargetGroupArn": group}])
    elbv2.create_listener(Port=80, **listen)
    assert refused(lambda: elbv2.create_listener(Port=80, **listen))[0] == "DuplicateListener"
    elbv2.create_listener(Port=8080, **listen)
    assert len(elbv2.describe_listeners(LoadBalancerArn=alb)["Listeners"]) == 2


def test_rule_priorities_stop_at_50000(aws, vpc):
    elbv2 = aws.client("elbv2")
    alb = elbv2.create_load_balancer(Name="ada-orders", Subnets=vpc[1])["LoadBalancers"][0]["LoadBalancerArn"]
    group = elbv2.create_target_group(Name="ada-orders", Protocol="HTTP", Port=8080, VpcId=vpc[0],
                                      TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    forward = [{"Type": "forward", "TargetGroupArn": group}]
    listener = elbv2.create_listener(LoadBalancerArn=alb, Protocol="HTTP", Port=80,
                                     DefaultActions=forward)["Listeners"][0]["ListenerArn"]
    paths = [{"Field": "path-pattern", "Values": ["/orders*"]}]
    code, message = refused(lambda: elbv2.create_rule(ListenerArn=listener, Priority=50001, Conditions=paths,
                                                      Actions=forward))
    assert code == "ValidationError" and "less than or equal to 50000" in message
    made = elbv2.create_rule(ListenerArn=listener, Priority=50000, Conditions=paths, Actions=forward)
    rule = made["Rules"][0]["RuleArn"]
    assert refused(lambda: elbv2.set_rule_priorities(RulePriorities=[{"RuleArn": rule, "Priority": 50001}]))[0] == \
        "ValidationError"
    assert refused(lambda: elbv2.create_rule(ListenerArn=listener, Priority=50000, Conditions=paths,
                                             Actions=forward))[0] == "PriorityInUse"


def test_listeners_forward_only_to_target_groups_of_a_protocol_they_carry(aws, vpc):
    elbv2 = aws.client("elbv2")
    nlb = elbv2.create_load_balancer(Name="ada-provider", Type="network", Subnets=vpc[1])["LoadBalancers"][0]
    alb = elbv2.create_load_balancer(Name="ada-orders", Subnets=vpc[1])["LoadBalancers"][0]
    tcp = elbv2.create_target_group(Name="ada-tcp", Protocol="TCP", Port=80, VpcId=vpc[0],
                                    TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    http = elbv2.create_target_group(Name="ada-http", Protocol="HTTP", Port=80, VpcId=vpc[0],
                                     TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]

    def listener(lb, protocol, group, port=80):
        return elbv2.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol=protocol, Port=port,
                                     DefaultActions=[{"Type": "forward", "TargetGroupArn": group}])

    assert refused(lambda: listener(nlb, "TCP", http)) == (
        "IncompatibleProtocols", f"The listener and its associated target group '{http}' have incompatible protocols")
    assert refused(lambda: listener(alb, "HTTP", tcp))[0] == "IncompatibleProtocols"
    assert refused(lambda: listener(nlb, "HTTP", tcp)) == (  # moto's own check, kept
        "ValidationError", "Listener protocol 'HTTP' must be one of 'UDP, TCP, TLS, TCP_UDP'")
    on_nlb = listener(nlb, "TCP", tcp)["Listeners"][0]["ListenerArn"]
    on_alb = listener(alb, "HTTP", http)["Listeners"][0]["ListenerArn"]
    assert refused(lambda: elbv2.modify_listener(ListenerArn=on_nlb, DefaultActions=[
        {"Type": "forward", "TargetGroupArn": http}]))[0] == "IncompatibleProtocols"
    assert refused(lambda: elbv2.create_rule(ListenerArn=on_alb, Priority=1, Conditions=[
        {"Field": "path-pattern", "Values": ["/*"]}], Actions=[{"Type": "forward", "TargetGroupArn": tcp}]))[0] == \
        "IncompatibleProtocols"
    weighted = {"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": http, "Weight": 1},
                                                                       {"TargetGroupArn": tcp, "Weight": 1}]}}
    assert refused(lambda: elbv2.modify_listener(ListenerArn=on_alb, DefaultActions=[weighted]))[0] == \
        "IncompatibleProtocols"


def test_tcp_health_checks_take_no_path_or_matcher(aws, vpc):
    elbv2 = aws.client("elbv2")

    def group(**settings):
        return elbv2.create_target_group(Name="ada-tcp", Protocol="TCP", Port=80, VpcId=vpc[0], TargetType="ip",
                                         **settings)

    assert refused(lambda: group(HealthCheckPath="/health")) == (
        "InvalidConfigurationRequest", "Health check paths are not supported for TCP health checks")
    assert refused(lambda: group(Matcher={"HttpCode": "200"})) == (
        "InvalidConfigurationRequest", "Health check matchers are not supported for TCP health checks")
    assert refused(lambda: elbv2.create_target_group(Name="ada-http", Protocol="HTTP", Port=80, VpcId=vpc[0],
                                                     HealthCheckProtocol="TCP"))[0] == "InvalidConfigurationRequest"
    made = group(HealthCheckProtocol="HTTP", HealthCheckPath="/health")["TargetGroups"][0]
    assert made["Matcher"] == {"HttpCode": "200-399"}  # an NLB's HTTP checks, unlike ALB's 200
