"""Lab 08 checks: each passes on the solution's state and fails on states wrong in one way.

Configuration rows run on in-process moto (``aws``). The behaviour checks
(L08.08-L08.10, L08.12, L08.14-L08.16) connect to the PostgreSQL the local AWS
runs per DB instance and invoke the deployed function, so they run on the real
local AWS (``local``).
"""
from __future__ import annotations

import sys

import pytest

import checks
from checks.core import Status

from .cases import Case, assert_whole_lab, covered, params, run_case
from .conftest import grade
from .states_lab08 import INDEX, RETRY, STOCK_CHECK, TRANSACTION, build_lab08, handler_with, schema_with
from .test_policy import missing_from_policy, recording_calls

PASS, FAIL, SKIP = Status.PASS, Status.FAIL, Status.SKIP
BEHAVIOUR = {"L08.08", "L08.09", "L08.10", "L08.12", "L08.14", "L08.15", "L08.16"}
OPEN = [{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
ALL_PORTS = [{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "{service}"}]}]


@pytest.fixture(autouse=True)
def _no_default_amis(request, monkeypatch):
    """In-process moto builds ~1,300 AMIs for every fresh EC2 backend; lab 08 uses none."""
    if "aws" in request.fixturenames:
        monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


CASES = [
    Case("L08.01", "solution", PASS, ("Security group ada-db admits TCP 5432 from ada-catalog-svc only",)),
    Case("L08.01", "open-to-the-world", FAIL, ("admits 0.0.0.0/0 on port 5432",), build={"db_rules": OPEN}),
    Case("L08.01", "all-ports", FAIL, ("admits the service on all ports, not only TCP 5432",),
         build={"db_rules": ALL_PORTS}),
    Case("L08.01", "no-rule", FAIL, ("does not admit TCP 5432 from ada-catalog-svc",), build={"db_rules": []}),
    Case("L08.02", "solution", PASS, ("DB subnet group ada-db holds the private subnets",)),
    Case("L08.02", "one-zone", FAIL, ("spans 1 zone", "at least 2 zones"), build={"subnets": "one"}),
    Case("L08.03", "solution", PASS, ("DB instance ada-db runs PostgreSQL 18.1",)),
    Case("L08.03", "old-major", FAIL, ("runs PostgreSQL 13.20; use a current major version (17 or 18)",),
         build={"engine_version": "13.20"}),
    Case("L08.04", "solution", PASS, ("is Multi-AZ, encrypted and not publicly accessible",)),
    Case("L08.04", "single-az", FAIL, ("it is not Multi-AZ",), build={"multi_az": False}),
    Case("L08.04", "unencrypted", FAIL, ("its storage is not encrypted",), build={"encrypted": False}),
    Case("L08.04", "public", FAIL, ("it is publicly accessible",), build={"public": True}),
    Case("L08.05", "solution", PASS, ("is in subnet group ada-db, behind security group ada-db",)),
    Case("L08.05", "default-subnet-group", FAIL, ("is in subnet group default",), build={"in_subnet_group": False}),
    Case("L08.05", "service-group", FAIL, ("not only ada-db",), build={"db_security": "service"}),
    Case("L08.06", "solution", PASS, ("keeps backups for 7 days",)),
    Case("L08.06", "unprotected", FAIL, ("deletion protection is off",), build={"deletion_protection": False}),
    Case("L08.06", "no-backups", FAIL, ("backup retention is 0 days",), build={"retention": 0}),
    Case("L08.07", "solution", PASS, ("master password is in secret", "managed by RDS")),
    Case("L08.07", "typed-password", FAIL, ("master password is not managed",), build={"managed": False}),
    Case("L08.11", "solution", PASS, ("is an encrypted, private read replica of ada-db",)),
    Case("L08.11", "no-replica", FAIL, ("There is no DB instance ada-db-ro",), build={"replica": "none"}),
    Case("L08.11", "a-copy", FAIL, ("is not a read replica of ada-db",), build={"replica": "copy"}),
    Case("L08.11", "public-replica", FAIL, ("it is publicly accessible",), build={"replica_public": True}),
    Case("L08.13", "solution", PASS, ("Function ada-catalog finds ada-db, ada-db-ro and the master secret",)),
    Case("L08.13", "writes-to-the-replica", FAIL, ("DB_HOST:DB_PORT is",), build={"env": {"DB_PORT": "1"}}),
    Case("L08.13", "no-reader", FAIL, ("DB_READER_HOST is not set",), build={"env": {"DB_READER_HOST": None}}),
    Case("L08.13", "password-in-environment", FAIL, ("its environment holds the database password",),
         build={"password_in_env": True}),
    Case("L08.13", "outside-the-service-group", FAIL, ("it does not run in security group ada-catalog-svc",),
         build={"in_service_group": False}),
    Case("L08.13", "cannot-read-the-secret", FAIL, ("role ada-catalog-fn may not read ada-db's master secret",),
         build={"secret_policy": False}),
    # Behaviour, on the real local AWS: a PostgreSQL per instance, the function's code run.
    Case("L08.08", "solution", PASS, ("refuses a wrong password and serves catalog_admin with the secret's password",)),
    Case("L08.08", "typed-password", FAIL, ("has no managed master secret",), build={"managed": False}),
    Case("L08.08", "live", SKIP, ("graded on the local AWS",), live=True),
    Case("L08.09", "solution", PASS, ("refuses negative stock, a zero price, unknown products",)),
    Case("L08.09", "stock-unchecked", FAIL, ("stock can be set below 0",),
         build={"schema": schema_with((STOCK_CHECK, "    stock       integer NOT NULL\n"))}),
    Case("L08.09", "no-tables", FAIL, ("has no tables products and reservations",), build={"schema": "SELECT 1", "stock": False}),
    Case("L08.10", "solution", PASS, ("using index reservations_order_id",)),
    Case("L08.10", "no-index", FAIL, ("no index condition on order_id",), build={"schema": schema_with((INDEX, ""))}),
    Case("L08.12", "solution", PASS, ("DB instance ada-db-ro serves ada-db's 12 products and refuses writes",)),
    Case("L08.12", "a-copy", FAIL, ("is not replaying ada-db's log",), build={"replica": "copy"}),
    Case("L08.14", "solution", PASS, ("committed a reservation of SKU-001 on ada-db",)),
    Case("L08.14", "no-secret-for-the-role", FAIL, ("answered POST /reservations (1 x SKU-001) with",),
         build={"secret_policy": False}),
    Case("L08.15", "solution", PASS, ("refused 1 x SKU-001 with", "whole (409), nothing kept")),
    Case("L08.15", "no-transaction", FAIL, ("run all the items in one transaction",),
         build={"handler": handler_with((TRANSACTION, "        if True:  # no transaction\n"))}),
    Case("L08.16", "solution", PASS, ("failed over at the same endpoint with its 12 products",)),
    Case("L08.16", "single-az", FAIL, ("is not Multi-AZ: it has no standby to fail over to",),
         build={"multi_az": False}),
    Case("L08.16", "no-reconnect", FAIL, ("open a new connection when the kept one breaks",),
         build={"handler": handler_with((RETRY, "    for attempt in (2,):\n"))}),
]

