"""Lab 07 (ElastiCache): network, RBAC, the Valkey replication group, cache-aside, sessions, failover, Memcached."""
from __future__ import annotations

import json

from labkit import cacheload
from labkit.target import Target

from . import api
from .aws import absent, admits_only
from .core import Outcome, Status, check, failed, passed

DOCS = "labs/07-elasticache.md"
PORT = 6379
ENGINE = "valkey"
CURRENT_MAJOR = 8  # ElastiCache's current Valkey major version (7.2 was the first; 8.x is current)
MIN_NODES_FOR_FAILOVER = 2
APP_USER = "orders-app"
DEFAULT_USER = "default"
MAX_TABLE_SHARE = 0.05  # at most 5% of the provided load may reach the table
MAX_SESSION_TTL_S = 24 * 3600
CACHE_SETTINGS = ("CACHE_HOST", "CACHE_PORT", "CACHE_SECRET", "ORDER_TTL_SECONDS", "SESSION_TTL_SECONDS", "CACHE_MODE")
LIVE_NOTE = ("graded on the local AWS, where the grader may invoke your function and reach the cache; on a live "
             "account the cache is inside the VPC and the grader only reads")


# -- names and lookups ----------------------------------------------------------------

def group_id(t: Target) -> str:
    return t.name("cache")


def service_group_name(t: Target) -> str:
    return t.name("orders-svc")


def user_group_id(t: Target) -> str:
    return t.name("cache-users")


def secret_name(t: Target) -> str:
    return t.name("cache-orders")


def function_name(t: Target) -> str:
    return t.name("orders")


def memcached_id(t: Target) -> str:
    return t.name("mc")


def _group(t: Target) -> dict | None:
    def look():
        found = absent(lambda: t.client("elasticache").describe_replication_groups(ReplicationGroupId=group_id(t)),
                       "ReplicationGroupNotFoundFault")
        return found["ReplicationGroups"][0] if found else None

    return t.memo("l07.group", look)


def _no_group(t: Target) -> Outcome:
    return failed(f"There is no replication group {group_id(t)}; create it in step 3.")


def _members(t: Target) -> list[dict]:
    group = _group(t)
    if group is None:
        return []

    def look():
        ec = t.client("elasticache")
        return [ec.describe_cache_clusters(CacheClusterId=c, ShowCacheNodeInfo=True)["CacheClusters"][0]
                for c in group.get("MemberClusters", [])]

    return t.memo("l07.members", look)


def _vpc(t: Target) -> str | None:
    vpcs = t.client("ec2").describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [t.name("data")]}])["Vpcs"]
    return vpcs[0]["VpcId"] if vpcs else None


def _security_group(t: Target, name: str) -> dict | None:
    def look():
        vpc = _vpc(t)
        filters = [{"Name": "group-name", "Values": [name]}] + ([{"Name": "vpc-id", "Values": [vpc]}] if vpc else [])
        found = t.client("ec2").describe_security_groups(Filters=filters)["SecurityGroups"]
        return found[0] if found else None

    return t.memo(f"l07.sg.{name}", look)


def _private_subnets(t: Target) -> list[str]:
    ec2 = t.client("ec2")
    found = []
    for n in (1, 2):
        subnets = ec2.describe_subnets(Filters=[{"Name": "tag:Name", "Values": [t.name("data", f"private-{n}")]}])
        found += [s["SubnetId"] for s in subnets["Subnets"]]
    return found


def _secret(t: Target) -> dict | None:
    found = absent(lambda: t.client("secretsmanager").get_secret_value(SecretId=secret_name(t)),
                   "ResourceNotFoundException")
    try:
        return json.loads(found["SecretString"]) if found else None
    except (KeyError, ValueError):
        return None


def _function(t: Target) -> dict | None:
    return t.memo("l07.fn", lambda: absent(
        lambda: t.client("lambda").get_function_configuration(FunctionName=function_name(t)),
        "ResourceNotFoundException"))


def _local_only(t: Target) -> Outcome | None:
    return Outcome(Status.SKIP, f"This behaviour is {LIVE_NOTE}.") if t.is_live else None


