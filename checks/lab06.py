"""Lab 06 (PrivateLink): the provider's NLB and endpoint service, the consumer's VPC and endpoints, probes from inside.

Configuration checks read EC2, ELBv2, ECS, IAM, SNS, SQS and Route 53. Behaviour checks send requests from
inside the consumer's VPC with ``labkit.vpc.probe`` (the local AWS only: each says which mode graded it,
``namespaces`` or ``loopback``); on a live account they SKIP.
"""
from __future__ import annotations

from labkit.policyeval import Principal, evaluate, named_principals
from labkit.target import Target

from . import api, iam
from .aws import absent, admits_only
from .core import Outcome, check, failed, passed, skipped

DOCS = "labs/06-privatelink.md"
SERVICE_PORT = 8080  # the catalog container's port (lab 05); the NLB listens on it too
PROVIDER_CIDR = "10.50.0.0/16"
EVENTS = ("Connect", "Accept", "Reject", "Delete")
VPCE_SERVICE = "vpce.amazonaws.com"
GONE = ("deleted", "deleting", "rejected", "failed", "expired")
DYNAMODB_ITEM_ACTIONS = ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
                         "BatchWriteItem", "ConditionCheckItem")
PROBE_NOTE = ("The probe from inside the orders VPC runs on the local AWS only; on a live account send the same "
              "request from a task or function in that VPC")


# -- names ----------------------------------------------------------------------------------------

def nlb_name(t: Target) -> str:
    return t.name("catalog-nlb")


def consumer_role(t: Target) -> str:
    return t.name("orders-consumer")


def consumer_vpc_name(t: Target) -> str:
    return t.name("orders")


def app_group(t: Target) -> str:
    return t.name("orders-app")


def endpoint_group(t: Target) -> str:
    return t.name("catalog-endpoint")


def events_name(t: Target) -> str:
    return t.name("catalog-connections")


def domain(t: Target) -> str:
    return f"{t.prefix}.shop.example"


def private_dns_name(t: Target) -> str:
    return f"catalog.{domain(t)}"


def bucket_name(t: Target) -> str:
    return t.name("site", t.account_id)  # lab 01's


def table_names(t: Target) -> list[str]:
    return [t.name("orders"), t.name("orders-v2"), t.name("stock")]  # labs 03 and 04


# -- lookups --------------------------------------------------------------------------------------

def _vpc(t: Target, name: str) -> dict | None:
    def look():
        found = t.client("ec2").describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [name]}])["Vpcs"]
        return found[0] if found else None

    return t.memo(f"l06.vpc.{name}", look)


def _subnets(t: Target, vpc_name: str) -> list[dict]:
    """The private subnets ``<vpc_name>-private-1`` and ``-2``."""
    def look():
        found = []
        for n in (1, 2):
            found += t.client("ec2").describe_subnets(
                Filters=[{"Name": "tag:Name", "Values": [t.name(vpc_name.removeprefix(f"{t.prefix}-"), f"private-{n}")]}]
            )["Subnets"]
        return found

    return t.memo(f"l06.subnets.{vpc_name}", look)


def _group(t: Target, vpc_name: str, name: str) -> dict | None:
    vpc = _vpc(t, vpc_name)
    if vpc is None:
        return None
    return t.memo(f"l06.sg.{name}", lambda: next(iter(t.client("ec2").describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [vpc["VpcId"]]}, {"Name": "group-name", "Values": [name]}])["SecurityGroups"]), None))


def _nlb(t: Target) -> dict | None:
    def look():
        found = absent(lambda: t.client("elbv2").describe_load_balancers(Names=[nlb_name(t)]), "LoadBalancerNotFound")
        return found["LoadBalancers"][0] if found and found["LoadBalancers"] else None

    return t.memo("l06.nlb", look)


def _no_nlb(t: Target) -> Outcome:
    return failed(f"There is no load balancer {nlb_name(t)}; create it in step 1.")


def _service(t: Target) -> dict | None:
    """The endpoint service on the NLB."""
    def look():
        nlb = _nlb(t)
        if nlb is None:
            return None
        found = t.client("ec2").describe_vpc_endpoint_service_configurations()["ServiceConfigurations"]
        return next((s for s in found if nlb["LoadBalancerArn"] in s.get("NetworkLoadBalancerArns", [])), None)

    return t.memo("l06.service", look)


def _no_service(t: Target) -> Outcome:
    if _nlb(t) is None:
        return _no_nlb(t)
    return failed(f"There is no endpoint service on load balancer {nlb_name(t)}; create it in step 2.")


def _endpoints(t: Target, kind: str) -> list[dict]:
    """The consumer VPC's endpoints of type ``kind`` (Interface or Gateway) that still exist."""
    def look():
        vpc = _vpc(t, consumer_vpc_name(t))
        if vpc is None:
            return []
        found = t.client("ec2").describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
        return [e for e in found["VpcEndpoints"] if str(e.get("VpcEndpointType", "")).lower() == kind.lower()
                and str(e.get("State", "")).lower() not in GONE]

    return t.memo(f"l06.endpoints.{kind}", look)


def _interface_endpoint(t: Target) -> dict | None:
    service = _service(t)
    if service is None:
        return None
    return next((e for e in _endpoints(t, "Interface") if e.get("ServiceName") == service["ServiceName"]), None)


