"""Lab 04 (DynamoDB + DAX): key design, query functions, capacity, life cycle, safe writes and DAX."""
from __future__ import annotations

import functools
import json
from pathlib import Path

from labkit import assets, remember
from labkit.config import work_dir
from labkit.policyeval import action_match, applies, arn_match, statements
from labkit.target import Target

from . import iam, learner, sandbox
from .aws import absent, as_list, missing_tags
from .core import LOCAL_PARTIAL, Outcome, Status, check, failed, passed, skipped

DOCS = "labs/04-dynamodb-dax.md"
INDEX = "status-day"
KEYS = [("customerId", "HASH"), ("orderId", "RANGE")]
INDEX_KEYS = [("statusDay", "HASH"), ("createdAt", "RANGE")]
FUNCTIONS = ("get_order", "customer_orders", "orders_by_status", "create_order", "place_order", "read_client")
# Application Auto Scaling dimensions the table and its index need, with the metric each tracks.
DIMENSIONS = {"dynamodb:table:ReadCapacityUnits": "DynamoDBReadCapacityUtilization",
              "dynamodb:table:WriteCapacityUnits": "DynamoDBWriteCapacityUtilization",
              "dynamodb:index:ReadCapacityUnits": "DynamoDBReadCapacityUtilization",
              "dynamodb:index:WriteCapacityUnits": "DynamoDBWriteCapacityUtilization"}
TARGET_RANGE = (20.0, 90.0)  # DynamoDB's target utilisation, percent
MAX_CAPACITY = 40_000  # the default per-table quota of read or write capacity units
DAX_SERVICE = "dax.amazonaws.com"
DAX_NAME_LIMIT = 20  # characters in a DAX cluster name
DAX_TLS_PORT = 9111
DAX_PLAIN_PORT = 8111
# The reads DAX serves for the service: without them on the table DAX cannot fill its caches.
DAX_NEEDS = ("GetItem", "Query")
# Access patterns graded on the provided data set: big, middling and tiny answers.
CUSTOMERS = (("customer-001", 5), ("customer-017", 10), ("customer-040", 10))
PICK_LISTS = (("SHIPPED", "2026-10-05"), ("PENDING", "2026-10-09"), ("CANCELLED", "2026-10-12"),
              ("DELIVERED", "2026-09-30"))
SAMPLE_EVERY = 40  # L04.03 reads every 40th order of the data set


# -- names and lookups ----------------------------------------------------------------

def table_name(t: Target) -> str:
    return t.name("orders-v2")


def stock_name(t: Target) -> str:
    return t.name("stock")


def role_name(t: Target) -> str:
    return t.name("orders-dax")


def cluster_name(t: Target) -> str:
    return t.name("dax", limit=DAX_NAME_LIMIT)


def module_path():
    return work_dir() / "orders-v2" / "queries.py"


def table_arn(t: Target, name: str | None = None) -> str:
    return f"arn:aws:dynamodb:{t.region}:{t.account_id}:table/{name or table_name(t)}"


def _describe(t: Target, name: str) -> dict | None:
    return t.memo(f"lab04.table.{name}", lambda: (absent(
        lambda: t.client("dynamodb").describe_table(TableName=name), "ResourceNotFoundException") or {}).get("Table"))


def _table(t: Target) -> dict | None:
    return _describe(t, table_name(t))


def _no_table(t: Target, name: str | None = None):
    return failed(f"Table {name or table_name(t)} does not exist.")


def _index(table: dict) -> dict | None:
    return next((i for i in table.get("GlobalSecondaryIndexes", []) if i["IndexName"] == INDEX), None)


def _cluster(t: Target) -> dict | None:
    def look():
        found = absent(lambda: t.client("dax").describe_clusters(ClusterNames=[cluster_name(t)]), "ClusterNotFoundFault")
        return next(iter((found or {}).get("Clusters", [])), None)

    return t.memo("lab04.cluster", look)


def _no_cluster(t: Target):
    return failed(f"DAX cluster {cluster_name(t)} does not exist.")


@functools.cache
def _orders() -> tuple[dict, ...]:
    return tuple(assets.lab04_orders())


def _order_id(item) -> str | None:
    """An item's orderId whether the function returned DynamoDB's typed form or plain values."""
    if not isinstance(item, dict):
        return None
    value = item.get("orderId")
    return value.get("S") if isinstance(value, dict) else value


def _plain(value):
    """DynamoDB's typed value ({"N": "12"}) as plain Python, or the value itself when already plain."""
    if isinstance(value, dict) and len(value) == 1:
        kind, inner = next(iter(value.items()))
        if kind == "S":
            return inner
        if kind == "N":
            return float(inner)
        if kind == "M":
            return {k: _plain(v) for k, v in inner.items()}
        if kind == "L":
            return [_plain(v) for v in inner]
    if isinstance(value, (int, float)) or type(value).__name__ == "Decimal":
        return float(value)
    return value


# -- the learner's module ---------------------------------------------------------------

PAGE_LIMIT = 4  # items per page while grading: a function that reads only the first page shows it
MAX_CALLS = 50  # no access pattern on the data set needs more; a loop that never ends does


# The checks that call the learner's read functions, each in a child process of its own.
CALLERS = ("L04.04", "L04.05", "L04.06", "L04.18")


def _learner(t: Target, caller: str):
    """(the learner's module running in ``caller``'s child process, None) or (None, a failed Outcome)."""
    path = module_path()
    if not path.is_file():
        return None, failed(f"{path} does not exist; the notebook's step 3 writes it.")
    module = learner.reads(t, path, FUNCTIONS, page_limit=PAGE_LIMIT, scope=caller, scopes=CALLERS)
    if module.problem:
        return None, failed(module.problem)
    return module, None


def _function(t: Target, name: str, caller: str):
    """(the module, None) when it defines ``name``, or (None, a failed Outcome)."""
    module, problem = _learner(t, caller)
    if problem:
        return None, problem
    if not module.defines(name):
        return None, failed(f"{module_path().name} defines no function {name}.")
    return module, None


def _unreachable_error(error: dict) -> bool:
    """Whether an error (as the learner's child reports it) says the network could not reach the endpoint."""
    if error.get("os_error"):  # ConnectionError, TimeoutError, socket.gaierror and socket.timeout among them
        return True
    if error.get("mistake"):
        return False  # the code's own mistakes, whatever their text says
    return any(word in error.get("type", "") for word in ("Timeout", "Connect", "Unreachable"))


