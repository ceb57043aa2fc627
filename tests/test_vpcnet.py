"""Probes from inside a VPC (``labkit.vpc.probe``), against a real local AWS, in both network modes.

A provider VPC holds an internal NLB in front of a real HTTP target; a consumer VPC holds an interface
endpoint to its endpoint service, security groups, and gateway endpoints for S3 and DynamoDB. Every
test runs once with each VPC a network namespace (as root) and once in loopback mode.
"""
from __future__ import annotations

import json
import subprocess

import pytest

from labkit.errors import LabkitError
from labkit.localaws import netns
from labkit.vpc import probe
from tests.localaws import local_aws_at_speed
from tests.test_elb import SPEED, Target, until

FAST = {"HealthCheckIntervalSeconds": 5, "HealthCheckTimeoutSeconds": 2, "HealthyThresholdCount": 2,
        "UnhealthyThresholdCount": 2}
_ns_process, ns_server = local_aws_at_speed(SPEED, "ns_server")
_lo_process, lo_server = local_aws_at_speed(SPEED, "lo_server", {"LABKIT_NETNS": "off"})
MODES = ["namespaces", "loopback"]


@pytest.fixture(params=MODES)
def world(request):
    if request.param == "namespaces" and not netns.available():
        pytest.skip("network namespaces need root and `ip netns` here; loopback mode is tested")
    server = request.getfixturevalue("ns_server" if request.param == "namespaces" else "lo_server")
    target = Target("catalog", "127.0.0.7")
    built = World(server.endpoint, target)
    built.mode = request.param
    yield built
    target.close()


