# %% [markdown]
# # Lab 05: Containers on ECS, Fargate and EKS
#
# Lab 03 ran the orders service as a function: code that exists only while a
# request runs. This lab builds the shop's second kind of microservice, the
# **catalog service**, as a container: a long-running process with its own
# web server, packaged as an image with everything it needs. You build the
# image, keep it in a registry, and run it on **Amazon ECS** with **Fargate**
# (no servers to manage) behind an **Application Load Balancer**; then you
# operate it: kill a task, ship a broken release, change a routing rule.
# Finally you run it on the **EC2 launch type**, where you choose how tasks
# are placed, and describe the **EKS** alternative.
#
# You will build, step by step:
#
# 1. a VPC with public subnets (for the load balancer) and private ones (for the tasks), and security groups;
# 2. an ECR repository with scanning, immutable tags and a lifecycle policy, and the image pushed to it;
# 3. the catalog table, the log group, a secret, and two IAM roles: the execution role and the task role;
# 4. a Fargate task definition;
# 5. the load balancer, its target group and listener;
# 6. the ECS service, and a request through the load balancer;
# 7. operations: a killed task, a broken revision rolled back, a rule changed while it runs, and auto scaling on load;
# 8. the EC2 launch type with placement strategies and constraints;
# 9. an EKS cluster with a managed node group and a Fargate profile.
#
# Concepts: [Lab 05 in the course docs](../site/labs/05-containers.md).
# This lab starts from the end of lab 04; `python -m labkit start 05` puts
# the local AWS there.
#
# **On a live account this lab costs money by the hour**: the load balancer,
# the Fargate tasks, a NAT gateway, the EC2 instances and the EKS cluster
# (USD 0.10 an hour on its own) are billed from the moment they exist. The
# [cost table](../site/labs/05-containers.md#what-it-costs-on-a-live-account)
# adds it up. Remove everything with `python -m labkit cleanup --live` when
# you are done.

# %%
import json
import time
import urllib.error
import urllib.request
import uuid

import checks
import labkit
import labkit.assets

t = labkit.target()
ec2 = t.client("ec2")
ecr = t.client("ecr")
ecs = t.client("ecs")
elb = t.client("elbv2")
iam = t.client("iam")
logs = t.client("logs")
ddb = t.client("dynamodb")
secrets = t.client("secretsmanager")
eks = t.client("eks")
kms = t.client("kms")

repo_name = t.name("catalog")
cluster_name = t.name("shop")
family = t.name("catalog")
service_name = t.name("catalog")
table_name = t.name("catalog")
log_group = f"/ecs/{t.name('catalog')}"
container_port = 8080
poll = 0.5 if t.is_local else 10  # seconds between looks while waiting
print("repository:", repo_name, "| cluster:", cluster_name, "| service:", service_name)


def tagged(kind, name):
    return [{"ResourceType": kind, "Tags": [{"Key": "Name", "Value": name}] + t.tags("05")}]


def ecs_tags():
    return [{"key": k, "value": v} for k, v in t.tag_map("05").items()]  # ECS spells them in lower case


def wait_for(what, ready, limit=180 if t.is_local else 1200):
    """Ask ``ready()`` until it is true, saying every 30 s that it still waits and at the end how long it
    took; stop with one sentence after ``limit`` seconds."""
    started = time.monotonic()
    said = started
    while not ready():
        now = time.monotonic()
        if now - started > limit:
            raise TimeoutError(f"{what} did not happen within {limit} s; read the service's events and its log group.")
        if now - said >= 30:
            print(f"still waiting for {what} ({now - started:.0f} s so far, at most {limit} s)", flush=True)
            said = now
        time.sleep(poll)
    print(f"{what}: after {time.monotonic() - started:.1f} s", flush=True)


def role(name, service, policy=None):
    """Find or create role ``name`` trusted by ``service`` alone; set its inline policy; return its ARN."""
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}
    try:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), Tags=t.tags("05"))
    except iam.exceptions.EntityAlreadyExistsException:
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
    if policy:
        iam.put_role_policy(RoleName=name, PolicyName="catalog", PolicyDocument=json.dumps(policy))
    return iam.get_role(RoleName=name)["Role"]["Arn"]


# %% [markdown]
# ## 1. The network
#
# A container on Fargate gets its own network interface in **your** VPC
# (`awsvpc` networking), so it needs a place there. The catalog service must
# not be reachable from the internet; only the load balancer is. So the VPC
# `<prefix>-shop` (`10.50.0.0/16`) gets two kinds of subnet, each in two
# Availability Zones:
#
# | subnets | for | route to the internet |
# | --- | --- | --- |
# | `10.50.0.0/24`, `10.50.1.0/24` (public) | the load balancer | `0.0.0.0/0` to an internet gateway |
# | `10.50.10.0/24`, `10.50.11.0/24` (private) | the tasks | none (live: through a NAT gateway, outbound only) |
#
# Two security groups express who may talk to whom:
# `<prefix>-catalog-alb` admits TCP 80 from anywhere; `<prefix>-catalog-tasks`
# admits TCP 8080 **only from the ALB's security group**, not from an
# address range. A task then answers the load balancer and nobody else,
# whatever its IP. See [The network](../site/labs/05-containers.md#the-network)
# and [Security groups](../site/labs/05-containers.md#security-groups).
#
# On a live account the private subnets need a way out to pull the image
# from ECR: a NAT gateway (billed per hour) in a public subnet; the cell
# creates one only there.

