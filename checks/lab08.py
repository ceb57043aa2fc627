"""Lab 08 (RDS for PostgreSQL): network, the DB instance, the schema, the read replica, the catalog service, failover.

Configuration checks read the RDS, EC2, IAM and Lambda descriptions and hold them to AWS's rules (moto accepts
almost any instance). Behaviour checks reach the real PostgreSQL the local AWS runs per instance, with the
credentials the managed secret holds, and invoke the catalog function; what they write they roll back or delete.
"""
from __future__ import annotations

import json
import secrets
import time

from labkit.target import Target

from . import api
from .aws import absent, admits_only, as_list
from .core import Outcome, Status, check, failed, passed

DOCS = "labs/08-rds.md"
PORT = 5432
ENGINE = "postgres"
SUPPORTED_MAJORS = (17, 18)  # RDS's current PostgreSQL majors; older ones reach the end of standard support
MIN_ZONES = 2
DB_NAME = "catalog"
DB_SETTINGS = ("DB_HOST", "DB_PORT", "DB_READER_HOST", "DB_READER_PORT", "DB_NAME", "DB_SECRET")
LIVE_NOTE = ("graded on the local AWS, where the grader reaches the database and may invoke your function; on a live "
             "account the database is inside the VPC and the grader only reads")
INDEX_PROBE = "EXPLAIN (FORMAT JSON) SELECT sku, quantity FROM reservations WHERE order_id = 'course-grader'"


# -- names and lookups ----------------------------------------------------------------

def db_id(t: Target) -> str:
    return t.name("db")


def replica_id(t: Target) -> str:
    return t.name("db-ro")


def service_group_name(t: Target) -> str:
    return t.name("catalog-svc")


def function_name(t: Target) -> str:
    return t.name("catalog")


def role_name(t: Target) -> str:
    return t.name("catalog-fn")


def _instance(t: Target, name: str) -> dict | None:
    def look():
        found = absent(lambda: t.client("rds").describe_db_instances(DBInstanceIdentifier=name), "DBInstanceNotFound",
                       "DBInstanceNotFoundFault")
        return found["DBInstances"][0] if found else None

    return t.memo(f"l08.db.{name}", look)


def _primary(t: Target) -> dict | None:
    return _instance(t, db_id(t))


def _no_primary(t: Target) -> Outcome:
    return failed(f"There is no DB instance {db_id(t)}; create it in step 2.")


def _vpc(t: Target) -> str | None:
    vpcs = t.client("ec2").describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [t.name("data")]}])["Vpcs"]
    return vpcs[0]["VpcId"] if vpcs else None


def _security_group(t: Target, name: str) -> dict | None:
    def look():
        vpc = _vpc(t)
        filters = [{"Name": "group-name", "Values": [name]}] + ([{"Name": "vpc-id", "Values": [vpc]}] if vpc else [])
        found = t.client("ec2").describe_security_groups(Filters=filters)["SecurityGroups"]
        return found[0] if found else None

    return t.memo(f"l08.sg.{name}", look)


def _function(t: Target) -> dict | None:
    return t.memo("l08.fn", lambda: absent(
        lambda: t.client("lambda").get_function_configuration(FunctionName=function_name(t)),
        "ResourceNotFoundException"))


def _local_only(t: Target) -> Outcome | None:
    return Outcome(Status.SKIP, f"This behaviour is {LIVE_NOTE}.") if t.is_live else None


def _login(t: Target) -> dict | None:
    """The master user's {"username", "password"} from the instance's managed secret, or None."""
    db = _primary(t)
    arn = ((db or {}).get("MasterUserSecret") or {}).get("SecretArn")
    if not arn:
        return None
    found = absent(lambda: t.client("secretsmanager").get_secret_value(SecretId=arn), "ResourceNotFoundException")
    try:
        value = json.loads(found["SecretString"]) if found else None
    except (KeyError, ValueError):
        return None
    return value if isinstance(value, dict) and value.get("username") and "password" in value else None


def _connect(endpoint: dict, user: str | None, password: str | None, **extra):
    import psycopg

    return psycopg.connect(host=endpoint["Address"], port=endpoint["Port"], dbname=DB_NAME, user=user or "",
                           password=password or "", connect_timeout=5, autocommit=True, **extra)


def _where(name: str, db: dict) -> str:
    endpoint = db.get("Endpoint") or {}
    return f"{name} at {endpoint.get('Address')}:{endpoint.get('Port')}"


