# %% [markdown]
# # Lab 04: DynamoDB data modeling, auto scaling and DAX
#
# Lab 03's table is keyed by `orderId` alone. It answers "get this order"
# with one read, and every other question with a `Scan` that reads, and
# bills, the whole table. In this lab you start from the questions the
# service asks, design a table whose keys answer them, and measure the
# difference. Then you make the table safe to run: capacity that follows the
# load, expiry, a change stream, backups, writes that cannot corrupt it, and
# DAX, a cache in front of it that answers in microseconds.
#
# You will build, step by step:
#
# 1. the table `<prefix>-orders-v2`, keyed for the access patterns, with a global secondary index;
# 2. the provided data set, loaded;
# 3. the query functions the service uses, in `work/orders-v2/queries.py`;
# 4. a measurement: items read against items returned, with and without the keys;
# 5. writes that cannot corrupt: a conditional create and a transaction;
# 6. the table's life cycle: TTL, a stream, point-in-time recovery, deletion protection;
# 7. provisioned capacity with auto scaling, next to on-demand;
# 8. a DAX cluster in private subnets, with its own role;
# 9. a read path you switch between DynamoDB and DAX by configuration.
#
# Concepts: [Lab 04 in the course docs](../site/labs/04-dynamodb-dax.md).
# This lab starts from the end of lab 03; `python -m labkit start 04` puts
# the local AWS there.
#
# **On a live account** the tables cost cents; the **DAX cluster is billed
# per node-hour** (about USD 0.04 for a `dax.t3.small`) from the moment it
# is created until you delete it. Remove everything with
# `python -m labkit cleanup --live` when you are done.

# %%
import importlib.util
import json
import time

from boto3.dynamodb.types import TypeSerializer

import checks
import labkit
import labkit.assets
import labkit.plot

t = labkit.target()
ddb = t.client("dynamodb")
scaling = t.client("application-autoscaling")
iam = t.client("iam")
ec2 = t.client("ec2")
dax = t.client("dax")

table_name = t.name("orders-v2")
stock_name = t.name("stock")
index_name = "status-day"
module_path = labkit.config.work_dir() / "orders-v2" / "queries.py"  # the service's data code, outside the notebook
print("tables:", table_name, stock_name, "| module:", module_path)


def wait_active(name):
    """Wait until the table and all its indexes are ACTIVE: DynamoDB refuses a second update while one runs."""
    while True:
        table = ddb.describe_table(TableName=name)["Table"]
        if table["TableStatus"] == "ACTIVE" and all(
                i["IndexStatus"] == "ACTIVE" for i in table.get("GlobalSecondaryIndexes", [])):
            return table
        time.sleep(2)


# %% [markdown]
# ## 1. Keys from access patterns
#
# A DynamoDB table finds items by key and only by key; anything else is a
# Scan. So the design starts from the questions, not from the data. The
# orders service asks three:
#
# | # | access pattern | how often |
# | --- | --- | --- |
# | AP1 | get one of a customer's orders (the API knows the signed-in customer from the token) | every order page |
# | AP2 | list a customer's orders, newest first, at most *n* | every "my orders" page |
# | AP3 | list the orders in one status placed on one day (the warehouse's pick list), oldest first | every few minutes |
#
# AP1 and AP2 both start from a customer: make `customerId` the
# **partition key**. AP2 wants a customer's orders in time order: make
# `orderId` the **sort key**, with order ids that begin with their UTC time
# (`20261003T101522Z-a1b2c3`), so sorting by id is sorting by time. AP3
# starts from a status and a day, neither of which is in the table's keys:
# it needs a **global secondary index**, `status-day`, whose partition key
# `statusDay` holds both (`SHIPPED#2026-10-05`) and whose sort key
# `createdAt` gives the time order. A partition key of `status` alone would
# have six values: all writes for a status would land on one partition.
# See [Key design](../site/labs/04-dynamodb-dax.md#key-design).
#
# Keys cannot change after a table is created, so this is a new table,
# `<prefix>-orders-v2`. Create it on-demand (`PAY_PER_REQUEST`) with
# `t.tags("04")`, with the index projecting `INCLUDE` `["items", "total"]`:
# the pick list needs each order's items, and an index that lacks them
# would cost a `GetItem` per order. Create the stock table too:
# `<prefix>-stock`, keyed by `sku` (S), on-demand and tagged.

