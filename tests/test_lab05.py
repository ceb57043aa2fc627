"""Lab 05 checks: each passes on the solution's state and fails on states wrong in one way.

Configuration rows run on in-process moto (``aws``). A task definition AWS itself refuses (a Fargate size it
does not offer, bridge networking on Fargate, awslogs without an execution role) cannot be registered on the
local AWS either, so those rows stub the task definition the grader reads. Behaviour rows that need running
tasks and a load balancer that answers (``runtime=True``) run on the real local AWS with its container and
load balancer runtime, and skip, saying so, where that runtime is not installed.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import time

import pytest

from checks import lab05
from checks.core import Status
from labkit.target import Target
from tests.ecs_support import wait_for

from .cases import Case, assert_whole_lab, covered, run_case
from .states_lab05 import LIFECYCLE, STEADY_WAIT_S, TRUST, build_lab05, execution_policy, scale_out

PASS, FAIL, SKIP = Status.PASS, Status.FAIL, Status.SKIP
RUNTIME = ("labkit.localaws.extensions.ecs", "labkit.localaws.extensions.elb", "labkit.localaws.images")


@dataclasses.dataclass(frozen=True, eq=False)
class Row(Case):
    runtime: bool = False  # needs running tasks and a load balancer that answers (the local AWS's runtime)


def td_edit(edit):
    """A prepare hook: the grader reads the task definition as ``edit`` changes it (AWS refuses to store it)."""
    def prepare(view, state, monkeypatch):
        real = lab05._task_definition

        def edited(t, name=None):
            found = real(t, name)
            return edit(copy.deepcopy(found)) if found and name in (None, lab05.family(t)) else found

        monkeypatch.setattr(lab05, "_task_definition", edited)
    return prepare


def _container(change):
    def edit(td):
        change(td["containerDefinitions"][0])
        return td
    return edit


def _lab06_nlb_group(t, state):
    """Lab 06 puts an NLB with a security group of its own in front of the same tasks."""
    ec2 = t.client("ec2")
    nlb = ec2.create_security_group(GroupName=t.name("catalog-nlb"), Description="catalog NLB", VpcId=state["vpc"])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=state["task_sg"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "UserIdGroupPairs": [{"GroupId": nlb}]}])


def _svc(**changes):
    return lambda svc, state: {**svc, **changes}


def _net(**changes):
    def edit(svc, state):
        net = dict(svc["networkConfiguration"]["awsvpcConfiguration"])
        net.update({k: (v(state) if callable(v) else v) for k, v in changes.items()})
        return {**svc, "networkConfiguration": {"awsvpcConfiguration": net}}
    return edit


def _broken_revision(t: Target, state):
    """Register a revision of the family without deploying it: newer than what the service runs."""
    td = t.client("ecs").describe_task_definition(taskDefinition=state["td_arn"])["taskDefinition"]
    keep = ("family", "containerDefinitions", "requiresCompatibilities", "networkMode", "cpu", "memory",
            "executionRoleArn", "taskRoleArn")
    td = {k: td[k] for k in keep if k in td}
    td["containerDefinitions"][0]["command"] = ["python", "-c", "raise SystemExit(3)"]
    return t.client("ecs").register_task_definition(**td)["taskDefinition"]


def _rollback(t: Target, state):
    """Deploy a broken revision and wait (bounded) for the circuit breaker to bring the service back."""
    broken = _broken_revision(t, state)
    ecs = t.client("ecs")
    ecs.update_service(cluster=lab05.cluster_name(t), service=lab05.service_name(t),
                       taskDefinition=broken["taskDefinitionArn"])
    _wait(lambda: _primary(t) == state["td_arn"] and _steady(t), "the service to roll back")


def _other_label(view, state, monkeypatch):
    """The grader reads a policy counting another target group's requests (AWS refuses to store one not attached)."""
    real = lab05._request_policy

    def other(t):
        found = copy.deepcopy(real(t))
        spec = found["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]
        spec["ResourceLabel"] = spec["ResourceLabel"].rsplit("/", 2)[0] + "/other/0123456789abcdef"
        return found

    monkeypatch.setattr(lab05, "_request_policy", other)


def _primary(t: Target) -> str | None:
    svc = t.client("ecs").describe_services(cluster=lab05.cluster_name(t), services=[lab05.service_name(t)])["services"][0]
    return next((d["taskDefinition"] for d in svc["deployments"] if d["status"] == "PRIMARY"
                 and d.get("rolloutState") in (None, "COMPLETED")), None)


def _steady(t: Target) -> bool:
    svc = t.client("ecs").describe_services(cluster=lab05.cluster_name(t), services=[lab05.service_name(t)])["services"][0]
    healthy = [d for d in t.client("elbv2").describe_target_health(TargetGroupArn=_tg(t))["TargetHealthDescriptions"]
               if d["TargetHealth"]["State"] == "healthy"]
    return svc["runningCount"] >= svc["desiredCount"] and len(healthy) >= svc["desiredCount"]


def _tg(t: Target) -> str:
    return t.client("elbv2").describe_target_groups(Names=[lab05.tg_name(t)])["TargetGroups"][0]["TargetGroupArn"]


def _wait(ready, what: str) -> None:
    deadline = time.monotonic() + STEADY_WAIT_S
    while not ready():
        if time.monotonic() > deadline:
            pytest.fail(f"the local AWS did not bring {what} within {STEADY_WAIT_S} s")
        time.sleep(0.5)


def _forward_admin(t: Target, state):
    elb = t.client("elbv2")
    lb = elb.describe_load_balancers(Names=[lab05.lb_name(t)])["LoadBalancers"][0]
    listener = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"][0]
    elb.create_rule(ListenerArn=listener["ListenerArn"], Priority=10,
                    Conditions=[{"Field": "path-pattern", "Values": [lab05.RULE_PATH]}],
                    Actions=[{"Type": "forward", "TargetGroupArn": _tg(t)}])


def _eks_access(mode):
    def prepare(view, state, monkeypatch):
        real = lab05._eks

        def with_access(t):
            found = real(t)
            return dict(found, accessConfig={"authenticationMode": mode}) if found else found

        monkeypatch.setattr(lab05, "_eks", with_access)
    return prepare


wide_exec = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["ecr:*", "logs:*", "secretsmanager:GetSecretValue"], "Resource": "*"}]}
CASES = [
    Row("L05.01", "solution", PASS, ("ada-shop",)),
    Row("L05.01", "private subnets reach the internet gateway", FAIL, ("routes 0.0.0.0/0",),
        build={"private_route_to_igw": True}),
    Row("L05.01", "one zone", FAIL, ("two zones",), build={"one_zone": True}),
    Row("L05.02", "solution", PASS, ("ada-catalog-tasks",)),
    Row("L05.02", "tasks open to the internet", FAIL, ("0.0.0.0/0",), build={"task_ingress": [
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}),
    Row("L05.02", "tasks admit nothing", FAIL, ("admits nothing",), build={"task_ingress": []}),
    Row("L05.02", "lab 06's NLB too", PASS, ("from ada-catalog-alb (and lab 06's ada-catalog-nlb)",), mutate=_lab06_nlb_group),
    Row("L05.03", "solution", PASS, ("immutable",)),
    Row("L05.03", "no scan on push", FAIL, ("scanOnPush",), build={"scan_on_push": False}),
    Row("L05.03", "mutable tags", FAIL, ("MUTABLE",), build={"mutability": "MUTABLE"}),
    Row("L05.04", "solution", PASS, ("v6-v15",)),
    Row("L05.04", "no policy", FAIL, ("no lifecycle policy",), build={"lifecycle": None}),
    Row("L05.04", "keeps only five releases", FAIL, ("v10", "must keep"), build={"lifecycle": {"rules": [
        dict(LIFECYCLE["rules"][1], selection=dict(LIFECYCLE["rules"][1]["selection"], countNumber=5))]}}),
    Row("L05.04", "expires every image after a day", FAIL, ("must keep",), build={"lifecycle": {"rules": [
        {"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days",
                                          "countNumber": 1}, "action": {"type": "expire"}}]}}),
    Row("L05.04", "keeps untagged builds", FAIL, ("untagged",), build={"lifecycle": {"rules": [LIFECYCLE["rules"][1]]}}),
    Row("L05.05", "solution", PASS, ("v1",)),
    Row("L05.05", "nothing pushed", FAIL, ("no image tagged v1",), build={"push": False}),
    Row("L05.06", "solution", PASS, ("separate",)),
    Row("L05.06", "one role for both", FAIL, ("both task role and execution role",), build={"same_role": True}),
    Row("L05.06", "execution role trusts EC2 too", FAIL, ("ec2.amazonaws.com",), build={"exec_trust": {
        "Version": "2012-10-17", "Statement": [TRUST["Statement"][0], {
            "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}}),
    Row("L05.07", "solution", PASS, ("nothing beyond",)),
    Row("L05.07", "wildcards on everything", FAIL, ("ada-catalog-execution allows",), build={"exec_policy": wide_exec}),
    Row("L05.07", "cannot read the secret", FAIL, ("secretsmanager:GetSecretValue",), build={"exec_policy": {
        "Version": "2012-10-17", "Statement": execution_policy(None, "arn:aws:ecr:us-east-1:123456789012:repository/ada-catalog",
                                                               "arn:aws:logs:us-east-1:123456789012:log-group:/ecs/ada-catalog",
                                                               "x")["Statement"][:3]}}),
    Row("L05.08", "solution", PASS, ("ada-catalog",)),
    Row("L05.08", "may write the table", FAIL, ("dynamodb:PutItem",), build={"task_policy_doc": {
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "dynamodb:*",
                                                "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/ada-catalog"}]}}),
    Row("L05.08", "cannot scan", FAIL, ("dynamodb:Scan",), build={"task_policy_doc": {
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "dynamodb:GetItem",
                                                "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/ada-catalog"}]}}),
    Row("L05.09", "solution", PASS, ("14 days",)),
    Row("L05.09", "kept for ever", FAIL, ("for ever",), build={"retention": None}),
    Row("L05.10", "solution", PASS, ("256 CPU units and 512 MiB",)),
    Row("L05.10", "a size Fargate does not offer", FAIL, ("256 CPU units and 4096 MiB", "512, 1024, 2048"),
        prepare=td_edit(lambda td: dict(td, memory="4096"))),
    Row("L05.10", "cpu Fargate does not offer", FAIL, ("Fargate's CPU sizes",), prepare=td_edit(lambda td: dict(td, cpu="300"))),
    Row("L05.10", "bridge on Fargate", FAIL, ("awsvpc",), prepare=td_edit(lambda td: dict(td, networkMode="bridge"))),
    Row("L05.11", "solution", PASS, ("awslogs",)),
    Row("L05.11", "awslogs without an execution role", FAIL, ("no execution role",),
        prepare=td_edit(lambda td: {k: v for k, v in td.items() if k != "executionRoleArn"})),
    Row("L05.11", "no log configuration", FAIL, ("does not log",),
        prepare=td_edit(_container(lambda c: c.pop("logConfiguration")))),
    Row("L05.12", "solution", PASS, ("user 10001",)),
    Row("L05.12", "runs as root", FAIL, ("non-root",), build={"container": lambda c: dict(c, user="0")}),
    Row("L05.12", "no health check", FAIL, ("no health check",),
        build={"container": lambda c: {k: v for k, v in c.items() if k != "healthCheck"}}),
    Row("L05.13", "solution", PASS, ("API_TOKEN",)),
    Row("L05.13", "token in a plain variable", FAIL, ("API_TOKEN in plain environment",), build={"container": lambda c: dict(
        c, secrets=[], environment=c["environment"] + [{"name": "API_TOKEN", "value": "s3cr3t-token"}])}),
    Row("L05.14", "solution", PASS, ("internet-facing",)),
    Row("L05.14", "internal in the private subnets", FAIL, ("internal",), build={"lb_scheme": "internal"}),
    Row("L05.14", "health check on /", FAIL, ("checks /",), build={"health_path": "/"}),
    Row("L05.15", "solution", PASS, ("private subnets",)),
    Row("L05.15", "public subnets", FAIL, ("private subnets of ada-shop only",),
        build={"service": _net(subnets=lambda s: s["public"])}),
    Row("L05.15", "public IPs", FAIL, ("assignPublicIp",), build={"service": _net(assignPublicIp="ENABLED")}),
    Row("L05.15", "ALB's security group on the tasks", FAIL, ("ada-catalog-tasks alone",),
        build={"service": _net(securityGroups=lambda s: [s["alb_sg"]])}),
    Row("L05.16", "solution", PASS, ("rolls back",)),
    Row("L05.16", "no circuit breaker", FAIL, ("off",), build={"breaker": False}),
    Row("L05.16", "one task", FAIL, ("two",), build={"desired": 1, "scaling": False}),  # before step 7 scales it
    Row("L05.17", "solution", PASS, ("items of table ada-catalog",), build={"runtime": True}, runtime=True),
    Row("L05.17", "service reads its sample data", FAIL, ("CATALOG_TABLE",), runtime=True,
        build={"runtime": True, "container": lambda c: dict(c, environment=[{"name": "PORT", "value": "8080"}])}),
    Row("L05.18", "solution", PASS, ("replaced by",), build={"runtime": True}, runtime=True),
    Row("L05.18", "no running task", FAIL, ("0 running task",)),
    Row("L05.19", "solution", PASS, ("rolled back",), build={"runtime": True}, mutate=_rollback, runtime=True),
    Row("L05.19", "no broken revision tried", FAIL, ("no broken revision",)),
    Row("L05.19", "newer revision never deployed", FAIL, ("circuit-breaker rollback",), mutate=_broken_revision),
    Row("L05.20", "solution", PASS, ("answers 403",), build={"runtime": True}, runtime=True),
    Row("L05.20", "no rule", FAIL, ("no rule for /admin/*",), build={"rule": False}),
    Row("L05.20", "rule forwards to the service", FAIL, ("fixed-response 403",), build={"rule": False},
        mutate=_forward_admin),
    Row("L05.26", "solution", PASS, ("scales between 2 and 4 tasks",)),
    Row("L05.26", "not a scalable target", FAIL, ("is not a scalable target",), build={"scaling": False}),
    Row("L05.26", "minimum of one task", FAIL, ("at least 2",), build={"scale_min": 1}),
    Row("L05.26", "scale-in disabled", FAIL, ("DisableScaleIn",), build={"scale_in": False}),
    Row("L05.26", "another group's requests", FAIL, ("not of",), prepare=_other_label),
    Row("L05.27", "solution", PASS, ("scaled service ada-catalog out",), build={"runtime": True},
        mutate=lambda t, state: scale_out(t), runtime=True),
    Row("L05.27", "no load ever sent", FAIL, ("No successful scaling activity",), build={"runtime": True}, runtime=True),
    Row("L05.21", "solution", PASS, ("spreads by zone",)),
    Row("L05.21", "binpack first", FAIL, ("spread attribute:ecs.availability-zone first",),
        build={"ec2_strategy": [lab05.BINPACK_MEMORY, lab05.SPREAD_ZONE]}),
    Row("L05.21", "no distinctInstance", FAIL, ("distinctInstance",),
        build={"ec2_constraints": [{"type": "memberOf", "expression": lab05.MEMBER_OF}]}),
    Row("L05.22", "solution", PASS, ("distinct t3 instances",)),
    Row("L05.22", "two tasks on one instance", FAIL, ("share 1 container instance",), build={"same_instance": True}),
    Row("L05.23", "solution", PASS, ("private API endpoint",)),
    Row("L05.23", "public endpoint", FAIL, ("reachable from the internet",), build={"eks_public": True}),
    Row("L05.23", "no audit log", FAIL, ("audit",), build={"eks_logging": ["api", "authenticator"]}),
    Row("L05.23", "secrets not encrypted", FAIL, ("encrypt Kubernetes secrets",), build={"eks_encrypt": False}),
    Row("L05.24", "solution", PASS, ("own role",)),
    Row("L05.24", "no node group", FAIL, ("no node group",), build={"nodegroup": False}),
    Row("L05.24", "pod role trusted by EC2", FAIL, ("eks-fargate-pods.amazonaws.com alone",),
        build={"pod_role_service": "ec2.amazonaws.com"}),
    Row("L05.25", "local", SKIP, ("verified on a live account",)),
    Row("L05.25", "access entries, live", PASS, ("access entries",), prepare=_eks_access("API"), live=True),
    Row("L05.25", "config map only, live", FAIL, ("aws-auth ConfigMap",), prepare=_eks_access("CONFIG_MAP"), live=True),
]

PASSING = covered(CASES, PASS)
FAILING = covered(CASES, FAIL)


def _needs_runtime() -> None:
    """Skip, naming the module, until the local AWS's task, load balancer and registry runtime is merged."""
    for module in RUNTIME:
        pytest.importorskip(module, reason=f"needs the local AWS's container runtime ({module})")


def _params(rows):
    return [pytest.param(c, id=f"{c.check}-{c.name}") for c in rows]


@pytest.fixture(autouse=True)
def _no_default_amis(request, monkeypatch):
    """In-process moto builds ~1,300 AMIs for every fresh EC2 backend, most of a row's time; lab 05 needs none."""
    if "aws" in request.fixturenames:
        monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


@pytest.mark.parametrize("case", _params([c for c in CASES if not c.runtime]))
def test_check(case, aws, monkeypatch):
    run_case(case, aws, build_lab05, monkeypatch)


@pytest.mark.parametrize("case", _params([c for c in CASES if c.runtime]))
def test_behaviour_through_the_load_balancer(case, request, monkeypatch):
    _needs_runtime()
    target = request.getfixturevalue("local_target")
    run_case(case, target, build_lab05, monkeypatch)


def test_whole_lab_on_the_solution_state(aws):
    """Everything but the behaviour that needs running tasks passes on the solution's configuration."""
    build_lab05(aws)
    import checks

    report = checks.grade([c for c in checks.select("05") if c.id not in {"L05.17", "L05.18", "L05.19", "L05.20",
                                                                                 "L05.27"}], aws)
    got = {r.check.id: r.status for r in report.results}
    assert got == {i: (SKIP if i == "L05.25" else PASS) for i in got}, report


def test_whole_lab_locally(request):
    _needs_runtime()
    target = request.getfixturevalue("local_target")
    
    def solution(t):
        _rollback(t, build_lab05(t, runtime=True))
        scale_out(t)

    assert_whole_lab(target, "05", solution, skipped={"L05.25"})


def test_the_lifecycle_sample_holds_what_the_check_reasons_about():
    """L05.04's sample has more releases than the policy keeps and untagged builds on both sides of a day."""
    from datetime import datetime, timedelta, timezone

    now = datetime.now(timezone.utc)
    sample = lab05.lifecycle_sample(now)
    releases = [i for i in sample if i["imageTags"]]
    untagged = [i for i in sample if not i["imageTags"]]
    assert len(releases) > lab05.KEEP_RELEASES
    assert any(i["imagePushedAt"] > now - timedelta(days=lab05.UNTAGGED_DAYS) for i in untagged)
    assert any(i["imagePushedAt"] < now - timedelta(days=lab05.UNTAGGED_DAYS) for i in untagged)
    assert json.dumps(LIFECYCLE)  # the solution's policy is plain JSON


def test_cleanup_removes_everything_lab05_made_and_nothing_of_another_learners(aws):
    from labkit.cleanup import cleanup

    build_lab05(aws)
    bob = Target("inprocess", prefix="bob", region="us-east-1")
    bob._session = aws._session
    bob_repo = bob.client("ecr").create_repository(repositoryName="bob-catalog", tags=bob.tags("05"))["repository"]

    done = cleanup(aws, say=lambda _: None)

    assert done["pending"] == [], done["pending"]
    kinds = {d.split(" ")[0] for d in done["deleted"]}
    assert {"ECS", "container", "task", "EKS", "load", "target", "ECR", "secret", "KMS", "role", "log", "table",
            "instances", "route", "internet", "security", "subnet", "VPC", "scalable"} <= kinds, sorted(kinds)
    assert aws.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"] == []
    ecs, eks, elb = aws.client("ecs"), aws.client("eks"), aws.client("elbv2")
    assert [c for c in ecs.describe_clusters(clusters=[lab05.cluster_name(aws), lab05.ec2_cluster_name(aws)])["clusters"]
            if c["status"] == "ACTIVE"] == []
    assert ecs.list_task_definitions(familyPrefix=lab05.family(aws), status="ACTIVE")["taskDefinitionArns"] == []
    assert eks.list_clusters()["clusters"] == []
    assert elb.describe_load_balancers()["LoadBalancers"] == [] and elb.describe_target_groups()["TargetGroups"] == []
    assert [r["repositoryName"] for r in aws.client("ecr").describe_repositories()["repositories"]] == [bob_repo["repositoryName"]]
    assert aws.client("ec2").describe_vpcs(Filters=[{"Name": "cidr", "Values": [lab05.VPC_CIDR]}])["Vpcs"] == []
    assert cleanup(aws, say=lambda _: None)["found"] == []


def test_cleanup_on_the_local_aws_stops_every_task_process_and_namespace_lab05_started(request):
    _needs_runtime()
    from labkit.cleanup import cleanup
    from labkit.localaws import control
    from labkit.localaws import netns

    target = request.getfixturevalue("local_target")
    local = request.getfixturevalue("local")
    build_lab05(target, runtime=True)

    def status() -> dict:  # the full status answers this install's secret only
        return control._answers(local.endpoint)

    def runtime() -> dict:
        return status()["extensions"]["ecs"]

    def namespaces() -> list[str]:  # this local AWS's (another test run's may exist beside them)
        pid = str(status()["pid"])
        return [n for n in netns.listed() if (netns.OWNERS_DIR / n).exists()
                and (netns.OWNERS_DIR / n).read_text().strip() == pid]

    assert runtime()["processes"] >= 2
    done = cleanup(target, say=lambda _: None)
    assert done["pending"] == [], done["pending"]
    left = wait_for(runtime, lambda ecs: ecs["processes"] == 0 and ecs["tasks_running"] == 0)
    assert left["processes"] == 0 and left["tasks_running"] == 0, left
    assert wait_for(namespaces, lambda names: not names) == []  # each task's namespace went with it
