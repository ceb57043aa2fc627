# %% [markdown]
# # Lab 08: RDS for PostgreSQL, the relational part of the shop
#
# Lab 03's orders live in DynamoDB, and that suits them: each order is read
# and written by its key, alone. The **catalog** is different. A product has
# a price and a stock level; reserving stock for an order must take every
# item of the order or none of them, must never sell what is not there, and
# must name products that exist. Those are rules between rows, and a
# relational database keeps them for you: a **schema with constraints**, a
# **transaction** that commits whole or not at all, and **indexes** the
# query planner uses.
#
# In this lab you run that part on **Amazon RDS for PostgreSQL**:
#
# 1. the network: a security group for the catalog service, one for the database that admits only it, a DB subnet group;
# 2. the DB instance `<prefix>-db`: PostgreSQL 18, Multi-AZ, encrypted, private, protected from deletion, backed up, its master password managed in Secrets Manager;
# 3. the schema: products and reservations with constraints, and an index that EXPLAIN shows used;
# 4. a read replica, `<prefix>-db-ro`, and the lag it runs behind;
# 5. the catalog service, a Lambda function that reads the password from the secret, reads from the replica and reserves stock in one transaction on the primary;
# 6. a Multi-AZ failover that keeps the data and the service.
#
# Concepts, and when DynamoDB is the better fit:
# [Lab 08 in the course docs](../site/labs/08-rds.md). This lab starts from
# the end of lab 07 (it uses lab 04's VPC and stock levels and nothing of
# lab 07); `python -m labkit start 08` puts the local AWS there. Locally
# every DB instance is a real PostgreSQL the local AWS starts for you, at
# the endpoint `describe_db_instances` reports.
#
# **On a live account RDS bills per instance-hour** from creation until
# deletion, and Multi-AZ doubles it: this lab's Multi-AZ `db.t4g.micro` and
# its replica cost about USD 0.05 an hour together, plus storage. Remove
# everything with `python -m labkit cleanup --live` when you are done.

# %%
import json
import time

import psycopg
from psycopg.rows import dict_row

import checks
import labkit
import labkit.lambdas
from labkit import assets

t = labkit.target()
rds = t.client("rds")
ec2 = t.client("ec2")
iam = t.client("iam")
lam = t.client("lambda")
sm = t.client("secretsmanager")

db_id = t.name("db")  # the DB instance, its subnet group and its security group
replica_id = t.name("db-ro")
fn_name = t.name("catalog")
role_name = t.name("catalog-fn")
source_dir = labkit.config.work_dir() / "catalog"
print("DB instance:", db_id, "| replica:", replica_id, "| function:", fn_name)


def tagged(kind, name):
    return [{"ResourceType": kind, "Tags": t.tags("08") + [{"Key": "Name", "Value": name}]}]


# %% [markdown]
# ## 1. The network
#
# A database belongs in **private subnets**, reachable only from the
# services that use it: its **security group admits TCP 5432** (PostgreSQL)
# **from the service's security group**, no address ranges (see
# [Network placement](../site/labs/08-rds.md#network-placement)).
#
# Use lab 04's VPC `<prefix>-data` and its two private subnets. Create the
# security groups `<prefix>-catalog-svc` (the catalog function will run in
# it) and `<prefix>-db`, admitting TCP 5432 from `<prefix>-catalog-svc`
# only. Then the **DB subnet group** `<prefix>-db` with both subnets: they
# are in two zones, which Multi-AZ needs (RDS refuses a subnet group in one
# zone).

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


# TODO: create service_sg (t.name("catalog-svc")) and db_sg (db_id) with security_group(...); let db_sg admit TCP 5432 from service_sg only (UserIdGroupPairs, tolerate a duplicate rule); create the DB subnet group db_id with subnet_ids and Tags=t.tags("08") (tolerate DBSubnetGroupAlreadyExistsFault).
# BEGIN SOLUTION
service_sg = security_group(t.name("catalog-svc"), "The catalog service (its Lambda function's network interfaces)")
db_sg = security_group(db_id, "RDS: PostgreSQL from the catalog service only")
try:
    ec2.authorize_security_group_ingress(GroupId=db_sg, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
        "UserIdGroupPairs": [{"GroupId": service_sg, "Description": "the catalog service"}]}])