def _pattern(t: Target, name: str, caller: str, said: str, *args, **kwargs):
    """Run access-pattern function ``name`` in the learner's child, counting its reads.

    Returns (items, the call, None), or (None, None, a failed Outcome) when the function is missing, fails, or
    reads with a Scan.
    """
    module, problem = _function(t, name, caller)
    if problem:
        return None, None, problem
    if _table(t) is None:
        return None, None, _no_table(t)
    call = module.call(name, table_name(t), *args, **kwargs)
    if call.error:
        return None, None, failed(f"{call.error}.")
    items = as_list(call.value)
    scan = _scans(call, said, len(items))
    if scan:
        return None, None, failed(f"{scan}.")
    return items, call, None


def _scans(call: learner.Call, name: str, returned: int) -> str | None:
    if not call.through_client:
        return (f"{name} made no call through the client it was given, so its reads cannot be counted; "
                "use that client")
    scans = call.ops("Scan")
    if scans:
        return (f"{name} made {len(scans)} Scan call(s), reading {sum(c['read'] for c in scans)} items to return "
                f"{returned}; serve the pattern with a key (GetItem or Query)")
    return None


# -- the table and its index ------------------------------------------------------------

@check("L04.01", "orders-v2 is keyed by customer and time-ordered order id", step=1, points=2,
       hint="create_table <prefix>-orders-v2 with customerId (S) as the partition key (HASH) and orderId (S) as the "
            "sort key (RANGE), Tags=t.tags('04').",
       docs=f"{DOCS}#key-design")
def keys_serve_patterns(t: Target):
    table = _table(t)
    if table is None:
        return _no_table(t)
    name = table_name(t)
    keys = [(k["AttributeName"], k["KeyType"]) for k in table.get("KeySchema", [])]
    if keys != KEYS:
        shown = ", ".join(f"{n} ({k})" for n, k in keys)
        return failed(f"Table {name} is keyed by {shown}; a customer's orders newest first need customerId as the "
                      "partition key (HASH) and the time-ordered orderId as the sort key (RANGE).")
    types = {a["AttributeName"]: a["AttributeType"] for a in table.get("AttributeDefinitions", [])}
    wrong = [f"{n} is {types.get(n)}" for n, _ in KEYS if types.get(n) != "S"]
    if wrong:
        return failed(f"Table {name}: {', '.join(wrong)}; both keys are strings (S), so order ids sort as text.")
    tags = t.client("dynamodb").list_tags_of_resource(ResourceArn=table["TableArn"]).get("Tags", [])
    missing = missing_tags(tags, t.tag_map("04"))
    if missing:
        return failed(f"Table {name} lacks the tags {', '.join(missing)}.")
    return passed(f"Table {name} is keyed by customerId (HASH) and orderId (RANGE), and tagged.")


@check("L04.02", "The status-day index serves the pick list without extra reads", step=1, points=2,
       hint="Add the global secondary index status-day: statusDay (S) HASH, createdAt (S) RANGE, projection INCLUDE "
            "['items', 'total'] (or ALL). KEYS_ONLY would cost a GetItem per order on the list.",
       docs=f"{DOCS}#global-secondary-indexes")
def status_day_index(t: Target):
    table = _table(t)
    if table is None:
        return _no_table(t)
    name = table_name(t)
    index = _index(table)
    if index is None:
        have = ", ".join(i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])) or "none"
        return failed(f"Table {name} has no global secondary index {INDEX} (its indexes: {have}).")
    keys = [(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]]
    if keys != INDEX_KEYS:
        shown = ", ".join(f"{n} ({k})" for n, k in keys)
        hot = " A status alone has six values: six partitions take every write (a hot partition)." \
            if ("status", "HASH") in keys else ""
        return failed(f"Index {INDEX} is keyed by {shown}; the pick list needs statusDay (HASH) and createdAt "
                      f"(RANGE).{hot}")
    types = {a["AttributeName"]: a["AttributeType"] for a in table.get("AttributeDefinitions", [])}
    wrong = [f"{n} is {types.get(n)}" for n, _ in INDEX_KEYS if types.get(n) != "S"]
    if wrong:
        return failed(f"Index {INDEX}: {', '.join(wrong)}; both keys are strings (S).")
    projection = index.get("Projection", {})
    kind = projection.get("ProjectionType")
    if kind == "KEYS_ONLY" or (kind == "INCLUDE" and "items" not in projection.get("NonKeyAttributes", [])):
        return failed(f"Index {INDEX} projects {kind} {projection.get('NonKeyAttributes', [])}: the pick list needs "
                      "each order's items, so every result would cost a GetItem on the table; project items "
                      "(INCLUDE) or ALL.")
    return passed(f"Index {INDEX} on {name} is keyed by statusDay and createdAt and projects {kind}.")


@check("L04.03", "The provided data set is loaded, with statusDay derived", step=2, points=2,
       hint="Load labkit.assets.lab04_orders() into orders-v2 with a batch writer, adding statusDay = "
            "f\"{status}#{createdAt[:10]}\" to each order, and labkit.assets.lab04_stock() into <prefix>-stock.",
       docs=f"{DOCS}#the-data-set")
def data_loaded(t: Target):
    table, stock = _table(t), _describe(t, stock_name(t))
    if table is None:
        return _no_table(t)
    if stock is None:
        return _no_table(t, stock_name(t))
    if [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]] != KEYS:
        return failed(f"Table {table_name(t)} is not keyed as L04.01 asks, so the data set cannot be looked up.")
    sample = _orders()[::SAMPLE_EVERY]
    keys = [{"customerId": {"S": o["customerId"]}, "orderId": {"S": o["orderId"]}} for o in sample]
    found = _batch_get(t, table_name(t), keys)
    missing = [o["orderId"] for o in sample if o["orderId"] not in found]
    if missing:
        return failed(f"Table {table_name(t)} lacks {len(missing)} of {len(sample)} sampled orders of the data set "
                      f"(for example {missing[0]}).")
    wrong = []
    for order in sample:
        got = _plain(found[order["orderId"]].get("statusDay"))
        want = f"{order['status']}#{order['createdAt'][:10]}"
        if got != want:
            wrong.append(f"{order['orderId']} has statusDay {got!r}, not {want!r}")
    if wrong:
        return failed(f"Table {table_name(t)}: {iam.short(wrong, 2)}.")
    skus = [s["sku"] for s in assets.lab04_stock()]
    have = _batch_get(t, stock_name(t), [{"sku": {"S": s}} for s in skus], key="sku")
    lacking = [s for s in skus if s not in have or "available" not in have[s]]
    if lacking:
        return failed(f"Table {stock_name(t)} lacks stock (an 'available' number) for {', '.join(lacking[:4])}.")
    return passed(f"Table {table_name(t)} holds the sampled orders with statusDay, and {stock_name(t)} "
                  f"holds stock for {len(skus)} SKUs.")


