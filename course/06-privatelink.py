# %% [markdown]
# # Lab 06: PrivateLink, a service in a VPC of its own
#
# Lab 05 put the catalog service in a VPC of its own, `<prefix>-shop`,
# behind a load balancer. The orders service needs the catalog too, and it
# should not need the internet, a peering connection or a route into the
# catalog's network to get it. **AWS PrivateLink** gives it exactly one
# thing: an address in its own VPC that reaches the catalog service and
# nothing else. The catalog team (the **provider**) publishes the service
# behind a Network Load Balancer as a **VPC endpoint service**; the orders
# team (the **consumer**) creates an **interface endpoint** to it, and the
# provider decides whom to let in.
#
# You will build, step by step:
#
# 1. the provider's side: an internal Network Load Balancer in front of the catalog tasks;
# 2. the endpoint service: acceptance required, one allowed principal, a private DNS name, connection notifications;
# 3. the consumer's VPC for the orders service: private subnets in two zones, no way out, tight security groups;
# 4. the interface endpoint: requested, seen pending, accepted by the provider, available;
# 5. gateway endpoints for S3 and DynamoDB with policies that reach only the course's bucket and tables;
# 6. probes from inside the consumer's VPC: what answers, and what must not.
#
# Concepts: [Lab 06 in the course docs](../site/labs/06-privatelink.md).
# This lab starts from the end of lab 05; `python -m labkit start 06` puts
# the local AWS there. Locally each VPC is a network of its own (a network
# namespace where the machine allows it): nothing in the orders VPC can
# reach the catalog's VPC except through the endpoint.
#
# **On a live account PrivateLink bills by the hour**: the interface
# endpoint (about USD 0.01 an hour in each of its two zones, plus data) and
# the Network Load Balancer (about USD 0.0225 an hour) from creation until
# deletion; the hosted zone USD 0.50 a month; gateway endpoints are free.
# Remove everything with `python -m labkit cleanup --live` when you are done.

# %%
import json
import time

import checks
import labkit

t = labkit.target()
ec2 = t.client("ec2")
elb = t.client("elbv2")
ecs = t.client("ecs")
iam = t.client("iam")
sns = t.client("sns")
sqs = t.client("sqs")
route53 = t.client("route53")

provider_vpc_name = t.name("shop")  # lab 05's VPC, the catalog's
nlb_name = t.name("catalog-nlb")  # the load balancer, its target group and its security group
consumer_role_name = t.name("orders-consumer")
consumer_vpc_name = t.name("orders")
app_sg_name = t.name("orders-app")
endpoint_sg_name = t.name("catalog-endpoint")
events_name = t.name("catalog-connections")  # the SNS topic and the SQS queue
domain = f"{t.prefix}.shop.example"  # live: a domain you own, with a public hosted zone in this account
private_dns_name = f"catalog.{domain}"
service_port = 8080  # the catalog container's port (lab 05)
poll = 0.2 if t.is_local else 5
print("provider VPC:", provider_vpc_name, "| consumer VPC:", consumer_vpc_name, "| private DNS name:", private_dns_name)


def tagged(kind, name):
    return [{"ResourceType": kind, "Tags": [{"Key": "Name", "Value": name}] + t.tags("06")}]


def wait_for(what, ready, limit=60 if t.is_local else 900):
    started = time.monotonic()
    while not ready():
        if time.monotonic() - started > limit:
            raise TimeoutError(f"{what} did not happen within {limit} s.")
        time.sleep(poll)
    print(f"{what}: after {time.monotonic() - started:.1f} s")


def by_name(kind, name):
    """The id of the EC2 resource tagged Name=name (describe_vpcs, describe_subnets, ...), or None."""
    found = getattr(ec2, f"describe_{kind}")(Filters=[{"Name": "tag:Name", "Values": [name]}])
    items = next(v for k, v in found.items() if k != "ResponseMetadata")
    return items[0] if items else None


def security_group(vpc_id, name, description):
    found = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                  {"Name": "group-name", "Values": [name]}])["SecurityGroups"]
    if found:
        return found[0]["GroupId"]
    return ec2.create_security_group(GroupName=name, Description=description, VpcId=vpc_id,
                                     TagSpecifications=tagged("security-group", name))["GroupId"]


