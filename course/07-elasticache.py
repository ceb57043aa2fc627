# %% [markdown]
# # Lab 07: ElastiCache, a cache in front of the table
#
# Every `GET /orders/{orderId}` of lab 03 reads DynamoDB, even when the same
# order was read a second ago. Real shops read a few orders far more often
# than the rest, so most of those reads fetch what the service already had.
# In this lab you put **Amazon ElastiCache for Valkey** between the service
# and its table: the service reads the cache first and the table only on a
# miss (**cache-aside**), forgets what it changes (**invalidation on
# write**), and keeps short-lived **sessions** there, which expire by
# themselves. Then you measure what it saves: table reads and latency, with
# and without the cache, under the same load.
#
# You will build, step by step:
#
# 1. the network: a security group for the service, one for the cache that admits only the service, a subnet group;
# 2. who may talk to the cache: RBAC users in a user group, the service's password in Secrets Manager;
# 3. the replication group `<prefix>-cache`: Valkey, two nodes, Multi-AZ with automatic failover, encrypted;
# 4. the service's cache code: cache-aside reads with a TTL, invalidation on write, sessions with expiry;
# 5. a measurement: table reads and read latency under a skewed load, with and without the cache;
# 6. a failover, while the service keeps answering;
# 7. Memcached, for contrast.
#
# Concepts: [Lab 07 in the course docs](../site/labs/07-elasticache.md).
# This lab starts from the end of lab 04 (it uses lab 03's service and
# table, and lab 04's VPC); `python -m labkit start 07` puts the local AWS
# there. Locally every cache node is a real Valkey process the local AWS
# starts for you, at the address the describe calls report.
#
# **On a live account ElastiCache bills per node-hour** from creation until
# deletion: this lab's two Valkey and two Memcached `cache.t4g.micro`
# nodes cost about USD 0.06 an hour together. Remove everything with
# `python -m labkit cleanup --live` when you are done.

# %%
import json
import secrets
import statistics
import time

import valkey
from boto3.dynamodb.types import TypeSerializer
from IPython.display import display

import checks
import labkit
import labkit.cacheload
import labkit.lambdas
import labkit.plot
from labkit.localaws import courseca

t = labkit.target()
ec = t.client("elasticache")
ec2 = t.client("ec2")
iam = t.client("iam")
lam = t.client("lambda")
sm = t.client("secretsmanager")
ddb = t.client("dynamodb")

group_id = t.name("cache")  # the replication group, its subnet group and its security group
fn_name = t.name("orders")  # lab 03's function and table
table_name = t.name("orders")
role_name = t.name("orders-fn")
secret_name = t.name("cache-orders")
source_dir = labkit.config.work_dir() / "orders"
print("replication group:", group_id, "| function:", fn_name)


def tagged(kind, name):
    return [{"ResourceType": kind, "Tags": t.tags("07") + [{"Key": "Name", "Value": name}]}]


# %% [markdown]
# ## 1. The network
#
# A cache holds copies of your data and answers anyone who can reach it
# and knows the password, so it lives in **private subnets** and its
# **security group admits only the service**: not a CIDR range, but the
# service's own security group as the source (see
# [Network placement](../site/labs/07-elasticache.md#network-placement)).
#
# Use lab 04's VPC `<prefix>-data` and its two private subnets. Create
# the security group `<prefix>-orders-svc` (the function will run in it),
# and `<prefix>-cache`, admitting TCP 6379 from `<prefix>-orders-svc`
# only. Then the **cache subnet group** `<prefix>-cache` with both
# subnets: ElastiCache places the nodes in them, one per zone.

# %%
vpc_id = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [t.name("data")]}])["Vpcs"][0]["VpcId"]
subnet_ids = [ec2.describe_subnets(Filters=[{"Name": "tag:Name", "Values": [t.name("data", f"private-{n}")]}])
              ["Subnets"][0]["SubnetId"] for n in (1, 2)]


def security_group(name, description):
    found = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                  {"Name": "group-name", "Values": [name]}])["SecurityGroups"]
    if found:
        return found[0]["GroupId"]
    return ec2.create_security_group(GroupName=name, Description=description, VpcId=vpc_id,
                                     TagSpecifications=tagged("security-group", name))["GroupId"]


