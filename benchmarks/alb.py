"""Measure the local Application Load Balancer: a GET through an ALB listener beside the same GET sent
straight to its target (the floor).

Runs against its own local AWS (a temporary state folder and a free port), starts one small HTTP
server on 127.0.0.2 as the target (loopback only), puts it in a target group behind a listener rule
and, once the probes say it is healthy, reports median and p99 latency and requests per second for:

- GET sent directly to the target (the floor: a new connection and one request);
- GET through the ALB listener (rules, target choice, the forward to the target);
- the same GET through the ALB from 4 client threads at once.

Usage: ``python benchmarks/alb.py [--requests N]``.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import statistics
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from isolated import use_own_local_aws  # benchmarks/ is the script's folder

TARGET_ADDRESS = "127.0.0.2"
BODY = json.dumps({"orderId": "o-1", "item": "tea"}).encode()


class Orders(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


def _measure(name: str, call, n: int, threads: int = 1) -> tuple[str, float]:
    for _ in range(5):
        call()
    samples: list[float] = []

    def timed(_):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)

    began = time.perf_counter()
    if threads == 1:
        for i in range(n):
            timed(i)
    else:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            list(pool.map(timed, range(n)))
    wall = time.perf_counter() - began
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    median = statistics.median(samples)
    return (f"{name:<44} median {median * 1000:6.2f} ms   p99 {p99 * 1000:6.2f} ms   {n / wall:6.0f} req/s"), median


def _get(url: str) -> None:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200 and response.read() == BODY


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    n = max(10, min(args.requests, 20000))  # bounded either way

    use_own_local_aws("alb-bench")
    from labkit import localaws
    from labkit.balancers import url as balancer_url
    from labkit.target import Target

    server = ThreadingHTTPServer((TARGET_ADDRESS, 0), Orders)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    localaws.up()
    try:
        t = Target("local", prefix="bench", region="us-east-1")
        ec2, elb = t.client("ec2"), t.client("elbv2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
                   for i, z in ((1, "a"), (2, "b"))]
        lb = elb.create_load_balancer(Name="bench-web", Subnets=subnets, Type="application")["LoadBalancers"][0]
        group = elb.create_target_group(Name="bench-orders", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip",
                                        HealthCheckPath="/health", HealthCheckIntervalSeconds=5,
                                        HealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
        elb.register_targets(TargetGroupArn=group, Targets=[{"Id": TARGET_ADDRESS, "Port": server.server_address[1]}])
        listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80, DefaultActions=[
            {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}])["Listeners"][0]["ListenerArn"]
        elb.create_rule(ListenerArn=listener, Priority=10, Conditions=[{"Field": "path-pattern", "Values": ["/orders/*"]}],
                        Actions=[{"Type": "forward", "TargetGroupArn": group}])
        deadline = time.monotonic() + 60
        while elb.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"][0]["TargetHealth"]["State"] != "healthy":
            if time.monotonic() > deadline:
                raise SystemExit("The target did not become healthy within 60 s.")
            time.sleep(0.2)
        direct = f"http://{TARGET_ADDRESS}:{server.server_address[1]}/orders/o-1"
        through = balancer_url(t, "bench-web") + "/orders/o-1"

        print(f"{n} requests each, after 5 warm-up requests; Python {sys.version.split()[0]}")
        floor_line, floor = _measure("GET straight to the target (the floor)", lambda: _get(direct), n)
        print(floor_line)
        line, median = _measure("GET through the local ALB", lambda: _get(through), n)
        print(line)
        print(_measure("GET through the local ALB, 4 threads", lambda: _get(through), n, threads=4)[0])
        print(f"through the ALB / direct (medians): {median / floor:.2f}x")
    finally:
        localaws.down()
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
