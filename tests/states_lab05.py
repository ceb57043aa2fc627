"""The end state of lab 05 (containers), built with boto3 on a Target.

``build_lab05(t)`` does what the solution of ``course/05-containers.py`` does, in its order, for what the
configuration checks read: the VPC with public and private subnets, the security groups, the repository with
its lifecycle policy and an image tagged v1, the catalog table, the log group, the secret, the two roles, the
task definition, the load balancer, target group, listener and the /admin/* rule, the Fargate service, the EC2
cluster with three container instances, its service and two placed tasks, and the EKS cluster with its node
group and Fargate profile. It starts no task on Fargate (in-process moto runs none): the behaviour rows that
need running tasks use the local AWS's runtime.

Every keyword changes one thing; the returned dict holds the names and ids the tests format messages with.
"""
from __future__ import annotations

import hashlib
import json

from checks import lab05
from checks.lab05 import (
    BINPACK_MEMORY,
    CONTAINER,
    CONTAINER_PORT,
    HEALTH_PATH,
    LISTENER_PORT,
    MEMBER_OF,
    PRIVATE_CIDRS,
    PUBLIC_CIDRS,
    RULE_PATH,
    RULE_STATUS,
    SECRET_ENV,
    SPREAD_ZONE,
    TAG,
    VPC_CIDR,
)
from labkit import assets
from labkit.localaws.fidelity.applicationautoscaling import ALB_METRIC, ECS_DIMENSION, label_of
from labkit.target import Target

DEFAULT = object()
LAB = "05"
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
LIFECYCLE = {"rules": [
    {"rulePriority": 1, "description": "untagged builds after a day",
     "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1},
     "action": {"type": "expire"}},
    {"rulePriority": 2, "description": "the ten newest releases",
     "selection": {"tagStatus": "tagged", "tagPrefixList": ["v"], "countType": "imageCountMoreThan", "countNumber": 10},
     "action": {"type": "expire"}}]}
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                                  "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest()}, "layers": []})
ITEMS = [{"sku": {"S": f"SKU-{n:03d}"}, "name": {"S": f"item {n}"}, "available": {"N": str(n)}} for n in range(1, 6)]
LOG_RETENTION = 14
CATALOG_SERVICE = assets.ASSETS / "catalog-service"
STEADY_WAIT_S = 90  # tasks start in under a second each; the bound stops a broken runtime hanging a test


def _wait_steady(t: Target) -> None:
    """Until the service runs its desired tasks and the target group has them healthy (bounded)."""
    import time

    ecs, elb = t.client("ecs"), t.client("elbv2")
    tg = elb.describe_target_groups(Names=[lab05.tg_name(t)])["TargetGroups"][0]["TargetGroupArn"]
    deadline = time.monotonic() + STEADY_WAIT_S
    while time.monotonic() < deadline:
        svc = ecs.describe_services(cluster=lab05.cluster_name(t), services=[lab05.service_name(t)])["services"][0]
        healthy = [d for d in elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
                   if d["TargetHealth"]["State"] == "healthy"]
        if svc["runningCount"] >= svc["desiredCount"] and len(healthy) >= svc["desiredCount"]:
            return
        time.sleep(0.5)
    states = [(d["Target"]["Id"], d["TargetHealth"]["State"], d["TargetHealth"].get("Reason"))
              for d in elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]]
    tasks = ecs.list_tasks(cluster=lab05.cluster_name(t), serviceName=lab05.service_name(t))["taskArns"]
    described = [(x["taskArn"][-8:], x["lastStatus"], x.get("healthStatus"), x.get("stoppedReason"))
                 for x in ecs.describe_tasks(cluster=lab05.cluster_name(t), tasks=tasks)["tasks"]] if tasks else []
    raise AssertionError(f"service {lab05.service_name(t)} was not steady within {STEADY_WAIT_S} s: running "
                         f"{svc['runningCount']} of {svc['desiredCount']}; targets {states}; tasks {described}; "
                         f"events {[e['message'] for e in svc.get('events', [])[:4]]}")


def ecs_tags(t: Target) -> list[dict]:
    """The course tags as ECS takes them (lower-case key and value)."""
    return [{"key": k, "value": v} for k, v in t.tag_map(LAB).items()]


def _tags(t: Target, name: str, kind: str) -> list[dict]:
    return [{"ResourceType": kind, "Tags": [{"Key": "Name", "Value": name}] + t.tags(LAB)}]