except ec2.exceptions.ClientError as exc:
    if "Duplicate" not in str(exc):
        raise
try:
    rds.create_db_subnet_group(DBSubnetGroupName=db_id, DBSubnetGroupDescription="catalog database, private",
                               SubnetIds=subnet_ids, Tags=t.tags("08"))
except rds.exceptions.DBSubnetGroupAlreadyExistsFault:
    pass
# END SOLUTION
print("service:", service_sg, "database:", db_sg, "subnets:", subnet_ids)

# %%
checks.run("L08.01-L08.02")

# %% [markdown]
# ## 2. The DB instance
#
# Create `<prefix>-db` (see [The DB instance](../site/labs/08-rds.md#the-db-instance)):
#
# | setting | value | why |
# | --- | --- | --- |
# | `Engine`, `EngineVersion` | `postgres`, `18.1` | a current major version (17 and 18 are; older ones reach end of standard support) |
# | `DBInstanceClass`, `AllocatedStorage`, `StorageType` | `db.t4g.micro`, `20`, `gp3` | the smallest Graviton instance, the smallest gp3 volume |
# | `MultiAZ` | `True` | a synchronous standby in the other zone, promoted when the primary fails |
# | `StorageEncrypted` | `True` | disks, backups, snapshots and replicas encrypted; set at creation only |
# | `PubliclyAccessible` | `False` | no public address: only the VPC reaches it |
# | `DBSubnetGroupName`, `VpcSecurityGroupIds` | `<prefix>-db`, the id of `<prefix>-db` | in the private subnets, behind its own group |
# | `DeletionProtection` | `True` | a delete call is refused until someone turns it off |
# | `BackupRetentionPeriod` | `7` | daily automated backups and point-in-time recovery for a week (0 switches them off, and replicas need them) |
# | `MasterUsername`, `DBName` | `catalog_admin`, `catalog` | the master user, and the database to create |
# | `ManageMasterUserPassword` | `True` | RDS makes a random password and keeps it in a Secrets Manager secret it rotates |
#
# Tag it with `t.tags("08")`. Locally it is ready in a second or two (the
# first one on your machine takes longer, to create the template
# database); on AWS, wait for `db_instance_available` (Multi-AZ: about
# fifteen minutes).

# %%
# TODO: create the DB instance db_id as described (tolerate DBInstanceAlreadyExistsFault), then wait until it is available.
# BEGIN SOLUTION
try:
    rds.create_db_instance(
        DBInstanceIdentifier=db_id, Engine="postgres", EngineVersion="18.1", DBInstanceClass="db.t4g.micro",
        AllocatedStorage=20, StorageType="gp3", MultiAZ=True, StorageEncrypted=True, PubliclyAccessible=False,
        DBSubnetGroupName=db_id, VpcSecurityGroupIds=[db_sg], DeletionProtection=True, BackupRetentionPeriod=7,
        MasterUsername="catalog_admin", DBName="catalog", ManageMasterUserPassword=True, Tags=t.tags("08"))
except rds.exceptions.DBInstanceAlreadyExistsFault:
    pass
rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=db_id, WaiterConfig={"Delay": 10})
# END SOLUTION
db = rds.describe_db_instances(DBInstanceIdentifier=db_id)["DBInstances"][0]
endpoint = db["Endpoint"]
secret_arn = db["MasterUserSecret"]["SecretArn"]
print(db["DBInstanceStatus"], db["Engine"], db["EngineVersion"], "Multi-AZ:", db["MultiAZ"], "endpoint:", endpoint)

# %% [markdown]
# ### A plain client, with and without the password
#
# The password is in the secret RDS made (`MasterUserSecret`), and nowhere
# else: read it, then connect with **psycopg**, the PostgreSQL driver for
# Python, to the endpoint `describe_db_instances` reports. With a wrong
# password the server refuses. On a live account the endpoint is
# reachable only from inside the VPC.

