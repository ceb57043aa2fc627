"""The local Network Load Balancer, against a real local AWS, with real TCP and HTTP servers as targets.

Same server and clock as tests/test_elb.py (health checks ten times faster); waits poll for a state
with a generous bound, never a timing assertion.
"""
from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading

import pytest

from tests.localaws import _port
from tests.test_elb import SPEED, Target, _alb_server, aws, targets, until  # noqa: F401 - fixtures

FAST = {"HealthCheckIntervalSeconds": 5, "HealthCheckTimeoutSeconds": 2, "HealthyThresholdCount": 2, "UnhealthyThresholdCount": 2}


class Echo:
    """A TCP server on 127.0.0.<n>: says its name, then echoes what it is sent until the client half-closes."""

    def __init__(self, name: str, n: int):
        self.name = name
        self.sock = socket.create_server((f"127.0.0.{n}", 0))
        self.address, self.port = self.sock.getsockname()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            try:
                conn.sendall(self.name.encode() + b"\n")
                while data := conn.recv(65536):
                    conn.sendall(data)
            except (ConnectionResetError, BrokenPipeError):
                return  # a TCP health check connects and leaves at once, as NLB's does

    @property
    def spec(self) -> dict:
        return {"Id": self.address, "Port": self.port}

    def close(self):
        self.sock.close()


@pytest.fixture
def echoes():
    made = []

    def make(name, n):
        made.append(Echo(name, n))
        return made[-1]

    yield make
    for echo in made:
        echo.close()


class Nlb:
    """A VPC with two subnets, an internal NLB (the first subnet's address asked for), and helpers."""

    ASKED = "10.0.1.50"

    def __init__(self, endpoint: str):
        import boto3

        def client(service):
            return boto3.client(service, region_name="us-east-1", endpoint_url=endpoint,
                                aws_access_key_id="testing", aws_secret_access_key="testing")

        self.ec2, self.elb = client("ec2"), client("elbv2")
        self.vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnets = [self.ec2.create_subnet(VpcId=self.vpc, CidrBlock=f"10.0.{i}.0/24",
                                               AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
                        for i, z in ((1, "a"), (2, "b"))]
        self.lb = self.elb.create_load_balancer(
            Name="ada-provider", Type="network", Scheme="internal",
            SubnetMappings=[{"SubnetId": self.subnets[0], "PrivateIPv4Address": self.ASKED},
                            {"SubnetId": self.subnets[1]}])["LoadBalancers"][0]
        self.arn = self.lb["LoadBalancerArn"]

    def group(self, name: str, *members, **settings) -> str:
        arn = self.elb.create_target_group(Name=name, Protocol="TCP", Port=80, VpcId=self.vpc, TargetType="ip",
                                           **settings)["TargetGroups"][0]["TargetGroupArn"]
        if members:
            self.elb.register_targets(TargetGroupArn=arn, Targets=[m.spec for m in members])
        return arn

    def listen(self, group: str, port: int = 9000) -> str:
        return self.elb.create_listener(LoadBalancerArn=self.arn, Protocol="TCP", Port=port, DefaultActions=[
            {"Type": "forward", "TargetGroupArn": group}])["Listeners"][0]["ListenerArn"]

    def health(self, group: str) -> dict:
        return {(d["Target"]["Id"], d["Target"]["Port"]): d["TargetHealth"]
                for d in self.elb.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]}

    def wait_states(self, group: str, wanted: dict):
        return until(lambda: {k: h["State"] for k, h in self.health(group).items()} == wanted or None,
                     f"targets of {group.split('/')[-2]} {wanted}")

    def where(self, port: int = 9000) -> tuple[str, int]:
        from labkit.balancers import balancers
        from labkit.target import Target as Where

        rows = [r for r in balancers(Where("local", prefix="ada", region="us-east-1"))
                if r["name"] == "ada-provider" and r["listener_port"] == port]
        assert rows and rows[0]["url"].startswith("tcp://127.0.0.1:"), rows
        return "127.0.0.1", int(rows[0]["url"].rsplit(":", 1)[1])


def talk(where: tuple[str, int], data: bytes = b"ping") -> bytes:
    """Everything the far end sends back for ``data`` once we half-close; b"" when the connection is refused or reset."""
    try:
        with socket.create_connection(where, timeout=30) as sock:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)
    except (ConnectionResetError, ConnectionRefusedError, BrokenPipeError):
        return b""