def execution_policy(t: Target, repo_arn: str, log_arn: str, secret_arn: str) -> dict:
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {"Effect": "Allow", "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
         "Resource": repo_arn},
        {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": f"{log_arn}:*"},
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret_arn}]}


def task_policy(table_arn: str) -> dict:
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:Scan"], "Resource": table_arn}]}


def build_lab05(t: Target, *, private_route_to_igw=False, one_zone=False, task_ingress=DEFAULT, scan_on_push=True,
                mutability="IMMUTABLE", lifecycle=DEFAULT, push=True, exec_trust=DEFAULT, same_role=False,
                exec_policy=DEFAULT, task_policy_doc=DEFAULT, retention=LOG_RETENTION, td=DEFAULT, container=DEFAULT,
                lb_scheme="internet-facing", health_path=HEALTH_PATH, service=DEFAULT, breaker=True, desired=2,
                rule=True, ec2_strategy=DEFAULT, ec2_constraints=DEFAULT, same_instance=False, eks_public=False,
                eks_logging=DEFAULT, eks_encrypt=True, nodegroup=True, pod_role_service="eks-fargate-pods.amazonaws.com",
                scaling=True, scale_min=lab05.SCALE_MIN, scale_in=True, runtime=False) -> dict:
    """``runtime``: push the real catalog image and wait until the service's tasks are healthy behind the load
    balancer (the local AWS's container runtime runs them); otherwise a manifest stands for the image."""
    ec2, ecr, ecs, elb = (t.client(s) for s in ("ec2", "ecr", "ecs", "elbv2"))
    iam, logs, ddb, sm, eks, kms = (t.client(s) for s in ("iam", "logs", "dynamodb", "secretsmanager", "eks", "kms"))
    state: dict = {"prefix": t.prefix}
    # -- network
    vpc = ec2.create_vpc(CidrBlock=VPC_CIDR, TagSpecifications=_tags(t, lab05.vpc_name(t), "vpc"))["Vpc"]["VpcId"]
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    public_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    private_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    if private_route_to_igw:
        ec2.create_route(RouteTableId=private_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    public, private = [], []
    for n, (pub, priv) in enumerate(zip(PUBLIC_CIDRS, PRIVATE_CIDRS)):
        zone = zones[0] if one_zone else zones[n]
        for cidr, out, table, kind in ((pub, public, public_rt, "public"), (priv, private, private_rt, "private")):
            sid = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone,
                                    TagSpecifications=_tags(t, t.name("shop", f"{kind}-{n + 1}"), "subnet"))["Subnet"]["SubnetId"]
            ec2.associate_route_table(RouteTableId=table, SubnetId=sid)
            out.append(sid)
    alb_sg = ec2.create_security_group(GroupName=lab05.alb_group(t), Description="catalog ALB", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=alb_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": LISTENER_PORT, "ToPort": LISTENER_PORT, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    task_sg = ec2.create_security_group(GroupName=lab05.task_group(t), Description="catalog tasks", VpcId=vpc)["GroupId"]
    ingress = [{"IpProtocol": "tcp", "FromPort": CONTAINER_PORT, "ToPort": CONTAINER_PORT,
                "UserIdGroupPairs": [{"GroupId": alb_sg}]}] if task_ingress is DEFAULT else task_ingress
    if ingress:
        ec2.authorize_security_group_ingress(GroupId=task_sg, IpPermissions=ingress)
    state.update(vpc=vpc, public=public, private=private, alb_sg=alb_sg, task_sg=task_sg)
    # -- repository
    repo = ecr.create_repository(repositoryName=lab05.repo_name(t), imageTagMutability=mutability,
                                 imageScanningConfiguration={"scanOnPush": scan_on_push}, tags=t.tags(LAB))["repository"]
    if lifecycle is not None:
        ecr.put_lifecycle_policy(repositoryName=repo["repositoryName"],
                                 lifecyclePolicyText=json.dumps(LIFECYCLE if lifecycle is DEFAULT else lifecycle))
    if push and runtime:
        from labkit import images

        images.push(images.build(CATALOG_SERVICE), repo["repositoryUri"], target=t, tag=TAG, progress=None)
    elif push:
        ecr.put_image(repositoryName=repo["repositoryName"], imageManifest=MANIFEST, imageTag=TAG,
                      imageManifestMediaType="application/vnd.oci.image.manifest.v1+json")
    # -- data, logs, secret, roles
    table = ddb.create_table(TableName=lab05.table_name(t), BillingMode="PAY_PER_REQUEST", Tags=t.tags(LAB),
                             AttributeDefinitions=[{"AttributeName": "sku", "AttributeType": "S"}],
                             KeySchema=[{"AttributeName": "sku", "KeyType": "HASH"}])["TableDescription"]
    for item in ITEMS:
        ddb.put_item(TableName=lab05.table_name(t), Item=item)
    logs.create_log_group(logGroupName=lab05.log_group(t), tags=t.tag_map(LAB))
    if retention:
        logs.put_retention_policy(logGroupName=lab05.log_group(t), retentionInDays=retention)
    log_arn = lab05.arn(t, "logs", f"log-group:{lab05.log_group(t)}")
    secret_arn = sm.create_secret(Name=lab05.secret_name(t), SecretString="s3cr3t-token", Tags=t.tags(LAB))["ARN"]
    roles = {}
    for name, doc, policy in (
            (lab05.execution_role(t), TRUST if exec_trust is DEFAULT else exec_trust,
             execution_policy(t, repo["repositoryArn"], log_arn, secret_arn) if exec_policy is DEFAULT else exec_policy),
            (lab05.task_role(t), TRUST, task_policy(table["TableArn"]) if task_policy_doc is DEFAULT else task_policy_doc)):
        roles[name] = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(doc), Tags=t.tags(LAB))["Role"]["Arn"]
        iam.put_role_policy(RoleName=name, PolicyName="catalog", PolicyDocument=json.dumps(policy))
    exec_arn, task_arn = roles[lab05.execution_role(t)], roles[lab05.task_role(t)]
    # -- task definition
    image = f"{repo['repositoryUri']}:{TAG}"
    definition = {"name": CONTAINER, "image": image, "essential": True, "user": "10001",
                  "portMappings": [{"containerPort": CONTAINER_PORT, "protocol": "tcp"}],
                  "environment": [{"name": "CATALOG_TABLE", "value": lab05.table_name(t)}, {"name": "PORT", "value": "8080"}],
                  "secrets": [{"name": SECRET_ENV, "valueFrom": secret_arn}],
                  "healthCheck": {"command": ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health')"],
                                  "interval": 30, "timeout": 5, "retries": 3, "startPeriod": 10},
                  "logConfiguration": {"logDriver": "awslogs", "options": {
                      "awslogs-group": lab05.log_group(t), "awslogs-region": t.region, "awslogs-stream-prefix": "catalog"}}}
    if container is not DEFAULT:
        definition = container(definition)
    task_def = dict(family=lab05.family(t), requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256",
                    memory="512", executionRoleArn=exec_arn, taskRoleArn=exec_arn if same_role else task_arn,
                    containerDefinitions=[definition], tags=ecs_tags(t))
    if td is not DEFAULT:
        task_def = td(task_def)
    td_arn = ecs.register_task_definition(**task_def)["taskDefinition"]["taskDefinitionArn"]
    state.update(td_arn=td_arn, exec_arn=exec_arn, task_arn=task_arn, secret_arn=secret_arn)
    # -- load balancer
    lb = elb.create_load_balancer(Name=lab05.lb_name(t), Subnets=public if lb_scheme == "internet-facing" else private,
                                  SecurityGroups=[alb_sg], Scheme=lb_scheme, Type="application",
                                  Tags=t.tags(LAB))["LoadBalancers"][0]
    tg = elb.create_target_group(Name=lab05.tg_name(t), Protocol="HTTP", Port=CONTAINER_PORT, VpcId=vpc, TargetType="ip",
                                 HealthCheckPath=health_path, HealthCheckIntervalSeconds=lab05.HEALTH_INTERVAL_S,
                                 HealthyThresholdCount=lab05.HEALTHY_THRESHOLD, Tags=t.tags(LAB))["TargetGroups"][0]
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=LISTENER_PORT,
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])["Listeners"][0]
    if rule:
        elb.create_rule(ListenerArn=listener["ListenerArn"], Priority=10,
                        Conditions=[{"Field": "path-pattern", "Values": [RULE_PATH]}],
                        Actions=[{"Type": "fixed-response", "FixedResponseConfig": {
                            "StatusCode": str(RULE_STATUS), "ContentType": "text/plain", "MessageBody": "admin is not exposed"}}])
    # -- the Fargate service
    ecs.create_cluster(clusterName=lab05.cluster_name(t), tags=ecs_tags(t))
    deployment = {"deploymentCircuitBreaker": {"enable": breaker, "rollback": breaker},
                  "minimumHealthyPercent": 100, "maximumPercent": 200}
    svc = dict(cluster=lab05.cluster_name(t), serviceName=lab05.service_name(t), taskDefinition=td_arn,
               desiredCount=desired, launchType="FARGATE", healthCheckGracePeriodSeconds=30,
               deploymentConfiguration=deployment,
               networkConfiguration={"awsvpcConfiguration": {"subnets": private, "securityGroups": [task_sg],
                                                             "assignPublicIp": "DISABLED"}},
               loadBalancers=[{"targetGroupArn": tg["TargetGroupArn"], "containerName": CONTAINER,
                               "containerPort": CONTAINER_PORT}])
    if service is not DEFAULT:
        svc = service(svc, state)
    ecs.create_service(**svc)
    # moto 5.2.5 drops these on create; update_service keeps them (and the local AWS keeps them on create).
    ecs.update_service(cluster=svc["cluster"], service=svc["serviceName"],
                       deploymentConfiguration=svc["deploymentConfiguration"],
                       healthCheckGracePeriodSeconds=svc.get("healthCheckGracePeriodSeconds") or 0)
    if runtime:
        _wait_steady(t)
    if scaling:
        _auto_scaling(t, lb["LoadBalancerArn"], tg["TargetGroupArn"], low=scale_min, scale_in=scale_in)
    # -- the EC2 launch type
    _ec2_launch_type(t, state, strategy=[SPREAD_ZONE, BINPACK_MEMORY] if ec2_strategy is DEFAULT else ec2_strategy,
                     constraints=[{"type": "distinctInstance"}, {"type": "memberOf", "expression": MEMBER_OF}]
                     if ec2_constraints is DEFAULT else ec2_constraints, same_instance=same_instance,
                     image=image if runtime else "catalog")
    # -- EKS
    key = kms.create_key(Description="EKS secrets", Tags=[{"TagKey": k, "TagValue": v} for k, v in t.tag_map(LAB).items()])[
        "KeyMetadata"]["Arn"]
    kms.create_alias(AliasName=f"alias/{lab05.eks_name(t)}", TargetKeyId=key)
    cluster_role = _role(t, t.name("eks-cluster"), "eks.amazonaws.com")
    cluster = dict(name=lab05.eks_name(t), roleArn=cluster_role,
                   resourcesVpcConfig={"subnetIds": private, "endpointPrivateAccess": True,
                                       "endpointPublicAccess": eks_public},
                   logging={"clusterLogging": [{"types": ["api", "audit", "authenticator", "controllerManager", "scheduler"]
                                                if eks_logging is DEFAULT else eks_logging, "enabled": True}]},
                   tags=t.tag_map(LAB))
    if eks_encrypt:
        cluster["encryptionConfig"] = [{"resources": ["secrets"], "provider": {"keyArn": key}}]
    eks.create_cluster(**cluster)
    if nodegroup:
        eks.create_nodegroup(clusterName=lab05.eks_name(t), nodegroupName=lab05.nodegroup_name(t), subnets=private,
                             nodeRole=_role(t, t.name("eks-nodes"), "ec2.amazonaws.com"), instanceTypes=["t3.medium"],
                             scalingConfig={"minSize": 2, "maxSize": 4, "desiredSize": 2}, tags=t.tag_map(LAB))
    eks.create_fargate_profile(clusterName=lab05.eks_name(t), fargateProfileName=lab05.profile_name(t), subnets=private,
                               podExecutionRoleArn=_role(t, t.name("eks-pods"), pod_role_service),
                               selectors=[{"namespace": "catalog"}], tags=t.tag_map(LAB))
    return state