def _connect(t: Target, endpoint: dict, tls: bool, **login):
    import valkey

    from labkit import config
    from labkit.localaws import courseca

    extra = {"ssl": True, "ssl_ca_certs": str(courseca.ca_file(config.state_dir()))} if tls else {}
    return valkey.Valkey(host=endpoint["Address"], port=endpoint["Port"], socket_timeout=5, socket_connect_timeout=5,
                         decode_responses=True, **extra, **login)


# -- step 1: network --------------------------------------------------------------------

@check("L07.01", "The cache's security group admits TCP 6379 from the service's security group only", step=1, points=2,
       hint="authorize_security_group_ingress on <prefix>-cache with IpProtocol tcp, port 6379 and UserIdGroupPairs "
            "naming <prefix>-orders-svc; no CIDR ranges, no other ports.",
       docs=f"{DOCS}#network-placement")
def cache_security_group(t: Target):
    service = _security_group(t, service_group_name(t))
    cache = _security_group(t, group_id(t))
    if service is None or cache is None:
        missing = [n for n, g in ((service_group_name(t), service), (group_id(t), cache)) if g is None]
        return failed(f"There is no security group {' or '.join(missing)} in VPC {t.name('data')}; create it in step 1.")
    return admits_only(cache, group_id(t), service, service_group_name(t), PORT, "the cache")


@check("L07.02", "The cache subnet group holds lab 04's two private subnets", step=1, points=1,
       hint="create_cache_subnet_group <prefix>-cache with the subnets <prefix>-data-private-1 and -2.",
       docs=f"{DOCS}#network-placement")
def subnet_group(t: Target):
    found = absent(lambda: t.client("elasticache").describe_cache_subnet_groups(CacheSubnetGroupName=group_id(t)),
                   "CacheSubnetGroupNotFoundFault")
    if not found:
        return failed(f"There is no cache subnet group {group_id(t)}; create it in step 1.")
    have = sorted(s["SubnetIdentifier"] for s in found["CacheSubnetGroups"][0].get("Subnets", []))
    wanted = sorted(_private_subnets(t))
    if not wanted:
        return failed(f"VPC {t.name('data')} has no private subnets {t.name('data', 'private-1')} and -2 (lab 04).")
    if have != wanted:
        other = sorted(set(have) - set(wanted))
        lacking = sorted(set(wanted) - set(have))
        return failed(f"Cache subnet group {group_id(t)} holds {', '.join(have) or 'no subnet'}"
                      + (f"; {', '.join(other)} is not one of lab 04's private subnets" if other else "")
                      + (f"; it lacks {', '.join(lacking)} (one node per zone needs both)" if lacking else "") + ".")
    return passed(f"Cache subnet group {group_id(t)} holds the private subnets {', '.join(have)}.")


# -- step 2: access control ---------------------------------------------------------------

@check("L07.03", "User group <prefix>-cache-users: the default user off, the service's user with a password and "
                 "limited keys", step=2, points=2,
       hint="Users: default with access string 'off -@all' and NoPasswordRequired; orders-app with "
            "'on ~order:* ~session:* +@all -@dangerous' and a password; both in the user group.",
       docs=f"{DOCS}#access-control")
def user_group(t: Target):
    ec = t.client("elasticache")
    found = absent(lambda: ec.describe_user_groups(UserGroupId=user_group_id(t)), "UserGroupNotFound",
                   "UserGroupNotFoundFault")
    if not found:
        return failed(f"There is no user group {user_group_id(t)}; create it in step 2.")
    users = {}
    for user_id in found["UserGroups"][0].get("UserIds", []):
        user = absent(lambda u=user_id: ec.describe_users(UserId=u), "UserNotFound", "UserNotFoundFault")
        if user:
            users[user["Users"][0]["UserName"]] = user["Users"][0]
    problems = []
    default = users.get(DEFAULT_USER)
    if default is None or not default.get("AccessString", "").split()[:1] == ["off"]:
        problems.append("its default user is on: any client that does not log in gets its rights (make it 'off -@all')")
    app = users.get(APP_USER)
    if app is None:
        problems.append(f"it holds no user named {APP_USER}")
    else:
        access = app.get("AccessString", "").split()
        if (app.get("Authentication") or {}).get("Type") != "password":
            problems.append(f"user {APP_USER} needs no password")
        if "on" not in access:
            problems.append(f"user {APP_USER} is off")
        if "~*" in access or "allkeys" in access:
            problems.append(f"user {APP_USER} reaches every key (~*); limit it to ~order:* ~session:*")
        if "+@dangerous" in access or ("-@dangerous" not in access and "+@all" in access):
            problems.append(f"user {APP_USER} may run dangerous commands (FLUSHALL, CONFIG, ...); add -@dangerous")
    if problems:
        return failed(f"User group {user_group_id(t)}: {'; '.join(problems)}.")
    return passed(f"User group {user_group_id(t)} holds default (off) and {APP_USER} (a password, keys order:* and "
                  "session:*).")


