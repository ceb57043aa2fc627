"""Lab 06 checks: each passes on the solution's state and fails on states wrong in one way.

Configuration rows run on in-process moto (``aws``) with the local AWS's PrivateLink control plane (acceptance,
connections, notifications, private DNS verification); in-process moto runs no task, so the grader is told the
catalog's running tasks are ``TASK_IPS``. The behaviour rows (L06.12-L06.16) probe from inside the orders VPC,
so they run on the real local AWS over lab 06's solution state (``labkit start 06``, then the solution), each
row changing it in one way.
"""
from __future__ import annotations

import json

import pytest

import checks
from checks import lab06
from checks.core import Status

from .cases import Case, covered, params, run_case
from .states_lab06 import TASK_IPS, build_lab06, dynamodb_policy, s3_policy, solution_state

PASS, FAIL, SKIP = Status.PASS, Status.FAIL, Status.SKIP
BEHAVIOUR = {"L06.12", "L06.13", "L06.14", "L06.15", "L06.16"}
PORT = lab06.SERVICE_PORT
VPC_WIDE = [{"IpProtocol": "tcp", "FromPort": PORT, "ToPort": PORT, "IpRanges": [{"CidrIp": "10.60.0.0/16"}]}]
ALL_PORTS = [{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "{app}"}]}]
EVERYTHING = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}


@pytest.fixture(autouse=True)
def _no_default_amis(request, monkeypatch):
    """In-process moto builds ~1,300 AMIs for every fresh EC2 backend; lab 06 uses none."""
    if "aws" in request.fixturenames:
        monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        monkeypatch.setattr(lab06, "_catalog_addresses", lambda t: list(TASK_IPS))


def _with_statement(doc: dict, statement: dict) -> dict:
    return {**doc, "Statement": doc["Statement"] + [statement]}


def _s3_everywhere(t):
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                    "Resource": "arn:aws:s3:::*/*"},
                                                   {"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket",
                                                    "Resource": f"arn:aws:s3:::{lab06.bucket_name(t)}"}]}


def _policies(s3=None, dynamodb=None):
    """A mutate hook: the gateway endpoints get these policies (functions of the target)."""
    def mutate(t, state):
        ec2 = t.client("ec2")
        for kind, make in (("s3", s3), ("dynamodb", dynamodb)):
            if make:
                ec2.modify_vpc_endpoint(VpcEndpointId=state[f"{kind}_endpoint"], PolicyDocument=json.dumps(make(t)))
    return mutate


