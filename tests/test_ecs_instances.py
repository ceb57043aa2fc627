"""The EC2 launch type in the local AWS: container instances as hosts, and RunTask placed as ECS places it.

Placement and the container instance calls hold in both network modes. The namespace tests need
root and ``ip netns`` (the server makes one namespace per container instance) and skip elsewhere.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
from botocore.exceptions import ClientError

from labkit.localaws import netns, placement
from labkit.target import Target
from tests.ecs_support import Inside, container, get_json, push_image, task_of, wait_for

CLUSTER = "lab"
needs_namespaces = pytest.mark.skipif(not netns.available(),
                                      reason="network namespaces need root and `ip netns` (loopback mode here)")
SPREAD_ZONE = {"type": "spread", "field": "attribute:ecs.availability-zone"}
T3_ONLY = {"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t3.*"}


@pytest.fixture
def aws(local):
    t = Target("local", prefix="ecs", region="us-east-1")
    clients = {name: t.client(name) for name in ("ecs", "ecr", "ec2")}
    clients["ecs"].create_cluster(clusterName=CLUSTER)
    ec2 = clients["ec2"]
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    clients["subnets"] = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.30.{n}.0/24", AvailabilityZone=f"us-east-1{z}")[
        "Subnet"]["SubnetId"] for n, z in ((1, "a"), (2, "b"))]
    clients["image"], _ = push_image(clients["ecr"], local.home, "web")
    return clients


def instance(aws, subnet: int = 0, kind: str = "t3.small", memory: int = 1024) -> dict:
    """Launch an EC2 instance and register it as the agent would; its container instance, with its EC2 facts."""
    ec2 = aws["ec2"].run_instances(ImageId="ami-0abcdef1234567890", InstanceType=kind, MinCount=1, MaxCount=1,
                                   SubnetId=aws["subnets"][subnet])["Instances"][0]
    document = json.dumps({"instanceId": ec2["InstanceId"], "region": "us-east-1", "instanceType": kind})
    ci = aws["ecs"].register_container_instance(cluster=CLUSTER, instanceIdentityDocument=document, totalResources=[
        {"name": "CPU", "type": "INTEGER", "integerValue": 2048},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": memory}])["containerInstance"]
    return {"arn": ci["containerInstanceArn"], "ec2": ec2["InstanceId"], "ip": ec2["PrivateIpAddress"],
            "zone": ec2["Placement"]["AvailabilityZone"]}


def definition(aws, mode: str = "bridge", memory: int = 256, ports: list | None = None, **extra) -> str:
    web = container(aws["image"], memory=memory, portMappings=ports if ports is not None else [])
    web.update(extra)
    return aws["ecs"].register_task_definition(family=f"web-{mode}", networkMode=mode, requiresCompatibilities=["EC2"],
                                               containerDefinitions=[web])["taskDefinition"]["taskDefinitionArn"]


def run(aws, task_definition: str, **extra) -> dict:
    return aws["ecs"].run_task(cluster=CLUSTER, taskDefinition=task_definition, launchType="EC2", **extra)


def until(aws, arn: str, status: str) -> dict:
    return wait_for(lambda: task_of(aws["ecs"], CLUSTER, arn), lambda t: t["lastStatus"] in (status, "STOPPED"))


def described(aws, arn: str) -> dict:
    return aws["ecs"].describe_container_instances(cluster=CLUSTER, containerInstances=[arn])["containerInstances"][0]


def resource(ci: dict, name: str) -> int:
    return next(r["integerValue"] for r in ci["remainingResources"] if r["name"] == name)


def namespace_of(ec2_id: str) -> str | None:
    """This local AWS's namespace of an instance (moto's ids repeat across servers: another test worker's
    instance may have the same id, so the name's tag of the state folder tells them apart)."""
    import hashlib

    from labkit import config

    tag = hashlib.sha256(str(config.state_dir().resolve()).encode()).hexdigest()[:6]
    name = f"{netns.PREFIX}{ec2_id.lower()}-{tag}"
    return name if (netns.NETNS_DIR / name).exists() else None