def _policy(raw) -> dict:
    return iam.document(raw) if raw else {}


def _live_skip(t: Target) -> Outcome | None:
    return skipped(PROBE_NOTE) if t.is_live else None


def _probe(t: Target, url: str, groups: list[str], subnet: str | None = None) -> dict:
    return api.probe(t, _vpc(t, consumer_vpc_name(t))["VpcId"], url, groups, subnet)


def _said(answer: dict) -> str:
    """What a probe saw, for a message: outcome, status, and the mode that graded it."""
    status = f" {answer['status']}" if answer.get("outcome") == "answered" and answer.get("status") else ""
    detail = f": {answer['detail']}" if answer.get("detail") else ""
    return f"{answer.get('outcome')}{status} ({answer.get('mode')} mode){detail}"


def _consumer_ready(t: Target) -> Outcome | None:
    """FAIL when the consumer VPC or its app security group is missing (a probe needs both)."""
    if _vpc(t, consumer_vpc_name(t)) is None:
        return failed(f"There is no VPC {consumer_vpc_name(t)}; create it in step 3.")
    if _group(t, consumer_vpc_name(t), app_group(t)) is None:
        return failed(f"VPC {consumer_vpc_name(t)} has no security group {app_group(t)}; create it in step 3.")
    return None


# -- step 1: the provider's NLB ---------------------------------------------------------------------

@check("L06.01", "An internal Network Load Balancer in lab 05's private subnets, a TCP listener on 8080 to an ip "
                 "target group", step=1, points=2,
       hint="create_load_balancer <prefix>-catalog-nlb with Type='network', Scheme='internal' and the subnets "
            "<prefix>-shop-private-1 and -2; a target group TCP 8080 of TargetType 'ip'; a TCP listener on 8080 "
            "forwarding to it.", docs=f"{DOCS}#endpoint-services-and-interface-endpoints")
def provider_nlb(t: Target):
    nlb = _nlb(t)
    if nlb is None:
        return _no_nlb(t)
    name, problems = nlb_name(t), []
    if nlb.get("Type") != "network":
        problems.append(f"it is an {nlb.get('Type')} load balancer; an endpoint service needs a network one")
    if nlb.get("Scheme") != "internal":
        problems.append("it is internet-facing; nobody should reach it but through the endpoint service (internal)")
    vpc = _vpc(t, t.name("shop"))
    private = sorted(s["SubnetId"] for s in _subnets(t, t.name("shop")))
    have = sorted(z.get("SubnetId") for z in nlb.get("AvailabilityZones", []))
    if vpc is None or nlb.get("VpcId") != vpc["VpcId"]:
        problems.append(f"it is not in lab 05's VPC {t.name('shop')}")
    elif have != private:
        problems.append(f"its subnets are {', '.join(have)}, not lab 05's private subnets {', '.join(private)}")
    elb = t.client("elbv2")
    listeners = elb.describe_listeners(LoadBalancerArn=nlb["LoadBalancerArn"])["Listeners"]
    listener = next((l for l in listeners if l.get("Port") == SERVICE_PORT), None)
    if listener is None:
        problems.append(f"it has no listener on port {SERVICE_PORT}")
    else:
        if listener.get("Protocol") != "TCP":
            problems.append(f"its listener on {SERVICE_PORT} speaks {listener.get('Protocol')}, not TCP")
        groups = [a.get("TargetGroupArn") for a in listener.get("DefaultActions", []) if a.get("Type") == "forward"]
        if not groups:
            problems.append(f"its listener on {SERVICE_PORT} forwards to no target group")
        else:
            group = elb.describe_target_groups(TargetGroupArns=groups[:1])["TargetGroups"][0]
            if group.get("TargetType") != "ip":
                problems.append(f"target group {group['TargetGroupName']} has targets of type {group.get('TargetType')}, "
                                "not ip (Fargate tasks register by address)")
            if group.get("Port") != SERVICE_PORT or group.get("Protocol") != "TCP":
                problems.append(f"target group {group['TargetGroupName']} is {group.get('Protocol')} "
                                f"{group.get('Port')}, not TCP {SERVICE_PORT}")
    if problems:
        return failed(f"Load balancer {name}: {'; '.join(problems)}.")
    return passed(f"Load balancer {name} is an internal NLB in {t.name('shop')}'s private subnets, its TCP listener on "
                  f"{SERVICE_PORT} forwarding to an ip target group.")


def _nlb_group(t: Target) -> dict | None:
    nlb = _nlb(t)
    if nlb is None:
        return None
    elb = t.client("elbv2")
    for listener in elb.describe_listeners(LoadBalancerArn=nlb["LoadBalancerArn"])["Listeners"]:
        for action in listener.get("DefaultActions", []):
            if action.get("TargetGroupArn"):
                return elb.describe_target_groups(TargetGroupArns=[action["TargetGroupArn"]])["TargetGroups"][0]
    return None


