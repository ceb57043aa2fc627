"""Lab 04's access patterns on the local AWS: items read, items returned and latency, by key and by Scan.

Builds lab 04's end state in its own local AWS (a temporary state folder and a
free port), then times each access pattern through the solution's query
functions and through the Scan + filter a table without the right keys
forces. Usage: ``python benchmarks/reads.py [--runs N]``.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import statistics
import sys
import time

from isolated import use_own_local_aws  # benchmarks/ is the script's folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()

    use_own_local_aws("reads")
    import labkit
    from labkit import localaws
    from labkit.authoring import notebooks

    localaws.up(quiet=True)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            notebooks.run_solution(notebooks.lab("04"))  # lab 04's tables need nothing from earlier labs
        t = labkit.target()
        spec = importlib.util.spec_from_file_location("queries", labkit.config.work_dir() / "orders-v2" / "queries.py")
        q = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(q)
        ddb, table = t.client("dynamodb"), t.name("orders-v2")
        counted = {}

        def count(parsed, model, **_):
            counted["read"] = counted.get("read", 0) + parsed.get("ScannedCount", 1 if parsed.get("Item") else 0)
            counted["returned"] = counted.get("returned", 0) + parsed.get("Count", 1 if parsed.get("Item") else 0)

        ddb.meta.events.register("after-call.dynamodb", count)

        def scan(expression, values):
            return [i for page in ddb.get_paginator("scan").paginate(
                TableName=table, FilterExpression=expression, ExpressionAttributeValues=values) for i in page["Items"]]

        first = {"customerId": "customer-001", "orderId": "20261001T001359Z-cc87d6"}
        patterns = [
            ("AP1 get_order (GetItem)", lambda: q.get_order(ddb, table, first["customerId"], first["orderId"])),
            ("AP1 by Scan + filter", lambda: scan("orderId = :o", {":o": {"S": first["orderId"]}})),
            ("AP2 customer_orders, limit 10 (Query)", lambda: q.customer_orders(ddb, table, "customer-001", limit=10)),
            ("AP2 by Scan + filter", lambda: scan("customerId = :c", {":c": {"S": "customer-001"}})),
            ("AP3 orders_by_status (Query on the index)", lambda: q.orders_by_status(ddb, table, "SHIPPED", "2026-10-05")),
            ("AP3 by Scan + filter", lambda: scan("statusDay = :s", {":s": {"S": "SHIPPED#2026-10-05"}})),
        ]
        rows = []
        for name, call in patterns:
            call()  # warm
            counted.clear()
            call()
            read, returned = counted.get("read", 0), counted.get("returned", 0)
            samples = []
            for _ in range(args.runs):
                start = time.perf_counter()
                call()
                samples.append((time.perf_counter() - start) * 1000)
            rows.append(f"{name:<44} read {read:4d}  returned {returned:4d}  "
                        f"median {statistics.median(samples):6.2f} ms  p90 {statistics.quantiles(samples, n=10)[-1]:6.2f} ms")
    finally:
        localaws.down()
    print(f"{args.runs} runs each, on {os.cpu_count()} cores, Python {sys.version.split()[0]}, 800 orders")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