def _session(t: Target, name: str):
    """(connection, None) as the master user to instance ``name``, or (None, a failed Outcome)."""
    import psycopg

    db = _instance(t, name)
    if db is None:
        return None, (_no_primary(t) if name == db_id(t) else failed(f"There is no DB instance {name}; create it in "
                                                                     "step 4."))
    login = _login(t)
    if login is None:
        return None, failed(f"DB instance {db_id(t)} has no managed master secret to log in with (step 2).")
    try:
        return _connect(db["Endpoint"], login["username"], login["password"]), None
    except psycopg.OperationalError as exc:
        return None, failed(f"{_where(name, db)} refused the master user with the secret's password: "
                            f"{str(exc).strip().splitlines()[-1]}.")


def _no_schema(t: Target) -> Outcome:
    return failed(f"Database {DB_NAME} on {db_id(t)} has no tables products and reservations; create them in step 3.")


def _has_tables(conn) -> bool:
    row = conn.execute("SELECT to_regclass('products') IS NOT NULL AND to_regclass('reservations') IS NOT NULL").fetchone()
    return bool(row[0])


# -- step 1: network --------------------------------------------------------------------

@check("L08.01", "The database's security group admits TCP 5432 from the catalog service's security group only", step=1,
       points=2, hint="authorize_security_group_ingress on <prefix>-db with IpProtocol tcp, port 5432 and "
                      "UserIdGroupPairs naming <prefix>-catalog-svc; no CIDR ranges, no other ports.",
       docs=f"{DOCS}#network-placement")
def db_security_group(t: Target):
    service = _security_group(t, service_group_name(t))
    database = _security_group(t, db_id(t))
    if service is None or database is None:
        missing = [n for n, g in ((service_group_name(t), service), (db_id(t), database)) if g is None]
        return failed(f"There is no security group {' or '.join(missing)} in VPC {t.name('data')}; create it in step 1.")
    return admits_only(database, db_id(t), service, service_group_name(t), PORT, "the database")


@check("L08.02", "The DB subnet group holds lab 04's private subnets, in two zones", step=1, points=1,
       hint="create_db_subnet_group <prefix>-db with the subnets <prefix>-data-private-1 and -2 (two zones: "
            "RDS needs them for Multi-AZ).", docs=f"{DOCS}#network-placement")
def subnet_group(t: Target):
    found = absent(lambda: t.client("rds").describe_db_subnet_groups(DBSubnetGroupName=db_id(t)),
                   "DBSubnetGroupNotFoundFault")
    if not found:
        return failed(f"There is no DB subnet group {db_id(t)}; create it in step 1.")
    subnets = found["DBSubnetGroups"][0].get("Subnets", [])
    have = sorted(s["SubnetIdentifier"] for s in subnets)
    zones = sorted({(s.get("SubnetAvailabilityZone") or {}).get("Name") for s in subnets} - {None})
    private = {s for n in (1, 2) for s in _subnet_ids(t, t.name("data", f"private-{n}"))}
    other = sorted(set(have) - private)
    if other:
        return failed(f"DB subnet group {db_id(t)} holds {', '.join(other)}, not one of lab 04's private subnets "
                      f"{t.name('data', 'private-1')} and -2.")
    if len(zones) < MIN_ZONES:
        return failed(f"DB subnet group {db_id(t)} spans {len(zones)} zone ({', '.join(zones) or 'none'}); RDS needs "
                      f"subnets in at least {MIN_ZONES} zones (add {t.name('data', 'private-2')}).")
    return passed(f"DB subnet group {db_id(t)} holds the private subnets {', '.join(have)}, in {', '.join(zones)}.")


def _subnet_ids(t: Target, name: str) -> list[str]:
    found = t.client("ec2").describe_subnets(Filters=[{"Name": "tag:Name", "Values": [name]}])["Subnets"]
    return [s["SubnetId"] for s in found]


# -- step 2: the DB instance ------------------------------------------------------------

def _major(version: str | None) -> int | None:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return None


@check("L08.03", "The DB instance runs PostgreSQL at a supported major version (17 or 18)", step=2, points=1,
       hint="Engine='postgres', EngineVersion='18.1'.", docs=f"{DOCS}#the-db-instance")
