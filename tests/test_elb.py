"""The local Application Load Balancer, against a real local AWS, with real HTTP servers as targets.

The server runs with ``LABKIT_CLOCK_SPEED`` 10 so a 5-second health check interval takes half a
second; the probes and the thresholds are the real ones. Waits poll for a state with a generous
bound (never a timing assertion). Loopback targets use their own 127.0.0.x addresses; a target
inside a network namespace is tested where namespaces exist.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from labkit.localaws import netns
from tests.localaws import _port, local_aws_at_speed

SPEED = "10"
WAIT_S = 60.0  # an upper bound for a state to be reached on a loaded machine, not a speed claim


def until(look, what: str, limit: float = WAIT_S):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        found = look()
        if found:
            return found
        time.sleep(0.05)
    pytest.fail(f"{what} was not reached within {limit:g} s")


# -- targets ---------------------------------------------------------------------

class Target:
    """An HTTP server on 127.0.0.<n>: answers with its name and what it was sent; its health path is switchable."""

    def __init__(self, name: str, address: str, sock: socket.socket | None = None, port: int | None = None):
        self.name, self.health_code = name, 200
        self.health_seen: list[int] = []  # codes answered to health checks, in order
        self.release = threading.Event()  # stalled requests wait for it
        self.stall_health = False
        target = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path == "/health":
                    if target.stall_health:
                        target.release.wait(30)
                        return
                    target.health_seen.append(target.health_code)
                    return self._answer(target.health_code, {"ok": target.health_code == 200})
                if self.path == "/garbage":
                    self.wfile.write(b"this is not HTTP\r\n\r\n")
                    self.close_connection = True
                    return
                if self.path == "/then-close":  # keeps the connection alive in words, then closes it
                    self._answer(200, {"target": target.name, "path": self.path, "headers": {}})
                    self.close_connection = True
                    return
                if self.path == "/slow":
                    target.release.wait(30)
                    return
                self._answer(200, {"target": target.name, "path": self.path, "headers": dict(self.headers.items())})

            do_POST = do_GET

            def _answer(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        if sock is None:
            self.server = ThreadingHTTPServer((address, 0), Handler)
        else:
            self.server = ThreadingHTTPServer((address, 0), Handler, bind_and_activate=False)
            self.server.socket.close()
            self.server.socket = sock
        self.server.daemon_threads = True
        # a socket made by netns.listen is at (address, port), whatever loopback port it may be published on
        self.address, self.port = address, self.server.server_address[1] if sock is None else port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def spec(self) -> dict:
        return {"Id": self.address, "Port": self.port}

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


_alb_server, aws = local_aws_at_speed(SPEED, "aws")


@pytest.fixture
def targets():
    made = []

    def make(name: str, n: int) -> Target:
        made.append(Target(name, f"127.0.0.{n}"))
        return made[-1]

    yield make
    for target in made:
        target.close()


class Alb:
    """A VPC, an ALB with one HTTP listener, and helpers, through boto3 against the local AWS."""

    def __init__(self, endpoint: str, default_action: dict | None = None, idle_timeout: int | None = None):
        import boto3

        def client(service):
            return boto3.client(service, region_name="us-east-1", endpoint_url=endpoint,
                                aws_access_key_id="testing", aws_secret_access_key="testing")

        self.ec2, self.elb = client("ec2"), client("elbv2")
        self.vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [self.ec2.create_subnet(VpcId=self.vpc, CidrBlock=f"10.0.{i}.0/24",
                                          AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
                   for i, z in ((1, "a"), (2, "b"))]
        self.lb = self.elb.create_load_balancer(Name="ada-web", Subnets=subnets, Type="application")["LoadBalancers"][0]
        self.arn = self.lb["LoadBalancerArn"]
        if idle_timeout is not None:
            self.elb.modify_load_balancer_attributes(LoadBalancerArn=self.arn, Attributes=[
                {"Key": "idle_timeout.timeout_seconds", "Value": str(idle_timeout)}])
        default = default_action or {"Type": "fixed-response", "FixedResponseConfig": {
            "StatusCode": "404", "ContentType": "text/plain", "MessageBody": "no route"}}
        self.listener = self.elb.create_listener(LoadBalancerArn=self.arn, Protocol="HTTP", Port=80,
                                                 DefaultActions=[default])["Listeners"][0]["ListenerArn"]

    def group(self, name: str, *members: Target, **health) -> str:
        settings = {"HealthCheckPath": "/health", "HealthCheckIntervalSeconds": 5, "HealthCheckTimeoutSeconds": 2,
                    "HealthyThresholdCount": 2, "UnhealthyThresholdCount": 2, **health}
        arn = self.elb.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=self.vpc, TargetType="ip",
                                           **settings)["TargetGroups"][0]["TargetGroupArn"]
        if members:
            self.elb.register_targets(TargetGroupArn=arn, Targets=[m.spec for m in members])
        return arn

    def rule(self, priority: int, conditions: list, action: dict) -> str:
        return self.elb.create_rule(ListenerArn=self.listener, Priority=priority, Conditions=conditions,
                                    Actions=[action])["Rules"][0]["RuleArn"]

    def health(self, group: str) -> dict:
        return {(d["Target"]["Id"], d["Target"]["Port"]): d["TargetHealth"]
                for d in self.elb.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]}

    def wait_state(self, group: str, state: str, count: int | None = None) -> dict:
        def look():
            found = self.health(group)
            return found if found and all(h["State"] == state for h in found.values()) and (
                count is None or len(found) == count) else None

        return until(look, f"every target of {group.split('/')[-2]} {state}")

    @property
    def url(self) -> str:
        from labkit.balancers import url
        from labkit.target import Target as Where

        return url(Where("local", prefix="ada", region="us-east-1"), "ada-web")


def forward(group: str) -> dict:
    return {"Type": "forward", "TargetGroupArn": group}


def get(url: str, path: str = "/", headers: dict | None = None, method: str = "GET"):
    """(status, headers, body) of one request, errors included."""
    request = urllib.request.Request(url + path, headers=headers or {}, method=method)

    class Keep(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None  # the redirect itself is what is tested

    opener = urllib.request.build_opener(Keep)
    try:
        with opener.open(request, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def served_by(url: str, path: str = "/", headers: dict | None = None) -> str:
    status, _, body = get(url, path, headers)
    assert status == 200, (status, body)
    return json.loads(body)["target"]


# -- routing -------------------------------------------------------------------------

def test_rules_route_by_path_host_and_header_in_priority_order(aws, targets):
    a, b, c, d = targets("a", 2), targets("b", 3), targets("c", 4), targets("d", 5)
    alb = Alb(aws.endpoint)
    ga, gb, gc, gd = (alb.group(f"ada-{t.name}", t) for t in (a, b, c, d))
    alb.rule(10, [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/*"]}}], forward(ga))
    alb.rule(5, [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/v2/*"]}}], forward(gb))
    alb.rule(20, [{"Field": "host-header", "HostHeaderConfig": {"Values": ["*.example.com"]}}], forward(gc))
    alb.rule(30, [{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Canary", "Values": ["y?s"]}}],
             forward(gd))
    for group in (ga, gb, gc, gd):
        alb.wait_state(group, "healthy")
    url = alb.url
    assert served_by(url, "/api/orders") == "a"
    assert served_by(url, "/api/v2/orders") == "b"  # priority 5 is tried before 10
    assert served_by(url, "/API/orders", {"Host": "shop.EXAMPLE.com"}) == "c"  # paths are case-sensitive, hosts not
    assert served_by(url, "/", {"x-canary": "YES"}) == "d"
    status, headers, body = get(url, "/nothing")
    assert (status, body, headers["Server"]) == (404, b"no route", "awselb/2.0")  # the default action


def test_fixed_response_redirect_and_a_rule_change_without_restart(aws, targets):
    a = targets("a", 2)
    alb = Alb(aws.endpoint)
    ga = alb.group("ada-a", a)
    rule = alb.rule(1, [{"Field": "path-pattern", "Values": ["/old/*"]}],
                    {"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "Path": "/new/#{path}",
                                                            "StatusCode": "HTTP_301"}})
    alb.wait_state(ga, "unused")  # no listener forwards to it yet: never probed
    status, headers, _ = get(alb.url, "/old/x?q=1", {"Host": "shop.example.com"})
    assert (status, headers["Location"]) == (301, "https://shop.example.com/new/old/x?q=1")
    alb.elb.modify_rule(RuleArn=rule, Actions=[forward(ga)])
    alb.wait_state(ga, "healthy")
    assert served_by(alb.url, "/old/x") == "a"


def test_weighted_forward_splits_requests_by_weight(aws, targets):
    a, b = targets("a", 2), targets("b", 3)
    alb = Alb(aws.endpoint)
    ga, gb = alb.group("ada-a", a), alb.group("ada-b", b)
    alb.rule(1, [{"Field": "path-pattern", "Values": ["/*"]}], {"Type": "forward", "ForwardConfig": {
        "TargetGroups": [{"TargetGroupArn": ga, "Weight": 3}, {"TargetGroupArn": gb, "Weight": 1}]}})
    alb.wait_state(ga, "healthy")
    alb.wait_state(gb, "healthy")
    counts = Counter(served_by(alb.url, "/w") for _ in range(400))
    # binomial(400, 0.75): mean 300, sd 8.7; the band is seven deviations wide each side
    assert 240 <= counts["a"] <= 360 and counts["a"] + counts["b"] == 400


def test_forwarded_headers_and_body_reach_the_target(aws, targets):
    a = targets("a", 2)
    alb = Alb(aws.endpoint, default_action=None)
    ga = alb.group("ada-a", a)
    alb.elb.modify_listener(ListenerArn=alb.listener, DefaultActions=[forward(ga)])
    alb.wait_state(ga, "healthy")
    status, _, body = get(alb.url, "/echo", {"X-Forwarded-For": "203.0.113.9", "Host": "shop.example.com"})
    seen = {k.lower(): v for k, v in json.loads(body)["headers"].items()}
    assert status == 200
    assert seen["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert (seen["x-forwarded-proto"], seen["x-forwarded-port"], seen["host"]) == ("http", "80", "shop.example.com")
    assert seen["x-amzn-trace-id"].startswith("Root=1-")


def test_a_kept_alive_connection_the_target_closed_is_not_a_502(aws, targets):
    a = targets("a", 2)
    alb = Alb(aws.endpoint)
    ga = alb.group("ada-a", a)
    alb.elb.modify_listener(ListenerArn=alb.listener, DefaultActions=[forward(ga)])
    alb.wait_state(ga, "healthy")
    for _ in range(5):  # each request finds the connection the previous one left, closed by now
        assert served_by(alb.url, "/then-close") == "a"


# -- health ----------------------------------------------------------------------------

def test_health_follows_the_thresholds_down_and_up(aws, targets):
    a = targets("a", 2)
    alb = Alb(aws.endpoint)
    ga = alb.group("ada-a", a, HealthyThresholdCount=3, UnhealthyThresholdCount=2, Matcher={"HttpCode": "200-299"})
    alb.rule(1, [{"Field": "path-pattern", "Values": ["/*"]}], forward(ga))
    first = alb.health(ga)[a.address, a.port]
    assert first["State"] == "initial" and first["Reason"].startswith("Elb.")
    alb.wait_state(ga, "healthy")
    assert a.health_seen.count(200) >= 3  # three passes in a row before healthy
    a.health_code = 404
    failed_before = len(a.health_seen)
    down = alb.wait_state(ga, "unhealthy")[a.address, a.port]
    assert (down["Reason"], down["Description"]) == ("Target.ResponseCodeMismatch",
                                                      "Health checks failed with these codes: [404]")
    assert a.health_seen[failed_before:].count(404) >= 2
    a.health_code = 204  # inside the matcher's range
    alb.wait_state(ga, "healthy")
    assert a.health_seen[-3:] == [204, 204, 204]


def test_timeouts_refusals_draining_and_unused_groups(aws, targets):
    slow, gone, leaving = targets("slow", 2), targets("gone", 3), targets("leaving", 4)
    slow.stall_health = True
    gone.close()  # nothing listens there any more
    alb = Alb(aws.endpoint)
    g_slow, g_gone = alb.group("ada-slow", slow), alb.group("ada-gone", gone)
    g_leaving = alb.group("ada-leaving", leaving)
    g_idle = alb.group("ada-idle", leaving)
    for i, group in enumerate((g_slow, g_gone, g_leaving), start=1):
        alb.rule(i, [{"Field": "path-pattern", "Values": [f"/{i}/*"]}], forward(group))
    assert alb.wait_state(g_slow, "unhealthy")[slow.address, slow.port]["Reason"] == "Target.Timeout"
    assert alb.wait_state(g_gone, "unhealthy")[gone.address, gone.port]["Reason"] == "Target.FailedHealthChecks"
    assert alb.health(g_idle)[leaving.address, leaving.port]["Reason"] == "Target.NotInUse"
    alb.wait_state(g_leaving, "healthy")
    alb.elb.deregister_targets(TargetGroupArn=g_leaving, Targets=[leaving.spec])
    drained = alb.health(g_leaving)[leaving.address, leaving.port]
    assert (drained["State"], drained["Reason"]) == ("draining", "Target.DeregistrationInProgress")


# -- ALB's own answers ------------------------------------------------------------------

def test_alb_answers_502_503_504_itself(aws, targets):
    a = targets("a", 2)
    gone = targets("gone", 3)
    gone.close()
    alb = Alb(aws.endpoint, idle_timeout=1)
    ga, g_empty, g_gone = alb.group("ada-a", a), alb.group("ada-empty"), alb.group("ada-gone", gone)
    g_new = alb.group("ada-new", a, HealthCheckIntervalSeconds=300)  # its first checks need many seconds
    alb.rule(1, [{"Field": "path-pattern", "Values": ["/empty"]}], forward(g_empty))
    alb.rule(2, [{"Field": "path-pattern", "Values": ["/gone"]}], forward(g_gone))
    alb.rule(3, [{"Field": "path-pattern", "Values": ["/new"]}], forward(g_new))
    alb.rule(4, [{"Field": "path-pattern", "Values": ["/*"]}], forward(ga))
    alb.wait_state(ga, "healthy")
    alb.wait_state(g_gone, "unhealthy")

    def own(path, status):
        got, headers, body = get(alb.url, path)
        assert (got, headers["Server"], headers["Content-Type"]) == (status, "awselb/2.0", "text/html")
        assert f"<title>{status} ".encode() in body
        return headers["X-Labkit-Reason"]

    assert "no registered targets" in own("/empty", 503)
    assert "passed a health check" in own("/new", 503)
    assert "refused" in own("/gone", 502)  # every target failed: ALB fails open, and the target refuses
    assert "not answer with HTTP" in own("/garbage", 502)
    assert "idle timeout" in own("/slow", 504)


# -- where it answers, and that it stops ---------------------------------------------------

def test_the_listed_url_is_stable_and_nothing_answers_after_down(aws, targets):
    from labkit import localaws

    a = targets("a", 2)
    alb = Alb(aws.endpoint)
    ga = alb.group("ada-a", a)
    alb.elb.modify_listener(ListenerArn=alb.listener, DefaultActions=[forward(ga)])
    listed = subprocess.run([sys.executable, "-m", "labkit", "lb"], capture_output=True, text=True, timeout=60,
                            env={**os.environ})
    assert listed.returncode == 0, listed.stderr
    url = alb.url
    assert listed.stdout.split() == ["ada-web", alb.lb["DNSName"], "80", url]
    alb.wait_state(ga, "healthy")
    assert served_by(url) == "a"
    localaws.down()
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # the listener stopped with the local AWS
    localaws.up()  # replays the state: the listener comes back where it was
    assert alb.url == url
    until(lambda: get(url)[0] == 200, "the listener answering again")


def test_reset_stops_every_listener(aws, targets):
    from labkit import localaws

    alb = Alb(aws.endpoint)
    url = alb.url
    assert get(url)[0] == 404  # the default fixed response: it answers
    localaws.reset()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", int(url.rsplit(":", 1)[1]))) != 0
    listed = subprocess.run([sys.executable, "-m", "labkit", "lb"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "No load balancer listener answers" in listed.stdout


# -- a target inside a network namespace ------------------------------------------------------

INSIDE = textwrap.dedent('''
    import json, sys, threading, time
    from pathlib import Path
    import boto3
    from werkzeug.serving import make_server
    from labkit.localaws import netns
    from labkit.localaws.app import build_app
    sys.path.insert(0, sys.argv[2])
    from tests.test_elb import Alb, Target, get

    port = int(sys.argv[3])
    app = build_app(Path(sys.argv[1]), f"http://localhost:{port}")
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    out = {}
    try:
        inside = netns.create(f"t{port}", ["10.0.1.10"])
        target = Target("inside", "10.0.1.10", sock=netns.listen(inside, "10.0.1.10", 8080), port=8080)
        alb = Alb(f"http://localhost:{port}")
        group = alb.group("ada-inside", target)
        nowhere = alb.group("ada-nowhere")
        alb.elb.register_targets(TargetGroupArn=nowhere, Targets=[{"Id": "10.0.1.99", "Port": 8080}])
        alb.rule(1, [{"Field": "path-pattern", "Values": ["/nowhere"]}], {"Type": "forward", "TargetGroupArn": nowhere})
        alb.elb.modify_listener(ListenerArn=alb.listener, DefaultActions=[{"Type": "forward", "TargetGroupArn": group}])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = {g: [d["TargetHealth"] for d in alb.elb.describe_target_health(TargetGroupArn=g)["TargetHealthDescriptions"]]
                      for g in (group, nowhere)}
            if states[group][0]["State"] == "healthy" and states[nowhere][0]["State"] == "unhealthy":
                break
            time.sleep(0.05)
        out["states"] = states
        rows = json.loads((Path(sys.argv[1]).parent / "load-balancers.json").read_text())["serving"]
        status, _, body = get(rows[0]["url"], "/hello")
        out["status"], out["body"] = status, json.loads(body)
        out["nowhere"] = get(rows[0]["url"], "/nowhere")[0]
    finally:
        app.close()
        server.shutdown()
    out["left"] = [n for n in netns.listed() if n == f"labkit-t{port}"]
    out["mode"] = netns.mode()
    ours = lambda: [t.name for t in threading.enumerate() if t.name.startswith(("elb-", "netns-"))]
    deadline = time.monotonic() + 30  # threads end on their own after close: wait for them, boundedly
    while ours() and time.monotonic() < deadline:
        time.sleep(0.05)
    out["threads"] = ours()
    print(json.dumps(out))
''')


@pytest.mark.parametrize("mode", [
    pytest.param("namespaces", marks=pytest.mark.skipif(
        not netns.available(), reason="network namespaces need root and `ip netns` (loopback mode here)")),
    "loopback"])
def test_a_target_in_a_vpc_is_probed_and_served_where_it_lives(tmp_path, mode):
    """In its namespace where namespaces exist, at its published loopback port elsewhere; then close
    leaves no namespace and no thread of the load balancer."""
    from labkit.config import REPO_ROOT

    root = str(REPO_ROOT)
    env = {**os.environ, "LABKIT_CLOCK_SPEED": SPEED, "PYTHONPATH": root}
    if mode == "loopback":
        env["LABKIT_NETNS"] = "off"
    done = subprocess.run([sys.executable, "-c", INSIDE, str(tmp_path / "journal.ndjson"), root, str(_port())],
                          capture_output=True, text=True, timeout=180, cwd=root, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["states"] and (out["status"], out["body"]["target"]) == (200, "inside"), out
    assert out["states"][next(iter(out["states"]))][0]["State"] == "healthy"
    unreachable = [s for s in out["states"].values() if s[0]["State"] == "unhealthy"]
    assert unreachable and unreachable[0][0]["Reason"] == "Target.FailedHealthChecks"
    assert out["nowhere"] == 502  # 10.0.1.99 is nobody's: refused, nothing sent from the host
    assert out["left"] == []  # closing the local AWS removed its namespace
    assert (out["mode"], out["threads"]) == (mode, [])


# -- HTTPS listeners -------------------------------------------------------------------------

def _self_signed(name: str) -> tuple[bytes, bytes]:
    """A certificate for ``name`` and 127.0.0.1, and its key (PEM)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def test_an_https_listener_serves_tls_with_its_acm_certificate_and_policy(aws, targets):
    import ssl

    import boto3

    from labkit.balancers import url
    from labkit.target import Target as Where

    a = targets("a", 2)
    alb = Alb(aws.endpoint)
    ga = alb.group("ada-a", a)
    acm = boto3.client("acm", region_name="us-east-1", endpoint_url=aws.endpoint,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    cert, key = _self_signed("ada-web.local")
    cert_arn = acm.import_certificate(Certificate=cert, PrivateKey=key)["CertificateArn"]
    alb.elb.create_listener(LoadBalancerArn=alb.arn, Protocol="HTTPS", Port=443, SslPolicy="ELBSecurityPolicy-TLS13-1-3-2021-06",
                            Certificates=[{"CertificateArn": cert_arn}], DefaultActions=[forward(ga)])
    alb.wait_state(ga, "healthy")
    where = url(Where("local", prefix="ada", region="us-east-1"), "ada-web", 443)
    assert where.startswith("https://127.0.0.1:"), where
    trusted = ssl.create_default_context(cadata=cert.decode())  # verifies the chain and 127.0.0.1
    request = urllib.request.Request(where + "/hello")
    with urllib.request.urlopen(request, timeout=60, context=trusted) as answer:
        body = json.loads(answer.read())
    assert body["target"] == "a" and body["headers"]["X-Forwarded-Proto"] == "https"
    assert body["headers"]["X-Forwarded-Port"] == "443"
    old = ssl.create_default_context(cadata=cert.decode())
    old.maximum_version = ssl.TLSVersion.TLSv1_2  # below what the TLS 1.3 policy allows
    with pytest.raises((ssl.SSLError, urllib.error.URLError)):
        urllib.request.urlopen(where + "/hello", timeout=60, context=old)
    assert get(alb.url)[0] == 404  # the HTTP listener beside it still answers plain HTTP


def test_an_https_listener_with_a_requested_certificate_answers(aws, targets):
    import ssl

    import boto3

    from labkit.balancers import url
    from labkit.target import Target as Where

    a = targets("a", 2)
    alb = Alb(aws.endpoint)
    ga = alb.group("ada-a", a)
    acm = boto3.client("acm", region_name="us-east-1", endpoint_url=aws.endpoint,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    cert_arn = acm.request_certificate(DomainName="ada-web.example.com", ValidationMethod="DNS")["CertificateArn"]
    alb.elb.create_listener(LoadBalancerArn=alb.arn, Protocol="HTTPS", Port=443, Certificates=[
        {"CertificateArn": cert_arn}], DefaultActions=[forward(ga)])
    alb.wait_state(ga, "healthy")
    where = url(Where("local", prefix="ada", region="us-east-1"), "ada-web", 443)
    unverified = ssl._create_unverified_context()  # moto's requested certificate has no chain to trust
    with urllib.request.urlopen(where + "/hi", timeout=60, context=unverified) as answer:
        assert json.loads(answer.read())["target"] == "a"
