"""RDS against a real local AWS: each PostgreSQL DB instance is a real PostgreSQL the local AWS runs.

Every test talks to the engine the way a learner's code does: psycopg to the endpoint
describe_db_instances reports, with the credentials the secret or the request holds.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import boto3
import pytest

psycopg = pytest.importorskip("psycopg")

from labkit.localaws import engines  # noqa: E402

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the engine platform is tested on Linux")


def _clients(local):
    kw = dict(endpoint_url=local.endpoint, region_name="us-east-1", aws_access_key_id="testing",
              aws_secret_access_key="testing")
    return boto3.client("rds", **kw), boto3.client("secretsmanager", **kw)


def _create(rds, name="shop", **extra):
    args = dict(DBInstanceIdentifier=name, Engine="postgres", DBInstanceClass="db.t3.micro",
                MasterUsername="shopadmin", AllocatedStorage=20, DBName="shop")
    args.update(extra)
    rds.create_db_instance(**args)
    return rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]


def _connect(db, user, password, dbname="shop"):
    endpoint = db["Endpoint"]
    return psycopg.connect(host=endpoint["Address"], port=endpoint["Port"], user=user, password=password,
                           dbname=dbname, autocommit=True, connect_timeout=10)


def _secret(sm, db) -> dict:
    return json.loads(sm.get_secret_value(SecretId=db["MasterUserSecret"]["SecretArn"])["SecretString"])


def _engine_pids(parent: int | None = None) -> set[int]:
    """PostgreSQL postmasters the running local AWS (or ``parent``) started."""
    if parent is None:
        from labkit import localaws

        record = localaws.running()
        parent = record["pid"] if record else -1
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"/postgres") and _ppid(int(entry.name)) == parent:
                found.add(int(entry.name))
    return found


def _until(predicate, seconds=30.0):
    deadline = time.monotonic() + seconds  # a bound on waiting, not a timed assert
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _count(conn, table="t") -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_managed_password_is_real_and_random_in_the_secret_and_the_engine_refuses_others(local):
    rds, sm = _clients(local)
    db = _create(rds, ManageMasterUserPassword=True)
    assert db["Endpoint"]["Address"] == "127.0.0.1"
    creds = _secret(sm, db)
    assert creds["username"] == "shopadmin"
    assert creds["password"] != "P@55w0rd!" and len(creds["password"]) >= 16  # not moto's fixed fake one
    with _connect(db, "shopadmin", creds["password"]) as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == ("shopadmin", "shop")
        assert not conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _connect(db, "shopadmin", "not-the-password")
    with pytest.raises(psycopg.OperationalError):
        _connect(db, "shopadmin", "")

    # a rotation puts a new password in the secret and into the engine; the old one stops working
    rds.modify_db_instance(DBInstanceIdentifier="shop", RotateMasterUserPassword=True, ApplyImmediately=True)
    rotated = _secret(sm, db)
    assert rotated["password"] != creds["password"]
    _connect(db, "shopadmin", rotated["password"]).close()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _connect(db, "shopadmin", creds["password"])


def test_an_engine_cannot_read_the_install_secret_or_the_journal(local):
    rds, _ = _clients(local)
    _create(rds, MasterUserPassword="Master-pass-1234")
    cluster = local_cluster(local, "shop")
    with cluster.admin() as conn:  # the engine's own superuser: as much as SQL can reach
        for path in (local.home / "secret", local.home / "journal.ndjson"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT pg_read_file(%s)", (str(path),))
        assert conn.execute("SELECT setting FROM pg_settings WHERE name = 'listen_addresses'").fetchone()[0] == "127.0.0.1"
    if os.geteuid() == 0:  # run as an unprivileged user, which cannot even enter the state folder
        pid = next(iter(_engine_pids()))
        uid = int(next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                       if line.startswith("Uid:")).split()[1])
        assert uid != 0
        for path in (local.home / "secret", local.home / "journal.ndjson"):  # nor can anything it runs
            log = local.home / "engines" / "probe.log"
            log.unlink(missing_ok=True)
            probe = engines.Process("probe", ["/bin/cat", str(path)], data_dir=None, log_file=log)
            probe.spawn()
            assert probe.popen.wait(10) != 0
            assert "Permission denied" in log.read_text()


def local_cluster(local, name):
    """The running cluster of instance ``name`` as the server keeps it (its meta, its port)."""
    from labkit.localaws import postgres
    from labkit.localaws.extensions.rds import Instance

    folder = next((local.home / "engines" / "rds").glob(f"*.{name}"))
    instance = Instance(folder)
    return postgres.Cluster(folder / "primary", instance.meta["port"], instance.meta["admin"])


def test_a_read_replica_streams_the_primary_rows_and_refuses_writes(local):
    rds, _ = _clients(local)
    db = _create(rds, MasterUserPassword="Master-pass-1234")
    with _connect(db, "shopadmin", "Master-pass-1234") as conn:
        conn.execute("CREATE TABLE t (x int PRIMARY KEY)")
        conn.execute("INSERT INTO t SELECT generate_series(1, 10)")
    rds.create_db_instance_read_replica(DBInstanceIdentifier="shop-ro", SourceDBInstanceIdentifier="shop")
    replica = rds.describe_db_instances(DBInstanceIdentifier="shop-ro")["DBInstances"][0]
    assert replica["Endpoint"]["Port"] != db["Endpoint"]["Port"]
    with _connect(replica, "shopadmin", "Master-pass-1234") as ro, _connect(db, "shopadmin", "Master-pass-1234") as rw:
        assert _count(ro) == 10
        rw.execute("INSERT INTO t VALUES (11)")
        assert _until(lambda: _count(ro) == 11)  # streamed, not copied once
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            ro.execute("INSERT INTO t VALUES (12)")
    rds.promote_read_replica(DBInstanceIdentifier="shop-ro")
    with _connect(replica, "shopadmin", "Master-pass-1234") as promoted:
        promoted.execute("INSERT INTO t VALUES (12)")
        assert _count(promoted) == 12


# The timeline is the first eight hex digits of the current WAL file's name.
TIMELINE = "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int"


def test_multi_az_failover_promotes_the_standby_and_keeps_the_data_at_the_same_endpoint(local):
    rds, _ = _clients(local)
    db = _create(rds, MasterUserPassword="Master-pass-1234", MultiAZ=True)
    with _connect(db, "shopadmin", "Master-pass-1234") as conn:
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t VALUES (1), (2)")
        before = conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()[0]
        timeline = conn.execute(TIMELINE).fetchone()[0]
    rds.reboot_db_instance(DBInstanceIdentifier="shop", ForceFailover=True)
    after = rds.describe_db_instances(DBInstanceIdentifier="shop")["DBInstances"][0]
    assert after["Endpoint"] == db["Endpoint"]
    with _connect(after, "shopadmin", "Master-pass-1234") as conn:
        assert _count(conn) == 2
        conn.execute("INSERT INTO t VALUES (3)")  # the promoted standby takes writes
        assert conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()[0] == before
        assert conn.execute(TIMELINE).fetchone()[0] > timeline  # a promoted standby begins a new timeline


def test_deletion_protection_keeps_the_engine_and_deletion_removes_it(local):
    rds, _ = _clients(local)
    _create(rds, MasterUserPassword="Master-pass-1234", DeletionProtection=True)
    folder = next((local.home / "engines" / "rds").glob("*.shop"))
    with pytest.raises(rds.exceptions.ClientError, match="deletion protection"):
        rds.delete_db_instance(DBInstanceIdentifier="shop", SkipFinalSnapshot=True)
    assert folder.is_dir() and _engine_pids()
    rds.modify_db_instance(DBInstanceIdentifier="shop", DeletionProtection=False, ApplyImmediately=True)
    rds.delete_db_instance(DBInstanceIdentifier="shop", SkipFinalSnapshot=True)
    assert not folder.exists()
    assert _until(lambda: not _engine_pids())


def test_a_db_snapshot_restores_the_data(local):
    rds, _ = _clients(local)
    db = _create(rds, MasterUserPassword="Master-pass-1234")
    with _connect(db, "shopadmin", "Master-pass-1234") as conn:
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t VALUES (1), (2)")
        rds.create_db_snapshot(DBInstanceIdentifier="shop", DBSnapshotIdentifier="shop-snap")
        conn.execute("INSERT INTO t VALUES (3)")
    rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier="shop-restored", DBSnapshotIdentifier="shop-snap")
    restored = rds.describe_db_instances(DBInstanceIdentifier="shop-restored")["DBInstances"][0]
    with _connect(restored, "shopadmin", "Master-pass-1234") as conn:
        assert _count(conn) == 2  # the data as the snapshot took it
        conn.execute("INSERT INTO t VALUES (4)")  # a primary of its own


def test_engine_data_survives_down_up_travels_with_snapshots_and_start_states_and_reset_wipes_it(local):
    from labkit import localaws

    rds, _ = _clients(local)
    db = _create(rds, MasterUserPassword="Master-pass-1234")
    with _connect(db, "shopadmin", "Master-pass-1234") as conn:
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t VALUES (1)")
    localaws.save("one-row")
    localaws.save_data("starts/08.data")
    journal = localaws.read_journal()
    with _connect(db, "shopadmin", "Master-pass-1234") as conn:
        conn.execute("INSERT INTO t VALUES (2)")

    before = _engine_pids()
    assert before
    localaws.down()
    assert _until(lambda: not any(_alive(pid) for pid in before))  # no engine outlives `down`, orphaned or not
    localaws.up()
    db = rds.describe_db_instances(DBInstanceIdentifier="shop")["DBInstances"][0]
    with _connect(db, "shopadmin", "Master-pass-1234") as conn:
        assert _count(conn) == 2  # up restarts it on the data it had

    localaws.restore("one-row")
    with _connect(db, "shopadmin", "Master-pass-1234") as conn:
        assert _count(conn) == 1
        conn.execute("INSERT INTO t VALUES (2)")
    localaws.restore("before-restore")  # what the restore replaced was kept, its rows too
    with _connect(db, "shopadmin", "Master-pass-1234") as conn:
        assert _count(conn) == 2

    localaws.replay(journal, data="starts/08.data")  # how `labkit start` brings back a kept start state
    with _connect(db, "shopadmin", "Master-pass-1234") as conn:
        assert _count(conn) == 1

    localaws.reset()
    assert _until(lambda: not _engine_pids())
    assert not (local.home / "engines" / "rds").exists() or not any((local.home / "engines" / "rds").iterdir())
    localaws.replay(journal)  # the same state without saved data: the instance, empty
    after = rds.describe_db_instances(DBInstanceIdentifier="shop")["DBInstances"][0]
    with _connect(after, "shopadmin", "Master-pass-1234") as conn:
        assert conn.execute("SELECT to_regclass('t')").fetchone()[0] is None


def test_no_engine_outlives_a_killed_local_aws(tmp_path, free_port, monkeypatch):
    from labkit import localaws

    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LABS_AWS_PORT", str(free_port))
    monkeypatch.setenv("LABKIT_EXIT_WITH_PID", str(os.getpid()))
    record = localaws.up()
    try:
        kw = dict(endpoint_url=record["endpoint"], region_name="us-east-1", aws_access_key_id="testing",
                  aws_secret_access_key="testing")
        rds = boto3.client("rds", **kw)
        rds.create_db_instance(DBInstanceIdentifier="doomed", Engine="postgres", DBInstanceClass="db.t3.micro",
                               MasterUsername="u", MasterUserPassword="Master-pass-1234", MultiAZ=True)
        ours = _engine_pids(record["pid"])
        assert len(ours) == 2  # the primary's postmaster and the standby's
    finally:
        os.kill(record["pid"], signal.SIGKILL)
    assert _until(lambda: not any(_alive(pid) for pid in ours))
    try:
        os.waitpid(record["pid"], 0)  # the killed server was this process's child
    except ChildProcessError:
        pass


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_engine_binaries_name_what_to_install_when_there_are_none(monkeypatch):
    monkeypatch.setattr(engines, "_embedded", lambda kind: None)
    monkeypatch.setattr(engines, "_SYSTEM", {"postgres": ("postgres", ["/nonexistent/*"])})
    monkeypatch.setattr(engines.shutil, "which", lambda name: None)
    with pytest.raises(engines.EngineError, match="system package `postgresql`"):
        engines.binaries("postgres")
    with pytest.raises(engines.EngineError, match="no engine called"):
        engines.binaries("oracle")

