"""PrivateLink's control plane on the local AWS: acceptance, allowed principals, connections,
notifications and private DNS verification, as AWS answers them (moto connects at once)."""
from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

OTHER = "111111111111"  # a second account, the consumer in the cross-account rows


def refused(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def client(local, service: str, account: str | None = None, **creds):
    made = boto3.client(service, region_name="us-east-1", endpoint_url=local.endpoint,
                        aws_access_key_id=creds.get("key", "testing"),
                        aws_secret_access_key=creds.get("secret", "testing"),
                        aws_session_token=creds.get("token"))
    if account:  # moto's way of saying which account a request is from
        made.meta.events.register("before-sign.*.*", lambda request, **_: request.headers.__setitem__(
            "x-moto-account-id", account))
    return made


@pytest.fixture
def ec2(local):
    return client(local, "ec2")


def provider(local, ec2, *, acceptance=True, dns_name=None) -> dict:
    """An NLB in a VPC of its own and an endpoint service on it."""
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    nlb = client(local, "elbv2").create_load_balancer(Name="ada-catalog", Type="network", Scheme="internal",
                                                      Subnets=[subnet])["LoadBalancers"][0]["LoadBalancerArn"]
    extra = {"PrivateDnsName": dns_name} if dns_name else {}
    return ec2.create_vpc_endpoint_service_configuration(NetworkLoadBalancerArns=[nlb], AcceptanceRequired=acceptance,
                                                         **extra)["ServiceConfiguration"]


def consumer(ec2, *, dns=True) -> tuple[str, str]:
    vpc = ec2.create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
    if dns:
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.2.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    return vpc, subnet


def endpoint(ec2, service: dict, where: tuple[str, str], **extra) -> dict:
    return ec2.create_vpc_endpoint(VpcEndpointType="Interface", VpcId=where[0], SubnetIds=[where[1]],
                                   ServiceName=service["ServiceName"], **extra)["VpcEndpoint"]


def state(ec2, endpoint_id: str) -> str:
    return ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"][0]["State"]


# -- acceptance ------------------------------------------------------------------------------

def test_an_endpoint_waits_for_acceptance_only_when_the_service_requires_it(local, ec2):
    where = consumer(ec2)
    strict = provider(local, ec2, acceptance=True)
    pending = endpoint(ec2, strict, where)
    assert pending["State"] == "pendingAcceptance" and state(ec2, pending["VpcEndpointId"]) == "pendingAcceptance"
    open_service = ec2.create_vpc_endpoint_service_configuration(
        NetworkLoadBalancerArns=strict["NetworkLoadBalancerArns"], AcceptanceRequired=False)["ServiceConfiguration"]
    assert endpoint(ec2, open_service, where)["State"] == "available"


def test_the_owner_accepts_and_rejects_connections(local, ec2):
    service, where = provider(local, ec2), consumer(ec2)
    first, second = endpoint(ec2, service, where)["VpcEndpointId"], endpoint(ec2, service, where)["VpcEndpointId"]
    rows = ec2.describe_vpc_endpoint_connections(
        Filters=[{"Name": "service-id", "Values": [service["ServiceId"]]}])["VpcEndpointConnections"]
    assert {(r["VpcEndpointId"], r["VpcEndpointState"]) for r in rows} == {(first, "pendingAcceptance"),
                                                                           (second, "pendingAcceptance")}
    assert rows[0]["VpcEndpointOwner"] == "123456789012" and rows[0]["NetworkLoadBalancerArns"]

    answer = ec2.accept_vpc_endpoint_connections(ServiceId=service["ServiceId"], VpcEndpointIds=[first, "vpce-0nope"])
    assert [(u["ResourceId"], u["Error"]["Code"]) for u in answer["Unsuccessful"]] == \
        [("vpce-0nope", "InvalidVpcEndpointId.NotFound")]
    assert state(ec2, first) == "available"
    again = ec2.accept_vpc_endpoint_connections(ServiceId=service["ServiceId"], VpcEndpointIds=[first])
    assert again["Unsuccessful"][0]["Error"]["Code"] == "InvalidStateTransition"

    assert ec2.reject_vpc_endpoint_connections(ServiceId=service["ServiceId"],
                                               VpcEndpointIds=[second])["Unsuccessful"] == []
    assert state(ec2, second) == "rejected"
    ec2.delete_vpc_endpoints(VpcEndpointIds=[first])
    by_state = ec2.describe_vpc_endpoint_connections(
        Filters=[{"Name": "vpc-endpoint-state", "Values": ["deleted", "rejected"]}])["VpcEndpointConnections"]
    assert {(r["VpcEndpointId"], r["VpcEndpointState"]) for r in by_state} == {(first, "deleted"), (second, "rejected")}
    assert refused(lambda: ec2.accept_vpc_endpoint_connections(ServiceId="vpce-svc-0nope", VpcEndpointIds=[first]))[0] \
        == "InvalidVpcEndpointServiceId.NotFound"
    # a rejected request can still be accepted, an accepted one rejected; a deleted one is past answering
    ec2.accept_vpc_endpoint_connections(ServiceId=service["ServiceId"], VpcEndpointIds=[second])
    assert state(ec2, second) == "available"
    ec2.reject_vpc_endpoint_connections(ServiceId=service["ServiceId"], VpcEndpointIds=[second])
    assert state(ec2, second) == "rejected"
    late = ec2.accept_vpc_endpoint_connections(ServiceId=service["ServiceId"], VpcEndpointIds=[first])
    assert late["Unsuccessful"][0]["Error"]["Code"] == "InvalidStateTransition" and state(ec2, first) == "deleted"


def test_only_the_services_owner_sees_and_answers_its_connections(local, ec2):
    service = provider(local, ec2)
    ec2.modify_vpc_endpoint_service_permissions(ServiceId=service["ServiceId"],
                                                AddAllowedPrincipals=[f"arn:aws:iam::{OTHER}:root"])
    theirs = client(local, "ec2", OTHER)
    vpc = theirs.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnet = theirs.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"][0]["SubnetId"]
    listed = theirs.describe_vpc_endpoint_services(ServiceNames=[service["ServiceName"]])["ServiceDetails"]
    assert [(d["ServiceId"], d["Owner"]) for d in listed] == [(service["ServiceId"], "123456789012")]
    stranger = client(local, "ec2", "222222222222")
    assert refused(lambda: stranger.describe_vpc_endpoint_services(ServiceNames=[service["ServiceName"]]))[0] == \
        "InvalidServiceName"
    asked = endpoint(theirs, service, (vpc, subnet))["VpcEndpointId"]
    assert theirs.describe_vpc_endpoint_connections()["VpcEndpointConnections"] == []
    assert refused(lambda: theirs.accept_vpc_endpoint_connections(ServiceId=service["ServiceId"],
                                                                  VpcEndpointIds=[asked]))[0] == \
        "InvalidVpcEndpointServiceId.NotFound"
    row = ec2.describe_vpc_endpoint_connections()["VpcEndpointConnections"][0]
    assert (row["VpcEndpointId"], row["VpcEndpointOwner"]) == (asked, OTHER)
    ec2.accept_vpc_endpoint_connections(ServiceId=service["ServiceId"], VpcEndpointIds=[asked])
    assert state(theirs, asked) == "available"


# -- who may connect -----------------------------------------------------------------------

def test_an_unknown_service_name_is_invalid(ec2):
    where = consumer(ec2)
    unknown = "com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0"
    code, message = refused(lambda: ec2.create_vpc_endpoint(VpcEndpointType="Interface", VpcId=where[0],
                                                            SubnetIds=[where[1]], ServiceName=unknown))
    assert (code, message) == ("InvalidServiceName", f"The Vpc Endpoint Service '{unknown}' does not exist")
    assert refused(lambda: ec2.create_vpc_endpoint(VpcEndpointType="Gateway", VpcId=where[0],
                                                   ServiceName="com.amazonaws.us-east-1.s4"))[0] == "InvalidServiceName"
    gateway = ec2.create_vpc_endpoint(VpcEndpointType="Gateway", VpcId=where[0], ServiceName="com.amazonaws.us-east-1.s3")
    assert gateway["VpcEndpoint"]["State"] == "available"


def role_session(local, role: str) -> object:
    """An EC2 client signed as a session of ``role`` in the other account (which may use EC2)."""
    iam = client(local, "iam", OTHER)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"}}]}
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName=role, PolicyName="ec2", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]}))
    creds = client(local, "sts", OTHER).assume_role(RoleArn=f"arn:aws:iam::{OTHER}:role/{role}",
                                                    RoleSessionName="orders")["Credentials"]
    return client(local, "ec2", key=creds["AccessKeyId"], secret=creds["SecretAccessKey"],
                  token=creds["SessionToken"])


