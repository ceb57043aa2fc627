"""ECS services in the local AWS: the desired count kept, rolling deployments, the circuit breaker."""
from __future__ import annotations

import json
import os
import signal

import pytest

from labkit.target import Target
from tests.ecs_support import container, get_json, network, port_of, push_image, register, wait_for

CLUSTER = "lab"
HEALTH = {"command": ["CMD-SHELL", "curl -fs http://localhost:8080/health || exit 1"], "interval": 5, "timeout": 2,
          "retries": 1, "startPeriod": 2}


@pytest.fixture
def aws(local):
    t = Target("local", prefix="ecs", region="us-east-1")
    clients = {name: t.client(name) for name in ("ecs", "ecr", "ec2")}
    clients["ecs"].create_cluster(clusterName=CLUSTER)
    clients["net"] = network(clients["ec2"])
    clients["image"], _ = push_image(clients["ecr"], local.home, "web")
    return clients


def create(aws, definition: str, count: int = 2, **extra) -> dict:
    params = dict(cluster=CLUSTER, serviceName="web", taskDefinition=definition, desiredCount=count,
                  launchType="FARGATE", networkConfiguration=aws["net"])
    params.update(extra)
    return aws["ecs"].create_service(**params)["service"]


def service(aws) -> dict:
    return aws["ecs"].describe_services(cluster=CLUSTER, services=["web"])["services"][0]


def tasks(aws, status: str = "RUNNING") -> list[dict]:
    arns = aws["ecs"].list_tasks(cluster=CLUSTER, serviceName="web", desiredStatus=status)["taskArns"]
    return aws["ecs"].describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []


def steady(aws, definition: str, count: int):
    def done(found):
        return (len(found) == count and all(t["lastStatus"] == "RUNNING" and t["taskDefinitionArn"] == definition
                                            for t in found))
    return wait_for(lambda: tasks(aws), done, timeout=90)


def messages(aws) -> list[str]:
    return [e["message"] for e in service(aws)["events"]]


