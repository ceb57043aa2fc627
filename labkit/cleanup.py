"""Remove every course resource this learner created (``python -m labkit cleanup``).

Only resources named with the learner's prefix *and* carrying the course tag
(or living under the course's parameter path) are touched, so a shared
account's other work is safe. CloudFront makes deletion a two-step affair on
AWS: a distribution must be disabled and finish deploying before it can be
deleted, so a first run disables it and a later run deletes it.
"""
from __future__ import annotations

import inspect
from typing import Callable

from botocore.exceptions import ClientError

from .config import COURSE_ID
from .target import Target


def _tagged(tags: list[dict], t: Target) -> bool:
    have = {tag["Key"]: tag["Value"] for tag in tags}
    return have.get("course") == COURSE_ID and have.get("learner") == t.prefix


# Every cleanup step, registered by @step with its place in the teardown order: what uses a
# resource goes before it (scaling targets before their tables, distributions before buckets).
STEPS: list[tuple[int, Callable]] = []


def step(order: int):
    """Register a cleanup step; it is called with the arguments it names of t, act, done, say, dry_run."""
    def register(fn: Callable) -> Callable:
        STEPS.append((order, fn))
        return fn
    return register


def cleanup(t: Target, dry_run: bool = False, say: Callable[[str], None] = print) -> dict:
    """Delete (or, with dry_run, list) the learner's course resources; returns what happened."""
    done: dict[str, list[str]] = {"deleted": [], "pending": [], "found": []}

    def act(label: str, action: Callable[[], None]) -> None:
        done["found"].append(label)
        if dry_run:
            say(f"would delete {label}")
            return
        action()
        done["deleted"].append(label)
        say(f"deleted {label}")

    given = {"t": t, "act": act, "done": done, "say": say, "dry_run": dry_run}
    for _, fn in sorted(STEPS, key=lambda entry: entry[0]):
        fn(**{name: given[name] for name in inspect.signature(fn).parameters})
    return done


@step(10)
def _parameters(t, act):
    ssm = t.client("ssm")
    path = f"/{COURSE_ID}/{t.prefix}"
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=path, Recursive=True):
        for param in page["Parameters"]:
            act(f"parameter {param['Name']}", lambda n=param["Name"]: ssm.delete_parameter(Name=n))
    # Service parameters (like the lab 02 test user) live under /<prefix>/ and carry the course tags.
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=f"/{t.prefix}", Recursive=True):
        for param in page["Parameters"]:
            tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=param["Name"])["TagList"]
            if _tagged(tags, t):
                act(f"parameter {param['Name']}", lambda n=param["Name"]: ssm.delete_parameter(Name=n))


def _mine(name: str, t: Target) -> bool:
    return name.startswith(f"{t.prefix}-")


def _pairs(tags: dict | None) -> list[dict]:
    return [{"Key": k, "Value": v} for k, v in (tags or {}).items()]


@step(30)
def _apis(t, act):
    apigw = t.client("apigateway")
    for page in apigw.get_paginator("get_usage_plans").paginate():
        for plan in page.get("items", []):
            if _mine(plan["name"], t) and _tagged(_pairs(plan.get("tags")), t):
                def delete_plan(plan=plan):
                    # A plan still attached to stages cannot be deleted.
                    ops = [{"op": "remove", "path": "/apiStages", "value": f"{s['apiId']}:{s['stage']}"}
                           for s in plan.get("apiStages", [])]
                    if ops:
                        apigw.update_usage_plan(usagePlanId=plan["id"], patchOperations=ops)
                    apigw.delete_usage_plan(usagePlanId=plan["id"])
                act(f"usage plan {plan['name']}", delete_plan)
    for page in apigw.get_paginator("get_api_keys").paginate():
        for key in page.get("items", []):
            if _mine(key.get("name", ""), t) and _tagged(_pairs(key.get("tags")), t):
                act(f"API key {key['name']}", lambda k=key["id"]: apigw.delete_api_key(apiKey=k))
    for page in apigw.get_paginator("get_rest_apis").paginate():
        for api in page.get("items", []):
            if _mine(api["name"], t) and _tagged(_pairs(api.get("tags")), t):
                act(f"REST API {api['name']} ({api['id']})", lambda i=api["id"]: apigw.delete_rest_api(restApiId=i))