# -- step 3: the replication group -----------------------------------------------------------

@check("L07.04", "The replication group runs Valkey at a current version", step=3, points=1,
       hint="Engine='valkey', EngineVersion='8.1'.", docs=f"{DOCS}#replication-and-failover")
def engine_version(t: Target):
    group = _group(t)
    if group is None:
        return _no_group(t)
    engine = group.get("Engine")
    if engine != ENGINE:
        return failed(f"Replication group {group_id(t)} runs {engine}; use {ENGINE} (the open-source successor of "
                      "Redis OSS, and cheaper on ElastiCache).")
    versions = {m.get("EngineVersion") for m in _members(t)}
    old = sorted(v for v in versions if not v or int(str(v).split(".")[0]) < CURRENT_MAJOR)
    if old or not versions:
        return failed(f"Replication group {group_id(t)} runs Valkey {', '.join(map(str, old or ['unknown']))}; "
                      f"use a current version ({CURRENT_MAJOR}.x).")
    return passed(f"Replication group {group_id(t)} runs Valkey {', '.join(sorted(versions))}.")


@check("L07.05", "Multi-AZ with automatic failover, on at least two nodes", step=3, points=2,
       hint="NumCacheClusters=2, AutomaticFailoverEnabled=True, MultiAZEnabled=True: failover needs a replica to "
            "promote.", docs=f"{DOCS}#replication-and-failover")
def failover_ready(t: Target):
    group = _group(t)
    if group is None:
        return _no_group(t)
    nodes = len(group.get("MemberClusters", []))
    problems = []
    if nodes < MIN_NODES_FOR_FAILOVER:
        problems.append(f"it has {nodes} node, and failover needs at least {MIN_NODES_FOR_FAILOVER} (a replica to promote)")
    if group.get("AutomaticFailover") != "enabled":
        problems.append("automatic failover is off")
    if group.get("MultiAZ") != "enabled":
        problems.append("Multi-AZ is off")
    if problems:
        return failed(f"Replication group {group_id(t)}: {'; '.join(problems)}.")
    return passed(f"Replication group {group_id(t)} has {nodes} nodes, Multi-AZ and automatic failover.")


@check("L07.06", "Encrypted at rest and in transit, with access control over TLS", step=3, points=2,
       hint="AtRestEncryptionEnabled=True, TransitEncryptionEnabled=True and UserGroupIds=[<prefix>-cache-users]; "
            "AWS refuses an AUTH token or RBAC without in-transit encryption.",
       docs=f"{DOCS}#replication-and-failover")
def encryption(t: Target):
    group = _group(t)
    if group is None:
        return _no_group(t)
    problems = []
    access = group.get("UserGroupIds") or group.get("AuthTokenEnabled")
    if not group.get("TransitEncryptionEnabled"):
        problems.append("in-transit encryption is off" + (", and AWS refuses access control without it (a password "
                                                          "sent in clear text protects nothing)" if access else ""))
    if not group.get("AtRestEncryptionEnabled"):
        problems.append("encryption at rest is off")
    if not access:
        problems.append("it has no access control (neither a user group nor an AUTH token): anyone who reaches it "
                        "reads everything")
    if problems:
        return failed(f"Replication group {group_id(t)}: {'; '.join(problems)}; both encryptions are set at creation, "
                      "so create it again.")
    how = f"user group {', '.join(group['UserGroupIds'])}" if group.get("UserGroupIds") else "an AUTH token"
    return passed(f"Replication group {group_id(t)} is encrypted at rest and in transit, with {how}.")