# %%
# TODO: find or create the VPC t.name("shop") (10.50.0.0/16) as vpc_id, an internet gateway, a public route table (0.0.0.0/0 to it) and a private one, public_ids (10.50.0.0/24, 10.50.1.0/24) and private_ids (10.50.10.0/24, 10.50.11.0/24) in the first two zones; the security groups alb_sg (TCP 80 from anywhere) and task_sg (TCP 8080 from alb_sg only); live only, a NAT gateway for the private route table.
# BEGIN SOLUTION
vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [t.name("shop")]}])["Vpcs"]
vpc_id = vpcs[0]["VpcId"] if vpcs else ec2.create_vpc(
    CidrBlock="10.50.0.0/16", TagSpecifications=tagged("vpc", t.name("shop")))["Vpc"]["VpcId"]
ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})  # Fargate tasks need DNS names
gateways = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])["InternetGateways"]
if gateways:
    igw = gateways[0]["InternetGatewayId"]
else:
    igw = ec2.create_internet_gateway(TagSpecifications=tagged("internet-gateway", t.name("shop")))[
        "InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)


def route_table(kind):
    name = t.name("shop", kind)
    found = ec2.describe_route_tables(Filters=[{"Name": "tag:Name", "Values": [name]}])["RouteTables"]
    return found[0]["RouteTableId"] if found else ec2.create_route_table(
        VpcId=vpc_id, TagSpecifications=tagged("route-table", name))["RouteTable"]["RouteTableId"]


public_rt, private_rt = route_table("public"), route_table("private")
if not any(r.get("GatewayId") == igw for r in ec2.describe_route_tables(RouteTableIds=[public_rt])["RouteTables"][0]["Routes"]):
    ec2.create_route(RouteTableId=public_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
public_ids, private_ids = [], []
for n, zone in enumerate(zones):
    for kind, cidr, table, out in (("public", f"10.50.{n}.0/24", public_rt, public_ids),
                                   ("private", f"10.50.{10 + n}.0/24", private_rt, private_ids)):
        name = t.name("shop", f"{kind}-{n + 1}")
        found = ec2.describe_subnets(Filters=[{"Name": "tag:Name", "Values": [name]}])["Subnets"]
        subnet = found[0]["SubnetId"] if found else ec2.create_subnet(
            VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=zone, TagSpecifications=tagged("subnet", name))["Subnet"]["SubnetId"]
        if not found:
            ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
        out.append(subnet)


def security_group(name, description, ingress):
    found = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                  {"Name": "group-name", "Values": [name]}])["SecurityGroups"]
    if found:
        return found[0]["GroupId"]
    group = ec2.create_security_group(GroupName=name, Description=description, VpcId=vpc_id,
                                      TagSpecifications=tagged("security-group", name))["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=ingress(group))
    return group


alb_sg = security_group(t.name("catalog-alb"), "catalog load balancer: HTTP from anywhere", lambda g: [
    {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
task_sg = security_group(t.name("catalog-tasks"), "catalog tasks: the load balancer only", lambda g: [
    {"IpProtocol": "tcp", "FromPort": container_port, "ToPort": container_port, "UserIdGroupPairs": [{"GroupId": alb_sg}]}])
# Locally the tasks need no way out (they reach the local AWS on loopback); live they pull from ECR through a NAT.
if t.is_live and not ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "state", "Values": ["available"]}])["NatGateways"]:
    address = ec2.allocate_address(Domain="vpc", TagSpecifications=tagged("elastic-ip", t.name("shop")))["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public_ids[0], AllocationId=address,
                                 TagSpecifications=tagged("natgateway", t.name("shop")))["NatGateway"]["NatGatewayId"]
    ec2.get_waiter("nat_gateway_available").wait(NatGatewayIds=[nat])
    ec2.create_route(RouteTableId=private_rt, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
# END SOLUTION
print("VPC", vpc_id, "| public", public_ids, "| private", private_ids, "| ALB group", alb_sg, "| task group", task_sg)

# %%
checks.run("L05.01-L05.02")

# %% [markdown]
# ## 2. The repository and the image
#
# An **image** is the service's files in layers plus a small configuration
# (the command to run, the user, the port, the health check). A
# **registry** keeps images by repository and tag; Amazon ECR is AWS's.
# Create the repository `<prefix>-catalog` with three settings
# (see [The repository](../site/labs/05-containers.md#the-repository)):
#
# - **scan on push**: every pushed image is checked for known vulnerabilities;
# - **immutable tags**: once `v1` is pushed, `v1` always means that image;
#   a release is never replaced under a running service;
# - a **lifecycle policy** (see [Lifecycle](../site/labs/05-containers.md#lifecycle)):
#   rule 1 expires untagged images a day after they were pushed; rule 2
#   keeps the ten newest release images (tags starting with `v`) and
#   expires the older ones. Storage is billed per GB-month.
#
# Then build the catalog service's image from its Dockerfile in
# `labkit/assets/catalog-service` and push it as `v1`. There is no Docker
# engine here: `labkit.images.build` turns the Dockerfile into an OCI image
# itself and `labkit.images.push` sends it to the local registry over the
# same protocol `docker push` uses. On a live account build and push with
# Docker (`docker build`, `aws ecr get-login-password | docker login`,
# `docker push`). See [Images and registries](../site/labs/05-containers.md#images-and-registries).

# %%
service_dir = labkit.assets.ASSETS / "catalog-service"
print((service_dir / "Dockerfile").read_text())

# %%
# TODO: create the repository repo_name (scanOnPush, IMMUTABLE, tags=t.tags("05")), tolerating RepositoryAlreadyExistsException; put the lifecycle policy (untagged: expire after 1 day; tagged "v": keep 10); set repository_uri to the repository's URI; build service_dir with labkit.images.build and push it as v1 with labkit.images.push unless v1 is already there (live: docker).
# BEGIN SOLUTION
try:
    ecr.create_repository(repositoryName=repo_name, imageTagMutability="IMMUTABLE",
                          imageScanningConfiguration={"scanOnPush": True}, tags=t.tags("05"))
except ecr.exceptions.RepositoryAlreadyExistsException:
    pass
lifecycle = {"rules": [
    {"rulePriority": 1, "description": "untagged builds after a day",
     "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1},
     "action": {"type": "expire"}},
    {"rulePriority": 2, "description": "the ten newest releases",
     "selection": {"tagStatus": "tagged", "tagPrefixList": ["v"], "countType": "imageCountMoreThan", "countNumber": 10},
     "action": {"type": "expire"}}]}
ecr.put_lifecycle_policy(repositoryName=repo_name, lifecyclePolicyText=json.dumps(lifecycle))
repository_uri = ecr.describe_repositories(repositoryNames=[repo_name])["repositories"][0]["repositoryUri"]
pushed = [i for i in ecr.describe_images(repositoryName=repo_name)["imageDetails"] if "v1" in i.get("imageTags", [])]
if not pushed and t.is_local:
    from labkit import images

    images.push(images.build(service_dir), repository_uri, target=t, tag="v1")  # immutable: v1 only once
elif not pushed:
    print(f"Build and push with Docker: docker build -t {repository_uri}:v1 {service_dir} && docker push {repository_uri}:v1")
# END SOLUTION
for image in ecr.describe_images(repositoryName=repo_name)["imageDetails"]:
    print(image.get("imageTags"), image["imageDigest"][:19], image.get("imageSizeInBytes"), "bytes")

# %%
checks.run("L05.03-L05.05")

# %% [markdown]
# ## 3. Data, logs, a secret, and two roles
#
# The service reads the catalog from a DynamoDB table named by the
# environment variable `CATALOG_TABLE` (twelve-factor: configuration in the
# environment). Create `<prefix>-catalog`, keyed by `sku`, and load the
# course's catalog into it. Its log group is `/ecs/<prefix>-catalog`, kept 14 days.
# The service also gets an API token; a token is a **secret**, so it lives
# in Secrets Manager as `<prefix>/catalog/api-token`, never in the task
# definition. See [Logs](../site/labs/05-containers.md#logs) and
# [Secrets](../site/labs/05-containers.md#secrets).
#
# ECS uses **two roles**, and mixing them up is the classic mistake
# (see [Task and execution roles](../site/labs/05-containers.md#task-and-execution-roles)):
#
# | role | used by | needs |
# | --- | --- | --- |
# | execution role `<prefix>-catalog-execution` | ECS itself, *before* your code runs | pull the image, create the log stream and write to it, read the secret |
# | task role `<prefix>-catalog-task` | your code, while it runs | read the catalog table: `GetItem` and `Scan` |
#
# Both are trusted by `ecs-tasks.amazonaws.com` alone, and each allows
# exactly its column: not `AmazonECSTaskExecutionRolePolicy`, which reaches
# every repository and log group in the account.

# %%
catalog = json.loads((service_dir / "items.json").read_text())
# TODO: create table_name (sku S HASH, PAY_PER_REQUEST, tagged) and put every item of catalog; create log_group (tagged, 14 days); create the secret t.prefix + "/catalog/api-token" and set secret_arn; set execution_role_arn and task_role_arn with role() and least-privilege policies.
# BEGIN SOLUTION
try:
    ddb.create_table(TableName=table_name, BillingMode="PAY_PER_REQUEST", Tags=t.tags("05"),
                     AttributeDefinitions=[{"AttributeName": "sku", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "sku", "KeyType": "HASH"}])
except ddb.exceptions.ResourceInUseException:
    pass
ddb.get_waiter("table_exists").wait(TableName=table_name)
for item in catalog:
    ddb.put_item(TableName=table_name, Item={k: {"N": str(v)} if isinstance(v, (int, float)) else {"S": str(v)}
                                             for k, v in item.items()})
try:
    logs.create_log_group(logGroupName=log_group, tags=t.tag_map("05"))
except logs.exceptions.ResourceAlreadyExistsException:
    pass
logs.put_retention_policy(logGroupName=log_group, retentionInDays=14)
secret_name = f"{t.prefix}/catalog/api-token"
try:
    secret_arn = secrets.create_secret(Name=secret_name, SecretString=uuid.uuid4().hex, Tags=t.tags("05"))["ARN"]
except secrets.exceptions.ResourceExistsException:
    secret_arn = secrets.describe_secret(SecretId=secret_name)["ARN"]
repo_arn = ecr.describe_repositories(repositoryNames=[repo_name])["repositories"][0]["repositoryArn"]
log_arn = f"arn:aws:logs:{t.region}:{t.account_id}:log-group:{log_group}"
table_arn = ddb.describe_table(TableName=table_name)["Table"]["TableArn"]
execution_role_arn = role(t.name("catalog-execution"), "ecs-tasks.amazonaws.com", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},  # ECR has no narrower resource for it
        {"Effect": "Allow", "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                                       "ecr:BatchCheckLayerAvailability"], "Resource": repo_arn},
        {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": f"{log_arn}:*"},
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret_arn}]})
task_role_arn = role(t.name("catalog-task"), "ecs-tasks.amazonaws.com", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:Scan"], "Resource": table_arn}]})
# END SOLUTION
print(len(catalog), "items in", table_name, "| execution role", execution_role_arn, "| task role", task_role_arn)

# %%
checks.run("L05.06-L05.09")

# %% [markdown]
# ## 4. The task definition
#
# A **task definition** says how to run the image: size, network mode,
# roles, and per container the image, port, user, environment, secrets,
# health check and logs. AWS refuses several things moto accepts, and the
# grader applies AWS's rules (see [Fargate sizes](../site/labs/05-containers.md#fargate-sizes)):
#
# - Fargate requires `networkMode` **awsvpc** (each task its own interface and security group);
# - cpu and memory are set for the **task**, and only in Fargate's pairs:
#   256 CPU units (a quarter vCPU) go with 512, 1024 or 2048 MiB; 512 with 1 to 4 GB; and so on;
# - `awslogs` and `secrets` need an **execution role**.
#
# Register the family `<prefix>-catalog`: Fargate, awsvpc, 256 CPU units
# and 512 MiB, both roles, and one container `catalog`: the image `v1`,
# port 8080, **user `10001`** (the Dockerfile's non-root `USER`),
# `CATALOG_TABLE` in the environment, `API_TOKEN` from the secret, a
# health check that fetches `/health`, and `awslogs` into the log group.
# See [The task definition](../site/labs/05-containers.md#the-task-definition).

# %%
# TODO: set `container` to the container definition described above and register the task definition family with it; set `task_definition_arn`.
# BEGIN SOLUTION
container = {
    "name": "catalog", "image": f"{repository_uri}:v1", "essential": True, "user": "10001",
    "portMappings": [{"containerPort": container_port, "protocol": "tcp"}],
    "environment": [{"name": "CATALOG_TABLE", "value": table_name}, {"name": "PORT", "value": str(container_port)}],
    "secrets": [{"name": "API_TOKEN", "valueFrom": secret_arn}],
    "healthCheck": {"command": ["CMD", "python", "-c", "import urllib.request; "
                                "urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2)"],
                    "interval": 10, "timeout": 3, "retries": 3, "startPeriod": 5},
    "logConfiguration": {"logDriver": "awslogs", "options": {
        "awslogs-group": log_group, "awslogs-region": t.region, "awslogs-stream-prefix": "catalog"}},
}
task_definition_arn = ecs.register_task_definition(
    family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
    executionRoleArn=execution_role_arn, taskRoleArn=task_role_arn, containerDefinitions=[container],
    tags=ecs_tags())["taskDefinition"]["taskDefinitionArn"]
# END SOLUTION
print(task_definition_arn)

# %%
checks.run("L05.10-L05.13")

# %% [markdown]
# ## 5. The load balancer
#
# An Application Load Balancer takes HTTP requests on a listener and sends
# each to a healthy **target** in a **target group**. Fargate tasks
# register by IP (`TargetType="ip"`), on the container port. The target
# group **probes** every target on `/health`; a target that fails is taken
# out of rotation until it passes again. With no healthy target the ALB
# answers 503; with a target that does not answer, 502 or 504. See
# [Load balancing and health](../site/labs/05-containers.md#load-balancing-and-health).
#
# Create the ALB `<prefix>-catalog` (internet-facing, the public subnets,
# the ALB's security group), the target group `<prefix>-catalog` (HTTP
# 8080, ip, health check `/health`), and a listener on port 80 forwarding
# to it. Locally each listener answers on a loopback port of its own:
# `python -m labkit lb` lists them, and `labkit.balancers.url` finds one.

# %%
# TODO: create (or find) the load balancer t.name("catalog") as lb_arn, the target group as tg_arn, and the port-80 listener as listener_arn.
# BEGIN SOLUTION
found = elb.describe_load_balancers()["LoadBalancers"]
lb = next((b for b in found if b["LoadBalancerName"] == t.name("catalog")), None) or elb.create_load_balancer(
    Name=t.name("catalog"), Subnets=public_ids, SecurityGroups=[alb_sg], Scheme="internet-facing",
    Type="application", Tags=t.tags("05"))["LoadBalancers"][0]
lb_arn = lb["LoadBalancerArn"]
groups = [g for g in elb.describe_target_groups()["TargetGroups"] if g["TargetGroupName"] == t.name("catalog")]
tg_arn = groups[0]["TargetGroupArn"] if groups else elb.create_target_group(
    Name=t.name("catalog"), Protocol="HTTP", Port=container_port, VpcId=vpc_id, TargetType="ip",
    HealthCheckPath="/health", HealthCheckIntervalSeconds=10, HealthyThresholdCount=2, Tags=t.tags("05"))[
    "TargetGroups"][0]["TargetGroupArn"]
listeners = [l for l in elb.describe_listeners(LoadBalancerArn=lb_arn)["Listeners"] if l["Port"] == 80]
listener_arn = listeners[0]["ListenerArn"] if listeners else elb.create_listener(
    LoadBalancerArn=lb_arn, Protocol="HTTP", Port=80,
    DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}])["Listeners"][0]["ListenerArn"]