def test_allowed_principals_decide_who_else_may_connect(local, ec2):
    service = provider(local, ec2)
    consumer_role, stranger = role_session(local, "ada-orders-consumer"), role_session(local, "ada-other")
    vpc = consumer_role.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnet = consumer_role.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"][0]["SubnetId"]
    where = (vpc, subnet)
    assert refused(lambda: endpoint(consumer_role, service, where))[0] == "InvalidServiceName"  # nobody allowed yet
    ec2.modify_vpc_endpoint_service_permissions(ServiceId=service["ServiceId"], AddAllowedPrincipals=[
        f"arn:aws:iam::{OTHER}:role/ada-orders-consumer"])
    assert endpoint(consumer_role, service, where)["State"] == "pendingAcceptance"
    code, message = refused(lambda: endpoint(stranger, service, where))
    assert code == "InvalidServiceName" and service["ServiceName"] in message
    # the owner's own account needs no permission
    assert endpoint(ec2, service, consumer(ec2))["State"] == "pendingAcceptance"


# -- private DNS -------------------------------------------------------------------------------

def test_a_private_dns_name_is_verified_through_a_public_zone_txt_record(local, ec2):
    service = provider(local, ec2, dns_name="catalog.ada.example.com")
    config = service["PrivateDnsNameConfiguration"]
    assert config["State"] == "pendingVerification" and config["Type"] == "TXT"
    assert config["Name"].startswith("_") and config["Value"].startswith("vpce:")
    route53 = client(local, "route53")

    def txt(zone_id: str, value: str):
        route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [{
            "Action": "UPSERT", "ResourceRecordSet": {"Name": f"{config['Name']}.ada.example.com", "Type": "TXT",
                                                      "TTL": 300, "ResourceRecords": [{"Value": f'"{value}"'}]}}]})

    def verify() -> str:
        ec2.start_vpc_endpoint_service_private_dns_verification(ServiceId=service["ServiceId"])
        return ec2.describe_vpc_endpoint_service_configurations(
            ServiceIds=[service["ServiceId"]])["ServiceConfigurations"][0]["PrivateDnsNameConfiguration"]["State"]

    private = route53.create_hosted_zone(Name="ada.example.com", CallerReference="p", HostedZoneConfig={
        "PrivateZone": True}, VPC={"VPCRegion": "us-east-1", "VPCId": ec2.describe_vpcs()["Vpcs"][0]["VpcId"]})
    txt(private["HostedZone"]["Id"], config["Value"])
    assert verify() == "failed"  # a private zone proves nothing about who owns the domain
    public = route53.create_hosted_zone(Name="ada.example.com", CallerReference="q")["HostedZone"]["Id"]
    txt(public, "vpce:not-the-value")
    assert verify() == "failed"
    txt(public, config["Value"])
    assert verify() == "verified"
    details = ec2.describe_vpc_endpoint_services(ServiceNames=[service["ServiceName"]])["ServiceDetails"][0]
    assert details["PrivateDnsNameVerificationState"] == "verified"

    def configuration() -> dict:
        return ec2.describe_vpc_endpoint_service_configurations(
            ServiceIds=[service["ServiceId"]])["ServiceConfigurations"][0]

    ec2.modify_vpc_endpoint_service_configuration(ServiceId=service["ServiceId"], PrivateDnsName="shop.ada.example.com")
    renamed = configuration()["PrivateDnsNameConfiguration"]
    assert renamed["State"] == "pendingVerification" and renamed["Name"] != config["Name"]  # a new name, a new record
    ec2.modify_vpc_endpoint_service_configuration(ServiceId=service["ServiceId"], RemovePrivateDnsName=True)
    assert "PrivateDnsName" not in configuration() and not configuration().get("PrivateDnsNameConfiguration")