class World:
    def __init__(self, endpoint: str, target: Target):
        import boto3

        def client(service):
            return boto3.client(service, region_name="us-east-1", endpoint_url=endpoint,
                                aws_access_key_id="testing", aws_secret_access_key="testing")

        self.endpoint = endpoint
        self.ec2, self.elb, self.s3, self.ddb = client("ec2"), client("elbv2"), client("s3"), client("dynamodb")
        ec2, elb = self.ec2, self.elb
        # the provider: a VPC of its own, an internal NLB, the target behind it
        self.provider = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=self.provider, CidrBlock=f"10.0.{i}.0/24",
                                     AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"] for i, z in ((1, "a"), (2, "b"))]
        lb = elb.create_load_balancer(Name="ada-catalog", Type="network", Scheme="internal", Subnets=subnets)
        self.lb = lb["LoadBalancers"][0]
        group = elb.create_target_group(Name="ada-catalog", Protocol="TCP", Port=80, VpcId=self.provider,
                                        TargetType="ip", **FAST)["TargetGroups"][0]["TargetGroupArn"]
        elb.register_targets(TargetGroupArn=group, Targets=[target.spec])
        elb.create_listener(LoadBalancerArn=self.lb["LoadBalancerArn"], Protocol="TCP", Port=80,
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": group}])
        service = ec2.create_vpc_endpoint_service_configuration(
            NetworkLoadBalancerArns=[self.lb["LoadBalancerArn"]], AcceptanceRequired=False)["ServiceConfiguration"]
        # the consumer: two subnets, an application group, a group for the endpoint, a stranger
        self.vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
        self.subnets = [ec2.create_subnet(VpcId=self.vpc, CidrBlock=f"10.1.{i}.0/24",
                                          AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
                        for i, z in ((1, "a"), (2, "b"))]
        self.app = ec2.create_security_group(GroupName="app", Description="app", VpcId=self.vpc)["GroupId"]
        self.stranger = ec2.create_security_group(GroupName="stranger", Description="x", VpcId=self.vpc)["GroupId"]
        guard = ec2.create_security_group(GroupName="endpoint", Description="endpoint", VpcId=self.vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=guard, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": self.app}]}])
        self.interface = ec2.create_vpc_endpoint(
            VpcEndpointType="Interface", VpcId=self.vpc, ServiceName=service["ServiceName"], SubnetIds=self.subnets,
            SecurityGroupIds=[guard])["VpcEndpoint"]
        self.name = self.interface["DnsEntries"][0]["DnsName"]
        until(lambda: elb.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"][0]
              ["TargetHealth"]["State"] == "healthy", "a healthy target")

    def probe(self, url: str, groups=None, **kwargs) -> dict:
        return probe(self.vpc, url, [self.app] if groups is None else groups, endpoint=self.endpoint, **kwargs)


def test_the_service_answers_through_its_endpoint_from_an_admitted_group(world):
    got = world.probe(f"http://{world.name}/items?page=2")
    assert got["outcome"] == "answered" and got["status"] == 200, got
    assert json.loads(got["body"])["target"] == "catalog" and json.loads(got["body"])["path"] == "/items?page=2"
    enis = world.ec2.describe_network_interfaces(NetworkInterfaceIds=world.interface["NetworkInterfaceIds"])
    addresses = {e["SubnetId"]: e["PrivateIpAddress"] for e in enis["NetworkInterfaces"]}
    assert got["address"] == addresses[world.subnets[0]] and got["address"].startswith("10.1.1."), (got, addresses)
    assert addresses[world.subnets[1]].startswith("10.1.2.")  # each interface in its own subnet, as on AWS
    assert got["source"] == "10.1.1.254" and got["mode"] == world.mode
    other = world.probe(f"http://{world.name}/", subnet_id=world.subnets[1])
    assert other["outcome"] == "answered" and other["address"] == addresses[world.subnets[1]], other


def test_a_source_outside_the_endpoint_security_group_is_refused(world):
    for groups in ([world.stranger], []):
        got = world.probe(f"http://{world.name}/", groups)
        assert got["outcome"] == "refused", got
        assert world.interface["VpcEndpointId"] in got["detail"] and "on TCP port 80" in got["detail"], got
    wrong_port = world.probe(f"http://{world.name}:8080/")
    assert wrong_port["outcome"] == "refused", wrong_port


def test_the_provider_load_balancer_and_anything_else_cannot_be_reached_directly(world):
    direct = world.probe(f"http://{world.lb['DNSName']}/")
    assert direct["outcome"] == "unreachable" and direct["address"].startswith("10.0."), direct
    for url in ("http://10.0.1.10/", "http://8.8.8.8/", "http://192.168.1.1:22/", "http://10.1.1.99/"):
        got = world.probe(url, timeout=2)
        assert got["outcome"] == "unreachable", got
    own = world.probe("http://127.0.0.7/")  # the target's loopback address is the host's, never reached
    assert own["outcome"] == "refused" and "inside the VPC" in own["detail"], own
    assert world.probe("http://nothing.example.internal/")["outcome"] == "unresolved"


def test_gateway_endpoints_route_and_apply_their_policy(world):
    ec2, s3, ddb = world.ec2, world.s3, world.ddb
    for bucket in ("ada-assets", "ada-other"):
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="hello.txt", Body=b"hello " + bucket.encode())
    for table in ("ada-orders", "ada-secrets"):
        ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST")
        ddb.put_item(TableName=table, Item={"id": {"S": "1"}})
    url = "https://s3.us-east-1.amazonaws.com/ada-assets/hello.txt"
    assert world.probe(url)["outcome"] == "unreachable"  # no gateway endpoint: no way out of the VPC
    main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [world.vpc]},
                                              {"Name": "association.main", "Values": ["true"]}])["RouteTables"][0]
    only = lambda action, arn: json.dumps({"Statement": [  # noqa: E731
        {"Effect": "Allow", "Principal": "*", "Action": action, "Resource": arn}]})
    ec2.create_vpc_endpoint(VpcEndpointType="Gateway", VpcId=world.vpc, ServiceName="com.amazonaws.us-east-1.s3",
                            RouteTableIds=[main["RouteTableId"]],
                            PolicyDocument=only("s3:GetObject", "arn:aws:s3:::ada-assets/*"))
    got = world.probe(url)
    assert got["outcome"] == "answered" and got["status"] == 200 and got["body"] == "hello ada-assets", got
    virtual = world.probe("https://ada-assets.s3.us-east-1.amazonaws.com/hello.txt")
    assert virtual["status"] == 200, virtual
    other = world.probe("https://s3.us-east-1.amazonaws.com/ada-other/hello.txt")
    assert other["status"] == 403 and "AccessDenied" in other["body"], other
    listing = world.probe("https://s3.us-east-1.amazonaws.com/ada-assets")
    assert listing["status"] == 403 and "s3:ListBucket" in listing["detail"], listing
    write = world.probe(url, method="PUT", body="x")
    assert write["status"] == 403, write  # PutObject: outside the policy
    # a subnet whose own route table has no route to the endpoint cannot reach S3
    table = ec2.create_route_table(VpcId=world.vpc)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=table, SubnetId=world.subnets[1])
    assert world.probe(url, subnet_id=world.subnets[1])["outcome"] == "unreachable"
    # DynamoDB: only the table the policy names
    ec2.create_vpc_endpoint(VpcEndpointType="Gateway", VpcId=world.vpc, ServiceName="com.amazonaws.us-east-1.dynamodb",
                            RouteTableIds=[main["RouteTableId"]],
                            PolicyDocument=only("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:123456789012:table/ada-orders"))
    ask = lambda table: world.probe(  # noqa: E731
        "https://dynamodb.us-east-1.amazonaws.com/", method="POST",
        headers={"X-Amz-Target": "DynamoDB_20120810.GetItem", "Content-Type": "application/x-amz-json-1.0"},
        body=json.dumps({"TableName": table, "Key": {"id": {"S": "1"}}}))
    allowed = ask("ada-orders")
    assert allowed["status"] == 200 and json.loads(allowed["body"])["Item"]["id"] == {"S": "1"}, allowed
    denied = ask("ada-secrets")
    assert denied["status"] == 403 and "AccessDeniedException" in denied["body"], denied
    assert "no VPC endpoint policy allows the dynamodb:GetItem action" in denied["body"]