# %%
# TODO: create table_name (customerId S HASH, orderId S RANGE, GSI status-day: statusDay S HASH, createdAt S RANGE, projection INCLUDE items+total) and stock_name (sku S HASH), both PAY_PER_REQUEST with Tags=t.tags("04"); tolerate ResourceInUseException; wait for both.
# BEGIN SOLUTION
definitions = {
    table_name: dict(
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"}
                              for name in ("customerId", "orderId", "statusDay", "createdAt")],
        KeySchema=[{"AttributeName": "customerId", "KeyType": "HASH"}, {"AttributeName": "orderId", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{
            "IndexName": index_name,
            "KeySchema": [{"AttributeName": "statusDay", "KeyType": "HASH"},
                          {"AttributeName": "createdAt", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["items", "total"]}}]),
    stock_name: dict(AttributeDefinitions=[{"AttributeName": "sku", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "sku", "KeyType": "HASH"}]),
}
for name, definition in definitions.items():
    try:
        ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", Tags=t.tags("04"), **definition)
    except ddb.exceptions.ResourceInUseException:
        pass  # made by an earlier run
    ddb.get_waiter("table_exists").wait(TableName=name)
# END SOLUTION
table = wait_active(table_name)
print(table["TableArn"], [k["AttributeName"] for k in table["KeySchema"]],
      [i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])])

# %%
checks.run("L04.01-L04.02")

# %% [markdown]
# ## 2. The data set
#
# `labkit.assets.lab04_orders()` gives 800 orders placed in October 2026 by
# 40 customers: a few busy ones and a long tail, as shops have. Each has
# `orderId`, `customerId`, `createdAt`, `status`, `items`, `total` (in
# cents) and, for unpaid `PENDING` orders, `expiresAt` (epoch seconds).
# `labkit.assets.lab04_stock()` gives the stock level (`available`) of 12
# SKUs. See [The data set](../site/labs/04-dynamodb-dax.md#the-data-set).
#
# Load both. The index's key `statusDay` is not in the data: derive it
# while loading, as `f"{status}#{createdAt[:10]}"`. Write in batches of 25
# (`batch_write_item`'s limit) and send again whatever comes back as
# `UnprocessedItems`.

# %%
# NBVAL_CHECK_OUTPUT
orders = labkit.assets.lab04_orders()
stock = labkit.assets.lab04_stock()
serialize = TypeSerializer().serialize


def to_item(record):
    """A plain dict in DynamoDB's typed form: {"total": 1299} -> {"total": {"N": "1299"}}."""
    return {key: serialize(value) for key, value in record.items()}


def write_all(name, records):
    for start in range(0, len(records), 25):
        pending = {name: [{"PutRequest": {"Item": to_item(r)}} for r in records[start:start + 25]]}
        while pending:
            pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or None


# TODO: write every order of `orders`, with statusDay added, to table_name, and every entry of `stock` to stock_name.
# BEGIN SOLUTION
write_all(table_name, [dict(o, statusDay=f"{o['status']}#{o['createdAt'][:10]}") for o in orders])
write_all(stock_name, stock)
# END SOLUTION
print(len(orders), "orders and", len(stock), "stock levels written")

# %% [output]
# 800 orders and 12 stock levels written

# %%
checks.run("L04.03")

# %% [markdown]
# ## 3. The query functions
#
# The service's data code lives in one module, `work/orders-v2/queries.py`,
# with one function per access pattern. Each takes the **client** it reads
# through as its first argument, so the same code runs against DynamoDB,
# against DAX (step 9), and under the grader, which counts what each call
# read. See [Query functions](../site/labs/04-dynamodb-dax.md#query-functions).
#
# | function | returns | reads with |
# | --- | --- | --- |
# | `get_order(client, table, customer_id, order_id)` | the item, or `None` | one `GetItem` with both keys |
# | `customer_orders(client, table, customer_id, limit=10)` | the newest `limit` orders, newest first | `Query` on `customerId`, `ScanIndexForward=False`, `Limit` = what is still missing, following `LastEvaluatedKey` |
# | `orders_by_status(client, table, status, day)` | every order of that status placed that day, oldest first | `Query` on the index with `statusDay = :sd`, following `LastEvaluatedKey` |
#
# Return the items as DynamoDB returns them. Never `Scan`; never read more
# than you return (a `FilterExpression` is applied *after* the read: you
# pay for everything it throws away).

