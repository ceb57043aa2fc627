"""The end state of lab 07 (ElastiCache), built with boto3 on a Target.

``build_lab07(t)`` builds what lab 07's checks read, as the solution of
``course/07-elasticache.py`` does, on top of the pieces of labs 03 and 04 it
uses (the orders table, the role and function ``<prefix>-orders``, the VPC
``<prefix>-data`` and its private subnets): the two security groups, the
subnet group, the RBAC users and user group, the secret, the replication
group, the function's new code and settings, the Memcached cluster, and
(``seed``) the provided orders. Every keyword changes one thing; the
returned dict holds the names and ids the tests format their messages with.
"""
from __future__ import annotations

import ast
import functools
import json

from boto3.dynamodb.types import TypeSerializer

from checks import lab07
from labkit import cacheload, lambdas
from labkit.config import REPO_ROOT, work_dir
from labkit.target import Target

DEFAULT = object()  # "as the solution does it"
COURSE_SOURCE = REPO_ROOT / "course" / "07-elasticache.py"
LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
APP_ACCESS = "on ~order:* ~session:* +@all -@dangerous"
DEFAULT_ACCESS = "off -@all"
PASSWORD = "a-32-character-password-for-ada!"
TOKEN = "an-auth-token-of-32-characters!!"
INVALIDATE = '    _cached(lambda: CACHE.delete(f"order:{order_id}"))  # after the write: the next read fetches the new version\n'
SESSION_TTL = 'CACHE.set(f"session:{session_id}", json.dumps(session), ex=SESSION_TTL)'


@functools.cache
def solution_handler() -> str:
    """The handler source lab 07's solution writes (``handler_source`` in the lab source)."""
    for node in ast.walk(ast.parse(COURSE_SOURCE.read_text())):
        if isinstance(node, ast.Assign) and any(getattr(n, "id", None) == "handler_source" for n in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{COURSE_SOURCE.name} assigns no handler_source")


def handler_with(*edits: tuple[str, str]) -> str:
    source = solution_handler()
    for old, new in edits:
        assert old in source, f"the solution handler has no {old!r}"
        source = source.replace(old, new)
    return source


def _network(t: Target) -> tuple[str, list[str]]:
    ec2 = t.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": t.tags("04") + [
        {"Key": "Name", "Value": t.name("data")}]}])["Vpc"]["VpcId"]
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.40.{n}.0/24", AvailabilityZone=zones[n - 1],
                                 TagSpecifications=[{"ResourceType": "subnet", "Tags": t.tags("04") + [
                                     {"Key": "Name", "Value": t.name("data", f"private-{n}")}]}])["Subnet"]["SubnetId"]
               for n in (1, 2)]
    return vpc, subnets