# END SOLUTION
print("load balancer", lb_arn.rsplit("/", 2)[-2], "| target group", tg_arn.rsplit("/", 2)[-2])

# %%
checks.run("L05.14")

# %% [markdown]
# ## 6. The service
#
# An ECS **service** keeps a number of copies of the task running, replaces
# any that stop, registers them in the target group, and rolls out new
# revisions. Create the cluster `<prefix>-shop`, then the service
# `<prefix>-catalog` on Fargate (see [The service](../site/labs/05-containers.md#the-service)):
#
# - two tasks, in the **private** subnets, with the tasks' security group and **no public IP**;
# - the target group, container `catalog`, port 8080, and a 30-second health-check grace period;
# - the **deployment circuit breaker with rollback**: a deployment whose tasks keep failing
#   is stopped and the service returns to the last revision that worked
#   (see [Circuit breaker](../site/labs/05-containers.md#circuit-breaker));
# - `minimumHealthyPercent` 100 and `maximumPercent` 200: a rollout starts the new
#   tasks before it stops the old ones.
#
# Then wait until both tasks are healthy in the target group and send a
# request through the load balancer.

# %%
def healthy_targets():
    return [d for d in elb.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
            if d["TargetHealth"]["State"] == "healthy"]


# TODO: create the cluster cluster_name (tags=ecs_tags()) and the service service_name as described, tolerating an existing one (update it instead); wait until its deployment completes and two targets are healthy.
# BEGIN SOLUTION
ecs.create_cluster(clusterName=cluster_name, tags=ecs_tags())
settings = dict(
    taskDefinition=task_definition_arn, desiredCount=2, healthCheckGracePeriodSeconds=30,
    deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True},
                             "minimumHealthyPercent": 100, "maximumPercent": 200},
    networkConfiguration={"awsvpcConfiguration": {"subnets": private_ids, "securityGroups": [task_sg],
                                                  "assignPublicIp": "DISABLED"}})