@step(40)
def _functions(t, act):
    lam = t.client("lambda")
    for page in lam.get_paginator("list_functions").paginate():
        for fn in page["Functions"]:
            if _mine(fn["FunctionName"], t) and _tagged(_pairs(lam.list_tags(Resource=fn["FunctionArn"]).get("Tags")), t):
                act(f"function {fn['FunctionName']}", lambda n=fn["FunctionName"]: lam.delete_function(FunctionName=n))


@step(50)
def _roles(t, act):
    iam = t.client("iam")
    for page in iam.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            if not _mine(role["RoleName"], t) or not _tagged(iam.list_role_tags(RoleName=role["RoleName"])["Tags"], t):
                continue

            def delete(name=role["RoleName"]):
                for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
                    iam.delete_role_policy(RoleName=name, PolicyName=policy)
                for policy in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
                    iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
                iam.delete_role(RoleName=name)
            act(f"role {role['RoleName']}", delete)


@step(60)
def _log_groups(t, act):
    logs = t.client("logs")
    for prefix in (f"/aws/lambda/{t.prefix}-", f"/ecs/{t.prefix}-"):  # functions (lab 03), container tasks (lab 05)
        for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=prefix):
            for group in page["logGroups"]:
                tags = logs.list_tags_log_group(logGroupName=group["logGroupName"]).get("tags")
                if _tagged(_pairs(tags), t):
                    act(f"log group {group['logGroupName']}", lambda n=group["logGroupName"]: logs.delete_log_group(logGroupName=n))


@step(90)
def _tables(t, act):
    ddb = t.client("dynamodb")
    for page in ddb.get_paginator("list_tables").paginate():
        for name in page["TableNames"]:
            if not _mine(name, t):
                continue
            table = ddb.describe_table(TableName=name)["Table"]
            if _tagged(ddb.list_tags_of_resource(ResourceArn=table["TableArn"]).get("Tags", []), t):
                def delete(name=name, protected=table.get("DeletionProtectionEnabled")):
                    if protected:  # cleanup is the learner's explicit wish to delete
                        ddb.update_table(TableName=name, DeletionProtectionEnabled=False)
                    ddb.delete_table(TableName=name)
                act(f"table {name}", delete)


def _table_tagged(ddb, name: str, t: Target) -> bool:
    try:
        arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    except ddb.exceptions.ResourceNotFoundException:
        return False
    return _tagged(ddb.list_tags_of_resource(ResourceArn=arn).get("Tags", []), t)


@step(41)
def _service_scaling(t, act):
    """Auto scaling of the learner's ECS services (lab 05), before the services go: deregistering a target
    removes its policies."""
    scaling = t.client("application-autoscaling")
    for page in scaling.get_paginator("describe_scalable_targets").paginate(ServiceNamespace="ecs"):
        for target in page["ScalableTargets"]:
            parts = target["ResourceId"].split("/")
            if len(parts) == 3 and _mine(parts[1], t) and _mine(parts[2], t):
                act(f"scalable target {target['ResourceId']} {target['ScalableDimension']}",
                    lambda x=target: scaling.deregister_scalable_target(
                        ServiceNamespace="ecs", ResourceId=x["ResourceId"], ScalableDimension=x["ScalableDimension"]))


@step(70)
def _scaling(t, act):
    """Auto scaling of the learner's tables (lab 04); deregistering a target removes its policies."""
    scaling, ddb = t.client("application-autoscaling"), t.client("dynamodb")
    for page in scaling.get_paginator("describe_scalable_targets").paginate(ServiceNamespace="dynamodb"):
        for target in page["ScalableTargets"]:
            table = target["ResourceId"].split("/")[1]
            if _mine(table, t) and _table_tagged(ddb, table, t):
                act(f"scalable target {target['ResourceId']} {target['ScalableDimension']}",
                    lambda x=target: scaling.deregister_scalable_target(
                        ServiceNamespace="dynamodb", ResourceId=x["ResourceId"], ScalableDimension=x["ScalableDimension"]))


