"""Load on the local Lambda runner: many requests at once through the local gateway.

Runs against its own local AWS (a temporary state folder and a free port),
deploys the function and API that ``benchmarks/gateway.py`` deploys, then sends
``--concurrency`` requests at once (default 100) through the gateway, twice: cold
(no sandbox yet) and warm. For each round it reports the answers by status, p50
and p99 latency, the most sandboxes (worker processes) alive at once, and the
peak resident memory of the server plus its workers, beside a direct call of the
handler in this process (the floor).

Over the local concurrency limit (``LABKIT_LAMBDA_CONCURRENCY``; see
``labkit/localaws/extensions/lambdapool.py``) Lambda throttles and API Gateway
answers 500: those are expected, and counted apart from failures.

Usage: ``python benchmarks/lambda_load.py [--concurrency N]``.
"""
from __future__ import annotations

import argparse
import collections
import concurrent.futures
import os
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # measure this checkout's labkit

from gateway import deploy_with_floor  # noqa: E402  (benchmarks/ is the script's folder)
from isolated import use_own_local_aws  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree(root: int) -> list[int]:
    """``root`` and every process below it (Linux /proc)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[ppid].append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


class Sampler:
    """The peak number of workers and the peak resident memory of the server's process tree."""

    def __init__(self, server_pid: int):
        self.server_pid = server_pid
        self.peak_workers = 0
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            tree = _tree(self.server_pid)
            self.peak_workers = max(self.peak_workers, len(tree) - 1)
            self.peak_rss = max(self.peak_rss, sum(_rss(p) for p in tree))
            self._stop.wait(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def _round(name: str, url: str, key: str, n: int, server_pid: int) -> None:
    def one(_):
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers={"x-api-key": key}), timeout=60) as r:
                r.read()
                status = r.status
        except urllib.error.HTTPError as error:
            body = error.read()
            status = "500 throttled" if b"throttled" in body else error.code
        except OSError as error:
            status = type(error).__name__
        return status, time.perf_counter() - start

    with Sampler(server_pid) as sampler, concurrent.futures.ThreadPoolExecutor(n) as pool:
        began = time.perf_counter()
        answers = list(pool.map(one, range(n)))
        wall = time.perf_counter() - began
    counts = collections.Counter(str(s) for s, _ in answers)
    ok = [t for s, t in answers if s == 200]
    print(f"{name}: {n} requests at once, {wall:.1f} s wall")
    print(f"  answers          {dict(sorted(counts.items()))}")
    print(f"  latency of 200s  p50 {_percentile(ok, 0.5) * 1000:7.1f} ms   p99 {_percentile(ok, 0.99) * 1000:7.1f} ms")
    every = [t for _, t in answers]
    print(f"  latency of all   p50 {_percentile(every, 0.5) * 1000:7.1f} ms   p99 {_percentile(every, 0.99) * 1000:7.1f} ms")
    print(f"  peak workers     {sampler.peak_workers}")
    print(f"  peak RSS         {sampler.peak_rss / 2**20:7.0f} MiB (server and workers)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args()

    home = use_own_local_aws("lambda-load")
    from labkit import localaws
    from labkit.target import Target

    info = localaws.up()
    try:
        t = Target("local", prefix="bench", region="us-east-1")
        url, key, module, event = deploy_with_floor(t, home)
        module.handler(event, None)
        floor = []
        for _ in range(50):
            start = time.perf_counter()
            assert module.handler(event, None)["statusCode"] == 200
            floor.append(time.perf_counter() - start)

        status = localaws.status()
        print(f"labkit {Path(localaws.__file__).resolve().parent.parent.parent}; Python {sys.version.split()[0]}; "
              f"{os.cpu_count()} CPUs; local AWS pid {status.get('pid')}")
        print(f"handler called in-process (the floor): p50 {statistics.median(floor) * 1000:.1f} ms   "
              f"p99 {_percentile(floor, 0.99) * 1000:.1f} ms")
        _round("cold", url, key, args.concurrency, info["pid"])
        _round("warm", url, key, args.concurrency, info["pid"])
    finally:
        localaws.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
