"""The end state of lab 06 (PrivateLink), built with boto3 on a Target.

``build_lab06(t)`` builds what lab 06's configuration checks read, as the solution of
``course/06-privatelink.py`` does, on top of the pieces of lab 05 it uses (the VPC ``<prefix>-shop`` with its
private subnets and the tasks' security group): the NLB, its target group (holding ``TASK_IPS``, which the
tests give the grader as the catalog service's running tasks: in-process moto runs no task) and listener; the
consumer's role; the endpoint service with its permissions, private DNS name (verified through a public hosted
zone's TXT record) and connection notification to an SNS topic with a queue subscribed; the orders VPC, its
subnets, route table and security groups; the interface endpoint, accepted, with private DNS; the gateway
endpoints with their policies. Every keyword changes one thing; the returned dict holds names and ids.

``solution_state()`` is the real thing on the local AWS: lab 06's start state, then lab 06's solution.
"""
from __future__ import annotations

import json
import time

from checks import lab06
from labkit.target import Target

DEFAULT = object()
TASK_IPS = ("10.50.10.20", "10.50.11.20")
PORT = lab06.SERVICE_PORT


def _tags(t: Target, name: str, kind: str, lab: str = "06") -> list[dict]:
    return [{"ResourceType": kind, "Tags": t.tags(lab) + [{"Key": "Name", "Value": name}]}]


def _provider(t: Target) -> dict:
    """The pieces of lab 05 that lab 06 uses."""
    ec2 = t.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.50.0.0/16", TagSpecifications=_tags(t, t.name("shop"), "vpc", "05"))["Vpc"]["VpcId"]
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    private = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.50.{10 + n}.0/24", AvailabilityZone=zones[n],
                                 TagSpecifications=_tags(t, t.name("shop", f"private-{n + 1}"), "subnet", "05"))[
        "Subnet"]["SubnetId"] for n in (0, 1)]
    task_sg = ec2.create_security_group(GroupName=t.name("catalog-tasks"), Description="catalog tasks", VpcId=vpc)["GroupId"]
    return dict(provider_vpc=vpc, private=private, task_sg=task_sg, zones=zones)


def _admit(ec2, target_group: str, port: int = PORT, **source) -> None:
    pair = {"IpRanges": [{"CidrIp": source["cidr"]}]} if "cidr" in source else {
        "UserIdGroupPairs": [{"GroupId": source["group"]}]}
    ec2.authorize_security_group_ingress(GroupId=target_group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, **pair}])


def s3_policy(t: Target) -> dict:
    bucket = lab06.bucket_name(t)
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "CourseBucketOnly", "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"],
         "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]}


def dynamodb_policy(t: Target) -> dict:
    arns = [f"arn:aws:dynamodb:{t.region}:{t.account_id}:table/{n}" for n in lab06.table_names(t)]
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "CourseTablesOnly", "Effect": "Allow", "Principal": "*",
         "Action": [f"dynamodb:{a}" for a in lab06.DYNAMODB_ITEM_ACTIONS],
         "Resource": arns + [f"{a}/index/*" for a in arns]}]}