def ip(namespace: str, *args: str) -> str:
    return subprocess.run(["ip", "-n", namespace, *args], capture_output=True, text=True, check=True).stdout


# -- placement --------------------------------------------------------------------------------

def test_run_task_places_by_the_requests_strategy_and_constraints(aws):
    first, big, second = instance(aws, 0), instance(aws, 0, "m5.large", 8192), instance(aws, 1)
    answer = run(aws, definition(aws), count=2, placementStrategy=[SPREAD_ZONE, {"type": "binpack", "field": "memory"}],
                 placementConstraints=[{"type": "distinctInstance"}, T3_ONLY])
    assert not answer["failures"], answer["failures"]
    placed = sorted(task["containerInstanceArn"] for task in answer["tasks"])
    assert placed == sorted([first["arn"], second["arn"]])  # one per t3, one per zone; never the m5
    assert big["arn"] not in placed
    for task in answer["tasks"]:  # what RunTask answered is what DescribeTasks says
        assert task_of(aws["ecs"], CLUSTER, task["taskArn"])["containerInstanceArn"] == task["containerInstanceArn"]
        assert task["launchType"] == "EC2"


def test_binpack_fills_the_instance_with_least_memory_left_first(aws):
    roomy, snug = instance(aws, 0, memory=2048), instance(aws, 1, memory=1024)
    answer = run(aws, definition(aws), count=3, placementStrategy=[{"type": "binpack", "field": "memory"}])
    assert [t["containerInstanceArn"] for t in answer["tasks"]] == [snug["arn"]] * 3  # 3 x 256 MiB fit on it
    assert roomy["arn"] not in {t["containerInstanceArn"] for t in answer["tasks"]}


def test_tasks_that_fit_nowhere_are_failures_as_ecs_reports_them(aws):
    with pytest.raises(ClientError) as refused:
        run(aws, definition(aws))
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    assert placement.NO_INSTANCES in str(refused.value)
    small = instance(aws, 0, memory=600)
    answer = run(aws, definition(aws, memory=256), count=3)
    assert len(answer["tasks"]) == 2
    assert answer["failures"] == [{"arn": small["arn"], "reason": placement.RESOURCE_MEMORY}]
    answer = run(aws, definition(aws, memory=64), placementConstraints=[
        {"type": "memberOf", "expression": "attribute:ecs.instance-type == m5.large"}])
    assert answer["tasks"] == []
    assert answer["failures"] == [{"arn": small["arn"], "reason": placement.MEMBER_OF}]
    with pytest.raises(ClientError) as bad:
        run(aws, definition(aws), placementStrategy=[{"type": "binpack", "field": "disk"}])
    assert "binpack" in str(bad.value)


def test_a_static_host_port_is_held_on_its_instance(aws):
    only = instance(aws, 0, memory=4096)
    static = definition(aws, ports=[{"containerPort": 8080, "hostPort": 8080}])
    answer = run(aws, static, count=2)
    assert len(answer["tasks"]) == 1
    assert answer["failures"] == [{"arn": only["arn"], "reason": placement.RESOURCE_PORTS}]


def test_describe_container_instances_shows_what_runs_there(aws):
    ci = instance(aws, 0, memory=1024)
    assert resource(described(aws, ci["arn"]), "MEMORY") == 1024
    arn = run(aws, definition(aws, memory=300))["tasks"][0]["taskArn"]
    assert until(aws, arn, "RUNNING")["lastStatus"] == "RUNNING"
    seen = described(aws, ci["arn"])
    assert (resource(seen, "MEMORY"), resource(seen, "CPU"), seen["runningTasksCount"]) == (724, 2048, 1)
    with pytest.raises(ClientError) as refused:  # AWS refuses to deregister an instance that runs tasks
        aws["ecs"].deregister_container_instance(cluster=CLUSTER, containerInstance=ci["arn"])
    assert "running tasks" in str(refused.value)
    aws["ecs"].stop_task(cluster=CLUSTER, task=arn)
    assert until(aws, arn, "STOPPED")["lastStatus"] == "STOPPED"
    seen = described(aws, ci["arn"])
    assert (resource(seen, "MEMORY"), seen["runningTasksCount"]) == (1024, 0)