def _batch_get(t: Target, name: str, keys: list[dict], key: str = "orderId") -> dict[str, dict]:
    client, found = t.client("dynamodb"), {}
    for start in range(0, len(keys), 100):
        request = {name: {"Keys": keys[start:start + 100]}}
        while request:
            answer = client.batch_get_item(RequestItems=request)
            for item in answer.get("Responses", {}).get(name, []):
                found[item[key]["S"]] = item
            request = answer.get("UnprocessedKeys") or None
    return found


# -- the query functions ------------------------------------------------------------------

@check("L04.04", "get_order returns one of a customer's orders with a single GetItem", step=3, points=2,
       hint="get_order(client, table, customer_id, order_id): client.get_item with both keys; return the Item, or "
            "None when there is none.",
       docs=f"{DOCS}#query-functions")
def get_order_reads_one(t: Target):
    module, problem = _function(t, "get_order", "L04.04")
    if problem:
        return problem
    if _table(t) is None:
        return _no_table(t)
    orders = _orders()
    cases = [(orders[0], True), (orders[len(orders) // 2], True),
             ({"customerId": orders[0]["customerId"], "orderId": orders[1]["orderId"]}, False)]
    for order, exists in cases:
        reads = module.call("get_order", table_name(t), order["customerId"], order["orderId"])
        if reads.error:
            return failed(f"{reads.error}.")
        got = reads.value
        if not reads.through_client or not reads.ops("GetItem") or reads.ops("Scan") or reads.ops("Query"):
            made = ", ".join(c["op"] for c in reads.calls) or "no"
            return failed(f"get_order made {made} calls through the client it was given, reading {reads.read} items; "
                          "one order with both keys known is a single GetItem on that client.")
        if exists and _order_id(got) != order["orderId"]:
            return failed(f"get_order({order['customerId']!r}, {order['orderId']!r}) returned "
                          f"{str(got)[:80]}, not that order.")
        if not exists and got is not None:
            return failed(f"get_order({order['customerId']!r}, {order['orderId']!r}) returned {str(got)[:80]}; "
                          "that order belongs to another customer, so the answer is None.")
    return passed("get_order finds an order with one GetItem and answers None for another customer's order.")


@check("L04.05", "customer_orders returns a customer's newest orders with one Query, reading only what it returns", step=3,
       points=3,
       hint="customer_orders(client, table, customer_id, limit=10): client.query with KeyConditionExpression on "
            "customerId, ScanIndexForward=False and Limit=limit, asking on with ExclusiveStartKey while a page "
            "leaves orders missing; return the Items.",
       docs=f"{DOCS}#query-functions")
def customer_orders_query(t: Target):
    for customer, limit in CUSTOMERS:
        want = sorted((o["orderId"] for o in _orders() if o["customerId"] == customer), reverse=True)[:limit]
        said = f"customer_orders({customer!r}, limit={limit})"
        items, reads, problem = _pattern(t, "customer_orders", "L04.05", said, customer, limit=limit)
        if problem:
            return problem
        ids = [_order_id(i) for i in items]
        if ids != want:
            oldest = sorted(o["orderId"] for o in _orders() if o["customerId"] == customer)[:len(ids)]
            order = " (oldest first: use ScanIndexForward=False)" if ids and ids == oldest else ""
            return failed(f"{said} returned {len(ids)} orders starting {ids[:2]}; expected {len(want)} starting "
                          f"{want[:2]}{order}.")
        if reads.ops("Query") and any(c.get("index") for c in reads.ops("Query")):
            return failed(f"{said} queried an index; the table's own keys serve this pattern.")
        if reads.read > len(ids):
            return failed(f"{said} read {reads.read} items to return {len(ids)}: pass Limit to the Query instead "
                          "of cutting the list afterwards (you pay for every item read).")
    return passed(f"customer_orders answers {len(CUSTOMERS)} customers newest first with Query, reading only the "
                  "items it returns.")


@check("L04.06", "orders_by_status returns a day's pick list from the status-day index", step=3, points=3,
       hint="orders_by_status(client, table, status, day): client.query on IndexName='status-day' with "
            "statusDay = f'{status}#{day}', following LastEvaluatedKey; return the Items oldest first.",
       docs=f"{DOCS}#query-functions")
def orders_by_status_query(t: Target):
    for status, day in PICK_LISTS:
        want = [o for o in _orders() if o["status"] == status and o["createdAt"].startswith(day)]
        said = f"orders_by_status({status!r}, {day!r})"
        items, reads, problem = _pattern(t, "orders_by_status", "L04.06", said, status, day)
        if problem:
            return problem
        if want and not any(c.get("index") for c in reads.ops("Query")):
            return failed(f"{said} did not Query an index: the table's keys cannot find orders by status.")
        ids = [_order_id(i) for i in items]
        if sorted(ids) != sorted(o["orderId"] for o in want):
            return failed(f"{said} returned {len(ids)} orders; the data set has {len(want)} {status} orders "
                          f"placed on {day}.")
        times = [_plain(i.get("createdAt")) for i in items]
        if times != sorted(times):
            return failed(f"{said} returned the orders out of time order; the index's sort key createdAt gives "
                          "them oldest first.")
        if reads.read > len(ids):
            return failed(f"{said} read {reads.read} items to return {len(ids)}; a key condition on statusDay "
                          "reads only the matching orders (a FilterExpression still reads, and bills, the rest).")
    return passed(f"orders_by_status answers {len(PICK_LISTS)} pick lists from index {INDEX}, reading only what "
                  "it returns.")


# -- capacity ---------------------------------------------------------------------------------

def _resources(t: Target) -> dict[str, str]:
    """Application Auto Scaling resource id -> the dimension kind it scales."""
    base = f"table/{table_name(t)}"
    return {base: "table", f"{base}/index/{INDEX}": "index"}


def _targets(t: Target) -> list[dict]:
    def look():
        client = t.client("application-autoscaling")
        found = []
        for page in client.get_paginator("describe_scalable_targets").paginate(
                ServiceNamespace="dynamodb", ResourceIds=list(_resources(t))):
            found += page.get("ScalableTargets", [])
        return found

    return t.memo("lab04.targets", look)


def _billing(table: dict) -> str:
    # A table created provisioned and never switched has no BillingModeSummary.
    return (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")


def _wanted(t: Target) -> list[tuple[str, str]]:
    """(resource id, dimension) pairs the table and its index must scale."""
    return [(resource, dimension) for resource, kind in _resources(t).items()
            for dimension in DIMENSIONS if dimension.split(":")[1] == kind]


@check("L04.07", "Provisioned capacity scales automatically within sound limits", step=7, points=3,
       hint="update_table to BillingMode PROVISIONED (table and index), then register_scalable_target for read and "
            "write capacity of table/<table> and table/<table>/index/status-day with 1 <= MinCapacity <= MaxCapacity.",
       docs=f"{DOCS}#capacity-modes")
def capacity_scales(t: Target):
    table = _table(t)
    if table is None:
        return _no_table(t)
    name = table_name(t)
    if _billing(table) != "PROVISIONED":
        return failed(f"Table {name} is on-demand ({_billing(table)}); auto scaling adjusts provisioned capacity, "
                      "so switch the table to PROVISIONED once its load is known.")
    have = {(s["ResourceId"], s["ScalableDimension"]): s for s in _targets(t)}
    missing = [f"{d.split(':', 1)[1]} of {r}" for r, d in _wanted(t) if (r, d) not in have]
    if missing:
        return failed(f"No scalable target for {iam.short(missing, 4)}; without one that capacity stays fixed.")
    problems = []
    for key in _wanted(t):
        target = have[key]
        high = target["MaxCapacity"]
        where = f"{key[1].split(':', 1)[1]} of {key[0]}"
        # A minimum below 1 or an inverted range never gets here: AWS, and the local AWS, refuse to register one.
        if high > MAX_CAPACITY:
            problems.append(f"{where} has MaxCapacity {high}, above the default quota of {MAX_CAPACITY:,} units per "
                            "table, so AWS cannot scale that far")
    if problems:
        return failed(f"{iam.short(problems, 2)}.")
    return passed(f"Table {name} and index {INDEX} are provisioned, with read and write capacity scaling between "
                  "sound limits.")


@check("L04.08", "Target tracking keeps utilisation between 20 and 90 percent", step=7, points=2,
       hint="put_scaling_policy TargetTrackingScaling for each of the four scalable targets, with "
            "PredefinedMetricType DynamoDBReadCapacityUtilization or DynamoDBWriteCapacityUtilization and a "
            "TargetValue between 20 and 90 (70 is the console's default).",
       docs=f"{DOCS}#auto-scaling")
def target_tracking(t: Target):
    if _table(t) is None:
        return _no_table(t)
    client = t.client("application-autoscaling")
    policies: dict[tuple[str, str], list[dict]] = {}
    for resource in _resources(t):
        for page in client.get_paginator("describe_scaling_policies").paginate(
                ServiceNamespace="dynamodb", ResourceId=resource):
            for policy in page.get("ScalingPolicies", []):
                if policy["ResourceId"] != resource:
                    continue  # the local AWS matches ResourceId as a prefix; AWS matches it exactly
                policies.setdefault((resource, policy["ScalableDimension"]), []).append(policy)
    problems, missing = [], []
    low, high = TARGET_RANGE
    for resource, dimension in _wanted(t):
        where = f"{dimension.split(':', 1)[1]} of {resource}"
        tracking = [p for p in policies.get((resource, dimension), []) if p.get("PolicyType") == "TargetTrackingScaling"]
        if not tracking:
            missing.append(where)
            continue
        for policy in tracking:
            config = policy.get("TargetTrackingScalingPolicyConfiguration", {})
            metric = (config.get("PredefinedMetricSpecification") or {}).get("PredefinedMetricType")
            value = config.get("TargetValue")
            if metric != DIMENSIONS[dimension]:
                problems.append(f"policy {policy['PolicyName']} on {where} tracks {metric}, not {DIMENSIONS[dimension]}")
            elif value is None or not low <= value <= high:
                problems.append(f"policy {policy['PolicyName']} on {where} targets {value} percent, which AWS rejects "
                                f"for DynamoDB (ValidationException: the target utilisation must be between "
                                f"{low:g} and {high:g})")
    if problems:
        return failed(f"{iam.short(problems, 2)}.")
    if missing:
        return failed(f"No target-tracking policy for {iam.short(missing, 4)}.")
    return passed(f"All four capacities of {table_name(t)} track a utilisation target between {low:g} and "
                  f"{high:g} percent.")


# -- life cycle and safety --------------------------------------------------------------------

@check("L04.09", "Unpaid orders expire through TTL on expiresAt", step=6, points=1,
       hint="update_time_to_live with TimeToLiveSpecification {'Enabled': True, 'AttributeName': 'expiresAt'}.",
       docs=f"{DOCS}#ttl")
def ttl_on(t: Target):
    if _table(t) is None:
        return _no_table(t)
    name = table_name(t)
    ttl = t.client("dynamodb").describe_time_to_live(TableName=name).get("TimeToLiveDescription", {})
    status, attribute = ttl.get("TimeToLiveStatus"), ttl.get("AttributeName")
    if status not in ("ENABLED", "ENABLING"):
        return failed(f"Table {name} has TTL {status or 'DISABLED'}; unpaid orders would stay forever.")
    if attribute != "expiresAt":
        return failed(f"Table {name}'s TTL reads {attribute}; the orders carry their expiry in expiresAt.")
    return passed(f"Table {name} deletes orders whose expiresAt has passed.")


@check("L04.10", "A stream carries every change with its old and new image", step=6, points=1,
       hint="update_table StreamSpecification {'StreamEnabled': True, 'StreamViewType': 'NEW_AND_OLD_IMAGES'}.",
       docs=f"{DOCS}#streams")
def stream_on(t: Target):
    table = _table(t)
    if table is None:
        return _no_table(t)
    spec = table.get("StreamSpecification") or {}
    if not spec.get("StreamEnabled"):
        return failed(f"Table {table_name(t)} has no stream, so no other service can react to order changes.")
    if spec.get("StreamViewType") != "NEW_AND_OLD_IMAGES":
        return failed(f"Table {table_name(t)}'s stream carries {spec.get('StreamViewType')}; a consumer that reacts "
                      "to a status change needs NEW_AND_OLD_IMAGES.")
    return passed(f"Table {table_name(t)} streams NEW_AND_OLD_IMAGES.")


@check("L04.11", "Point-in-time recovery is on", step=6, points=1,
       hint="update_continuous_backups with PointInTimeRecoverySpecification {'PointInTimeRecoveryEnabled': True}.",
       docs=f"{DOCS}#backups-and-protection")
def pitr_on(t: Target):
    if _table(t) is None:
        return _no_table(t)
    backups = t.client("dynamodb").describe_continuous_backups(TableName=table_name(t))["ContinuousBackupsDescription"]
    status = (backups.get("PointInTimeRecoveryDescription") or {}).get("PointInTimeRecoveryStatus")
    if status != "ENABLED":
        return failed(f"Table {table_name(t)} has point-in-time recovery {status or 'DISABLED'}; a bad deploy that "
                      "overwrites orders could not be undone.")
    return passed(f"Table {table_name(t)} can be restored to any second of the recovery period.")


@check("L04.12", "Deletion protection is on", step=6, points=1,
       hint="update_table DeletionProtectionEnabled=True.",
       docs=f"{DOCS}#backups-and-protection")
def deletion_protected(t: Target):
    table = _table(t)
    if table is None:
        return _no_table(t)
    if not table.get("DeletionProtectionEnabled"):
        return failed(f"Table {table_name(t)} can be deleted by one call; turn on deletion protection.")
    return passed(f"Table {table_name(t)} refuses DeleteTable until deletion protection is turned off.")


def _sample_order(order_id: str, sku: str = "SKU-001", quantity: int = 1, total: int = 1299) -> dict:
    """An order as the service hands it to a write: without statusDay, which the write derives."""
    return {"orderId": order_id, "customerId": "course-grader", "createdAt": "2026-11-02T09:00:00Z",
            "status": "NEW", "items": [{"sku": sku, "quantity": quantity}], "total": total}


def _status_day(order: dict) -> str:
    return f"{order['status']}#{order['createdAt'][:10]}"


def _remembered(check_id: str, tables: list[dict], judge) -> Outcome:
    """The sandbox's verdict, remembered by everything it depends on.

    Running the learner's write functions in the private DynamoDB costs about a
    third of a second (loading moto); the same module on tables with the same
    keys behaves the same, so regrading unchanged work reuses the verdict. The
    check's own code is part of the key, so a change to it judges again.
    """
    shapes = [{k: table.get(k) for k in ("TableName", "KeySchema", "AttributeDefinitions")} |
              {"indexes": [(i["IndexName"], i["KeySchema"], i["Projection"]) for i in table.get("GlobalSecondaryIndexes", [])]}
              for table in tables]
    # The grader's and labkit's code (the sandbox, moto's fidelity patches) are part of the key.
    key = remember.digest(check_id, remember.code_digest("checks", "labkit"),
                          module_path().read_bytes(), json.dumps(shapes, sort_keys=True, default=str))

    def judge_now():
        outcome = judge()
        return [outcome.status.value, outcome.message]

    status, message = remember.remembered("sandbox-verdicts.json", key, judge_now)
    return Outcome(Status(status), message)


def _key(order: dict) -> dict:
    return {"customerId": {"S": order["customerId"]}, "orderId": {"S": order["orderId"]}}


def _sandbox(t: Target, *tables: dict) -> learner.Functions:
    """The learner's module in a child with empty, private copies of ``tables`` (checks.sandbox)."""
    return learner.sandbox(t, module_path(), FUNCTIONS, [sandbox.definition(table) for table in tables])


@check("L04.13", "create_order refuses a duplicate instead of overwriting", step=5, points=2,
       hint="create_order(client, table, order): put_item with ConditionExpression "
            "'attribute_not_exists(orderId)'; catch ConditionalCheckFailedException and return False.",
       docs=f"{DOCS}#conditional-writes")
def create_is_idempotent(t: Target):
    module, problem = _function(t, "create_order", "L04.04")
    if problem:
        return problem
    table = _table(t)
    if table is None:
        return _no_table(t)
    return _remembered("L04.13", [table], lambda: _judge_create(_sandbox(t, table), table_name(t)))


def _judge_create(box: learner.Functions, name: str):
    first = _sample_order("20261102T090000Z-grader")
    retry = dict(first, total=99999)  # same key, other content: a second create must not replace the first
    made = box.call("create_order", name, first)
    if made.error:
        return failed(f"{made.error} on a new order.")
    if made.value is not True or box.get(name, _key(first)) is None:
        return failed(f"create_order returned {made.value!r} for a new order; it should store it and return True.")
    again = box.call("create_order", name, retry)
    if again.error:
        if "ConditionalCheckFailed" in again.error:
            return failed("create_order let ConditionalCheckFailedException escape for a duplicate; catch it and "
                          "return False so the service can answer 409.")
        return failed(f"{again.error} on a duplicate order.")
    stored = box.get(name, _key(first)) or {}
    kept = _plain(stored.get("total"))
    if kept != first["total"]:
        return failed("A second create_order with the same orderId overwrote the first order; add "
                      "ConditionExpression='attribute_not_exists(orderId)'.")
    if ["PutItem", False] in made.writes + again.writes:
        return failed("create_order writes with a PutItem that carries no condition: two retries arriving together "
                      "both find no order and both write. Put the check in the write itself: "
                      "ConditionExpression='attribute_not_exists(orderId)'.")
    if again.value is not False:
        return failed(f"create_order returned {again.value!r} for a duplicate; return False so the caller knows.")
    derived = _plain(stored.get("statusDay"))
    if derived != _status_day(first):
        return failed(f"create_order stored the order with statusDay {derived!r}, not {_status_day(first)!r}: the "
                      "status-day index finds an order only by the statusDay the write derives from its status "
                      "and createdAt.")
    return passed("create_order stores a new order and refuses a duplicate, keeping the first.")


@check("L04.14", "place_order moves stock and creates the order together, or not at all", step=5, points=3,
       hint="place_order(client, orders_table, stock_table, order): transact_write_items with one Update per line "
            "('SET available = available - :q', condition 'available >= :q') and the Put of the order "
            "(condition attribute_not_exists(orderId)); return False on TransactionCanceledException.",
       docs=f"{DOCS}#transactions")
def place_is_atomic(t: Target):
    module, problem = _function(t, "place_order", "L04.04")
    if problem:
        return problem
    table, stock = _table(t), _describe(t, stock_name(t))
    if table is None:
        return _no_table(t)
    if stock is None:
        return _no_table(t, stock_name(t))
    return _remembered("L04.14", [table, stock], lambda: _judge_place(_sandbox(t, table, stock), table, stock))


def _judge_place(box: learner.Functions, table: dict, stock: dict):
    orders, skus = table["TableName"], stock["TableName"]
    for sku, available in (("SKU-A", 5), ("SKU-B", 1)):
        box.put(skus, {"sku": {"S": sku}, "available": {"N": str(available)}})

    def levels():
        found = {s: (box.get(skus, {"sku": {"S": s}}) or {}).get("available") for s in ("SKU-A", "SKU-B")}
        return {s: _count(v) for s, v in found.items()}

    too_many = dict(_sample_order("20261102T090000Z-short"), items=[
        {"sku": "SKU-A", "quantity": 2}, {"sku": "SKU-B", "quantity": 2}])
    placed = box.call("place_order", orders, skus, too_many)
    if placed.error:
        return failed(f"{placed.error} when one line lacked stock; return False on TransactionCanceledException.")
    if levels() != {"SKU-A": 5, "SKU-B": 1} or box.get(orders, _key(too_many)):
        return failed(f"When SKU-B lacked stock, place_order still changed something (stock now {levels()}); "
                      "all writes must be in one transact_write_items call, each line with its condition.")
    if placed.value is not False:
        return failed(f"place_order returned {placed.value!r} when SKU-B lacked stock; return False.")
    fits = dict(_sample_order("20261102T090000Z-fits"), items=[
        {"sku": "SKU-A", "quantity": 2}, {"sku": "SKU-B", "quantity": 1}])
    placed = box.call("place_order", orders, skus, fits)
    if placed.error:
        return failed(f"{placed.error} on an order the stock covers.")
    stored = box.get(orders, _key(fits))
    if placed.value is not True or levels() != {"SKU-A": 3, "SKU-B": 0} or not stored:
        return failed(f"place_order returned {placed.value!r} for an order the stock covers, leaving stock "
                      f"{levels()}; it should store the order, take 2 SKU-A and 1 SKU-B, and return True.")
    apart = sorted({op for op, _ in placed.writes if op != "TransactWriteItems"})
    if apart:
        return failed(f"place_order wrote with {', '.join(apart)} outside a transaction: another order can slip in "
                      "between its reads and writes, and a failure midway leaves stock taken for no order. Make "
                      "all of it one transact_write_items call, each line with its condition.")
    strings = [s for s in ("SKU-A", "SKU-B") if "S" in ((box.get(skus, {"sku": {"S": s}}) or {}).get("available") or {})]
    if strings:
        return failed(f"place_order left the stock of {', '.join(strings)} as a string, not a number: "
                      "'available >= :q' then compares text, so '10' < '9'; keep available a number (N).")
    derived = _plain(stored.get("statusDay"))
    if derived != _status_day(fits):
        return failed(f"place_order stored the order with statusDay {derived!r}, not {_status_day(fits)!r}: the "
                      "status-day index finds an order only by the statusDay the write derives.")
    replay = dict(fits, items=[{"sku": "SKU-A", "quantity": 2}])
    placed = box.call("place_order", orders, skus, replay)
    if placed.error:
        return failed(f"{placed.error} on a repeated order id.")
    if levels() != {"SKU-A": 3, "SKU-B": 0}:
        return failed(f"Placing an order id a second time took stock again (now {levels()}); the order's Put needs "
                      "attribute_not_exists(orderId) inside the same transaction.")
    if placed.value is not False:
        return failed(f"place_order returned {placed.value!r} for a repeated order id; return False.")
    return passed("place_order takes stock and stores the order in one transaction, and changes nothing when a "
                  "line lacks stock or the order exists.")


def _count(value) -> int | str | None:
    """A stock level as stored: a number, or the text a string attribute holds."""
    if not isinstance(value, dict):
        return None
    if "N" in value:
        return int(float(value["N"]))
    text = value.get("S")
    # Digits stored as text count by their value here, so the check can name the type itself.
    return int(text) if isinstance(text, str) and text.lstrip("-").isdigit() else text


# -- DAX ---------------------------------------------------------------------------------------

def _role_arn(t: Target) -> str:
    return f"arn:aws:iam::{t.account_id}:role/{role_name(t)}"


@check("L04.15", "The DAX cluster encrypts at rest and in transit and reads as its own role", step=8, points=2,
       hint="dax.create_cluster <prefix>-dax (dax.t3.small, ReplicationFactor 1 for the lab), IamRoleArn of "
            "<prefix>-orders-dax, SSESpecification {'Enabled': True}, ClusterEndpointEncryptionType 'TLS', "
            "Tags=t.tags('04').",
       docs=f"{DOCS}#dax")
def dax_cluster(t: Target):
    cluster = _cluster(t)
    if cluster is None:
        return _no_cluster(t)
    name = cluster_name(t)
    problems = []
    if (cluster.get("SSEDescription") or {}).get("Status") not in ("ENABLED", "ENABLING"):
        problems.append("encryption at rest is off (SSESpecification Enabled, which can only be set at creation)")
    if cluster.get("ClusterEndpointEncryptionType") != "TLS":
        problems.append(f"its endpoint is {cluster.get('ClusterEndpointEncryptionType') or 'NONE'}, not TLS, so reads "
                        "cross the network in clear text (also fixed only at creation)")
    if cluster.get("IamRoleArn") != _role_arn(t):
        problems.append(f"it reads the table as {cluster.get('IamRoleArn')}, not role {role_name(t)}")
    if problems:
        return failed(f"DAX cluster {name}: {'; '.join(problems)}.")
    tags = t.client("dax").list_tags(ResourceName=cluster["ClusterArn"]).get("Tags", [])
    missing = missing_tags(tags, t.tag_map("04"))
    if missing:
        return failed(f"DAX cluster {name} lacks the tags {', '.join(missing)}.")
    return passed(f"DAX cluster {name} encrypts at rest and over TLS and reads as role {role_name(t)}.")


def _public_subnets(t: Target, subnet_ids: list[str]) -> list[str]:
    """The subnets whose route table sends 0.0.0.0/0 to an internet gateway."""
    ec2 = t.client("ec2")
    subnets = ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]
    public = []
    for subnet in subnets:
        tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id",
                                                     "Values": [subnet["SubnetId"]]}])["RouteTables"]
        if not tables:  # no association of its own: the VPC's main route table applies
            tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [subnet["VpcId"]]},
                                                        {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
        for table in tables:
            if any(str(r.get("GatewayId", "")).startswith("igw-") for r in table.get("Routes", [])):
                public.append(subnet["SubnetId"])
    return public


def _open_rules(t: Target, group_ids: list[str]) -> list[str]:
    import ipaddress

    problems, ec2 = [], t.client("ec2")
    for group in ec2.describe_security_groups(GroupIds=group_ids)["SecurityGroups"]:
        vpc = ec2.describe_vpcs(VpcIds=[group["VpcId"]])["Vpcs"][0]
        inside = [ipaddress.ip_network(a["CidrBlock"]) for a in vpc.get("CidrBlockAssociationSet", [])] or \
            [ipaddress.ip_network(vpc["CidrBlock"])]
        for rule in group.get("IpPermissions", []):
            outside = [r["CidrIp"] for r in rule.get("IpRanges", []) if r.get("CidrIp") != "0.0.0.0/0" and not any(
                ipaddress.ip_network(r["CidrIp"], strict=False).subnet_of(net) for net in inside)]
            if outside:
                problems.append(f"{group['GroupId']} admits {outside[0]}, outside the VPC ({vpc['CidrBlock']}); only "
                                "the service's own network should reach the cache")
                continue
            ports = (rule.get("FromPort"), rule.get("ToPort"))
            everyone = [r["CidrIp"] for r in rule.get("IpRanges", []) if r.get("CidrIp") == "0.0.0.0/0"] + \
                [r["CidrIpv6"] for r in rule.get("Ipv6Ranges", []) if r.get("CidrIpv6") == "::/0"]
            if everyone:
                problems.append(f"{group['GroupId']} admits {everyone[0]}")
            elif rule.get("IpProtocol") == "-1" or ports != (DAX_TLS_PORT, DAX_TLS_PORT):
                shown = "all ports" if rule.get("IpProtocol") == "-1" else f"ports {ports[0]}-{ports[1]}"
                why = f" ({DAX_PLAIN_PORT} is the unencrypted port)" if DAX_PLAIN_PORT in ports else ""
                problems.append(f"{group['GroupId']} opens {shown}{why}; a TLS cluster needs {DAX_TLS_PORT} only")
    return problems


@check("L04.16", "DAX runs in private subnets of two zones behind a tight security group", step=8, points=2,
       hint="create_subnet_group <prefix>-dax over two private subnets (no route to an internet gateway) in two "
            "Availability Zones, and a security group admitting TCP 9111 from the VPC's CIDR only.",
       docs=f"{DOCS}#dax-networking", local=LOCAL_PARTIAL,
       local_note="The local AWS has no DAX subnet groups and reports the default subnet group and a made-up "
                  "security group for every cluster.")
def dax_private(t: Target):
    cluster = _cluster(t)
    if cluster is None:
        return _no_cluster(t)
    name = cluster_name(t)
    if t.is_local:
        return skipped(f"DAX cluster {name} exists; its subnets and security group are verified on a live account "
                       "(the local AWS cannot show them).")
    group = cluster.get("SubnetGroup")
    if not group or group == "default":
        return failed(f"DAX cluster {name} uses the default subnet group, whose subnets are usually public; create "
                      "one over private subnets.")
    found = t.client("dax").describe_subnet_groups(SubnetGroupNames=[group])["SubnetGroups"][0]
    subnets = found.get("Subnets", [])
    zones = {s.get("SubnetAvailabilityZone") for s in subnets}
    if len(zones) < 2:
        return failed(f"Subnet group {group} spans {len(zones)} Availability Zone(s); use two, so nodes can be "
                      "spread and survive a zone failure.")
    public = _public_subnets(t, [s["SubnetIdentifier"] for s in subnets])
    if public:
        return failed(f"Subnet group {group} includes {', '.join(public)}, which route to an internet gateway; "
                      "DAX belongs in private subnets.")
    groups = [g["SecurityGroupIdentifier"] for g in cluster.get("SecurityGroups", [])]
    problems = _open_rules(t, groups) if groups else ["it has no security group"]
    if problems:
        return failed(f"DAX cluster {name}: {iam.short(problems, 2)}.")
    return passed(f"DAX cluster {name} runs in private subnets of {len(zones)} zones, reachable on {DAX_TLS_PORT} only.")


@check("L04.17", "The DAX role is DAX's alone and reaches only the orders table", step=8, points=2,
       hint="create_role <prefix>-orders-dax trusted by dax.amazonaws.com only, with an inline policy allowing the "
            "DynamoDB item actions (GetItem, Query, BatchGetItem, PutItem, ...) on the table's ARN and its "
            "indexes' (<arn>/index/*); no dynamodb:*, no Resource \"*\".",
       docs=f"{DOCS}#dax-role")
def dax_role(t: Target):
    name = role_name(t)
    role = iam.role(t, name)
    if role is None:
        return failed(f"Role {name} does not exist.")
    trusted, others = iam.trusted_principals(role, DAX_SERVICE)
    if others:
        return failed(f"Role {name} may also be assumed by {', '.join(others)}; only {DAX_SERVICE} should be trusted.")
    if not trusted:
        return failed(f"Role {name} does not trust {DAX_SERVICE}, so the cluster cannot read the table as it.")
    arn, outside = table_arn(t), iam.outside_tables(t, table_name(t), t.name("orders"), stock_name(t))
    policies, problems = iam.role_policies(t, name), []
    # What a role that reaches this table alone must not be allowed, asked of the evaluator (Denies included).
    never = [("dynamodb:DeleteTable", arn), ("dynamodb:UpdateTable", arn), ("dynamodb:GetItem", "*"),
             *(("dynamodb:GetItem", other) for other in outside), ("s3:GetObject", "arn:aws:s3:::x/x"),
             ("iam:PassRole", f"arn:aws:iam::{t.account_id}:role/x")]

    def flag(sentence, requests):
        if any(iam.allows(policies, a, r) for a, r in requests):  # a Deny may take the grant away again
            problems.append(sentence)

    for ref in statements(policies):
        st, label = ref.statement, ref.label
        if st.get("Effect") != "Allow":
            continue
        if "NotAction" in st or "NotResource" in st:
            flag(f"{label} uses NotAction or NotResource in an Allow, which grants what it does not list",
                 [(a, r) for a, r in never if applies(st, a, r, None, {})])
            continue
        resources = [str(r) for r in as_list(st.get("Resource"))]
        for action in (str(a) for a in as_list(st.get("Action"))):
            service, _, op = action.partition(":")
            if service.lower() != "dynamodb":
                flag(f"{label} allows {action}, which DAX never needs",
                     [(iam.example(action), iam.example(r)) for r in resources])
                continue
            if "*" in op or "?" in op:
                reach = " (it includes DeleteTable)" if action_match(op, "deletetable") else ""
                flag(f"{label} allows {action}, a wildcard{reach}; name the actions",
                     [(a, iam.example(r)) for a, _ in never[:2] for r in resources if action_match(action, a)])
                continue
            for resource in resources:
                if resource == "*":
                    flag(f"{label} allows {action} on Resource \"*\" (every table); use the table's ARN",
                         [(action, other) for other in outside])
                elif any(arn_match(resource, other) for other in outside):
                    flag(f"{label} allows {action} on {resource}, which reaches beyond {table_name(t)}",
                         [(action, other) for other in outside if arn_match(resource, other)])
                elif not arn_match(resource, arn) and not resource.startswith(f"{arn}/index/"):
                    flag(f"{label} allows {action} on {resource}, which is not table {table_name(t)} or its indexes",
                         [(action, iam.example(resource))])
    problems = problems or [f"it allows {request}, beyond table {table_name(t)}" for request in iam.beyond(policies, never)]
    if problems:
        return failed(f"Role {name}: {iam.short(list(dict.fromkeys(problems)))}.")
    lacking = [op for op in DAX_NEEDS if not iam.allows(policies, f"dynamodb:{op}", arn)]
    if lacking:
        return failed(f"Role {name} does not allow {', '.join('dynamodb:' + op for op in lacking)} on {arn}, so DAX "
                      "cannot fetch what the service reads.")
    return passed(f"Role {name} is trusted by DAX only and reaches table {table_name(t)} alone.")


@check("L04.18", "The read path switches between DynamoDB and DAX by configuration alone", step=9, points=2,
       hint="read_client(config=os.environ): ORDERS_READ_PATH 'dynamodb' (the default) gives the DynamoDB client, "
            "'dax' gives amazondax.AmazonDaxClient(endpoint_url=config['DAX_ENDPOINT']). The code never changes.",
       docs=f"{DOCS}#read-path", local=LOCAL_PARTIAL,
       local_note="The local AWS cannot serve a DAX endpoint; the DynamoDB path is graded offline and the DAX path "
                  "on a live account.")
def read_path(t: Target):
    module, problem = _function(t, "read_client", "L04.18")
    if problem:
        return problem
    for config in ({}, {"ORDERS_READ_PATH": "dynamodb"}):
        made = module.call("read_client", config, client=False)
        if made.error:
            return failed(f"{made.error} for the configuration {config}.")
        got = made.value if isinstance(made.value, dict) else {}
        if got.get("service") != "dynamodb" or "__object__" not in got:
            return failed(f"read_client({config}) returned {got.get('__object__') or type(made.value).__name__}, not a "
                          "DynamoDB client; DynamoDB is the default read path.")
    cluster = _cluster(t)
    if cluster is None:
        return _no_cluster(t)
    if t.is_local:
        return skipped("read_client gives DynamoDB by default; reading through DAX is verified on a live account "
                       "(the local AWS cannot serve a DAX endpoint).")
    endpoint = (cluster.get("ClusterDiscoveryEndpoint") or {}).get("URL")
    if not endpoint:
        return failed(f"DAX cluster {cluster_name(t)} has no endpoint yet (status {cluster.get('Status')}); wait for it.")
    if not module.defines("customer_orders"):
        return failed(f"{module_path().name} defines no function customer_orders.")
    customer, limit = CUSTOMERS[0]
    config = {"ORDERS_READ_PATH": "dax", "DAX_ENDPOINT": endpoint}
    made = module.call("read_client", config, client=False)
    got = None
    if not made.raw_error:
        client = made.value if isinstance(made.value, dict) else {}
        if not str(client.get("module", "")).startswith("amazondax"):
            shown = client.get("__object__") or type(made.value).__name__
            if client.get("service") == "dynamodb":
                shown = "DynamoDB"
            return failed(f"read_client with ORDERS_READ_PATH=dax returned {shown}, not the DAX client.")
        made = module.call("customer_orders", table_name(t), customer, limit=limit,
                           client_from={"call": "read_client", "args": [config]})
        got = made.value
    error = made.raw_error or ({"type": "Failure", "message": made.error} if made.error else None)
    if error:
        if _unreachable_error(error):
            return Outcome(Status.SKIP, f"DAX cluster {cluster_name(t)} answers only inside its VPC, and this grader "
                                        f"runs outside it ({error['type']}); run the grader on an instance in "
                                        "the cluster's VPC to verify the DAX read path.")
        return failed(f"With ORDERS_READ_PATH=dax, {error['type']}: {error['message']}.")
    want = sorted((o["orderId"] for o in _orders() if o["customerId"] == customer), reverse=True)[:limit]
    if [_order_id(i) for i in as_list(got)] != want:
        return failed("Through DAX, customer_orders returned other orders than through DynamoDB.")
    return passed("read_client reads through DynamoDB by default and through DAX when configured, with the same answers.")