# %%
def login():
    value = json.loads(sm.get_secret_value(SecretId=secret_arn)["SecretString"])
    return value["username"], value["password"]


def connect(where, **extra):
    user, password = login()
    return psycopg.connect(host=where["Address"], port=where["Port"], dbname="catalog", user=user,
                           password=password, connect_timeout=10, autocommit=True, **extra)


with connect(endpoint) as conn:
    print(conn.execute("SELECT current_user, version()").fetchone())
try:
    psycopg.connect(host=endpoint["Address"], port=endpoint["Port"], dbname="catalog", user=login()[0],
                    password="not-the-password", connect_timeout=10).close()
except psycopg.OperationalError as exc:
    print("a wrong password ->", str(exc).strip().splitlines()[-1])

# %%
checks.run("L08.03-L08.08")

# %% [markdown]
# ## 3. The schema
#
# Two tables, and the rules the database keeps (see
# [Schema and constraints](../site/labs/08-rds.md#schema-and-constraints)):
#
# - `products`: `sku` text, the **primary key**; `price_cents` integer, not null, **`CHECK (price_cents > 0)`**;
#   `stock` integer, not null, **`CHECK (stock >= 0)`**: no write can sell what is not there;
# - `reservations`: `id` bigint `GENERATED ALWAYS AS IDENTITY` primary key; `order_id` text, not null;
#   `sku` text, not null, a **foreign key** to `products (sku)`; `quantity` integer, not null, `CHECK (quantity > 0)`;
#   `price_cents` integer, not null (the price when reserved); `reserved_at` timestamptz, not null, default `now()`;
# - an **index** `reservations_order_id` on `reservations (order_id)`: the service looks reservations up by order.
#
# Write the statements into `schema_sql` (`CREATE ... IF NOT EXISTS`, so the
# cell runs twice), run them on the primary, then load lab 04's stock levels
# (`assets.lab04_stock()`: `sku`, `price`, `available`) into `products`,
# leaving rows that exist alone (`ON CONFLICT (sku) DO NOTHING`).

# %%
# TODO: set schema_sql to the statements described above and run it on the primary; then insert lab 04's stock levels into products.
# BEGIN SOLUTION
schema_sql = """\
CREATE TABLE IF NOT EXISTS products (
    sku         text PRIMARY KEY,
    price_cents integer NOT NULL CHECK (price_cents > 0),
    stock       integer NOT NULL CHECK (stock >= 0)
);
CREATE TABLE IF NOT EXISTS reservations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id    text NOT NULL,
    sku         text NOT NULL REFERENCES products (sku),
    quantity    integer NOT NULL CHECK (quantity > 0),
    price_cents integer NOT NULL,
    reserved_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS reservations_order_id ON reservations (order_id);
"""
with connect(endpoint) as conn:
    conn.execute(schema_sql)
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO products (sku, price_cents, stock) VALUES (%s, %s, %s) ON CONFLICT (sku) DO NOTHING",
                        [(s["sku"], s["price"], s["available"]) for s in assets.lab04_stock()])
# END SOLUTION
with connect(endpoint) as conn:
    print(conn.execute("SELECT count(*), sum(stock) FROM products").fetchone(), "products, units in stock")

# %% [markdown]
# The constraints are the database's, not the code's: try to break them.
# Each statement runs in a transaction that is rolled back.

# %%
with connect(endpoint) as conn:
    for statement in ("UPDATE products SET stock = -1 WHERE sku = 'SKU-001'",
                      "INSERT INTO reservations (order_id, sku, quantity, price_cents) VALUES ('x', 'NO-SUCH-SKU', 1, 1)"):
        try:
            with conn.transaction():
                conn.execute(statement)
        except psycopg.errors.IntegrityError as exc:
            print(type(exc).__name__, "->", str(exc).splitlines()[0])

# %% [markdown]
# ### Is the index used?
#
# `EXPLAIN` shows the plan PostgreSQL picks. On a table of a few rows a
# sequential scan is cheapest, and the planner rightly takes it; to see the
# plan a large table would get, switch sequential scans off for your
# session (`SET enable_seqscan = off`, which changes nothing for anyone
# else). An `Index Scan using reservations_order_id` with an
# `Index Cond` on `order_id` is what you want.