def _catalog_addresses(t: Target) -> list[str]:
    ecs = t.client("ecs")
    cluster, service = t.name("shop"), t.name("catalog")
    arns = absent(lambda: ecs.list_tasks(cluster=cluster, serviceName=service, desiredStatus="RUNNING"),
                  "ClusterNotFoundException", "ServiceNotFoundException")
    arns = (arns or {}).get("taskArns", [])
    tasks = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []
    return sorted(d["value"] for task in tasks if task.get("lastStatus") == "RUNNING"
                  for a in task.get("attachments", []) for d in a.get("details", []) if d["name"] == "privateIPv4Address")


@check("L06.02", "The NLB's target group holds the catalog service's running tasks, healthy", step=1, points=2,
       hint="register_targets with the private address of every RUNNING task of <prefix>-catalog on cluster "
            "<prefix>-shop, port 8080 (deregister addresses no task has any more: ECS replaces failed tasks), and "
            "wait until describe_target_health says healthy.",
       docs=f"{DOCS}#endpoint-services-and-interface-endpoints")
def nlb_targets(t: Target):
    if _nlb(t) is None:
        return _no_nlb(t)
    group = _nlb_group(t)
    if group is None:
        return failed(f"Load balancer {nlb_name(t)} forwards to no target group.")
    health = t.client("elbv2").describe_target_health(TargetGroupArn=group["TargetGroupArn"])["TargetHealthDescriptions"]
    have = {(d["Target"]["Id"], d["Target"].get("Port")): d["TargetHealth"]["State"] for d in health
            if d["TargetHealth"]["State"] != "draining"}  # on its way out: no longer served
    tasks = _catalog_addresses(t)
    if not tasks:
        return failed(f"Service {t.name('catalog')} on cluster {t.name('shop')} runs no task (lab 05), so there is "
                      "nothing to register.")
    missing = [ip for ip in tasks if (ip, SERVICE_PORT) not in have]
    strangers = sorted(f"{ip}:{port}" for ip, port in have if ip not in tasks)
    sick = sorted(f"{ip}:{port} ({state})" for (ip, port), state in have.items() if ip in tasks and state != "healthy")
    problems = []
    if missing:
        problems.append(f"it lacks the running task{'s' * (len(missing) > 1)} {', '.join(missing)} on {SERVICE_PORT}")
    if strangers:
        problems.append(f"it holds {', '.join(strangers)}, which no running catalog task has")
    if sick:
        problems.append(f"{', '.join(sick)} {'is' if len(sick) == 1 else 'are'} not healthy")
    if problems:
        return failed(f"Target group {group['TargetGroupName']}: {'; '.join(problems)}.")
    return passed(f"Target group {group['TargetGroupName']} holds the {len(tasks)} running catalog tasks on "
                  f"{SERVICE_PORT}, all healthy.")


# -- step 2: the endpoint service ---------------------------------------------------------------------

@check("L06.03", "The endpoint service requires acceptance", step=2, points=1,
       hint="create_vpc_endpoint_service_configuration with AcceptanceRequired=True (or "
            "modify_vpc_endpoint_service_configuration).", docs=f"{DOCS}#acceptance-and-allowed-principals")
def acceptance_required(t: Target):
    service = _service(t)
    if service is None:
        return _no_service(t)
    if not service.get("AcceptanceRequired"):
        return failed(f"Endpoint service {service['ServiceId']} accepts every request by itself: an allowed principal "
                      "connects without the provider ever saying yes; set AcceptanceRequired=True.")
    return passed(f"Endpoint service {service['ServiceId']} requires the provider to accept each connection.")


@check("L06.04", "The endpoint service allows exactly the consumer's role", step=2, points=2,
       hint="modify_vpc_endpoint_service_permissions: AddAllowedPrincipals=[the ARN of <prefix>-orders-consumer], "
            "and remove every other principal (no '*', no account root).",
       docs=f"{DOCS}#acceptance-and-allowed-principals")
def allowed_principals(t: Target):
    service = _service(t)
    if service is None:
        return _no_service(t)
    role = iam.role(t, consumer_role(t))
    if role is None:
        return failed(f"There is no role {consumer_role(t)}; create it in step 2.")
    allowed = sorted(p.get("Principal", "") for p in t.client("ec2").describe_vpc_endpoint_service_permissions(
        ServiceId=service["ServiceId"])["AllowedPrincipals"])
    others = [p for p in allowed if p != role["Arn"]]
    if others:
        why = {"*": "'*' lets every AWS account ask"}
        said = [why.get(p) or (f"{p} lets every principal of account {p.split(':')[4]} ask" if p.endswith(":root")
                               else f"{p} is not the consumer's role") for p in others]
        return failed(f"Endpoint service {service['ServiceId']} allows {', '.join(allowed)}: {'; '.join(said)}; allow "
                      f"only {role['Arn']}.")
    if not allowed:
        return failed(f"Endpoint service {service['ServiceId']} allows no principal, so the orders service cannot ask "
                      f"to connect; allow {role['Arn']}.")
    return passed(f"Endpoint service {service['ServiceId']} allows only {role['Arn']}.")


@check("L06.05", "The private DNS name catalog.<domain> is verified through a public TXT record", step=2, points=2,
       hint="Create the public hosted zone <prefix>.shop.example, UPSERT the TXT record "
            "<PrivateDnsNameConfiguration.Name>.<domain> with the quoted Value, then "
            "start_vpc_endpoint_service_private_dns_verification.", docs=f"{DOCS}#private-dns-names")