def test_an_awsvpc_task_on_an_instance_gets_its_interface_in_the_instances_zone(aws):
    ci = instance(aws, 1)
    task_definition = definition(aws, "awsvpc", ports=[{"containerPort": 8080}])
    answer = run(aws, task_definition, networkConfiguration={"awsvpcConfiguration": {"subnets": aws["subnets"]}})
    details = {d["name"]: d["value"] for d in answer["tasks"][0]["attachments"][0]["details"]}
    assert answer["tasks"][0]["containerInstanceArn"] == ci["arn"]
    assert details["subnetId"] == aws["subnets"][1]  # zone b, the instance's, though zone a's subnet came first


# -- container instances as hosts ---------------------------------------------------------

@needs_namespaces
def test_each_container_instance_has_its_namespace_holding_its_address_and_no_route(aws):
    one, other = instance(aws, 0), instance(aws, 1)
    for ci in (one, other):
        name = namespace_of(ci["ec2"])
        assert name is not None, f"no namespace for {ci['ec2']}"
        assert f"inet {ci['ip']}/32" in ip(name, "-4", "addr", "show", "dev", "lo")
        assert ip(name, "-4", "route", "show").strip() == ""  # nothing outside it is reachable
        assert ip(name, "-6", "route", "show").strip() == ""


@needs_namespaces
def test_deregistering_or_terminating_an_instance_stops_its_tasks_and_removes_its_namespace(aws):
    one, other = instance(aws, 0), instance(aws, 1)
    task_definition = definition(aws)
    arns = {}
    for ci in (one, other):
        answer = run(aws, task_definition, placementConstraints=[
            {"type": "memberOf", "expression": f"attribute:ecs.availability-zone == {ci['zone']}"}])
        arns[ci["ec2"]] = answer["tasks"][0]["taskArn"]
        assert until(aws, arns[ci["ec2"]], "RUNNING")["lastStatus"] == "RUNNING"
    aws["ecs"].deregister_container_instance(cluster=CLUSTER, containerInstance=one["arn"], force=True)
    assert namespace_of(one["ec2"]) is None
    stopped = until(aws, arns[one["ec2"]], "STOPPED")
    assert stopped["lastStatus"] == "STOPPED" and one["arn"].rsplit("/", 1)[-1] in stopped["stoppedReason"]
    aws["ec2"].terminate_instances(InstanceIds=[other["ec2"]])
    assert namespace_of(other["ec2"]) is None
    stopped = until(aws, arns[other["ec2"]], "STOPPED")
    assert stopped["lastStatus"] == "STOPPED" and other["ec2"] in stopped["stoppedReason"]


@needs_namespaces
def test_reset_and_down_remove_every_instance_namespace_and_a_restart_brings_them_back(aws, local):
    from labkit import localaws

    ci = instance(aws, 0)
    assert namespace_of(ci["ec2"]) is not None
    localaws.reset()
    assert namespace_of(ci["ec2"]) is None
    ci = instance({**aws, **_fresh(aws)}, 0)
    assert namespace_of(ci["ec2"]) is not None
    localaws.down()
    assert namespace_of(ci["ec2"]) is None
    owners = [p.name for p in netns.OWNERS_DIR.glob(f"{netns.PREFIX}{ci['ec2']}-*")]
    assert owners == []  # the owner records go with them
    localaws.up()  # the journal brings the container instance back, and with it its host
    assert namespace_of(ci["ec2"]) is not None


def _fresh(aws) -> dict:
    """The cluster and subnets again, after a reset."""
    aws["ecs"].create_cluster(clusterName=CLUSTER)
    vpc = aws["ec2"].create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    return {"subnets": [aws["ec2"].create_subnet(VpcId=vpc, CidrBlock="10.30.1.0/24", AvailabilityZone="us-east-1a")[
        "Subnet"]["SubnetId"]]}