# %%
with connect(endpoint) as conn:
    conn.execute("SET enable_seqscan = off")
    for (line,) in conn.execute("EXPLAIN SELECT sku, quantity FROM reservations WHERE order_id = 'x'"):
        print(line)

# %%
checks.run("L08.09-L08.10")

# %% [markdown]
# ## 4. A read replica
#
# A **read replica** is a second instance that replays the primary's
# write-ahead log as it comes: it serves reads, refuses writes, and runs a
# little behind (see [Read replicas](../site/labs/08-rds.md#read-replicas)).
# Unlike the Multi-AZ standby, which you cannot read, it has an endpoint of
# its own, and you send it the reads that may be a moment old: the catalog
# list, reports.
#
# Create `<prefix>-db-ro` from `<prefix>-db` (`db.t4g.micro`, not publicly
# accessible, behind `<prefix>-db`, tagged). It inherits the source's
# encryption and master user. Then measure its **lag**: commit a write on
# the primary, note the primary's WAL position, and time until the replica
# has replayed it.

# %%
# TODO: create the read replica replica_id of db_id as described (tolerate DBInstanceAlreadyExistsFault), then wait until it is available.
# BEGIN SOLUTION
try:
    rds.create_db_instance_read_replica(
        DBInstanceIdentifier=replica_id, SourceDBInstanceIdentifier=db_id, DBInstanceClass="db.t4g.micro",
        PubliclyAccessible=False, VpcSecurityGroupIds=[db_sg], Tags=t.tags("08"))
except rds.exceptions.DBInstanceAlreadyExistsFault:
    pass
rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=replica_id, WaiterConfig={"Delay": 10})
# END SOLUTION
reader = rds.describe_db_instances(DBInstanceIdentifier=replica_id)["DBInstances"][0]["Endpoint"]
print("replica endpoint:", reader)

# %%
with connect(endpoint) as rw, connect(reader) as ro:
    rw.execute("UPDATE products SET stock = stock WHERE sku = 'SKU-001'")  # a committed write, nothing changed
    position = rw.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    started, caught_up = time.perf_counter(), False
    while time.perf_counter() - started < 10:  # a bound on waiting: a replica that stopped replaying never catches up
        if ro.execute("SELECT pg_last_wal_replay_lsn() >= %s", (position,)).fetchone()[0]:
            caught_up = True
            break
        time.sleep(0.001)
    took = (time.perf_counter() - started) * 1000
    print(f"replica lag: {took:.1f} ms" if caught_up else "the replica has not replayed the write within 10 s")
    print("rows on the replica:", ro.execute("SELECT count(*) FROM products").fetchone()[0])
    try:
        ro.execute("UPDATE products SET stock = stock + 1 WHERE sku = 'SKU-001'")
    except psycopg.errors.ReadOnlySqlTransaction as exc:
        print("a write on the replica ->", str(exc).strip())

# %%
checks.run("L08.11-L08.12")