def test_an_nlb_has_an_address_in_each_subnet_and_nlb_health_check_defaults(aws):
    nlb = Nlb(aws.endpoint)
    zones = {z["SubnetId"]: z["LoadBalancerAddresses"] for z in nlb.lb["AvailabilityZones"]}
    # AWS reports the address an internal NLB's mapping named, and nothing for one it chose
    assert zones == {nlb.subnets[0]: [{"PrivateIPv4Address": Nlb.ASKED}], nlb.subnets[1]: []}
    described = nlb.elb.describe_load_balancers(LoadBalancerArns=[nlb.arn])["LoadBalancers"][0]
    assert {z["SubnetId"]: z["LoadBalancerAddresses"] for z in described["AvailabilityZones"]} == zones
    lb_id = nlb.arn.rsplit("/", 1)[-1]
    enis = nlb.ec2.describe_network_interfaces(
        Filters=[{"Name": "description", "Values": [f"ELB net/ada-provider/{lb_id}"]}])["NetworkInterfaces"]
    by_subnet = {e["SubnetId"]: e["PrivateIpAddress"] for e in enis}
    assert set(by_subnet) == set(nlb.subnets) and by_subnet[nlb.subnets[0]] == Nlb.ASKED
    chosen = ipaddress.ip_address(by_subnet[nlb.subnets[1]])
    network = ipaddress.ip_network("10.0.2.0/24")
    assert chosen in network and network.network_address + 4 <= chosen < network.broadcast_address
    group = nlb.elb.describe_target_groups(TargetGroupArns=[nlb.group("ada-provider")])["TargetGroups"][0]
    assert (group["HealthCheckProtocol"], group["HealthCheckIntervalSeconds"], group["HealthCheckTimeoutSeconds"],
            group["HealthyThresholdCount"], group["UnhealthyThresholdCount"]) == ("TCP", 30, 10, 5, 2)
    nlb.elb.delete_load_balancer(LoadBalancerArn=nlb.arn)
    assert not nlb.ec2.describe_network_interfaces(
        Filters=[{"Name": "description", "Values": [f"ELB net/ada-provider/{lb_id}"]}])["NetworkInterfaces"]


def test_a_tcp_listener_carries_the_byte_stream_to_healthy_targets_in_turn(aws, echoes):
    a, b = echoes("a", 2), echoes("b", 3)
    nlb = Nlb(aws.endpoint)
    group = nlb.group("ada-provider", a, b, **FAST)
    nlb.listen(group)
    where = nlb.where()
    assert talk(where) == b""  # every target still in its first checks: NLB has nowhere to send it
    nlb.wait_states(group, {(a.address, a.port): "healthy", (b.address, b.port): "healthy"})
    answers = [talk(where, b"hello %d" % i) for i in range(4)]
    assert [x.split(b"\n")[1] for x in answers] == [b"hello %d" % i for i in range(4)], answers
    assert sorted(x.split(b"\n")[0] for x in answers) == [b"a", b"a", b"b", b"b"], answers  # in turn
    big = os.urandom(1 << 20)
    assert talk(where, big).split(b"\n", 1)[1] == big  # a megabyte both ways, byte for byte
    b.close()
    down = nlb.wait_states(group, {(a.address, a.port): "healthy", (b.address, b.port): "unhealthy"})
    assert down
    assert {talk(where).split(b"\n")[0] for _ in range(4)} == {b"a"}  # only the healthy one gets new flows
    listed = subprocess.run([sys.executable, "-m", "labkit", "lb"], capture_output=True, text=True, timeout=60,
                            env={**os.environ})
    assert listed.returncode == 0 and f"tcp://127.0.0.1:{where[1]}" in listed.stdout, listed


def test_with_no_healthy_target_an_nlb_fails_open(aws, echoes):
    a = echoes("a", 2)
    closed = socket.create_server(("127.0.0.2", 0))
    health_port = closed.getsockname()[1]
    closed.close()  # nothing answers the health checks: the target turns unhealthy, its traffic port works
    nlb = Nlb(aws.endpoint)
    group = nlb.group("ada-provider", a, HealthCheckPort=str(health_port), **FAST)
    nlb.listen(group)
    health = nlb.wait_states(group, {(a.address, a.port): "unhealthy"})
    assert health
    assert nlb.health(group)[a.address, a.port]["Reason"] == "Target.FailedHealthChecks"
    assert talk(nlb.where()) == b"a\nping"