def engine_version(t: Target):
    db = _primary(t)
    if db is None:
        return _no_primary(t)
    if db.get("Engine") != ENGINE:
        return failed(f"DB instance {db_id(t)} runs {db.get('Engine')}; this lab uses {ENGINE}.")
    version = db.get("EngineVersion")
    if _major(version) not in SUPPORTED_MAJORS:
        return failed(f"DB instance {db_id(t)} runs PostgreSQL {version}; use a current major version "
                      f"({' or '.join(map(str, SUPPORTED_MAJORS))}).")
    return passed(f"DB instance {db_id(t)} runs PostgreSQL {version}.")


@check("L08.04", "Multi-AZ, storage encrypted, not publicly accessible", step=2, points=2,
       hint="MultiAZ=True, StorageEncrypted=True, PubliclyAccessible=False; encryption is set at creation only.",
       docs=f"{DOCS}#the-db-instance")
def availability_and_privacy(t: Target):
    db = _primary(t)
    if db is None:
        return _no_primary(t)
    problems = []
    if not db.get("MultiAZ"):
        problems.append("it is not Multi-AZ (no standby in another zone to fail over to)")
    if not db.get("StorageEncrypted"):
        problems.append("its storage is not encrypted (set at creation: restore an encrypted copy of a snapshot)")
    if db.get("PubliclyAccessible"):
        problems.append("it is publicly accessible (it gets a public address)")
    if problems:
        return failed(f"DB instance {db_id(t)}: {'; '.join(problems)}.")
    return passed(f"DB instance {db_id(t)} is Multi-AZ, encrypted and not publicly accessible.")


@check("L08.05", "The DB instance sits in the DB subnet group, behind the database's security group only", step=2,
       points=1, hint="DBSubnetGroupName=<prefix>-db and VpcSecurityGroupIds=[the id of <prefix>-db].",
       docs=f"{DOCS}#network-placement")
def placement(t: Target):
    db = _primary(t)
    if db is None:
        return _no_primary(t)
    group = (db.get("DBSubnetGroup") or {}).get("DBSubnetGroupName")
    if group != db_id(t):
        return failed(f"DB instance {db_id(t)} is in subnet group {group or 'default'} (the default VPC's), not "
                      f"{db_id(t)}.")
    database = _security_group(t, db_id(t))
    wanted = [database["GroupId"]] if database else []
    have = sorted(g.get("VpcSecurityGroupId") for g in db.get("VpcSecurityGroups", []))
    if have != wanted:
        return failed(f"DB instance {db_id(t)} is behind security groups {', '.join(have) or 'none'}, not only "
                      f"{db_id(t)} ({', '.join(wanted) or 'missing'}).")
    return passed(f"DB instance {db_id(t)} is in subnet group {db_id(t)}, behind security group {db_id(t)}.")


@check("L08.06", "Deletion protection on, automated backups kept", step=2, points=1,
       hint="DeletionProtection=True and BackupRetentionPeriod=7 (any number of days from 1 to 35).",
       docs=f"{DOCS}#the-db-instance")
def protection_and_backups(t: Target):
    db = _primary(t)
    if db is None:
        return _no_primary(t)
    problems = []
    if not db.get("DeletionProtection"):
        problems.append("deletion protection is off: one delete call removes it")
    days = int(db.get("BackupRetentionPeriod") or 0)
    if days < 1:
        problems.append("backup retention is 0 days: no automated backups, no point-in-time recovery, no replicas")
    if problems:
        return failed(f"DB instance {db_id(t)}: {'; '.join(problems)}.")
    return passed(f"DB instance {db_id(t)} is protected from deletion and keeps backups for {days} days.")


@check("L08.07", "The master password is managed by RDS in Secrets Manager", step=2, points=2,
       hint="ManageMasterUserPassword=True instead of MasterUserPassword: RDS makes the password, keeps it in a "
            "secret and rotates it.", docs=f"{DOCS}#the-master-password")
def managed_password(t: Target):
    db = _primary(t)
    if db is None:
        return _no_primary(t)
    secret = db.get("MasterUserSecret") or {}
    if not secret.get("SecretArn"):
        return failed(f"DB instance {db_id(t)}'s master password is not managed: someone chose it and it lives "
                      "wherever they typed it; set ManageMasterUserPassword=True.")
    if secret.get("SecretStatus") not in (None, "active", "creating", "rotating"):
        return failed(f"DB instance {db_id(t)}'s master secret is {secret.get('SecretStatus')}.")
    return passed(f"DB instance {db_id(t)}'s master password is in secret {secret['SecretArn'].split(':')[-1]}, "
                  "managed by RDS.")