# %% [markdown]
# ## 5. The catalog service
#
# A new microservice, `<prefix>-catalog`, owns the catalog (see
# [The catalog service](../site/labs/08-rds.md#the-catalog-service)):
#
# | request | what it does |
# | --- | --- |
# | `GET /products` | `200` `{"products": [{"sku", "priceCents", "stock"}, ...]}`, read **from the replica** |
# | `GET /products/{sku}` | `200` the product, from the replica, or `404` |
# | `POST /reservations`, body `{"orderId", "items": [{"sku", "quantity"}]}` | in **one transaction on the primary**: for each item take the stock (`UPDATE ... SET stock = stock - q WHERE sku = s AND stock >= q`) and insert a reservation at the current price; `201` `{"orderId", "items", "totalCents"}`; if any item cannot be had, roll it all back and answer `409` |
# | `GET /reservations/{orderId}` | `200` `{"orderId", "items"}` from the primary (a client reads its own write), or `404` |
# | `DELETE /reservations/{orderId}` | in one transaction: delete the order's reservations and put their stock back; `204` |
#
# The function finds the database in its environment (`DB_HOST`, `DB_PORT`
# for the primary, `DB_READER_HOST`, `DB_READER_PORT` for the replica,
# `DB_NAME`, and `DB_SECRET`, the secret's ARN) and the password in the
# secret, read with its role's credentials when it connects: **no password
# in its configuration**, and a rotated one is picked up on the next
# connection. It keeps its connections across requests and opens a new one
# when a connection breaks (after a failover, say). It runs in the VPC, in
# `<prefix>-catalog-svc`.
#
# Create the role `<prefix>-catalog-fn` (trusting Lambda, tagged) with
# `AWSLambdaVPCAccessExecutionRole` and an inline policy
# `<prefix>-catalog-db` allowing `secretsmanager:GetSecretValue` on the
# secret's ARN only; then the function (`python3.13`, `handler.handler`,
# 10 s timeout, tagged with `t.tag_map("08")`). On a live account ship the
# driver with the code: `pip install "psycopg[binary]" -t work/catalog`.