def private_dns(t: Target):
    service = _service(t)
    if service is None:
        return _no_service(t)
    wanted = private_dns_name(t)
    name = service.get("PrivateDnsName")
    if name != wanted:
        return failed(f"Endpoint service {service['ServiceId']} has private DNS name {name!r}, not {wanted!r}; "
                      "consumers would have to use the endpoint's generated names.")
    config = service.get("PrivateDnsNameConfiguration") or {}
    state = config.get("State")
    if state != "verified":
        record = f"{config.get('Name')}.{domain(t)}"
        return failed(f"The private DNS name {wanted} of endpoint service {service['ServiceId']} is {state}, not "
                      f"verified: put TXT {record} = \"{config.get('Value')}\" in the public hosted zone {domain(t)} "
                      "and start the verification; until then consumers cannot use it.")
    return passed(f"Endpoint service {service['ServiceId']} has the verified private DNS name {wanted}.")


def _topic_allows_vpce(t: Target, topic_arn: str, service_id: str) -> bool:
    """Whether vpce.amazonaws.com may publish, with the context it sends (the service's account and ARN)."""
    policy = _policy(t.client("sns").get_topic_attributes(TopicArn=topic_arn)["Attributes"].get("Policy"))
    context = {"aws:SourceAccount": t.account_id,
               "aws:SourceArn": f"arn:aws:ec2:{t.region}:{t.account_id}:vpc-endpoint-service/{service_id}"}
    return evaluate(policy, action="sns:Publish", resource=topic_arn, principal=Principal.service(VPCE_SERVICE),
                    context=context).allowed


def _queue_receives(t: Target, topic_arn: str, queue_arn: str) -> bool:
    sqs = t.client("sqs")
    name = queue_arn.rsplit(":", 1)[-1]
    found = absent(lambda: sqs.get_queue_url(QueueName=name), "AWS.SimpleQueueService.NonExistentQueue",
                   "QueueDoesNotExist")
    if not found:
        return False
    raw = sqs.get_queue_attributes(QueueUrl=found["QueueUrl"], AttributeNames=["Policy"]).get("Attributes", {})
    return evaluate(_policy(raw.get("Policy")), action="sqs:SendMessage", resource=queue_arn,
                    principal=Principal.service("sns.amazonaws.com"),
                    context={"aws:SourceArn": topic_arn, "aws:SourceAccount": t.account_id}).allowed


@check("L06.06", "Connection notifications reach an SNS topic that vpce.amazonaws.com may publish to, with a queue "
                 "subscribed", step=2, points=2,
       hint="create_vpc_endpoint_connection_notification with ConnectionEvents Connect, Accept, Reject and Delete; "
            "the topic's policy allows vpce.amazonaws.com sns:Publish; an SQS queue subscribed whose policy lets the "
            "topic send.", docs=f"{DOCS}#connection-notifications")
def notifications(t: Target):
    service = _service(t)
    if service is None:
        return _no_service(t)
    found = t.client("ec2").describe_vpc_endpoint_connection_notifications(
        Filters=[{"Name": "service-id", "Values": [service["ServiceId"]]}])["ConnectionNotificationSet"]
    if not found:
        return failed(f"Endpoint service {service['ServiceId']} has no connection notification: the provider never "
                      "hears of a request waiting for it.")
    note = found[0]
    topic = note.get("ConnectionNotificationArn", "")
    problems = []
    lacking = [e for e in EVENTS if e not in note.get("ConnectionEvents", [])]
    if lacking:
        problems.append(f"it does not report {', '.join(lacking)}")
    if absent(lambda: t.client("sns").get_topic_attributes(TopicArn=topic), "NotFound") is None:
        problems.append(f"its topic {topic} does not exist")
    else:
        if not _topic_allows_vpce(t, topic, service["ServiceId"]):
            problems.append(f"topic {topic}'s policy does not let {VPCE_SERVICE} publish (sns:Publish), so no event "
                            "arrives")
        subs = t.client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        queues = [s["Endpoint"] for s in subs if s.get("Protocol") == "sqs"]
        if not queues:
            problems.append(f"no SQS queue is subscribed to {topic}")
        elif not any(_queue_receives(t, topic, q) for q in queues):
            problems.append(f"queue {queues[0].rsplit(':', 1)[-1]}'s policy does not let the topic send to it "
                            "(sqs:SendMessage for sns.amazonaws.com from the topic)")
    if problems:
        return failed(f"Connection notification {note.get('ConnectionNotificationId')}: {'; '.join(problems)}.")
    return passed(f"Endpoint service {service['ServiceId']} reports {', '.join(EVENTS)} to {topic.rsplit(':', 1)[-1]}, "
                  "which vpce.amazonaws.com may publish to and a queue receives.")


# -- step 3: the consumer's VPC ---------------------------------------------------------------------------

def _vpc_attribute(t: Target, vpc_id: str, attribute: str) -> bool:
    key = attribute[0].upper() + attribute[1:]
    answer = t.client("ec2").describe_vpc_attribute(VpcId=vpc_id, Attribute=attribute)
    return bool((answer.get(key) or {}).get("Value"))