# %%
# TODO: set reads_source to the code of the module's imports (os and labkit) and the three read functions.
# BEGIN SOLUTION
reads_source = '''\
"""The orders service's data access: one function per access pattern, through a client passed in."""
import os

import labkit


def get_order(client, table, customer_id, order_id):
    """AP1: one of a customer's orders, or None."""
    key = {"customerId": {"S": customer_id}, "orderId": {"S": order_id}}
    return client.get_item(TableName=table, Key=key).get("Item")


def customer_orders(client, table, customer_id, limit=10):
    """AP2: a customer's newest orders, newest first (order ids begin with their time)."""
    items, after = [], {}
    while len(items) < limit:  # a page may hold fewer than asked: ask on for the rest
        answer = client.query(TableName=table, KeyConditionExpression="customerId = :c",
                              ExpressionAttributeValues={":c": {"S": customer_id}},
                              ScanIndexForward=False, Limit=limit - len(items), **after)
        items += answer["Items"]
        if not answer.get("LastEvaluatedKey"):
            break
        after = {"ExclusiveStartKey": answer["LastEvaluatedKey"]}
    return items


def orders_by_status(client, table, status, day):
    """AP3: the pick list, every order of a status placed on a day, oldest first."""
    items, start = [], {}
    while True:
        answer = client.query(TableName=table, IndexName="status-day",
                              KeyConditionExpression="statusDay = :sd",
                              ExpressionAttributeValues={":sd": {"S": f"{status}#{day}"}}, **start)
        items += answer["Items"]
        if "LastEvaluatedKey" not in answer:
            return items
        start = {"ExclusiveStartKey": answer["LastEvaluatedKey"]}
'''
# END SOLUTION


