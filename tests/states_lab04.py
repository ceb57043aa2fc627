"""The end state of lab 04 (DynamoDB data modeling, auto scaling and DAX), built with boto3 on a Target.

``build_lab04(t)`` does what the solution of ``course/04-dynamodb-dax.py``
does, in its order: the tables ``orders-v2`` (with the index ``status-day``)
and ``stock``, the provided data set with ``statusDay`` derived, the module
``work_dir()/orders-v2/queries.py`` (the notebook's own sources, read from
the lab source), TTL, the stream, point-in-time recovery and deletion
protection, provisioned capacity with auto scaling, and DAX: the VPC, its
private subnets and security group, the role and the cluster. It does not
start from lab 03's state: lab 04's checks read only lab 04's resources.

Every keyword changes one thing; the returned dict holds the names and ids
the tests format their messages with.
"""
from __future__ import annotations

import ast
import functools
import json
import textwrap
from collections.abc import Callable

from labkit import assets
from labkit.config import REPO_ROOT, work_dir
from labkit.target import Target

DEFAULT = object()  # "as the solution does it"
COURSE_SOURCE = REPO_ROOT / "course" / "04-dynamodb-dax.py"
MODULE_PARTS = ("reads_source", "writes_source", "read_path_source")
INDEX = "status-day"
KEYS = (("customerId", "HASH", "S"), ("orderId", "RANGE", "S"))
INDEX_KEYS = (("statusDay", "HASH", "S"), ("createdAt", "RANGE", "S"))
PROJECTION = {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["items", "total"]}
DIRECTIONS = {"Read": "DynamoDBReadCapacityUtilization", "Write": "DynamoDBWriteCapacityUtilization"}
VPC_CIDR = "10.40.0.0/16"
DAX_TLS_PORT = 9111
TLS_FROM_VPC = [{"IpProtocol": "tcp", "FromPort": DAX_TLS_PORT, "ToPort": DAX_TLS_PORT,
                 "IpRanges": [{"CidrIp": VPC_CIDR}]}]
DAX_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "dax.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
ITEM_ACTIONS = ("GetItem", "BatchGetItem", "Query", "Scan", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem",
                "ConditionCheckItem", "DescribeTable")


# -- the learner's module -----------------------------------------------------------

@functools.cache
def _sources() -> dict[str, str]:
    """The module sources the lab's solution assigns (string literals in the lab source)."""
    found = {}
    for node in ast.walk(ast.parse(COURSE_SOURCE.read_text())):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if getattr(target, "id", None) in MODULE_PARTS:
                    found[target.id] = ast.literal_eval(node.value)
    missing = set(MODULE_PARTS) - set(found)
    assert not missing, f"{COURSE_SOURCE.name} assigns no {', '.join(sorted(missing))}"
    return found


def solution_module() -> str:
    """queries.py as the notebook's last save_module writes it: the three sources joined."""
    return "\n\n".join(_sources()[part].strip("\n") for part in MODULE_PARTS) + "\n"


def module_with(*edits: tuple[str, str]) -> str:
    """The solution's module with (old, new) text replacements; each ``old`` must occur."""
    source = solution_module()
    for old, new in edits:
        assert old in source, f"the solution module has no {old!r}"
        source = source.replace(old, new)
    return source


def module_defining(**functions: str) -> str:
    """The solution's module with whole top-level functions replaced: name=source of the new def ("": dropped)."""
    source = solution_module()
    lines = source.splitlines()
    defs = {node.name: node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)}
    # Replace from the bottom up, so earlier line numbers stay valid.
    for name in sorted(functions, key=lambda n: defs[n].lineno if n in defs else 0, reverse=True):
        assert name in defs, f"the solution module defines no {name}"
        node = defs[name]
        lines[node.lineno - 1:node.end_lineno] = textwrap.dedent(functions[name]).strip("\n").splitlines()
    return "\n".join(lines) + "\n"


def module_path():
    return work_dir() / "orders-v2" / "queries.py"


# -- the data set -----------------------------------------------------------------------

def status_day(order: dict) -> str:
    """The index key the solution's loader derives."""
    return f"{order['status']}#{order['createdAt'][:10]}"


def _typed(record: dict) -> dict:
    from boto3.dynamodb.types import TypeSerializer

    serialize = TypeSerializer().serialize
    return {key: serialize(value) for key, value in record.items()}


@functools.cache
def _solution_items() -> tuple[dict, ...]:
    """The data set as the solution writes it, serialised once per test process (tests reuse it)."""
    return tuple(_typed(dict(o, statusDay=status_day(o))) for o in assets.lab04_orders())


@functools.cache
def _stock_items() -> tuple[dict, ...]:
    return tuple(_typed(s) for s in assets.lab04_stock())