@step(80)
def _dax(t, act, done, say):
    """DAX clusters (billed per node-hour), then their subnet groups once no cluster uses them."""
    dax = t.client("dax")
    busy = set()
    for page in dax.get_paginator("describe_clusters").paginate():
        for cluster in page["Clusters"]:
            name = cluster["ClusterName"]
            if name != t.name("dax", limit=20):  # the course's one cluster; DAX names are at most 20 characters
                continue
            if not _tagged(dax.list_tags(ResourceName=cluster["ClusterArn"]).get("Tags", []), t):
                continue
            busy.add(cluster.get("SubnetGroup"))
            if cluster.get("Status") == "deleting":
                done["pending"].append(f"DAX cluster {name}")
                say(f"DAX cluster {name} is being deleted; run cleanup again in a few minutes for what it uses")
                continue
            act(f"DAX cluster {name}", lambda n=name: dax.delete_cluster(ClusterName=n))
    if t.is_local:
        return  # the local AWS has no DAX subnet groups
    for page in dax.get_paginator("describe_subnet_groups").paginate():
        for group in page["SubnetGroups"]:
            name = group["SubnetGroupName"]
            if not _mine(name, t):
                continue
            if name in busy:
                done["pending"].append(f"DAX subnet group {name}")
                say(f"DAX subnet group {name} waits for its cluster; run cleanup again in a few minutes")
                continue
            act(f"DAX subnet group {name}", lambda n=name: dax.delete_subnet_group(SubnetGroupName=n))


@step(75)
def _databases(t, act, done, say):
    """RDS DB instances (billed per instance-hour, twice with Multi-AZ): read replicas before their sources,
    deletion protection lifted first, no final snapshot; then the course's DB snapshots and subnet groups."""
    rds = t.client("rds")
    mine = []
    for page in rds.get_paginator("describe_db_instances").paginate():
        for db in page["DBInstances"]:
            if _mine(db["DBInstanceIdentifier"], t) and _tagged(db.get("TagList", []), t):
                mine.append(db)
    busy = set()
    for db in sorted(mine, key=lambda d: not d.get("ReadReplicaSourceDBInstanceIdentifier")):
        name = db["DBInstanceIdentifier"]
        busy.add((db.get("DBSubnetGroup") or {}).get("DBSubnetGroupName"))
        if db.get("DBInstanceStatus") == "deleting":
            done["pending"].append(f"DB instance {name}")
            say(f"DB instance {name} is being deleted; run cleanup again in a few minutes for what it uses")
            continue

        def delete(n=name, protected=db.get("DeletionProtection")):
            if protected:
                rds.modify_db_instance(DBInstanceIdentifier=n, DeletionProtection=False, ApplyImmediately=True)
            rds.delete_db_instance(DBInstanceIdentifier=n, SkipFinalSnapshot=True, DeleteAutomatedBackups=True)
        act(f"DB instance {name}", delete)
    for page in rds.get_paginator("describe_db_snapshots").paginate(SnapshotType="manual"):
        for snap in page["DBSnapshots"]:
            name = snap["DBSnapshotIdentifier"]
            if _mine(name, t) and _tagged(snap.get("TagList", []), t):
                act(f"DB snapshot {name}", lambda n=name: rds.delete_db_snapshot(DBSnapshotIdentifier=n))
    waiting = t.is_live and any(d.startswith("DB instance") for d in done["deleted"])
    for page in rds.get_paginator("describe_db_subnet_groups").paginate():
        for group in page["DBSubnetGroups"]:
            name = group["DBSubnetGroupName"]
            if not _mine(name, t):
                continue
            if waiting and name in busy:  # on AWS a deleting instance holds its subnet group for minutes
                done["pending"].append(f"DB subnet group {name}")
                say(f"DB subnet group {name} waits for its DB instances; run cleanup again in a few minutes")
                continue
            act(f"DB subnet group {name}", lambda n=name: rds.delete_db_subnet_group(DBSubnetGroupName=n))