# TODO: create service_sg (t.name("orders-svc")) and cache_sg (group_id) with security_group(...); let cache_sg admit TCP 6379 from service_sg only (UserIdGroupPairs, tolerate a duplicate rule); create the cache subnet group group_id with subnet_ids and Tags=t.tags("07") (tolerate CacheSubnetGroupAlreadyExists).
# BEGIN SOLUTION
service_sg = security_group(t.name("orders-svc"), "The orders service (its Lambda function's network interfaces)")
cache_sg = security_group(group_id, "ElastiCache: Valkey from the orders service only")
try:
    ec2.authorize_security_group_ingress(GroupId=cache_sg, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379,
        "UserIdGroupPairs": [{"GroupId": service_sg, "Description": "the orders service"}]}])
except ec2.exceptions.ClientError as exc:
    if "Duplicate" not in str(exc):
        raise
try:
    ec.create_cache_subnet_group(CacheSubnetGroupName=group_id, CacheSubnetGroupDescription="orders cache, private",
                                 SubnetIds=subnet_ids, Tags=t.tags("07"))
except ec.exceptions.CacheSubnetGroupAlreadyExistsFault:
    pass
# END SOLUTION
print("service:", service_sg, "cache:", cache_sg, "subnets:", subnet_ids)

# %%
checks.run("L07.01-L07.02")

# %% [markdown]
# ## 2. Who may talk to the cache
#
# An ElastiCache cache can take one shared password (the **AUTH token**)
# or, better, **role-based access control (RBAC)**: named users, each with
# its own passwords and an **access string** saying which keys and
# commands it may use, collected in a **user group** that the cache names
# (see [Access control](../site/labs/07-elasticache.md#access-control)).
# Every user group must hold a user named `default`, the one a client gets
# when it does not say who it is: switch it **off**.
#
# Create:
#
# - the user `<prefix>-cache-default`, user name `default`, access string `off -@all`, no password;
# - the user `<prefix>-cache-orders`, user name `orders-app`, access string
#   `on ~order:* ~session:* +@all -@dangerous` (the service's two key families, no admin commands),
#   with a 32-character random password;
# - the user group `<prefix>-cache-users` with both;
# - the secret `<prefix>-cache-orders` holding `{"username": "orders-app", "password": ...}`,
#   so the password lives in one place the function's role may read.

# %%
# TODO: create the two users (Engine "valkey", tagged with t.tags("07")), the user group, and the secret, with the service's password in `password` (tolerate what exists: UserAlreadyExistsFault, UserGroupAlreadyExistsFault; an existing secret keeps its password).
# BEGIN SOLUTION
try:
    password = json.loads(sm.get_secret_value(SecretId=secret_name)["SecretString"])["password"]
except sm.exceptions.ResourceNotFoundException:
    password = secrets.token_urlsafe(24)  # 32 characters, inside ElastiCache's 16-128
    sm.create_secret(Name=secret_name, SecretString=json.dumps({"username": "orders-app", "password": password}),
                     Tags=t.tags("07"))
users = ((t.name("cache-default"), "default", "off -@all", None),
         (t.name("cache-orders"), "orders-app", "on ~order:* ~session:* +@all -@dangerous", password))
for user_id, user_name, access, secret in users:
    try:
        ec.create_user(UserId=user_id, UserName=user_name, Engine="valkey", AccessString=access, Tags=t.tags("07"),
                       **({"Passwords": [secret]} if secret else {"NoPasswordRequired": True}))
    except ec.exceptions.UserAlreadyExistsFault:
        pass
try:
    ec.create_user_group(UserGroupId=t.name("cache-users"), Engine="valkey", UserIds=[u[0] for u in users],
                         Tags=t.tags("07"))
except ec.exceptions.UserGroupAlreadyExistsFault:
    pass
# END SOLUTION
print(ec.describe_user_groups(UserGroupId=t.name("cache-users"))["UserGroups"][0]["UserIds"])

# %%
checks.run("L07.03")