def admit(group_id, port, **source):
    """Let ``source`` (CidrIp=... or GroupId=...) reach TCP ``port`` in ``group_id``; a rule already there is fine."""
    pair = {"IpRanges": [{"CidrIp": source["CidrIp"]}]} if "CidrIp" in source else {
        "UserIdGroupPairs": [{"GroupId": source["GroupId"]}]}
    try:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, **pair}])
    except ec2.exceptions.ClientError as exc:
        if "Duplicate" not in str(exc):
            raise


# %% [markdown]
# ## 1. The provider: a Network Load Balancer in front of the catalog
#
# An endpoint service always sits on a **Network Load Balancer** (or a
# Gateway Load Balancer): PrivateLink carries TCP connections, and the NLB
# spreads them over its targets (see
# [Endpoint services and interface endpoints](../site/labs/06-privatelink.md#endpoint-services-and-interface-endpoints)).
# Nobody reaches this NLB directly, so it is **internal**, in the
# **private** subnets of `<prefix>-shop`.
#
# Create:
#
# - the security group `<prefix>-catalog-nlb`, admitting TCP 8080 from the VPC's own range
#   (10.50.0.0/16: the NLB's nodes and health checks), and let the tasks' group `<prefix>-catalog-tasks`
#   admit TCP 8080 from it: an NLB passes connections on from its own addresses;
# - the NLB `<prefix>-catalog-nlb`: `Type="network"`, `Scheme="internal"`, the two private subnets,
#   that security group;
# - the target group `<prefix>-catalog-nlb`: TCP 8080, target type `ip`, TCP health checks,
#   holding the catalog service's running tasks (their private addresses, port 8080). The ALB's
#   targets are registered by ECS itself; these you register, so keep them in step with the tasks
#   ECS runs (a task that fails is replaced, at a new address);
# - a TCP listener on port 8080 forwarding to it.
#
# Then wait until the targets are healthy.

# %%
provider_vpc = by_name("vpcs", provider_vpc_name)["VpcId"]
private_ids = [by_name("subnets", t.name("shop", f"private-{n}"))["SubnetId"] for n in (1, 2)]
task_sg = security_group(provider_vpc, t.name("catalog-tasks"), "catalog tasks")


def catalog_task_addresses():
    """The private IPv4 address of every running task of lab 05's catalog service."""
    cluster, service = t.name("shop"), t.name("catalog")
    arns = ecs.list_tasks(cluster=cluster, serviceName=service, desiredStatus="RUNNING")["taskArns"]
    tasks = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []
    return sorted(d["value"] for task in tasks if task["lastStatus"] == "RUNNING"
                  for a in task.get("attachments", []) for d in a["details"] if d["name"] == "privateIPv4Address")


# TODO: create nlb_sg (security_group + admit from 10.50.0.0/16 on service_port) and let task_sg admit service_port from it; create (or find) the internal NLB nlb_name (its description as `nlb`, its ARN as nlb_arn), the ip target group nlb_name (TCP, service_port) as tg_arn, and the TCP listener on service_port; then, until every running task is a healthy target, register catalog_task_addresses() on service_port and deregister addresses no task has any more.
# BEGIN SOLUTION
nlb_sg = security_group(provider_vpc, nlb_name, "catalog NLB: the VPC's own range on the service port")
admit(nlb_sg, service_port, CidrIp="10.50.0.0/16")
admit(task_sg, service_port, GroupId=nlb_sg)
found = [b for b in elb.describe_load_balancers()["LoadBalancers"] if b["LoadBalancerName"] == nlb_name]
nlb = found[0] if found else elb.create_load_balancer(
    Name=nlb_name, Type="network", Scheme="internal", Subnets=private_ids, SecurityGroups=[nlb_sg],
    Tags=t.tags("06"))["LoadBalancers"][0]
