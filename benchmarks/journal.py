"""How fast the local AWS comes back after many changes: replay rate and `labkit up` time.

In its own local AWS (a temporary state folder and a free port) it measures
the floors first -- an empty `labkit up`, and writes sent live through boto3 --
then, for each size, writes a journal of that many changes (SSM PutParameter
and DynamoDB PutItem lines cloned from live ones, each with its own name and
sequence number), and times:

- the first `labkit up` on that plain journal: every line replayed through
  moto (the replay rate), then folded into a checkpoint;
- the next `labkit up`: the checkpoint loaded, and the lines after it replayed;
- `restore` of a snapshot of that state: the checkpoint kept beside it loaded.

Usage: ``python benchmarks/journal.py [--sizes 10000,50000]``.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time

from isolated import use_own_local_aws  # benchmarks/ is the script's folder


def _clients():
    import boto3

    endpoint = f"http://localhost:{os.environ['LABS_AWS_PORT']}"
    kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
              aws_secret_access_key="testing")
    return boto3.client("ssm", **kw), boto3.client("dynamodb", **kw)


def _timed_up(localaws) -> float:
    begun = time.perf_counter()
    localaws.up()
    return time.perf_counter() - begun


def _clone(template: dict, number: int, body: dict) -> bytes:
    entry = dict(template, n=number, body=base64.b64encode(json.dumps(body).encode()).decode())
    entry["headers"] = {k: v for k, v in template["headers"].items() if k.lower() != "content-length"}
    return (json.dumps(entry) + "\n").encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000")
    parser.add_argument("--live", type=int, default=500, help="writes sent live for the floor")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    home = use_own_local_aws("journal")
    from labkit import localaws
    from labkit.localaws.app import COMPACT_EVERY

    empty_up = _timed_up(localaws)
    ssm, ddb = _clients()
    ddb.create_table(TableName="bench-items", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    begun = time.perf_counter()
    for i in range(args.live):
        if i % 2:
            ssm.put_parameter(Name=f"/bench/live/{i}", Value="v" * 40, Type="String")
        else:
            ddb.put_item(TableName="bench-items", Item={"pk": {"S": f"live-{i}"}, "v": {"S": "x" * 40}})
    live_rate = args.live / (time.perf_counter() - begun)
    localaws.down()
    lines = localaws.journal_path().read_bytes().splitlines()
    create_table = lines[0]
    put_item = json.loads(lines[1])
    put_parameter = json.loads(lines[2])

    print(f"floor: empty `labkit up` {empty_up:.2f} s; live writes through boto3 {live_rate:.0f}/s "
          f"({args.live} sent)")
    for size in sizes:
        journal = bytearray(create_table + b"\n")
        for number in range(2, size + 1):
            if number % 2:
                body = {"Name": f"/bench/{number}", "Value": "v" * 40, "Type": "String"}
                journal += _clone(put_parameter, number, body)
            else:
                body = {"TableName": "bench-items", "Item": {"pk": {"S": str(number)}, "v": {"S": "x" * 40}}}
                journal += _clone(put_item, number, body)
        localaws.journal_path().write_bytes(bytes(journal))
        for stale in home.glob("checkpoint.*.pickle"):
            stale.unlink()
        first = _timed_up(localaws)
        ssm, _ = _clients()
        assert ssm.get_parameter(Name=f"/bench/{size - 1 if size % 2 == 0 else size}")["Parameter"]["Value"]
        localaws.down()
        again = _timed_up(localaws)
        status = localaws.status()
        assert status["writes"] == size, status
        localaws.down()
        # the worst case: a checkpoint and the longest tail before the next compaction
        tail = bytearray()
        for number in range(size + 1, size + COMPACT_EVERY):
            tail += _clone(put_parameter, number, {"Name": f"/bench/{number}", "Value": "t", "Type": "String"})
        with open(localaws.journal_path(), "ab") as handle:
            handle.write(bytes(tail))
        worst = _timed_up(localaws)
        # a snapshot of it, restored: its checkpoint is loaded and the lines after it replayed
        localaws.save("bench-big", force=True)
        localaws.reset()
        begun = time.perf_counter()
        restored = localaws.restore("bench-big")
        restore = time.perf_counter() - begun
        assert restored == size + COMPACT_EVERY - 1, restored
        localaws.down()
        print(f"{size} changes: plain journal replayed in {first:.1f} s ({size / first:.0f} changes/s, "
              f"{first - empty_up:.1f} s over the empty floor, replay at {size / max(first - empty_up, 1e-9):.0f}/s); "
              f"`labkit up` from its checkpoint {again:.2f} s ({again / empty_up:.1f}x the empty floor), "
              f"with the longest tail ({COMPACT_EVERY - 1} lines) {worst:.2f} s; "
              f"`restore` of a snapshot of it {restore:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
