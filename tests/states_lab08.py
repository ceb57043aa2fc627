"""The end state of lab 08 (RDS for PostgreSQL), built with boto3 on a Target.

``build_lab08(t)`` builds what lab 08's checks read, as the solution of
``course/08-rds.py`` does, on top of lab 04's VPC ``<prefix>-data`` and its
private subnets: the two security groups, the DB subnet group, the DB
instance, the read replica, the catalog function with its role, and on the
real local AWS (where the instance is a PostgreSQL) the schema and lab 04's
stock levels. Every keyword changes one thing; the returned dict holds the
names and ids the tests format their messages with.
"""
from __future__ import annotations

import ast
import functools
import json

from checks import lab08
from labkit import assets, lambdas
from labkit.config import REPO_ROOT, work_dir
from labkit.target import Target

COURSE_SOURCE = REPO_ROOT / "course" / "08-rds.py"
LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
PASSWORD = "Chosen-by-someone-1234"
TRANSACTION = "        with conn.transaction():  # every item or none: an exception rolls it all back\n"
RETRY = "    for attempt in (1, 2):\n"
STOCK_CHECK = "    stock       integer NOT NULL CHECK (stock >= 0)\n"
INDEX = "CREATE INDEX IF NOT EXISTS reservations_order_id ON reservations (order_id);\n"