@check("L06.07", "The orders VPC: private subnets in two zones, DNS on, no internet gateway or NAT", step=3, points=2,
       hint="create_vpc <prefix>-orders (10.60.0.0/16) with enableDnsSupport and enableDnsHostnames on; subnets "
            "<prefix>-orders-private-1 and -2 in two zones; no internet gateway, NAT gateway or 0.0.0.0/0 route: "
            "the endpoints are its only way out.", docs=f"{DOCS}#why-a-vpc-of-its-own")
def consumer_vpc(t: Target):
    name = consumer_vpc_name(t)
    vpc = _vpc(t, name)
    if vpc is None:
        return failed(f"There is no VPC {name}; create it in step 3.")
    ec2, vpc_id, problems = t.client("ec2"), vpc["VpcId"], []
    provider = _vpc(t, t.name("shop"))
    if provider and provider["VpcId"] == vpc_id:
        problems.append("it is the catalog's own VPC; the orders service needs a VPC of its own")
    for attribute, said in (("enableDnsSupport", "DNS support"), ("enableDnsHostnames", "DNS hostnames")):
        if not _vpc_attribute(t, vpc_id, attribute):
            problems.append(f"{said} is off (an interface endpoint's private DNS needs it)")
    subnets = _subnets(t, name)
    zones = {s["AvailabilityZone"] for s in subnets}
    if len(subnets) < 2 or len(zones) < 2:
        problems.append(f"it has {len(subnets)} of the subnets {t.name('orders', 'private-1')} and -2 in "
                        f"{len(zones)} zone{'s' * (len(zones) != 1)}; an endpoint in two zones survives a zone's outage")
    inside = [{"Name": "vpc-id", "Values": [vpc_id]}]
    if ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])["InternetGateways"]:
        problems.append("an internet gateway is attached")
    nats = [n for n in ec2.describe_nat_gateways(Filters=inside)["NatGateways"] if n.get("State") not in ("deleted",
                                                                                                       "deleting", "failed")]
    if nats:
        problems.append(f"it has NAT gateway {nats[0]['NatGatewayId']}")
    for table in ec2.describe_route_tables(Filters=inside)["RouteTables"]:
        for route in table.get("Routes", []):
            if route.get("DestinationCidrBlock") == "0.0.0.0/0" or route.get("DestinationIpv6CidrBlock") == "::/0":
                problems.append(f"route table {table['RouteTableId']} sends {route.get('DestinationCidrBlock') or '::/0'} "
                                f"to {route.get('GatewayId') or route.get('NatGatewayId') or 'a target'}")
                break
    if problems:
        return failed(f"VPC {name}: {'; '.join(problems)}.")
    return passed(f"VPC {name} has private subnets in {len(zones)} zones, DNS support and hostnames, and no way out "
                  "but its endpoints.")


@check("L06.08", "The endpoint's security group admits TCP 8080 from the orders service's security group only",
       step=3, points=2,
       hint="authorize_security_group_ingress on <prefix>-catalog-endpoint: IpProtocol tcp, port 8080, "
            "UserIdGroupPairs naming <prefix>-orders-app; no CIDR ranges, no other ports.",
       docs=f"{DOCS}#security-groups")
def endpoint_security_group(t: Target):
    vpc = consumer_vpc_name(t)
    app, endpoint = _group(t, vpc, app_group(t)), _group(t, vpc, endpoint_group(t))
    if app is None or endpoint is None:
        missing = [n for n, g in ((app_group(t), app), (endpoint_group(t), endpoint)) if g is None]
        return failed(f"There is no security group {' or '.join(missing)} in VPC {vpc}; create it in step 3.")
    return admits_only(endpoint, endpoint_group(t), app, app_group(t), SERVICE_PORT, "the catalog endpoint")


# -- step 4: the interface endpoint ---------------------------------------------------------------------------

@check("L06.09", "The interface endpoint: accepted and available, in two zones, behind the endpoint's security group, "
                 "private DNS on", step=4, points=3,
       hint="create_vpc_endpoint Interface to the service name in both orders subnets with SecurityGroupIds="
            "[<prefix>-catalog-endpoint] and PrivateDnsEnabled=True; then accept_vpc_endpoint_connections as the "
            "provider.", docs=f"{DOCS}#what-the-provider-sees")