def save_module(*parts):
    """Write the module from its parts, and load it fresh (a re-run picks up your edits)."""
    module_path.parent.mkdir(parents=True, exist_ok=True)
    module_path.write_text("\n\n".join(part.strip("\n") for part in parts) + "\n")
    spec = importlib.util.spec_from_file_location("queries", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


queries = save_module(reads_source)
print(module_path, len(module_path.read_text().splitlines()), "lines")
for item in queries.customer_orders(ddb, table_name, "customer-001", limit=3):
    print(item["orderId"]["S"], item["status"]["S"], item["total"]["N"])

# %%
checks.run("L04.04-L04.06")

# %% [markdown]
# ## 4. Measured: items read, items returned
#
# DynamoDB bills, and spends time on, every item it **reads**, whether or
# not it returns it. Every answer says how many: `ScannedCount` (read) and
# `Count` (returned). Compare each access pattern served by a Scan with a
# filter (what lab 03's table forces) with the same pattern served by the
# keys. See [Items read and returned](../site/labs/04-dynamodb-dax.md#query-functions).

# %%
def cost(call, **request):
    """Items read and returned by one paginated Scan or Query."""
    read = returned = 0
    for page in ddb.get_paginator(call).paginate(**request):
        read, returned = read + page["ScannedCount"], returned + page["Count"]
    return {"items read": read, "items returned": returned}


customer = {":c": {"S": "customer-017"}}
pick, on_day = {":sd": {"S": "SHIPPED#2026-10-05"}}, "statusDay = :sd"
measured = [
    ("AP2 by Scan + filter", cost("scan", TableName=table_name, FilterExpression="customerId = :c",
                                  ExpressionAttributeValues=customer)),
    ("AP2 by Query", cost("query", TableName=table_name, KeyConditionExpression="customerId = :c",
                          ExpressionAttributeValues=customer)),
    ("AP3 by Scan + filter", cost("scan", TableName=table_name, FilterExpression=on_day,
                                  ExpressionAttributeValues=pick)),
    ("AP3 by Query on the index", cost("query", TableName=table_name, IndexName=index_name,
                                       KeyConditionExpression=on_day, ExpressionAttributeValues=pick)),
]
chart = labkit.plot.Bars(measured, title="Items read vs items returned (800 orders)")
print(chart)
chart

# %% [markdown]
# The Scan reads all 800 orders whatever it returns; the Query reads exactly
# what it returns. With a million orders the Scan reads a million; the
# Query still reads a customer's handful. That is what "retrieved by
# partition key" buys: the cost of a read depends on the answer, not on the
# size of the table.

# %% [markdown]
# ## 5. Writes that cannot corrupt
#
# **Idempotent create.** A client that times out sends its request again.
# If the client picks the `orderId` and reuses it on every retry, a
# **conditional write** makes the retry harmless: `put_item` with
# `ConditionExpression="attribute_not_exists(orderId)"` succeeds once and
# then fails with `ConditionalCheckFailedException`. Write
# `create_order(client, table, order)` returning `True` when it stored the
# order and `False` for a duplicate (the API answers 409). Store the order
# as the loader did, with `statusDay` derived from its status and
# `createdAt`, or the pick list never finds it. See
# [Conditional writes](../site/labs/04-dynamodb-dax.md#conditional-writes).
#
# **A transaction.** Placing an order must take its items from stock *and*
# store the order, or do neither. Write
# `place_order(client, orders_table, stock_table, order)` with one
# `transact_write_items` call: an `Update` per line,
# `SET available = available - :q` on condition `available >= :q`, and the
# `Put` of the order on condition `attribute_not_exists(orderId)`. If any
# condition fails DynamoDB cancels all of it
# (`TransactionCanceledException`): return `False`; otherwise `True`. See
# [Transactions](../site/labs/04-dynamodb-dax.md#transactions).

# %%
# TODO: set writes_source to the code of create_order and place_order.
# BEGIN SOLUTION
writes_source = '''\
def _item(order):
    """An order in DynamoDB's typed form, with the index key derived."""
    from boto3.dynamodb.types import TypeSerializer

    order = dict(order, statusDay=f"{order['status']}#{order['createdAt'][:10]}")
    return {key: TypeSerializer().serialize(value) for key, value in order.items()}


def create_order(client, table, order):
    """Store a new order; False when an order with its key exists (a retried request)."""
    try:
        client.put_item(TableName=table, Item=_item(order), ConditionExpression="attribute_not_exists(orderId)")
        return True
    except client.exceptions.ConditionalCheckFailedException:
        return False


def place_order(client, orders_table, stock_table, order):
    """Take the order's items from stock and store the order, all or nothing."""
    lines = [{"Update": {
        "TableName": stock_table, "Key": {"sku": {"S": line["sku"]}},
        "UpdateExpression": "SET available = available - :q", "ConditionExpression": "available >= :q",
        "ExpressionAttributeValues": {":q": {"N": str(line["quantity"])}}}} for line in order["items"]]
    store = {"Put": {"TableName": orders_table, "Item": _item(order),
                     "ConditionExpression": "attribute_not_exists(orderId)"}}
    try:
        client.transact_write_items(TransactItems=lines + [store])
        return True
    except client.exceptions.TransactionCanceledException:
        return False
'''
# END SOLUTION
queries = save_module(reads_source, writes_source)

demo = {"orderId": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-demo01", "customerId": "customer-demo",
        "createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "status": "NEW",
        "items": [{"sku": "SKU-003", "quantity": 1}], "total": 499}
print("create:", queries.create_order(ddb, table_name, demo), "| again:", queries.create_order(ddb, table_name, demo))
big = dict(demo, orderId=demo["orderId"].replace("demo01", "demo02"), items=[{"sku": "SKU-003", "quantity": 10_000}])
print("place 10,000 of SKU-003:", queries.place_order(ddb, table_name, stock_name, big))
fits = dict(demo, orderId=demo["orderId"].replace("demo01", "demo03"))
before = ddb.get_item(TableName=stock_name, Key={"sku": {"S": "SKU-003"}})["Item"]["available"]["N"]
print("place 1 of SKU-003:", queries.place_order(ddb, table_name, stock_name, fits),
      "| stock", before, "->", ddb.get_item(TableName=stock_name, Key={"sku": {"S": "SKU-003"}})["Item"]["available"]["N"])

# %%
checks.run("L04.13-L04.14")

# %% [markdown]
# The grader judges these two functions by calling them, but never on your
# tables (grading only reads): it runs them against empty copies of your
# tables in a private DynamoDB of its own.
#
# ## 6. Life cycle and safety
#
# Four settings that cost a line each and matter on the bad day. See
# [TTL](../site/labs/04-dynamodb-dax.md#ttl), [Streams](../site/labs/04-dynamodb-dax.md#streams)
# and [Backups and protection](../site/labs/04-dynamodb-dax.md#backups-and-protection).
#
# - **TTL** on `expiresAt`: DynamoDB deletes unpaid orders after their expiry, free of charge (within days, not to
#   the second; the local AWS stores the setting but never deletes).
# - **A stream** with `NEW_AND_OLD_IMAGES`: every change, before and after, for other services to react to.
# - **Point-in-time recovery**: restore the table to any second of the last 35 days.
# - **Deletion protection**: `DeleteTable` fails until someone turns it off on purpose.
#
# A table accepts one update at a time: wait for it to be `ACTIVE` between updates.

# %%
# TODO: turn on TTL (expiresAt), the stream (NEW_AND_OLD_IMAGES), point-in-time recovery and deletion protection on table_name.
# BEGIN SOLUTION
if ddb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]["TimeToLiveStatus"] != "ENABLED":
    ddb.update_time_to_live(TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"})
if not wait_active(table_name).get("StreamSpecification", {}).get("StreamEnabled"):
    ddb.update_table(TableName=table_name, StreamSpecification={"StreamEnabled": True,
                                                                "StreamViewType": "NEW_AND_OLD_IMAGES"})
ddb.update_continuous_backups(TableName=table_name,
                              PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
wait_active(table_name)  # the stream update must finish first
ddb.update_table(TableName=table_name, DeletionProtectionEnabled=True)
# END SOLUTION
table = wait_active(table_name)
print("stream:", table.get("LatestStreamArn"), "| deletion protection:", table.get("DeletionProtectionEnabled"))

# %%
checks.run("L04.09-L04.12")

# %% [markdown]
# ## 7. Capacity: on-demand or provisioned
#
# Your table is **on-demand**: DynamoDB serves whatever comes and bills each
# request. Nothing to plan, nothing idle to pay for, the right start for a
# new service or spiky traffic. Once the load is known and steady,
# **provisioned** capacity is cheaper per request: you pay per hour for read
# and write capacity units, used or not, and **auto scaling** moves them
# with the load. See [Capacity modes](../site/labs/04-dynamodb-dax.md#capacity-modes).
#
# | | on-demand | provisioned + auto scaling |
# | --- | --- | --- |
# | you pay for | each request | capacity per hour, used or not |
# | planning | none | min and max per table and index |
# | sudden spike | served (up to double the previous peak at once) | may be throttled until scaling catches up (minutes) |
# | best for | new, spiky or idle workloads | steady, predictable workloads |
#
# Switch the table (and its index: an index has its own capacity, and an
# index short of write capacity throttles the table's writes) to
# `PROVISIONED` with 5 read and 5 write units. Then, with Application Auto
# Scaling, register **four scalable targets** (read and write, table and
# index) from 5 to 100 units, and give each a **target-tracking policy**
# that keeps utilisation at 70 percent. See
# [Auto scaling](../site/labs/04-dynamodb-dax.md#auto-scaling).
#
# AWS rejects a minimum above the maximum, and for DynamoDB a target
# outside 20 to 90 percent; the local AWS accepts both, but the grader
# applies AWS's rules.

# %%
resources = {f"table/{table_name}": "table", f"table/{table_name}/index/{index_name}": "index"}
metric = {"Read": "DynamoDBReadCapacityUtilization", "Write": "DynamoDBWriteCapacityUtilization"}
# TODO: update table_name to PROVISIONED (5/5 for the table and the index), wait, then for each resource id in resources and each of Read/Write: register_scalable_target (min 5, max 100) and put_scaling_policy (TargetTrackingScaling, TargetValue 70).
# BEGIN SOLUTION
units = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
if (wait_active(table_name).get("BillingModeSummary") or {}).get("BillingMode") != "PROVISIONED":
    ddb.update_table(TableName=table_name, BillingMode="PROVISIONED", ProvisionedThroughput=units,
                     GlobalSecondaryIndexUpdates=[{"Update": {"IndexName": index_name,
                                                              "ProvisionedThroughput": units}}])
wait_active(table_name)  # scaling targets need the new capacity mode in place
for resource, kind in resources.items():
    for direction, metric_type in metric.items():
        dimension = f"dynamodb:{kind}:{direction}CapacityUnits"
        scaling.register_scalable_target(ServiceNamespace="dynamodb", ResourceId=resource,
                                         ScalableDimension=dimension, MinCapacity=5, MaxCapacity=100)
        scaling.put_scaling_policy(
            PolicyName=f"{t.prefix}-{kind}-{direction.lower()}-70", ServiceNamespace="dynamodb",
            ResourceId=resource, ScalableDimension=dimension, PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 70.0, "PredefinedMetricSpecification": {"PredefinedMetricType": metric_type}})
# END SOLUTION
for target in scaling.describe_scalable_targets(ServiceNamespace="dynamodb", ResourceIds=list(resources))["ScalableTargets"]:
    print(target["ResourceId"], target["ScalableDimension"], target["MinCapacity"], "-", target["MaxCapacity"])

# %%
checks.run("L04.07-L04.08")

# %% [markdown]
# ## 8. DAX
#
# DAX is a write-through cache in front of DynamoDB that speaks DynamoDB's
# API: `GetItem` and `Query` answers come from memory in microseconds when
# they are cached, from the table otherwise. It runs as a cluster **inside
# your VPC**. See [DAX](../site/labs/04-dynamodb-dax.md#dax).
#
# ### Network
#
# A VPC `<prefix>-data` (`10.40.0.0/16`) with two **private** subnets in two
# Availability Zones (no internet gateway anywhere), and a security group
# `<prefix>-dax` that admits TCP **9111** (DAX's TLS port) from the VPC's own
# range and nothing else. On a live account, a **subnet group** over the two
# subnets tells DAX where its nodes go; the local AWS has no subnet groups,
# so that call runs live only. See
# [DAX networking](../site/labs/04-dynamodb-dax.md#dax-networking).

# %%
def tagged(kind, name):
    return [{"ResourceType": kind, "Tags": [{"Key": "Name", "Value": name}] + t.tags("04")}]


# TODO: find or create the VPC t.name("data") (10.40.0.0/16) as vpc_id, two subnets (10.40.1.0/24, 10.40.2.0/24) in the first two zones as subnet_ids, the security group t.name("dax") admitting TCP 9111 from 10.40.0.0/16 as group_id; live only, the DAX subnet group t.name("dax").
# BEGIN SOLUTION
vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [t.name("data")]}])["Vpcs"]
vpc_id = vpcs[0]["VpcId"] if vpcs else ec2.create_vpc(
    CidrBlock="10.40.0.0/16", TagSpecifications=tagged("vpc", t.name("data")))["Vpc"]["VpcId"]
zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
subnet_ids = []
for n, zone in enumerate(zones, start=1):
    name = t.name("data", f"private-{n}")
    found = ec2.describe_subnets(Filters=[{"Name": "tag:Name", "Values": [name]}])["Subnets"]
    subnet_ids.append(found[0]["SubnetId"] if found else ec2.create_subnet(
        VpcId=vpc_id, CidrBlock=f"10.40.{n}.0/24", AvailabilityZone=zone,
        TagSpecifications=tagged("subnet", name))["Subnet"]["SubnetId"])
groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                               {"Name": "group-name", "Values": [t.name("dax")]}])["SecurityGroups"]
if groups:
    group_id = groups[0]["GroupId"]
else:
    group_id = ec2.create_security_group(GroupName=t.name("dax"), Description="DAX: TLS from the VPC only",
                                         VpcId=vpc_id, TagSpecifications=tagged("security-group", t.name("dax")))["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 9111, "ToPort": 9111, "IpRanges": [{"CidrIp": "10.40.0.0/16"}]}])
if not t.is_local:  # the local AWS has no DAX subnet groups
    try:
        dax.create_subnet_group(SubnetGroupName=t.name("dax"), SubnetIds=subnet_ids)
    except dax.exceptions.SubnetGroupAlreadyExistsFault:
        pass
# END SOLUTION
print("VPC", vpc_id, "| subnets", subnet_ids, "| security group", group_id)

# %% [markdown]
# ### The role DAX reads with
#
# DAX reaches the table with its own IAM role, not your application's.
# Create `<prefix>-orders-dax`, trusted by `dax.amazonaws.com` only, with an
# inline policy that allows the item actions DAX performs (`GetItem`,
# `BatchGetItem`, `Query`, `Scan`, `PutItem`, `UpdateItem`, `DeleteItem`,
# `BatchWriteItem`, `ConditionCheckItem`, `DescribeTable`) on the table and
# its indexes, and nothing else. See [DAX role](../site/labs/04-dynamodb-dax.md#dax-role).

# %%
dax_role = t.name("orders-dax")
# TODO: create dax_role (trust dax.amazonaws.com, Tags=t.tags("04")), tolerating EntityAlreadyExists, and put_role_policy "orders-v2-items" allowing the item actions on the table's ARN and f"{arn}/index/*".
# BEGIN SOLUTION
trust = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "dax.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
try:
    iam.create_role(RoleName=dax_role, AssumeRolePolicyDocument=json.dumps(trust), Tags=t.tags("04"))
except iam.exceptions.EntityAlreadyExistsException:
    pass
actions = ["GetItem", "BatchGetItem", "Query", "Scan", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem",
           "ConditionCheckItem", "DescribeTable"]
iam.put_role_policy(RoleName=dax_role, PolicyName="orders-v2-items", PolicyDocument=json.dumps({
    "Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": [f"dynamodb:{a}" for a in actions],
        "Resource": [table["TableArn"], f"{table['TableArn']}/index/*"]}]}))