def build_lab07(
    t: Target,
    *,
    cache_rules: list[dict] | None = None,
    subnets: str = "both",
    default_access: str = DEFAULT_ACCESS,
    app_access: str = APP_ACCESS,
    app_password: bool = True,
    engine: str = "valkey",
    version: str = "8.1",
    nodes: int = 2,
    failover: bool = True,
    multi_az: bool = True,
    at_rest: bool = True,
    transit: bool = True,
    access: str = "rbac",
    group_subnet_group: bool = True,
    group_security: str = "cache",
    handler: str | None = None,
    env: dict | None = None,
    in_service_group: bool = True,
    secret_policy: bool = True,
    memcached: dict | None = None,
    seed: bool = False,
) -> dict:
    """Lab 07's end state. ``cache_rules`` replaces the cache group's ingress (``{service}`` and ``{cidr}`` in
    it are filled in); ``subnets`` is "both", "one" or "none"; ``access`` "rbac", "token" or None; ``group_security``
    "cache", "service" or "none"; ``env`` overrides function variables (a None value removes one); ``memcached``
    overrides create_cache_cluster's arguments."""
    ec2, ec, sm, iam, lam = (t.client(s) for s in ("ec2", "elasticache", "secretsmanager", "iam", "lambda"))
    vpc, subnet_ids = _network(t)
    state = dict(group=lab07.group_id(t), function=lab07.function_name(t), secret=lab07.secret_name(t),
                 table=t.name("orders"), users=lab07.user_group_id(t), vpc=vpc, subnets=subnet_ids)

    def group(name):
        return ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc, TagSpecifications=[
            {"ResourceType": "security-group", "Tags": t.tags("07")}])["GroupId"]

    service, cache = group(lab07.service_group_name(t)), group(lab07.group_id(t))
    state.update(service_sg=service, cache_sg=cache)
    rules = cache_rules if cache_rules is not None else [
        {"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379, "UserIdGroupPairs": [{"GroupId": "{service}"}]}]
    if rules:
        filled = json.loads(json.dumps(rules).replace("{service}", service))
        ec2.authorize_security_group_ingress(GroupId=cache, IpPermissions=filled)
    if subnets != "none":
        ec.create_cache_subnet_group(CacheSubnetGroupName=lab07.group_id(t), CacheSubnetGroupDescription="cache",
                                     SubnetIds=subnet_ids if subnets == "both" else subnet_ids[:1], Tags=t.tags("07"))

    sm.create_secret(Name=lab07.secret_name(t), Tags=t.tags("07"),
                     SecretString=json.dumps({"username": lab07.APP_USER, "password": PASSWORD}))
    secret_arn = sm.describe_secret(SecretId=lab07.secret_name(t))["ARN"]
    ec.create_user(UserId=t.name("cache-default"), UserName="default", Engine="valkey", AccessString=default_access,
                   NoPasswordRequired=True, Tags=t.tags("07"))
    ec.create_user(UserId=t.name("cache-orders"), UserName=lab07.APP_USER, Engine="valkey", AccessString=app_access,
                   Tags=t.tags("07"), **({"Passwords": [PASSWORD]} if app_password else {"NoPasswordRequired": True}))
    ec.create_user_group(UserGroupId=lab07.user_group_id(t), Engine="valkey", Tags=t.tags("07"),
                         UserIds=[t.name("cache-default"), t.name("cache-orders")])

    extra = {"UserGroupIds": [lab07.user_group_id(t)]} if access == "rbac" else (
        {"AuthToken": TOKEN} if access == "token" else {})
    if group_subnet_group and subnets != "none":
        extra["CacheSubnetGroupName"] = lab07.group_id(t)
    if group_security != "none":
        extra["SecurityGroupIds"] = [cache if group_security == "cache" else service]
    ec.create_replication_group(
        ReplicationGroupId=lab07.group_id(t), ReplicationGroupDescription="orders cache", Engine=engine,
        EngineVersion=version, CacheNodeType="cache.t4g.micro", NumCacheClusters=nodes,
        AutomaticFailoverEnabled=failover, MultiAZEnabled=multi_az, AtRestEncryptionEnabled=at_rest,
        TransitEncryptionEnabled=transit, Tags=t.tags("07"), **extra)
    primary = ec.describe_replication_groups(ReplicationGroupId=lab07.group_id(t))["ReplicationGroups"][0][
        "NodeGroups"][0]["PrimaryEndpoint"]
    state.update(port=primary["Port"], address=primary["Address"])

    ddb = t.client("dynamodb")
    table_arn = ddb.create_table(TableName=t.name("orders"), BillingMode="PAY_PER_REQUEST",
                                 AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}],
                                 KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
                                 Tags=t.tags("03"))["TableDescription"]["TableArn"]
    role = t.name("orders-fn")
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST),
                               Tags=t.tags("03"))["Role"]["Arn"]
    statements = [{"Effect": "Allow", "Action": ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Scan",
                                                 "dynamodb:DeleteItem", "dynamodb:UpdateItem"], "Resource": table_arn},
                  {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"}]
    iam.put_role_policy(RoleName=role, PolicyName=t.name("orders-data"),
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    if secret_policy:
        iam.put_role_policy(RoleName=role, PolicyName=t.name("orders-cache"), PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                                    "Resource": secret_arn}]}))
    folder = work_dir() / "orders"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "handler.py").write_text(solution_handler() if handler is None else handler)
    variables = {"TABLE_NAME": t.name("orders"), "CACHE_HOST": primary["Address"], "CACHE_PORT": str(primary["Port"]),
                 "CACHE_SECRET": lab07.secret_name(t), "ORDER_TTL_SECONDS": "300", "SESSION_TTL_SECONDS": "1800",
                 "CACHE_MODE": "on"}
    for name, value in (env or {}).items():
        if value is None:
            variables.pop(name, None)
        else:
            variables[name] = value
    vpc_config = {"SubnetIds": subnet_ids, "SecurityGroupIds": [service if in_service_group else cache]}
    lam.create_function(FunctionName=t.name("orders"), Runtime="python3.13", Handler="handler.handler", Role=role_arn,
                        Code={"ZipFile": lambdas.package(folder)}, Timeout=10, MemorySize=256,
                        Environment={"Variables": variables}, VpcConfig=vpc_config, Tags=t.tag_map("03"))
    lam.get_waiter("function_active_v2").wait(FunctionName=t.name("orders"))

    asked = dict(CacheClusterId=lab07.memcached_id(t), Engine="memcached", EngineVersion="1.6.22",
                 CacheNodeType="cache.t4g.micro", NumCacheNodes=2, AZMode="cross-az",
                 CacheSubnetGroupName=lab07.group_id(t), SecurityGroupIds=[cache], TransitEncryptionEnabled=True,
                 Tags=t.tags("07"))
    asked.update(memcached or {})
    ec.create_cache_cluster(**{k: v for k, v in asked.items() if v is not None})

    if seed:
        serialize = TypeSerializer().serialize
        items = [{"PutRequest": {"Item": {k: serialize(v) for k, v in o.items()}}} for o in cacheload.seed_orders()]
        for start in range(0, len(items), 25):
            pending = {t.name("orders"): items[start:start + 25]}
            while pending:
                pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or None
    return state