# %% [markdown]
# ## 3. The replication group
#
# A **replication group** is one primary node, which takes the writes, and
# up to five replicas that copy it and serve reads. With **Multi-AZ** and
# **automatic failover**, ElastiCache promotes a replica in another zone
# when the primary fails: that needs at least two nodes. Encryption comes
# in two kinds that you set at creation and cannot add later: **at rest**
# (the nodes' disks and backups) and **in transit** (TLS between clients
# and nodes); AWS refuses access control without TLS, since a password
# sent in clear text protects nothing (see
# [Replication and failover](../site/labs/07-elasticache.md#replication-and-failover)).
#
# Create `<prefix>-cache`: engine `valkey` version `8.1`, node type
# `cache.t4g.micro`, `NumCacheClusters=2`, automatic failover and Multi-AZ
# on, both encryptions on, the user group, the subnet group, the cache's
# security group, tagged. Locally it is ready at once; on AWS, wait for
# `replication_group_available` (about ten minutes).

# %%
# TODO: create the replication group group_id as described (tolerate ReplicationGroupAlreadyExistsFault), then wait until it is available.
# BEGIN SOLUTION
try:
    ec.create_replication_group(
        ReplicationGroupId=group_id, ReplicationGroupDescription="orders service cache",
        Engine="valkey", EngineVersion="8.1", CacheNodeType="cache.t4g.micro", NumCacheClusters=2,
        AutomaticFailoverEnabled=True, MultiAZEnabled=True,
        AtRestEncryptionEnabled=True, TransitEncryptionEnabled=True, UserGroupIds=[t.name("cache-users")],
        CacheSubnetGroupName=group_id, SecurityGroupIds=[cache_sg], Tags=t.tags("07"))
except ec.exceptions.ReplicationGroupAlreadyExistsFault:
    pass
ec.get_waiter("replication_group_available").wait(ReplicationGroupId=group_id)
# END SOLUTION
group = ec.describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"][0]
primary = group["NodeGroups"][0]["PrimaryEndpoint"]
print(group["Status"], group["MemberClusters"], "primary endpoint:", primary)

# %% [markdown]
# ### A plain client, with and without the password
#
# Connect to the primary endpoint with the Valkey Python client, over TLS
# (`ssl=True`: the endpoint's certificate chains to a root your machine
# trusts; locally, labkit's course CA). Without credentials the cache
# refuses; as `orders-app` it answers, within its access string. On a
# live account the endpoint is reachable only from inside the VPC.

# %%
if t.is_local:
    tls = {"ssl": True, "ssl_ca_certs": str(courseca.ca_file(labkit.config.state_dir()))}
    for who in ({}, {"username": "orders-app", "password": password}):
        client = valkey.Valkey(host=primary["Address"], port=primary["Port"], socket_timeout=5, **tls, **who)
        try:
            print(who.get("username", "no credentials"), "->", client.ping(), client.set("order:hello", "world"))
        except valkey.exceptions.ValkeyError as exc:
            print(who.get("username", "no credentials"), "->", type(exc).__name__, exc)

# %%
checks.run("L07.04-L07.08")

# %% [markdown]
# ## 4. The service's cache code
#
# Cache-aside puts the service in charge (see
# [Cache-aside](../site/labs/07-elasticache.md#cache-aside)):
#
# | request | with the cache |
# | --- | --- |
# | `GET /orders/{orderId}` | `GET order:<id>`; on a hit answer from it; on a miss read the table and `SET order:<id>` with a TTL of `ORDER_TTL_SECONDS` (300) |
# | `PATCH /orders/{orderId}`, body `{"status": ...}` | update the item (it must exist), then `DEL order:<id>`: the next read fetches the new version |
# | `DELETE /orders/{orderId}` | delete the item, then `DEL order:<id>` |
# | `POST /sessions`, body `{"customerId": ...}` | `201` `{"sessionId", "expiresIn"}`; the session is `session:<id>` with a TTL of `SESSION_TTL_SECONDS` (1800) |
# | `GET /sessions/{sessionId}` | `200` and the session, or `404` once it expired |
#
# The function reads its cache settings from the environment (`CACHE_HOST`,
# `CACHE_PORT`, `CACHE_SECRET`, the two TTLs, and `CACHE_MODE`: `on` or
# `off`, so that step 5 can measure both), its password from the secret,
# once per execution environment, and connects with TLS. A cache that
# cannot be reached must not take the service down: on a cache error,
# read the table. The function now runs in the VPC, in `<prefix>-orders-svc`,
# so its role needs `AWSLambdaVPCAccessExecutionRole`; add an inline
# policy `<prefix>-orders-cache` allowing `secretsmanager:GetSecretValue`
# on the secret and `dynamodb:UpdateItem` (the new `PATCH`) on the table.
#
# On a live account, ship the client with the code:
# `pip install valkey -t work/orders` before packaging.