@needs_namespaces
def test_bridge_tasks_serve_at_their_host_ports_on_their_instance(aws):
    ci = instance(aws, 0, memory=2048)
    dynamic = definition(aws, ports=[{"containerPort": 8080, "hostPort": 0}])
    answer = run(aws, dynamic, count=2)
    assert not answer["failures"]
    name = namespace_of(ci["ec2"])
    ports = []
    for task in answer["tasks"]:
        seen = until(aws, task["taskArn"], "RUNNING")
        assert seen["lastStatus"] == "RUNNING", seen.get("stoppedReason")
        (binding,) = seen["containers"][0]["networkBindings"]
        assert binding["containerPort"] == 8080 and 32768 <= binding["hostPort"] <= 60999
        ports.append(binding["hostPort"])
        answered = get_json(Inside(name, ci["ip"], binding["hostPort"], None))  # both listen on 8080 inside
        assert answered["env"]["HOSTNAME"] == seen["taskArn"].rsplit("/", 1)[-1][:12]
        assert answered["env"]["AWS_EXECUTION_ENV"] == "AWS_ECS_EC2"
    assert len(set(ports)) == 2
    host = definition(aws, "host", ports=[{"containerPort": 8090}], environment=[{"name": "PORT", "value": "8090"}])
    arn = run(aws, host)["tasks"][0]["taskArn"]
    seen = until(aws, arn, "RUNNING")
    assert seen["containers"][0]["networkBindings"][0]["hostPort"] == 8090
    assert get_json(Inside(name, ci["ip"], 8090, None))["env"]["PORT"] == "8090"


@needs_namespaces
def test_a_task_on_one_instance_cannot_reach_another_instance(aws):
    one, other = instance(aws, 0), instance(aws, 1)
    server = definition(aws, "host", ports=[{"containerPort": 8080}])
    served = run(aws, server, placementConstraints=[
        {"type": "memberOf", "expression": f"attribute:ecs.availability-zone == {other['zone']}"}])["tasks"][0]
    assert until(aws, served["taskArn"], "RUNNING")["lastStatus"] == "RUNNING"
    assert get_json(Inside(namespace_of(other["ec2"]), other["ip"], 8080, None))["env"]  # reached inside its namespace
    probe = ("import socket, sys\n"
             f"try:\n    socket.create_connection(({other['ip']!r}, 8080), timeout=5).close()\n"
             "except OSError as exc:\n    print(exc, flush=True)\n    sys.exit(7)\n")
    client = aws["ecs"].register_task_definition(
        family="probe", networkMode="host", requiresCompatibilities=["EC2"], containerDefinitions=[
            container(aws["image"], name="probe", memory=128, portMappings=[], command=["python", "-c", probe])])[
        "taskDefinition"]["taskDefinitionArn"]
    arn = run(aws, client, placementConstraints=[
        {"type": "memberOf", "expression": f"attribute:ecs.availability-zone == {one['zone']}"}])["tasks"][0]["taskArn"]
    done = wait_for(lambda: task_of(aws["ecs"], CLUSTER, arn), lambda t: t["lastStatus"] == "STOPPED")
    assert done["containers"][0].get("exitCode") == 7, done  # no route from one instance to the other
    assert done["containerInstanceArn"] == one["arn"]


# -- from inside the local AWS: netns.connect, in both network modes ----------------------------

