"""PostgreSQL as the local AWS runs it for RDS: initdb, start, first query, replica ready, replica lag.

Part one times the engine platform directly (``labkit.localaws.postgres``):
initdb of a new cluster, a start, the first query, a streaming replica from
a base backup, and how long a committed row takes to be readable on the
replica, beside the floor measured in the same run: a query on an open
connection. Part two times the local AWS around it: the first ``labkit up``,
CreateDBInstance (Multi-AZ: primary and standby), CreateDBInstanceReadReplica,
a failover, and a later ``labkit up`` that restarts the engines on their data.
Usage: ``python benchmarks/engines.py [--runs N]``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from isolated import use_own_local_aws  # benchmarks/ is the script's folder

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:9.3f} ms"


def _timed(action):
    begun = time.perf_counter()
    value = action()
    return time.perf_counter() - begun, value


def direct(runs: int) -> None:
    import psycopg

    from labkit.localaws import engines, postgres

    root = Path(tempfile.mkdtemp(prefix="labs-engines-"))
    root.chmod(0o700)
    data = engines.data_root(root)
    primary = postgres.Cluster(data / "a", engines.free_port(), postgres.new_password())
    replica = postgres.Cluster(data / "b", engines.free_port(), primary.admin_password)
    rows = []
    try:
        rows.append(("initdb (once per instance)", _timed(primary.init)[0]))
        rows.append(("start (to accepting connections)", _timed(primary.start)[0]))
        primary.set_master("bench", "Bench-pass-1234", "bench")
        kw = dict(host="127.0.0.1", user="bench", password="Bench-pass-1234", dbname="bench", autocommit=True)
        first, conn = _timed(lambda: psycopg.connect(port=primary.port, **kw))
        begun = time.perf_counter()
        conn.execute("SELECT 1").fetchone()
        rows.append(("first query (connect + SELECT 1)", first + time.perf_counter() - begun))
        floor = statistics.median(_timed(lambda: conn.execute("SELECT 1").fetchone())[0] for _ in range(runs))
        rows.append(("floor: a query on an open connection", floor))
        conn.execute("CREATE TABLE t (x int)")
        rows.append(("streaming replica ready (base backup + start)",
                     _timed(lambda: (replica.base_backup(primary), replica.start()))[0]))
        ro = psycopg.connect(port=replica.port, **kw)
        lags = []
        for n in range(runs):
            begun = time.perf_counter()
            conn.execute("INSERT INTO t VALUES (%s)", (n,))
            while ro.execute("SELECT count(*) FROM t WHERE x = %s", (n,)).fetchone()[0] == 0:
                pass
            lags.append(time.perf_counter() - begun)
        rows.append(("replica lag: commit to readable on the replica (median)", statistics.median(lags)))
        ro.close()
        conn.close()
        rows.append(("stop (fast shutdown)", _timed(primary.stop)[0]))
    finally:
        replica.remove()
        primary.remove()
    print("PostgreSQL directly (labkit.localaws.postgres)")
    for label, seconds in rows:
        print(f"  {label:<58}{_ms(seconds)}")


def through_the_local_aws() -> None:
    import boto3

    from labkit import localaws

    use_own_local_aws("engines")
    rows = []
    rows.append(("first `labkit up` (empty state)", _timed(lambda: localaws.up(quiet=True))[0]))
    try:
        record = localaws.running()
        rds = boto3.client("rds", endpoint_url=record["endpoint"], region_name="us-east-1",
                           aws_access_key_id="bench", aws_secret_access_key="bench")
        rows.append(("CreateDBInstance, Multi-AZ (initdb, start, standby)", _timed(lambda: rds.create_db_instance(
            DBInstanceIdentifier="bench", Engine="postgres", DBInstanceClass="db.t3.micro", MasterUsername="bench",
            ManageMasterUserPassword=True, MultiAZ=True, AllocatedStorage=20))[0]))
        rows.append(("a second CreateDBInstance (copies the initdb, no standby)", _timed(lambda: rds.create_db_instance(
            DBInstanceIdentifier="bench-2", Engine="postgres", DBInstanceClass="db.t3.micro", MasterUsername="bench",
            MasterUserPassword="Bench-pass-1234", AllocatedStorage=20))[0]))
        rows.append(("CreateDBInstanceReadReplica", _timed(lambda: rds.create_db_instance_read_replica(
            DBInstanceIdentifier="bench-ro", SourceDBInstanceIdentifier="bench"))[0]))
        rows.append(("RebootDBInstance ForceFailover (promote, new standby)", _timed(lambda: rds.reboot_db_instance(
            DBInstanceIdentifier="bench", ForceFailover=True))[0]))
        rows.append(("`labkit down` (four engines stop)", _timed(localaws.down)[0]))
        rows.append(("later `labkit up` (replay, four engines restart on their data)",
                     _timed(lambda: localaws.up(quiet=True))[0]))
    finally:
        localaws.down()
    print("Through the local AWS (boto3 -> RDS -> PostgreSQL)")
    for label, seconds in rows:
        print(f"  {label:<58}{_ms(seconds)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    direct(args.runs)
    through_the_local_aws()
    return 0


if __name__ == "__main__":
    sys.exit(main())