# %%
handler_path = source_dir / "handler.py"
# TODO: set handler_source to the service with the cache (see the table above), write it to handler_path, then grant the role what it needs, and deploy: new code, then the configuration (VpcConfig, and the environment as the dict cache_settings).
# BEGIN SOLUTION
handler_source = '''\
"""The orders service, with a cache: cache-aside reads, invalidation on write, sessions that expire."""
import base64
import json
import os
import secrets
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import boto3
import valkey

# Runs once per execution environment; warm requests reuse the clients.
TABLE = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])
ORDER_TTL = int(os.environ.get("ORDER_TTL_SECONDS", "300"))
SESSION_TTL = int(os.environ.get("SESSION_TTL_SECONDS", "1800"))
STATUSES = {"NEW", "PAID", "SHIPPED", "DELIVERED", "CANCELLED"}


def _cache():
    if os.environ.get("CACHE_MODE", "on") != "on":
        return None
    login = json.loads(boto3.client("secretsmanager").get_secret_value(
        SecretId=os.environ["CACHE_SECRET"])["SecretString"])
    return valkey.Valkey(host=os.environ["CACHE_HOST"], port=int(os.environ["CACHE_PORT"]), ssl=True,
                         username=login["username"], password=login["password"], decode_responses=True,
                         socket_timeout=2, socket_connect_timeout=2, health_check_interval=30)


CACHE = _cache()


def _plain(value):
    """json.dumps helper: DynamoDB returns every number as a Decimal."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def respond(status, body=None):
    text = "" if body is None else json.dumps(body, default=_plain)  # the body is always a string
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": text}


def _cached(call, *args):
    """A cache command, or None when there is no cache or it cannot be reached: the table still answers."""
    if CACHE is None:
        return None
    try:
        return call(*args)
    except valkey.exceptions.ValkeyError as exc:
        print(json.dumps({"cache": "unavailable", "error": str(exc)[:200]}))
        return None


def _body(event):
    raw = event.get("body") or ""
    try:
        if event.get("isBase64Encoded"):
            raw = base64.b64decode(raw).decode("utf-8")
        data = json.loads(raw)
    except ValueError:  # not base64, not UTF-8 or not JSON
        return None
    return data if isinstance(data, dict) else None


def new_order(event):
    """The NewOrder in the request body, or None when the body is not one."""
    data = _body(event)
    if data is None or not isinstance(data.get("customerId"), str) or not data["customerId"]:
        return None
    items = data.get("items")
    if not isinstance(items, list) or not items:
        return None
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("sku"), str):
            return None
        if type(item.get("quantity")) is not int or item["quantity"] < 1:  # True is no quantity
            return None
    return {"customerId": data["customerId"],
            "items": [{"sku": i["sku"], "quantity": i["quantity"]} for i in items]}


def create_order(event):
    order = new_order(event)
    if order is None:
        return respond(400, {"message": "the body must be a JSON NewOrder"})
    order.update(orderId=str(uuid.uuid4()), status="NEW",
                 createdAt=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    TABLE.put_item(Item=order)
    return respond(201, order)


def get_order(order_id):
    key = f"order:{order_id}"
    hit = _cached(lambda: CACHE.get(key))
    if hit is not None:
        return respond(200, json.loads(hit))
    item = TABLE.get_item(Key={"orderId": order_id}).get("Item")
    if not item:
        return respond(404, {"message": "order not found"})
    _cached(lambda: CACHE.set(key, json.dumps(item, default=_plain), ex=ORDER_TTL))
    return respond(200, item)


def update_order(order_id, event):
    data = _body(event)
    if data is None or data.get("status") not in STATUSES:
        return respond(400, {"message": f"the body must be {{\\"status\\": one of {sorted(STATUSES)}}}"})
    try:
        item = TABLE.update_item(Key={"orderId": order_id}, UpdateExpression="SET #s = :s",
                                 ConditionExpression="attribute_exists(orderId)",
                                 ExpressionAttributeNames={"#s": "status"},
                                 ExpressionAttributeValues={":s": data["status"]}, ReturnValues="ALL_NEW")["Attributes"]
    except TABLE.meta.client.exceptions.ConditionalCheckFailedException:
        return respond(404, {"message": "order not found"})
    _cached(lambda: CACHE.delete(f"order:{order_id}"))  # after the write: the next read fetches the new version
    return respond(200, item)


def list_orders():
    page = TABLE.scan()
    orders = page["Items"]
    while "LastEvaluatedKey" in page:  # one Scan call returns at most 1 MB
        page = TABLE.scan(ExclusiveStartKey=page["LastEvaluatedKey"])
        orders += page["Items"]
    return respond(200, {"orders": orders})


def delete_order(order_id):
    TABLE.delete_item(Key={"orderId": order_id})
    _cached(lambda: CACHE.delete(f"order:{order_id}"))
    return respond(204)


def create_session(event):
    data = _body(event)
    if data is None or not isinstance(data.get("customerId"), str) or not data["customerId"]:
        return respond(400, {"message": "the body must be {\\"customerId\\": ...}"})
    session_id = secrets.token_urlsafe(16)
    session = {"sessionId": session_id, "customerId": data["customerId"],
               "createdAt": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if not _cached(lambda: CACHE.set(f"session:{session_id}", json.dumps(session), ex=SESSION_TTL)):
        return respond(503, {"message": "sessions are unavailable"})
    return respond(201, {"sessionId": session_id, "expiresIn": SESSION_TTL})


def get_session(session_id):
    found = _cached(lambda: CACHE.get(f"session:{session_id}"))
    return respond(200, json.loads(found)) if found else respond(404, {"message": "session not found"})


def route(event):
    method, resource = event.get("httpMethod"), event.get("resource")
    params = event.get("pathParameters") or {}
    order_id = params.get("orderId")
    if resource == "/orders" and method == "POST":
        return create_order(event)
    if resource == "/orders" and method == "GET":
        return list_orders()
    if resource == "/orders/{orderId}" and method == "GET":
        return get_order(order_id)
    if resource == "/orders/{orderId}" and method == "PATCH":
        return update_order(order_id, event)
    if resource == "/orders/{orderId}" and method == "DELETE":
        return delete_order(order_id)
    if resource == "/sessions" and method == "POST":
        return create_session(event)
    if resource == "/sessions/{sessionId}" and method == "GET":
        return get_session(params.get("sessionId"))
    return respond(404, {"message": f"no route for {method} {resource}"})


def handler(event, context):
    response = route(event)
    # One structured line per request: easy to read, easy to query in CloudWatch.
    print(json.dumps({"requestId": getattr(context, "aws_request_id", None), "method": event.get("httpMethod"),
                      "path": event.get("path"), "status": response["statusCode"]}))
    return response
'''
handler_path.write_text(handler_source)
secret_arn = sm.describe_secret(SecretId=secret_name)["ARN"]
table_arn = ddb.describe_table(TableName=table_name)["Table"]["TableArn"]
iam.put_role_policy(RoleName=role_name, PolicyName=t.name("orders-cache"), PolicyDocument=json.dumps({
    "Version": "2012-10-17", "Statement": [
        {"Sid": "CachePassword", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret_arn},
        {"Sid": "OrderUpdates", "Effect": "Allow", "Action": "dynamodb:UpdateItem", "Resource": table_arn}]}))