def interface_endpoint(t: Target):
    service = _service(t)
    if service is None:
        return _no_service(t)
    endpoint = _interface_endpoint(t)
    if endpoint is None:
        return failed(f"VPC {consumer_vpc_name(t)} has no interface endpoint to {service['ServiceName']}; create it "
                      "in step 4.")
    eid, problems = endpoint["VpcEndpointId"], []
    state = str(endpoint.get("State", ""))
    if state.lower() == "pendingacceptance":
        problems.append("it is pendingAcceptance: the provider has not accepted it, so it carries nothing")
    elif state.lower() != "available":
        problems.append(f"it is {state}, not available")
    subnets = {s["SubnetId"]: s["AvailabilityZone"] for s in _subnets(t, consumer_vpc_name(t))}
    have = endpoint.get("SubnetIds", [])
    zones = {subnets[s] for s in have if s in subnets}
    if len(zones) < 2:
        problems.append(f"it is in {len(zones)} zone{'s' * (len(zones) != 1)} of the orders subnets; put it in both")
    group = _group(t, consumer_vpc_name(t), endpoint_group(t))
    groups = sorted(g["GroupId"] for g in endpoint.get("Groups", []))
    if group is None or groups != [group["GroupId"]]:
        problems.append(f"it is behind {', '.join(groups) or 'no security group'}, not only {endpoint_group(t)}")
    if not endpoint.get("PrivateDnsEnabled"):
        problems.append(f"private DNS is off, so {private_dns_name(t)} does not resolve to it")
    connections = t.client("ec2").describe_vpc_endpoint_connections(
        Filters=[{"Name": "service-id", "Values": [service["ServiceId"]]}])["VpcEndpointConnections"]
    seen = next((c for c in connections if c.get("VpcEndpointId") == eid), None)
    if seen is None:
        problems.append(f"the provider's service {service['ServiceId']} lists no connection from it")
    elif str(seen.get("VpcEndpointState", "")).lower() != "available" and not any("pending" in p for p in problems):
        problems.append(f"the provider sees its connection {seen.get('VpcEndpointState')}")
    if problems:
        return failed(f"Interface endpoint {eid}: {'; '.join(problems)}.")
    return passed(f"Interface endpoint {eid} is available (the provider accepted it), in {len(zones)} zones, behind "
                  f"{endpoint_group(t)}, with private DNS {private_dns_name(t)}.")


# -- step 5: gateway endpoints ---------------------------------------------------------------------------------

def _gateway(t: Target, kind: str) -> dict | None:
    name = f"com.amazonaws.{t.region}.{kind}"
    return next((e for e in _endpoints(t, "Gateway") if e.get("ServiceName") == name), None)


def _subnet_route_tables(t: Target) -> dict[str, str]:
    """subnet id -> the route table it uses (its own association, else the VPC's main table)."""
    vpc = _vpc(t, consumer_vpc_name(t))
    tables = t.client("ec2").describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["RouteTables"]
    main = next((tb["RouteTableId"] for tb in tables for a in tb.get("Associations", []) if a.get("Main")), None)
    explicit = {a["SubnetId"]: tb["RouteTableId"] for tb in tables for a in tb.get("Associations", [])
                if a.get("SubnetId")}
    return {s["SubnetId"]: explicit.get(s["SubnetId"], main) for s in _subnets(t, consumer_vpc_name(t))}


@check("L06.10", "Gateway endpoints for S3 and DynamoDB on the orders subnets' route table", step=5, points=2,
       hint="create_vpc_endpoint VpcEndpointType='Gateway' for com.amazonaws.<region>.s3 and .dynamodb in "
            "<prefix>-orders with RouteTableIds=[the route table of its subnets].",
       docs=f"{DOCS}#gateway-endpoints-for-s3-and-dynamodb")
def gateway_endpoints(t: Target):
    if _vpc(t, consumer_vpc_name(t)) is None:
        return failed(f"There is no VPC {consumer_vpc_name(t)}; create it in step 3.")
    tables = sorted(set(_subnet_route_tables(t).values()) - {None})
    problems = []
    for kind, label in (("s3", "S3"), ("dynamodb", "DynamoDB")):
        endpoint = _gateway(t, kind)
        if endpoint is None:
            problems.append(f"there is no gateway endpoint for {label}")
            continue
        lacking = [tb for tb in tables if tb not in endpoint.get("RouteTableIds", [])]
        if lacking or not tables:
            problems.append(f"{label}'s endpoint {endpoint['VpcEndpointId']} is not on route table "
                            f"{', '.join(lacking) or 'of the orders subnets'}, so the subnets have no route to {label}")
    if problems:
        return failed(f"VPC {consumer_vpc_name(t)}: {'; '.join(problems)}.")
    return passed(f"VPC {consumer_vpc_name(t)} reaches S3 and DynamoDB through gateway endpoints on route table "
                  f"{', '.join(tables)}.")


def _least_privilege(t: Target, policy: dict, label: str, needed, never) -> list[str]:
    """Problems of endpoint policy ``policy``: what it must allow (``needed``) and must not (``never``), each
    (action, resource) asked of the one evaluator for a caller of this account, every statement and Deny included."""
    caller = Principal.aws(f"arn:aws:iam::{t.account_id}:role/{t.name('orders-fn')}")
    problems = []
    refused = [f"{a} on {r.rsplit(':', 1)[-1]}" for a, r in needed
               if not evaluate(policy, action=a, resource=r, principal=caller).allowed]
    if refused:
        problems.append(f"the {label} endpoint's policy does not allow {iam.short(refused, 2)}, which the orders "
                        "service needs")
    # Whoever sends it through the endpoint: the orders service, every principal a statement names, another
    # account, anyone.
    other = "210987654321" if t.account_id != "210987654321" else "123456789012"
    callers = list(dict.fromkeys([caller, *named_principals(policy), Principal.aws(f"arn:aws:iam::{other}:root"),
                                  Principal.anonymous()]))
    beyond = []
    for a, r in never:
        who = next((w for w in callers if evaluate(policy, action=a, resource=r, principal=w).allowed), None)
        if who is not None:
            beyond.append(f"{a} on {r.rsplit(':', 1)[-1]}" + ("" if who == caller else f" to {who}"))
    if beyond:
        problems.append(f"the {label} endpoint's policy allows {iam.short(beyond, 2)}, beyond the course's "
                        f"{'bucket' if label == 'S3' else 'tables'}")
    return problems