@check("L07.07", "The nodes sit in the cache subnet group, behind the cache's security group only", step=3, points=1,
       hint="CacheSubnetGroupName=<prefix>-cache and SecurityGroupIds=[the id of <prefix>-cache].",
       docs=f"{DOCS}#network-placement")
def placement(t: Target):
    if _group(t) is None:
        return _no_group(t)
    cache = _security_group(t, group_id(t))
    wanted = [cache["GroupId"]] if cache else []
    for member in _members(t):
        groups = sorted(g.get("SecurityGroupId") for g in member.get("SecurityGroups", []))
        if member.get("CacheSubnetGroupName") != group_id(t):
            return failed(f"Node {member['CacheClusterId']} is in subnet group {member.get('CacheSubnetGroupName')} "
                          f"(the default one puts it in the default VPC), not {group_id(t)}.")
        if groups != wanted:
            return failed(f"Node {member['CacheClusterId']} is behind security groups {', '.join(groups) or 'none'}, "
                          f"not only {group_id(t)} ({', '.join(wanted) or 'missing'}).")
    return passed(f"Every node of {group_id(t)} is in subnet group {group_id(t)}, behind security group {group_id(t)}.")


@check("L07.08", "The primary endpoint refuses a client without credentials and serves the service's user", step=3,
       points=2, hint="The user group must switch default off and hold orders-app with the password kept in the "
                      "secret <prefix>-cache-orders.", docs=f"{DOCS}#access-control")
def endpoint_login(t: Target):
    skip = _local_only(t)
    if skip:
        return skip
    import valkey

    group = _group(t)
    if group is None:
        return _no_group(t)
    endpoint = group["NodeGroups"][0].get("PrimaryEndpoint") or {}
    login = _secret(t)
    if not login or "password" not in login:
        return failed(f"Secret {secret_name(t)} does not hold {{\"username\", \"password\"}}; create it in step 2.")
    tls = bool(group.get("TransitEncryptionEnabled"))
    where = f"{group_id(t)}'s primary endpoint {endpoint.get('Address')}:{endpoint.get('Port')}"
    try:
        answer = _connect(t, endpoint, tls).get("order:check")
        return failed(f"{where} answered a client without credentials ({answer!r}); switch the default user off.")
    except valkey.exceptions.AuthenticationError:
        pass
    except valkey.exceptions.NoPermissionError:
        pass
    except valkey.exceptions.ConnectionError as exc:
        return failed(f"{where} could not be reached: {exc}.")
    try:
        _connect(t, endpoint, tls, username=login.get("username"), password=login["password"]).ping()
    except valkey.exceptions.ValkeyError as exc:
        return failed(f"{where} refused user {login.get('username')} with the secret's password: {exc}.")
    return passed(f"{where} refuses a client without credentials and serves {login.get('username')}"
                  f"{' over TLS' if tls else ''}.")


# -- step 4: the service's cache code ------------------------------------------------------

def _cache_policy_allows(t: Target, secret_arn: str) -> bool:
    iam_client = t.client("iam")
    role = t.name("orders-fn")
    for name in iam_client.list_role_policies(RoleName=role).get("PolicyNames", []):
        document = iam_client.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        statements = document.get("Statement", [])
        for statement in statements if isinstance(statements, list) else [statements]:
            actions = statement.get("Action", [])
            actions = [actions] if isinstance(actions, str) else actions
            resources = statement.get("Resource", [])
            resources = [resources] if isinstance(resources, str) else resources
            if statement.get("Effect") == "Allow" and "secretsmanager:GetSecretValue" in actions and (
                    secret_arn in resources):
                return True
    return False


@check("L07.09", "The function is set up for the cache: its settings, the service's security group, its password",
       step=4, points=2,
       hint="Environment CACHE_HOST/CACHE_PORT (the primary endpoint), CACHE_SECRET, the TTLs and CACHE_MODE=on; "
            "VpcConfig with <prefix>-orders-svc; an inline policy allowing secretsmanager:GetSecretValue on the secret.",
       docs=f"{DOCS}#cache-aside")