existing = [s for s in ecs.describe_services(cluster=cluster_name, services=[service_name])["services"]
            if s["status"] == "ACTIVE"]
if existing:
    ecs.update_service(cluster=cluster_name, service=service_name, **settings)
else:
    ecs.create_service(cluster=cluster_name, serviceName=service_name, launchType="FARGATE", tags=ecs_tags(),
                       loadBalancers=[{"targetGroupArn": tg_arn, "containerName": "catalog",
                                       "containerPort": container_port}], **settings)

def deployed():  # a rollout in progress is not the last good revision the circuit breaker returns to
    svc = ecs.describe_services(cluster=cluster_name, services=[service_name])["services"][0]
    primary = next(d for d in svc["deployments"] if d["status"] == "PRIMARY")
    return primary["taskDefinition"] == task_definition_arn and primary.get("rolloutState") == "COMPLETED"


wait_for("two healthy tasks", lambda: deployed() and len(healthy_targets()) >= 2)
# END SOLUTION
print([(d["Target"]["Id"], d["TargetHealth"]["State"]) for d in healthy_targets()])

# %%
import labkit.balancers

base_url = labkit.balancers.url(t, t.name("catalog"), 80)
with urllib.request.urlopen(base_url + "/items", timeout=10) as answer:
    print(base_url, answer.status, len(json.loads(answer.read())["items"]), "items")