@check("L08.08", "The endpoint refuses a wrong password and serves the master user with the secret's password",
       step=2, points=2, hint="Connect to the Endpoint describe_db_instances reports, as the secret's username, with "
                               "its password, to database catalog (DBName).", docs=f"{DOCS}#the-master-password")
def endpoint_login(t: Target):
    skip = _local_only(t)
    if skip:
        return skip
    import psycopg

    db = _primary(t)
    if db is None:
        return _no_primary(t)
    login = _login(t)
    if login is None:
        return failed(f"DB instance {db_id(t)} has no managed master secret holding a username and password (step 2).")
    where = _where(db_id(t), db)
    try:
        _connect(db["Endpoint"], login["username"], "not-" + secrets.token_hex(8)).close()
        return failed(f"{where} let user {login['username']} in with a wrong password.")
    except psycopg.OperationalError:
        pass
    try:
        with _connect(db["Endpoint"], login["username"], login["password"]) as conn:
            user = conn.execute("SELECT current_user").fetchone()[0]
    except psycopg.OperationalError as exc:
        return failed(f"{where} refused user {login['username']} with the secret's password, or has no database "
                      f"{DB_NAME}: {str(exc).strip().splitlines()[-1]}.")
    return passed(f"{where} refuses a wrong password and serves {user} with the secret's password.")


# -- step 3: the schema ---------------------------------------------------------------------

# (statement, the error class name PostgreSQL must answer with, what it proves)
CONSTRAINT_PROBES = (
    ("UPDATE products SET stock = -1 WHERE sku = %(sku)s", "CheckViolation", "stock can be set below 0"),
    ("UPDATE products SET price_cents = 0 WHERE sku = %(sku)s", "CheckViolation", "a price of 0 is accepted"),
    ("INSERT INTO reservations (order_id, sku, quantity, price_cents) VALUES ('course-grader', 'NO-SUCH-SKU', 1, 1)",
     "ForeignKeyViolation", "a reservation may name a product that does not exist"),
    ("INSERT INTO reservations (order_id, sku, quantity, price_cents) VALUES ('course-grader', %(sku)s, 0, 1)",
     "CheckViolation", "a reservation of 0 units is accepted"),
    ("INSERT INTO products (sku, price_cents, stock) VALUES (%(sku)s, 1, 1)", "UniqueViolation",
     "two products may share a sku"),
)


@check("L08.09", "The schema's constraints refuse bad rows: stock below 0, a price of 0, an unknown product, "
                 "an empty reservation", step=3, points=3,
       hint="products: sku PRIMARY KEY, CHECK (price_cents > 0), CHECK (stock >= 0); reservations: sku REFERENCES "
            "products (sku), CHECK (quantity > 0); then load lab 04's stock.", docs=f"{DOCS}#schema-and-constraints")
def constraints(t: Target):
    """Each probe runs in a transaction that is rolled back: nothing stays (an identity value may be used up)."""
    skip = _local_only(t)
    if skip:
        return skip
    import psycopg

    conn, problem = _session(t, db_id(t))
    if problem:
        return problem
    with conn:
        if not _has_tables(conn):
            return _no_schema(t)
        row = conn.execute("SELECT sku FROM products ORDER BY sku LIMIT 1").fetchone()
        if row is None:
            return failed(f"Table products on {db_id(t)} is empty; load lab 04's stock levels (step 3).")
        accepted = []
        for statement, error, meaning in CONSTRAINT_PROBES:
            try:
                with conn.transaction(force_rollback=True):
                    conn.execute(statement, {"sku": row[0]})
                accepted.append(meaning)
            except psycopg.Error as exc:
                if type(exc).__name__ != error:
                    accepted.append(f"{meaning} (refused with {type(exc).__name__}, not a constraint)")
    if accepted:
        return failed(f"Database {DB_NAME} on {db_id(t)}: {'; '.join(accepted)}: add the constraint to the table.")
    return passed(f"Database {DB_NAME} on {db_id(t)} refuses negative stock, a zero price, unknown products, empty "
                  "reservations and duplicate skus (the check rolled its probes back).")


def _index_scans(plan: dict) -> list[dict]:
    found = [plan] if plan.get("Node Type") in ("Index Scan", "Index Only Scan", "Bitmap Index Scan") else []
    for child in plan.get("Plans", []):
        found += _index_scans(child)
    return found