def _auto_scaling(t: Target, lb_arn: str, tg_arn: str, *, low: int, scale_in: bool) -> None:
    """Step 7's scalable target and target-tracking policy on the requests per target of ``tg_arn``'s group."""
    scaling = t.client("application-autoscaling")
    scaling.register_scalable_target(ServiceNamespace="ecs", ResourceId=lab05.scaling_resource(t),
                                     ScalableDimension=ECS_DIMENSION, MinCapacity=low, MaxCapacity=lab05.SCALE_MAX)
    label = label_of(lb_arn, tg_arn)
    scaling.put_scaling_policy(
        PolicyName=lab05.scaling_policy(t), ServiceNamespace="ecs", ResourceId=lab05.scaling_resource(t),
        ScalableDimension=ECS_DIMENSION, PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": lab05.SCALE_TARGET, "DisableScaleIn": not scale_in, "ScaleOutCooldown": 60,
            "PredefinedMetricSpecification": {"PredefinedMetricType": ALB_METRIC, "ResourceLabel": label}})


def scale_out(t: Target) -> None:
    """Send requests through the load balancer, well above the policy's target, until the service scales out
    (bounded): the load the solution's step 7 sends."""
    import time
    import urllib.request

    from labkit import balancers

    ecs, url = t.client("ecs"), balancers.url(t, lab05.lb_name(t), LISTENER_PORT) + HEALTH_PATH
    deadline = time.monotonic() + 4 * STEADY_WAIT_S
    while time.monotonic() < deadline:
        for _ in range(25):
            try:
                urllib.request.urlopen(url, timeout=10).close()
            except OSError:
                pass
        svc = ecs.describe_services(cluster=lab05.cluster_name(t), services=[lab05.service_name(t)])["services"][0]
        if svc["desiredCount"] > lab05.SCALE_MIN:
            return
    raise AssertionError(f"the service did not scale out within {4 * STEADY_WAIT_S} s of load")