# %%
checks.run("L05.15-L05.17")

# %% [markdown]
# ## 7. Operating it
#
# Four things happen to every service, and each should be a non-event.
#
# **A task dies.** Stop one task and keep sending requests: the ALB sends
# them to the other task while the service starts a replacement. (The
# grader's L05.18 does the same, and counts.)

# %%
def running_tasks():
    arns = ecs.list_tasks(cluster=cluster_name, serviceName=service_name, desiredStatus="RUNNING")["taskArns"]
    return {task["taskArn"] for task in ecs.describe_tasks(cluster=cluster_name, tasks=arns)["tasks"]
            if task["lastStatus"] == "RUNNING"} if arns else set()


# TODO: stop one of running_tasks() (`victim`) with ecs.stop_task, then send GET /health through base_url every poll seconds, counting answers in `ok` and `failed`, until a replacement runs.
# BEGIN SOLUTION
before = running_tasks()
victim = sorted(before)[0]
ecs.stop_task(cluster=cluster_name, task=victim, reason="lab 05: a task dies")
ok = failed = 0


def replaced():
    global ok, failed
    try:
        with urllib.request.urlopen(base_url + "/health", timeout=5) as answer:
            ok += answer.status == 200
    except OSError:
        failed += 1
    now = running_tasks()
    return len(now) >= 2 and now - before and len(healthy_targets()) >= 2  # serving, not only running


wait_for("a replacement task", replaced)
# END SOLUTION
print("stopped", victim.rsplit("/", 1)[-1], "| requests meanwhile:", ok, "ok,", failed, "failed")

# %% [markdown]
# **A release is broken.** Register a revision whose command exits at
# once, deploy it, and watch: its tasks never become healthy, the circuit
# breaker stops the deployment, and the service goes back to the revision
# that works, while the old tasks keep serving.

# %%
# TODO: register broken_arn, a revision of family whose container command is ["python", "-c", "raise SystemExit(3)"]; update the service to it; wait until the service's primary deployment is task_definition_arn again, completed.
# BEGIN SOLUTION
broken_arn = ecs.register_task_definition(
    family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
    executionRoleArn=execution_role_arn, taskRoleArn=task_role_arn,
    containerDefinitions=[dict(container, command=["python", "-c", "raise SystemExit(3)"])],
    tags=ecs_tags())["taskDefinition"]["taskDefinitionArn"]
ecs.update_service(cluster=cluster_name, service=service_name, taskDefinition=broken_arn)