CASES = [
    Case("L06.01", "solution", PASS, ("is an internal NLB in ada-shop's private subnets",)),
    Case("L06.01", "internet-facing", FAIL, ("it is internet-facing",), build={"scheme": "internet-facing"}),
    Case("L06.01", "one-subnet", FAIL, ("not lab 05's private subnets",), build={"nlb_subnets": "one"}),
    Case("L06.01", "application", FAIL, ("an endpoint service needs a network one",),
         build={"nlb_type": "application"}),
    Case("L06.01", "instance-targets", FAIL, ("not ip (Fargate tasks register by address)",),
         build={"target_type": "instance"}),
    Case("L06.02", "solution", PASS, ("holds the 2 running catalog tasks on 8080, all healthy",)),
    Case("L06.02", "a-task-missing", FAIL, (f"it lacks the running task {TASK_IPS[1]} on 8080",),
         build={"targets": TASK_IPS[:1]}),
    Case("L06.02", "a-stranger", FAIL, ("10.50.10.99:8080, which no running catalog task has",),
         build={"targets": TASK_IPS + ("10.50.10.99",)}),
    Case("L06.03", "solution", PASS, ("requires the provider to accept each connection",)),
    Case("L06.03", "auto-accept", FAIL, ("accepts every request by itself",), build={"acceptance": False}),
    Case("L06.04", "solution", PASS, ("allows only {role}",)),
    Case("L06.04", "everyone", FAIL, ("'*' lets every AWS account ask",), build={"principals": ["*"]}),
    Case("L06.04", "whole-account", FAIL, ("lets every principal of account {account} ask",),
         build={"principals": ["{role}", "arn:aws:iam::{account}:root"]}),
    Case("L06.04", "nobody", FAIL, ("allows no principal",), build={"principals": []}),
    Case("L06.05", "solution", PASS, ("has the verified private DNS name catalog.ada.shop.example",)),
    Case("L06.05", "no-name", FAIL, ("has private DNS name None",), build={"dns_name": None}),
    Case("L06.05", "no-txt-record", FAIL, ("not verified: put TXT",), build={"publish_txt": False}),
    Case("L06.06", "solution", PASS, ("reports Connect, Accept, Reject, Delete to ada-catalog-connections",)),
    Case("L06.06", "none", FAIL, ("has no connection notification",), build={"notification": False}),
    Case("L06.06", "only-connect", FAIL, ("it does not report Accept, Reject, Delete",),
         build={"events": ("Connect",)}),
    Case("L06.06", "topic-closed", FAIL, ("does not let vpce.amazonaws.com publish",),
         build={"topic_policy": {"Version": "2012-10-17", "Statement": [
             {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sns:Publish",
              "Resource": "*"}]}}),
    Case("L06.06", "no-queue", FAIL, ("no SQS queue is subscribed",), build={"subscribe": False}),
    Case("L06.07", "solution", PASS, ("has private subnets in 2 zones, DNS support and hostnames",)),
    Case("L06.07", "no-dns-hostnames", FAIL, ("DNS hostnames is off",), build={"dns_hostnames": False}),
    Case("L06.07", "one-zone", FAIL, ("in 1 zone;",), build={"one_zone": True}),
    Case("L06.07", "internet-gateway", FAIL, ("an internet gateway is attached", "sends 0.0.0.0/0"),
         build={"internet_gateway": True}),
    Case("L06.08", "solution", PASS, ("Security group ada-catalog-endpoint admits TCP 8080 from ada-orders-app only",)),
    Case("L06.08", "vpc-wide", FAIL, ("admits 10.60.0.0/16 on port 8080",), build={"endpoint_rules": VPC_WIDE}),
    Case("L06.08", "all-ports", FAIL, ("admits the service on all ports",), build={"endpoint_rules": ALL_PORTS}),
    Case("L06.08", "no-rule", FAIL, ("does not admit TCP 8080 from ada-orders-app",), build={"endpoint_rules": []}),
    Case("L06.09", "solution", PASS, ("is available (the provider accepted it), in 2 zones",)),
    Case("L06.09", "not-accepted", FAIL, ("it is pendingAcceptance",), build={"accept": False, "private_dns": False}),
    Case("L06.09", "one-zone", FAIL, ("it is in 1 zone of the orders subnets",), build={"endpoint_subnets": "one"}),
    Case("L06.09", "no-private-dns", FAIL, ("private DNS is off",), build={"private_dns": False}),
    Case("L06.09", "missing", FAIL, ("has no interface endpoint",), build={"endpoint": False}),
    Case("L06.10", "solution", PASS, ("reaches S3 and DynamoDB through gateway endpoints on route table",)),
    Case("L06.10", "no-dynamodb", FAIL, ("there is no gateway endpoint for DynamoDB",), build={"gateways": ("s3",)}),
    Case("L06.11", "solution", PASS, ("reach only bucket ada-site-123456789012 and the tables ada-orders",)),
    Case("L06.11", "default-policy", FAIL, ("the S3 endpoint's policy allows", "beyond the course's bucket"),
         build={"s3_doc": EVERYTHING}),
    Case("L06.11", "every-bucket", FAIL, ("allows s3:GetObject on", "elsewhere/x"), mutate=_policies(s3=_s3_everywhere)),
    Case("L06.11", "every-table", FAIL, ("the DynamoDB endpoint's policy allows", "beyond the course's tables"),
         build={"dynamodb_doc": EVERYTHING}),
    Case("L06.11", "denied-what-it-needs", FAIL, ("does not allow dynamodb:GetItem on table/ada-orders",),
         mutate=_policies(dynamodb=lambda t: _with_statement(dynamodb_policy(t), {
             "Effect": "Deny", "Principal": "*", "Action": "dynamodb:GetItem",
             "Resource": f"arn:aws:dynamodb:{t.region}:{t.account_id}:table/{t.name('orders')}"}))),
    Case("L06.11", "another-principal-everywhere", FAIL, ("allows s3:GetObject on", "to AWS arn:aws:iam::210987654321:root"),
         mutate=_policies(s3=lambda t: _with_statement(s3_policy(t), {
             "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::210987654321:root"}, "Action": "s3:*",
             "Resource": "*"}))),
    Case("L06.11", "a-deny-takes-the-excess-away", PASS, ("reach only bucket",),
         mutate=_policies(s3=lambda t: _with_statement(_s3_everywhere(t), {
             "Effect": "Deny", "Principal": "*", "Action": "s3:*",
             "NotResource": [f"arn:aws:s3:::{lab06.bucket_name(t)}", f"arn:aws:s3:::{lab06.bucket_name(t)}/*"]}))),
    Case("L06.12", "live", SKIP, ("runs on the local AWS only",), live=True),
    Case("L06.13", "live", SKIP, ("runs on the local AWS only",), live=True),
    Case("L06.14", "live", SKIP, ("runs on the local AWS only",), live=True),
    Case("L06.15", "live", SKIP, ("runs on the local AWS only",), live=True),
    Case("L06.16", "live", SKIP, ("runs on the local AWS only",), live=True),
]