def _role(t: Target, name: str, service: str) -> str:
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": service},
                                                   "Action": "sts:AssumeRole"}]}
    return t.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(doc),
                                       Tags=t.tags(LAB))["Role"]["Arn"]


def _ec2_launch_type(t: Target, state: dict, *, strategy, constraints, same_instance: bool, image: str) -> None:
    """Three t3 container instances in the two private subnets, the EC2 service, and its two tasks placed."""
    ec2, ecs = t.client("ec2"), t.client("ecs")
    cluster = lab05.ec2_cluster_name(t)
    ecs.create_cluster(clusterName=cluster, tags=ecs_tags(t))
    ami = "ami-0abcdef1234567890"  # any id: the course's tests run moto without its ~1,300 default AMIs
    instances = []
    for subnet in (state["private"][0], state["private"][1], state["private"][0]):
        instance = ec2.run_instances(ImageId=ami, InstanceType="t3.small", MinCount=1, MaxCount=1,
                                     SubnetId=subnet)["Instances"][0]
        document = json.dumps({"instanceId": instance["InstanceId"], "region": t.region,
                               "availabilityZone": instance["Placement"]["AvailabilityZone"],
                               "instanceType": "t3.small", "accountId": "123456789012"})
        zone = instance["Placement"]["AvailabilityZone"]
        arn = ecs.register_container_instance(cluster=cluster, instanceIdentityDocument=document, attributes=[
            {"name": "ecs.availability-zone", "value": zone}, {"name": "ecs.instance-type", "value": "t3.small"}])[
            "containerInstance"]["containerInstanceArn"]
        instances.append(arn)
    td = ecs.register_task_definition(family=lab05.ec2_family(t), requiresCompatibilities=["EC2"], networkMode="bridge",
                                      containerDefinitions=[{"name": CONTAINER, "image": image, "memory": 256,
                                                             "portMappings": [{"containerPort": CONTAINER_PORT, "hostPort": 0}]}])
    td_arn = td["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=cluster, serviceName=lab05.service_name(t), taskDefinition=td_arn, desiredCount=2,
                       launchType="EC2", placementStrategy=strategy, placementConstraints=constraints)
    ecs.update_service(cluster=cluster, service=lab05.service_name(t), placementStrategy=strategy,
                       placementConstraints=constraints)
    state.update(instances=instances)
    if image != "catalog":
        return  # the local AWS's scheduler places the service's tasks itself
    # Where the scheduler would put them: one per zone (instances 0 and 1), or both on one instance.
    chosen = [instances[0], instances[0]] if same_instance else instances[:2]
    for arn in chosen:
        ecs.start_task(cluster=cluster, taskDefinition=td_arn, containerInstances=[arn],
                       startedBy=f"ecs-svc/{lab05.service_name(t)}")
    state.update(instances=instances)