def test_an_http_health_check_behind_an_nlb_takes_200_to_399(aws, targets):
    web = targets("web", 2)
    web.health_code = 302  # healthy for an NLB's default matcher, not for ALB's 200
    nlb = Nlb(aws.endpoint)
    group = nlb.group("ada-provider", web, HealthCheckProtocol="HTTP", HealthCheckPath="/health", **FAST)
    assert nlb.elb.describe_target_groups(TargetGroupArns=[group])["TargetGroups"][0]["Matcher"] == {
        "HttpCode": "200-399"}
    nlb.listen(group, 80)
    nlb.wait_states(group, {(web.address, web.port): "healthy"})
    answer = talk(nlb.where(80), b"GET /hi HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.") and json.loads(answer.split(b"\r\n\r\n", 1)[1])["path"] == "/hi"


FORWARD = textwrap.dedent('''
    import json, socket, sys, threading, time
    from pathlib import Path
    from werkzeug.serving import make_server
    from labkit.localaws.app import build_app
    sys.path.insert(0, sys.argv[2])
    from tests.test_elb_network import Echo, Nlb, FAST, talk

    port = int(sys.argv[3])
    app = build_app(Path(sys.argv[1]), f"http://localhost:{port}")
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    out = {}
    try:
        a = Echo("a", 2)
        nlb = Nlb(f"http://localhost:{port}")
        group = nlb.group("ada-provider", a, **FAST)
        listener = nlb.listen(group, 9000)
        ext = app.extension("elb")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and nlb.health(group)[a.address, a.port]["State"] != "healthy":
            time.sleep(0.05)
        ours, theirs = socket.socketpair()
        out["accepted"] = ext.forward(nlb.arn, 9000, theirs, ("10.1.0.9", 40000))
        ours.sendall(b"through the fabric")
        ours.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := ours.recv(65536):
            got += chunk
        out["got"] = got.decode()
        stray, other = socket.socketpair()
        out["no_listener"] = ext.forward(nlb.arn, 9999, other, ("10.1.0.9", 40001))
        out["stray_closed"] = stray.recv(10) == b""
        rows = json.loads((Path(sys.argv[1]).parent / "load-balancers.json").read_text())["serving"]
        out["local_port"] = rows[0]["url"] == f"tcp://127.0.0.1:{ext.local_port(listener)}"
        out["addresses"] = sorted(ext.addresses(nlb.arn).values())
        # a target of type instance is reached at the instance's private address (published here)
        from labkit.localaws import netns
        image = nlb.ec2.describe_images()["Images"][0]["ImageId"]
        instance = nlb.ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=nlb.subnets[0])["Instances"][0]
        b = Echo("b", 1)
        netns.publish(instance["PrivateIpAddress"], 7000, b.port)
        by_id = nlb.elb.create_target_group(Name="ada-instances", Protocol="TCP", Port=7000, VpcId=nlb.vpc,
                                            TargetType="instance", **FAST)["TargetGroups"][0]["TargetGroupArn"]
        nlb.elb.register_targets(TargetGroupArn=by_id, Targets=[{"Id": instance["InstanceId"]}])
        on_9001 = nlb.listen(by_id, 9001)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and nlb.health(by_id)[instance["InstanceId"], 7000]["State"] != "healthy":
            time.sleep(0.05)
        out["instance"] = talk(("127.0.0.1", ext.local_port(on_9001) or 0)).decode()
    finally:
        app.close()
        server.shutdown()
    print(json.dumps(out))
''')


def test_another_extension_can_forward_a_connection_to_the_nlb(tmp_path):
    """The entry lab 06's PrivateLink fabric uses: an accepted socket handed to the NLB's listener."""
    from labkit.config import REPO_ROOT

    root = str(REPO_ROOT)
    env = {**os.environ, "LABKIT_CLOCK_SPEED": SPEED, "PYTHONPATH": root, "LABKIT_NETNS": "off",
           "LABKIT_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", FORWARD, str(tmp_path / "journal.ndjson"), root, str(_port())],
                          capture_output=True, text=True, timeout=180, cwd=root, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["accepted"] and out["got"] == "a\nthrough the fabric", out
    assert out["no_listener"] is False and out["stray_closed"], out
    assert out["local_port"] and Nlb.ASKED in out["addresses"] and len(out["addresses"]) == 2, out
    assert out["instance"] == "b\nping", out