# Behaviour rows: the solution's state on the real local AWS, changed in one way (``mutate``) or with the
# probe's answer stubbed where no state can make it (``prepare``).
def _endpoint_sg_admits_vpc(t, state):
    ec2 = t.client("ec2")
    group = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [lab06.endpoint_group(t)]}])[
        "SecurityGroups"][0]["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=VPC_WIDE)


def _rejected(t, state):
    ec2 = t.client("ec2")
    for s in ec2.describe_vpc_endpoint_service_configurations()["ServiceConfigurations"]:
        ids = [c["VpcEndpointId"] for c in ec2.describe_vpc_endpoint_connections(
            Filters=[{"Name": "service-id", "Values": [s["ServiceId"]]}])["VpcEndpointConnections"]]
        ec2.reject_vpc_endpoint_connections(ServiceId=s["ServiceId"], VpcEndpointIds=ids)


def _auto_accept(t, state):
    ec2 = t.client("ec2")
    for s in ec2.describe_vpc_endpoint_service_configurations()["ServiceConfigurations"]:
        ec2.modify_vpc_endpoint_service_configuration(ServiceId=s["ServiceId"], AcceptanceRequired=False)


def _s3_open(t, state):
    ec2 = t.client("ec2")
    for e in ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-endpoint-type", "Values": ["Gateway"]}])["VpcEndpoints"]:
        if e["ServiceName"].endswith(".s3"):
            ec2.modify_vpc_endpoint(VpcEndpointId=e["VpcEndpointId"], PolicyDocument=json.dumps(EVERYTHING))


def _probe_answers(view, state, monkeypatch):
    """No state of the course's makes the NLB reachable from the orders VPC (that would take peering): the probe
    is told it answered, as it would over such a path."""
    import labkit.vpc

    real = labkit.vpc.probe

    def probe(vpc_id, url, **kw):
        if ".elb." in url:
            return {"outcome": "answered", "status": 200, "body": "{}", "address": "10.50.10.10", "source": "10.60.10.9",
                    "elapsed_ms": 1.0, "mode": "namespaces", "detail": "an HTTP response came back"}
        return real(vpc_id, url, **kw)

    monkeypatch.setattr(labkit.vpc, "probe", probe)


BEHAVIOUR_CASES = [
    Case("L06.12", "solution", PASS, ("answered 200 through",)),
    Case("L06.12", "rejected", FAIL, ("not 200",), mutate=_rejected),
    Case("L06.13", "solution", PASS, ("only the endpoint leads to the catalog",)),
    Case("L06.13", "a-path-to-the-provider", FAIL, ("has a path to the catalog's VPC besides the endpoint",),
         prepare=_probe_answers),
    Case("L06.14", "solution", PASS, ("-orders-app: refused (",)),
    Case("L06.14", "vpc-wide", FAIL, ("lets in more than the orders service",), mutate=_endpoint_sg_admits_vpc),
    Case("L06.15", "solution", PASS, ("was pendingAcceptance and carried nothing",)),
    Case("L06.15", "auto-accept", FAIL, ("not pendingAcceptance",), mutate=_auto_accept),
    Case("L06.16", "solution", PASS, ("answered 403",)),
    Case("L06.16", "open-policy", FAIL, ("lets requests for other buckets through",), mutate=_s3_open),
]

PASSING = covered(CASES + BEHAVIOUR_CASES, PASS)
FAILING = covered(CASES + BEHAVIOUR_CASES, FAIL)


@pytest.mark.parametrize("case", params(CASES))
def test_check(aws, case, monkeypatch):
    run_case(case, aws, build_lab06, monkeypatch)


@pytest.fixture
def solved(local):
    """Lab 06's solution state on the local AWS, for the default learner."""
    from labkit.target import Target

    solution_state()
    return Target("local")


@pytest.mark.server
@pytest.mark.parametrize("case", params(BEHAVIOUR_CASES))
def test_behaviour(solved, case, monkeypatch):
    run_case(case, solved, lambda t: {"prefix": t.prefix}, monkeypatch)


@pytest.mark.server
def test_the_solution_scores_full_marks(solved):
    report = checks.grade(checks.select("06"), solved)
    got = {r.check.id: r.status for r in report.results}
    assert got == {i: PASS for i in got}, report
    assert report.exit_code == 0


def test_configuration_checks_pass_on_the_solution_state(aws):
    build_lab06(aws)
    report = checks.grade([checks.REGISTRY[i] for i in sorted(checks.REGISTRY)
                           if i.startswith("L06.") and i not in BEHAVIOUR], aws)
    assert {r.status for r in report.results} == {PASS}, report


def test_graded_live_the_checks_read_only_what_the_grader_policy_allows(aws, monkeypatch):
    from .test_policy import missing_from_policy, recording_calls

    build_lab06(aws)
    calls = recording_calls(monkeypatch)
    view = aws.for_grading()
    view.mode = "live"
    results = {i: checks.core.run_check(checks.REGISTRY[i], view) for i in sorted(checks.REGISTRY) if i.startswith("L06.")}
    assert {i for i, r in results.items() if r.status is SKIP} == BEHAVIOUR
    assert {r.status for i, r in results.items() if i not in BEHAVIOUR} == {PASS}, results
    assert missing_from_policy(calls) == set(), "add to grader-readonly.json"


def test_cleanup_removes_everything_lab06_made(aws):
    from labkit.cleanup import cleanup

    build_lab06(aws)
    done = cleanup(aws, say=lambda _: None)
    assert done["pending"] == []
    ec2 = aws.client("ec2")
    assert [e for e in ec2.describe_vpc_endpoints()["VpcEndpoints"] if e["State"].lower() != "deleted"] == []
    assert ec2.describe_vpc_endpoint_service_configurations()["ServiceConfigurations"] == []
    assert aws.client("elbv2").describe_load_balancers()["LoadBalancers"] == []
    assert aws.client("sns").list_topics()["Topics"] == []
    assert aws.client("sqs").list_queues().get("QueueUrls", []) == []
    assert aws.client("route53").list_hosted_zones()["HostedZones"] == []
    assert not [v for v in ec2.describe_vpcs()["Vpcs"] if not v.get("IsDefault")]
    assert cleanup(aws, say=lambda _: None)["found"] == []  # a second run finds nothing
