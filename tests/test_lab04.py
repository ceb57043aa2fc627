"""Lab 04 checks: each passes on the solution's state and fails on states wrong in one way.

Every row runs on in-process moto (``aws``). The learner's module is the
notebook's own (read from the lab source), or that module edited in one
place. L04.16 and L04.18 are partial offline: with the cluster present they
SKIP locally, so their PASS rows (and the FAIL rows of what only a live
account shows) grade as live with the facts moto cannot show stubbed: DAX's
subnet group answer, and a stand-in ``amazondax`` client in front of the
in-process DynamoDB. The whole lab is also graded on the real local AWS.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

import checks
from checks import lab04
from checks.core import Status
from labkit import assets
from labkit.target import Target

from .cases import Case, assert_whole_lab, covered, params, run_case
from .conftest import grade
from .states_lab04 import (
    DEFAULT,
    ITEM_ACTIONS,
    VPC_CIDR,
    build_lab04,
    dax_statements,
    module_defining,
    module_with,
    solution_module,
)
from .test_policy import missing_from_policy, recording_calls

PASS, FAIL, SKIP = Status.PASS, Status.FAIL, Status.SKIP
ORDERS = assets.lab04_orders()
# Checks that read the loaded data set; the others get a state without it (loading is most of a build's time).
READS_DATA = {"L04.03", "L04.04", "L04.05", "L04.06", "L04.18"}
NO_DATA = {"orders": None, "stock_levels": None}
DAX_URL = "dax://ada-dax.a1b2c3.dax-clusters.us-east-1.amazonaws.com"
ACCOUNT_ARN = "arn:aws:dynamodb:us-east-1:123456789012"


@pytest.fixture(autouse=True)
def _live_rows_read_in_process(request, monkeypatch):
    """Rows graded "as live" run on in-process moto: the learner's child reaches it as it reaches the local AWS."""
    if "aws" in request.fixturenames:
        from checks import learner

        monkeypatch.setattr(learner, "_live_endpoint", learner._inprocess_endpoint)


@pytest.fixture(autouse=True)
def _no_default_amis(request, monkeypatch):
    """In-process moto builds ~1,300 AMIs with volumes and snapshots for every fresh EC2 backend: most of a
    row's time. Lab 04 uses no AMI (the real local AWS, a process of its own, keeps its defaults)."""
    if "aws" in request.fixturenames:
        monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


# -- the learner's module, wrong in one way ------------------------------------------------

BROKEN = module_with(("def get_order(client, table, customer_id, order_id):",
                      "def get_order(client, table, customer_id, order_id)"))
# Imports the DAX client at the top: fine on a live machine with the package, fatal where it is missing.
IMPORTS_DAX = module_with(("import labkit\n", "import labkit\nimport amazondax\n"))
READS_ONLY = module_defining(create_order="", place_order="", read_client="", _item="")

GET_BY_QUERY = module_defining(get_order='''
    def get_order(client, table, customer_id, order_id):
        answer = client.query(TableName=table, KeyConditionExpression="customerId = :c AND orderId = :o",
                              ExpressionAttributeValues={":c": {"S": customer_id}, ":o": {"S": order_id}})
        return (answer["Items"] or [None])[0]
''')
GET_WHOLE_ANSWER = module_with(('return client.get_item(TableName=table, Key=key).get("Item")',
                                "return client.get_item(TableName=table, Key=key)"))
GET_EMPTY_DICT = module_with(('.get("Item")', '.get("Item", {})'))
GET_MARKS_READ = module_defining(get_order='''
    def get_order(client, table, customer_id, order_id):
        key = {"customerId": {"S": customer_id}, "orderId": {"S": order_id}}
        client.update_item(TableName=table, Key=key, UpdateExpression="SET lastReadAt = :n",
                           ExpressionAttributeValues={":n": {"N": "1"}})
        return client.get_item(TableName=table, Key=key).get("Item")
''')
# A client of its own, made at import: its reads escape the grader's count.
OWN_CLIENT = module_with(("import labkit\n", 'import boto3\nimport labkit\n\nddb = boto3.client("dynamodb")\n'),
                         ("return client.get_item(", "return ddb.get_item("),
                         ("answer = client.query(TableName=table, KeyConditionExpression=\"customerId",
                          "answer = ddb.query(TableName=table, KeyConditionExpression=\"customerId"))
# Forgets to move ExclusiveStartKey on: the same page again, for ever.
STATUS_LOOPS = module_with(('start = {"ExclusiveStartKey": answer["LastEvaluatedKey"]}', 'start = {}'),
                           ('if "LastEvaluatedKey" not in answer:', 'if not answer["Items"]:'))

CUSTOMER_SCAN = module_defining(customer_orders='''
    def customer_orders(client, table, customer_id, limit=10):
        answer = client.scan(TableName=table, FilterExpression="customerId = :c",
                             ExpressionAttributeValues={":c": {"S": customer_id}})
        return sorted(answer["Items"], key=lambda i: i["orderId"]["S"], reverse=True)[:limit]
''')
OLDEST_FIRST = module_with(("ScanIndexForward=False, Limit=limit - len(items)", "Limit=limit - len(items)"))
SLICED = module_with(("ScanIndexForward=False, Limit=limit - len(items), **after)", "ScanIndexForward=False, **after)"),
                     ('        after = {"ExclusiveStartKey": answer["LastEvaluatedKey"]}\n    return items\n',
                      '        after = {"ExclusiveStartKey": answer["LastEvaluatedKey"]}\n    return items[:limit]\n'))
# One Query and no more: right while a page holds all that was asked, wrong once the pages are small.
CUSTOMER_FIRST_PAGE = module_defining(customer_orders='''
    def customer_orders(client, table, customer_id, limit=10):
        answer = client.query(TableName=table, KeyConditionExpression="customerId = :c",
                              ExpressionAttributeValues={":c": {"S": customer_id}},
                              ScanIndexForward=False, Limit=limit)
        return answer["Items"]
''')