INSIDE = textwrap.dedent('''
    import http.client, json, os, sys, threading, time
    from pathlib import Path
    import boto3
    from werkzeug.serving import make_server
    sys.path.insert(0, sys.argv[2])
    from labkit.localaws import netns
    from labkit.localaws.app import build_app
    from tests.ecs_support import container, push_image, task_of, wait_for

    journal, port = Path(sys.argv[1]), int(sys.argv[3])
    app = build_app(journal, f"http://localhost:{port}")
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = lambda name: boto3.client(name, region_name="us-east-1", endpoint_url=f"http://localhost:{port}",
                                       aws_access_key_id="testing", aws_secret_access_key="testing")
    ecs, ec2, ecr = client("ecs"), client("ec2"), client("ecr")
    out = {"mode": netns.mode()}
    try:
        ecs.create_cluster(clusterName="lab")
        vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.1.0/24")["Subnet"]["SubnetId"]
        ips = []
        for _ in range(2):
            i = ec2.run_instances(ImageId="ami-0abcdef1234567890", InstanceType="t3.small", MinCount=1, MaxCount=1,
                                  SubnetId=subnet)["Instances"][0]
            ecs.register_container_instance(cluster="lab", instanceIdentityDocument=json.dumps(
                {"instanceId": i["InstanceId"]}))
            ips.append(i["PrivateIpAddress"])
        image, _ = push_image(ecr, journal.parent, "web")
        web = container(image, memory=256, portMappings=[{"containerPort": 8080, "hostPort": 0}])
        td = ecs.register_task_definition(family="web", networkMode="bridge", containerDefinitions=[web])[
            "taskDefinition"]["taskDefinitionArn"]
        arn = ecs.run_task(cluster="lab", taskDefinition=td, placementStrategy=[{"type": "binpack", "field": "memory"}])[
            "tasks"][0]["taskArn"]
        task = wait_for(lambda: task_of(ecs, "lab", arn), lambda t: t["lastStatus"] in ("RUNNING", "STOPPED"))
        out["status"] = task["lastStatus"]
        host_port = task["containers"][0]["networkBindings"][0]["hostPort"]
        runtime = app.extension("ecs")
        out["target"] = list(runtime.target(arn, 8080))
        address = out["target"][0]
        other = next(ip for ip in ips if ip != address)
        deadline = time.monotonic() + 30
        while True:
            try:
                sock = netns.connect(address, host_port, timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        connection = http.client.HTTPConnection("task", timeout=5)
        connection.sock = sock
        connection.request("GET", "/")
        out["answer"] = json.loads(connection.getresponse().read())["env"]["HOSTNAME"]
        out["task_id"] = arn.rsplit("/", 1)[-1][:12]
        out["ips"], out["host_port"] = ips, host_port
        try:
            netns.connect(other, host_port, timeout=5).close()  # the other instance serves nothing there
            out["other"] = "connected"
        except OSError as exc:
            out["other"] = type(exc).__name__
    finally:
        app.close()
        server.shutdown()
    out["left"] = [n for n in netns.listed() if n.startswith("labkit-i-")
                   and (netns.OWNERS_DIR / n).is_file() and (netns.OWNERS_DIR / n).read_text() == str(os.getpid())]
    print(json.dumps(out))
''')


@pytest.mark.parametrize("mode", [
    pytest.param("namespaces", marks=needs_namespaces), "loopback"])