nlb_arn = nlb["LoadBalancerArn"]
groups = [g for g in elb.describe_target_groups()["TargetGroups"] if g["TargetGroupName"] == nlb_name]
tg_arn = groups[0]["TargetGroupArn"] if groups else elb.create_target_group(
    Name=nlb_name, Protocol="TCP", Port=service_port, VpcId=provider_vpc, TargetType="ip",
    HealthCheckProtocol="TCP", HealthCheckIntervalSeconds=10, HealthyThresholdCount=2,
    Tags=t.tags("06"))["TargetGroups"][0]["TargetGroupArn"]
if not elb.describe_listeners(LoadBalancerArn=nlb_arn)["Listeners"]:
    elb.create_listener(LoadBalancerArn=nlb_arn, Protocol="TCP", Port=service_port,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}])


def targets_healthy():
    """Register the tasks running now and take out addresses no task has any more (ECS replaces a task that
    fails), then whether every running task is a healthy target."""
    running = set(catalog_task_addresses())
    found = {d["Target"]["Id"]: d["TargetHealth"]["State"]
             for d in elb.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]}
    if running - set(found):
        elb.register_targets(TargetGroupArn=tg_arn, Targets=[{"Id": ip, "Port": service_port}
                                                             for ip in sorted(running - set(found))])
    gone = [ip for ip, state in found.items() if ip not in running and state != "draining"]
    if gone:
        elb.deregister_targets(TargetGroupArn=tg_arn, Targets=[{"Id": ip, "Port": service_port} for ip in gone])
    return bool(running) and all(found.get(ip) == "healthy" for ip in running)


wait_for("every running task a healthy target", targets_healthy)
# END SOLUTION
health = elb.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
print(nlb["DNSName"], [(d["Target"]["Id"], d["TargetHealth"]["State"]) for d in health])

# %%
checks.run("L06.01-L06.02")

# %% [markdown]
# ## 2. The endpoint service
#
# The endpoint service publishes the NLB to other VPCs under a **service
# name** (`com.amazonaws.vpce.<region>.vpce-svc-...`). Three settings
# decide who gets in (see
# [Acceptance and allowed principals](../site/labs/06-privatelink.md#acceptance-and-allowed-principals)):
#
# - **allowed principals**: who may even ask to connect. Name exactly the consumer's role,
#   `<prefix>-orders-consumer` (create it: trusted by this account), never `*`;
# - **acceptance required**: every request waits, `pendingAcceptance`, until the provider accepts it;
# - **connection notifications**: the provider hears of every request, acceptance, rejection and
#   deletion through an SNS topic (see [Connection notifications](../site/labs/06-privatelink.md#connection-notifications)).
#   The topic's policy must let `vpce.amazonaws.com` publish; subscribe an SQS queue so you can read the events.
#
# A **private DNS name** lets consumers call `catalog.<domain>` instead of
# the endpoint's generated names. AWS gives it out only once the provider
# proves it owns the domain: a TXT record in the domain's **public** DNS
# (see [Private DNS names](../site/labs/06-privatelink.md#private-dns-names)).
# Create the public hosted zone for `domain`, the TXT record the service
# asks for, then start the verification.

# %%
account = t.account_id
# TODO: create (or find) the role consumer_role_name (trusted by arn:aws:iam::<account>:root) as consumer_role_arn; create (or find, by its NLB) the endpoint service with acceptance required and the private DNS name as service_id and service_name; make consumer_role_arn its only allowed principal; create the public hosted zone for domain, UPSERT the TXT record the service's PrivateDnsNameConfiguration names, and start the private DNS verification; create the SNS topic and the SQS queue events_name (its URL as queue_url; the topic's policy lets vpce.amazonaws.com publish, the queue's lets the topic send), subscribe the queue, and add a connection notification for Connect, Accept, Reject and Delete.
# BEGIN SOLUTION
trust = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}]}
try:
    iam.create_role(RoleName=consumer_role_name, AssumeRolePolicyDocument=json.dumps(trust), Tags=t.tags("06"),
                    Description="the orders service, the catalog endpoint service's consumer")
except iam.exceptions.EntityAlreadyExistsException:
    pass