@step(85)
def _elasticache(t, act, done, say):
    """Replication groups and cache clusters (billed per node-hour), then what they use: user groups, users,
    subnet groups, once nothing uses them."""
    ec = t.client("elasticache")

    def tagged(arn):
        return _tagged(ec.list_tags_for_resource(ResourceName=arn).get("TagList", []), t)

    busy = False
    for page in ec.get_paginator("describe_replication_groups").paginate():
        for group in page["ReplicationGroups"]:
            name = group["ReplicationGroupId"]
            if not _mine(name, t) or not tagged(group["ARN"]):
                continue
            if group.get("Status") == "deleting":
                busy = True
                done["pending"].append(f"replication group {name}")
                say(f"Replication group {name} is being deleted; run cleanup again in a few minutes for what it uses")
                continue
            busy |= t.is_live
            act(f"replication group {name}", lambda n=name: ec.delete_replication_group(ReplicationGroupId=n))
    for page in ec.get_paginator("describe_cache_clusters").paginate():
        for cluster in page["CacheClusters"]:
            name = cluster["CacheClusterId"]
            if cluster.get("ReplicationGroupId") or not _mine(name, t) or not tagged(cluster["ARN"]):
                continue  # a replication group's members go with it
            busy |= t.is_live
            act(f"cache cluster {name}", lambda n=name: ec.delete_cache_cluster(CacheClusterId=n))
    if busy:
        done["pending"].append("ElastiCache user groups and subnet groups")
        say("ElastiCache user groups, users and subnet groups wait for their caches; run cleanup again in a few minutes")
        return
    for group in ec.describe_user_groups().get("UserGroups", []):
        if _mine(group["UserGroupId"], t) and tagged(group["ARN"]):
            act(f"user group {group['UserGroupId']}", lambda n=group["UserGroupId"]: ec.delete_user_group(UserGroupId=n))
    for user in ec.describe_users().get("Users", []):
        if _mine(user["UserId"], t) and tagged(user["ARN"]):
            act(f"cache user {user['UserId']}", lambda n=user["UserId"]: ec.delete_user(UserId=n))
    for page in ec.get_paginator("describe_cache_subnet_groups").paginate():
        for group in page["CacheSubnetGroups"]:
            name = group["CacheSubnetGroupName"]
            if _mine(name, t) and tagged(group["ARN"]):
                act(f"cache subnet group {name}", lambda n=name: ec.delete_cache_subnet_group(CacheSubnetGroupName=n))


