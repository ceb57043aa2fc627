"""Measure PrivateLink in the local AWS: a GET through an interface endpoint, from inside the consumer's VPC,
beside the same GET made inside one namespace with no fabric (the floor).

Runs against its own local AWS (a temporary state folder and a free port) and starts one small HTTP server
on 127.0.0.2 as the provider's target, behind an internal NLB and an endpoint service; a consumer VPC has an
interface endpoint to it. Reports:

- setup: the first probe into the consumer VPC (its namespace, addresses and endpoint listeners are made
  then) beside a warm probe, and a re-read after a write that changes no address;
- the floor: a new connection and one GET between two addresses of one namespace made here (in loopback
  mode: straight to the target on 127.0.0.2);
- through the endpoint: the time the local AWS took for the probe (``elapsed_ms``: resolve, connect to the
  endpoint, security groups, the NLB, the target, the answer), and the whole ``labkit.vpc.probe`` call.

Usage: ``python benchmarks/privatelink.py [--requests N]`` (namespaces as root; ``LABKIT_NETNS=off`` for loopback).
"""
from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from isolated import use_own_local_aws  # benchmarks/ is the script's folder

TARGET_ADDRESS = "127.0.0.2"
BODY = json.dumps({"items": ["tea", "cups"]}).encode()


class Catalog(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


def _line(name: str, samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{name:<52} p50 {statistics.median(samples_ms):6.2f} ms   p99 {p99:6.2f} ms"


def _timed(call, n: int) -> list[float]:
    for _ in range(5):
        call()
    out = []
    for _ in range(n):
        begun = time.perf_counter()
        call()
        out.append((time.perf_counter() - begun) * 1000)
    return out


def _floor(n: int) -> tuple[str, list[float]]:
    """One GET between two addresses of one namespace (no fabric), or straight to the loopback target."""
    from labkit.localaws import netns

    if not netns.available():
        def direct():
            connection = http.client.HTTPConnection(TARGET_ADDRESS, TARGET_PORT, timeout=10)
            connection.request("GET", "/")
            assert connection.getresponse().read() == BODY
            connection.close()
        return "GET straight to the target (the floor, loopback mode)", _timed(direct, n)
    space = netns.create(f"bench-floor-{int(time.time()) % 100000}", ["10.9.0.1", "10.9.0.2"])
    try:
        listening = netns.listen(space, "10.9.0.1", 8080)
        server = ThreadingHTTPServer(("10.9.0.1", 0), Catalog, bind_and_activate=False)
        server.socket.close()
        server.socket = listening
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()

        def inside():
            sock = netns.connect("10.9.0.1", 8080, 10, namespace=space, source="10.9.0.2")
            connection = http.client.HTTPConnection("10.9.0.1", 8080, timeout=10)
            connection.sock = sock
            connection.request("GET", "/")
            assert connection.getresponse().read() == BODY
            connection.close()
        samples = _timed(inside, n)
        server.shutdown()
        return "GET inside one namespace, no fabric (the floor)", samples
    finally:
        space.delete()


def main() -> int:
    global TARGET_PORT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    n = max(10, min(args.requests, 5000))  # bounded either way

    use_own_local_aws("privatelink-bench")
    from labkit import localaws
    from labkit.localaws import netns
    from labkit.target import Target
    from labkit.vpc import probe

    server = ThreadingHTTPServer((TARGET_ADDRESS, 0), Catalog)
    server.daemon_threads = True
    TARGET_PORT = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    localaws.up()
    try:
        t = Target("local", prefix="bench", region="us-east-1")
        ec2, elb = t.client("ec2"), t.client("elbv2")
        provider = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=provider, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")
                   ["Subnet"]["SubnetId"] for i, z in ((1, "a"), (2, "b"))]
        lb = elb.create_load_balancer(Name="bench-catalog", Type="network", Scheme="internal",
                                      Subnets=subnets)["LoadBalancers"][0]
        group = elb.create_target_group(Name="bench-catalog", Protocol="TCP", Port=80, VpcId=provider, TargetType="ip",
                                        HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                        HealthyThresholdCount=2)["TargetGroups"][0]
        elb.register_targets(TargetGroupArn=group["TargetGroupArn"], Targets=[{"Id": TARGET_ADDRESS, "Port": TARGET_PORT}])
        elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="TCP", Port=80,
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": group["TargetGroupArn"]}])
        service = ec2.create_vpc_endpoint_service_configuration(NetworkLoadBalancerArns=[lb["LoadBalancerArn"]],
                                                                AcceptanceRequired=False)["ServiceConfiguration"]
        vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
        mine = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.1.{i}.0/24", AvailabilityZone=f"us-east-1{z}")
                ["Subnet"]["SubnetId"] for i, z in ((1, "a"), (2, "b"))]
        app = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
        guard = ec2.create_security_group(GroupName="endpoint", Description="endpoint", VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=guard, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": app}]}])
        endpoint = ec2.create_vpc_endpoint(VpcEndpointType="Interface", VpcId=vpc, ServiceName=service["ServiceName"],
                                           SubnetIds=mine, SecurityGroupIds=[guard])["VpcEndpoint"]
        url = f"http://{endpoint['DnsEntries'][0]['DnsName']}/"
        deadline = time.monotonic() + 60
        while elb.describe_target_health(TargetGroupArn=group["TargetGroupArn"])["TargetHealthDescriptions"][0][
                "TargetHealth"]["State"] != "healthy":
            if time.monotonic() > deadline:
                raise SystemExit("The target did not become healthy within 60 s.")
            time.sleep(0.2)

        first = probe(vpc, url, [app])
        assert first["outcome"] == "answered", first
        warm = [probe(vpc, url, [app])["elapsed_ms"] for _ in range(20)]
        ec2.create_tags(Resources=[vpc], Tags=[{"Key": "bench", "Value": "1"}])  # a write: the view is read again
        reread = probe(vpc, url, [app])["elapsed_ms"]
        print(f"mode: {netns.mode()}; {n} requests each, after 5 warm-up requests; Python {sys.version.split()[0]}")
        print(f"setup: first probe {first['elapsed_ms']:.1f} ms (namespace and endpoint listeners made), "
              f"warm probe {statistics.median(warm):.2f} ms, after a write {reread:.2f} ms")
        floor_name, floor = _floor(n)
        print(_line(floor_name, floor))
        served: list[float] = []

        def through():
            got = probe(vpc, url, [app])
            assert got["outcome"] == "answered" and got["status"] == 200, got
            served.append(got["elapsed_ms"])
        whole = _timed(through, n)
        print(_line("GET through the interface endpoint (in the local AWS)", served[5:]))
        print(_line("labkit.vpc.probe, the whole call", whole))
        print(f"through the endpoint / floor (medians): {statistics.median(served[5:]) / statistics.median(floor):.2f}x")
    finally:
        localaws.down()
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