consumer_role_arn = iam.get_role(RoleName=consumer_role_name)["Role"]["Arn"]

services = [s for s in ec2.describe_vpc_endpoint_service_configurations()["ServiceConfigurations"]
            if nlb_arn in s.get("NetworkLoadBalancerArns", [])]
service = services[0] if services else ec2.create_vpc_endpoint_service_configuration(
    NetworkLoadBalancerArns=[nlb_arn], AcceptanceRequired=True, PrivateDnsName=private_dns_name,
    TagSpecifications=tagged("vpc-endpoint-service", t.name("catalog")))["ServiceConfiguration"]
service_id, service_name = service["ServiceId"], service["ServiceName"]
allowed = [p["Principal"] for p in ec2.describe_vpc_endpoint_service_permissions(ServiceId=service_id)[
    "AllowedPrincipals"]]
ec2.modify_vpc_endpoint_service_permissions(
    ServiceId=service_id, AddAllowedPrincipals=[consumer_role_arn],
    **({"RemoveAllowedPrincipals": others} if (others := [p for p in allowed if p != consumer_role_arn]) else {}))

zones = [z for z in route53.list_hosted_zones_by_name(DNSName=domain)["HostedZones"]
         if z["Name"] == f"{domain}." and not z["Config"].get("PrivateZone")]
zone_id = zones[0]["Id"] if zones else route53.create_hosted_zone(
    Name=domain, CallerReference=f"{t.name('catalog')}-{time.time_ns()}",
    HostedZoneConfig={"Comment": "the catalog's private DNS name, verified", "PrivateZone": False})["HostedZone"]["Id"]
route53.change_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id.rsplit("/", 1)[-1], AddTags=t.tags("06"))
dns = ec2.describe_vpc_endpoint_service_configurations(ServiceIds=[service_id])["ServiceConfigurations"][0][
    "PrivateDnsNameConfiguration"]
route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
    "Name": f"{dns['Name']}.{domain}", "Type": "TXT", "TTL": 300, "ResourceRecords": [{"Value": f'"{dns["Value"]}"'}]}}]})
if dns.get("State") != "verified":
    ec2.start_vpc_endpoint_service_private_dns_verification(ServiceId=service_id)

topic_arn = sns.create_topic(Name=events_name, Tags=t.tags("06"))["TopicArn"]
sns.set_topic_attributes(TopicArn=topic_arn, AttributeName="Policy", AttributeValue=json.dumps({
    "Version": "2012-10-17", "Statement": [{
        "Sid": "EndpointServiceEvents", "Effect": "Allow", "Principal": {"Service": "vpce.amazonaws.com"},
        "Action": "sns:Publish", "Resource": topic_arn,
        "Condition": {"StringEquals": {"aws:SourceAccount": account}}}]}))