@step(100)
def _network(t, act, done, say, dry_run):
    """The learner's tagged VPCs (lab 04's data VPC, lab 05's shop VPC): instances and NAT gateways, addresses,
    route tables and internet gateways, security groups and subnets first, then the VPC."""
    ec2 = t.client("ec2")
    mine = [{"Name": "tag:course", "Values": [COURSE_ID]}, {"Name": "tag:learner", "Values": [t.prefix]}]
    for vpc in ec2.describe_vpcs(Filters=mine)["Vpcs"]:
        vpc_id, inside = vpc["VpcId"], [{"Name": "vpc-id", "Values": [vpc["VpcId"]]}]
        # A DAX cluster's network interfaces outlive it by minutes on AWS; its subnets wait for them.
        if any(p.startswith(("DAX", "DB ")) for p in done["pending"]) or (
                t.is_live and any(d.startswith(("DAX cluster", "DB instance")) for d in done["deleted"])):
            done["pending"].append(f"VPC {vpc_id}")
            say(f"VPC {vpc_id} waits for the DAX cluster in it")
            continue
        instances = [i["InstanceId"] for r in ec2.describe_instances(Filters=inside)["Reservations"]
                     for i in r["Instances"] if i["State"]["Name"] not in ("terminated", "shutting-down")]
        if instances:  # lab 05's container instances
            act(f"instances {', '.join(instances)}", lambda ids=instances: ec2.terminate_instances(InstanceIds=ids))
        nats = [n for n in ec2.describe_nat_gateways(Filters=inside)["NatGateways"] if n["State"] not in ("deleted",)]
        for nat in nats:
            if nat["State"] != "deleting":
                act(f"NAT gateway {nat['NatGatewayId']}", lambda n=nat["NatGatewayId"]: ec2.delete_nat_gateway(NatGatewayId=n))
        if t.is_live and (nats or instances):  # their interfaces hold the subnets for minutes
            done["pending"].append(f"VPC {vpc_id}")
            say(f"VPC {vpc_id} waits for its NAT gateway and instances to go; run cleanup again in a few minutes")
            continue
        for address in ec2.describe_addresses(Filters=mine)["Addresses"]:
            act(f"Elastic IP {address.get('PublicIp')}",
                lambda a=address["AllocationId"]: ec2.release_address(AllocationId=a))
        for table in ec2.describe_route_tables(Filters=inside)["RouteTables"]:
            if any(a.get("Main") for a in table.get("Associations", [])):
                continue

            def drop(table=table):
                for assoc in table.get("Associations", []):
                    ec2.disassociate_route_table(AssociationId=assoc["RouteTableAssociationId"])
                ec2.delete_route_table(RouteTableId=table["RouteTableId"])
            act(f"route table {table['RouteTableId']}", drop)
        for gateway in ec2.describe_internet_gateways(
                Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])["InternetGateways"]:
            def detach(g=gateway["InternetGatewayId"]):
                ec2.detach_internet_gateway(InternetGatewayId=g, VpcId=vpc_id)
                ec2.delete_internet_gateway(InternetGatewayId=g)
            act(f"internet gateway {gateway['InternetGatewayId']}", detach)
        groups = [g for g in ec2.describe_security_groups(Filters=inside)["SecurityGroups"] if g["GroupName"] != "default"]
        for group in groups:  # a group another one admits cannot be deleted: drop the grants first
            if group.get("IpPermissions") and not dry_run:
                ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=group["IpPermissions"])
        for group in groups:
            act(f"security group {group['GroupId']} ({group['GroupName']})",
                lambda g=group["GroupId"]: ec2.delete_security_group(GroupId=g))
        for subnet in ec2.describe_subnets(Filters=inside)["Subnets"]:
            act(f"subnet {subnet['SubnetId']}", lambda s=subnet["SubnetId"]: ec2.delete_subnet(SubnetId=s))
        act(f"VPC {vpc_id}", lambda v=vpc_id: ec2.delete_vpc(VpcId=v))


# -- lab 05: containers ------------------------------------------------------------------

def _lower_pairs(tags: list[dict] | None) -> list[dict]:
    """ECS spells tags {"key", "value"}."""
    return [{"Key": tag["key"], "Value": tag["value"]} for tag in tags or []]


@step(42)
def _ecs(t, act):
    """Services scaled to zero and deleted, task definitions deregistered, container instances deregistered, clusters."""
    ecs = t.client("ecs")
    for arn in ecs.list_clusters().get("clusterArns", []):
        name = arn.rsplit("/", 1)[-1]
        if not _mine(name, t):
            continue
        cluster = ecs.describe_clusters(clusters=[arn], include=["TAGS"])["clusters"]
        if not cluster or cluster[0].get("status") != "ACTIVE" or not _tagged(_lower_pairs(cluster[0].get("tags")), t):
            continue  # a deleted cluster stays listed as INACTIVE for a while
        services = ecs.list_services(cluster=arn).get("serviceArns", [])
        for svc in ecs.describe_services(cluster=arn, services=services)["services"] if services else []:
            if svc.get("status") != "ACTIVE":
                continue

            def remove(svc=svc):
                ecs.update_service(cluster=arn, service=svc["serviceName"], desiredCount=0)  # stop its tasks first
                ecs.delete_service(cluster=arn, service=svc["serviceName"], force=True)
            act(f"ECS service {svc['serviceName']} in {name}", remove)
        for instance in ecs.list_container_instances(cluster=arn).get("containerInstanceArns", []):
            act(f"container instance {instance.rsplit('/', 1)[-1]} in {name}",
                lambda i=instance: ecs.deregister_container_instance(cluster=arn, containerInstance=i, force=True))
        act(f"ECS cluster {name}", lambda a=arn: ecs.delete_cluster(cluster=a))
    for family in ecs.list_task_definition_families(familyPrefix=f"{t.prefix}-", status="ACTIVE").get("families", []):
        for arn in ecs.list_task_definitions(familyPrefix=family, status="ACTIVE").get("taskDefinitionArns", []):
            if arn.rsplit("/", 1)[-1].rsplit(":", 1)[0] != family:
                continue
            tags = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"]).get("tags")
            if _tagged(_lower_pairs(tags), t):
                act(f"task definition {arn.rsplit('/', 1)[-1]}", lambda a=arn: ecs.deregister_task_definition(taskDefinition=a))


