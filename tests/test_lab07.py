"""Lab 07 checks: each passes on the solution's state and fails on states wrong in one way.

Configuration rows run on in-process moto (``aws``). The behaviour checks
(L07.08, L07.10-L07.13) reach the cache's engines and invoke the deployed
function, so they run on the real local AWS (``local``), which starts a Valkey
per node and runs the function's code.
"""
from __future__ import annotations

import pytest

import checks
from checks.core import Status
from labkit.cacheload import READS

from .cases import Case, assert_whole_lab, covered, params, run_case
from .states_lab07 import INVALIDATE, SESSION_TTL, build_lab07, handler_with

PASS, FAIL, SKIP = Status.PASS, Status.FAIL, Status.SKIP
BEHAVIOUR = {"L07.08", "L07.10", "L07.11", "L07.12", "L07.13"}
OPEN = [{"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
ALL_PORTS = [{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "{service}"}]}]


@pytest.fixture(autouse=True)
def _no_default_amis(request, monkeypatch):
    """In-process moto builds ~1,300 AMIs for every fresh EC2 backend; lab 07 uses none."""
    if "aws" in request.fixturenames:
        monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


CASES = [
    Case("L07.01", "solution", PASS, ("Security group ada-cache admits TCP 6379 from ada-orders-svc only",)),
    Case("L07.01", "open-to-the-world", FAIL, ("admits 0.0.0.0/0 on port 6379",), build={"cache_rules": OPEN}),
    Case("L07.01", "all-ports", FAIL, ("admits the service on all ports, not only TCP 6379",),
         build={"cache_rules": ALL_PORTS}),
    Case("L07.01", "prefix-list", FAIL, ("admits prefix list pl-0123456789abcdef0 on port 6379",),
         build={"cache_rules": [{"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379,
                                 "PrefixListIds": [{"PrefixListId": "pl-0123456789abcdef0"}]}]}),
    Case("L07.01", "no-rule", FAIL, ("does not admit TCP 6379 from ada-orders-svc",), build={"cache_rules": []}),
    Case("L07.02", "solution", PASS, ("Cache subnet group ada-cache holds the private subnets",)),
    Case("L07.02", "one-subnet", FAIL, ("(one node per zone needs both)",), build={"subnets": "one"}),
    Case("L07.02", "missing", FAIL, ("There is no cache subnet group ada-cache",), build={"subnets": "none"}),
    Case("L07.03", "solution", PASS, ("holds default (off) and orders-app",)),
    Case("L07.03", "default-on", FAIL, ("its default user is on",), build={"default_access": "on ~* +@all"}),
    Case("L07.03", "every-key", FAIL, ("reaches every key (~*)",), build={"app_access": "on ~* +@all -@dangerous"}),
    Case("L07.03", "dangerous", FAIL, ("may run dangerous commands",), build={"app_access": "on ~order:* +@all"}),
    Case("L07.03", "no-password", FAIL, ("user orders-app needs no password",), build={"app_password": False}),
    Case("L07.04", "solution", PASS, ("Replication group ada-cache runs Valkey 8.1",)),
    Case("L07.04", "redis", FAIL, ("runs redis; use valkey",), build={"engine": "redis", "version": "7.1"}),
    Case("L07.04", "old-valkey", FAIL, ("runs Valkey 7.2; use a current version (8.x)",), build={"version": "7.2"}),
    Case("L07.05", "solution", PASS, ("has 2 nodes, Multi-AZ and automatic failover",)),
    Case("L07.05", "one-node", FAIL, ("it has 1 node, and failover needs at least 2",), build={"nodes": 1}),
    Case("L07.05", "no-failover", FAIL, ("automatic failover is off; Multi-AZ is off",),
         build={"failover": False, "multi_az": False}),
    Case("L07.06", "solution", PASS, ("encrypted at rest and in transit, with user group ada-cache-users",)),
    Case("L07.06", "token", PASS, ("with an AUTH token",), build={"access": "token"}),
    Case("L07.06", "auth-without-tls", FAIL, ("AWS refuses access control without it",),
         build={"transit": False, "access": "token"}),
    Case("L07.06", "not-at-rest", FAIL, ("encryption at rest is off",), build={"at_rest": False}),
    Case("L07.06", "no-access-control", FAIL, ("it has no access control",), build={"access": None}),
    Case("L07.07", "solution", PASS, ("Every node of ada-cache is in subnet group ada-cache",)),
    Case("L07.07", "default-subnet-group", FAIL, ("is in subnet group None",), build={"group_subnet_group": False}),
    Case("L07.07", "service-group", FAIL, ("not only ada-cache",), build={"group_security": "service"}),
    Case("L07.09", "solution", PASS, ("Function ada-orders reads cache ada-cache at its primary endpoint",)),
    Case("L07.09", "node-endpoint", FAIL, ("not the primary endpoint",), build={"env": {"CACHE_PORT": "1"}}),
    Case("L07.09", "cache-off", FAIL, ("CACHE_MODE is 'off': the cache is off",), build={"env": {"CACHE_MODE": "off"}}),
    Case("L07.09", "no-ttl", FAIL, ("ORDER_TTL_SECONDS is not set",), build={"env": {"ORDER_TTL_SECONDS": None}}),
    Case("L07.09", "outside-the-service-group", FAIL, ("it does not run in security group ada-orders-svc",),
         build={"in_service_group": False}),
    Case("L07.09", "cannot-read-the-secret", FAIL, ("may not read secret ada-cache-orders",),
         build={"secret_policy": False}),
    Case("L07.14", "solution", PASS, ("runs Memcached on 2 nodes",)),
    Case("L07.14", "one-node", FAIL, ("it has 1 node: Memcached does not replicate",),
         build={"memcached": {"NumCacheNodes": 1, "AZMode": None}}),
    Case("L07.14", "plain", FAIL, ("in-transit encryption is off",),
         build={"memcached": {"TransitEncryptionEnabled": False}}),
    # Behaviour, on the real local AWS: real engines, the function's code run.
    Case("L07.08", "solution", PASS, ("refuses a client without credentials and serves orders-app over TLS",)),
    Case("L07.08", "default-on", FAIL, ("answered a client without credentials",),
         build={"default_access": "on ~* +@all"}),
    Case("L07.08", "live", SKIP, ("graded on the local AWS",), live=True),
    Case("L07.10", "solution", PASS, ("new status PAID right after the update",)),
    Case("L07.10", "no-invalidation", FAIL, ("the cache served the old version",),
         build={"handler": handler_with((INVALIDATE, ""))}),
    Case("L07.11", "solution", PASS, ("expires in 1", "s (the check deleted it)")),
    Case("L07.11", "no-ttl", FAIL, ("has no TTL: it never expires",),
         build={"handler": handler_with((SESSION_TTL, SESSION_TTL.replace(", ex=SESSION_TTL", "")))}),
    Case("L07.12", "solution", PASS, (f"of the load's {READS} reads reached table ada-orders",), build={"seed": True}),
    Case("L07.12", "cache-off", FAIL, (f"{READS} of the load's {READS} reads reached table ada-orders (100%)",),
         build={"seed": True, "env": {"CACHE_MODE": "off"}}),
    Case("L07.12", "not-seeded", FAIL, ("seed the orders of labkit.cacheload.seed_orders()",)),
    Case("L07.13", "solution", PASS, ("failed over to ada-cache-002, and function ada-orders kept answering",),
         build={"seed": True}),
    Case("L07.13", "no-failover", FAIL, ("has no automatic failover, so it cannot fail over",),
         build={"failover": False, "multi_az": False}),
]