@check("L06.11", "The gateway endpoints' policies reach only the course's bucket and tables", step=5, points=3,
       hint="S3: allow s3:GetObject and s3:ListBucket on arn:aws:s3:::<prefix>-site-<account> and its /*; DynamoDB: "
            "allow the item actions on the tables <prefix>-orders, -orders-v2 and -stock and their /index/*; "
            "no '*' actions or resources.", docs=f"{DOCS}#gateway-endpoints-for-s3-and-dynamodb")
def gateway_policies(t: Target):
    if _vpc(t, consumer_vpc_name(t)) is None:
        return failed(f"There is no VPC {consumer_vpc_name(t)}; create it in step 3.")
    s3, ddb = _gateway(t, "s3"), _gateway(t, "dynamodb")
    if s3 is None or ddb is None:
        return failed(f"VPC {consumer_vpc_name(t)} lacks the gateway endpoint for "
                      f"{' and '.join(n for n, e in (('S3', s3), ('DynamoDB', ddb)) if e is None)}; create it in step 5.")
    bucket = f"arn:aws:s3:::{bucket_name(t)}"
    other = f"arn:aws:s3:::{t.name('elsewhere')}"
    s3_needed = [("s3:GetObject", f"{bucket}/index.html"), ("s3:ListBucket", bucket)]
    s3_never = [("s3:GetObject", f"{other}/x"), ("s3:ListBucket", other), ("s3:PutObject", f"{other}/x"),
                ("s3:GetObject", "arn:aws:s3:::someone-elses-bucket/data.csv"), ("s3:DeleteBucket", bucket),
                ("s3:PutBucketPolicy", bucket), ("s3:DeleteObject", f"{bucket}/index.html")]
    base = f"arn:aws:dynamodb:{t.region}:{t.account_id}:table"
    tables = table_names(t)
    ddb_needed = [(f"dynamodb:{a}", f"{base}/{name}") for name in tables for a in ("GetItem", "PutItem", "Query")]
    ddb_never = [(f"dynamodb:{a}", arn) for arn in iam.outside_tables(t, tables[0], t.name("catalog"))
                 if not any(arn == f"{base}/{n}" for n in tables) for a in ("GetItem", "PutItem")]
    ddb_never += [(f"dynamodb:{a}", f"{base}/{name}") for name in tables for a in ("DeleteTable", "UpdateTable")]
    problems = (_least_privilege(t, _policy(s3.get("PolicyDocument")), "S3", s3_needed, s3_never)
                + _least_privilege(t, _policy(ddb.get("PolicyDocument")), "DynamoDB", ddb_needed, ddb_never))
    if problems:
        return failed(f"VPC {consumer_vpc_name(t)}: {'; '.join(problems)}.")
    return passed(f"The gateway endpoints reach only bucket {bucket_name(t)} and the tables {', '.join(tables)}.")


# -- step 6: from inside the consumer's VPC ------------------------------------------------------------------------

PROBE_ACTS = "calls your API: sends one GET /items to the catalog from inside the orders VPC; stores nothing"


@check("L06.12", "From the orders VPC, the catalog answers through the endpoint's private DNS name", step=6, points=3,
       hint="The endpoint must be available with private DNS on, its security group admitting <prefix>-orders-app "
            "on 8080, and the NLB's targets healthy.", docs=f"{DOCS}#private-dns-names", acts=PROBE_ACTS)
def answers_by_private_dns(t: Target):
    skip = _live_skip(t) or _consumer_ready(t)
    if skip:
        return skip
    app = _group(t, consumer_vpc_name(t), app_group(t))
    url = f"http://{private_dns_name(t)}:{SERVICE_PORT}/items"
    answer = _probe(t, url, [app["GroupId"]])
    if answer.get("outcome") != "answered" or answer.get("status") != 200:
        return failed(f"GET {url} from {app_group(t)} in {consumer_vpc_name(t)}: {_said(answer)}, not 200.")
    return passed(f"GET {url} from {app_group(t)} in {consumer_vpc_name(t)} answered 200 through "
                  f"{answer.get('address')} in {answer.get('elapsed_ms')} ms ({answer.get('mode')} mode).")


@check("L06.13", "From the orders VPC, the catalog's NLB cannot be reached directly", step=6, points=2,
       hint="The orders VPC must have no route to the catalog's VPC (no peering, no transit gateway, no internet "
            "path): the endpoint is its only way to the service.", docs=f"{DOCS}#why-a-vpc-of-its-own",
       acts="calls your API: tries one GET /items to the NLB's own DNS name from inside the orders VPC; stores nothing")
def nlb_unreachable(t: Target):
    skip = _live_skip(t) or _consumer_ready(t)
    if skip:
        return skip
    nlb = _nlb(t)
    if nlb is None:
        return _no_nlb(t)
    app = _group(t, consumer_vpc_name(t), app_group(t))
    url = f"http://{nlb['DNSName']}:{SERVICE_PORT}/items"
    answer = _probe(t, url, [app["GroupId"]])
    if answer.get("outcome") in ("answered", "refused"):
        return failed(f"GET {url} from {consumer_vpc_name(t)}: {_said(answer)}; the orders VPC has a path to the "
                      "catalog's VPC besides the endpoint.")
    return passed(f"GET {url} from {consumer_vpc_name(t)}: {_said(answer)}; only the endpoint leads to the catalog.")