def function_settings(t: Target):
    fn = _function(t)
    if fn is None:
        return failed(f"There is no function {function_name(t)} (lab 03).")
    group = _group(t)
    if group is None:
        return _no_group(t)
    env = (fn.get("Environment") or {}).get("Variables") or {}
    endpoint = group["NodeGroups"][0].get("PrimaryEndpoint") or {}
    problems = [f"{name} is not set" for name in CACHE_SETTINGS if name not in env]
    if not problems:
        if (env["CACHE_HOST"], env["CACHE_PORT"]) != (endpoint.get("Address"), str(endpoint.get("Port"))):
            problems.append(f"CACHE_HOST:CACHE_PORT is {env['CACHE_HOST']}:{env['CACHE_PORT']}, not the primary "
                            f"endpoint {endpoint.get('Address')}:{endpoint.get('Port')} (a node's own endpoint stops "
                            "taking writes after a failover)")
        if env["CACHE_SECRET"] != secret_name(t):
            problems.append(f"CACHE_SECRET is {env['CACHE_SECRET']!r}, not {secret_name(t)!r}")
        if env["CACHE_MODE"] != "on":
            problems.append(f"CACHE_MODE is {env['CACHE_MODE']!r}: the cache is off")
        for name in ("ORDER_TTL_SECONDS", "SESSION_TTL_SECONDS"):
            if not env[name].isdigit() or int(env[name]) < 1:
                problems.append(f"{name} is {env[name]!r}, not a number of seconds (an entry without a TTL is never "
                                "refreshed)")
    service = _security_group(t, service_group_name(t))
    if service is None or service["GroupId"] not in (fn.get("VpcConfig") or {}).get("SecurityGroupIds", []):
        problems.append(f"it does not run in security group {service_group_name(t)}, the one the cache admits")
    secret = absent(lambda: t.client("secretsmanager").describe_secret(SecretId=secret_name(t)),
                    "ResourceNotFoundException")
    if secret is None:
        problems.append(f"there is no secret {secret_name(t)}")
    elif not _cache_policy_allows(t, secret["ARN"]):
        problems.append(f"role {t.name('orders-fn')} may not read secret {secret_name(t)} "
                        "(secretsmanager:GetSecretValue on its ARN)")
    if problems:
        return failed(f"Function {function_name(t)}: {'; '.join(problems)}.")
    return passed(f"Function {function_name(t)} reads cache {group_id(t)} at its primary endpoint, runs in "
                  f"{service_group_name(t)} and may read secret {secret_name(t)}.")


CHECK_ORDER = {"customerId": "course-grader", "items": [{"sku": "CHECK-07", "quantity": 1}]}


@check("L07.10", "An update is not served stale from the cache", step=4, points=3,
       hint="After update_item in PATCH /orders/{orderId} (and delete_item in DELETE), delete order:<id> from the "
            "cache, so the next GET reads the table again.", docs=f"{DOCS}#cache-aside",
       acts="calls your API: invokes your function to create one order, read it twice, update its status, read it "
            "again and delete it")
def no_stale_read(t: Target):
    skip = _local_only(t)
    if skip:
        return skip
    if _function(t) is None:
        return failed(f"There is no function {function_name(t)} (lab 03).")
    name = function_name(t)
    status, created = api.invoke(t, name, "POST", "/orders", CHECK_ORDER)
    if status != 201 or not isinstance(created, dict) or "orderId" not in created:
        return failed(f"Function {name} answered POST /orders with {status} {json.dumps(created)[:120]}, not 201.")
    oid = created["orderId"]
    try:
        for _ in range(2):  # a miss that fills the cache, then a hit
            status, got = api.invoke(t, name, "GET", "/orders/{orderId}", orderId=oid)
            if status != 200:
                return failed(f"Function {name} answered GET /orders/{oid} with {status} {json.dumps(got)[:120]}.")
        status, updated = api.invoke(t, name, "PATCH", "/orders/{orderId}", {"status": "PAID"}, orderId=oid)
        if status != 200:
            return failed(f"Function {name} answered PATCH /orders/{oid} {{\"status\": \"PAID\"}} with {status} "
                          f"{json.dumps(updated)[:120]}, expected 200 and the updated order.")
        status, got = api.invoke(t, name, "GET", "/orders/{orderId}", orderId=oid)
        if status != 200 or not isinstance(got, dict) or got.get("status") != "PAID":
            seen = got.get("status") if isinstance(got, dict) else got
            return failed(f"After PATCH /orders/{oid} set status PAID, GET answered status {seen!r}: the cache "
                          "served the old version; delete order:<id> after the write.")
    finally:
        api.invoke(t, name, "DELETE", "/orders/{orderId}", orderId=oid)
    return passed(f"Function {name} served order {oid}'s new status PAID right after the update (the check deleted "
                  "its order again).")