def test_private_dns_on_an_endpoint_needs_the_vpcs_dns_attributes(local, ec2):
    named = provider(local, ec2, dns_name="catalog.ada.example.com")
    bare = consumer(ec2, dns=False)
    code, message = refused(lambda: endpoint(ec2, named, bare, PrivateDnsEnabled=True))
    assert code == "InvalidParameter" and "enableDnsSupport and enableDnsHostnames" in message and bare[0] in message
    assert endpoint(ec2, named, bare, PrivateDnsEnabled=False)["State"] == "pendingAcceptance"
    assert endpoint(ec2, named, consumer(ec2), PrivateDnsEnabled=True)["PrivateDnsEnabled"] is True
    plain = ec2.create_vpc_endpoint_service_configuration(NetworkLoadBalancerArns=named["NetworkLoadBalancerArns"],
                                                          AcceptanceRequired=True)["ServiceConfiguration"]
    code, message = refused(lambda: endpoint(ec2, plain, consumer(ec2), PrivateDnsEnabled=True))
    assert code == "InvalidParameter" and "does not provide a private DNS name" in message
    assert endpoint(ec2, plain, bare)["PrivateDnsEnabled"] is False  # nothing to enable, so no DNS attributes needed


# -- notifications -----------------------------------------------------------------------------