iam.attach_role_policy(RoleName=role_name,
                       PolicyArn="arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole")
cache_settings = {"TABLE_NAME": table_name, "CACHE_HOST": primary["Address"], "CACHE_PORT": str(primary["Port"]),
                  "CACHE_SECRET": secret_name, "ORDER_TTL_SECONDS": "300", "SESSION_TTL_SECONDS": "1800",
                  "CACHE_MODE": "on"}
lam.update_function_code(FunctionName=fn_name, ZipFile=labkit.lambdas.package(source_dir))
lam.get_waiter("function_updated_v2").wait(FunctionName=fn_name)
lam.update_function_configuration(FunctionName=fn_name, Environment={"Variables": cache_settings},
                                  VpcConfig={"SubnetIds": subnet_ids, "SecurityGroupIds": [service_sg]})
lam.get_waiter("function_updated_v2").wait(FunctionName=fn_name)
# END SOLUTION
print(lam.get_function_configuration(FunctionName=fn_name)["Environment"]["Variables"])


# %% [markdown]
# Try it: invoke the function with proxy events, as API Gateway would.

# %%
def call(method, resource, body=None, **params):
    path = resource
    for name, value in params.items():
        path = path.replace("{" + name + "}", value)
    event = {"httpMethod": method, "resource": resource, "path": path, "pathParameters": params or None,
             "body": None if body is None else json.dumps(body), "isBase64Encoded": False, "headers": {}}
    answer = json.loads(lam.invoke(FunctionName=fn_name, Payload=json.dumps(event))["Payload"].read())
    return answer.get("statusCode"), json.loads(answer["body"]) if answer.get("body") else None