queue_url = sqs.create_queue(QueueName=events_name, tags=t.tag_map("06"))["QueueUrl"]
queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps({
    "Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
        "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}}}]})})
sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
if not ec2.describe_vpc_endpoint_connection_notifications(
        Filters=[{"Name": "service-id", "Values": [service_id]}])["ConnectionNotificationSet"]:
    ec2.create_vpc_endpoint_connection_notification(ServiceId=service_id, ConnectionNotificationArn=topic_arn,
                                                    ConnectionEvents=["Connect", "Accept", "Reject", "Delete"])
# END SOLUTION
service = ec2.describe_vpc_endpoint_service_configurations(ServiceIds=[service_id])["ServiceConfigurations"][0]
print(service_name, "| acceptance required:", service["AcceptanceRequired"],
      "| private DNS:", service.get("PrivateDnsName"), service.get("PrivateDnsNameConfiguration", {}).get("State"))

# %%
checks.run("L06.03-L06.06")

# %% [markdown]
# ## 3. The consumer's VPC
#
# The orders service gets a VPC of its own, `<prefix>-orders`
# (10.60.0.0/16), with two **private** subnets in two zones and one route
# table: no internet gateway, no NAT gateway, nothing but the VPC's own
# range (see [Why a VPC of its own](../site/labs/06-privatelink.md#why-a-vpc-of-its-own)).
# Interface endpoints answer by DNS, so the VPC needs **DNS support** and
# **DNS hostnames** on.
#
# Two security groups (see [Security groups](../site/labs/06-privatelink.md#security-groups)):
# `<prefix>-orders-app` for the service's own network interfaces (it admits
# nothing), and `<prefix>-catalog-endpoint` for the endpoint, admitting TCP
# 8080 from `<prefix>-orders-app` only.

# %%
# TODO: create (or find) the VPC consumer_vpc_name (10.60.0.0/16) as consumer_vpc with DNS support and hostnames on; the route table t.name("orders", "private") as route_table; the subnets t.name("orders", "private-1"/"private-2") (10.60.10.0/24, 10.60.11.0/24) in the first two zones as consumer_subnets, associated with it; the security groups app_sg and endpoint_sg, endpoint_sg admitting service_port from app_sg only.
# BEGIN SOLUTION
found = by_name("vpcs", consumer_vpc_name)
consumer_vpc = found["VpcId"] if found else ec2.create_vpc(
    CidrBlock="10.60.0.0/16", TagSpecifications=tagged("vpc", consumer_vpc_name))["Vpc"]["VpcId"]
for attribute in ("EnableDnsSupport", "EnableDnsHostnames"):  # one attribute per call, as EC2 wants
    ec2.modify_vpc_attribute(VpcId=consumer_vpc, **{attribute: {"Value": True}})
found = by_name("route_tables", t.name("orders", "private"))
route_table = found["RouteTableId"] if found else ec2.create_route_table(
    VpcId=consumer_vpc, TagSpecifications=tagged("route-table", t.name("orders", "private")))["RouteTable"]["RouteTableId"]
zone_names = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
consumer_subnets = []
for n, zone in enumerate(zone_names):
    name = t.name("orders", f"private-{n + 1}")
    found = by_name("subnets", name)
    if found:
        consumer_subnets.append(found["SubnetId"])
        continue
    subnet = ec2.create_subnet(VpcId=consumer_vpc, CidrBlock=f"10.60.{10 + n}.0/24", AvailabilityZone=zone,
                               TagSpecifications=tagged("subnet", name))["Subnet"]["SubnetId"]
    ec2.associate_route_table(RouteTableId=route_table, SubnetId=subnet)
    consumer_subnets.append(subnet)
app_sg = security_group(consumer_vpc, app_sg_name, "the orders service's own network interfaces")
endpoint_sg = security_group(consumer_vpc, endpoint_sg_name, "the catalog endpoint: the orders service only")
admit(endpoint_sg, service_port, GroupId=app_sg)
# END SOLUTION
print("VPC", consumer_vpc, "| subnets", consumer_subnets, "| route table", route_table, "| app", app_sg,
      "| endpoint", endpoint_sg)

# %%
checks.run("L06.07-L06.08")

# %% [markdown]
# ## 4. The interface endpoint, and the provider's yes
#
# The consumer asks for an **interface endpoint** to the service name, in
# both subnets (one network interface per zone: the endpoint survives a
# zone's outage), behind `<prefix>-catalog-endpoint`. Because the service
# requires acceptance, the endpoint starts as **pendingAcceptance** and
# carries no traffic. The provider sees the request in
# `describe_vpc_endpoint_connections` (and in its queue), accepts it, and
# the endpoint becomes **available**. Ask for **private DNS** when you
# create it: once it is available, `catalog.<domain>` resolves inside the
# orders VPC to the endpoint's addresses (see
# [What the provider sees](../site/labs/06-privatelink.md#what-the-provider-sees)).

# %%
# TODO: create (or find, by its service name in consumer_vpc) the interface endpoint with private DNS as endpoint_id (tagged t.name("catalog-endpoint")); print its state; as the provider, accept it; wait until it is available.
# BEGIN SOLUTION
found = [e for e in ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [consumer_vpc]},
                                                        {"Name": "service-name", "Values": [service_name]}])[
    "VpcEndpoints"] if e["State"] not in ("deleted", "deleting", "rejected", "failed")]