# END SOLUTION
role_arn = iam.get_role(RoleName=dax_role)["Role"]["Arn"]
print(role_arn)

# %% [markdown]
# ### The cluster
#
# Create the cluster: DAX names are at most 20 characters, so
# `t.name("dax", limit=20)` cuts your prefix to fit. Node type `dax.t3.small` and **one node**
# for the lab (production runs three, one per zone); the role above;
# `SSESpecification={"Enabled": True}` (encryption at rest) and
# `ClusterEndpointEncryptionType="TLS"` (in transit). Both can only be set
# when the cluster is created. Live, pass the subnet group too. A new role
# takes a few seconds to be usable: retry while DAX says it cannot assume it.

# %%
cluster_name = t.name("dax", limit=20)
# TODO: create the DAX cluster cluster_name (dax.t3.small, ReplicationFactor=1, IamRoleArn=role_arn, SecurityGroupIds=[group_id], encryption at rest and TLS, Tags=t.tags("04"); live also SubnetGroupName=t.name("dax")); tolerate ClusterAlreadyExistsFault.
# BEGIN SOLUTION
settings = dict(ClusterName=cluster_name, NodeType="dax.t3.small", ReplicationFactor=1, IamRoleArn=role_arn,
                SecurityGroupIds=[group_id], SSESpecification={"Enabled": True},
                ClusterEndpointEncryptionType="TLS", Tags=t.tags("04"))