def rolled_back():
    svc = ecs.describe_services(cluster=cluster_name, services=[service_name])["services"][0]
    primary = next(d for d in svc["deployments"] if d["status"] == "PRIMARY")
    return (primary["taskDefinition"] == task_definition_arn and primary.get("rolloutState") == "COMPLETED"
            and len(healthy_targets()) >= 2)


wait_for("the rollback", rolled_back, limit=300 if t.is_local else 1800)
# END SOLUTION
for event in ecs.describe_services(cluster=cluster_name, services=[service_name])["services"][0]["events"][:4]:
    print(event["createdAt"], event["message"])

# %% [markdown]
# **The routing changes.** Listener rules are the load balancer's own
# configuration: a new rule takes effect on the next request, with no task
# restarted. Add one that keeps `/admin/*` away from the service: priority
# 10, path pattern `/admin/*`, a fixed 403 answer.

# %%
serving = running_tasks()
# TODO: create the rule on listener_arn (priority 10, path-pattern /admin/*, fixed-response 403 text/plain), unless a rule for /admin/* exists.
# BEGIN SOLUTION
rules = elb.describe_rules(ListenerArn=listener_arn)["Rules"]
if not any("/admin/*" in c.get("Values", []) for r in rules for c in r.get("Conditions", [])):
    elb.create_rule(ListenerArn=listener_arn, Priority=10,
                    Conditions=[{"Field": "path-pattern", "Values": ["/admin/*"]}],
                    Actions=[{"Type": "fixed-response", "FixedResponseConfig": {
                        "StatusCode": "403", "ContentType": "text/plain", "MessageBody": "admin is not exposed"}}])
# END SOLUTION
try:
    urllib.request.urlopen(base_url + "/admin/settings", timeout=10)
except urllib.error.HTTPError as refused:
    print("/admin/settings:", refused.code, refused.read().decode())
print("the same tasks serve as before the rule:", running_tasks() == serving)

# %%
checks.run("L05.18-L05.20")

# %% [markdown]
# **The load grows.** Two tasks are right for a quiet shop, not for a sale.
# **Service auto scaling** changes the desired count for you: register the
# service as a *scalable target* (never fewer than 2 tasks, so one task's
# death never empties the target group; never more than 4, so a flood
# cannot run up the bill), and give it a **target-tracking** policy on
# `ALBRequestCountPerTarget`: the requests the load balancer sent to the
# target group each minute, divided by its healthy targets. Above the target
# value for three minutes in a row, the service scales out in proportion;
# below 90% of it for fifteen, it scales in (see
# [Service auto scaling](../site/labs/05-containers.md#service-auto-scaling)).
# The policy names the target group by a *resource label*: the ends of the
# load balancer's and the target group's ARNs,
# `app/<name>/<id>/targetgroup/<name>/<id>`.

# %%
from checks.lab05 import SCALE_MAX, SCALE_MIN, SCALE_TARGET

scaling = t.client("application-autoscaling")
resource_id = f"service/{cluster_name}/{service_name}"
policy_name = t.name("catalog-requests")
# TODO: register resource_id (ServiceNamespace ecs, ScalableDimension ecs:service:DesiredCount) with MinCapacity SCALE_MIN and MaxCapacity SCALE_MAX; put the TargetTrackingScaling policy policy_name: TargetValue SCALE_TARGET, PredefinedMetricType ALBRequestCountPerTarget, ResourceLabel from lb_arn and tg_arn, ScaleOutCooldown 60, ScaleInCooldown 300.
# BEGIN SOLUTION
scaling.register_scalable_target(ServiceNamespace="ecs", ResourceId=resource_id,
                                 ScalableDimension="ecs:service:DesiredCount",
                                 MinCapacity=SCALE_MIN, MaxCapacity=SCALE_MAX)
label = lb_arn.split(":loadbalancer/", 1)[1] + "/" + tg_arn.split(":")[-1]
scaling.put_scaling_policy(
    PolicyName=policy_name, ServiceNamespace="ecs", ResourceId=resource_id,
    ScalableDimension="ecs:service:DesiredCount", PolicyType="TargetTrackingScaling",
    TargetTrackingScalingPolicyConfiguration={
        "TargetValue": SCALE_TARGET, "ScaleOutCooldown": 60, "ScaleInCooldown": 300,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "ALBRequestCountPerTarget", "ResourceLabel": label}})
# END SOLUTION
policy = scaling.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=resource_id)["ScalingPolicies"][0]
print(policy["PolicyName"], policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"], "requests per target per minute")

# %% [markdown]
# Now send load through the load balancer, well above the target value,
# and watch the desired count rise. On a live account the policy acts after
# three full minutes above the target (plus a minute or two for the
# metric); locally a minute lasts six seconds.

# %%
sent = failed_requests = 0


def desired_count():
    return ecs.describe_services(cluster=cluster_name, services=[service_name])["services"][0]["desiredCount"]


# TODO: with wait_for (limit 240 s locally, 1200 live), send GET /items through base_url in bursts, counting `sent` and `failed_requests` and printing a progress line now and then, until desired_count() is above SCALE_MIN.
# BEGIN SOLUTION
def scaled_out():
    global sent, failed_requests
    for _ in range(25):
        try:
            with urllib.request.urlopen(base_url + "/items", timeout=10) as answer:
                sent += answer.status == 200
        except OSError:
            failed_requests += 1
    if sent % 500 < 25:
        print(f"{sent} requests sent through the load balancer; desired count {desired_count()}", flush=True)
    return desired_count() > SCALE_MIN


wait_for("a scale-out", scaled_out, limit=240 if t.is_local else 1200)
# END SOLUTION
print("desired count", desired_count(), "after", sent, "requests,", failed_requests, "failed")
for activity in scaling.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=resource_id)["ScalingActivities"][:3]:
    print(activity["StatusCode"], activity["Description"], "|", activity["Cause"])