@functools.cache
def _solution(name: str) -> str:
    """A string the lab's solution assigns (``handler_source``, ``schema_sql``)."""
    for node in ast.walk(ast.parse(COURSE_SOURCE.read_text())):
        if isinstance(node, ast.Assign) and any(getattr(n, "id", None) == name for n in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{COURSE_SOURCE.name} assigns no {name}")


def _with(name: str, *edits: tuple[str, str]) -> str:
    source = _solution(name)
    for old, new in edits:
        assert old in source, f"the solution's {name} has no {old!r}"
        source = source.replace(old, new)
    return source


def handler_with(*edits: tuple[str, str]) -> str:
    return _with("handler_source", *edits)


def schema_with(*edits: tuple[str, str]) -> str:
    return _with("schema_sql", *edits)


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


def build_lab08(
    t: Target,
    *,
    db_rules: list[dict] | None = None,
    subnets: str = "both",
    engine_version: str = "18.1",
    multi_az: bool = True,
    encrypted: bool = True,
    public: bool = False,
    in_subnet_group: bool = True,
    db_security: str = "db",
    deletion_protection: bool = True,
    retention: int = 7,
    managed: bool = True,
    schema: str | None = None,
    stock: bool = True,
    replica: str = "replica",
    replica_public: bool = False,
    handler: str | None = None,
    env: dict | None = None,
    password_in_env: bool = False,
    in_service_group: bool = True,
    secret_policy: bool = True,
) -> dict:
    """Lab 08's end state. ``db_rules`` replaces the database group's ingress (``{service}`` is filled in);
    ``subnets`` "both" or "one" (both in one zone); ``db_security`` "db" or "service"; ``replica`` "replica",
    "copy" (a primary of its own under the replica's name) or "none"; ``schema`` replaces the solution's SQL;
    ``env`` overrides function variables (a None value removes one)."""
    ec2, rds, sm, iam, lam = (t.client(s) for s in ("ec2", "rds", "secretsmanager", "iam", "lambda"))
    vpc, subnet_ids = _network(t)
    if subnets == "one":
        zone = ec2.describe_subnets(SubnetIds=subnet_ids[:1])["Subnets"][0]["AvailabilityZone"]
        subnet_ids[1] = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.3.0/24", AvailabilityZone=zone,
                                          TagSpecifications=[{"ResourceType": "subnet", "Tags": t.tags("04") + [
                                              {"Key": "Name", "Value": t.name("data", "private-1")}]}])["Subnet"][
            "SubnetId"]
    name, ro = lab08.db_id(t), lab08.replica_id(t)
    state = dict(db=name, replica=ro, function=lab08.function_name(t), vpc=vpc, subnets=subnet_ids)

    def group(group_name):
        return ec2.create_security_group(GroupName=group_name, Description=group_name, VpcId=vpc, TagSpecifications=[
            {"ResourceType": "security-group", "Tags": t.tags("08")}])["GroupId"]

    service, database = group(lab08.service_group_name(t)), group(name)
    state.update(service_sg=service, db_sg=database)
    rules = db_rules if db_rules is not None else [
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": "{service}"}]}]
    if rules:
        ec2.authorize_security_group_ingress(GroupId=database,
                                             IpPermissions=json.loads(json.dumps(rules).replace("{service}", service)))
    rds.create_db_subnet_group(DBSubnetGroupName=name, DBSubnetGroupDescription="catalog", SubnetIds=subnet_ids,
                               Tags=t.tags("08"))

    extra = {"ManageMasterUserPassword": True} if managed else {"MasterUserPassword": PASSWORD}
    if in_subnet_group:
        extra["DBSubnetGroupName"] = name
    rds.create_db_instance(
        DBInstanceIdentifier=name, Engine="postgres", EngineVersion=engine_version, DBInstanceClass="db.t4g.micro",
        AllocatedStorage=20, StorageType="gp3", MultiAZ=multi_az, StorageEncrypted=encrypted,
        PubliclyAccessible=public, VpcSecurityGroupIds=[database if db_security == "db" else service],
        DeletionProtection=deletion_protection, BackupRetentionPeriod=retention, MasterUsername="catalog_admin",
        DBName=lab08.DB_NAME, Tags=t.tags("08"), **extra)
    db = rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]
    secret_arn = (db.get("MasterUserSecret") or {}).get("SecretArn")
    state.update(endpoint=db["Endpoint"], secret=secret_arn)

    local = t.mode == "local"  # the instance is a real PostgreSQL
    if local:
        import psycopg

        login = json.loads(sm.get_secret_value(SecretId=secret_arn)["SecretString"]) if secret_arn else {
            "username": "catalog_admin", "password": PASSWORD}
        with psycopg.connect(host=db["Endpoint"]["Address"], port=db["Endpoint"]["Port"], dbname=lab08.DB_NAME,
                             user=login["username"], password=login["password"], autocommit=True) as conn:
            conn.execute(_solution("schema_sql") if schema is None else schema)
            if stock:
                with conn.cursor() as cur:
                    cur.executemany("INSERT INTO products (sku, price_cents, stock) VALUES (%s, %s, %s)",
                                    [(s["sku"], s["price"], s["available"]) for s in assets.lab04_stock()])

    if replica == "replica":
        rds.create_db_instance_read_replica(DBInstanceIdentifier=ro, SourceDBInstanceIdentifier=name,
                                            DBInstanceClass="db.t4g.micro", PubliclyAccessible=replica_public,
                                            VpcSecurityGroupIds=[database], Tags=t.tags("08"))
    elif replica == "copy":  # the primary's master password, so only its being no replica is wrong
        same = json.loads(sm.get_secret_value(SecretId=secret_arn)["SecretString"])["password"] if secret_arn else PASSWORD
        rds.create_db_instance(DBInstanceIdentifier=ro, Engine="postgres", EngineVersion=engine_version,
                               DBInstanceClass="db.t4g.micro", AllocatedStorage=20, StorageEncrypted=True,
                               VpcSecurityGroupIds=[database], MasterUsername="catalog_admin",
                               MasterUserPassword=same, DBName=lab08.DB_NAME, Tags=t.tags("08"))
    reader = rds.describe_db_instances(DBInstanceIdentifier=ro)["DBInstances"][0]["Endpoint"] if (
        replica != "none") else {"Address": "nowhere", "Port": 5432}

    role = lab08.role_name(t)
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST),
                               Tags=t.tags("08"))["Role"]["Arn"]
    iam.put_role_policy(RoleName=role, PolicyName=t.name("catalog-logs"), PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": [
            "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"}]}))
    if secret_policy and secret_arn:
        iam.put_role_policy(RoleName=role, PolicyName=t.name("catalog-db"), PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                                    "Resource": secret_arn}]}))
    folder = work_dir() / "catalog"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "handler.py").write_text(_solution("handler_source") if handler is None else handler)
    variables = {"DB_HOST": db["Endpoint"]["Address"], "DB_PORT": str(db["Endpoint"]["Port"]),
                 "DB_READER_HOST": reader["Address"], "DB_READER_PORT": str(reader["Port"]),
                 "DB_NAME": lab08.DB_NAME, "DB_SECRET": secret_arn or "none"}
    if password_in_env and secret_arn:
        variables["DB_PASSWORD"] = json.loads(sm.get_secret_value(SecretId=secret_arn)["SecretString"])["password"]
    for key, value in (env or {}).items():
        if value is None:
            variables.pop(key, None)
        else:
            variables[key] = value
    lam.create_function(FunctionName=lab08.function_name(t), Runtime="python3.13", Handler="handler.handler",
                        Role=role_arn, Code={"ZipFile": lambdas.package(folder)}, Timeout=10, MemorySize=256,
                        Environment={"Variables": variables},
                        VpcConfig={"SubnetIds": subnet_ids, "SecurityGroupIds": [service if in_service_group else database]},
                        Tags=t.tag_map("08"))
    lam.get_waiter("function_active_v2").wait(FunctionName=lab08.function_name(t))
    return state