created = call("POST", "/orders", {"customerId": "c-7", "items": [{"sku": "BOOK-1", "quantity": 1}]})[1]
oid = created["orderId"]
print(call("GET", "/orders/{orderId}", orderId=oid)[1]["status"], "(a miss: read from the table, now cached)")
print(call("PATCH", "/orders/{orderId}", {"status": "PAID"}, orderId=oid)[1]["status"], "(written, cache entry dropped)")
print(call("GET", "/orders/{orderId}", orderId=oid)[1]["status"], "(not stale)")
session = call("POST", "/sessions", {"customerId": "c-7"})[1]
print("session", session, "->", call("GET", "/sessions/{sessionId}", sessionId=session["sessionId"])[0])
call("DELETE", "/orders/{orderId}", orderId=oid)

# %%
checks.run("L07.09-L07.11")

# %% [markdown]
# ## 5. Measured: what the cache saves
#
# `labkit.cacheload` provides the load: 300 reads of 200 orders, skewed
# as shops are (a handful of orders get most of the reads). Seed the table with those orders, then run the load
# through the function twice, with `CACHE_MODE` `off` and `on`, counting
# the **table reads** it caused (the local AWS counts every read it serves;
# on AWS, read the table's CloudWatch metrics) and the **latency** of
# each invocation (see [Measuring a cache](../site/labs/07-elasticache.md#measuring-a-cache)).

# %%
serialize = TypeSerializer().serialize
orders = [{"PutRequest": {"Item": {k: serialize(v) for k, v in o.items()}}} for o in labkit.cacheload.seed_orders()]
for start in range(0, len(orders), 25):  # batch_write_item's limit; send again what comes back
    pending = {table_name: orders[start:start + 25]}
    while pending:
        pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or None
load = labkit.cacheload.skewed_reads()
print(len(load), "reads of", len(set(load)), "distinct orders")


def run_load(mode):
    lam.update_function_configuration(FunctionName=fn_name,
                                      Environment={"Variables": dict(cache_settings, CACHE_MODE=mode)})
    lam.get_waiter("function_updated_v2").wait(FunctionName=fn_name)
    before = labkit.cacheload.table_reads(t, table_name) if t.is_local else None
    took = []
    for order_id in load:
        started = time.perf_counter()
        status, _ = call("GET", "/orders/{orderId}", orderId=order_id)
        took.append((time.perf_counter() - started) * 1000)
        assert status == 200, (order_id, status)
    reads = labkit.cacheload.table_reads(t, table_name) - before if t.is_local else None
    return reads, statistics.median(took), statistics.quantiles(took, n=100)[98]