@check("L08.10", "EXPLAIN shows an index serving the service's lookup of reservations by order", step=3, points=2,
       hint="CREATE INDEX reservations_order_id ON reservations (order_id).", docs=f"{DOCS}#indexes-and-explain")
def order_index(t: Target):
    """With sequential scans off for this session only, so the plan is the one a large table gets."""
    skip = _local_only(t)
    if skip:
        return skip
    conn, problem = _session(t, db_id(t))
    if problem:
        return problem
    with conn:
        if not _has_tables(conn):
            return _no_schema(t)
        conn.execute("SET enable_seqscan = off")
        plan = conn.execute(INDEX_PROBE).fetchone()[0]
    plan = plan[0]["Plan"] if isinstance(plan, list) else json.loads(plan)[0]["Plan"]
    serving = [n for n in _index_scans(plan) if "order_id" in str(n.get("Index Cond", ""))]
    if not serving:
        shown = plan.get("Node Type")
        return failed(f"EXPLAIN of the lookup by order_id on {db_id(t)} shows a {shown} with no index condition on "
                      "order_id: every lookup reads the whole table; index reservations (order_id).")
    return passed(f"EXPLAIN of the lookup by order_id on {db_id(t)} shows a {serving[0]['Node Type']} using index "
                  f"{serving[0].get('Index Name')}.")


# -- step 4: the read replica ------------------------------------------------------------------

@check("L08.11", "The read replica <prefix>-db-ro replicates <prefix>-db, encrypted, private, behind the database's "
                 "security group", step=4, points=2,
       hint="create_db_instance_read_replica(DBInstanceIdentifier=<prefix>-db-ro, SourceDBInstanceIdentifier="
            "<prefix>-db, PubliclyAccessible=False, VpcSecurityGroupIds=[the id of <prefix>-db]).",
       docs=f"{DOCS}#read-replicas")
def replica_configuration(t: Target):
    replica = _instance(t, replica_id(t))
    if replica is None:
        return failed(f"There is no DB instance {replica_id(t)}; create the read replica in step 4.")
    source = replica.get("ReadReplicaSourceDBInstanceIdentifier")
    if source is None or source.split(":")[-1] != db_id(t):
        return failed(f"DB instance {replica_id(t)} is not a read replica of {db_id(t)} "
                      f"({'it replicates ' + source if source else 'it is a primary of its own'}).")
    problems = []
    if not replica.get("StorageEncrypted"):
        problems.append("its storage is not encrypted")
    if replica.get("PubliclyAccessible"):
        problems.append("it is publicly accessible")
    database = _security_group(t, db_id(t))
    have = sorted(g.get("VpcSecurityGroupId") for g in replica.get("VpcSecurityGroups", []))
    if not database or have != [database["GroupId"]]:
        problems.append(f"it is behind {', '.join(have) or 'no security group'}, not only {db_id(t)}")
    if problems:
        return failed(f"Read replica {replica_id(t)}: {'; '.join(problems)}.")
    return passed(f"DB instance {replica_id(t)} is an encrypted, private read replica of {db_id(t)}, behind "
                  f"{db_id(t)}.")


@check("L08.12", "The replica serves the primary's rows and refuses writes", step=4, points=3,
       hint="A read replica of <prefix>-db (not a copy made once): it replays the primary's writes and is "
            "read-only.", docs=f"{DOCS}#read-replicas")
def replica_behaviour(t: Target):
    """Compares products on both; the refused write runs in a transaction that is rolled back either way."""
    skip = _local_only(t)
    if skip:
        return skip
    import psycopg

    primary, problem = _session(t, db_id(t))
    if problem:
        return problem
    with primary:
        if not _has_tables(primary):
            return _no_schema(t)
        wanted = primary.execute("SELECT sku, price_cents, stock FROM products ORDER BY sku").fetchall()
        position = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
    replica, problem = _session(t, replica_id(t))
    if problem:
        return problem
    with replica:
        in_recovery, replayed = replica.execute("SELECT pg_is_in_recovery(), "
                                                "coalesce(pg_last_wal_replay_lsn() >= %s::pg_lsn, false)",
                                                (position,)).fetchone()
        if not in_recovery:
            return failed(f"DB instance {replica_id(t)} is not replaying {db_id(t)}'s log: it is a primary of its "
                          "own, and takes writes.")
        for _ in range(100):  # replay is continuous; give it up to a second to reach the primary's position
            if replayed:
                break
            time.sleep(0.01)
            replayed = replica.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (position,)).fetchone()[0]
        have = []
        if replica.execute("SELECT to_regclass('products') IS NOT NULL").fetchone()[0]:
            have = replica.execute("SELECT sku, price_cents, stock FROM products ORDER BY sku").fetchall()
        try:
            with replica.transaction(force_rollback=True):
                replica.execute("UPDATE products SET stock = stock WHERE sku = 'course-grader'")
            return failed(f"DB instance {replica_id(t)} accepted a write.")
        except psycopg.errors.ReadOnlySqlTransaction:
            pass
    if have != wanted:
        return failed(f"DB instance {replica_id(t)} holds {len(have)} products, {db_id(t)} {len(wanted)} "
                      "(or they differ): the replica is behind or not streaming.")
    return passed(f"DB instance {replica_id(t)} serves {db_id(t)}'s {len(wanted)} products and refuses writes.")