@check("L06.14", "A source outside the orders service's security group is refused at the endpoint", step=6, points=2,
       hint="<prefix>-catalog-endpoint must admit <prefix>-orders-app only: no CIDR range such as the VPC's own.",
       docs=f"{DOCS}#security-groups",
       acts="calls your API: tries one GET /items through the endpoint from an address in the orders VPC without "
            "<prefix>-orders-app; stores nothing")
def outsider_refused(t: Target):
    skip = _live_skip(t) or _consumer_ready(t)
    if skip:
        return skip
    url = f"http://{private_dns_name(t)}:{SERVICE_PORT}/items"
    answer = _probe(t, url, [])
    if answer.get("outcome") == "answered":
        return failed(f"GET {url} from an address without {app_group(t)}: {_said(answer)}; the endpoint's security "
                      "group lets in more than the orders service.")
    if answer.get("outcome") == "unresolved":
        return failed(f"GET {url}: {_said(answer)}; turn on the endpoint's private DNS (step 4) so this can be judged.")
    return passed(f"GET {url} from an address without {app_group(t)}: {_said(answer)}.")


@check("L06.15", "Before the provider accepts it, a new endpoint connects to nothing", step=6, points=2,
       hint="The endpoint service must require acceptance: a new interface endpoint stays pendingAcceptance and "
            "carries no traffic until the provider accepts it.", docs=f"{DOCS}#acceptance-and-allowed-principals",
       acts="calls your API: creates an interface endpoint to the catalog service in the orders VPC, tries one "
            "GET /items through it, and deletes it")
def pending_connects_nothing(t: Target):
    skip = _live_skip(t) or _consumer_ready(t)
    if skip:
        return skip
    service = _service(t)
    if service is None:
        return _no_service(t)
    subnets = _subnets(t, consumer_vpc_name(t))
    group = _group(t, consumer_vpc_name(t), endpoint_group(t)) or _group(t, consumer_vpc_name(t), app_group(t))
    if not subnets:
        return failed(f"VPC {consumer_vpc_name(t)} has no subnet {t.name('orders', 'private-1')}; create it in step 3.")
    ec2 = t.behaviour_client("ec2", "CreateVpcEndpoint", "DeleteVpcEndpoints")
    made = ec2.create_vpc_endpoint(VpcEndpointType="Interface", VpcId=subnets[0]["VpcId"],
                                   ServiceName=service["ServiceName"], SubnetIds=[subnets[0]["SubnetId"]],
                                   SecurityGroupIds=[group["GroupId"]], PrivateDnsEnabled=False)["VpcEndpoint"]
    eid = made["VpcEndpointId"]
    try:
        state = str(made.get("State"))
        names = [d["DnsName"] for d in made.get("DnsEntries", []) if d.get("DnsName")]
        app = _group(t, consumer_vpc_name(t), app_group(t))
        answer = _probe(t, f"http://{names[0]}:{SERVICE_PORT}/items", [app["GroupId"]],
                        subnet=subnets[0]["SubnetId"]) if names else {"outcome": "unresolved", "mode": "-"}
    finally:
        ec2.delete_vpc_endpoints(VpcEndpointIds=[eid])
    if state.lower() != "pendingacceptance":
        return failed(f"A new interface endpoint to {service['ServiceId']} was {state} at once, not "
                      "pendingAcceptance: the service accepts anyone it allows without asking (the check deleted it).")
    if answer.get("outcome") == "answered":
        return failed(f"A new interface endpoint {eid}, still pendingAcceptance, carried a request: {_said(answer)} "
                      "(the check deleted it).")
    return passed(f"A new interface endpoint {eid} was pendingAcceptance and carried nothing: {_said(answer)} (the "
                  "check deleted it).")


@check("L06.16", "From the orders VPC, S3 refuses a bucket the endpoint policy does not name", step=6, points=2,
       hint="The S3 gateway endpoint's policy must name only the course's bucket; a request for any other bucket "
            "through it is denied (403).", docs=f"{DOCS}#gateway-endpoints-for-s3-and-dynamodb",
       acts="calls your API: sends one GET for an object of a bucket outside the policy through the S3 gateway "
            "endpoint; stores nothing")
def s3_outside_refused(t: Target):
    skip = _live_skip(t) or _consumer_ready(t)
    if skip:
        return skip
    app = _group(t, consumer_vpc_name(t), app_group(t))
    url = f"http://s3.{t.region}.amazonaws.com/{t.name('elsewhere')}/x"
    answer = _probe(t, url, [app["GroupId"]])
    if answer.get("outcome") == "answered" and answer.get("status") == 403:
        return passed(f"GET {url} from {consumer_vpc_name(t)}: {_said(answer)}; the endpoint policy stops it.")
    if answer.get("outcome") == "answered":
        return failed(f"GET {url} from {consumer_vpc_name(t)}: {_said(answer)}, not 403; the S3 endpoint's policy "
                      "lets requests for other buckets through.")
    return failed(f"GET {url} from {consumer_vpc_name(t)}: {_said(answer)}; S3 is not reachable through a gateway "
                  "endpoint on the subnet's route table (step 5).")