# %%
source_dir.mkdir(parents=True, exist_ok=True)
handler_path = source_dir / "handler.py"
# TODO: set handler_source to the catalog service (see the table above) and write it to handler_path; create the role and its policies; create the function, or update its code and configuration when it exists.
# BEGIN SOLUTION
handler_source = '''\
"""The catalog service: prices and stock in PostgreSQL, reads from the replica, reservations in one transaction."""
import base64
import json
import os

import boto3
import psycopg
from psycopg.rows import dict_row

SECRETS = boto3.client("secretsmanager")
WHERE = {"writer": (os.environ["DB_HOST"], os.environ["DB_PORT"]),
         "reader": (os.environ["DB_READER_HOST"], os.environ["DB_READER_PORT"])}
CONNECTIONS = {}  # kept across requests in this execution environment


class OutOfStock(Exception):
    pass


def _open(kind):
    """A new connection; the password comes from the secret each time, so a rotated one is picked up."""
    login = json.loads(SECRETS.get_secret_value(SecretId=os.environ["DB_SECRET"])["SecretString"])
    host, port = WHERE[kind]
    return psycopg.connect(host=host, port=int(port), dbname=os.environ.get("DB_NAME", "catalog"),
                           user=login["username"], password=login["password"], connect_timeout=5,
                           autocommit=True, row_factory=dict_row)


def _with(kind, work):
    """work(connection), on a kept connection; once more on a new one if the kept one broke (a failover)."""
    for attempt in (1, 2):
        conn = CONNECTIONS.get(kind)
        if conn is None or conn.closed:
            conn = CONNECTIONS[kind] = _open(kind)
        try:
            return work(conn)
        except psycopg.OperationalError:
            CONNECTIONS.pop(kind, None)
            conn.close()
            if attempt == 2:
                raise


def respond(status, body=None):
    return {"statusCode": status, "headers": {"Content-Type": "application/json"},
            "body": "" if body is None else json.dumps(body)}


def _body(event):
    raw = event.get("body") or ""
    try:
        if event.get("isBase64Encoded"):
            raw = base64.b64decode(raw).decode("utf-8")
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _product(row):
    return {"sku": row["sku"], "priceCents": row["price_cents"], "stock": row["stock"]}


def list_products():
    rows = _with("reader", lambda c: c.execute("SELECT sku, price_cents, stock FROM products ORDER BY sku").fetchall())
    return respond(200, {"products": [_product(r) for r in rows]})


def get_product(sku):
    row = _with("reader", lambda c: c.execute("SELECT sku, price_cents, stock FROM products WHERE sku = %s",
                                              (sku,)).fetchone())
    return respond(200, _product(row)) if row else respond(404, {"message": f"no product {sku}"})


def _wanted(event):
    data = _body(event)
    if data is None or not isinstance(data.get("orderId"), str) or not data["orderId"]:
        return None
    items = data.get("items")
    if not isinstance(items, list) or not items:
        return None
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("sku"), str):
            return None
        if type(item.get("quantity")) is not int or item["quantity"] < 1:
            return None
    return data["orderId"], [(i["sku"], i["quantity"]) for i in items]


def reserve(event):
    wanted = _wanted(event)
    if wanted is None:
        return respond(400, {"message": "the body must be {\\"orderId\\": ..., \\"items\\": [{\\"sku\\", \\"quantity\\"}]}"})
    order_id, items = wanted

    def work(conn):
        reserved = []
        with conn.transaction():  # every item or none: an exception rolls it all back
            for sku, quantity in items:
                row = conn.execute("UPDATE products SET stock = stock - %s WHERE sku = %s AND stock >= %s "
                                   "RETURNING price_cents", (quantity, sku, quantity)).fetchone()
                if row is None:
                    raise OutOfStock(f"product {sku} is unknown or has fewer than {quantity} in stock")
                conn.execute("INSERT INTO reservations (order_id, sku, quantity, price_cents) VALUES (%s, %s, %s, %s)",
                             (order_id, sku, quantity, row["price_cents"]))
                reserved.append({"sku": sku, "quantity": quantity, "priceCents": row["price_cents"]})
        return reserved

    try:
        reserved = _with("writer", work)
    except OutOfStock as exc:
        return respond(409, {"message": f"{exc}; nothing was reserved"})
    total = sum(r["quantity"] * r["priceCents"] for r in reserved)
    return respond(201, {"orderId": order_id, "items": reserved, "totalCents": total})


def get_reservation(order_id):
    rows = _with("writer", lambda c: c.execute(
        "SELECT sku, quantity, price_cents FROM reservations WHERE order_id = %s ORDER BY id", (order_id,)).fetchall())
    if not rows:
        return respond(404, {"message": f"no reservation for order {order_id}"})
    return respond(200, {"orderId": order_id, "items": [
        {"sku": r["sku"], "quantity": r["quantity"], "priceCents": r["price_cents"]} for r in rows]})


def release(order_id):
    def work(conn):
        with conn.transaction():
            for row in conn.execute("DELETE FROM reservations WHERE order_id = %s RETURNING sku, quantity",
                                    (order_id,)).fetchall():
                conn.execute("UPDATE products SET stock = stock + %s WHERE sku = %s", (row["quantity"], row["sku"]))

    _with("writer", work)
    return respond(204)


def route(event):
    method, resource = event.get("httpMethod"), event.get("resource")
    params = event.get("pathParameters") or {}
    if resource == "/products" and method == "GET":
        return list_products()
    if resource == "/products/{sku}" and method == "GET":
        return get_product(params.get("sku"))
    if resource == "/reservations" and method == "POST":
        return reserve(event)
    if resource == "/reservations/{orderId}" and method == "GET":
        return get_reservation(params.get("orderId"))
    if resource == "/reservations/{orderId}" and method == "DELETE":
        return release(params.get("orderId"))
    return respond(404, {"message": f"no route for {method} {resource}"})


def handler(event, context):
    response = route(event)
    print(json.dumps({"requestId": getattr(context, "aws_request_id", None), "method": event.get("httpMethod"),
                      "path": event.get("path"), "status": response["statusCode"]}))
    return response
'''
handler_path.write_text(handler_source)
trust = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
try:
    role_arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust),
                               Tags=t.tags("08"))["Role"]["Arn"]
except iam.exceptions.EntityAlreadyExistsException:
    role_arn = iam.get_role(RoleName=role_name)["Role"]["Arn"]
iam.attach_role_policy(RoleName=role_name,
                       PolicyArn="arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole")
iam.put_role_policy(RoleName=role_name, PolicyName=t.name("catalog-db"), PolicyDocument=json.dumps({
    "Version": "2012-10-17", "Statement": [
        {"Sid": "DatabasePassword", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
         "Resource": secret_arn}]}))
db_settings = {"DB_HOST": endpoint["Address"], "DB_PORT": str(endpoint["Port"]), "DB_READER_HOST": reader["Address"],
               "DB_READER_PORT": str(reader["Port"]), "DB_NAME": "catalog", "DB_SECRET": secret_arn}