def queue_on_topic(local, allow_vpce: bool) -> tuple[str, str]:
    sns, sqs = client(local, "sns"), client(local, "sqs")
    topic = sns.create_topic(Name=f"ada-vpce-{allow_vpce}")["TopicArn"]
    if allow_vpce:
        sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "vpce.amazonaws.com"},
                                                    "Action": "SNS:Publish", "Resource": topic}]}))
    queue = sqs.create_queue(QueueName=f"ada-vpce-{allow_vpce}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    return topic, queue


def events_in(local, queue: str) -> list[tuple[str, str]]:
    messages = client(local, "sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    return [(m["eventType"], m["vpcEndpointState"]) for m in (json.loads(x["Body"]) for x in messages)]


def test_connection_notifications_reach_a_topic_that_lets_vpce_publish(local, ec2):
    service, where = provider(local, ec2), consumer(ec2)
    allowed, allowed_queue = queue_on_topic(local, True)
    silent, silent_queue = queue_on_topic(local, False)
    made = []
    for topic in (allowed, silent):
        made.append(ec2.create_vpc_endpoint_connection_notification(
            ServiceId=service["ServiceId"], ConnectionNotificationArn=topic,
            ConnectionEvents=["Connect", "Accept", "Reject", "Delete"])["ConnectionNotification"])
    assert made[0]["ConnectionNotificationState"] == "Enabled" and made[0]["ConnectionNotificationId"].startswith(
        "vpce-nfn-")
    first, second = endpoint(ec2, service, where)["VpcEndpointId"], endpoint(ec2, service, where)["VpcEndpointId"]
    ec2.accept_vpc_endpoint_connections(ServiceId=service["ServiceId"], VpcEndpointIds=[first])
    ec2.reject_vpc_endpoint_connections(ServiceId=service["ServiceId"], VpcEndpointIds=[second])
    ec2.delete_vpc_endpoints(VpcEndpointIds=[first])
    assert sorted(events_in(local, allowed_queue)) == sorted([("Connect", "pendingAcceptance"),
                                                              ("Connect", "pendingAcceptance"),
                                                              ("Accept", "available"), ("Reject", "rejected"),
                                                              ("Delete", "deleted")])
    assert events_in(local, silent_queue) == []  # its policy does not let vpce.amazonaws.com publish

    listed = ec2.describe_vpc_endpoint_connection_notifications(
        Filters=[{"Name": "connection-notification-arn", "Values": [allowed]}])["ConnectionNotificationSet"]
    assert [n["ConnectionNotificationId"] for n in listed] == [made[0]["ConnectionNotificationId"]]
    ec2.modify_vpc_endpoint_connection_notification(ConnectionNotificationId=made[0]["ConnectionNotificationId"],
                                                    ConnectionEvents=["Accept"])
    endpoint(ec2, service, where)
    assert events_in(local, allowed_queue) == []  # Connect is no longer asked for
    gone = ec2.delete_vpc_endpoint_connection_notifications(
        ConnectionNotificationIds=[made[0]["ConnectionNotificationId"], "vpce-nfn-0nope"])
    assert [(u["ResourceId"], u["Error"]["Code"]) for u in gone["Unsuccessful"]] == \
        [("vpce-nfn-0nope", "InvalidConnectionNotification")]
    assert refused(lambda: ec2.create_vpc_endpoint_connection_notification(
        ServiceId=service["ServiceId"], ConnectionNotificationArn=allowed, ConnectionEvents=["Explode"]))[0] == \
        "InvalidParameter"


# -- durability ---------------------------------------------------------------------------------

def test_a_restart_keeps_every_connection_state(local, ec2):
    from labkit import localaws

    service, where = provider(local, ec2, dns_name="catalog.ada.example.com"), consumer(ec2)
    ids = [endpoint(ec2, service, where)["VpcEndpointId"] for _ in range(3)]
    ec2.accept_vpc_endpoint_connections(ServiceId=service["ServiceId"], VpcEndpointIds=[ids[1]])
    ec2.reject_vpc_endpoint_connections(ServiceId=service["ServiceId"], VpcEndpointIds=[ids[2]])
    topic, _ = queue_on_topic(local, True)
    ec2.create_vpc_endpoint_connection_notification(ServiceId=service["ServiceId"], ConnectionNotificationArn=topic,
                                                    ConnectionEvents=["Accept"])
    dns = service["PrivateDnsNameConfiguration"]

    def kept(ec2) -> None:
        assert [state(ec2, i) for i in ids] == ["pendingAcceptance", "available", "rejected"]
        config = ec2.describe_vpc_endpoint_service_configurations()["ServiceConfigurations"][0]
        assert config["PrivateDnsNameConfiguration"] == dns
        notes = ec2.describe_vpc_endpoint_connection_notifications()["ConnectionNotificationSet"]
        assert [n["ConnectionNotificationArn"] for n in notes] == [topic]

    localaws.down()
    localaws.up()  # the journal replayed
    kept(client(local, "ec2"))
    localaws.save("privatelink")  # a checkpoint: moto's objects pickled, with what they carry
    localaws.reset()
    localaws.restore("privatelink")
    kept(client(local, "ec2"))


def test_the_helpers_name_an_endpoints_service_and_its_verified_dns(aws):
    """What the data plane reads: in-process moto, the same patches."""
    from moto.ec2.models import ec2_backends

    from labkit.localaws.fidelity.privatelink import private_dns_verified, service_of

    ec2, elbv2 = aws.client("ec2"), aws.client("elbv2")
    subnet = ec2.describe_subnets()["Subnets"][0]
    nlb = elbv2.create_load_balancer(Name="ada-catalog", Type="network", Subnets=[subnet["SubnetId"]])
    service = ec2.create_vpc_endpoint_service_configuration(
        NetworkLoadBalancerArns=[nlb["LoadBalancers"][0]["LoadBalancerArn"]],
        PrivateDnsName="catalog.ada.example.com")["ServiceConfiguration"]
    made = ec2.create_vpc_endpoint(VpcEndpointType="Interface", VpcId=subnet["VpcId"], SubnetIds=[subnet["SubnetId"]],
                                   ServiceName=service["ServiceName"])["VpcEndpoint"]
    gateway = ec2.create_vpc_endpoint(VpcEndpointType="Gateway", VpcId=subnet["VpcId"],
                                      ServiceName="com.amazonaws.us-east-1.s3")["VpcEndpoint"]
    backend = ec2_backends["123456789012"]["us-east-1"]
    found = service_of(backend.vpc_end_points[made["VpcEndpointId"]])
    assert found.id == service["ServiceId"] and service_of(backend.vpc_end_points[gateway["VpcEndpointId"]]) is None
    assert private_dns_verified(found) is False
    found.labkit_private_dns = {**found.labkit_private_dns, "state": "verified"}
    assert private_dns_verified(found) is True