PASSING = covered(CASES, PASS)
FAILING = covered(CASES, FAIL)


@pytest.mark.parametrize("case", params([c for c in CASES if c.check not in BEHAVIOUR]))
def test_check(aws, case, monkeypatch):
    run_case(case, aws, build_lab07, monkeypatch)


@pytest.mark.server
@pytest.mark.parametrize("case", params([c for c in CASES if c.check in BEHAVIOUR]))
def test_behaviour(local_target, case, monkeypatch):
    run_case(case, local_target, build_lab07, monkeypatch)


@pytest.mark.server
def test_whole_lab_locally(local_target):
    assert_whole_lab(local_target, "07", lambda t: build_lab07(t, seed=True), skipped=set())


def test_configuration_checks_pass_on_the_solution_state(aws):
    build_lab07(aws)
    report = checks.grade([checks.REGISTRY[i] for i in sorted(checks.REGISTRY)
                           if i.startswith("L07.") and i not in BEHAVIOUR], aws)
    assert {r.status for r in report.results} == {PASS}, report


def test_cleanup_removes_everything_lab07_made(aws):
    from labkit.cleanup import cleanup

    build_lab07(aws)
    done = cleanup(aws, say=lambda _: None)
    assert done["pending"] == []
    ec = aws.client("elasticache")
    assert ec.describe_replication_groups()["ReplicationGroups"] == []
    assert ec.describe_cache_clusters()["CacheClusters"] == []
    assert ec.describe_user_groups()["UserGroups"] == []
    assert [u["UserId"] for u in ec.describe_users()["Users"] if u["UserId"].startswith("ada-")] == []
    assert ec.describe_cache_subnet_groups()["CacheSubnetGroups"] == []
    assert aws.client("secretsmanager").list_secrets()["SecretList"] == []
    groups = aws.client("ec2").describe_security_groups()["SecurityGroups"]
    assert not [g for g in groups if g["GroupName"].startswith("ada-")]
    assert cleanup(aws, say=lambda _: None)["found"] == []  # a second run finds nothing
