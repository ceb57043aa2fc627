"""Measure ECS tasks in the local AWS: run_task to RUNNING, to serving, and to HEALTHY, beside a floor.

Runs against its own local AWS (a temporary state folder and a free port), pushes a
small Python HTTP service to the local ECR, and reports the median over N runs of:

- the floor: the same service started directly as a process, until it answers HTTP;
- ``run_task`` until DescribeTasks says RUNNING (the process started);
- ``run_task`` until the service answers on its port (what a load balancer waits for);
- ``run_task`` until DescribeTasks says HEALTHY (a ``curl`` health check with a start
  period: during it the probe runs every second, so this is bounded by that cadence).

Usage: ``python benchmarks/tasks.py [--runs N]``.
"""
from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from isolated import use_own_local_aws  # benchmarks/ is the script's folder

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the image builder the tests use (a real OCI image in the local ECR)


def _answers(port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return True
        except OSError:
            time.sleep(0.005)
    return False


def _floor(app: str) -> float:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = Path(tempfile.mkdtemp())
    (folder / "app.py").write_text(app)
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(folder / "app.py")], env={"PORT": str(port), "PATH": "/usr/bin:/bin"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _answers(port, time.monotonic() + 30)
        return time.perf_counter() - started
    finally:
        proc.kill()
        proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    use_own_local_aws("tasks-bench")
    from labkit import localaws
    from labkit.target import Target
    from tests.ecs_support import APP, container, get_json, network, port_of, push_image, register, task_of

    localaws.up()
    try:
        t = Target("local", prefix="bench", region="us-east-1")
        ecs, ecr, ec2 = t.client("ecs"), t.client("ecr"), t.client("ec2")
        ecs.create_cluster(clusterName="bench")
        net = network(ec2)
        from labkit import config

        image, _ = push_image(ecr, config.state_dir(), "bench-web")
        check = {"command": ["CMD-SHELL", "curl -fs http://localhost:8080/health || exit 1"], "interval": 30,
                 "timeout": 2, "retries": 3, "startPeriod": 10}
        definition = register(ecs, "bench-web", [container(image, healthCheck=check)])
        floors, running, serving, healthy = [], [], [], []
        for _ in range(args.runs):
            floors.append(_floor(APP))
            started = time.perf_counter()
            arn = ecs.run_task(cluster="bench", taskDefinition=definition, launchType="FARGATE",
                               networkConfiguration=net)["tasks"][0]["taskArn"]
            task = task_of(ecs, "bench", arn)
            while task["lastStatus"] not in ("RUNNING", "STOPPED"):
                time.sleep(0.005)
                task = task_of(ecs, "bench", arn)
            running.append(time.perf_counter() - started)
            get_json(port_of(task), "/health", timeout=30)  # a loopback port, or inside the task's namespace
            serving.append(time.perf_counter() - started)
            while task.get("healthStatus") != "HEALTHY" and task["lastStatus"] != "STOPPED":
                time.sleep(0.01)
                task = task_of(ecs, "bench", arn)
            healthy.append(time.perf_counter() - started)
            ecs.stop_task(cluster="bench", task=arn)
        print(f"{args.runs} runs, medians; Python {sys.version.split()[0]}")
        for label, values in (("process started directly, until it answers (the floor)", floors),
                              ("run_task until RUNNING", running), ("run_task until the service answers", serving),
                              ("run_task until HEALTHY", healthy)):
            print(f"  {label:<58} {statistics.median(values) * 1000:8.1f} ms")
    finally:
        localaws.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