def build_lab06(
    t: Target,
    *,
    nlb_type: str = "network",
    scheme: str = "internal",
    nlb_subnets: str = "private",
    listener_protocol: str = "TCP",
    target_type: str = "ip",
    targets: tuple = TASK_IPS,
    acceptance: bool = True,
    principals: list | None = None,
    dns_name: object = DEFAULT,
    publish_txt: bool = True,
    notification: bool = True,
    events: tuple = lab06.EVENTS,
    topic_policy: dict | None = None,
    subscribe: bool = True,
    dns_hostnames: bool = True,
    one_zone: bool = False,
    internet_gateway: bool = False,
    endpoint_rules: list | None = None,
    endpoint: bool = True,
    accept: bool = True,
    endpoint_subnets: str = "both",
    private_dns: bool = True,
    gateways: tuple = ("s3", "dynamodb"),
    s3_doc: dict | None = None,
    dynamodb_doc: dict | None = None,
) -> dict:
    """Lab 06's end state. ``principals`` replaces the allowed principals (``{role}`` and ``{account}`` filled in);
    ``endpoint_rules`` replaces the endpoint group's ingress (``{app}`` filled in); ``nlb_subnets`` is "private" or
    "one"; ``endpoint_subnets`` "both" or "one"; ``gateways`` the gateway endpoints made; ``s3_doc``/``dynamodb_doc``
    replace their policies."""
    ec2, elb, iam, sns, sqs, r53 = (t.client(s) for s in ("ec2", "elbv2", "iam", "sns", "sqs", "route53"))
    state = _provider(t)
    state.update(prefix=t.prefix, account=t.account_id, nlb=lab06.nlb_name(t), dns=lab06.private_dns_name(t))
    # -- step 1: the NLB
    nlb_sg = ec2.create_security_group(GroupName=lab06.nlb_name(t), Description="catalog NLB",
                                       VpcId=state["provider_vpc"])["GroupId"]
    _admit(ec2, nlb_sg, cidr=lab06.PROVIDER_CIDR)
    _admit(ec2, state["task_sg"], group=nlb_sg)
    subnets = state["private"] if nlb_subnets == "private" else state["private"][:1]
    nlb = elb.create_load_balancer(Name=lab06.nlb_name(t), Type=nlb_type, Scheme=scheme, Subnets=subnets,
                                   Tags=t.tags("06"), **({"SecurityGroups": [nlb_sg]} if nlb_type == "application" else {}))[
        "LoadBalancers"][0]
    protocol = "HTTP" if nlb_type == "application" else "TCP"
    tg = elb.create_target_group(Name=lab06.nlb_name(t), Protocol=protocol, Port=PORT, VpcId=state["provider_vpc"],
                                 TargetType=target_type, Tags=t.tags("06"))["TargetGroups"][0]["TargetGroupArn"]
    if targets:
        elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": ip, "Port": PORT} for ip in targets])
    elb.create_listener(LoadBalancerArn=nlb["LoadBalancerArn"], Protocol=listener_protocol if nlb_type == "network"
                        else "HTTP", Port=PORT, DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    state.update(nlb_arn=nlb["LoadBalancerArn"], nlb_dns=nlb["DNSName"], tg=tg, nlb_sg=nlb_sg)
    # -- step 2: the endpoint service
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
        "AWS": f"arn:aws:iam::{t.account_id}:root"}, "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName=lab06.consumer_role(t), AssumeRolePolicyDocument=json.dumps(trust),
                           Tags=t.tags("06"))["Role"]["Arn"]
    state["role"] = role
    name = lab06.private_dns_name(t) if dns_name is DEFAULT else dns_name
    service = ec2.create_vpc_endpoint_service_configuration(
        NetworkLoadBalancerArns=[nlb["LoadBalancerArn"]], AcceptanceRequired=acceptance,
        **({"PrivateDnsName": name} if name else {}),
        TagSpecifications=_tags(t, t.name("catalog"), "vpc-endpoint-service"))["ServiceConfiguration"]
    service_id = service["ServiceId"]
    state.update(service_id=service_id, service_name=service["ServiceName"])
    allowed = [p.format(role=role, account=t.account_id) for p in (principals if principals is not None else ["{role}"])]
    if allowed:
        ec2.modify_vpc_endpoint_service_permissions(ServiceId=service_id, AddAllowedPrincipals=allowed)
    if name:
        domain = lab06.domain(t)
        zone = r53.create_hosted_zone(Name=domain, CallerReference=f"{domain}-{time.time_ns()}")["HostedZone"]["Id"]
        r53.change_tags_for_resource(ResourceType="hostedzone", ResourceId=zone.rsplit("/", 1)[-1], AddTags=t.tags("06"))
        config = ec2.describe_vpc_endpoint_service_configurations(ServiceIds=[service_id])["ServiceConfigurations"][0][
            "PrivateDnsNameConfiguration"]
        if publish_txt:
            r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "UPSERT",
                "ResourceRecordSet": {"Name": f"{config['Name']}.{domain}", "Type": "TXT", "TTL": 300,
                                      "ResourceRecords": [{"Value": f'"{config["Value"]}"'}]}}]})
        if config.get("State") != "verified":
            ec2.start_vpc_endpoint_service_private_dns_verification(ServiceId=service_id)
    topic = sns.create_topic(Name=lab06.events_name(t), Tags=t.tags("06"))["TopicArn"]
    policy = topic_policy or {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": lab06.VPCE_SERVICE}, "Action": "sns:Publish", "Resource": topic,
        "Condition": {"StringEquals": {"aws:SourceAccount": t.account_id}}}]}
    sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(policy))
    queue = sqs.create_queue(QueueName=lab06.events_name(t), tags=t.tag_map("06"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
        "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": topic}}}]})})
    if subscribe:
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    if notification:
        ec2.create_vpc_endpoint_connection_notification(ServiceId=service_id, ConnectionNotificationArn=topic,
                                                        ConnectionEvents=list(events))
    state.update(topic=topic, queue=queue)
    # -- step 3: the orders VPC
    vpc = ec2.create_vpc(CidrBlock="10.60.0.0/16", TagSpecifications=_tags(t, lab06.consumer_vpc_name(t), "vpc"))["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": dns_hostnames})
    table = ec2.create_route_table(VpcId=vpc, TagSpecifications=_tags(t, t.name("orders", "private"), "route-table"))[
        "RouteTable"]["RouteTableId"]
    consumer = []
    for n in (0, 1):
        zone = state["zones"][0 if one_zone else n]
        sid = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.60.{10 + n}.0/24", AvailabilityZone=zone,
                                TagSpecifications=_tags(t, t.name("orders", f"private-{n + 1}"), "subnet"))["Subnet"]["SubnetId"]
        ec2.associate_route_table(RouteTableId=table, SubnetId=sid)
        consumer.append(sid)
    if internet_gateway:
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    app = ec2.create_security_group(GroupName=lab06.app_group(t), Description="orders app", VpcId=vpc)["GroupId"]
    endpoint_sg = ec2.create_security_group(GroupName=lab06.endpoint_group(t), Description="catalog endpoint",
                                            VpcId=vpc)["GroupId"]
    rules = endpoint_rules if endpoint_rules is not None else [
        {"IpProtocol": "tcp", "FromPort": PORT, "ToPort": PORT, "UserIdGroupPairs": [{"GroupId": "{app}"}]}]
    if rules:
        ec2.authorize_security_group_ingress(GroupId=endpoint_sg, IpPermissions=json.loads(
            json.dumps(rules).replace("{app}", app)))
    state.update(consumer_vpc=vpc, consumer=consumer, route_table=table, app_sg=app, endpoint_sg=endpoint_sg)
    # -- step 4: the interface endpoint
    if endpoint:
        made = ec2.create_vpc_endpoint(
            VpcEndpointType="Interface", VpcId=vpc, ServiceName=service["ServiceName"],
            SubnetIds=consumer if endpoint_subnets == "both" else consumer[:1], SecurityGroupIds=[endpoint_sg],
            PrivateDnsEnabled=private_dns and bool(name) and dns_hostnames, TagSpecifications=_tags(t, t.name("catalog-endpoint"), "vpc-endpoint"))[
            "VpcEndpoint"]
        state["endpoint"] = made["VpcEndpointId"]
        if accept and made["State"] == "pendingAcceptance":
            ec2.accept_vpc_endpoint_connections(ServiceId=service_id, VpcEndpointIds=[made["VpcEndpointId"]])
    # -- step 5: gateway endpoints
    docs = {"s3": s3_doc or s3_policy(t), "dynamodb": dynamodb_doc or dynamodb_policy(t)}
    for kind in gateways:
        made = ec2.create_vpc_endpoint(VpcEndpointType="Gateway", VpcId=vpc, ServiceName=f"com.amazonaws.{t.region}.{kind}",
                                       RouteTableIds=[table], PolicyDocument=json.dumps(docs[kind]))["VpcEndpoint"]
        state[f"{kind}_endpoint"] = made["VpcEndpointId"]
    return state


def solution_state(progress=lambda _: None) -> None:
    """The local AWS as lab 06's solution leaves it: lab 06's start state, then its solution code."""
    from labkit.authoring import notebooks
    from labkit.starts import start

    start("06", progress)
    notebooks.run_solution(notebooks.lab("06"))