def test_a_changed_security_group_is_read_on_the_next_probe(world):
    url = f"http://{world.name}/"
    assert world.probe(url, [world.stranger])["outcome"] == "refused"
    guard = world.interface["Groups"][0]["GroupId"]
    world.ec2.authorize_security_group_ingress(GroupId=guard, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.1.1.0/24"}]}])
    assert world.probe(url, [world.stranger])["outcome"] == "answered"  # the subnet's range is admitted now
    assert world.probe(url, [world.stranger], subnet_id=world.subnets[1])["outcome"] == "refused"


def test_bad_probes_get_one_sentence(world):
    cases = [
        ({"vpc_id": "vpc-00000000"}, "does not exist"),
        ({"subnet_id": "subnet-00000000"}, "is not a subnet of"),
        ({"groups": ["sg-00000000"]}, "is not a security group of"),
        ({"url": "ftp://x/"}, "is not an http:// or https:// URL"),
        ({"method": "PATCH"}, "not PATCH"),
        ({"timeout": 0}, "timeout must be"),
    ]
    for change, words in cases:
        vpc = change.get("vpc_id", world.vpc)
        kwargs = {k: v for k, v in change.items() if k in ("subnet_id", "method", "timeout")}
        with pytest.raises(LabkitError, match=words):
            probe(vpc, change.get("url", f"http://{world.name}/"), change.get("groups", [world.app]),
                  endpoint=world.endpoint, **kwargs)


def test_namespaces_are_made_on_the_first_probe_and_gone_after_reset(world, request):
    from labkit import localaws

    def ours():
        return [n for n in netns.listed() if n.startswith("labkit-vpc-")]

    before = ours()
    assert world.probe(f"http://{world.name}/")["outcome"] == "answered"
    made = [n for n in ours() if n not in before]
    assert len(made) == (1 if world.mode == "namespaces" else 0), made
    localaws.reset()
    assert not [n for n in ours() if n in made]
    if world.mode == "namespaces":
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
        assert not any(n in listed for n in made), listed


SEES = '''
import json, sys, threading
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from werkzeug.serving import make_server
sys.path.insert(0, sys.argv[2])
from labkit.localaws import netns
from labkit.localaws.app import build_app
from labkit.vpc import probe
from tests.test_elb import Target
from tests.test_vpcnet import World

port = int(sys.argv[3])
app = build_app(Path(sys.argv[1]), f"http://localhost:{port}")
server = make_server("127.0.0.1", port, app, threaded=True)
threading.Thread(target=server.serve_forever, daemon=True).start()


class Peer(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        data = json.dumps({"peer": self.client_address[0]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Inside(Target):  # a target of the provider VPC, in a namespace of its own, as an ECS task is
    def __init__(self, namespace, address):
        sock = netns.listen(namespace, address, 8080)
        self.server = ThreadingHTTPServer((address, 0), Peer, bind_and_activate=False)
        self.server.socket.close()
        self.server.socket = sock
        self.server.daemon_threads = True
        self.address, self.port, self.name = address, 8080, "inside"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


task = netns.create(sys.argv[4], ["10.0.1.77"])
out = {}
try:
    world = World(f"http://localhost:{port}", Inside(task, "10.0.1.77"))
    got = world.probe(f"http://{world.name}/")
    nlb = sorted(app.extension("elb").addresses(world.lb["LoadBalancerArn"]).values())
    out = {"got": got, "nlb": nlb}
finally:
    app.close()
    server.shutdown()
print(json.dumps(out))
'''


def test_the_provider_sees_the_load_balancer_not_the_consumer(tmp_path):
    """Behind PrivateLink the target's peer is the NLB's own address (here a target in its own namespace)."""
    import os
    import sys

    from labkit.config import REPO_ROOT
    from tests.localaws import _port

    if not netns.available():
        pytest.skip("needs network namespaces (root and `ip netns`)")
    root = str(REPO_ROOT)
    env = {**os.environ, "LABKIT_CLOCK_SPEED": SPEED, "PYTHONPATH": root, "LABKIT_HOME": str(tmp_path / "home")}
    name = f"sees-{os.getpid()}"
    done = subprocess.run([sys.executable, "-c", SEES, str(tmp_path / "journal.ndjson"), root, str(_port()), name],
                          capture_output=True, text=True, timeout=180, cwd=root, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    got = out["got"]
    assert got["outcome"] == "answered" and got["mode"] == "namespaces", got
    assert json.loads(got["body"])["peer"] in out["nlb"] and got["source"] not in out["nlb"], out
    assert f"labkit-{name}" not in netns.listed()  # the local AWS's close removed every namespace it made


def test_the_endpoint_connects_only_once_accepted_and_private_dns_only_once_verified(world):
    ec2 = world.ec2
    service = ec2.create_vpc_endpoint_service_configuration(
        NetworkLoadBalancerArns=[world.lb["LoadBalancerArn"]], AcceptanceRequired=True,
        PrivateDnsName="catalog.ada.example.com")["ServiceConfiguration"]
    guard = world.interface["Groups"][0]["GroupId"]
    for attribute in ("EnableDnsSupport", "EnableDnsHostnames"):
        ec2.modify_vpc_attribute(VpcId=world.vpc, **{attribute: {"Value": True}})
    asked = ec2.create_vpc_endpoint(VpcEndpointType="Interface", VpcId=world.vpc, ServiceName=service["ServiceName"],
                                    SubnetIds=world.subnets, SecurityGroupIds=[guard],
                                    PrivateDnsEnabled=True)["VpcEndpoint"]
    assert asked["State"] == "pendingAcceptance"
    name = f"http://{asked['DnsEntries'][0]['DnsName']}/"
    pending = world.probe(name)
    assert pending["outcome"] == "refused" and "pendingAcceptance" in pending["detail"], pending
    ec2.accept_vpc_endpoint_connections(ServiceId=service["ServiceId"], VpcEndpointIds=[asked["VpcEndpointId"]])
    assert world.probe(name)["outcome"] == "answered"
    assert world.probe("http://catalog.ada.example.com/")["outcome"] == "unresolved"  # not verified yet
    config = service["PrivateDnsNameConfiguration"]
    route53 = boto3_client(world.endpoint, "route53")
    zone = route53.create_hosted_zone(Name="ada.example.com", CallerReference="z")["HostedZone"]["Id"]
    route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{
        "Action": "UPSERT", "ResourceRecordSet": {"Name": f"{config['Name']}.ada.example.com", "Type": "TXT",
                                                  "TTL": 300, "ResourceRecords": [{"Value": f'"{config["Value"]}"'}]}}]})
    ec2.start_vpc_endpoint_service_private_dns_verification(ServiceId=service["ServiceId"])
    verified = world.probe("http://catalog.ada.example.com/")
    assert verified["outcome"] == "answered" and verified["status"] == 200, verified
    ec2.reject_vpc_endpoint_connections(ServiceId=service["ServiceId"], VpcEndpointIds=[asked["VpcEndpointId"]])
    assert world.probe("http://catalog.ada.example.com/")["outcome"] == "refused"  # rejected: disconnected


def boto3_client(endpoint: str, service: str):
    import boto3

    return boto3.client(service, region_name="us-east-1", endpoint_url=endpoint,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_deleting_the_vpc_removes_its_namespace(world):
    before = set(netns.listed())
    assert world.probe(f"http://{world.name}/")["outcome"] == "answered"
    made = [n for n in netns.listed() if n.startswith("labkit-vpc-") and n not in before]
    assert len(made) == (1 if world.mode == "namespaces" else 0), made
    ec2 = world.ec2
    ec2.delete_vpc_endpoints(VpcEndpointIds=[world.interface["VpcEndpointId"]])
    for subnet in world.subnets:
        ec2.delete_subnet(SubnetId=subnet)
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [world.vpc]}])["SecurityGroups"]
    for group in groups:
        if group["IpPermissions"]:
            ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=group["IpPermissions"])
    for group in groups:
        if group["GroupName"] != "default":
            ec2.delete_security_group(GroupId=group["GroupId"])
    ec2.delete_vpc(VpcId=world.vpc)
    assert not [n for n in netns.listed() if n in made]