@check("L07.11", "A session expires: it is stored with a TTL", step=4, points=2,
       hint="POST /sessions stores session:<id> with ex=SESSION_TTL_SECONDS and answers 201 {sessionId, expiresIn}; "
            "GET /sessions/{sessionId} answers 200 while it lives.", docs=f"{DOCS}#sessions",
       acts="calls your API: invokes your function to create one session and read it, then deletes it from the cache")
def session_expires(t: Target):
    skip = _local_only(t)
    if skip:
        return skip
    if _function(t) is None:
        return failed(f"There is no function {function_name(t)} (lab 03).")
    group = _group(t)
    if group is None:
        return _no_group(t)
    name = function_name(t)
    status, made = api.invoke(t, name, "POST", "/sessions", {"customerId": "course-grader"})
    if status != 201 or not isinstance(made, dict) or not made.get("sessionId"):
        return failed(f"Function {name} answered POST /sessions with {status} {json.dumps(made)[:120]}, expected 201 "
                      "with a sessionId.")
    sid = str(made["sessionId"])
    login = _secret(t) or {}
    client = _connect(t, group["NodeGroups"][0]["PrimaryEndpoint"], bool(group.get("TransitEncryptionEnabled")),
                      username=login.get("username"), password=login.get("password"))
    try:
        status, got = api.invoke(t, name, "GET", "/sessions/{sessionId}", sessionId=sid)
        if status != 200:
            return failed(f"Function {name} answered GET /sessions/{sid} with {status} right after creating it.")
        ttl = client.ttl(f"session:{sid}")
    finally:
        client.delete(f"session:{sid}")
    if ttl == -2:
        return failed(f"Session {sid} is not in the cache as session:{sid}; store it there.")
    if ttl < 0:
        return failed(f"Session session:{sid} has no TTL: it never expires; set it with ex=SESSION_TTL_SECONDS.")
    if ttl > MAX_SESSION_TTL_S:
        return failed(f"Session session:{sid} lives {ttl} s, more than a day; sessions should expire within hours.")
    return passed(f"Session session:{sid} expires in {ttl} s (the check deleted it).")


# -- step 5: the measurement ---------------------------------------------------------------

@check("L07.12", "Under the provided load, the service's reads hit the cache: at most 5% reach the table", step=5,
       points=3, hint="GET /orders/{orderId} reads order:<id> first and the table only on a miss, then stores the "
                      "item with its TTL; seed the orders of labkit.cacheload first.",
       docs=f"{DOCS}#measuring-a-cache",
       acts=f"calls your API: invokes your function with the provided load of {cacheload.READS:,} GET /orders/{{orderId}}; "
            "stores nothing")
def reads_hit_cache(t: Target):
    skip = _local_only(t)
    if skip:
        return skip
    if _function(t) is None:
        return failed(f"There is no function {function_name(t)} (lab 03).")
    name, table = function_name(t), t.name("orders")
    load = cacheload.skewed_reads()
    before = cacheload.table_reads(t, table)
    for order_id in load:
        status, body = api.invoke(t, name, "GET", "/orders/{orderId}", orderId=order_id)
        if status != 200:
            return failed(f"Function {name} answered GET /orders/{order_id} with {status} {json.dumps(body)[:100]}; "
                          "seed the orders of labkit.cacheload.seed_orders() (step 5).")
    reads = cacheload.table_reads(t, table) - before
    share = reads / len(load)
    if share > MAX_TABLE_SHARE:
        return failed(f"{reads} of the load's {len(load)} reads reached table {table} ({share:.0%}); at most "
                      f"{MAX_TABLE_SHARE:.0%} should, with the cache in front of it.")
    return passed(f"{reads} of the load's {len(load)} reads reached table {table} ({share:.1%}); the cache answered "
                  "the rest.")