STATUS_SCAN = module_defining(orders_by_status='''
    def orders_by_status(client, table, status, day):
        answer = client.scan(TableName=table, FilterExpression="statusDay = :sd",
                             ExpressionAttributeValues={":sd": {"S": f"{status}#{day}"}})
        return sorted(answer["Items"], key=lambda i: i["createdAt"]["S"])
''')
# For an index keyed by status alone: the day becomes a filter, read (and billed) over every order of the status.
STATUS_FILTER = module_defining(orders_by_status='''
    def orders_by_status(client, table, status, day):
        items, start = [], {}
        while True:
            answer = client.query(TableName=table, IndexName="status-day", KeyConditionExpression="#s = :s",
                                  FilterExpression="begins_with(createdAt, :d)", ExpressionAttributeNames={"#s": "status"},
                                  ExpressionAttributeValues={":s": {"S": status}, ":d": {"S": day}}, **start)
            items += answer["Items"]
            if "LastEvaluatedKey" not in answer:
                return items
            start = {"ExclusiveStartKey": answer["LastEvaluatedKey"]}
''')
# The first page only: right while the pick list fits one page.
STATUS_FIRST_PAGE = module_defining(orders_by_status='''
    def orders_by_status(client, table, status, day):
        return client.query(TableName=table, IndexName="status-day", KeyConditionExpression="statusDay = :sd",
                            ExpressionAttributeValues={":sd": {"S": f"{status}#{day}"}})["Items"]
''')
NEWEST_PICK_LIST = module_with(('IndexName="status-day",', 'IndexName="status-day", ScanIndexForward=False,'))
DASHED_KEY = module_with(('f"{status}#{day}"', 'f"{status}-{day}"'))
# Per-customer Queries on the table, filtered: right answer, no index, every order read.
PER_CUSTOMER = module_defining(orders_by_status='''
    def orders_by_status(client, table, status, day):
        items = []
        for n in range(1, 41):
            items += client.query(TableName=table, KeyConditionExpression="customerId = :c",
                                  FilterExpression="#s = :s AND begins_with(createdAt, :d)",
                                  ExpressionAttributeNames={"#s": "status"},
                                  ExpressionAttributeValues={":c": {"S": f"customer-{n:03d}"}, ":s": {"S": status},
                                                             ":d": {"S": day}})["Items"]
        return sorted(items, key=lambda i: i["createdAt"]["S"])
''')

# Stores the order as handed over: no statusDay, so the pick list never finds a new order.
NO_STATUS_DAY = module_with(("order = dict(order, statusDay=f\"{order['status']}#{order['createdAt'][:10]}\")",
                             "order = dict(order)"))
CREATE_OVERWRITES = module_with(('Item=_item(order), ConditionExpression="attribute_not_exists(orderId)")',
                                 "Item=_item(order))"))
CREATE_RAISES = module_defining(create_order='''
    def create_order(client, table, order):
        client.put_item(TableName=table, Item=_item(order), ConditionExpression="attribute_not_exists(orderId)")
        return True
''')
CREATE_RETURNS_NOTHING = module_with(("        return True\n    except client.exceptions.ConditionalCheckFailedException:",
                                      "        pass\n    except client.exceptions.ConditionalCheckFailedException:"))
# Reads first, then writes unconditionally: right in a quiet sandbox, but two retries racing both write.
CREATE_CHECK_THEN_PUT = module_defining(create_order='''
    def create_order(client, table, order):
        key = {"customerId": {"S": order["customerId"]}, "orderId": {"S": order["orderId"]}}
        if client.get_item(TableName=table, Key=key).get("Item"):
            return False
        client.put_item(TableName=table, Item=_item(order))
        return True
''')

PLACE_SEPARATELY = module_defining(place_order='''
    def place_order(client, orders_table, stock_table, order):
        try:
            for line in order["items"]:
                client.update_item(TableName=stock_table, Key={"sku": {"S": line["sku"]}},
                                   UpdateExpression="SET available = available - :q",
                                   ConditionExpression="available >= :q",
                                   ExpressionAttributeValues={":q": {"N": str(line["quantity"])}})
            client.put_item(TableName=orders_table, Item=_item(order),
                            ConditionExpression="attribute_not_exists(orderId)")
            return True
        except client.exceptions.ConditionalCheckFailedException:
            return False
''')
PLACE_PUT_UNCONDITIONAL = module_with((('"Item": _item(order),\n                     "ConditionExpression": '
                                        '"attribute_not_exists(orderId)"}}'), '"Item": _item(order)}}'))
PLACE_RAISES = module_with(("""    try:
        client.transact_write_items(TransactItems=lines + [store])
        return True
    except client.exceptions.TransactionCanceledException:
        return False
""", """    client.transact_write_items(TransactItems=lines + [store])
    return True
"""))
# Checks the stock and the order first, then writes one by one: right in a quiet sandbox, not all-or-nothing.
PLACE_CHECK_THEN_WRITE = module_defining(place_order='''
    def place_order(client, orders_table, stock_table, order):
        key = {"customerId": {"S": order["customerId"]}, "orderId": {"S": order["orderId"]}}
        if client.get_item(TableName=orders_table, Key=key).get("Item"):
            return False
        for line in order["items"]:
            level = client.get_item(TableName=stock_table, Key={"sku": {"S": line["sku"]}})["Item"]["available"]["N"]
            if int(level) < line["quantity"]:
                return False
        for line in order["items"]:
            client.update_item(TableName=stock_table, Key={"sku": {"S": line["sku"]}},
                               UpdateExpression="SET available = available - :q",
                               ExpressionAttributeValues={":q": {"N": str(line["quantity"])}})
        client.put_item(TableName=orders_table, Item=_item(order))
        return True
''')

# All in one transaction, but each line sets the stock it read back as text.
PLACE_STOCK_AS_TEXT = module_with(("""    lines = [{"Update": {
        "TableName": stock_table, "Key": {"sku": {"S": line["sku"]}},
        "UpdateExpression": "SET available = available - :q", "ConditionExpression": "available >= :q",
        "ExpressionAttributeValues": {":q": {"N": str(line["quantity"])}}}} for line in order["items"]]
""", """    lines = []
    for line in order["items"]:
        key = {"sku": {"S": line["sku"]}}
        level = int(client.get_item(TableName=stock_table, Key=key)["Item"]["available"]["N"])
        if level < line["quantity"]:
            return False
        lines.append({"Update": {"TableName": stock_table, "Key": key, "UpdateExpression": "SET available = :left",
                                 "ConditionExpression": "available = :was",
                                 "ExpressionAttributeValues": {":left": {"S": str(level - line["quantity"])},
                                                               ":was": {"N": str(level)}}}})
"""))

READ_RESOURCE = module_with(('return labkit.target().client("dynamodb")', 'return boto3.resource("dynamodb")'),
                            ("import labkit\n", "import boto3\nimport labkit\n"))
READ_NEEDS_SETTING = module_with(('path = config.get("ORDERS_READ_PATH", "dynamodb")',
                                  'path = config["ORDERS_READ_PATH"]'))
READ_IGNORES_DAX = module_defining(read_client='''
    def read_client(config=os.environ):
        return labkit.target().client("dynamodb")
''')
READ_OTHER_SETTING = module_with(('config["DAX_ENDPOINT"]', 'config["DAX_URL"]'))
READ_TIMEOUT_KEYWORD = module_with(("endpoint_url=config[\"DAX_ENDPOINT\"], region_name=",
                                    "endpoint_url=config[\"DAX_ENDPOINT\"], timeout=5, region_name="))


# -- the DAX role's policy and trust (build: statements=..., dax_trust=...) ---------------------

def role_statement(*, actions=ITEM_ACTIONS, resource=None):
    """statements: the solution's one statement, with its actions (names or full) or resource replaced."""

    def statements(arn):
        own = dax_statements(arn)
        own[0]["Action"] = actions if isinstance(actions, str) else [
            a if ":" in a else f"dynamodb:{a}" for a in actions]
        if resource is not None:
            own[0]["Resource"] = resource(arn) if callable(resource) else resource
        return own

    return statements