@step(44)
def _eks(t, act, done, say):
    """Node groups and Fargate profiles before their clusters (on AWS that takes minutes: run cleanup again)."""
    eks = t.client("eks")
    for name in eks.list_clusters().get("clusters", []):
        cluster = eks.describe_cluster(name=name)["cluster"]
        if not _mine(name, t) or not _tagged(_pairs(cluster.get("tags")), t):
            continue
        waiting = False
        for group in eks.list_nodegroups(clusterName=name).get("nodegroups", []):
            status = eks.describe_nodegroup(clusterName=name, nodegroupName=group)["nodegroup"].get("status")
            if status == "DELETING":
                waiting = True
                continue
            act(f"EKS node group {group}", lambda g=group: eks.delete_nodegroup(clusterName=name, nodegroupName=g))
            waiting = waiting or t.is_live
        for profile in eks.list_fargate_profiles(clusterName=name).get("fargateProfileNames", []):
            act(f"EKS Fargate profile {profile}",
                lambda p=profile: eks.delete_fargate_profile(clusterName=name, fargateProfileName=p))
            waiting = waiting or t.is_live
        if waiting:
            done["pending"].append(f"EKS cluster {name}")
            say(f"EKS cluster {name} waits for its node groups and Fargate profiles; run cleanup again in a few minutes")
            continue
        act(f"EKS cluster {name}", lambda n=name: eks.delete_cluster(name=n))


@step(45)
def _privatelink(t, act):
    """Lab 06: the endpoints in the learner's tagged VPCs, then the endpoint services (an NLB that still backs
    one cannot be deleted), their notifications' topics and queues, and the hosted zone that verified the name."""
    ec2 = t.client("ec2")
    mine = [{"Name": "tag:course", "Values": [COURSE_ID]}, {"Name": "tag:learner", "Values": [t.prefix]}]
    for vpc in ec2.describe_vpcs(Filters=mine)["Vpcs"]:
        for endpoint in ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["VpcEndpoints"]:
            if str(endpoint.get("State", "")).lower() not in ("deleted", "deleting"):
                act(f"VPC endpoint {endpoint['VpcEndpointId']}",
                    lambda e=endpoint["VpcEndpointId"]: ec2.delete_vpc_endpoints(VpcEndpointIds=[e]))
    for service in ec2.describe_vpc_endpoint_service_configurations()["ServiceConfigurations"]:
        tags = service.get("Tags", [])
        name = next((tag["Value"] for tag in tags if tag["Key"] == "Name"), "")
        if not (_mine(name, t) and _tagged(tags, t)):
            continue
        sid = service["ServiceId"]
        for note in ec2.describe_vpc_endpoint_connection_notifications(
                Filters=[{"Name": "service-id", "Values": [sid]}]).get("ConnectionNotificationSet", []):
            act(f"connection notification {note['ConnectionNotificationId']}",
                lambda n=note["ConnectionNotificationId"]: ec2.delete_vpc_endpoint_connection_notifications(
                    ConnectionNotificationIds=[n]))
        act(f"endpoint service {sid} ({name})",
            lambda s=sid: ec2.delete_vpc_endpoint_service_configurations(ServiceIds=[s]))
    sns, sqs = t.client("sns"), t.client("sqs")
    for page in sns.get_paginator("list_topics").paginate():
        for topic in page["Topics"]:
            arn = topic["TopicArn"]
            if _mine(arn.rsplit(":", 1)[-1], t) and _tagged(sns.list_tags_for_resource(ResourceArn=arn)["Tags"], t):
                act(f"SNS topic {arn.rsplit(':', 1)[-1]}", lambda a=arn: sns.delete_topic(TopicArn=a))
    for url in sqs.list_queues(QueueNamePrefix=f"{t.prefix}-").get("QueueUrls", []):
        if _tagged(_pairs(sqs.list_queue_tags(QueueUrl=url).get("Tags")), t):
            act(f"SQS queue {url.rsplit('/', 1)[-1]}", lambda u=url: sqs.delete_queue(QueueUrl=u))
    route53 = t.client("route53")
    for zone in route53.list_hosted_zones()["HostedZones"]:
        zone_id = zone["Id"].rsplit("/", 1)[-1]
        tags = route53.list_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id)["ResourceTagSet"].get("Tags", [])
        if not (zone["Name"].startswith(f"{t.prefix}.") and _tagged(tags, t)):
            continue

        def drop(zone_id=zone_id):
            records = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
            changes = [{"Action": "DELETE", "ResourceRecordSet": r} for r in records if r["Type"] not in ("NS", "SOA")]
            if changes:  # a zone is deleted only once it holds nothing but its NS and SOA records
                route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
            route53.delete_hosted_zone(Id=zone_id)
        act(f"hosted zone {zone['Name']}", drop)