if not t.is_local:
    settings["SubnetGroupName"] = t.name("dax")
for attempt in range(10):
    try:
        dax.create_cluster(**settings)
        break
    except dax.exceptions.ClusterAlreadyExistsFault:
        break
    except dax.exceptions.InvalidParameterValueException as exc:
        if "role" not in str(exc).lower() or attempt == 9:
            raise
        time.sleep(5)  # the new role is not visible to DAX yet
# END SOLUTION
cluster = dax.describe_clusters(ClusterNames=[cluster_name])["Clusters"][0]
print(cluster["ClusterName"], cluster["Status"], cluster["NodeType"], cluster.get("SSEDescription"),
      cluster.get("ClusterEndpointEncryptionType"))

# %%
checks.run("L04.15-L04.17")

# %% [markdown]
# A live cluster takes about ten minutes to become `available`. L04.16
# says SKIP on the local AWS: it cannot show a cluster's subnets and
# security group, so a live run verifies them.
#
# ## 9. One setting switches the read path
#
# The service reads through whatever client `read_client` gives it; which
# one is configuration, not code (the twelve-factor way): the environment
# variable `ORDERS_READ_PATH` is `dynamodb` (the default) or `dax`, and
# `DAX_ENDPOINT` names the cluster. Write `read_client(config=os.environ)`:
# `labkit.target().client("dynamodb")` for `dynamodb`;
# `amazondax.AmazonDaxClient(endpoint_url=config["DAX_ENDPOINT"])` for
# `dax` (live only: `pip install amazon-dax-client`); a `ValueError` naming
# the setting for anything else. See [Read path](../site/labs/04-dynamodb-dax.md#read-path).