def test_a_bridge_task_is_reached_at_its_instance_address_and_host_port_through_netns_connect(tmp_path, mode):
    from labkit.config import REPO_ROOT

    root = str(REPO_ROOT)
    env = {**os.environ, "PYTHONPATH": root}
    if mode == "loopback":
        env["LABKIT_NETNS"] = "off"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = subprocess.run([sys.executable, "-c", INSIDE, str(tmp_path / "journal.ndjson"), root, str(port)],
                          capture_output=True, text=True, timeout=240, cwd=root, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert (out["mode"], out["status"]) == (mode, "RUNNING"), out
    assert out["target"][0] in out["ips"] and out["target"][1] == out["host_port"]  # where a load balancer sends
    assert out["answer"] == out["task_id"]  # netns.connect reached the task at the instance's host port
    assert out["other"] == "ConnectionRefusedError", out  # nothing there, and nothing sent from the host
    assert out["left"] == []  # closing the local AWS removed the instances' namespaces


def test_l05_22_says_which_network_mode_graded_it(local, free_port):
    from checks import lab05

    here = Target("local", prefix="ecs", region="us-east-1")
    assert lab05._graded_where(here) == lab05.GRADED_WHERE[netns.mode()]
    elsewhere = Target("local", prefix="ecs", region="us-east-1", endpoint=f"http://localhost:{free_port}")
    assert lab05._graded_where(elsewhere) == ""  # no course server answers there: no claim


def test_a_service_that_names_no_strategy_is_spread_over_zones(aws):
    zones = {instance(aws, 0)["arn"]: "us-east-1a", instance(aws, 0)["arn"]: "us-east-1a",
             instance(aws, 1)["arn"]: "us-east-1b"}
    aws["ecs"].create_service(cluster=CLUSTER, serviceName="web", taskDefinition=definition(aws), desiredCount=2,
                              launchType="EC2")

    def placed():
        arns = aws["ecs"].list_tasks(cluster=CLUSTER, serviceName="web")["taskArns"]
        return aws["ecs"].describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []

    tasks = wait_for(placed, lambda found: len(found) == 2)
    assert {zones[t["containerInstanceArn"]] for t in tasks} == {"us-east-1a", "us-east-1b"}


def test_an_instance_launched_after_a_task_never_gets_the_tasks_address(aws):
    from tests.ecs_support import register

    fargate = register(aws["ecs"], "fargate", [container(aws["image"])])
    arn = aws["ecs"].run_task(cluster=CLUSTER, taskDefinition=fargate, launchType="FARGATE", networkConfiguration={
        "awsvpcConfiguration": {"subnets": [aws["subnets"][0]], "securityGroups": []}})["tasks"][0]["taskArn"]
    task = until(aws, arn, "RUNNING")
    address = next(d["value"] for d in task["attachments"][0]["details"] if d["name"] == "privateIPv4Address")
    later = [instance(aws, 0)["ip"] for _ in range(2)]
    assert address not in later, (address, later)  # two holders of one address: nothing could reach either


def test_bridge_service_tasks_register_as_their_instance_at_their_host_ports(aws):
    """ECS registers a bridge task behind a load balancer as its EC2 instance and dynamic host port (target
    type instance); the ALB reaches each at the instance's address and that port."""
    import urllib.request

    import labkit.balancers

    ci = instance(aws, 0, memory=2048)
    t = Target("local", prefix="ecs", region="us-east-1")
    elbv2 = t.client("elbv2")
    vpc = aws["ec2"].describe_subnets(SubnetIds=aws["subnets"])["Subnets"][0]["VpcId"]
    lb = elbv2.create_load_balancer(Name="web", Subnets=aws["subnets"], Type="application")["LoadBalancers"][0][
        "LoadBalancerArn"]
    group = elbv2.create_target_group(Name="web", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="instance",
                                      HealthCheckPath="/health", HealthCheckIntervalSeconds=5,
                                      HealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
    elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": group}])
    dynamic = definition(aws, ports=[{"containerPort": 8080, "hostPort": 0}])
    aws["ecs"].create_service(cluster=CLUSTER, serviceName="web", taskDefinition=dynamic, desiredCount=2,
                              launchType="EC2",
                              loadBalancers=[{"targetGroupArn": group, "containerName": "web", "containerPort": 8080}])

    def health():
        return elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
    found = wait_for(health, lambda d: len(d) == 2 and all(h["TargetHealth"]["State"] == "healthy" for h in d),
                     timeout=120)
    assert {h["Target"]["Id"] for h in found} == {ci["ec2"]}
    arns = aws["ecs"].list_tasks(cluster=CLUSTER, serviceName="web")["taskArns"]
    ports = {t["containers"][0]["networkBindings"][0]["hostPort"]
             for t in aws["ecs"].describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"]}
    assert {h["Target"]["Port"] for h in found} == ports and all(32768 <= p <= 60999 for p in ports)
    with urllib.request.urlopen(labkit.balancers.url(t, "web", 80) + "/health", timeout=10) as answer:
        assert answer.status == 200