endpoint = found[0] if found else ec2.create_vpc_endpoint(
    VpcEndpointType="Interface", VpcId=consumer_vpc, ServiceName=service_name, SubnetIds=consumer_subnets,
    SecurityGroupIds=[endpoint_sg], PrivateDnsEnabled=True,
    TagSpecifications=tagged("vpc-endpoint", t.name("catalog-endpoint")))["VpcEndpoint"]
endpoint_id = endpoint["VpcEndpointId"]
print("the consumer sees", endpoint_id, endpoint["State"])
pending = ec2.describe_vpc_endpoint_connections(Filters=[{"Name": "service-id", "Values": [service_id]},
                                                         {"Name": "vpc-endpoint-state", "Values": ["pendingAcceptance"]}])
print("the provider sees", [(c["VpcEndpointId"], c["VpcEndpointState"]) for c in pending["VpcEndpointConnections"]])
if any(c["VpcEndpointId"] == endpoint_id for c in pending["VpcEndpointConnections"]):
    ec2.accept_vpc_endpoint_connections(ServiceId=service_id, VpcEndpointIds=[endpoint_id])


def endpoint_state():
    return ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"][0]["State"]


wait_for("the endpoint available", lambda: endpoint_state().lower() == "available")
# END SOLUTION
endpoint = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"][0]
print(endpoint_id, endpoint["State"], "| private DNS:", endpoint.get("PrivateDnsEnabled"),
      "|", [d["DnsName"] for d in endpoint.get("DnsEntries", [])][:2])

# %% [markdown]
# What the provider heard: the connection notifications, read from the queue.

# %%
for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
    event = json.loads(json.loads(message["Body"])["Message"])  # SNS wraps the event in its own envelope
    print(event.get("eventType"), event.get("vpcEndpointId"), event.get("vpcEndpointState"))

# %%
checks.run("L06.09")

# %% [markdown]
# ## 5. Gateway endpoints for S3 and DynamoDB
#
# The orders service also reads the course's bucket and writes its tables.
# Without a way out of the VPC it cannot reach S3 or DynamoDB at all. A
# **gateway endpoint** is a route, not an interface: it adds the service's
# prefix list to a route table, costs nothing, and carries an **endpoint
# policy** that every request through it must pass, on top of the
# caller's own IAM policies (see
# [Gateway endpoints for S3 and DynamoDB](../site/labs/06-privatelink.md#gateway-endpoints-for-s3-and-dynamodb)).
# The default policy allows everything; replace it with one that reaches
# only what the course made:
#
# | endpoint | allows | on |
# | --- | --- | --- |
# | S3 | `s3:GetObject`, `s3:ListBucket` | lab 01's bucket `<prefix>-site-<account>` (the bucket, and its objects) |
# | DynamoDB | the item actions: `GetItem`, `PutItem`, `UpdateItem`, `DeleteItem`, `Query`, `Scan`, `BatchGetItem`, `BatchWriteItem`, `ConditionCheckItem` | the tables `<prefix>-orders` (lab 03), `<prefix>-orders-v2` and `<prefix>-stock` (lab 04), and their indexes |

# %%
bucket = t.name("site", account)
tables = [t.name("orders"), t.name("orders-v2"), t.name("stock")]
# TODO: set s3_policy and dynamodb_policy as the table above says (Principal "*"), then create (or update) the gateway endpoints com.amazonaws.<region>.s3 and .dynamodb in consumer_vpc on route_table with them, tagged.
# BEGIN SOLUTION
table_arns = [f"arn:aws:dynamodb:{t.region}:{account}:table/{name}" for name in tables]
s3_policy = {"Version": "2012-10-17", "Statement": [
    {"Sid": "CourseBucketOnly", "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"],
     "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]}
dynamodb_policy = {"Version": "2012-10-17", "Statement": [
    {"Sid": "CourseTablesOnly", "Effect": "Allow", "Principal": "*",
     "Action": [f"dynamodb:{a}" for a in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan",
                                         "BatchGetItem", "BatchWriteItem", "ConditionCheckItem")],
     "Resource": table_arns + [f"{arn}/index/*" for arn in table_arns]}]}
for kind, policy in (("s3", s3_policy), ("dynamodb", dynamodb_policy)):
    name = f"com.amazonaws.{t.region}.{kind}"
    found = [e for e in ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [consumer_vpc]},
                                                            {"Name": "service-name", "Values": [name]}])[
        "VpcEndpoints"] if e["State"].lower() not in ("deleted", "deleting")]
    if found:
        ec2.modify_vpc_endpoint(VpcEndpointId=found[0]["VpcEndpointId"], PolicyDocument=json.dumps(policy),
                                AddRouteTableIds=[r for r in [route_table] if r not in found[0]["RouteTableIds"]])
    else:
        ec2.create_vpc_endpoint(VpcEndpointType="Gateway", VpcId=consumer_vpc, ServiceName=name,
                                RouteTableIds=[route_table], PolicyDocument=json.dumps(policy),
                                TagSpecifications=tagged("vpc-endpoint", t.name("orders", kind)))