def test_create_service_keeps_what_moto_drops(aws):
    definition = register(aws["ecs"], "web", [container(aws["image"])])
    created = create(aws, definition, count=0, healthCheckGracePeriodSeconds=30,
                     deploymentConfiguration={"maximumPercent": 150, "minimumHealthyPercent": 50,
                                              "deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    for seen in (created, service(aws)):
        assert seen["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
        assert (seen["deploymentConfiguration"]["maximumPercent"], seen["healthCheckGracePeriodSeconds"]) == (150, 30)


def test_the_desired_count_is_kept_and_a_killed_task_is_replaced(aws):
    definition = register(aws["ecs"], "web", [container(aws["image"])])
    create(aws, definition, count=2)
    running = steady(aws, definition, 2)
    assert len(running) == 2 and all(t["group"] == "service:web" for t in running)
    victim = running[0]
    pid = get_json(port_of(victim))["env"] and _pid_of(victim)
    os.kill(pid, signal.SIGKILL)  # by hand, from outside ECS
    replaced = wait_for(lambda: tasks(aws), lambda found: len(found) == 2 and victim["taskArn"] not in
                        [t["taskArn"] for t in found] and all(t["lastStatus"] == "RUNNING" for t in found), timeout=90)
    assert victim["taskArn"] not in [t["taskArn"] for t in replaced] and len(replaced) == 2
    gone = aws["ecs"].describe_tasks(cluster=CLUSTER, tasks=[victim["taskArn"]])["tasks"][0]
    assert (gone["lastStatus"], gone["stopCode"]) == ("STOPPED", "EssentialContainerExited")
    assert gone["containers"][0]["exitCode"] == 137
    aws["ecs"].stop_task(cluster=CLUSTER, task=replaced[0]["taskArn"])  # stopped by hand too: replaced
    again = wait_for(lambda: tasks(aws), lambda found: len(found) == 2 and replaced[0]["taskArn"] not in
                     [t["taskArn"] for t in found], timeout=90)
    assert replaced[0]["taskArn"] not in [t["taskArn"] for t in again]
    started = [m for m in messages(aws) if "has started 1 tasks" in m]
    assert started and started[0].startswith("(service web) has started 1 tasks: (task ")
    assert service(aws)["runningCount"] >= 1
    aws["ecs"].update_service(cluster=CLUSTER, service="web", desiredCount=0)
    assert wait_for(lambda: tasks(aws), lambda found: not found, timeout=60) == []


def test_a_rolling_update_keeps_minimum_healthy_and_completes(aws):
    first = register(aws["ecs"], "web", [container(aws["image"], healthCheck=HEALTH)])
    second = register(aws["ecs"], "web", [container(aws["image"], healthCheck=HEALTH,
                                                    environment=[{"name": "REVISION", "value": "2"}])])
    create(aws, first, count=2, deploymentConfiguration={"maximumPercent": 150, "minimumHealthyPercent": 50})
    wait_for(lambda: service(aws), lambda s: s["deployments"][0]["rolloutState"] == "COMPLETED", timeout=90)
    aws["ecs"].update_service(cluster=CLUSTER, service="web", taskDefinition=second)
    seen_total, seen_healthy = [], []

    def watch():
        found = tasks(aws)
        seen_total.append(len(found))
        seen_healthy.append(sum(t["lastStatus"] == "RUNNING" and t.get("healthStatus") == "HEALTHY" for t in found))
        return service(aws)

    done = wait_for(watch, lambda s: len(s["deployments"]) == 1 and s["deployments"][0]["taskDefinition"] == second
                    and s["deployments"][0]["rolloutState"] == "COMPLETED", timeout=120, step=0.2)
    assert done["deployments"][0]["rolloutState"] == "COMPLETED"
    assert max(seen_total) <= 3  # maximumPercent 150 of 2
    assert min(seen_healthy) >= 1  # minimumHealthyPercent 50 of 2, at every look
    final = steady(aws, second, 2)
    assert all(get_json(port_of(t))["env"].get("REVISION") == "2" for t in final)
    assert any("deployment completed" in m for m in messages(aws))
    assert any(m == "(service web) has reached a steady state." for m in messages(aws))


def test_the_circuit_breaker_rolls_back_to_the_last_good_revision(aws):
    good = register(aws["ecs"], "web", [container(aws["image"], healthCheck=HEALTH)])
    broken = register(aws["ecs"], "web", [container(aws["image"], healthCheck=HEALTH,
                                                    environment=[{"name": "EXIT_AT_ONCE", "value": "1"}])])
    create(aws, good, count=1, deploymentConfiguration={
        "maximumPercent": 200, "minimumHealthyPercent": 100,
        "deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    first = wait_for(lambda: service(aws), lambda s: s["deployments"][0]["rolloutState"] == "COMPLETED", timeout=90)
    good_id = first["deployments"][0]["id"]
    serving = steady(aws, good, 1)[0]
    aws["ecs"].update_service(cluster=CLUSTER, service="web", taskDefinition=broken)
    after = wait_for(lambda: service(aws), lambda s: s["taskDefinition"] == good and s["deployments"][0]["id"] != good_id
                     and any("rolling back" in e["message"] for e in s["events"]), timeout=120, step=0.2)
    assert after["taskDefinition"] == good
    assert any(m.endswith("deployment failed: tasks failed to start.") for m in messages(aws))
    assert f"(service web) rolling back to deployment {good_id}." in messages(aws)
    # The last good revision kept serving throughout: its task was never stopped.
    still = aws["ecs"].describe_tasks(cluster=CLUSTER, tasks=[serving["taskArn"]])["tasks"][0]
    assert still["lastStatus"] == "RUNNING" and get_json(port_of(still))["env"].get("EXIT_AT_ONCE") is None
    final = wait_for(lambda: service(aws), lambda s: len(s["deployments"]) == 1
                     and s["deployments"][0]["rolloutState"] == "COMPLETED", timeout=90)
    assert final["deployments"][0]["taskDefinition"] == good
    from labkit import localaws

    localaws.down()  # the rollback was journaled: a restart brings the good revision back, not the broken one
    localaws.up()
    assert service(aws)["taskDefinition"] == good
    assert steady(aws, good, 1)[0]["taskDefinitionArn"] == good


def _pid_of(task: dict) -> int:
    from tests.test_ecs_tasks import _pid_on

    return _pid_on(port_of(task))


def test_after_a_restart_the_old_tasks_are_stopped_and_the_service_runs_again(local, aws):
    from labkit import localaws

    definition = register(aws["ecs"], "web", [container(aws["image"])])
    create(aws, definition, count=1)
    before = steady(aws, definition, 1)[0]
    port = port_of(before)
    standalone = aws["ecs"].run_task(cluster=CLUSTER, taskDefinition=definition, launchType="FARGATE",
                                     networkConfiguration=aws["net"])["tasks"][0]["taskArn"]
    wait_for(lambda: aws["ecs"].describe_tasks(cluster=CLUSTER, tasks=[standalone])["tasks"][0],
             lambda t: t["lastStatus"] == "RUNNING")
    localaws.down()
    with pytest.raises(OSError):
        get_json(port, timeout=0.5)  # down stopped it
    localaws.up()  # the journal brings back the records, not the processes
    old = aws["ecs"].describe_tasks(cluster=CLUSTER, tasks=[standalone])["tasks"][0]
    assert old["lastStatus"] == "STOPPED" and "the local AWS that ran it stopped" in old["stoppedReason"]
    assert standalone not in aws["ecs"].list_tasks(cluster=CLUSTER, desiredStatus="RUNNING")["taskArns"]
    again = steady(aws, definition, 1)  # the service's tasks were never journaled: it starts new ones
    assert again[0]["taskArn"] != before["taskArn"]
    assert get_json(port_of(again[0]))["cwd"].endswith("/app")


def test_a_services_running_tasks_are_its_target_groups_targets(local):
    t = Target("local", prefix="ecs", region="us-east-1")
    ecs, ecr, ec2, elbv2 = (t.client(n) for n in ("ecs", "ecr", "ec2", "elbv2"))
    ecs.create_cluster(clusterName=CLUSTER)
    net = network(ec2)
    vpc = ec2.describe_subnets(SubnetIds=net["awsvpcConfiguration"]["subnets"])["Subnets"][0]["VpcId"]
    group = elbv2.create_target_group(Name="web", Protocol="HTTP", Port=8080, VpcId=vpc,
                                      TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    image, _ = push_image(ecr, local.home, "web")
    definition = register(ecs, "web", [container(image)])
    ecs.create_service(cluster=CLUSTER, serviceName="web", taskDefinition=definition, desiredCount=2,
                       launchType="FARGATE", networkConfiguration=net,
                       loadBalancers=[{"targetGroupArn": group, "containerName": "web", "containerPort": 8080}])
    aws = {"ecs": ecs}
    running = steady(aws, definition, 2)

    def targets():
        return sorted((d["Target"]["Id"], d["Target"]["Port"])
                      for d in elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"])

    def address(task):
        return next(d["value"] for d in task["attachments"][0]["details"] if d["name"] == "privateIPv4Address")

    expected = sorted((address(task), 8080) for task in running)
    assert wait_for(targets, lambda found: found == expected) == expected
    ecs.stop_task(cluster=CLUSTER, task=running[0]["taskArn"])
    replaced = wait_for(lambda: tasks(aws), lambda found: len(found) == 2 and running[0]["taskArn"] not in
                        [x["taskArn"] for x in found] and all(x["lastStatus"] == "RUNNING" for x in found), timeout=90)
    expected = sorted((address(task), 8080) for task in replaced)
    assert wait_for(targets, lambda found: found == expected) == expected


def _behind_alb(local, grace: int, drain: int = 5, count: int = 2, files: dict | None = None):
    """A cluster, an ALB on port 80 forwarding to an ip target group checking /health every 5 s (targets
    drain for ``drain`` seconds), and the service web (``count`` tasks, circuit breaker with rollback)
    registered in it."""
    import labkit.balancers

    t = Target("local", prefix="ecs", region="us-east-1")
    ecs, ecr, ec2, elbv2 = (t.client(n) for n in ("ecs", "ecr", "ec2", "elbv2"))
    ecs.create_cluster(clusterName=CLUSTER)
    net = network(ec2)
    vpc = ec2.describe_subnets(SubnetIds=net["awsvpcConfiguration"]["subnets"])["Subnets"][0]["VpcId"]
    other = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.2.0/24", AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
    lb = elbv2.create_load_balancer(Name="web", Subnets=[net["awsvpcConfiguration"]["subnets"][0], other],
                                    Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
    group = elbv2.create_target_group(Name="web", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip",
                                      HealthCheckPath="/health", HealthCheckIntervalSeconds=5, HealthyThresholdCount=2,
                                      UnhealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
    elbv2.modify_target_group_attributes(TargetGroupArn=group, Attributes=[  # tasks stop after a short drain
        {"Key": "deregistration_delay.timeout_seconds", "Value": str(drain)}])
    elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": group}])
    image, _ = push_image(ecr, local.home, "web", files=files)
    good = register(ecs, "web", [container(image)])
    ecs.create_service(cluster=CLUSTER, serviceName="web", taskDefinition=good, desiredCount=count, launchType="FARGATE",
                       networkConfiguration=net, healthCheckGracePeriodSeconds=grace,
                       deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True},
                                                "minimumHealthyPercent": 100, "maximumPercent": 200},
                       loadBalancers=[{"targetGroupArn": group, "containerName": "web", "containerPort": 8080}])
    aws = {"ecs": ecs, "elbv2": elbv2, "group": group, "image": image, "good": good,
           "url": labkit.balancers.url(t, "web", 80)}
    aws["completed"] = wait_for(lambda: service(aws), lambda s: s["deployments"][0]["rolloutState"] == "COMPLETED",
                                timeout=120)
    return aws


def _through(url: str) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url + "/health", timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as refused:
        return refused.code


def _target_states(aws) -> dict:
    found = aws["elbv2"].describe_target_health(TargetGroupArn=aws["group"])["TargetHealthDescriptions"]
    return {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in found}


def test_behind_an_alb_a_deployment_waits_for_elb_health_and_a_stopped_task_is_replaced_without_a_failed_request(local):
    aws = _behind_alb(local, grace=0)
    assert aws["completed"]["deployments"][0]["rolloutState"] == "COMPLETED"
    assert sorted(_target_states(aws).values()) == ["healthy", "healthy"]  # completed only once the ALB said so
    before = {t["taskArn"] for t in tasks(aws)}
    aws["ecs"].stop_task(cluster=CLUSTER, task=sorted(before)[0])
    answers = []

    def replaced(found):
        answers.append(_through(aws["url"]))
        fresh = [t for t in found if t["taskArn"] not in before]
        return fresh and list(_target_states(aws).values()).count("healthy") == 2
    wait_for(lambda: tasks(aws), replaced, timeout=90)
    assert answers and set(answers) == {200}, answers  # taken out of the target group before it stopped


def test_a_revision_that_fails_its_alb_health_checks_is_rolled_back_while_the_last_good_one_serves(local):
    aws = _behind_alb(local, grace=0)
    good_tasks = {t["taskArn"] for t in tasks(aws)}
    broken = register(aws["ecs"], "web", [container(aws["image"], environment=[{"name": "HEALTH_FAILS", "value": "1"}])])
    aws["ecs"].update_service(cluster=CLUSTER, service="web", taskDefinition=broken)
    answers = []

    def rolled_back(svc):
        answers.append(_through(aws["url"]))
        return svc["deployments"][0]["taskDefinition"] == aws["good"] and len(svc["deployments"]) == 1
    final = wait_for(lambda: service(aws), rolled_back, timeout=240, step=0.5)
    assert final["deployments"][0]["taskDefinition"] == aws["good"], final["deployments"]
    text = " ".join(messages(aws))
    assert "failed ELB health checks in (target-group" in text and "rolling back to deployment" in text
    assert {t["taskArn"] for t in tasks(aws)} == good_tasks  # the last good tasks never stopped
    assert answers and set(answers) == {200}, answers
    stopped = tasks(aws, "STOPPED")
    assert stopped and all(t["stoppedReason"].startswith("Task failed ELB health checks") for t in stopped)


def test_the_grace_period_holds_off_elb_health_checks(local):
    aws = _behind_alb(local, grace=3600)
    broken = register(aws["ecs"], "web", [container(aws["image"], environment=[{"name": "HEALTH_FAILS", "value": "1"}])])
    aws["ecs"].update_service(cluster=CLUSTER, service="web", taskDefinition=broken)
    states = wait_for(lambda: _target_states(aws), lambda s: "unhealthy" in s.values(), timeout=90)
    assert "unhealthy" in states.values()
    # Without the grace period the scheduler (four rounds a second) would stop it within this window.
    assert not wait_for(lambda: tasks(aws, "STOPPED"), bool, timeout=3), "a task in its grace period was stopped"
    assert service(aws)["deployments"][0]["rolloutState"] == "IN_PROGRESS"


# A service whose /slow answers only once /open is called on the task itself, and says how many wait.
GATED = """
import http.server, json, os, threading
gate, waiting = threading.Event(), []
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/slow":
            waiting.append(1); gate.wait(120); body = {"slow": "done"}
        elif self.path == "/open":
            gate.set(); body = {"open": True}
        else:
            body = {"waiting": len(waiting)}
        data = json.dumps(body).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
"""


def test_a_task_leaving_the_service_drains_before_it_is_stopped(local):
    """Scale in: the task's target drains for the deregistration delay; a request in flight on it completes,
    no new request reaches it, and it is sent its stop signal only after the delay."""
    import threading
    import time
    import urllib.request

    from labkit.localaws import clock

    drain = 60  # AWS seconds: 6 s on the local clock
    aws = _behind_alb(local, grace=0, drain=drain, count=1, files={"app/app.py": GATED})
    task = tasks(aws)[0]
    slow = {}

    def ask_slow():
        with urllib.request.urlopen(aws["url"] + "/slow", timeout=120) as answer:
            slow["status"], slow["body"] = answer.status, json.loads(answer.read())

    asking = threading.Thread(target=ask_slow, daemon=True)
    asking.start()
    assert wait_for(lambda: get_json(port_of(task), "/count")["waiting"], lambda n: n == 1) == 1  # in flight
    deregistered_at = time.time()
    aws["ecs"].update_service(cluster=CLUSTER, service="web", desiredCount=0)
    states = wait_for(lambda: _target_states(aws), lambda s: "draining" in s.values())
    assert list(states.values()) == ["draining"], states
    assert _through(aws["url"]) == 503  # nothing new reaches the draining target (nor anywhere: none is left)
    assert get_json(port_of(task), "/count")["waiting"] == 1
    leaving = aws["ecs"].describe_tasks(cluster=CLUSTER, tasks=[task["taskArn"]])["tasks"][0]
    assert (leaving["lastStatus"], leaving["desiredStatus"]) == ("DEACTIVATING", "STOPPED")  # serving what it was sent
    assert not tasks(aws)  # no longer among the service's running tasks
    get_json(port_of(task), "/open")
    asking.join(60)
    assert slow == {"status": 200, "body": {"slow": "done"}}  # the request in flight completed
    stopped = wait_for(lambda: aws["ecs"].describe_tasks(cluster=CLUSTER, tasks=[task["taskArn"]])["tasks"][0],
                       lambda t: t["lastStatus"] == "STOPPED", timeout=120)
    assert stopped["lastStatus"] == "STOPPED" and stopped["stoppedReason"].startswith("Scaling activity")
    # a lower bound only (never an upper one): the stop signal waited for the whole delay
    assert stopped["stoppingAt"].timestamp() >= deregistered_at + clock.wait(drain) - 0.5, stopped
    assert _target_states(aws) == {}  # drained and gone


def test_stop_task_on_a_service_task_drains_it_while_its_replacement_starts(local):
    import time

    from labkit.localaws import clock

    drain = 60  # AWS seconds: 6 s on the local clock
    aws = _behind_alb(local, grace=0, drain=drain)
    before = {t["taskArn"] for t in tasks(aws)}
    victim = sorted(before)[0]
    asked_at = time.time()
    aws["ecs"].stop_task(cluster=CLUSTER, task=victim)
    ip = next(d["value"] for d in aws["ecs"].describe_tasks(cluster=CLUSTER, tasks=[victim])["tasks"][0]
              ["attachments"][0]["details"] if d["name"] == "privateIPv4Address")
    answers = []

    def replaced_while_draining(found):
        answers.append(_through(aws["url"]))
        states = _target_states(aws)
        return (any(t["taskArn"] not in before and t["lastStatus"] == "RUNNING" for t in found)
                and list(states.values()).count("healthy") == 2 and states.get(ip) in ("draining", None))

    wait_for(lambda: tasks(aws), replaced_while_draining, timeout=90)
    assert answers and set(answers) == {200}, answers  # the draining task got nothing new, nothing failed
    stopped = wait_for(lambda: aws["ecs"].describe_tasks(cluster=CLUSTER, tasks=[victim])["tasks"][0],
                       lambda t: t["lastStatus"] == "STOPPED", timeout=120)
    assert stopped["lastStatus"] == "STOPPED"
    assert stopped["stoppingAt"].timestamp() >= asked_at + clock.wait(drain) - 0.5, stopped  # a lower bound


def test_a_deleted_service_drains_its_tasks_before_they_stop(local):
    import time

    from labkit.localaws import clock

    drain = 60  # AWS seconds: 6 s on the local clock
    aws = _behind_alb(local, grace=0, drain=drain, count=1)
    task = tasks(aws)[0]
    asked_at = time.time()
    aws["ecs"].delete_service(cluster=CLUSTER, service="web", force=True)
    states = wait_for(lambda: _target_states(aws), lambda s: "draining" in s.values())
    assert list(states.values()) == ["draining"], states
    leaving = aws["ecs"].describe_tasks(cluster=CLUSTER, tasks=[task["taskArn"]])["tasks"][0]
    assert (leaving["lastStatus"], leaving["desiredStatus"]) == ("DEACTIVATING", "STOPPED")
    stopped = wait_for(lambda: aws["ecs"].describe_tasks(cluster=CLUSTER, tasks=[task["taskArn"]])["tasks"][0],
                       lambda t: t["lastStatus"] == "STOPPED", timeout=120)
    assert stopped["stoppedReason"] == "Service deleted or scaled to zero"
    assert stopped["stoppingAt"].timestamp() >= asked_at + clock.wait(drain) - 0.5, stopped  # a lower bound
    assert _target_states(aws) == {}


def test_ec2_services_are_placed_by_their_strategy_and_constraints(local):
    t = Target("local", prefix="ecs", region="us-east-1")
    ecs, ecr, ec2 = (t.client(n) for n in ("ecs", "ecr", "ec2"))
    ecs.create_cluster(clusterName=CLUSTER)
    net = network(ec2)
    vpc = ec2.describe_subnets(SubnetIds=net["awsvpcConfiguration"]["subnets"])["Subnets"][0]["VpcId"]
    one, other = (ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{n}.0/24", AvailabilityZone=f"us-east-1{z}")[
        "Subnet"]["SubnetId"] for n, z in ((2, "a"), (3, "b")))
    zones = {}
    for subnet, kind in ((one, "t3.small"), (other, "t3.small"), (one, "t3.small"), (other, "m5.large")):
        instance = ec2.run_instances(ImageId="ami-0abcdef1234567890", InstanceType=kind, MinCount=1, MaxCount=1,
                                     SubnetId=subnet)["Instances"][0]
        document = json.dumps({"instanceId": instance["InstanceId"], "region": "us-east-1", "instanceType": kind})
        arn = ecs.register_container_instance(cluster=CLUSTER, instanceIdentityDocument=document)[
            "containerInstance"]["containerInstanceArn"]
        zones[arn] = (instance["Placement"]["AvailabilityZone"], kind)
    image, _ = push_image(ecr, local.home, "web")
    definition = ecs.register_task_definition(family="web", networkMode="awsvpc", requiresCompatibilities=["EC2"],
                                              containerDefinitions=[container(image, memory=256)])[
        "taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=CLUSTER, serviceName="web", taskDefinition=definition, desiredCount=2, launchType="EC2",
                       networkConfiguration=net,
                       placementStrategy=[{"type": "spread", "field": "attribute:ecs.availability-zone"},
                                          {"type": "binpack", "field": "memory"}],
                       placementConstraints=[{"type": "distinctInstance"},
                                             {"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t3.*"}])
    aws = {"ecs": ecs}
    placed = steady(aws, definition, 2)
    where = [zones[task["containerInstanceArn"]] for task in placed]
    assert len({task["containerInstanceArn"] for task in placed}) == 2  # distinctInstance
    assert {zone for zone, _ in where} == {"us-east-1a", "us-east-1b"} and all(k == "t3.small" for _, k in where)
    ecs.update_service(cluster=CLUSTER, service="web", desiredCount=4)  # three t3 instances: one task is left over
    svc = wait_for(lambda: service(aws), lambda s: any("unable to place a task" in e["message"] for e in s["events"]))
    assert any("DistinctInstance placement constraint unsatisfied" in e["message"] or "MemberOf" in e["message"]
               for e in svc["events"]), svc["events"][:3]
    placed = steady(aws, definition, 3)
    assert len({task["containerInstanceArn"] for task in placed}) == 3
    assert all(zones[task["containerInstanceArn"]][1] == "t3.small" for task in placed)


def test_tasks_on_a_draining_instance_are_replaced_elsewhere_and_it_gets_no_new_one(local):
    t = Target("local", prefix="ecs", region="us-east-1")
    ecs, ecr, ec2 = (t.client(n) for n in ("ecs", "ecr", "ec2"))
    ecs.create_cluster(clusterName=CLUSTER)
    net = network(ec2)
    subnet = net["awsvpcConfiguration"]["subnets"][0]
    for _ in range(3):
        instance = ec2.run_instances(ImageId="ami-0abcdef1234567890", InstanceType="t3.small", MinCount=1, MaxCount=1,
                                     SubnetId=subnet)["Instances"][0]
        ecs.register_container_instance(cluster=CLUSTER, instanceIdentityDocument=json.dumps(
            {"instanceId": instance["InstanceId"], "region": "us-east-1", "instanceType": "t3.small"}))
    image, _ = push_image(ecr, local.home, "web")
    definition = ecs.register_task_definition(family="web", networkMode="awsvpc", requiresCompatibilities=["EC2"],
                                              containerDefinitions=[container(image, memory=256)])[
        "taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=CLUSTER, serviceName="web", taskDefinition=definition, desiredCount=2, launchType="EC2",
                       networkConfiguration=net, placementConstraints=[{"type": "distinctInstance"}])
    aws = {"ecs": ecs}
    placed = steady(aws, definition, 2)
    drained = placed[0]["containerInstanceArn"]
    ecs.update_container_instances_state(cluster=CLUSTER, containerInstances=[drained], status="DRAINING")

    def moved(found):
        return (len(found) == 2 and all(t["lastStatus"] == "RUNNING" for t in found)
                and drained not in {t["containerInstanceArn"] for t in found})
    now = wait_for(lambda: tasks(aws), moved, timeout=120)
    assert placed[0]["taskArn"] not in {task["taskArn"] for task in now}  # replaced, on the third instance
    assert len({task["containerInstanceArn"] for task in now}) == 2
    gone = ecs.describe_tasks(cluster=CLUSTER, tasks=[placed[0]["taskArn"]])["tasks"][0]
    assert gone["desiredStatus"] == "STOPPED"


def test_two_clusters_services_of_one_name_keep_their_own_tasks(aws):
    definition = register(aws["ecs"], "web", [container(aws["image"])])
    aws["ecs"].create_cluster(clusterName="other")
    create(aws, definition, count=1)
    aws["ecs"].create_service(cluster="other", serviceName="web", taskDefinition=definition, desiredCount=2,
                              launchType="FARGATE", networkConfiguration=aws["net"])
    assert len(steady(aws, definition, 1)) == 1

    def others():
        arns = aws["ecs"].list_tasks(cluster="other", desiredStatus="RUNNING")["taskArns"]
        return aws["ecs"].describe_tasks(cluster="other", tasks=arns)["tasks"] if arns else []
    assert len(wait_for(others, lambda found: len(found) == 2 and all(t["lastStatus"] == "RUNNING" for t in found))) == 2
    assert len(tasks(aws)) == 1