@step(46)
def _load_balancers(t, act):
    """Load balancers (their listeners and rules go with them), then target groups."""
    elb = t.client("elbv2")

    def tagged(arn):
        found = elb.describe_tags(ResourceArns=[arn])["TagDescriptions"]
        return bool(found) and _tagged(found[0].get("Tags", []), t)

    for page in elb.get_paginator("describe_load_balancers").paginate():
        for lb in page["LoadBalancers"]:
            if _mine(lb["LoadBalancerName"], t) and tagged(lb["LoadBalancerArn"]):
                act(f"load balancer {lb['LoadBalancerName']}",
                    lambda a=lb["LoadBalancerArn"]: elb.delete_load_balancer(LoadBalancerArn=a))
    for page in elb.get_paginator("describe_target_groups").paginate():
        for group in page["TargetGroups"]:
            if _mine(group["TargetGroupName"], t) and tagged(group["TargetGroupArn"]):
                act(f"target group {group['TargetGroupName']}",
                    lambda a=group["TargetGroupArn"]: elb.delete_target_group(TargetGroupArn=a))


@step(48)
def _repositories(t, act):
    ecr = t.client("ecr")
    for page in ecr.get_paginator("describe_repositories").paginate():
        for repo in page["repositories"]:
            if _mine(repo["repositoryName"], t) and _tagged(
                    ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"]).get("tags", []), t):
                act(f"ECR repository {repo['repositoryName']}",
                    lambda n=repo["repositoryName"]: ecr.delete_repository(repositoryName=n, force=True))


@step(49)
def _secrets_and_keys(t, act):
    """The course's secrets (named <prefix>-... or under <prefix>/) and the KMS keys it made (scheduled for deletion)."""
    sm = t.client("secretsmanager")
    for page in sm.get_paginator("list_secrets").paginate():
        for secret in page["SecretList"]:
            name = secret["Name"]
            if (_mine(name, t) or name.startswith(f"{t.prefix}/")) and _tagged(secret.get("Tags", []), t):
                act(f"secret {secret['Name']}", lambda a=secret["ARN"]: sm.delete_secret(
                    SecretId=a, ForceDeleteWithoutRecovery=True))
    kms = t.client("kms")
    for alias in kms.list_aliases().get("Aliases", []):
        if not alias["AliasName"].startswith(f"alias/{t.prefix}-") or not alias.get("TargetKeyId"):
            continue
        key = alias["TargetKeyId"]
        tags = [{"Key": tag["TagKey"], "Value": tag["TagValue"]} for tag in kms.list_resource_tags(KeyId=key).get("Tags", [])]
        if _tagged(tags, t) and kms.describe_key(KeyId=key)["KeyMetadata"].get("KeyState") == "Enabled":
            def retire(key=key, alias=alias["AliasName"]):
                kms.delete_alias(AliasName=alias)
                kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)  # AWS's shortest wait
            act(f"KMS key {alias['AliasName']} (deleted in 7 days)", retire)