# END SOLUTION
routes = ec2.describe_route_tables(RouteTableIds=[route_table])["RouteTables"][0]["Routes"]
print([(r.get("DestinationPrefixListId") or r.get("DestinationCidrBlock"), r.get("GatewayId")) for r in routes])

# %%
checks.run("L06.10-L06.11")

# %% [markdown]
# ## 6. From inside the orders VPC
#
# Configuration tells you what should happen; a request from inside the
# VPC shows what does. `labkit.vpc.probe(vpc_id, url, security_group_ids=...)`
# sends one request from an address in the consumer's VPC carrying those
# security groups, and says what came back: `answered` (with the HTTP
# status), `refused`, `unreachable`, `timeout` or `unresolved`, and the
# mode it ran in (`namespaces`: a network namespace per VPC; `loopback`:
# the same rules enforced in the local AWS's fabric). Probe:
#
# - the catalog through its private DNS name, from `<prefix>-orders-app`: it answers;
# - the NLB's own DNS name: it lives in another VPC, so there is no route to it;
# - the endpoint from a source outside `<prefix>-orders-app`: its security group refuses it;
# - S3, for a bucket the endpoint policy does not name: 403.
#
# On a live account run the same requests from a task or function in the
# orders VPC (see [What the local AWS shows and what it cannot](../site/labs/06-privatelink.md#what-the-local-aws-shows-and-what-it-cannot)).

# %%
if t.is_local:
    import labkit.vpc

    probes = {
        "the catalog by its private DNS name": (f"http://{private_dns_name}:{service_port}/items", [app_sg]),
        "the NLB directly": (f"http://{nlb['DNSName']}:{service_port}/items", [app_sg]),
        "the endpoint, from outside orders-app": (f"http://{private_dns_name}:{service_port}/items", []),
        "S3, a bucket outside the policy": (f"http://s3.{t.region}.amazonaws.com/{t.name('elsewhere')}/x", [app_sg]),
    }
    for what, (url, groups) in probes.items():
        answer = labkit.vpc.probe(consumer_vpc, url, security_group_ids=groups)
        print(f"{what:40} {answer['outcome']:12} {answer.get('status') or '':4} ({answer['mode']}) {answer['detail']}")

# %%
checks.run("L06.12-L06.16")

# %% [markdown]
# ## What you built
#
# A catalog service that other VPCs reach through one published name and
# nothing else: the provider chose who may ask, saw the request, and said
# yes; the consumer's VPC has no internet gateway, no NAT and no route to
# the catalog's network, only an endpoint its own security group guards,
# and gateway endpoints that reach the course's bucket and tables and no
# one else's. PrivateLink compared with peering and a transit gateway:
# [PrivateLink, peering or a transit gateway](../site/labs/06-privatelink.md#privatelink-peering-or-transit-gateway).
#
# The whole lab, graded in one go (run it again after any change):

# %%
checks.run("06")

# %% [markdown]
# **On a live account, delete the endpoints now** (interface endpoints and
# the NLB bill by the hour): `python -m labkit cleanup --live` removes
# everything the course made. Locally, save your state:
# `python -m labkit save end-of-06`.