# %%
checks.run("L05.26-L05.27")

# %% [markdown]
# ## 8. The EC2 launch type and placement
#
# On Fargate, AWS decides where a task runs. On the **EC2 launch type** the
# tasks run on instances you own (cheaper at steady load, and needed for
# GPUs or special instance types), and **you** say how ECS places them
# (see [Placement](../site/labs/05-containers.md#placement)):
#
# | | what | why |
# | --- | --- | --- |
# | strategy | `spread` on `attribute:ecs.availability-zone` | one zone's outage takes out half the tasks, not all |
# | strategy | `binpack` on `memory` | within a zone, fill instances before using another: fewer instances to pay for |
# | constraint | `distinctInstance` | never two copies on one instance |
# | constraint | `memberOf` `attribute:ecs.instance-type =~ t3.*` | only on the instance family you chose |
#
# Create the cluster `<prefix>-shop-ec2` with three `t3.small` container
# instances in the private subnets (two zones). On a live account the ECS
# agent on each instance registers it (launch them from the ECS-optimized
# AMI with `ECS_CLUSTER=<prefix>-shop-ec2` in the user data); the local AWS
# has no agent, so the cell registers them as the agent would. Then run the
# service `<prefix>-catalog` on it with the strategy and constraints above.
#
# Locally each container instance is a host of its own: where the machine
# allows, a network namespace holding the instance's private address and no
# route out, so a task on one instance cannot reach another. Tasks in `bridge`
# or `host` mode run inside it, at the instance's address (bridge: at the host
# port in the task's `networkBindings`); `awsvpc` tasks, as here, get an
# interface of their own in the instance's zone. `run_task` places the same
# way, and a task that fits nowhere comes back in `failures` with ECS's reason
# (`RESOURCE:MEMORY`, `MemberOf placement constraint unsatisfied.`). L05.22
# says which network mode graded it.

# %%
ec2_cluster = t.name("shop-ec2")
# TODO: create ec2_cluster; locally run three t3.small instances (private_ids[0], private_ids[1], private_ids[0]) and register each with register_container_instance (attributes ecs.availability-zone and ecs.instance-type); register the family t.name("catalog-ec2") (EC2, awsvpc, the same container with memory 256) and create the service service_name on ec2_cluster with launchType EC2, desiredCount 2, the placement strategy and constraints above.
# BEGIN SOLUTION
ecs.create_cluster(clusterName=ec2_cluster, tags=ecs_tags())
if t.is_local and not ecs.list_container_instances(cluster=ec2_cluster)["containerInstanceArns"]:
    for subnet in (private_ids[0], private_ids[1], private_ids[0]):
        instance = ec2.run_instances(ImageId="ami-0abcdef1234567890", InstanceType="t3.small", MinCount=1, MaxCount=1,
                                     SubnetId=subnet, TagSpecifications=tagged("instance", ec2_cluster))["Instances"][0]
        zone = instance["Placement"]["AvailabilityZone"]
        document = json.dumps({"instanceId": instance["InstanceId"], "region": t.region, "availabilityZone": zone,
                               "instanceType": "t3.small", "accountId": t.account_id})
        ecs.register_container_instance(cluster=ec2_cluster, instanceIdentityDocument=document, attributes=[
            {"name": "ecs.availability-zone", "value": zone}, {"name": "ecs.instance-type", "value": "t3.small"}],
            totalResources=[{"name": "CPU", "type": "INTEGER", "integerValue": 2048},
                            {"name": "MEMORY", "type": "INTEGER", "integerValue": 1900}])
ec2_definition = ecs.register_task_definition(
    family=t.name("catalog-ec2"), requiresCompatibilities=["EC2"], networkMode="awsvpc",
    executionRoleArn=execution_role_arn, taskRoleArn=task_role_arn,
    containerDefinitions=[dict(container, memory=256)], tags=ecs_tags())["taskDefinition"]["taskDefinitionArn"]
placement = dict(
    placementStrategy=[{"type": "spread", "field": "attribute:ecs.availability-zone"},
                       {"type": "binpack", "field": "memory"}],
    placementConstraints=[{"type": "distinctInstance"},
                          {"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t3.*"}])
if [s for s in ecs.describe_services(cluster=ec2_cluster, services=[service_name])["services"] if s["status"] == "ACTIVE"]:
    ecs.update_service(cluster=ec2_cluster, service=service_name, desiredCount=2, **placement)  # no rollout: placed
else:
    ecs.create_service(cluster=ec2_cluster, serviceName=service_name, taskDefinition=ec2_definition, desiredCount=2,
                       launchType="EC2", tags=ecs_tags(), networkConfiguration={"awsvpcConfiguration": {
                           "subnets": private_ids, "securityGroups": [task_sg], "assignPublicIp": "DISABLED"}},
                       **placement)
# END SOLUTION


def placed_on():
    arns = ecs.list_tasks(cluster=ec2_cluster, family=t.name("catalog-ec2"), desiredStatus="RUNNING")["taskArns"]
    return [task.get("containerInstanceArn") for task in ecs.describe_tasks(cluster=ec2_cluster, tasks=arns)["tasks"]] if arns else []