# -- step 5: the catalog service ------------------------------------------------------------------

def _allows_secret(t: Target, secret_arn: str) -> bool:
    iam = t.client("iam")
    for name in iam.list_role_policies(RoleName=role_name(t)).get("PolicyNames", []):
        document = iam.get_role_policy(RoleName=role_name(t), PolicyName=name)["PolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        for statement in as_list(document.get("Statement")):
            if (statement.get("Effect") == "Allow" and "secretsmanager:GetSecretValue" in as_list(statement.get("Action"))
                    and secret_arn in as_list(statement.get("Resource"))):
                return True
    return False


@check("L08.13", "The catalog function finds the primary, the replica and the secret in its settings, and no password",
       step=5, points=3,
       hint="Environment DB_HOST/DB_PORT (the primary's endpoint), DB_READER_HOST/DB_READER_PORT (the replica's), "
            "DB_NAME and DB_SECRET (the master secret's ARN); VpcConfig with <prefix>-catalog-svc; an inline policy "
            "allowing secretsmanager:GetSecretValue on that ARN.", docs=f"{DOCS}#the-catalog-service")
def function_settings(t: Target):
    fn = _function(t)
    if fn is None:
        return failed(f"There is no function {function_name(t)}; create it in step 5.")
    db, replica = _primary(t), _instance(t, replica_id(t))
    if db is None:
        return _no_primary(t)
    env = (fn.get("Environment") or {}).get("Variables") or {}
    problems = [f"{name} is not set" for name in DB_SETTINGS if name not in env]
    secret = (db.get("MasterUserSecret") or {}).get("SecretArn")
    if not problems:
        primary_at = (db.get("Endpoint") or {}).get("Address"), str((db.get("Endpoint") or {}).get("Port"))
        if (env["DB_HOST"], env["DB_PORT"]) != primary_at:
            problems.append(f"DB_HOST:DB_PORT is {env['DB_HOST']}:{env['DB_PORT']}, not {db_id(t)}'s endpoint "
                            f"{primary_at[0]}:{primary_at[1]}")
        reader_at = ((replica or {}).get("Endpoint") or {}).get("Address"), str(
            ((replica or {}).get("Endpoint") or {}).get("Port"))
        if (env["DB_READER_HOST"], env["DB_READER_PORT"]) != reader_at:
            problems.append(f"DB_READER_HOST:DB_READER_PORT is {env['DB_READER_HOST']}:{env['DB_READER_PORT']}, not "
                            f"{replica_id(t)}'s endpoint {reader_at[0]}:{reader_at[1]}")
        if env["DB_SECRET"] != secret:
            problems.append(f"DB_SECRET is {env['DB_SECRET']!r}, not the ARN of {db_id(t)}'s master secret")
    login = _login(t) if t.is_local else None  # the live grader may not read secret values
    if login and login.get("password") and any(login["password"] in str(v) for v in env.values()):
        problems.append("its environment holds the database password: anyone who may read the function's "
                        "configuration has it, and a rotation breaks the service")
    service = _security_group(t, service_group_name(t))
    if service is None or service["GroupId"] not in (fn.get("VpcConfig") or {}).get("SecurityGroupIds", []):
        problems.append(f"it does not run in security group {service_group_name(t)}, the one the database admits")
    if secret and not _allows_secret(t, secret):
        problems.append(f"role {role_name(t)} may not read {db_id(t)}'s master secret "
                        "(secretsmanager:GetSecretValue on its ARN)")
    if problems:
        return failed(f"Function {function_name(t)}: {'; '.join(problems)}.")
    return passed(f"Function {function_name(t)} finds {db_id(t)}, {replica_id(t)} and the master secret in its "
                  f"settings, runs in {service_group_name(t)} and may read the secret.")


def _stock(conn, sku: str) -> int | None:
    row = conn.execute("SELECT stock FROM products WHERE sku = %s", (sku,)).fetchone()
    return row[0] if row else None


def _tidy(conn, order_id: str, restore: dict[str, int]) -> None:
    """Remove what a check's order left behind, and put the stock levels back as they were."""
    with conn.transaction():
        conn.execute("DELETE FROM reservations WHERE order_id = %s", (order_id,))
        for sku, stock in restore.items():
            conn.execute("UPDATE products SET stock = %s WHERE sku = %s", (stock, sku))


@check("L08.14", "A reservation through the service commits, and the service serves it and the catalog", step=5,
       points=3, hint="POST /reservations takes the stock and inserts the reservation on the primary, and commits; "
                      "GET /reservations/{orderId} reads it back from the primary; GET /products/{sku} reads the "
                      "replica.", docs=f"{DOCS}#the-catalog-service",
       acts="calls your API: invokes your function to create one reservation of one unit, read it and a product back, "
            "and deletes the reservation again, stock restored")
def reservation_commits(t: Target):
    skip = _local_only(t)
    if skip:
        return skip
    if _function(t) is None:
        return failed(f"There is no function {function_name(t)}; create it in step 5.")
    conn, problem = _session(t, db_id(t))
    if problem:
        return problem
    name, order_id = function_name(t), f"course-grader-{secrets.token_hex(4)}"
    with conn:
        if not _has_tables(conn):
            return _no_schema(t)
        row = conn.execute("SELECT sku, stock FROM products WHERE stock > 0 ORDER BY sku LIMIT 1").fetchone()
        if row is None:
            return failed(f"Table products on {db_id(t)} has nothing in stock; load lab 04's stock levels (step 3).")
        sku, stock = row
        try:
            status, body = api.invoke(t, name, "POST", "/reservations", {"orderId": order_id,
                                                                         "items": [{"sku": sku, "quantity": 1}]})
            if status != 201:
                return failed(f"Function {name} answered POST /reservations (1 x {sku}) with {status} "
                              f"{json.dumps(body)[:160]}, not 201.")
            kept = conn.execute("SELECT count(*) FROM reservations WHERE order_id = %s", (order_id,)).fetchone()[0]
            if kept != 1 or _stock(conn, sku) != stock - 1:
                return failed(f"After function {name} answered 201, {db_id(t)} shows {kept} reservation for the order "
                              f"and stock {_stock(conn, sku)} of {sku} (was {stock}): the write was not committed.")
            status, body = api.invoke(t, name, "GET", "/reservations/{orderId}", orderId=order_id)
            if status != 200 or not isinstance(body, dict) or [i.get("sku") for i in body.get("items", [])] != [sku]:
                return failed(f"Function {name} answered GET /reservations/{order_id} with {status} "
                              f"{json.dumps(body)[:160]}, not 200 and the reservation of {sku}.")
            status, body = api.invoke(t, name, "GET", "/products/{sku}", sku=sku)
            if status != 200 or not isinstance(body, dict) or body.get("sku") != sku:
                return failed(f"Function {name} answered GET /products/{sku} with {status} {json.dumps(body)[:160]}.")
            api.invoke(t, name, "DELETE", "/reservations/{orderId}", orderId=order_id)
        finally:
            _tidy(conn, order_id, {sku: stock})
    return passed(f"Function {name} committed a reservation of {sku} on {db_id(t)} and served it and the product "
                  "(the check deleted it and restored the stock).")


@check("L08.15", "A reservation that cannot be had whole is refused whole: one transaction", step=5, points=3,
       hint="Take every item's stock and insert every reservation inside one transaction (with conn.transaction()); "
            "when an item is short, roll back and answer 409.", docs=f"{DOCS}#transactions",
       acts="calls your API: invokes your function with one reservation whose second item exceeds the stock; if it "
            "creates anything, the check deletes it and restores the stock")
def reservation_is_atomic(t: Target):
    skip = _local_only(t)
    if skip:
        return skip
    if _function(t) is None:
        return failed(f"There is no function {function_name(t)}; create it in step 5.")
    conn, problem = _session(t, db_id(t))
    if problem:
        return problem
    name, order_id = function_name(t), f"course-grader-{secrets.token_hex(4)}"
    with conn:
        if not _has_tables(conn):
            return _no_schema(t)
        rows = conn.execute("SELECT sku, stock FROM products WHERE stock > 0 ORDER BY sku LIMIT 2").fetchall()
        if len(rows) < 2:
            return failed(f"Table products on {db_id(t)} has fewer than two products in stock; load lab 04's stock "
                          "levels (step 3).")
        (first, first_stock), (second, second_stock) = rows
        try:
            status, body = api.invoke(t, name, "POST", "/reservations", {"orderId": order_id, "items": [
                {"sku": first, "quantity": 1}, {"sku": second, "quantity": second_stock + 1}]})
            kept = conn.execute("SELECT count(*) FROM reservations WHERE order_id = %s", (order_id,)).fetchone()[0]
            now = _stock(conn, first)
        finally:
            _tidy(conn, order_id, {first: first_stock, second: second_stock})
    if kept or now != first_stock:
        return failed(f"Function {name} asked for 1 x {first} and {second_stock + 1} x {second} (in stock: "
                      f"{second_stock}) and kept {kept} reservation, {first}'s stock going from {first_stock} to {now}: "
                      "run all the items in one transaction and roll it back.")
    if status != 409:
        return failed(f"Function {name} answered {status} {json.dumps(body)[:120]} to a reservation beyond the stock, "
                      "not 409.")
    return passed(f"Function {name} refused 1 x {first} with {second_stock + 1} x {second} whole (409), nothing kept.")


# -- step 6: failover -------------------------------------------------------------------------------

@check("L08.16", "A Multi-AZ failover keeps the data, the endpoint and the service", step=6, points=3,
       hint="MultiAZ=True on <prefix>-db; the function connects to the endpoint's name, and opens a new connection "
            "when its kept one breaks.", docs=f"{DOCS}#multi-az-and-failover",
       acts="calls your API: fails the database over to its standby (reboot with ForceFailover) and invokes your "
            "function twice with GET /reservations/{orderId} for an order that has none; stores nothing")
def failover_keeps_data(t: Target):
    skip = _local_only(t)
    if skip:
        return skip
    db = _primary(t)
    if db is None:
        return _no_primary(t)
    if not db.get("MultiAZ"):
        return failed(f"DB instance {db_id(t)} is not Multi-AZ: it has no standby to fail over to (step 2).")
    if _function(t) is None:
        return failed(f"There is no function {function_name(t)}; create it in step 5.")
    conn, problem = _session(t, db_id(t))
    if problem:
        return problem
    with conn:
        if not _has_tables(conn):
            return _no_schema(t)
        before = conn.execute("SELECT (SELECT count(*) FROM products), (SELECT coalesce(sum(stock), 0) FROM products), "
                              "(SELECT count(*) FROM reservations)").fetchone()
    name, probe = function_name(t), f"course-grader-{secrets.token_hex(4)}"
    api.invoke(t, name, "GET", "/reservations/{orderId}", orderId=probe)  # it holds a connection when the primary fails
    t.behaviour_client("rds", "RebootDBInstance").reboot_db_instance(DBInstanceIdentifier=db_id(t), ForceFailover=True)
    after_db = t.client("rds").describe_db_instances(DBInstanceIdentifier=db_id(t))["DBInstances"][0]
    if after_db.get("Endpoint") != db.get("Endpoint"):
        return failed(f"After the failover {db_id(t)}'s endpoint moved from {db.get('Endpoint')} to "
                      f"{after_db.get('Endpoint')}.")
    conn, problem = _session(t, db_id(t))
    if problem:
        return problem
    with conn:
        after = conn.execute("SELECT (SELECT count(*) FROM products), (SELECT coalesce(sum(stock), 0) FROM products), "
                             "(SELECT count(*) FROM reservations)").fetchone()
    if after != before:
        return failed(f"After the failover {db_id(t)} holds {after[0]} products, {after[1]} units and {after[2]} "
                      f"reservations, not {before[0]}, {before[1]} and {before[2]}.")
    status, body = api.invoke(t, name, "GET", "/reservations/{orderId}", orderId=probe)
    if status != 404:
        return failed(f"After the failover, function {name} answered GET /reservations/{probe} with {status} "
                      f"{json.dumps(body)[:120]}: expected 404 from the primary; open a new connection when the kept one breaks.")
    return passed(f"DB instance {db_id(t)} failed over at the same endpoint with its {after[0]} products and "
                  f"{after[2]} reservations, and function {name} kept answering.")