# -- step 6: failover ------------------------------------------------------------------------

@check("L07.13", "A failover keeps the service answering", step=6, points=2,
       hint="Point CACHE_HOST/CACHE_PORT at the primary endpoint (it follows the primary) and fall back to the table "
            "when a cache call fails.", docs=f"{DOCS}#replication-and-failover",
       acts="calls your API: fails the cache over to its replica (test_failover) and invokes your function three "
            "times with GET /orders/{orderId}; stores nothing")
def failover_keeps_answering(t: Target):
    skip = _local_only(t)
    if skip:
        return skip
    group = _group(t)
    if group is None:
        return _no_group(t)
    if _function(t) is None:
        return failed(f"There is no function {function_name(t)} (lab 03).")
    if group.get("AutomaticFailover") != "enabled":
        return failed(f"Replication group {group_id(t)} has no automatic failover, so it cannot fail over (step 3).")
    name = function_name(t)
    order_id = cacheload.skewed_reads(1)[0]
    before = {m["CacheClusterId"]: m.get("CurrentRole") for m in group["NodeGroups"][0]["NodeGroupMembers"]}
    t.behaviour_client("elasticache", "TestFailover").test_failover(ReplicationGroupId=group_id(t), NodeGroupId="0001")
    after = t.client("elasticache").describe_replication_groups(ReplicationGroupId=group_id(t))["ReplicationGroups"][0]
    roles = {m["CacheClusterId"]: m.get("CurrentRole") for m in after["NodeGroups"][0]["NodeGroupMembers"]}
    promoted = next((c for c, r in roles.items() if r == "primary" and before.get(c) != "primary"), None)
    for attempt in range(3):
        status, body = api.invoke(t, name, "GET", "/orders/{orderId}", orderId=order_id)
        if status != 200:
            return failed(f"After the failover to {promoted}, function {name} answered GET /orders/{order_id} with "
                          f"{status} {json.dumps(body)[:100]} (request {attempt + 1}).")
    return passed(f"Replication group {group_id(t)} failed over to {promoted}, and function {name} kept answering.")


# -- step 7: Memcached --------------------------------------------------------------------------

@check("L07.14", "The Memcached cluster: two nodes across zones, in the cache's subnet and security groups, "
                 "encrypted in transit", step=7, points=1,
       hint="create_cache_cluster <prefix>-mc: Engine memcached, NumCacheNodes=2, AZMode cross-az, "
            "CacheSubnetGroupName and SecurityGroupIds as the replication group's, TransitEncryptionEnabled=True.",
       docs=f"{DOCS}#memcached")
def memcached(t: Target):
    found = absent(lambda: t.client("elasticache").describe_cache_clusters(CacheClusterId=memcached_id(t)),
                   "CacheClusterNotFound", "CacheClusterNotFoundFault")
    if not found:
        return failed(f"There is no cache cluster {memcached_id(t)}; create it in step 7.")
    mc = found["CacheClusters"][0]
    problems = []
    if mc.get("Engine") != "memcached":
        problems.append(f"its engine is {mc.get('Engine')}, not memcached")
    if int(mc.get("NumCacheNodes") or 0) < 2:
        problems.append(f"it has {mc.get('NumCacheNodes')} node: Memcached does not replicate, so spread keys over two "
                        "nodes in two zones")
    if mc.get("CacheSubnetGroupName") != group_id(t):
        problems.append(f"it is in subnet group {mc.get('CacheSubnetGroupName')}, not {group_id(t)}")
    cache = _security_group(t, group_id(t))
    groups = sorted(g.get("SecurityGroupId") for g in mc.get("SecurityGroups", []))
    if not cache or groups != [cache["GroupId"]]:
        problems.append(f"it is behind {', '.join(groups) or 'no security group'}, not only {group_id(t)}")
    if not mc.get("TransitEncryptionEnabled"):
        problems.append("in-transit encryption is off")
    if problems:
        return failed(f"Cache cluster {memcached_id(t)}: {'; '.join(problems)}.")
    return passed(f"Cache cluster {memcached_id(t)} runs Memcached on {mc['NumCacheNodes']} nodes, in {group_id(t)}'s "
                  "subnet and security groups, encrypted in transit.")