settings = dict(Runtime="python3.13", Handler="handler.handler", Role=role_arn, Timeout=10, MemorySize=256,
                Environment={"Variables": db_settings},
                VpcConfig={"SubnetIds": subnet_ids, "SecurityGroupIds": [service_sg]})
zip_bytes = labkit.lambdas.package(source_dir)
for attempt in range(10):  # a new role takes a few seconds to be usable on AWS
    try:
        lam.create_function(FunctionName=fn_name, Code={"ZipFile": zip_bytes}, Tags=t.tag_map("08"), **settings)
        break
    except lam.exceptions.ResourceConflictException:
        lam.update_function_code(FunctionName=fn_name, ZipFile=zip_bytes)
        lam.get_waiter("function_updated_v2").wait(FunctionName=fn_name)
        lam.update_function_configuration(FunctionName=fn_name, **settings)
        break
    except lam.exceptions.InvalidParameterValueException:
        if attempt == 9:
            raise
        time.sleep(3)
lam.get_waiter("function_active_v2").wait(FunctionName=fn_name)
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


print(call("GET", "/products/{sku}", sku="SKU-004"))
print(call("POST", "/reservations", {"orderId": "try-08", "items": [{"sku": "SKU-004", "quantity": 2},
                                                                    {"sku": "SKU-006", "quantity": 1}]}))
print(call("GET", "/reservations/{orderId}", orderId="try-08"))
print(call("POST", "/reservations", {"orderId": "try-08b", "items": [{"sku": "SKU-004", "quantity": 1},
                                                                     {"sku": "SKU-006", "quantity": 10**6}]}))
print(call("DELETE", "/reservations/{orderId}", orderId="try-08"))

# %%
checks.run("L08.13-L08.15")

# %% [markdown]
# ## 6. A failover
#
# With Multi-AZ, `reboot_db_instance(ForceFailover=True)` makes RDS treat
# the primary as failed: the standby in the other zone, which has every
# committed transaction, becomes the primary, and the **endpoint's name
# follows it** (see [Multi-AZ and failover](../site/labs/08-rds.md#multi-az-and-failover)).
# Connections open at that moment break; the service's next request opens
# a new one. Count the rows, fail over, count them again, and ask the
# service.

# %%
with connect(endpoint) as conn:
    before = conn.execute("SELECT count(*), sum(stock) FROM products").fetchone()
# TODO: reboot db_id with ForceFailover=True and wait until it is available again.
# BEGIN SOLUTION
rds.reboot_db_instance(DBInstanceIdentifier=db_id, ForceFailover=True)
rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=db_id, WaiterConfig={"Delay": 10})
# END SOLUTION
after_endpoint = rds.describe_db_instances(DBInstanceIdentifier=db_id)["DBInstances"][0]["Endpoint"]
with connect(after_endpoint) as conn:
    print("before:", before, "after:", conn.execute("SELECT count(*), sum(stock) FROM products").fetchone(),
          "same endpoint:", after_endpoint == endpoint)
print(call("POST", "/reservations", {"orderId": "try-08c", "items": [{"sku": "SKU-001", "quantity": 1}]})[0],
      call("DELETE", "/reservations/{orderId}", orderId="try-08c")[0])

# %%
checks.run("L08.16")

# %% [markdown]
# ## What you built
#
# A PostgreSQL instance in private subnets that only the catalog service
# reaches, with a standby in another zone, encrypted, backed up and
# protected from deletion, whose password nobody typed; a schema whose
# constraints refuse bad data whatever the code does; a replica that takes
# the reads; a service that reserves stock whole or not at all; and a
# failover that lost nothing. The concept page compares this with lab 04's
# DynamoDB table: which of your data belongs where.
#
# The whole lab, graded in one go (run it again after any change):

# %%
checks.run("08")

# %% [markdown]
# **On a live account, delete the database now** (it bills per
# instance-hour, twice for Multi-AZ): `python -m labkit cleanup --live`
# removes everything the course made, deletion protection included.
# Locally, save your state: `python -m labkit save end-of-08`.