if t.is_local:
    ec.get_waiter("replication_group_available").wait(ReplicationGroupId=group_id)
    results = {mode: run_load(mode) for mode in ("off", "on")}
    for mode, (reads, p50, p99) in results.items():
        print(f"cache {mode:3}: {reads:4} table reads for {len(load)} requests, p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    hit_ratio = 1 - results["on"][0] / len(load)
    print(f"hit ratio {hit_ratio:.1%}; the table served {results['off'][0] / max(results['on'][0], 1):.0f}x fewer reads")
    chart = labkit.plot.Bars([(f"cache {mode}", {"table reads": reads}) for mode, (reads, _, _) in results.items()],
                             title=f"Table reads for {len(load):,} requests")
    display(chart)
    display(labkit.plot.Bars([(f"cache {mode}", {"p50": round(p50, 2), "p99": round(p99, 2)})
                              for mode, (_, p50, p99) in results.items()], title="Read latency", unit=" ms"))

# %% [markdown]
# The first read of each order still reaches the table (a *cold* miss);
# after that the cache answers until the TTL runs out or a write drops the
# entry. The latency gain is smaller than the read reduction: locally both
# the cache and the table are a process on your machine, and most of each
# request's time is the function itself. On AWS a DynamoDB read takes
# milliseconds and a Valkey read well under one.

# %%
checks.run("L07.12")

# %% [markdown]
# ## 6. A failover, while the service answers
#
# `test_failover` makes ElastiCache treat the primary as failed: the
# replica in the other zone becomes the primary, and the **primary
# endpoint** follows it, so clients that use the endpoint (as your
# function does) reconnect and carry on. Connections open at that moment
# break: a client that retries once sees no error. Run it, then read an
# order through the function.

# %%
# TODO: run test_failover on node group "0001" of group_id, wait for the group to be available again, then show each member's CurrentRole.
# BEGIN SOLUTION
ec.test_failover(ReplicationGroupId=group_id, NodeGroupId="0001")
ec.get_waiter("replication_group_available").wait(ReplicationGroupId=group_id)
# END SOLUTION
members = ec.describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"][0]["NodeGroups"][0]
print({m["CacheClusterId"]: m["CurrentRole"] for m in members["NodeGroupMembers"]})
print(call("GET", "/orders/{orderId}", orderId=load[0])[0])

# %%
checks.run("L07.13")

# %% [markdown]
# ## 7. Memcached, for contrast
#
# ElastiCache also runs **Memcached**: a cache and nothing more. It has no
# replication (a node that fails loses its keys; the client spreads keys
# over nodes and lives with misses), no persistence, no access control
# beyond the network, and only plain string keys and values; in exchange it
# is multi-threaded, so one large node uses all its cores (see
# [Memcached](../site/labs/07-elasticache.md#memcached)). Create
# `<prefix>-mc`: engine `memcached`, two `cache.t4g.micro` nodes spread
# over zones (`AZMode="cross-az"`), in the same subnet and security
# groups, with in-transit encryption, tagged. Then compare what the two
# describe calls say. Locally no Memcached engine runs: this step is
# graded on configuration.

# %%
# TODO: create the Memcached cluster t.name("mc") as described (tolerate CacheClusterAlreadyExistsFault).
# BEGIN SOLUTION
try:
    ec.create_cache_cluster(CacheClusterId=t.name("mc"), Engine="memcached", EngineVersion="1.6.22",
                            CacheNodeType="cache.t4g.micro", NumCacheNodes=2, AZMode="cross-az",
                            CacheSubnetGroupName=group_id, SecurityGroupIds=[cache_sg],
                            TransitEncryptionEnabled=True, Tags=t.tags("07"))
except ec.exceptions.CacheClusterAlreadyExistsFault:
    pass
# END SOLUTION
mc = ec.describe_cache_clusters(CacheClusterId=t.name("mc"))["CacheClusters"][0]
print("memcached:", mc["NumCacheNodes"], "nodes, no replication group:", "ReplicationGroupId" not in mc)

# %%
checks.run("L07.14")

# %% [markdown]
# ## What you built
#
# A Valkey replication group in private subnets that only the service can
# reach, encrypted on disk and on the wire, with named users instead of a
# shared password; a service that reads through it and keeps it honest on
# every write; sessions that expire by themselves; a number for what the
# cache saves; and a failover that the service rode out.
#
# The whole lab, graded in one go (run it again after any change):

# %%
checks.run("07")

# %% [markdown]
# **On a live account, delete the cache now** (it bills per node-hour):
# `python -m labkit cleanup --live` removes everything the course made.
# Locally, save your state: `python -m labkit save end-of-07`.