# %%
# TODO: set read_path_source to the code of read_client(config=os.environ).
# BEGIN SOLUTION
read_path_source = '''\
def read_client(config=os.environ):
    """The client reads go through: DynamoDB, or DAX in front of it, chosen by ORDERS_READ_PATH."""
    path = config.get("ORDERS_READ_PATH", "dynamodb")
    if path == "dynamodb":
        return labkit.target().client("dynamodb")
    if path == "dax":
        import amazondax  # pip install amazon-dax-client (live accounts only)

        return amazondax.AmazonDaxClient(endpoint_url=config["DAX_ENDPOINT"], region_name=labkit.target().region)
    raise ValueError(f"ORDERS_READ_PATH is {path!r}; use 'dynamodb' or 'dax'")
'''
# END SOLUTION
queries = save_module(reads_source, writes_source, read_path_source)
reader = queries.read_client({"ORDERS_READ_PATH": "dynamodb"})
print(type(reader).__name__, [i["orderId"]["S"] for i in queries.customer_orders(reader, table_name, "customer-040")])

# %% [markdown]
# On a live account, once the cluster is `available`, compare the two paths:
# the same 200 `GetItem` calls through DynamoDB and through DAX. The first
# round through DAX fills its cache; the second is served from memory.

# %%
if t.is_local:
    print("Live accounts only: the local AWS cannot serve a DAX endpoint.")
else:
    endpoint = dax.describe_clusters(ClusterNames=[cluster_name])["Clusters"][0]["ClusterDiscoveryEndpoint"].get("URL")
    if not endpoint:
        print("The cluster is not available yet; run this cell again in a few minutes.")
    else:
        sample = orders[::4][:200]
        latency = []
        for label, config in (("DynamoDB", {"ORDERS_READ_PATH": "dynamodb"}),
                              ("DAX", {"ORDERS_READ_PATH": "dax", "DAX_ENDPOINT": endpoint})):
            client = queries.read_client(config)
            for round_ in ("first", "second"):
                started = time.perf_counter()
                for o in sample:
                    queries.get_order(client, table_name, o["customerId"], o["orderId"])
                took = (time.perf_counter() - started) / len(sample) * 1000
                latency.append((f"{label}, {round_} round", {"ms per GetItem": round(took, 2)}))
        chart = labkit.plot.Bars(latency, title="GetItem latency", unit=" ms")
        print(chart)
        display(chart)  # noqa: F821 (a notebook built-in)

# %%
checks.run("L04.18")

# %% [markdown]
# ## What you built
#
# A table whose keys answer the service's three questions with reads that
# cost what they return; writes that a retry or a race cannot corrupt;
# capacity that follows the load between limits you chose; expiry, a change
# stream, backups and protection against deletion; and a cache in front of
# it all, in private subnets, reading as a role that reaches one table.
#
# The whole lab, graded in one go (run it again after any change):

# %%
checks.run("04")

# %% [markdown]
# **On a live account, delete the DAX cluster now** (it bills per hour):
# `python -m labkit cleanup --live` removes everything the course made.
# Locally, save your state: `python -m labkit save end-of-04`.