def plus(*extra: dict):
    """statements: the solution's and ``extra``."""
    return lambda arn: dax_statements(arn) + list(extra)


def trust(*principals, effect="Allow"):
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": effect, "Principal": p, "Action": "sts:AssumeRole"} for p in principals]}


def tcp(port, cidr=VPC_CIDR, protocol="tcp", v6=False):
    """One ingress permission (build: ingress=[...])."""
    rule = {"IpProtocol": protocol}
    if protocol != "-1":
        rule.update(FromPort=port, ToPort=port)
    rule["Ipv6Ranges" if v6 else "IpRanges"] = [{"CidrIpv6": cidr} if v6 else {"CidrIp": cidr}]
    return rule


# -- stubs for what only a live account shows (prepare=...) ---------------------------------------

def _cluster(view, state) -> dict:
    return view.client("dax").describe_clusters(ClusterNames=[state["cluster"]])["Clusters"][0]


def dax_network(*, subnet_group=True, security_groups=None):
    """prepare: the cluster as a live DAX describes it, in the subnet group over the state's two subnets.

    In-process moto reports the default subnet group and a made-up security group for every cluster and
    has no describe_subnet_groups, so those answers are stubbed; the VPC, subnets, route tables and security
    group they name are real moto resources, built as the notebook builds them.
    """

    def prepare(view, state, monkeypatch):
        cluster = _cluster(view, state)
        if subnet_group:
            cluster["SubnetGroup"] = state["subnet_group"]
        groups = [state["group_id"]] if security_groups is None else list(security_groups)
        cluster["SecurityGroups"] = [{"SecurityGroupIdentifier": g, "Status": "active"} for g in groups]
        view._memo["lab04.cluster"] = cluster
        answer = {"SubnetGroups": [{
            "SubnetGroupName": state["subnet_group"], "VpcId": state["vpc_id"],
            "Subnets": [{"SubnetIdentifier": s, "SubnetAvailabilityZone": z} for s, z in state["subnets"]]}]}

        def describe_subnet_groups(SubnetGroupNames):
            assert SubnetGroupNames == [state["subnet_group"]], SubnetGroupNames
            return answer

        monkeypatch.setattr(view.client("dax"), "describe_subnet_groups", describe_subnet_groups)

    return prepare


# A stand-in ``amazondax`` for the learner's child: AmazonDaxClient speaks DynamoDB's API to the endpoint the
# child was given; ``QUERY`` says how the "cache" answers Query: DynamoDB's own answer, nothing, or no network.
DAX_STAND_IN = """
import boto3

QUERY = {query!r}


class AmazonDaxClient:
    def __init__(self, endpoint_url=None, region_name=None):
        assert endpoint_url == {url!r}, f"connected to {{endpoint_url}}, not the cluster's endpoint"
        self._client = boto3.client("dynamodb", region_name=region_name or "us-east-1")

    def query(self, **request):
        if QUERY == "stale":
            return {{"Items": [], "Count": 0, "ScannedCount": 0}}
        if QUERY == "unreachable":
            raise ConnectionRefusedError(111, "Connection refused")
        return self._client.query(**request)

    def __getattr__(self, name):
        return getattr(self._client, name)
"""
NOT_INSTALLED = 'raise ModuleNotFoundError("No module named \'amazondax\'", name="amazondax")\n'
stale, unreachable = "stale", "unreachable"  # the cache answers Query with nothing / cannot be reached


def fake_amazondax(query=None):
    """A stand-in ``amazondax`` module's source (see DAX_STAND_IN)."""
    return DAX_STAND_IN.format(query=query, url=DAX_URL)


def _importable(monkeypatch, source: str) -> None:
    """``import amazondax`` in the learner's child gives ``source``."""
    import atexit
    import shutil
    import tempfile

    from checks import learner

    folder = Path(tempfile.mkdtemp(prefix="amazondax-"))
    atexit.register(shutil.rmtree, folder, True)  # the child imports it until the test ends; nothing left in /tmp
    (folder / "amazondax.py").write_text(source)
    monkeypatch.setattr(learner, "EXTRA_PATH", [str(folder)])


def dax_endpoint(*, status="available", amazondax=DEFAULT):
    """prepare: the cluster ``status`` with its discovery endpoint (a live one answers on TLS port 9111), and
    ``amazondax`` importable as the stand-in (default: ``fake_amazondax()``; None: not installed)."""
    amazondax = fake_amazondax() if amazondax is DEFAULT else amazondax

    def prepare(view, state, monkeypatch):
        cluster = _cluster(view, state)
        cluster.update(Status=status, ClusterDiscoveryEndpoint={"Port": 9111} if status != "available" else {
            "Address": DAX_URL.removeprefix("dax://"), "Port": 9111, "URL": DAX_URL})
        view._memo["lab04.cluster"] = cluster
        if amazondax is None:
            without_amazondax(view, state, monkeypatch)
        else:
            _importable(monkeypatch, amazondax)

    return prepare


def without_amazondax(view, state, monkeypatch):
    """prepare: ``import amazondax`` fails, as where the package is not installed (the local grader)."""
    _importable(monkeypatch, NOT_INSTALLED)