wait_for("two placed tasks", lambda: len(placed_on()) >= 2)
instances = ecs.describe_container_instances(cluster=ec2_cluster, containerInstances=sorted(set(placed_on())))
for ci in instances["containerInstances"]:
    attrs = {a["name"]: a.get("value") for a in ci["attributes"]}
    print(ci["containerInstanceArn"].rsplit("/", 1)[-1], attrs.get("ecs.availability-zone"), attrs.get("ecs.instance-type"))

# %%
checks.run("L05.21-L05.22")

# %% [markdown]
# ## 9. The EKS alternative
#
# **Amazon EKS** runs Kubernetes for you: the same image could run as pods
# instead of ECS tasks. You choose EKS for the Kubernetes ecosystem and
# portability, ECS for less to operate (see
# [ECS and EKS](../site/labs/05-containers.md#ecs-and-eks)). This step
# describes a production-shaped cluster; the grader reads its
# configuration (the local AWS runs no Kubernetes):
#
# - the cluster `<prefix>-eks` in the private subnets with a **private API endpoint** only;
# - **control-plane logging** for `api`, `audit` and `authenticator` (who did what to the cluster);
# - **secrets encryption**: Kubernetes secrets encrypted with a KMS key of yours;
# - access granted with **access entries** (`authenticationMode` `API`), not the old `aws-auth` ConfigMap;
# - a **managed node group** `<prefix>-nodes` (2 to 4 `t3.medium`), its own role trusted by EC2;
# - a **Fargate profile** `<prefix>-catalog`: pods in namespace `catalog` run on Fargate, with a pod execution role.
#
# On a live account the cluster takes about ten minutes to become active
# and bills USD 0.10 an hour from its creation.

# %%
eks_name = t.name("eks")
# TODO: create a KMS key (key_arn) and the roles t.name("eks-cluster") (eks.amazonaws.com), t.name("eks-nodes") (ec2.amazonaws.com) and t.name("eks-pods") (eks-fargate-pods.amazonaws.com); create the cluster eks_name as described unless it exists; live, wait until it is ACTIVE; then the node group and the Fargate profile, unless they exist.
# BEGIN SOLUTION
aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
alias = f"alias/{t.name('eks')}"
if alias in aliases:
    key_arn = kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"]
else:
    key_arn = kms.create_key(Description="EKS secrets encryption", Tags=[
        {"TagKey": k, "TagValue": v} for k, v in t.tag_map("05").items()])["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName=alias, TargetKeyId=key_arn)
cluster_role = role(t.name("eks-cluster"), "eks.amazonaws.com")
if not t.is_local:
    iam.attach_role_policy(RoleName=t.name("eks-cluster"), PolicyArn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicy")
try:
    eks.create_cluster(
        name=eks_name, roleArn=cluster_role, tags=t.tag_map("05"),
        resourcesVpcConfig={"subnetIds": private_ids, "endpointPrivateAccess": True, "endpointPublicAccess": False},
        logging={"clusterLogging": [{"types": ["api", "audit", "authenticator"], "enabled": True}]},
        encryptionConfig=[{"resources": ["secrets"], "provider": {"keyArn": key_arn}}],
        accessConfig={"authenticationMode": "API"})
except eks.exceptions.ResourceInUseException:
    pass
if not t.is_local:
    eks.get_waiter("cluster_active").wait(name=eks_name)
node_role = role(t.name("eks-nodes"), "ec2.amazonaws.com")
pod_role = role(t.name("eks-pods"), "eks-fargate-pods.amazonaws.com")
if t.name("nodes") not in eks.list_nodegroups(clusterName=eks_name)["nodegroups"]:
    eks.create_nodegroup(clusterName=eks_name, nodegroupName=t.name("nodes"), subnets=private_ids, nodeRole=node_role,
                         instanceTypes=["t3.medium"], scalingConfig={"minSize": 2, "maxSize": 4, "desiredSize": 2},
                         tags=t.tag_map("05"))
if t.name("catalog") not in eks.list_fargate_profiles(clusterName=eks_name)["fargateProfileNames"]:
    eks.create_fargate_profile(clusterName=eks_name, fargateProfileName=t.name("catalog"), subnets=private_ids,
                               podExecutionRoleArn=pod_role, selectors=[{"namespace": "catalog"}], tags=t.tag_map("05"))
# END SOLUTION
cluster = eks.describe_cluster(name=eks_name)["cluster"]
print(cluster["name"], cluster["status"], cluster["resourcesVpcConfig"]["endpointPublicAccess"],
      eks.list_nodegroups(clusterName=eks_name)["nodegroups"], eks.list_fargate_profiles(clusterName=eks_name)["fargateProfileNames"])

# %%
checks.run("L05.23-L05.25")

# %% [markdown]
# ## What you built
#
# An image in a registry that scans it, never lets a release change under
# you and forgets what you no longer need; a service in private subnets
# that only its load balancer can reach, running as a role that reads one
# table and started by a role that can do nothing else; tasks that are
# replaced when they die and a release that undoes itself when it is
# broken; placement you chose on your own instances; and the Kubernetes
# shape of the same thing.
#
# The whole lab, graded in one go (run it again after any change):

# %%
checks.run("05")

# %% [markdown]
# **On a live account, delete it all now** (the load balancer, NAT gateway,
# instances, tasks and EKS cluster bill by the hour):
# `python -m labkit cleanup --live`. Locally, save your state:
# `python -m labkit save end-of-05`.
