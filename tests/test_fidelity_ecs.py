"""ECS on the local AWS refuses what AWS refuses and keeps what AWS keeps (moto does neither)."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from labkit.localaws.fidelity.ecs import FARGATE_SIZES, fargate_size_valid

ROLE = "arn:aws:iam::123456789012:role/ada-orders-exec"
LOGS = {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/ada-orders", "awslogs-region": "us-east-1",
                                            "awslogs-stream-prefix": "orders"}}


def refused(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def container(**extra):
    return {"name": "orders", "image": "orders:1", "portMappings": [{"containerPort": 8080}], **extra}


def fargate(**overrides):
    task = dict(family="ada-orders", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256",
                memory="512", executionRoleArn=ROLE, containerDefinitions=[container(logConfiguration=LOGS)])
    task.update(overrides)
    return {k: v for k, v in task.items() if v is not None}


def test_the_fargate_table_has_every_size_aws_offers():
    assert sorted(FARGATE_SIZES) == [256, 512, 1024, 2048, 4096, 8192, 16384]
    assert FARGATE_SIZES[256] == (512, 1024, 2048)
    assert (FARGATE_SIZES[8192][0], FARGATE_SIZES[8192][-1], len(FARGATE_SIZES[8192])) == (16384, 61440, 12)
    assert (FARGATE_SIZES[16384][0], FARGATE_SIZES[16384][-1], len(FARGATE_SIZES[16384])) == (32768, 122880, 12)
    assert fargate_size_valid("1 vCPU", "2 GB") and fargate_size_valid(4096, 30720)
    assert not fargate_size_valid(256, 4096) and not fargate_size_valid(3, 512) and not fargate_size_valid(8192, 18432)


@pytest.mark.parametrize("overrides, message", [
    ({"cpu": "256", "memory": "4096"},
     "No Fargate configuration exists for given values: 256 CPU, 4096 memory. See the Amazon ECS documentation "
     "for the valid values."),
    ({"cpu": "3"}, "No Fargate configuration exists for given values: 3 CPU, 512 memory. See the Amazon ECS "
                   "documentation for the valid values."),
    ({"networkMode": "bridge"}, "Fargate only supports network mode \u2018awsvpc\u2019."),
    ({"networkMode": None}, "Fargate only supports network mode \u2018awsvpc\u2019."),
    ({"cpu": None}, "Fargate requires that 'cpu' be defined at the task level."),
    ({"memory": None}, "Fargate requires that 'memory' be defined at the task level."),
    ({"executionRoleArn": None},
     "Fargate requires task definition to have execution role ARN to support log driver awslogs."),
    ({"containerDefinitions": [container(secrets=[{"name": "DB", "valueFrom": "arn:aws:secretsmanager:x"}])],
      "executionRoleArn": None},
     "When you are specifying container secrets, you must also specify a value for 'executionRoleArn'."),
    ({"containerDefinitions": [container(portMappings=[{"containerPort": 8080, "hostPort": 80}])]},
     "When networkMode=awsvpc, the host ports and container ports in port mappings must match."),
    ({"requiresCompatibilities": ["EC2"], "networkMode": "host", "containerDefinitions": [
        container(memory=256, portMappings=[{"containerPort": 8080, "hostPort": 80}])]},
     "When networkMode=host, the host ports and container ports in port mappings must match."),
], ids=["size", "cpu-3", "bridge", "no-network-mode", "no-cpu", "no-memory", "awslogs-no-role", "secrets-no-role",
        "host-port", "host-mode-port"])
def test_a_task_definition_aws_refuses_is_refused(aws, overrides, message):
    ecs = aws.client("ecs")
    assert refused(lambda: ecs.register_task_definition(**fargate(**overrides))) == ("ClientException", message)
    assert ecs.list_task_definitions()["taskDefinitionArns"] == []


def test_a_valid_fargate_task_definition_is_stored_as_aws_stores_it(aws):
    ecs = aws.client("ecs")
    task = ecs.register_task_definition(**fargate(cpu="16 vCPU", memory="120 GB"))["taskDefinition"]
    assert (task["cpu"], task["memory"]) == ("16384", "122880")
    assert task["containerDefinitions"][0]["portMappings"][0]["hostPort"] == 8080
    # EC2 launch type: no Fargate sizes, awslogs works with the instance role.
    ec2 = ecs.register_task_definition(family="ada-batch", networkMode="bridge", containerDefinitions=[
        container(memory=300, logConfiguration=LOGS, portMappings=[{"containerPort": 8080, "hostPort": 80}])])
    assert ec2["taskDefinition"]["revision"] == 1


@pytest.fixture
def network(aws):
    ec2 = aws.client("ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    group = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
    return {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}}


@pytest.fixture
def cluster(aws):
    ecs = aws.client("ecs")
    ecs.create_cluster(clusterName="ada-cluster")
    ecs.register_task_definition(**fargate())
    return ecs


def test_create_service_keeps_what_aws_keeps(aws, cluster, network):
    cluster.create_service(
        cluster="ada-cluster", serviceName="ada-orders", taskDefinition="ada-orders", desiredCount=2,
        launchType="FARGATE", networkConfiguration=network, healthCheckGracePeriodSeconds=60,
        deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    service = cluster.describe_services(cluster="ada-cluster", services=["ada-orders"])["services"][0]
    assert service["deploymentConfiguration"] == {"deploymentCircuitBreaker": {"enable": True, "rollback": True},
                                                  "maximumPercent": 200, "minimumHealthyPercent": 100}
    assert service["healthCheckGracePeriodSeconds"] == 60


def test_an_ec2_service_keeps_its_placement(aws):
    ecs = aws.client("ecs")
    ecs.create_cluster(clusterName="ada-cluster")
    ecs.register_task_definition(family="ada-batch", containerDefinitions=[container(memory=256)])
    strategy = [{"type": "spread", "field": "attribute:ecs.availability-zone"}, {"type": "binpack", "field": "memory"}]
    constraints = [{"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t3.*"}]
    ecs.create_service(cluster="ada-cluster", serviceName="ada-batch", taskDefinition="ada-batch", desiredCount=1,
                       launchType="EC2", placementStrategy=strategy, placementConstraints=constraints)
    service = ecs.describe_services(cluster="ada-cluster", services=["ada-batch"])["services"][0]
    assert (service["placementStrategy"], service["placementConstraints"]) == (strategy, constraints)
    assert service["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": False, "rollback": False}


def test_placement_on_fargate_is_refused(aws, cluster, network):
    base = dict(cluster="ada-cluster", taskDefinition="ada-orders", desiredCount=1, launchType="FARGATE",
                networkConfiguration=network)
    assert refused(lambda: cluster.create_service(serviceName="a", placementStrategy=[{"type": "random"}], **base)) == (
        "InvalidParameterException", "Placement strategies are not supported with FARGATE launch type.")
    assert refused(lambda: cluster.create_service(
        serviceName="b", placementConstraints=[{"type": "distinctInstance"}], **base)) == (
        "InvalidParameterException", "Placement constraints are not supported with FARGATE launch type.")
    spot = {k: v for k, v in base.items() if k != "launchType"}
    assert refused(lambda: cluster.create_service(
        serviceName="d", placementStrategy=[{"type": "random"}],
        capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}], **spot))[0] == \
        "InvalidParameterException"
    cluster.create_service(serviceName="c", **base)
    update = refused(lambda: cluster.update_service(cluster="ada-cluster", service="c",
                                                    placementStrategy=[{"type": "random"}]))
    assert update[0] == "InvalidParameterException"
    assert cluster.list_services(cluster="ada-cluster")["serviceArns"][0].endswith("/c")


def test_a_load_balancer_must_name_a_container_and_port_of_the_task(aws, cluster, network):
    ec2, elbv2 = aws.client("ec2"), aws.client("elbv2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    group = elbv2.create_target_group(Name="ada-orders", Protocol="HTTP", Port=8080, VpcId=vpc,
                                      TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    base = dict(cluster="ada-cluster", taskDefinition="ada-orders", desiredCount=1, launchType="FARGATE",
                networkConfiguration=network)

    def lb(name, port):
        return [{"targetGroupArn": group, "containerName": name, "containerPort": port}]

    assert refused(lambda: cluster.create_service(serviceName="a", loadBalancers=lb("web", 8080), **base)) == (
        "InvalidParameterException", "The container web does not exist in the task definition.")
    assert refused(lambda: cluster.create_service(serviceName="a", loadBalancers=lb("orders", 80), **base)) == (
        "InvalidParameterException", "The container orders did not have a container port 80 defined.")
    made = cluster.create_service(serviceName="a", loadBalancers=lb("orders", 8080), **base)["service"]
    assert made["loadBalancers"][0]["containerName"] == "orders"
    by_instance = elbv2.create_target_group(Name="ada-hosts", Protocol="HTTP", Port=8080, VpcId=vpc,
                                            TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
    assert refused(lambda: cluster.create_service(serviceName="b", loadBalancers=[
        {"targetGroupArn": by_instance, "containerName": "orders", "containerPort": 8080}], **base)) == (
        "InvalidParameterException", f"The provided target group {by_instance} has target type instance, which is "
                                     "incompatible with the awsvpc network mode specified in the task definition.")


def test_awsvpc_needs_a_network_configuration_and_security_groups_are_optional(aws, cluster, network):
    base = dict(cluster="ada-cluster", taskDefinition="ada-orders", launchType="FARGATE")
    message = "Network Configuration must be provided when networkMode 'awsvpc' is specified."
    assert refused(lambda: cluster.create_service(serviceName="a", desiredCount=1, **base)) == (
        "InvalidParameterException", message)
    assert refused(lambda: cluster.run_task(**base)) == ("InvalidParameterException", message)
    for count in (0, 11):
        assert refused(lambda: cluster.run_task(count=count, networkConfiguration=network, **base)) == (
            "InvalidParameterException", "count must be between 1 and 10: one RunTask call places at most 10 tasks.")
    subnets_only = {"awsvpcConfiguration": {"subnets": network["awsvpcConfiguration"]["subnets"]}}
    made = cluster.create_service(serviceName="a", desiredCount=1, networkConfiguration=subnets_only, **base)
    assert made["service"]["networkConfiguration"] == subnets_only


def test_the_local_aws_refuses_and_keeps_the_same_and_a_restart_keeps_it(local, local_target):
    from labkit import localaws

    ecs, ec2 = local_target.client("ecs"), local_target.client("ec2")
    assert refused(lambda: ecs.register_task_definition(**fargate(cpu="256", memory="4096")))[0] == "ClientException"
    ecs.create_cluster(clusterName="ada-cluster")
    ecs.register_task_definition(**fargate())
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    ecs.create_service(cluster="ada-cluster", serviceName="ada-orders", taskDefinition="ada-orders", desiredCount=1,
                       launchType="FARGATE", networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet]}},
                       deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    nlb = local_target.client("elbv2").create_load_balancer(Name="ada-provider", Type="network", Subnets=[subnet])
    localaws.down()
    localaws.up()  # the journal is replayed through the same rules
    service = ecs.describe_services(cluster="ada-cluster", services=["ada-orders"])["services"][0]
    assert service["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert ecs.list_task_definitions()["taskDefinitionArns"][0].endswith("task-definition/ada-orders:1")
    arn = local_target.client("elbv2").describe_load_balancers()["LoadBalancers"][0]["LoadBalancerArn"]
    assert arn == nlb["LoadBalancers"][0]["LoadBalancerArn"] and ":loadbalancer/net/" in arn