PASSING = covered(CASES, PASS)
FAILING = covered(CASES, FAIL)

engines = pytest.mark.skipif(sys.platform != "linux", reason="the engine platform is tested on Linux")


@pytest.mark.parametrize("case", params([c for c in CASES if c.check not in BEHAVIOUR]))
def test_check(aws, case, monkeypatch):
    run_case(case, aws, build_lab08, monkeypatch)


@engines
@pytest.mark.server
@pytest.mark.parametrize("case", params([c for c in CASES if c.check in BEHAVIOUR]))
def test_behaviour(local_target, case, monkeypatch):
    run_case(case, local_target, build_lab08, monkeypatch)


@engines
@pytest.mark.server
def test_whole_lab_locally(local_target):
    assert_whole_lab(local_target, "08", build_lab08, skipped=set())


def test_configuration_checks_pass_on_the_solution_state(aws):
    build_lab08(aws)
    report = checks.grade([checks.REGISTRY[i] for i in sorted(checks.REGISTRY)
                           if i.startswith("L08.") and i not in BEHAVIOUR], aws)
    assert {r.status for r in report.results} == {PASS}, report


def test_cleanup_removes_everything_lab08_made(aws):
    from labkit.cleanup import cleanup

    build_lab08(aws)
    done = cleanup(aws, say=lambda _: None)
    assert done["pending"] == []
    rds = aws.client("rds")
    assert rds.describe_db_instances()["DBInstances"] == []
    assert rds.describe_db_subnet_groups()["DBSubnetGroups"] == []
    assert [s["Name"] for s in aws.client("secretsmanager").list_secrets()["SecretList"]] == []
    assert aws.client("lambda").list_functions()["Functions"] == []
    assert not [r for r in aws.client("iam").list_roles()["Roles"] if r["RoleName"].startswith("ada-")]
    groups = aws.client("ec2").describe_security_groups()["SecurityGroups"]
    assert not [g for g in groups if g["GroupName"].startswith("ada-")]
    assert cleanup(aws, say=lambda _: None)["found"] == []  # a second run finds nothing


def test_graded_live_the_checks_read_only_what_the_grader_policy_allows(aws, monkeypatch):
    """Live, the configuration checks read RDS, EC2, IAM and Lambda, never a secret's value; the others SKIP."""
    build_lab08(aws)
    calls = recording_calls(monkeypatch)
    view = aws.for_grading()
    view.mode = "live"
    results = {i: grade(view, i) for i in sorted(checks.REGISTRY) if i.startswith("L08.")}
    assert {i for i, r in results.items() if r.status is SKIP} == BEHAVIOUR
    assert {r.status for i, r in results.items() if i not in BEHAVIOUR} == {PASS}
    assert ("rds", "DescribeDBInstances") in calls and ("secretsmanager", "GetSecretValue") not in calls
    assert missing_from_policy(calls) == set(), "add to grader-readonly.json"