CASES = [
    # L04.01 the table's keys
    Case("L04.01", "solution", PASS, ("Table {table} is keyed by customerId (HASH) and orderId (RANGE), and tagged",)),
    Case("L04.01", "missing", FAIL, ("Table {table} does not exist",), build={"table": False}),
    Case("L04.01", "lab03-keys", FAIL, (("Table {table} is keyed by orderId (HASH); a customer's orders newest first "
                                         "need customerId as the partition key (HASH)"),),
         build={"keys": (("orderId", "HASH", "S"),)}),
    Case("L04.01", "keys-swapped", FAIL, ("keyed by orderId (HASH), customerId (RANGE)",),
         build={"keys": (("orderId", "HASH", "S"), ("customerId", "RANGE", "S"))}),
    Case("L04.01", "numeric-order-id", FAIL, ("Table {table}: orderId is N; both keys are strings (S)",),
         build={"keys": (("customerId", "HASH", "S"), ("orderId", "RANGE", "N")), "orders": None}),
    Case("L04.01", "untagged", FAIL, ("Table {table} lacks the tags course=microservices-labs, lab=04, learner=ada",),
         build={"table_tags": None}),
    # L04.02 the status-day index
    Case("L04.02", "solution", PASS, (("Index status-day on {table} is keyed by statusDay and createdAt and projects "
                                       "INCLUDE"),)),
    Case("L04.02", "projects-all", PASS, ("projects ALL",), build={"projection": {"ProjectionType": "ALL"}}),
    Case("L04.02", "missing-table", FAIL, ("Table {table} does not exist",), build={"table": False}),
    Case("L04.02", "no-index", FAIL, ("Table {table} has no global secondary index status-day (its indexes: none)",),
         build={"index": None}),
    Case("L04.02", "status-alone", FAIL, ("Index status-day is keyed by status (HASH), createdAt (RANGE)",
                                          "(a hot partition)"),
         build={"index": (("status", "HASH", "S"), ("createdAt", "RANGE", "S"))}),
    Case("L04.02", "no-sort-key", FAIL, (("Index status-day is keyed by statusDay (HASH); the pick list needs statusDay "
                                          "(HASH) and createdAt (RANGE)"),),
         build={"index": (("statusDay", "HASH", "S"),)}),
    Case("L04.02", "numeric-created-at", FAIL, ("Index status-day: createdAt is N; both keys are strings (S)",),
         build={"index": (("statusDay", "HASH", "S"), ("createdAt", "RANGE", "N")), "orders": None}),
    Case("L04.02", "keys-only", FAIL, ("Index status-day projects KEYS_ONLY []", "every result would cost a GetItem"),
         build={"projection": {"ProjectionType": "KEYS_ONLY"}}),
    Case("L04.02", "include-without-items", FAIL, ("projects INCLUDE ['total']",),
         build={"projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["total"]}}),
    # L04.03 the data set
    Case("L04.03", "solution", PASS, (("Table {table} holds the sampled orders with statusDay, and {stock} holds stock "
                                       "for 12 SKUs"),)),
    Case("L04.03", "missing-table", FAIL, ("Table {table} does not exist",), build={"table": False}),
    Case("L04.03", "stock-table-absent", FAIL, ("Table {stock} does not exist",), build={"stock": False}),
    Case("L04.03", "not-keyed-by-customer", FAIL, ("Table {table} is not keyed as L04.01 asks",),
         build={"keys": (("orderId", "HASH", "S"),)}),
    Case("L04.03", "nothing-loaded", FAIL, ("Table {table} lacks 20 of 20 sampled orders of the data set",
                                            f"(for example {ORDERS[0]['orderId']})"),
         build={"orders": None}),
    Case("L04.03", "first-half-only", FAIL, ("Table {table} lacks 10 of 20 sampled orders of the data set",
                                             f"(for example {ORDERS[400]['orderId']})"),
         build={"orders": ORDERS[:400]}),
    Case("L04.03", "status-day-missing", FAIL, ((f"{ORDERS[0]['orderId']} has statusDay None, not "
                                                 "'DELIVERED#2026-10-01'"), "and 18 more"),
         build={"derive": None}),
    Case("L04.03", "status-day-full-time", FAIL, (("has statusDay 'DELIVERED#2026-10-01T00:13:59Z', not "
                                                   "'DELIVERED#2026-10-01'"),),
         build={"derive": lambda o: f"{o['status']}#{o['createdAt']}"}),
    Case("L04.03", "stock-not-loaded", FAIL, (("Table {stock} lacks stock (an 'available' number) for SKU-001, SKU-002, "
                                               "SKU-003, SKU-004"),),
         build={"stock_levels": None}),
    Case("L04.03", "stock-without-levels", FAIL, ("lacks stock (an 'available' number) for SKU-001",),
         build={"stock_levels": [{"sku": s["sku"], "price": s["price"]} for s in assets.lab04_stock()]}),
    # L04.04 get_order
    Case("L04.04", "solution", PASS, (("get_order finds an order with one GetItem and answers None for another "
                                       "customer's order"),)),
    Case("L04.04", "missing-module", FAIL, ("{module} does not exist; the notebook's step 3 writes it",),
         build={"module": None}),
    Case("L04.04", "does-not-compile", FAIL, ("queries.py does not compile: ", "on line 7."),
         build={"module": BROKEN}),
    Case("L04.04", "missing-table", FAIL, ("Table {table} does not exist",), build={"table": False}),
    Case("L04.04", "by-query", FAIL, ("get_order made Query calls through the client it was given, reading 1 items",
                                      "a single GetItem"),
         build={"module": GET_BY_QUERY}),
    Case("L04.04", "own-client", FAIL, ("get_order made no calls through the client it was given",),
         build={"module": OWN_CLIENT}),
    Case("L04.04", "whole-answer", FAIL, (f"get_order('customer-001', '{ORDERS[0]['orderId']}') returned {{{{'Item'",
                                          "not that order"),
         build={"module": GET_WHOLE_ANSWER}),
    Case("L04.04", "empty-dict-for-none", FAIL, ((f"get_order('customer-001', '{ORDERS[1]['orderId']}') returned {{{{}}}}; "
                                                  "that order belongs to another customer, so the answer is None"),),
         build={"module": GET_EMPTY_DICT}),
    Case("L04.04", "writes", FAIL, ("get_order tried a write (UpdateItem); a read function must only read",),
         build={"module": GET_MARKS_READ}),
    # L04.05 customer_orders
    Case("L04.05", "solution", PASS, (("customer_orders answers 3 customers newest first with Query, reading only the "
                                       "items it returns"),)),
    Case("L04.05", "missing-module", FAIL, ("{module} does not exist",), build={"module": None}),
    Case("L04.05", "scan", FAIL, (("customer_orders('customer-001', limit=5) made 1 Scan call(s), reading 800 items to "
                                   "return 5; serve the pattern with a key"),),
         build={"module": CUSTOMER_SCAN}),
    Case("L04.05", "oldest-first", FAIL, (("customer_orders('customer-001', limit=5) returned 5 orders starting "
                                           f"['{ORDERS[0]['orderId']}'"),),
         build={"module": OLDEST_FIRST}),
    Case("L04.05", "oldest-first-says-why", FAIL, ("(oldest first: use ScanIndexForward=False)",),
         build={"module": OLDEST_FIRST}),
    Case("L04.05", "first-page-only", FAIL, (("customer_orders('customer-001', limit=5) returned 4 orders starting"),),
         build={"module": CUSTOMER_FIRST_PAGE}),
    Case("L04.05", "sliced-in-python", FAIL, (("customer_orders('customer-001', limit=5) read 8 items to return 5: "
                                               "pass Limit to the Query"),),
         build={"module": SLICED}),
    Case("L04.05", "own-client", FAIL, (("customer_orders('customer-001', limit=5) made no call through the client it "
                                         "was given"),),
         build={"module": OWN_CLIENT}),
    # L04.06 orders_by_status
    Case("L04.06", "solution", PASS, (("orders_by_status answers 4 pick lists from index status-day, reading only what "
                                       "it returns"),)),
    Case("L04.06", "missing-table", FAIL, ("Table {table} does not exist",), build={"table": False}),
    Case("L04.06", "endless-loop", FAIL, (("orders_by_status was stopped: it made more than 50 DynamoDB calls for one "
                                           "answer; does its loop end?"),),
         build={"module": STATUS_LOOPS}),
    Case("L04.06", "scan-with-filter", FAIL, (("orders_by_status('SHIPPED', '2026-10-05') made 1 Scan call(s), reading "
                                               "800 items to return 13"),),
         build={"module": STATUS_SCAN}),
    Case("L04.06", "status-index-with-filter", FAIL, (("orders_by_status('SHIPPED', '2026-10-05') read 150 items to "
                                                       "return 13"), "a FilterExpression still reads, and bills, the rest"),
         build={"index": (("status", "HASH", "S"), ("createdAt", "RANGE", "S")), "module": STATUS_FILTER}),
    Case("L04.06", "no-index", FAIL, ("did not Query an index: the table's keys cannot find orders by status",),
         build={"module": PER_CUSTOMER}),
    Case("L04.06", "first-page-only", FAIL, (("orders_by_status('SHIPPED', '2026-10-05') returned 4 orders; the data "
                                              "set has 13 SHIPPED orders placed on 2026-10-05"),),
         build={"module": STATUS_FIRST_PAGE}),
    Case("L04.06", "newest-first", FAIL, ("returned the orders out of time order",),
         build={"module": NEWEST_PICK_LIST}),
    Case("L04.06", "other-key-format", FAIL, (("orders_by_status('SHIPPED', '2026-10-05') returned 0 orders; the data "
                                               "set has 13 SHIPPED orders placed on 2026-10-05"),),
         build={"module": DASHED_KEY}),
    Case("L04.06", "status-day-missing", FAIL, ("returned 0 orders; the data set has 13",), build={"derive": None}),
    # L04.07 provisioned capacity and its scalable targets
    Case("L04.07", "solution", PASS, (("Table {table} and index status-day are provisioned, with read and write capacity "
                                       "scaling between sound limits"),)),
    Case("L04.07", "created-provisioned", PASS, ("are provisioned",), build={"created_provisioned": True}),
    Case("L04.07", "one-to-max-quota", PASS, ("are provisioned",), build={"limits": (1, 40_000)}),
    Case("L04.07", "missing-table", FAIL, ("Table {table} does not exist",), build={"table": False}),
    Case("L04.07", "on-demand-no-targets", FAIL, (("Table {table} is on-demand (PAY_PER_REQUEST); auto scaling adjusts "
                                                   "provisioned capacity"),),
         build={"provisioned": False}),
    Case("L04.07", "no-index-targets", FAIL, (("No scalable target for index:ReadCapacityUnits of table/{table}/index/"
                                               "status-day; index:WriteCapacityUnits of"),
                                              "without one that capacity stays fixed"),
         build={"scaled": ("table",)}),
    Case("L04.07", "no-targets", FAIL, ("No scalable target for table:ReadCapacityUnits of table/{table}",),
         build={"scaled": ()}),
    Case("L04.07", "max-above-quota", FAIL, ("has MaxCapacity 50000, above the default quota of 40,000 units",),
         build={"limits": (5, 50_000)}),
    # L04.08 target tracking
    Case("L04.08", "solution", PASS, (("All four capacities of {table} track a utilisation target between 20 and 90 "
                                       "percent"),)),
    Case("L04.08", "target-20", PASS, ("between 20 and 90 percent",), build={"target_value": 20.0}),
    Case("L04.08", "target-90", PASS, ("between 20 and 90 percent",), build={"target_value": 90.0}),
    Case("L04.08", "missing-table", FAIL, ("Table {table} does not exist",), build={"table": False}),
    Case("L04.08", "on-demand-no-policies", FAIL, (("No target-tracking policy for table:ReadCapacityUnits of "
                                                    "table/{table}"),),
         build={"provisioned": False}),
    Case("L04.08", "targets-without-policies", FAIL, ("No target-tracking policy for",), build={"policies": False}),
    Case("L04.08", "no-index-policies", FAIL, (("No target-tracking policy for index:ReadCapacityUnits of "
                                                "table/{table}/index/status-day; index:WriteCapacityUnits"),),
         build={"scaled": ("table",)}),
    Case("L04.08", "target-95", FAIL, (("policy ada-table-read-70 on table:ReadCapacityUnits of table/{table} targets "
                                        "95.0 percent, which AWS rejects for DynamoDB (ValidationException: the target "
                                        "utilisation must be between 20 and 90)"),),
         build={"target_value": 95.0}),
    Case("L04.08", "target-10", FAIL, ("targets 10.0 percent, which AWS rejects",), build={"target_value": 10.0}),
    Case("L04.08", "target-95-each-policy-once", FAIL, ("targets 95.0 percent", "; and 2 more."),
         build={"target_value": 95.0}),
    Case("L04.08", "read-metric-on-writes", FAIL, (("policy ada-table-write-70 on table:WriteCapacityUnits of "
                                                    "table/{table} tracks DynamoDBReadCapacityUtilization, not "
                                                    "DynamoDBWriteCapacityUtilization"),),
         build={"metric": lambda direction: "DynamoDBReadCapacityUtilization"}),
    # L04.09-L04.12 life cycle and safety
    Case("L04.09", "solution", PASS, ("Table {table} deletes orders whose expiresAt has passed",)),
    Case("L04.09", "missing-table", FAIL, ("Table {table} does not exist",), build={"table": False}),
    Case("L04.09", "ttl-off", FAIL, ("Table {table} has TTL DISABLED; unpaid orders would stay forever",),
         build={"ttl": None}),
    Case("L04.09", "other-attribute", FAIL, ("Table {table}'s TTL reads ttl; the orders carry their expiry in expiresAt",),
         build={"ttl": "ttl"}),
    Case("L04.10", "solution", PASS, ("Table {table} streams NEW_AND_OLD_IMAGES",)),
    Case("L04.10", "missing-table", FAIL, ("Table {table} does not exist",), build={"table": False}),
    Case("L04.10", "no-stream", FAIL, ("Table {table} has no stream",), build={"stream": None}),
    Case("L04.10", "keys-only", FAIL, (("Table {table}'s stream carries KEYS_ONLY; a consumer that reacts to a status "
                                        "change needs NEW_AND_OLD_IMAGES"),),
         build={"stream": "KEYS_ONLY"}),
    Case("L04.10", "new-image-only", FAIL, ("stream carries NEW_IMAGE",), build={"stream": "NEW_IMAGE"}),
    Case("L04.11", "solution", PASS, ("Table {table} can be restored to any second of the recovery period",)),
    Case("L04.11", "missing-table", FAIL, ("Table {table} does not exist",), build={"table": False}),
    Case("L04.11", "pitr-off", FAIL, ("Table {table} has point-in-time recovery DISABLED",), build={"pitr": False}),
    Case("L04.12", "solution", PASS, ("Table {table} refuses DeleteTable until deletion protection is turned off",)),
    Case("L04.12", "missing-table", FAIL, ("Table {table} does not exist",), build={"table": False}),
    Case("L04.12", "protection-off", FAIL, ("Table {table} can be deleted by one call; turn on deletion protection",),
         build={"protection": False}),
    # L04.13 create_order (run in the grader's private sandbox)
    Case("L04.13", "solution", PASS, ("create_order stores a new order and refuses a duplicate, keeping the first",)),
    Case("L04.13", "missing-module", FAIL, ("{module} does not exist",), build={"module": None}),
    Case("L04.13", "reads-only-module", FAIL, ("queries.py defines no function create_order",),
         build={"module": READS_ONLY}),
    Case("L04.13", "missing-table", FAIL, ("Table {table} does not exist",), build={"table": False}),
    Case("L04.13", "no-condition", FAIL, (("A second create_order with the same orderId overwrote the first order; add "
                                           "ConditionExpression='attribute_not_exists(orderId)'"),),
         build={"module": CREATE_OVERWRITES}),
    Case("L04.13", "exception-escapes", FAIL, (("create_order let ConditionalCheckFailedException escape for a "
                                                "duplicate; catch it and return False"),),
         build={"module": CREATE_RAISES}),
    Case("L04.13", "returns-nothing", FAIL, (("create_order returned None for a new order; it should store it and "
                                              "return True"),),
         build={"module": CREATE_RETURNS_NOTHING}),
    Case("L04.13", "status-day-not-derived", FAIL, ("create_order stored the order with statusDay None, not "
                                                     "'NEW#2026-11-02'",), build={"module": NO_STATUS_DAY}),
    Case("L04.13", "check-then-put", FAIL, ("attribute_not_exists(orderId)",),
         build={"module": CREATE_CHECK_THEN_PUT}),
    # L04.14 place_order (run in the grader's private sandbox)
    Case("L04.14", "solution", PASS, ("place_order takes stock and stores the order in one transaction",)),
    Case("L04.14", "reads-only-module", FAIL, ("queries.py defines no function place_order",),
         build={"module": READS_ONLY}),
    Case("L04.14", "missing-table", FAIL, ("Table {table} does not exist",), build={"table": False}),
    Case("L04.14", "stock-table-absent", FAIL, ("Table {stock} does not exist",), build={"stock": False}),
    Case("L04.14", "separate-writes", FAIL, (("When SKU-B lacked stock, place_order still changed something (stock now "
                                              "{{'SKU-A': 3, 'SKU-B': 1}}); all writes must be in one "
                                              "transact_write_items call"),),
         build={"module": PLACE_SEPARATELY}),
    Case("L04.14", "put-without-condition", FAIL, (("Placing an order id a second time took stock again (now "
                                                    "{{'SKU-A': 1, 'SKU-B': 0}}); the order's Put needs "
                                                    "attribute_not_exists(orderId)"),),
         build={"module": PLACE_PUT_UNCONDITIONAL}),
    Case("L04.14", "cancellation-escapes", FAIL, ("place_order raised TransactionCanceledException",
                                                  "when one line lacked stock; return False on TransactionCanceledException"),
         build={"module": PLACE_RAISES}),
    Case("L04.14", "status-day-not-derived", FAIL, ("place_order stored the order with statusDay None",),
         build={"module": NO_STATUS_DAY}),
    Case("L04.14", "stock-left-as-text", FAIL, ("place_order left the stock of SKU-A, SKU-B as a string, not a number",),
         build={"module": PLACE_STOCK_AS_TEXT}),
    Case("L04.14", "check-then-write", FAIL, ("transact_write_items",),
         build={"module": PLACE_CHECK_THEN_WRITE}),
    # L04.15 the DAX cluster
    Case("L04.15", "solution", PASS, ("DAX cluster {cluster} encrypts at rest and over TLS and reads as role {role}",)),
    Case("L04.15", "missing", FAIL, ("DAX cluster {cluster} does not exist",), build={"cluster": False}),
    Case("L04.15", "no-sse", FAIL, (("DAX cluster {cluster}: encryption at rest is off (SSESpecification Enabled, which "
                                     "can only be set at creation)"),),
         build={"sse": False}),
    Case("L04.15", "no-tls", FAIL, (("DAX cluster {cluster}: its endpoint is NONE, not TLS, so reads cross the network "
                                     "in clear text"),),
         build={"tls": False}),
    Case("L04.15", "no-sse-no-tls", FAIL, ("encryption at rest is off", "; its endpoint is NONE, not TLS"),
         build={"sse": False, "tls": False}),
    Case("L04.15", "other-role", FAIL, (("it reads the table as arn:aws:iam::123456789012:role/ada-admin, not role "
                                         "{role}"),),
         build={"cluster_role": "ada-admin"}),
    Case("L04.15", "untagged", FAIL, (("DAX cluster {cluster} lacks the tags course=microservices-labs, lab=04, "
                                       "learner=ada"),),
         build={"cluster_tags": None}),
    # L04.16 DAX networking: offline the cluster's existence; live its subnets and security group (stubbed)
    Case("L04.16", "local", SKIP, (("DAX cluster {cluster} exists; its subnets and security group are verified on a "
                                    "live account"),)),
    Case("L04.16", "local-missing", FAIL, ("DAX cluster {cluster} does not exist",), build={"cluster": False}),
    Case("L04.16", "live-missing", FAIL, ("DAX cluster {cluster} does not exist",), build={"cluster": False}, live=True),
    Case("L04.16", "live", PASS, ("DAX cluster {cluster} runs in private subnets of 2 zones, reachable on 9111 only",),
         prepare=dax_network(), live=True),
    Case("L04.16", "live-from-the-subnets", PASS, ("reachable on 9111 only",),
         build={"ingress": [{"IpProtocol": "tcp", "FromPort": 9111, "ToPort": 9111,
                             "IpRanges": [{"CidrIp": "10.40.1.0/24"}, {"CidrIp": "10.40.2.0/24"}]}]},
         prepare=dax_network(), live=True),
    Case("L04.16", "live-default-subnet-group", FAIL, ("DAX cluster {cluster} uses the default subnet group",),
         prepare=dax_network(subnet_group=False), live=True),
    Case("L04.16", "live-one-zone", FAIL, ("Subnet group {subnet_group} spans 1 Availability Zone(s); use two",),
         build={"zones": 1}, prepare=dax_network(), live=True),
    Case("L04.16", "live-public-subnet", FAIL, (("Subnet group {subnet_group} includes {subnet_ids[0]}, which route to "
                                                 "an internet gateway"),),
         build={"public": "own"}, prepare=dax_network(), live=True),
    Case("L04.16", "live-public-main-route-table", FAIL, (("includes {subnet_ids[0]}, {subnet_ids[1]}, which route to "
                                                           "an internet gateway"),),
         build={"public": "main"}, prepare=dax_network(), live=True),
    Case("L04.16", "live-open-to-everyone", FAIL, ("DAX cluster {cluster}: {group_id} admits 0.0.0.0/0",),
         build={"ingress": [tcp(9111, "0.0.0.0/0")]}, prepare=dax_network(), live=True),
    Case("L04.16", "live-open-ipv6", FAIL, ("{group_id} admits ::/0",),
         build={"ingress": [tcp(9111, "::/0", v6=True)]}, prepare=dax_network(), live=True),
    Case("L04.16", "live-plain-port", FAIL, (("{group_id} opens ports 8111-8111 (8111 is the unencrypted port); a TLS "
                                              "cluster needs 9111 only"),),
         build={"ingress": [tcp(8111)]}, prepare=dax_network(), live=True),
    Case("L04.16", "live-all-traffic", FAIL, ("{group_id} opens all ports",),
         build={"ingress": [tcp(None, protocol="-1")]}, prepare=dax_network(), live=True),
    Case("L04.16", "live-no-security-group", FAIL, ("DAX cluster {cluster}: it has no security group",),
         prepare=dax_network(security_groups=()), live=True),
    Case("L04.16", "live-public-range", FAIL, ("203.0.113.0/24",),
         build={"ingress": [tcp(9111, "203.0.113.0/24")]}, prepare=dax_network(), live=True),
    # L04.17 the DAX role
    Case("L04.17", "solution", PASS, ("Role {role} is trusted by DAX only and reaches table {table} alone",)),
    Case("L04.17", "table-only-lowercase", PASS, ("reaches table {table} alone",),
         build={"statements": role_statement(actions=["dynamodb:getitem", "dynamodb:query"],
                                             resource=lambda arn: arn)}),
    Case("L04.17", "plus-deny", PASS, ("reaches table {table} alone",),
         build={"statements": plus({"Effect": "Deny", "Action": "dynamodb:DeleteTable", "Resource": "*"})}),
    Case("L04.17", "deny-everything", FAIL, ("does not allow dynamodb:GetItem, dynamodb:Query on {table_arn}",),
         build={"statements": plus({"Effect": "Deny", "Action": "dynamodb:*", "Resource": "*"})}),
    Case("L04.17", "deny-query-on-indexes-too", FAIL, ("does not allow dynamodb:Query on {table_arn}",),
         build={"statements": plus({"Effect": "Deny", "Action": "dynamodb:Query", "Resource": "*"})}),
    Case("L04.17", "every-table-narrowed-by-deny", PASS, ("reaches table {table} alone",),
         build={"statements": lambda arn: role_statement(resource="*")(arn) + [
             {"Effect": "Deny", "Action": "dynamodb:*", "NotResource": [arn, f"{arn}/index/*"]}]}),
    Case("L04.17", "star-narrowed-by-deny-notaction", PASS, ("reaches table {table} alone",),
         build={"statements": lambda arn: role_statement(actions="dynamodb:*")(arn) + [
             {"Effect": "Deny", "NotAction": ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"],
              "Resource": "*"}]}),
    Case("L04.17", "not-resource-reaches-others", FAIL, ("uses NotAction or NotResource in an Allow",),
         build={"statements": plus({"Effect": "Allow", "Action": "dynamodb:GetItem", "NotResource": "arn:aws:s3:::x"})}),
    Case("L04.17", "second-principal-own-statement", FAIL, ("may also be assumed by AWS arn:aws:iam::123456789012:root",),
         build={"dax_trust": trust({"Service": "dax.amazonaws.com"}, {"AWS": "123456789012"})}),
    Case("L04.17", "missing", FAIL, ("Role {role} does not exist",), build={"dax_role": False}),
    Case("L04.17", "lambda-too", FAIL, (("Role {role} may also be assumed by Service lambda.amazonaws.com; only "
                                         "dax.amazonaws.com should be trusted"),),
         build={"dax_trust": trust({"Service": ["dax.amazonaws.com", "lambda.amazonaws.com"]})}),
    Case("L04.17", "everyone", FAIL, ("may also be assumed by everyone (Principal *)",),
         build={"dax_trust": trust({"Service": "dax.amazonaws.com"}, "*")}),
    Case("L04.17", "deny-only-trust", FAIL, ("Role {role} does not trust dax.amazonaws.com",),
         build={"dax_trust": trust({"Service": "dax.amazonaws.com"}, effect="Deny")}),
    Case("L04.17", "dynamodb-star", FAIL, ("allows dynamodb:*, a wildcard (it includes DeleteTable); name the actions",),
         build={"statements": role_statement(actions="dynamodb:*")}),
    Case("L04.17", "resource-star", FAIL, (("allows dynamodb:GetItem on Resource \"*\" (every table); use the table's "
                                            "ARN"),),
         build={"statements": role_statement(resource="*")}),
    Case("L04.17", "lab03-table", FAIL, ((f"allows dynamodb:GetItem on {ACCOUNT_ARN}:table/ada-orders, which reaches "
                                          "beyond {table}"),),
         build={"statements": role_statement(resource=f"{ACCOUNT_ARN}:table/ada-orders")}),
    Case("L04.17", "prefix-wildcard", FAIL, (f"on {ACCOUNT_ARN}:table/ada-*, which reaches beyond",),
         build={"statements": role_statement(resource=f"{ACCOUNT_ARN}:table/ada-*")}),
    Case("L04.17", "any-region", FAIL, ("on arn:aws:dynamodb:*:123456789012:table/ada-orders-v2, which reaches beyond",),
         build={"statements": role_statement(resource="arn:aws:dynamodb:*:123456789012:table/ada-orders-v2")}),
    Case("L04.17", "table-and-below", FAIL, ("on {table_arn}/*, which reaches beyond",),
         build={"statements": role_statement(resource=lambda arn: [arn, f"{arn}/*"])}),
    Case("L04.17", "no-query", FAIL, (("Role {role} does not allow dynamodb:Query on {table_arn}, so DAX cannot fetch "
                                       "what the service reads"),),
         build={"statements": role_statement(actions=[a for a in ITEM_ACTIONS if a != "Query"])}),
    Case("L04.17", "no-policy", FAIL, ("does not allow dynamodb:GetItem, dynamodb:Query on {table_arn}",),
         build={"statements": None}),
    Case("L04.17", "other-service", FAIL, ("allows s3:GetObject, which DAX never needs",),
         build={"statements": plus({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})}),
    Case("L04.17", "not-action", FAIL, ("uses NotAction or NotResource in an Allow",),
         build={"statements": plus({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})}),
    Case("L04.17", "another-table-too", FAIL, ("ada-customers",),
         build={"statements": plus({"Effect": "Allow", "Action": "dynamodb:GetItem",
                                    "Resource": f"{ACCOUNT_ARN}:table/ada-customers"})}),
    # L04.18 the read path: DynamoDB offline; DAX live through the stand-in amazondax (stubbed)
    Case("L04.18", "local", SKIP, (("read_client gives DynamoDB by default; reading through DAX is verified on a live "
                                    "account"),)),
    Case("L04.18", "local-no-cluster", FAIL, ("DAX cluster {cluster} does not exist",), build={"cluster": False}),
    Case("L04.18", "missing-module", FAIL, ("{module} does not exist",), build={"module": None}),
    Case("L04.18", "reads-only-module", FAIL, ("queries.py defines no function read_client",),
         build={"module": READS_ONLY}),
    Case("L04.18", "imports-amazondax", FAIL, ("Importing queries.py failed: ModuleNotFoundError", "amazondax"),
         build={"module": IMPORTS_DAX}, prepare=without_amazondax),
    Case("L04.18", "resource-not-client", FAIL, (("read_client({{}}) returned dynamodb.ServiceResource, not a DynamoDB "
                                                  "client; DynamoDB is the default read path"),),
         build={"module": READ_RESOURCE}),
    Case("L04.18", "setting-required", FAIL, (("read_client raised KeyError: 'ORDERS_READ_PATH' for the configuration "
                                               "{{}}"),),
         build={"module": READ_NEEDS_SETTING}),
    Case("L04.18", "live", PASS, (("read_client reads through DynamoDB by default and through DAX when configured, with "
                                   "the same answers"),),
         prepare=dax_endpoint(), live=True),
    Case("L04.18", "live-no-cluster", FAIL, ("DAX cluster {cluster} does not exist",), build={"cluster": False},
         live=True),
    Case("L04.18", "live-creating", FAIL, ("DAX cluster {cluster} has no endpoint yet (status creating); wait for it",),
         prepare=dax_endpoint(status="creating"), live=True),
    Case("L04.18", "live-dax-ignored", FAIL, (("read_client with ORDERS_READ_PATH=dax returned DynamoDB, not the DAX "
                                               "client"),),
         build={"module": READ_IGNORES_DAX}, prepare=dax_endpoint(), live=True),
    Case("L04.18", "live-other-setting", FAIL, ("With ORDERS_READ_PATH=dax, KeyError: 'DAX_URL'",),
         build={"module": READ_OTHER_SETTING}, prepare=dax_endpoint(), live=True),
    Case("L04.18", "live-no-amazondax", FAIL, ("With ORDERS_READ_PATH=dax, ModuleNotFoundError",),
         prepare=dax_endpoint(amazondax=None), live=True),
    Case("L04.18", "live-other-answers", FAIL, (("Through DAX, customer_orders returned other orders than through "
                                                 "DynamoDB"),),
         prepare=dax_endpoint(amazondax=fake_amazondax(query=stale)), live=True),
    Case("L04.18", "live-outside-vpc", SKIP, (("DAX cluster {cluster} answers only inside its VPC, and this grader runs "
                                               "outside it (ConnectionRefusedError)"),),
         prepare=dax_endpoint(amazondax=fake_amazondax(query=unreachable)), live=True),
    Case("L04.18", "live-bad-keyword", FAIL, ("With ORDERS_READ_PATH=dax, TypeError",),
         build={"module": READ_TIMEOUT_KEYWORD}, prepare=dax_endpoint(), live=True),
]

PASSING = covered(CASES, PASS)
FAILING = covered(CASES, FAIL)


@pytest.mark.parametrize("case", params(CASES))
def test_check(aws, case, monkeypatch):
    if case.check not in READS_DATA:
        case = dataclasses.replace(case, build={**NO_DATA, **case.build})
    run_case(case, aws, build_lab04, monkeypatch)


def test_whole_lab_on_the_solution_state(aws):
    """Locally L04.16 and L04.18 SKIP: the local AWS can show neither DAX's network nor a DAX endpoint."""
    assert_whole_lab(aws, "04", build_lab04, skipped={"L04.16", "L04.18"})


def test_the_live_only_calls_are_in_the_grader_policy(aws, monkeypatch):
    """Graded live, L04.16 reads EC2 and DAX's subnet groups, which a local grading never calls."""
    state = build_lab04(aws)
    calls = recording_calls(monkeypatch)
    view = aws.for_grading()
    view.mode = "live"
    for check, prepare in (("L04.16", dax_network()), ("L04.18", dax_endpoint())):
        prepare(view, state, monkeypatch)
        result = grade(view, check)
        assert result.status is PASS, result
    calls.add(("dax", "DescribeSubnetGroups"))  # the stub answered it: in-process moto has no subnet groups
    assert {("ec2", "DescribeSubnets"), ("ec2", "DescribeRouteTables"), ("ec2", "DescribeSecurityGroups")} <= calls
    assert missing_from_policy(calls) == set(), "add to grader-readonly.json"


def _contents(t: Target, table: str) -> list[dict]:
    return sorted(t.client("dynamodb").scan(TableName=table)["Items"], key=repr)


def test_grading_the_writes_leaves_the_learners_tables_as_they_were(aws):
    """L04.13 and L04.14 call create_order and place_order, but on empty copies in a private sandbox."""
    state = build_lab04(aws)
    before = {name: _contents(aws, name) for name in (state["table"], state["stock"])}
    tables_before = aws.client("dynamodb").list_tables()["TableNames"]
    report = checks.grade(checks.select("L04.13-L04.14"), aws)
    assert [r.status for r in report.results] == [PASS, PASS], report
    after = {name: _contents(aws, name) for name in before}
    assert after == before
    assert len(after[state["table"]]) == len(ORDERS)
    assert not [i for i in after[state["table"]] if i["customerId"]["S"] == "course-grader"]
    # The sandbox's copies lived in the learner's child, never in the learner's account.
    assert aws.client("dynamodb").list_tables()["TableNames"] == tables_before


def test_grading_twice_gives_the_same_report(aws):
    """Grading leaves nothing behind that a second run could see: same statuses, same sentences."""
    build_lab04(aws)
    first, second = (checks.grade(checks.select("04"), aws) for _ in range(2))
    assert first.exit_code == 0, first
    assert [(r.check.id, r.status, r.message) for r in first.results] == \
        [(r.check.id, r.status, r.message) for r in second.results]


def test_the_sandbox_verdict_is_remembered_until_the_module_changes(aws, monkeypatch):
    """Regrading unchanged work skips the private DynamoDB; any edit to the module judges it again."""
    from checks import learner

    build_lab04(aws, orders=None, stock_levels=None)
    assert grade(aws, "L04.13").status is PASS

    def no_sandbox(*args, **kwargs):
        raise AssertionError("the sandbox ran again")

    monkeypatch.setattr(learner, "sandbox", no_sandbox)
    assert grade(aws, "L04.13").status is PASS  # remembered: the sandbox was not needed
    path = lab04.module_path()
    path.write_text(path.read_text() + "\n# edited\n")
    result = grade(aws, "L04.13")
    assert result.status is Status.ERROR and "the sandbox ran again" in result.message


def test_the_builder_writes_the_notebooks_own_module(aws):
    """The solution rows grade the lab source's own three strings, joined as the notebook's save_module joins
    them, and that module defines every function the checks call."""
    state = build_lab04(aws, orders=None)
    text = Path(state["module"]).read_text()
    assert text == solution_module()
    assert all(f"def {name}(" in text for name in lab04.FUNCTIONS)


@pytest.mark.server
def test_whole_lab_locally(local_target):
    assert_whole_lab(local_target, "04", build_lab04, skipped={"L04.16", "L04.18"})


@pytest.mark.server
def test_every_call_the_lab04_checks_make_is_in_the_grader_policy(local_target, monkeypatch):
    build_lab04(local_target)
    calls = recording_calls(monkeypatch)
    report = checks.grade(checks.select("04"), local_target)
    assert report.exit_code == 0, report
    # The learner's functions read in a child with the grader's credentials: on a live account the policy allows them.
    calls |= {("dynamodb", "GetItem"), ("dynamodb", "Query")}
    assert ("dynamodb", "Query") in calls and ("dax", "DescribeClusters") in calls
    missing = missing_from_policy(calls)
    assert missing == set(), f"add to grader-readonly.json: {sorted(missing)}"