def write_all(t: Target, name: str, items) -> None:
    """batch_write_item in 25s, sending again what comes back unprocessed (as the notebook's write_all)."""
    client, items = t.client("dynamodb"), list(items)
    for start in range(0, len(items), 25):
        pending = {name: [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or None


def _order_items(orders, derive) -> list[dict]:
    """The typed items to load: the cached solution items, or ``orders`` with ``derive``'s statusDay."""
    if orders is DEFAULT and derive is DEFAULT:
        return list(_solution_items())
    records = assets.lab04_orders() if orders is DEFAULT else orders
    derive = status_day if derive is DEFAULT else derive
    out = []
    for order in records:
        value = derive(order) if derive else None
        out.append(_typed(order if value is None else dict(order, statusDay=value)))
    return out


# -- the DAX role ----------------------------------------------------------------------------

def dax_statements(table_arn: str) -> list[dict]:
    """The solution's one statement: the item actions on the table and its indexes."""
    return [{"Effect": "Allow", "Action": [f"dynamodb:{a}" for a in ITEM_ACTIONS],
             "Resource": [table_arn, f"{table_arn}/index/*"]}]


def _schema(keys) -> list[dict]:
    return [{"AttributeName": name, "KeyType": kind} for name, kind, _ in keys]


def build_lab04(
    t: Target,
    *,
    table: bool = True,
    keys: tuple = KEYS,
    table_tags: list[dict] | None = DEFAULT,
    index: tuple | None = INDEX_KEYS,
    projection: dict = PROJECTION,
    created_provisioned: bool = False,
    stock: bool = True,
    orders: list[dict] | None = DEFAULT,
    derive: Callable[[dict], str | None] | None = DEFAULT,
    stock_levels: list[dict] | None = DEFAULT,
    module: str | None = DEFAULT,
    ttl: str | None = "expiresAt",
    stream: str | None = "NEW_AND_OLD_IMAGES",
    pitr: bool = True,
    protection: bool = True,
    provisioned: bool = True,
    scaled: tuple[str, ...] = ("table", "index"),
    limits: tuple[int, int] | dict[str, tuple[int, int]] = (5, 100),
    policies: bool = True,
    target_value: float = 70.0,
    metric: Callable[[str], str] | None = None,
    network: bool = True,
    zones: int = 2,
    public: str | None = None,
    ingress: list[dict] = TLS_FROM_VPC,
    dax_role: bool = True,
    dax_trust: dict = DAX_TRUST,
    statements: Callable[[str], list[dict]] | None = dax_statements,
    cluster: bool = True,
    sse: bool = True,
    tls: bool = True,
    cluster_role: str | None = None,
    cluster_tags: list[dict] | None = DEFAULT,
) -> dict:
    """The end state of lab 04, wrong in whatever the keywords say.

    ``keys``/``index`` are (name, HASH|RANGE, S|N) triples (``index`` None: no
    index); ``created_provisioned`` creates orders-v2 PROVISIONED from the
    start (no BillingModeSummary); ``orders`` the order records to load
    (None: none) and ``derive(order)`` the statusDay each gets (None: none);
    ``module`` the text of queries.py (None: no file); ``scaled`` which of
    table and index get scalable targets (and policies), ``limits`` their
    (min, max), by kind or for both; ``metric(direction)`` the metric a
    direction's policy tracks; ``zones`` how many zones the two subnets span;
    ``public`` routes the subnets to an internet gateway ("own": through a
    route table of their own, "main": through the VPC's main one);
    ``statements(table_arn)`` the DAX role's inline policy (None: none);
    ``cluster_role`` another role (trusting DAX) the cluster reads as.
    """
    account, region = t.account_id, t.region
    name, stock_name = t.name("orders-v2"), t.name("stock")
    arn = f"arn:aws:dynamodb:{region}:{account}:table/{name}"
    role = t.name("orders-dax")
    state = {"table": name, "table_arn": arn, "stock": stock_name, "index": INDEX, "module": str(module_path()),
             "role": role, "role_arn": f"arn:aws:iam::{account}:role/{role}",
             "cluster": t.name("dax", limit=20), "subnet_group": t.name("dax"),
             "vpc_id": None, "subnets": [], "subnet_ids": [], "group_id": None,  # filled by the network step
             "account": account, "region": region, "prefix": t.prefix}
    ddb = t.client("dynamodb")

    # Step 1 of the notebook: the tables, on-demand and tagged
    if table:
        types = {n: kind for n, _, kind in keys + (index or ())}  # every key attribute, with its type
        units = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        extra: dict = {}
        if index is not None:
            gsi = {"IndexName": INDEX, "KeySchema": _schema(index), "Projection": projection}
            extra["GlobalSecondaryIndexes"] = [dict(gsi, ProvisionedThroughput=units) if created_provisioned else gsi]
        billing = {"BillingMode": "PROVISIONED", "ProvisionedThroughput": units} if created_provisioned \
            else {"BillingMode": "PAY_PER_REQUEST"}
        ddb.create_table(TableName=name, KeySchema=_schema(keys),
                         AttributeDefinitions=[{"AttributeName": n, "AttributeType": k} for n, k in types.items()],
                         Tags=t.tags("04") if table_tags is DEFAULT else table_tags or [], **billing, **extra)
    if stock:
        ddb.create_table(TableName=stock_name, KeySchema=[{"AttributeName": "sku", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "sku", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST", Tags=t.tags("04"))

    # Step 2: the data set
    if table and orders is not None:
        write_all(t, name, _order_items(orders, derive))
    if stock and stock_levels is not None:
        write_all(t, stock_name, _stock_items() if stock_levels is DEFAULT else [_typed(s) for s in stock_levels])

    # Step 3: the module (steps 5 and 9 add to it; it is written once, whole)
    if module is not None:
        path = module_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(solution_module() if module is DEFAULT else module)

    # Step 6: life cycle and safety
    if table:
        if ttl:
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl})
        if stream:
            ddb.update_table(TableName=name, StreamSpecification={"StreamEnabled": True, "StreamViewType": stream})
        if pitr:
            ddb.update_continuous_backups(TableName=name,
                                          PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
        if protection:
            ddb.update_table(TableName=name, DeletionProtectionEnabled=True)

    # Step 7: provisioned capacity with auto scaling
    if table and provisioned and not created_provisioned:
        updates = [{"Update": {"IndexName": INDEX, "ProvisionedThroughput": units}}] if index is not None else []
        ddb.update_table(TableName=name, BillingMode="PROVISIONED", ProvisionedThroughput=units,
                         **({"GlobalSecondaryIndexUpdates": updates} if updates else {}))
    if table and (provisioned or created_provisioned):
        scaling = t.client("application-autoscaling")
        resources = {f"table/{name}": "table", f"table/{name}/index/{INDEX}": "index"}
        for resource, kind in resources.items():
            if kind not in scaled:
                continue
            low, high = limits[kind] if isinstance(limits, dict) else limits
            for direction, metric_type in DIRECTIONS.items():
                dimension = f"dynamodb:{kind}:{direction}CapacityUnits"
                scaling.register_scalable_target(ServiceNamespace="dynamodb", ResourceId=resource,
                                                 ScalableDimension=dimension, MinCapacity=low, MaxCapacity=high)
                if policies:
                    scaling.put_scaling_policy(
                        PolicyName=f"{t.prefix}-{kind}-{direction.lower()}-70", ServiceNamespace="dynamodb",
                        ResourceId=resource, ScalableDimension=dimension, PolicyType="TargetTrackingScaling",
                        TargetTrackingScalingPolicyConfiguration={
                            "TargetValue": target_value,
                            "PredefinedMetricSpecification": {
                                "PredefinedMetricType": metric(direction) if metric else metric_type}})

    # Step 8: DAX's network (the subnet group is live only: the local AWS has none)
    if network:
        ec2 = t.client("ec2")

        def tagged(kind, label):
            return [{"ResourceType": kind, "Tags": [{"Key": "Name", "Value": label}] + t.tags("04")}]

        vpc_id = ec2.create_vpc(CidrBlock=VPC_CIDR, TagSpecifications=tagged("vpc", t.name("data")))["Vpc"]["VpcId"]
        names = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
        for n in (1, 2):
            zone = names[0] if zones == 1 else names[n - 1]
            subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.40.{n}.0/24", AvailabilityZone=zone,
                                       TagSpecifications=tagged("subnet", t.name("data", f"private-{n}")))["Subnet"]
            state["subnets"].append((subnet["SubnetId"], zone))
            state["subnet_ids"].append(subnet["SubnetId"])
        group_id = ec2.create_security_group(
            GroupName=t.name("dax"), Description="DAX: TLS from the VPC only", VpcId=vpc_id,
            TagSpecifications=tagged("security-group", t.name("dax")))["GroupId"]
        if ingress:
            ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=ingress)
        if public:
            gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
            ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc_id)
            if public == "own":
                route_table = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
                ec2.associate_route_table(RouteTableId=route_table, SubnetId=state["subnets"][0][0])
            else:
                route_table = ec2.describe_route_tables(Filters=[
                    {"Name": "vpc-id", "Values": [vpc_id]},
                    {"Name": "association.main", "Values": ["true"]}])["RouteTables"][0]["RouteTableId"]
            ec2.create_route(RouteTableId=route_table, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
        state.update(vpc_id=vpc_id, group_id=group_id)

    # Step 8: the role DAX reads with
    iam = t.client("iam")
    if dax_role:
        iam.create_role(RoleName=state["role"], AssumeRolePolicyDocument=json.dumps(dax_trust), Tags=t.tags("04"))
        if statements is not None:
            iam.put_role_policy(RoleName=state["role"], PolicyName="orders-v2-items", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": statements(arn)}))

    # Step 8: the cluster
    if cluster:
        role_arn = state["role_arn"]
        if cluster_role:
            role_arn = iam.create_role(RoleName=cluster_role,
                                       AssumeRolePolicyDocument=json.dumps(DAX_TRUST))["Role"]["Arn"]
        settings = {"ClusterName": state["cluster"], "NodeType": "dax.t3.small", "ReplicationFactor": 1,
                    "IamRoleArn": role_arn, "SSESpecification": {"Enabled": sse},
                    "Tags": t.tags("04") if cluster_tags is DEFAULT else cluster_tags or []}
        if tls:
            settings["ClusterEndpointEncryptionType"] = "TLS"
        if state["group_id"]:
            settings["SecurityGroupIds"] = [state["group_id"]]
        t.client("dax").create_cluster(**settings)
    return state