@step(110)
def _user_pools(t, act):
    cognito = t.client("cognito-idp")
    for page in cognito.get_paginator("list_user_pools").paginate(MaxResults=60):
        for pool in page["UserPools"]:
            if not _mine(pool["Name"], t):
                continue
            tags = cognito.describe_user_pool(UserPoolId=pool["Id"])["UserPool"].get("UserPoolTags")
            if _tagged(_pairs(tags), t):
                act(f"user pool {pool['Name']}", lambda i=pool["Id"]: cognito.delete_user_pool(UserPoolId=i))


@step(20)
def _budget(t, act):
    budgets = t.client("budgets", "us-east-1")
    name = t.name("course-budget")
    try:
        budgets.describe_budget(AccountId=t.account_id, BudgetName=name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NotFoundException":
            return
        raise
    act(f"budget {name}", lambda: budgets.delete_budget(AccountId=t.account_id, BudgetName=name))


@step(130)
def _buckets(t, act):
    s3 = t.client("s3")
    for bucket in s3.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        if not name.startswith(f"{t.prefix}-"):
            continue
        try:
            tags = s3.get_bucket_tagging(Bucket=name)["TagSet"]
        except ClientError:
            continue  # untagged: not ours to delete
        if _tagged(tags, t):
            act(f"bucket {name} and its objects", lambda n=name: _empty_and_delete(s3, n))


def _empty_and_delete(s3, bucket: str) -> None:
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                  for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if doomed:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed, "Quiet": True})
    s3.delete_bucket(Bucket=bucket)


@step(120)
def _distributions(t, act, done, dry_run, say):
    cf = t.client("cloudfront")
    for page in cf.get_paginator("list_distributions").paginate():
        for summary in page.get("DistributionList", {}).get("Items", []) or []:
            tags = cf.list_tags_for_resource(Resource=summary["ARN"])["Tags"].get("Items", []) or []
            if not _tagged(tags, t):
                continue
            dist_id = summary["Id"]
            current = cf.get_distribution_config(Id=dist_id)
            config, etag = current["DistributionConfig"], current["ETag"]
            if config.get("Enabled"):
                if dry_run:
                    done["found"].append(f"distribution {dist_id}")
                    say(f"would disable, then delete, distribution {dist_id}")
                    continue
                config["Enabled"] = False
                etag = cf.update_distribution(Id=dist_id, IfMatch=etag, DistributionConfig=config)["ETag"]
                say(f"disabled distribution {dist_id}")
            if t.is_live and cf.get_distribution(Id=dist_id)["Distribution"]["Status"] != "Deployed":
                done["pending"].append(f"distribution {dist_id}")
                say(f"distribution {dist_id} is still deploying; run cleanup again in about 15 minutes to delete it")
                continue
            act(f"distribution {dist_id}", lambda i=dist_id, e=etag: cf.delete_distribution(Id=i, IfMatch=e))


@step(140)
def _origin_access_controls(t, act, done, say):
    cf = t.client("cloudfront")
    items = cf.list_origin_access_controls()["OriginAccessControlList"].get("Items", []) or []
    for oac in items:
        if not oac["Name"].startswith(f"{t.prefix}-"):
            continue
        if done["pending"]:
            done["pending"].append(f"origin access control {oac['Name']}")
            say(f"origin access control {oac['Name']} waits for its distribution")
            continue

        def delete(oac_id=oac["Id"]):
            etag = cf.get_origin_access_control(Id=oac_id).get("ETag")
            cf.delete_origin_access_control(Id=oac_id, **({"IfMatch": etag} if etag else {}))

        act(f"origin access control {oac['Name']}", delete)
