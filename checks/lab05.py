"""Lab 05 (containers): the catalog service's image in ECR, on Fargate behind an ALB, on EC2 with placement, and EKS.

Configuration checks read ECR, ECS, ELBv2, EC2, IAM, Logs and EKS and apply AWS's rules where moto is laxer
(Fargate sizes, awsvpc, execution roles). Behaviour checks call the service through the load balancer's
listed URL (``labkit.balancers``) as a client would.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from labkit import balancers, ecrlifecycle
from labkit.localaws.fidelity.applicationautoscaling import ALB_METRIC, ECS_DIMENSION, label_of
from labkit.localaws.fidelity.ecs import FARGATE_SIZES
from labkit.target import Target

from . import api, iam
from .aws import absent, ingress, missing_tags, ports_phrase
from .core import LOCAL_PARTIAL, Outcome, Status, check, failed, passed, skipped

DOCS = "labs/05-containers.md"
LAB = "05"
CONTAINER = "catalog"
CONTAINER_PORT = 8080
LISTENER_PORT = 80
HEALTH_PATH = "/health"
HEALTH_INTERVAL_S = 10  # the target group's checks: healthy after two in a row
HEALTHY_THRESHOLD = 2
TAG = "v1"
ECS_TASKS = "ecs-tasks.amazonaws.com"
VPC_CIDR = "10.50.0.0/16"
PUBLIC_CIDRS = ("10.50.0.0/24", "10.50.1.0/24")
PRIVATE_CIDRS = ("10.50.10.0/24", "10.50.11.0/24")
SECRET_ENV = "API_TOKEN"
# Words in an environment variable's name that say it holds a secret: such values belong in `secrets`.
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "API_KEY", "ACCESS_KEY", "PRIVATE_KEY", "CREDENTIAL")
# The rule the learner adds in step 7: answered by the load balancer itself, no task restarted.
RULE_PATH = "/admin/*"
RULE_STATUS = 403
RULE_PROBE = "/admin/settings"
# The lifecycle the repository must keep: the newest KEEP_RELEASES release images (v*), untagged ones a day.
KEEP_RELEASES = 10
UNTAGGED_DAYS = 1
# EC2 launch type: where the tasks may go and how they spread.
SPREAD_ZONE = {"type": "spread", "field": "attribute:ecs.availability-zone"}
BINPACK_MEMORY = {"type": "binpack", "field": "memory"}
MEMBER_OF = "attribute:ecs.instance-type =~ t3.*"
EC2_TASKS = 2
# EKS.
EKS_LOG_TYPES = ("api", "audit", "authenticator")
FARGATE_NAMESPACE = "catalog"
# Step 7's auto scaling: target tracking on the requests per target, between two and four tasks.
SCALE_MIN = 2  # one task's death never empties the target group
SCALE_MAX = 4
SCALE_TARGET = 20.0  # requests per healthy target per minute: the lab's load goes well above it
# Behaviour: bounded in count and time.
KILL_DEADLINE_S = 60.0
PROBE_EVERY_S = 0.2  # the local AWS's clock runs health checks ten times faster: a 10 s interval is 1 s
MAX_FAILED_SHARE = 0.05  # an ALB may lose a request to a target it has not yet marked unhealthy


# -- names -----------------------------------------------------------------------------

def repo_name(t: Target) -> str:
    return t.name("catalog")


def cluster_name(t: Target) -> str:
    return t.name("shop")


def ec2_cluster_name(t: Target) -> str:
    return t.name("shop-ec2")


def family(t: Target) -> str:
    return t.name("catalog")


def ec2_family(t: Target) -> str:
    return t.name("catalog-ec2")


def service_name(t: Target) -> str:
    return t.name("catalog")


def scaling_policy(t: Target) -> str:
    return t.name("catalog-requests")


def scaling_resource(t: Target) -> str:
    """The scalable target's ResourceId: service/<cluster>/<service>."""
    return f"service/{cluster_name(t)}/{service_name(t)}"


def table_name(t: Target) -> str:
    return t.name("catalog")


def execution_role(t: Target) -> str:
    return t.name("catalog-execution")


def task_role(t: Target) -> str:
    return t.name("catalog-task")


def log_group(t: Target) -> str:
    return f"/ecs/{t.name('catalog')}"


def secret_name(t: Target) -> str:
    return f"{t.prefix}/catalog/api-token"


def lb_name(t: Target) -> str:
    return t.name("catalog")


def tg_name(t: Target) -> str:
    return t.name("catalog")


def vpc_name(t: Target) -> str:
    return t.name("shop")


def alb_group(t: Target) -> str:
    return t.name("catalog-alb")


def task_group(t: Target) -> str:
    return t.name("catalog-tasks")


def eks_name(t: Target) -> str:
    return t.name("eks")


def nodegroup_name(t: Target) -> str:
    return t.name("nodes")


def profile_name(t: Target) -> str:
    return t.name("catalog")


def arn(t: Target, service: str, resource: str) -> str:
    return f"arn:aws:{service}:{t.region}:{t.account_id}:{resource}"


# -- lookups ---------------------------------------------------------------------------

def _repo(t: Target) -> dict | None:
    def look():
        found = absent(lambda: t.client("ecr").describe_repositories(repositoryNames=[repo_name(t)]),
                       "RepositoryNotFoundException")
        return next(iter((found or {}).get("repositories", [])), None)

    return t.memo("lab05.repo", look)


def _no_repo(t: Target) -> Outcome:
    return failed(f"ECR repository {repo_name(t)} does not exist.")


def _images(t: Target) -> list[dict]:
    def look():
        out = []
        for page in t.client("ecr").get_paginator("describe_images").paginate(repositoryName=repo_name(t)):
            out += page.get("imageDetails", [])
        return out

    return t.memo("lab05.images", look)


def _vpc(t: Target) -> dict | None:
    def look():
        found = t.client("ec2").describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [vpc_name(t)]}])["Vpcs"]
        return found[0] if found else None

    return t.memo("lab05.vpc", look)


def _subnets(t: Target) -> list[dict]:
    vpc = _vpc(t)
    if vpc is None:
        return []
    return t.memo("lab05.subnets", lambda: t.client("ec2").describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"])


def _public_subnet_ids(t: Target) -> set[str]:
    """Subnets of the VPC whose route table sends 0.0.0.0/0 to an internet gateway (the main table when none is
    associated)."""
    vpc = _vpc(t)
    if vpc is None:
        return set()

    def look():
        tables = t.client("ec2").describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["RouteTables"]
        to_igw = lambda table: any(str(r.get("GatewayId", "")).startswith("igw-") and  # noqa: E731
                                   r.get("DestinationCidrBlock") == "0.0.0.0/0" for r in table.get("Routes", []))
        explicit, main_public = {}, False
        for table in tables:
            for assoc in table.get("Associations", []):
                if assoc.get("Main"):
                    main_public = to_igw(table)
                elif assoc.get("SubnetId"):
                    explicit[assoc["SubnetId"]] = to_igw(table)
        return {s["SubnetId"] for s in _subnets(t) if explicit.get(s["SubnetId"], main_public)}

    return t.memo("lab05.public", look)


def _group(t: Target, name: str) -> dict | None:
    vpc = _vpc(t)
    if vpc is None:
        return None
    return t.memo(f"lab05.sg.{name}", lambda: next(iter(t.client("ec2").describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [vpc["VpcId"]]}, {"Name": "group-name", "Values": [name]}])["SecurityGroups"]), None))


def _task_definition(t: Target, name: str | None = None) -> dict | None:
    name = name or family(t)
    return t.memo(f"lab05.td.{name}", lambda: (absent(
        lambda: t.client("ecs").describe_task_definition(taskDefinition=name), "ClientException") or {}).get("taskDefinition"))


def _no_task_definition(t: Target, name: str | None = None) -> Outcome:
    return failed(f"There is no task definition in family {name or family(t)}.")


def _container(td: dict) -> dict | None:
    return next((c for c in td.get("containerDefinitions", []) if c.get("name") == CONTAINER), None)


def _service(t: Target, cluster: str | None = None, name: str | None = None) -> dict | None:
    cluster, name = cluster or cluster_name(t), name or service_name(t)

    def look():
        found = absent(lambda: t.client("ecs").describe_services(cluster=cluster, services=[name]),
                       "ClusterNotFoundException")
        return next((s for s in (found or {}).get("services", []) if s.get("status") == "ACTIVE"), None)

    return t.memo(f"lab05.svc.{cluster}.{name}", look)


def _no_service(t: Target, cluster: str | None = None, name: str | None = None) -> Outcome:
    return failed(f"There is no active ECS service {name or service_name(t)} in cluster {cluster or cluster_name(t)}.")


def _load_balancer(t: Target) -> dict | None:
    def look():
        found = absent(lambda: t.client("elbv2").describe_load_balancers(Names=[lb_name(t)]), "LoadBalancerNotFound")
        return next(iter((found or {}).get("LoadBalancers", [])), None)

    return t.memo("lab05.lb", look)


def _target_group(t: Target) -> dict | None:
    def look():
        found = absent(lambda: t.client("elbv2").describe_target_groups(Names=[tg_name(t)]), "TargetGroupNotFound")
        return next(iter((found or {}).get("TargetGroups", [])), None)

    return t.memo("lab05.tg", look)


def _listener(t: Target) -> dict | None:
    lb = _load_balancer(t)
    if lb is None:
        return None
    return t.memo("lab05.listener", lambda: next((
        l for l in t.client("elbv2").describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
        if l.get("Port") == LISTENER_PORT), None))


def _running_tasks(t: Target, cluster: str, placed: bool = False, **filters) -> list[dict]:
    """Tasks meant to run (desiredStatus RUNNING) that run now, or with ``placed`` that have an instance and have
    not stopped (placement is decided before a task reaches RUNNING)."""
    ecs = t.client("ecs")
    arns = ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING", **filters).get("taskArns", [])
    if not arns:
        return []
    return [task for task in ecs.describe_tasks(cluster=cluster, tasks=arns[:100]).get("tasks", [])
            if task.get("lastStatus") == "RUNNING" or (placed and task.get("lastStatus") != "STOPPED")]


def _eks(t: Target) -> dict | None:
    return t.memo("lab05.eks", lambda: (absent(lambda: t.client("eks").describe_cluster(name=eks_name(t)),
                                                "ResourceNotFoundException") or {}).get("cluster"))


def _no_eks(t: Target) -> Outcome:
    return failed(f"There is no EKS cluster {eks_name(t)}.")


# -- step 1: the network ----------------------------------------------------------------

@check("L05.01", "The VPC has two private subnets in two zones for the tasks and two public ones for the ALB", step=1,
       points=2, hint="Create the VPC <prefix>-shop with public subnets 10.50.0.0/24 and 10.50.1.0/24 (a route table "
                      "sending 0.0.0.0/0 to an internet gateway) and private subnets 10.50.10.0/24 and 10.50.11.0/24 "
                      "(a route table with no internet gateway route), each pair in two zones.",
       docs=f"{DOCS}#the-network")
def network(t: Target):
    vpc = _vpc(t)
    if vpc is None:
        return failed(f"There is no VPC tagged Name={vpc_name(t)}.")
    public = _public_subnet_ids(t)
    by_cidr = {s["CidrBlock"]: s for s in _subnets(t)}
    for kind, cidrs, want_public in (("public", PUBLIC_CIDRS, True), ("private", PRIVATE_CIDRS, False)):
        missing = [c for c in cidrs if c not in by_cidr]
        if missing:
            return failed(f"VPC {vpc_name(t)} has no {kind} subnet {', '.join(missing)}.")
        wrong = [c for c in cidrs if (by_cidr[c]["SubnetId"] in public) != want_public]
        if wrong:
            how = "has no route to an internet gateway" if want_public else "routes 0.0.0.0/0 to an internet gateway"
            return failed(f"Subnet {wrong[0]} of VPC {vpc_name(t)} {how}, so it is not {kind}.")
        zones = {by_cidr[c]["AvailabilityZone"] for c in cidrs}
        if len(zones) < 2:
            return failed(f"The {kind} subnets of VPC {vpc_name(t)} are all in {zones.pop()}; put them in two zones "
                          "so one zone's outage leaves the service running.")
    return passed(f"VPC {vpc_name(t)} has private subnets {', '.join(PRIVATE_CIDRS)} and public subnets "
                  f"{', '.join(PUBLIC_CIDRS)}, each pair in two zones.")


@check("L05.02", "The tasks' security group admits only the ALB's security group, on the container port", step=1,
       points=3, hint="<prefix>-catalog-tasks: one ingress rule, TCP 8080 from the group <prefix>-catalog-alb, no CIDR "
                      "ranges; <prefix>-catalog-alb: TCP 80 from anywhere.",
       docs=f"{DOCS}#security-groups")
def task_group_tight(t: Target):
    alb, tasks = _group(t, alb_group(t)), _group(t, task_group(t))
    for name, group in ((alb_group(t), alb), (task_group(t), tasks)):
        if group is None:
            return failed(f"VPC {vpc_name(t)} has no security group {name}.")
    if not any(low == LISTENER_PORT and proto == "tcp" for low, _, proto, _ in ingress(alb)):
        return failed(f"Security group {alb_group(t)} does not admit TCP {LISTENER_PORT}, so clients cannot reach the ALB.")
    grants = ingress(tasks)
    # Lab 06 puts a Network Load Balancer with a group of its own in front of the same tasks: both balancers may.
    nlb = _group(t, t.name("catalog-nlb"))
    balancers = {alb["GroupId"]} | ({nlb["GroupId"]} if nlb else set())
    extra = [g for g in grants if not (g[3] in balancers and g[2] == "tcp" and g[0] == g[1] == CONTAINER_PORT)]
    if extra:
        low, high, proto, source = extra[0]
        ports = ports_phrase(proto, low, high)
        return failed(f"Security group {task_group(t)} admits {ports} from {source}; admit only TCP {CONTAINER_PORT} "
                      f"from {alb_group(t)} ({alb['GroupId']}).")
    if not grants:
        return failed(f"Security group {task_group(t)} admits nothing, so the ALB cannot reach the tasks on "
                      f"{CONTAINER_PORT}.")
    also = f" (and lab 06's {t.name('catalog-nlb')})" if nlb and any(g[3] == nlb["GroupId"] for g in grants) else ""
    return passed(f"Security group {task_group(t)} admits only TCP {CONTAINER_PORT} from {alb_group(t)}{also}.")


# -- step 2: the repository and the image -----------------------------------------------

@check("L05.03", "The repository scans on push, keeps tags immutable and carries the course tags", step=2, points=2,
       hint="create_repository <prefix>-catalog with imageScanningConfiguration scanOnPush=True, imageTagMutability "
            "IMMUTABLE and tags=t.tags('05').",
       docs=f"{DOCS}#the-repository")
def repository(t: Target):
    repo = _repo(t)
    if repo is None:
        return _no_repo(t)
    name = repo_name(t)
    if not (repo.get("imageScanningConfiguration") or {}).get("scanOnPush"):
        return failed(f"Repository {name} does not scan images on push; turn scanOnPush on.")
    if repo.get("imageTagMutability") != "IMMUTABLE":
        return failed(f"Repository {name} lets a tag be pushed again ({repo.get('imageTagMutability')}); make tags "
                      "IMMUTABLE so v1 always means the same image.")
    tags = t.client("ecr").list_tags_for_resource(resourceArn=repo["repositoryArn"]).get("tags", [])
    wrong = missing_tags(tags, t.tag_map(LAB))
    if wrong:
        return failed(f"Repository {name} lacks the tags {', '.join(wrong)}.")
    return passed(f"Repository {name} scans on push, has immutable tags and carries the course tags.")


def lifecycle_sample(now: datetime) -> list[dict]:
    """Images a repository collects over months: releases v1..v15 a week apart, and untagged builds."""
    images = [{"imageDigest": f"sha256:{n:064x}", "imageTags": [f"v{n}"], "imagePushedAt": now - timedelta(days=7 * (16 - n))}
              for n in range(1, 16)]
    images += [{"imageDigest": f"sha256:{0xf00 + n:064x}", "imageTags": [], "imagePushedAt": now - timedelta(days=n, hours=1)}
               for n in range(0, 4)]
    return images


@check("L05.04", "The lifecycle policy keeps the ten newest releases and expires untagged images after a day", step=2,
       points=2, hint="put_lifecycle_policy: rule 1 tagStatus untagged, sinceImagePushed 1 day, expire; rule 2 "
                      "tagStatus tagged, tagPrefixList [\"v\"], imageCountMoreThan 10, expire.",
       docs=f"{DOCS}#lifecycle")
def lifecycle(t: Target):
    if _repo(t) is None:
        return _no_repo(t)
    name = repo_name(t)
    found = absent(lambda: t.client("ecr").get_lifecycle_policy(repositoryName=name), "LifecyclePolicyNotFoundException")
    if found is None:
        return failed(f"Repository {name} has no lifecycle policy, so old images pile up (and are billed) for ever.")
    now = datetime.now(timezone.utc)
    sample = lifecycle_sample(now)
    try:
        gone = {e.digest for e in ecrlifecycle.expired(found["lifecyclePolicyText"], sample, now=now)}
    except (ValueError, KeyError, TypeError) as exc:
        return failed(f"Repository {name}'s lifecycle policy is not one ECR accepts ({exc}).")
    releases = sorted((i for i in sample if i["imageTags"]), key=lambda i: i["imagePushedAt"], reverse=True)
    keep, old = releases[:KEEP_RELEASES], releases[KEEP_RELEASES:]
    untagged = [i for i in sample if not i["imageTags"]]
    lost = [i["imageTags"][0] for i in keep if i["imageDigest"] in gone]
    if lost:
        return failed(f"Repository {name}'s lifecycle policy would expire {', '.join(lost)}, among the "
                      f"{KEEP_RELEASES} newest releases it must keep.")
    kept = [i["imageTags"][0] for i in old if i["imageDigest"] not in gone]
    if kept:
        return failed(f"Repository {name}'s lifecycle policy keeps {', '.join(kept)} beyond the {KEEP_RELEASES} newest "
                      "releases; expire the older ones.")
    stale = [i for i in untagged if i["imagePushedAt"] < now - timedelta(days=UNTAGGED_DAYS)]
    if any(i["imageDigest"] not in gone for i in stale) or any(
            i["imageDigest"] in gone for i in untagged if i not in stale):
        return failed(f"Repository {name}'s lifecycle policy does not expire untagged images exactly when they are "
                      f"older than {UNTAGGED_DAYS} day.")
    return passed(f"On 15 releases and 4 untagged builds, repository {name}'s lifecycle policy keeps v6-v15 and expires "
                  "v1-v5 and the untagged builds older than a day.")


@check("L05.05", "The catalog image is pushed to the repository as v1", step=2, points=1,
       hint="Build labkit/assets/catalog-service with labkit.images.build and push it with "
            "labkit.images.push(image, repository_uri, tag='v1').",
       docs=f"{DOCS}#images-and-registries")
def image_pushed(t: Target):
    if _repo(t) is None:
        return _no_repo(t)
    tagged = [i for i in _images(t) if TAG in (i.get("imageTags") or [])]
    if not tagged:
        return failed(f"Repository {repo_name(t)} holds no image tagged {TAG}.")
    return passed(f"Repository {repo_name(t)} holds {TAG} ({tagged[0]['imageDigest'][:19]}).")


# -- step 3: roles, logs, the secret ----------------------------------------------------

def _role_or_fail(t: Target, name: str):
    role = iam.role(t, name)
    return role, (None if role else failed(f"IAM role {name} does not exist."))


@check("L05.06", "The task role and the execution role are two roles, each trusted by ECS tasks alone", step=3,
       points=2, hint="create_role <prefix>-catalog-execution and <prefix>-catalog-task, each with a trust policy whose "
                      "only principal is {\"Service\": \"ecs-tasks.amazonaws.com\"}.",
       docs=f"{DOCS}#task-and-execution-roles")
def roles_separate(t: Target):
    for name in (execution_role(t), task_role(t)):
        role, problem = _role_or_fail(t, name)
        if problem:
            return problem
        trusted, others = iam.trusted_principals(role, ECS_TASKS)
        if others:
            return failed(f"Role {name} may also be assumed by {', '.join(others)}; trust {ECS_TASKS} only.")
        if not trusted:
            return failed(f"Role {name} does not trust {ECS_TASKS}, so ECS cannot use it for the tasks.")
    td = _task_definition(t)
    if td is not None:
        exec_arn, task_arn = td.get("executionRoleArn"), td.get("taskRoleArn")
        if exec_arn and exec_arn == task_arn:
            return failed(f"Task definition {family(t)} uses {exec_arn} as both task role and execution role; the "
                          "service's code would hold the rights to pull images and read every secret.")
    return passed(f"Roles {execution_role(t)} and {task_role(t)} are separate and trusted by {ECS_TASKS} only.")


def _log_arn(t: Target) -> str:
    return arn(t, "logs", f"log-group:{log_group(t)}")


def _secret_arn(t: Target) -> str | None:
    found = t.memo("lab05.secret", lambda: absent(lambda: t.client("secretsmanager").describe_secret(
        SecretId=secret_name(t)), "ResourceNotFoundException"))
    return (found or {}).get("ARN")


def _least(policies, needed, beyond) -> tuple[list[str], list[str]]:
    """(the needed requests not allowed, the requests beyond the job that are allowed), by the one evaluator."""
    return ([f"{a} on {r}" for a, r in needed if not iam.allows(policies, a, r)], iam.beyond(policies, beyond))


@check("L05.07", "The execution role may pull this image, write this log group and read this secret, nothing more",
       step=3, points=3,
       hint="Inline policy: ecr:GetAuthorizationToken on *, ecr:BatchGetImage, ecr:GetDownloadUrlForLayer and "
            "ecr:BatchCheckLayerAvailability on the repository's ARN; logs:CreateLogStream and logs:PutLogEvents on "
            "the log group's ARN followed by :*; secretsmanager:GetSecretValue on the secret's ARN. Not "
            "AmazonECSTaskExecutionRolePolicy: it reaches every repository and log group.",
       docs=f"{DOCS}#task-and-execution-roles")
def execution_least_privilege(t: Target):
    name = execution_role(t)
    _, problem = _role_or_fail(t, name)
    if problem:
        return problem
    repo = arn(t, "ecr", f"repository/{repo_name(t)}")
    stream = f"{_log_arn(t)}:log-stream:catalog/catalog/0123"
    secret = _secret_arn(t) or arn(t, "secretsmanager", f"secret:{secret_name(t)}-AbCdEf")
    needed = [("ecr:GetAuthorizationToken", "*"), ("ecr:BatchGetImage", repo), ("ecr:GetDownloadUrlForLayer", repo),
              ("logs:CreateLogStream", stream), ("logs:PutLogEvents", stream), ("secretsmanager:GetSecretValue", secret)]
    other_repo = arn(t, "ecr", "repository/payments")
    beyond = [("ecr:BatchGetImage", other_repo), ("ecr:PutImage", repo), ("ecr:DeleteRepository", repo),
              ("logs:PutLogEvents", arn(t, "logs", "log-group:/aws/lambda/payments:log-stream:x")),
              ("logs:DeleteLogGroup", _log_arn(t)),
              ("secretsmanager:GetSecretValue", arn(t, "secretsmanager", "secret:prod/db-password-AbCdEf")),
              ("secretsmanager:PutSecretValue", secret), ("dynamodb:Scan", arn(t, "dynamodb", f"table/{table_name(t)}")),
              ("iam:PassRole", f"arn:aws:iam::{t.account_id}:role/admin"), ("s3:GetObject", "arn:aws:s3:::any-bucket/x")]
    missing, extra = _least(iam.role_policies(t, name), needed, beyond)
    if extra:
        return failed(f"Role {name} allows {iam.short(extra)}, which starting the tasks never needs.")
    if missing:
        return failed(f"Role {name} does not allow {iam.short(missing)}; the tasks could not start.")
    return passed(f"Role {name} may pull from {repo_name(t)}, write to {log_group(t)} and read {secret_name(t)}, "
                  "and nothing beyond.")


@check("L05.08", "The task role may read the catalog table, nothing more", step=3, points=3,
       hint="Inline policy on <prefix>-catalog-task: dynamodb:GetItem and dynamodb:Scan on the catalog table's ARN "
            "only (the service reads; it never writes).",
       docs=f"{DOCS}#task-and-execution-roles")
def task_least_privilege(t: Target):
    name = task_role(t)
    _, problem = _role_or_fail(t, name)
    if problem:
        return problem
    table = arn(t, "dynamodb", f"table/{table_name(t)}")
    needed = [("dynamodb:GetItem", table), ("dynamodb:Scan", table)]
    beyond = [("dynamodb:PutItem", table), ("dynamodb:DeleteItem", table), ("dynamodb:UpdateItem", table),
              ("dynamodb:DeleteTable", table), *(("dynamodb:GetItem", other) for other in iam.outside_tables(t, table_name(t))),
              ("ecr:BatchGetImage", arn(t, "ecr", f"repository/{repo_name(t)}")),
              ("secretsmanager:GetSecretValue", _secret_arn(t) or arn(t, "secretsmanager", f"secret:{secret_name(t)}")),
              ("s3:GetObject", "arn:aws:s3:::any-bucket/x"), ("iam:PassRole", f"arn:aws:iam::{t.account_id}:role/admin")]
    missing, extra = _least(iam.role_policies(t, name), needed, beyond)
    if extra:
        return failed(f"Role {name} allows {iam.short(extra)}, which the catalog service never does.")
    if missing:
        return failed(f"Role {name} does not allow {iam.short(missing)}; the service's reads would be denied.")
    return passed(f"Role {name} may GetItem and Scan table {table_name(t)}, and nothing else.")


@check("L05.09", "The service's log group keeps its logs for a set time and carries the course tags", step=3, points=1,
       hint="create_log_group /ecs/<prefix>-catalog with tags=t.tag_map('05'), then put_retention_policy (14 days).",
       docs=f"{DOCS}#logs")
def log_group_ready(t: Target):
    logs = t.client("logs")
    name = log_group(t)
    group = next((g for g in logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
                  if g["logGroupName"] == name), None)
    if group is None:
        return failed(f"Log group {name} does not exist.")
    if not group.get("retentionInDays"):
        return failed(f"Log group {name} keeps logs for ever (and bills them); set a retention period.")
    tags = logs.list_tags_log_group(logGroupName=name).get("tags", {})
    wrong = missing_tags([{"Key": k, "Value": v} for k, v in tags.items()], t.tag_map(LAB))
    if wrong:
        return failed(f"Log group {name} lacks the tags {', '.join(wrong)}.")
    return passed(f"Log group {name} keeps logs {group['retentionInDays']} days and is tagged.")


# -- step 4: the task definition ---------------------------------------------------------

@check("L05.10", "The task definition runs on Fargate with awsvpc networking and a size Fargate offers", step=4,
       points=3, hint="requiresCompatibilities [\"FARGATE\"], networkMode awsvpc, and task-level cpu/memory from "
                      "Fargate's table: 256 CPU units with 512, 1024 or 2048 MiB, 512 with 1-4 GB, and so on.",
       docs=f"{DOCS}#fargate-sizes")
def fargate_task(t: Target):
    td = _task_definition(t)
    if td is None:
        return _no_task_definition(t)
    rev = f"{family(t)}:{td.get('revision')}"
    if "FARGATE" not in (td.get("requiresCompatibilities") or []):
        return failed(f"Task definition {rev} does not require FARGATE compatibility.")
    if td.get("networkMode") != "awsvpc":
        return failed(f"Task definition {rev} uses network mode {td.get('networkMode') or 'bridge'}; AWS says "
                      "\"Fargate only supports network mode 'awsvpc'\": each task gets its own network interface.")
    try:
        cpu, memory = int(td.get("cpu")), int(td.get("memory"))
    except (TypeError, ValueError):
        return failed(f"Task definition {rev} sets no task-level cpu and memory; Fargate requires both.")
    if memory not in FARGATE_SIZES.get(cpu, ()):
        offered = FARGATE_SIZES.get(cpu)
        fix = (f"with {cpu} CPU units Fargate offers {', '.join(map(str, offered))} MiB" if offered else
               f"Fargate's CPU sizes are {', '.join(map(str, FARGATE_SIZES))} units")
        return failed(f"Task definition {rev} asks for {cpu} CPU units and {memory} MiB, a size Fargate does not "
                      f"offer; {fix}.")
    return passed(f"Task definition {rev} runs on Fargate with awsvpc, {cpu} CPU units and {memory} MiB.")


@check("L05.11", "The container logs through awslogs into the service's log group, with an execution role to do it",
       step=4, points=2,
       hint="logConfiguration logDriver awslogs, options awslogs-group /ecs/<prefix>-catalog, awslogs-region and "
            "awslogs-stream-prefix; executionRoleArn is the execution role (awslogs and secrets need one).",
       docs=f"{DOCS}#logs")
def task_logs(t: Target):
    td = _task_definition(t)
    if td is None:
        return _no_task_definition(t)
    rev = f"{family(t)}:{td.get('revision')}"
    container = _container(td)
    if container is None:
        return failed(f"Task definition {rev} has no container named {CONTAINER}.")
    log = container.get("logConfiguration") or {}
    if log.get("logDriver") != "awslogs":
        return failed(f"Container {CONTAINER} in {rev} does not log through awslogs, so its output is lost.")
    if (log.get("options") or {}).get("awslogs-group") != log_group(t):
        return failed(f"Container {CONTAINER} in {rev} logs to {(log.get('options') or {}).get('awslogs-group')}, "
                      f"not {log_group(t)}.")
    uses = ["awslogs"] + (["secrets"] if any(c.get("secrets") for c in td.get("containerDefinitions", [])) else [])
    want = f"arn:aws:iam::{t.account_id}:role/{execution_role(t)}"
    if not td.get("executionRoleArn"):
        return failed(f"Task definition {rev} uses {' and '.join(uses)} but has no execution role; AWS refuses it: "
                      "the agent needs a role to write logs and fetch secrets.")
    if td["executionRoleArn"] != want:
        return failed(f"Task definition {rev}'s execution role is {td['executionRoleArn']}, not {want}.")
    return passed(f"Container {CONTAINER} logs to {log_group(t)} through awslogs, as execution role {execution_role(t)}.")


@check("L05.12", "The container runs as a non-root user and has a health check", step=4, points=2,
       hint="Set the container's user to the image's USER (\"10001\") and a healthCheck command that fetches /health.",
       docs=f"{DOCS}#the-task-definition")
def non_root(t: Target):
    td = _task_definition(t)
    if td is None:
        return _no_task_definition(t)
    container = _container(td)
    rev = f"{family(t)}:{td.get('revision')}"
    if container is None:
        return failed(f"Task definition {rev} has no container named {CONTAINER}.")
    user = str(container.get("user") or "")
    if not user or user.split(":")[0] in ("0", "root"):
        return failed(f"Container {CONTAINER} in {rev} runs as {user or 'the image default'}; set user to a non-root "
                      "id such as 10001, so a break-in does not get root in the container.")
    if not (container.get("healthCheck") or {}).get("command"):
        return failed(f"Container {CONTAINER} in {rev} has no health check, so ECS cannot tell a hung task from a "
                      "healthy one.")
    return passed(f"Container {CONTAINER} in {rev} runs as user {user} with a health check.")


def _looks_secret(name: str) -> bool:
    upper = name.upper()
    return any(word in upper for word in SECRET_WORDS)


@check("L05.13", "No secret sits in a plain environment variable; the API token comes from Secrets Manager",
       step=4, points=2,
       hint="Move API_TOKEN from environment to secrets: {\"name\": \"API_TOKEN\", \"valueFrom\": <the secret's ARN>}.",
       docs=f"{DOCS}#secrets")
def no_plain_secrets(t: Target):
    td = _task_definition(t)
    if td is None:
        return _no_task_definition(t)
    rev = f"{family(t)}:{td.get('revision')}"
    for container in td.get("containerDefinitions", []):
        plain = [e["name"] for e in container.get("environment", []) if _looks_secret(e.get("name", ""))]
        if plain:
            return failed(f"Container {container['name']} in {rev} holds {', '.join(plain)} in plain environment "
                          "variables, readable by anyone who can describe the task definition; use secrets.")
    container = _container(td) or {}
    secret = next((s for s in container.get("secrets", []) if s.get("name") == SECRET_ENV), None)
    if secret is None:
        return failed(f"Container {CONTAINER} in {rev} gets no {SECRET_ENV} from secrets.")
    source = str(secret.get("valueFrom", ""))
    if not source.startswith(("arn:aws:secretsmanager:", "arn:aws:ssm:")):
        return failed(f"{SECRET_ENV} in {rev} comes from {source!r}, not a Secrets Manager or SSM ARN.")
    return passed(f"{rev} passes {SECRET_ENV} from {source.split(':')[2]} and holds no secret in plain variables.")


# -- step 5: the load balancer ------------------------------------------------------------

@check("L05.14", "An internet-facing ALB in the public subnets forwards port 80 to an ip target group checking /health",
       step=5, points=3,
       hint="create_load_balancer <prefix>-catalog (internet-facing, the two public subnets, <prefix>-catalog-alb), "
            "create_target_group <prefix>-catalog (TargetType ip, HTTP 8080, HealthCheckPath /health), and a listener "
            "on 80 forwarding to it.",
       docs=f"{DOCS}#load-balancing-and-health")
def load_balancer(t: Target):
    lb, tg = _load_balancer(t), _target_group(t)
    if lb is None:
        return failed(f"There is no load balancer {lb_name(t)}.")
    name = lb_name(t)
    if lb.get("Type") != "application" or lb.get("Scheme") != "internet-facing":
        return failed(f"Load balancer {name} is {lb.get('Scheme')} {lb.get('Type')}; the front door is an "
                      "internet-facing application load balancer.")
    public = _public_subnet_ids(t)
    private = [z["SubnetId"] for z in lb.get("AvailabilityZones", []) if z.get("SubnetId") not in public]
    if private:
        return failed(f"Load balancer {name} sits in {', '.join(private)}, not a public subnet of {vpc_name(t)}.")
    group = _group(t, alb_group(t))
    if group is None or group["GroupId"] not in lb.get("SecurityGroups", []):
        return failed(f"Load balancer {name} does not use security group {alb_group(t)}.")
    if tg is None:
        return failed(f"There is no target group {tg_name(t)}.")
    if tg.get("TargetType") != "ip" or tg.get("Port") != CONTAINER_PORT:
        return failed(f"Target group {tg_name(t)} is type {tg.get('TargetType')} on port {tg.get('Port')}; Fargate "
                      f"tasks register by IP, on {CONTAINER_PORT}.")
    if tg.get("HealthCheckPath") != HEALTH_PATH:
        return failed(f"Target group {tg_name(t)} checks {tg.get('HealthCheckPath')}, not {HEALTH_PATH}.")
    listener = _listener(t)
    if listener is None:
        return failed(f"Load balancer {name} has no listener on port {LISTENER_PORT}.")
    forwards = [a for a in listener.get("DefaultActions", []) if a.get("Type") == "forward"]
    targets = {a.get("TargetGroupArn") for a in forwards} | {
        g.get("TargetGroupArn") for a in forwards for g in (a.get("ForwardConfig") or {}).get("TargetGroups", [])}
    if tg["TargetGroupArn"] not in targets:
        return failed(f"The listener on port {LISTENER_PORT} of {name} does not forward to {tg_name(t)}.")
    return passed(f"Load balancer {name} (internet-facing, public subnets) forwards port {LISTENER_PORT} to "
                  f"{tg_name(t)}, which checks {HEALTH_PATH} on {CONTAINER_PORT}.")


# -- step 6: the service -------------------------------------------------------------------

@check("L05.15", "The service runs its tasks in the private subnets, without public IPs, behind the target group",
       step=6, points=3,
       hint="create_service with launchType FARGATE, networkConfiguration awsvpcConfiguration: the two private "
            "subnets, security group <prefix>-catalog-tasks, assignPublicIp DISABLED; loadBalancers: the target "
            "group, container catalog, port 8080.",
       docs=f"{DOCS}#the-service")
def service_placement(t: Target):
    svc = _service(t)
    if svc is None:
        return _no_service(t)
    name = service_name(t)
    if svc.get("launchType") != "FARGATE" and not any(
            s.get("capacityProvider", "").startswith("FARGATE") for s in svc.get("capacityProviderStrategy") or []):
        return failed(f"Service {name} does not run on Fargate.")
    net = (svc.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
    public = _public_subnet_ids(t)
    private = {s["SubnetId"] for s in _subnets(t) if s["CidrBlock"] in PRIVATE_CIDRS}
    subnets = set(net.get("subnets") or [])
    if not subnets or subnets & public or not subnets <= private:
        return failed(f"Service {name} places tasks in {', '.join(sorted(subnets)) or 'no subnet'}; use the two "
                      f"private subnets of {vpc_name(t)} only.")
    if len(subnets) < 2:
        return failed(f"Service {name} uses one subnet; give it both private subnets so tasks spread over two zones.")
    if net.get("assignPublicIp") == "ENABLED":
        return failed(f"Service {name} gives its tasks public IPs; set assignPublicIp DISABLED.")
    group = _group(t, task_group(t))
    if group is None or set(net.get("securityGroups") or []) != {group["GroupId"]}:
        return failed(f"Service {name}'s tasks do not use security group {task_group(t)} alone.")
    tg = _target_group(t)
    attached = [lb for lb in svc.get("loadBalancers", []) if tg and lb.get("targetGroupArn") == tg["TargetGroupArn"]]
    if not attached or attached[0].get("containerName") != CONTAINER or attached[0].get("containerPort") != CONTAINER_PORT:
        return failed(f"Service {name} does not register container {CONTAINER}:{CONTAINER_PORT} in target group "
                      f"{tg_name(t)}.")
    return passed(f"Service {name} runs on Fargate in the private subnets with {task_group(t)}, no public IPs, behind "
                  f"{tg_name(t)}.")


@check("L05.16", "The service keeps two tasks and rolls a failing deployment back with the circuit breaker", step=6,
       points=2,
       hint="desiredCount 2, deploymentConfiguration deploymentCircuitBreaker {enable: True, rollback: True}, "
            "minimumHealthyPercent 100, maximumPercent 200, and healthCheckGracePeriodSeconds (30).",
       docs=f"{DOCS}#circuit-breaker")
def circuit_breaker(t: Target):
    svc = _service(t)
    if svc is None:
        return _no_service(t)
    name = service_name(t)
    if (svc.get("desiredCount") or 0) < 2:
        return failed(f"Service {name} wants {svc.get('desiredCount')} task(s); run two so one can fail or be replaced "
                      "while the other serves.")
    config = svc.get("deploymentConfiguration") or {}
    breaker = config.get("deploymentCircuitBreaker") or {}
    if not (breaker.get("enable") and breaker.get("rollback")):
        return failed(f"Service {name}'s deployment circuit breaker is {'on without rollback' if breaker.get('enable') else 'off'}; "
                      "enable it with rollback, or a broken revision keeps failing.")
    if (config.get("minimumHealthyPercent") if config.get("minimumHealthyPercent") is not None else 100) < 100:
        return failed(f"Service {name} may drop below its desired count while deploying (minimumHealthyPercent "
                      f"{config['minimumHealthyPercent']}); keep 100.")
    if not svc.get("healthCheckGracePeriodSeconds"):
        return failed(f"Service {name} has no health-check grace period, so a slow start counts as a failure.")
    return passed(f"Service {name} keeps {svc['desiredCount']} tasks and rolls back a failing deployment.")


def _no_front(t: Target) -> Outcome | None:
    """A failed Outcome when there is no load balancer with a port-80 listener to send requests to."""
    if _load_balancer(t) is None:
        return failed(f"There is no load balancer {lb_name(t)} to send requests through.")
    if _listener(t) is None:
        return failed(f"Load balancer {lb_name(t)} has no listener on port {LISTENER_PORT}.")
    return None


def _url(t: Target) -> str:
    return balancers.url(t, lb_name(t), LISTENER_PORT)


def _table_count(t: Target) -> int:
    return t.client("dynamodb").scan(TableName=table_name(t), Select="COUNT")["Count"]


@check("L05.17", "A request through the load balancer reaches the service, which reads the catalog table", step=6,
       points=3,
       hint="The tasks must be running and healthy in the target group: read the service's events and the log "
            "group when the load balancer answers 502, 503 or 504.",
       docs=f"{DOCS}#load-balancing-and-health",
       acts="calls your API: GET /health and GET /items through the load balancer; stores nothing")
def through_the_alb(t: Target):
    missing = _no_front(t)
    if missing:
        return missing
    base = _url(t)
    status, body, _ = api.send(t, "GET", base + HEALTH_PATH, where="the load balancer", timeout=10, text=True)
    if status != 200:
        return failed(f"GET {HEALTH_PATH} through {lb_name(t)} answered {api.answer(status, body)}; expected 200 from "
                      "a healthy task.")
    if not (isinstance(body, dict) and body.get("source") == "table"):
        return failed(f"GET {HEALTH_PATH} through {lb_name(t)} says the service reads {body.get('source') if isinstance(body, dict) else body!r}, "
                      f"not the table: set CATALOG_TABLE={table_name(t)} in the task definition.")
    status, body, _ = api.send(t, "GET", base + "/items", where="the load balancer", timeout=10, text=True)
    items = body.get("items") if isinstance(body, dict) else None
    if status != 200 or not isinstance(items, list):
        return failed(f"GET /items through {lb_name(t)} answered {api.answer(status, body)}.")
    expected = _table_count(t)
    if len(items) != expected:
        return failed(f"GET /items through {lb_name(t)} returned {len(items)} items; table {table_name(t)} holds {expected}.")
    return passed(f"GET {HEALTH_PATH} and GET /items through {lb_name(t)} answered 200 with the {expected} items of "
                  f"table {table_name(t)}.")


# -- step 7: operating it --------------------------------------------------------------------

def _service_tasks(t: Target) -> list[dict]:
    return _running_tasks(t, cluster_name(t), serviceName=service_name(t))


@check("L05.18", "A killed task is replaced while requests through the load balancer keep succeeding", step=7,
       points=3,
       hint="Two tasks behind the target group and a service that replaces stopped tasks: with desiredCount 2, ECS "
            "starts a new task as soon as one stops, and the ALB sends requests to the healthy one meanwhile.",
       docs=f"{DOCS}#the-service",
       acts="calls your API: stops one of the service's tasks (ECS replaces it) and sends GET /health through the load "
            f"balancer every {PROBE_EVERY_S} s until the replacement runs, at most {int(KILL_DEADLINE_S)} s; stores nothing")
def replaced(t: Target):
    if t.is_live:
        return Outcome(Status.SKIP, f"The live grader only reads, so it stops no task of {service_name(t)}; stop one "
                                    "yourself and watch the service replace it.")
    svc = _service(t)
    if svc is None:
        return _no_service(t)
    before = _service_tasks(t)
    if len(before) < 2:
        return failed(f"Service {service_name(t)} has {len(before)} running task(s); it needs two so one can be "
                      "killed while the other serves.")
    missing = _no_front(t)
    if missing:
        return missing
    base = _url(t)
    deadline = time.monotonic() + KILL_DEADLINE_S
    while _healthy_targets(t) < svc["desiredCount"] and time.monotonic() < deadline:
        time.sleep(PROBE_EVERY_S)  # a replacement still in its first health checks is not serving yet
    victim = before[0]["taskArn"]
    t.behaviour_client("ecs", "StopTask").stop_task(cluster=cluster_name(t), task=victim, reason="course check L05.18")
    sent = failures = 0
    deadline = time.monotonic() + KILL_DEADLINE_S
    replacement = None
    while time.monotonic() < deadline:
        status = api.send(t, "GET", base + HEALTH_PATH, where="the load balancer", timeout=5)[0]
        sent, failures = sent + 1, failures + (status != 200)
        now = _service_tasks(t)
        fresh = [task for task in now if task["taskArn"] not in {b["taskArn"] for b in before}]
        if fresh and len(now) >= svc["desiredCount"] and _healthy_targets(t) >= svc["desiredCount"]:
            replacement = fresh[0]["taskArn"]
            break
        time.sleep(PROBE_EVERY_S)
    short = victim.rsplit("/", 1)[-1]
    if replacement is None:
        return failed(f"Task {short} was stopped and no replacement was running within {int(KILL_DEADLINE_S)} s.")
    if failures > max(1, int(sent * MAX_FAILED_SHARE)):
        return failed(f"Task {short} was replaced, but {failures} of {sent} requests through {lb_name(t)} failed "
                      "meanwhile; keep two healthy tasks behind the target group.")
    return passed(f"Task {short} was stopped and replaced by {replacement.rsplit('/', 1)[-1]}; {sent - failures} of "
                  f"{sent} requests through {lb_name(t)} succeeded meanwhile.")


def _healthy_targets(t: Target) -> int:
    group = _target_group(t)
    if group is None:
        return 0
    found = t.client("elbv2").describe_target_health(TargetGroupArn=group["TargetGroupArn"])["TargetHealthDescriptions"]
    return sum(d["TargetHealth"]["State"] == "healthy" for d in found)


def _revision(td_arn: str) -> int:
    try:
        return int(str(td_arn).rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return 0


@check("L05.19", "A deliberately broken revision was rolled back and the service still answers", step=7, points=3,
       hint="Register a revision whose command exits at once, update the service to it, and wait: the circuit "
            "breaker stops the deployment and returns the service to the revision that worked.",
       docs=f"{DOCS}#circuit-breaker",
       acts="calls your API: GET /health through the load balancer once; stores nothing")
def rolled_back(t: Target):
    svc = _service(t)
    if svc is None:
        return _no_service(t)
    name = service_name(t)
    primary = next((d for d in svc.get("deployments", []) if d.get("status") == "PRIMARY"), None)
    latest = _task_definition(t)
    if primary is None or latest is None:
        return failed(f"Service {name} has no primary deployment.")
    running, newest = _revision(primary["taskDefinition"]), int(latest.get("revision") or 0)
    if newest <= running:
        return failed(f"Service {name} runs {family(t)}:{running}, the newest revision: no broken revision was deployed "
                      "and rolled back (step 7 deploys one).")
    events = " ".join(e.get("message", "") for e in svc.get("events", [])).lower()
    failed_rollout = any(d.get("rolloutState") == "FAILED" for d in svc.get("deployments", []))
    if not (failed_rollout or "roll" in events):
        return failed(f"Service {name} runs {family(t)}:{running} while {family(t)}:{newest} exists, but neither its "
                      "deployments nor its events show a circuit-breaker rollback.")
    if primary.get("rolloutState") not in (None, "COMPLETED"):
        return failed(f"Service {name}'s rollback to {family(t)}:{running} is still {primary.get('rolloutState')}; "
                      "run the check again in a minute.")
    missing = _no_front(t)
    if missing:
        return missing
    status, body, _ = api.send(t, "GET", _url(t) + HEALTH_PATH, where="the load balancer", timeout=10, text=True)
    if status != 200:
        return failed(f"Service {name} rolled back to {family(t)}:{running}, but GET {HEALTH_PATH} through "
                      f"{lb_name(t)} answered {api.answer(status, body)}.")
    return passed(f"Broken revision {family(t)}:{newest} was rolled back; service {name} runs {family(t)}:{running} "
                  f"and answers 200 through {lb_name(t)}.")


def _admin_rule(t: Target) -> dict | None:
    listener = _listener(t)
    if listener is None:
        return None
    for rule in t.client("elbv2").describe_rules(ListenerArn=listener["ListenerArn"]).get("Rules", []):
        paths = [v for c in rule.get("Conditions", []) if c.get("Field") == "path-pattern"
                 for v in (c.get("Values") or (c.get("PathPatternConfig") or {}).get("Values") or [])]
        if RULE_PATH in paths:
            return rule
    return None


@check("L05.20", "A listener rule added while the service runs answers /admin/* with 403, without a restart", step=7,
       points=2,
       hint="create_rule on the port-80 listener: priority 10, path-pattern /admin/*, action fixed-response 403 "
            "(text/plain). The tasks keep running: the load balancer applies rules itself.",
       docs=f"{DOCS}#load-balancing-and-health",
       acts="calls your API: GET /admin/settings and GET /health through the load balancer; stores nothing")
def rule_change(t: Target):
    rule = _admin_rule(t)
    if rule is None:
        return failed(f"The port-{LISTENER_PORT} listener of {lb_name(t)} has no rule for {RULE_PATH}.")
    action = next(iter(rule.get("Actions", [])), {})
    answer = (action.get("FixedResponseConfig") or {}).get("StatusCode")
    if action.get("Type") != "fixed-response" or str(answer) != str(RULE_STATUS):
        return failed(f"The {RULE_PATH} rule of {lb_name(t)} does {action.get('Type')} {answer or ''}; answer with a "
                      f"fixed-response {RULE_STATUS}.".replace("  ", " "))
    base = _url(t)
    status, body, _ = api.send(t, "GET", base + RULE_PROBE, where="the load balancer", timeout=10, text=True)
    if status != RULE_STATUS:
        return failed(f"GET {RULE_PROBE} through {lb_name(t)} answered {api.answer(status, body)}, not {RULE_STATUS}: "
                      "the rule is not applied.")
    status, body, _ = api.send(t, "GET", base + HEALTH_PATH, where="the load balancer", timeout=10, text=True)
    if status != 200:
        return failed(f"The {RULE_PATH} rule answers {RULE_STATUS}, but GET {HEALTH_PATH} now answers "
                      f"{api.answer(status, body)}.")
    return passed(f"GET {RULE_PROBE} through {lb_name(t)} answers {RULE_STATUS} from the rule and GET {HEALTH_PATH} "
                  "still reaches the service.")


def _scalable_target(t: Target) -> dict | None:
    return t.memo("lab05.scalable", lambda: next(iter(t.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[scaling_resource(t)], ScalableDimension=ECS_DIMENSION)
        .get("ScalableTargets", [])), None))


def _request_policy(t: Target) -> dict | None:
    """The service's target-tracking policy on ALBRequestCountPerTarget (the one named for the lab, else any)."""
    def look():
        found = t.client("application-autoscaling").describe_scaling_policies(
            ServiceNamespace="ecs", ResourceId=scaling_resource(t), ScalableDimension=ECS_DIMENSION).get("ScalingPolicies", [])
        tracking = [p for p in found if p.get("PolicyType") == "TargetTrackingScaling" and (
            (p.get("TargetTrackingScalingPolicyConfiguration") or {}).get("PredefinedMetricSpecification") or {}
        ).get("PredefinedMetricType") == ALB_METRIC]
        return next((p for p in tracking if p.get("PolicyName") == scaling_policy(t)), next(iter(tracking), None))

    return t.memo("lab05.scaling-policy", look)


@check("L05.26", "The service scales between two and four tasks by target tracking on requests per target", step=7,
       points=2,
       hint="register_scalable_target ecs service/<prefix>-shop/<prefix>-catalog ecs:service:DesiredCount, MinCapacity 2, "
            "MaxCapacity 4; put_scaling_policy <prefix>-catalog-requests, TargetTrackingScaling, TargetValue 20, "
            "PredefinedMetricType ALBRequestCountPerTarget with ResourceLabel app/<alb>/<id>/targetgroup/<tg>/<id>.",
       docs=f"{DOCS}#service-auto-scaling")
def scaling_configured(t: Target):
    name = service_name(t)
    target = _scalable_target(t)
    if target is None:
        return failed(f"Service {name} is not a scalable target: register_scalable_target {scaling_resource(t)} "
                      f"{ECS_DIMENSION}.")
    low, high = int(target.get("MinCapacity") or 0), int(target.get("MaxCapacity") or 0)
    if low < SCALE_MIN:
        return failed(f"Service {name} may scale in to {low} task(s); keep MinCapacity at least {SCALE_MIN} so one "
                      "task's death never empties the target group.")
    if high <= low:
        return failed(f"Service {name}'s MaxCapacity {high} leaves no room above MinCapacity {low} to scale out.")
    policy = _request_policy(t)
    if policy is None:
        return failed(f"Service {name} has no target-tracking policy on {ALB_METRIC}.")
    config = policy.get("TargetTrackingScalingPolicyConfiguration") or {}
    label = (config.get("PredefinedMetricSpecification") or {}).get("ResourceLabel")
    lb, tg = _load_balancer(t), _target_group(t)
    expected = label_of(lb["LoadBalancerArn"], tg["TargetGroupArn"]) if lb and tg else None
    if expected is None or label != expected:
        return failed(f"Policy {policy['PolicyName']} counts requests of {label or 'no target group'}, not of "
                      f"{lb_name(t)}'s target group {tg_name(t)}.")
    if config.get("DisableScaleIn"):
        return failed(f"Policy {policy['PolicyName']} never scales in (DisableScaleIn): the service would keep its "
                      "peak capacity, and its cost, for ever.")
    return passed(f"Service {name} scales between {low} and {high} tasks on {ALB_METRIC} of {tg_name(t)}, target "
                  f"{config.get('TargetValue'):g} requests per target per minute.")


def _desired_in(activity: dict) -> int | None:
    words = str(activity.get("Description", "")).rstrip(".").split()
    return int(words[-1]) if words and words[-1].isdigit() else None


@check("L05.27", "Load through the load balancer made the policy scale the service out, within its bounds", step=7,
       points=2,
       hint="Send requests through the load balancer above the target value (20 per task per minute) for three "
            "minutes in a row: the policy raises desiredCount, and the scaling activity says so.",
       docs=f"{DOCS}#service-auto-scaling")
def scaled_out(t: Target):
    svc = _service(t)
    if svc is None:
        return _no_service(t)
    target, policy = _scalable_target(t), _request_policy(t)
    if target is None or policy is None:
        return failed(f"Service {service_name(t)} has no scalable target with an {ALB_METRIC} policy to scale it.")
    low, high = int(target.get("MinCapacity") or 0), int(target.get("MaxCapacity") or 0)
    found = t.client("application-autoscaling").describe_scaling_activities(
        ServiceNamespace="ecs", ResourceId=scaling_resource(t), ScalableDimension=ECS_DIMENSION).get("ScalingActivities", [])
    by_policy = [a for a in found if a.get("StatusCode") == "Successful"
                 and str(a.get("Cause", "")).endswith(f"triggered policy {policy['PolicyName']}")]
    out = next((a for a in by_policy if (_desired_in(a) or 0) > low), None)
    if out is None:
        return failed(f"No successful scaling activity of policy {policy['PolicyName']} raised service "
                      f"{service_name(t)}'s desired count: send load through {lb_name(t)} above the target value.")
    desired = int(svc.get("desiredCount") or 0)
    if not low <= desired <= high:
        return failed(f"Service {service_name(t)} wants {desired} tasks, outside its scaling bounds {low}-{high}.")
    now = f"now wants {desired} and runs {svc.get('runningCount', 0)}"
    return passed(f"Policy {policy['PolicyName']} scaled service {service_name(t)} out to {_desired_in(out)} tasks "
                  f"({out.get('Description')}); it {now}, within {low}-{high}.")


# -- step 8: the EC2 launch type -------------------------------------------------------------

def _ec2_service(t: Target) -> dict | None:
    return _service(t, ec2_cluster_name(t), service_name(t))


@check("L05.21", "On the EC2 launch type the service spreads by zone, binpacks on memory, one task per instance on t3",
       step=8, points=2,
       hint="The service <prefix>-catalog on cluster <prefix>-shop-ec2: launchType EC2, placementStrategy [spread "
            "attribute:ecs.availability-zone, binpack memory], placementConstraints [distinctInstance, memberOf "
            "\"attribute:ecs.instance-type =~ t3.*\"].",
       docs=f"{DOCS}#placement")
def placement_config(t: Target):
    svc = _ec2_service(t)
    if svc is None:
        return _no_service(t, ec2_cluster_name(t))
    name = f"{service_name(t)} on {ec2_cluster_name(t)}"
    if svc.get("launchType") != "EC2":
        return failed(f"Service {name} uses launch type {svc.get('launchType')}, not EC2.")
    strategy = [{k: s.get(k) for k in ("type", "field")} for s in svc.get("placementStrategy") or []]
    if strategy[:2] != [SPREAD_ZONE, BINPACK_MEMORY]:
        shown = ", ".join(f"{s['type']} {s['field']}" for s in strategy) or "none"
        return failed(f"Service {name}'s placement strategy is {shown}; use spread "
                      f"{SPREAD_ZONE['field']} first, then binpack {BINPACK_MEMORY['field']}.")
    constraints = svc.get("placementConstraints") or []
    kinds = {c.get("type") for c in constraints}
    if "distinctInstance" not in kinds:
        return failed(f"Service {name} has no distinctInstance constraint, so two tasks may share an instance.")
    member = [c.get("expression", "").replace(" ", "") for c in constraints if c.get("type") == "memberOf"]
    if MEMBER_OF.replace(" ", "") not in member:
        return failed(f"Service {name} has no memberOf constraint {MEMBER_OF!r}.")
    return passed(f"Service {name} spreads by zone, binpacks on memory, and runs one task per t3 instance.")


@check("L05.22", "The EC2 tasks run where the strategy says: distinct t3 instances in two zones", step=8, points=2,
       hint="Register three t3 container instances in the two private subnets (the agent does it on a live account) "
            "and run the service with desiredCount 2; ECS places the tasks.",
       docs=f"{DOCS}#placement")
def placed(t: Target):
    svc = _ec2_service(t)
    if svc is None:
        return _no_service(t, ec2_cluster_name(t))
    cluster = ec2_cluster_name(t)
    tasks = _running_tasks(t, cluster, placed=True, family=ec2_family(t))
    if len(tasks) < EC2_TASKS:
        return failed(f"Cluster {cluster} runs {len(tasks)} task(s) of {ec2_family(t)}; the service wants {EC2_TASKS}.")
    arns = sorted({task.get("containerInstanceArn") for task in tasks if task.get("containerInstanceArn")})
    if len(arns) < len(tasks):
        return failed(f"{len(tasks)} tasks of {ec2_family(t)} share {len(arns)} container instance(s); distinctInstance "
                      "puts each on its own.")
    described = t.client("ecs").describe_container_instances(cluster=cluster, containerInstances=arns)["containerInstances"]
    attrs = [{a["name"]: a.get("value") for a in ci.get("attributes", [])} for ci in described]
    wrong = [a.get("ecs.instance-type") for a in attrs if not str(a.get("ecs.instance-type", "")).startswith("t3.")]
    if wrong:
        return failed(f"A task of {ec2_family(t)} runs on a {wrong[0]} instance; memberOf allows t3 only.")
    zones = {a.get("ecs.availability-zone") for a in attrs}
    if len(zones) < 2:
        return failed(f"The tasks of {ec2_family(t)} all run in {zones.pop()}; spread by zone puts them in two.")
    return passed(f"{len(tasks)} tasks of {ec2_family(t)} run on distinct t3 instances in {', '.join(sorted(zones))}"
                  f"{_graded_where(t)}.")


# What the local AWS ran the EC2 tasks on, said with the grade (a live account needs no such word).
GRADED_WHERE = {
    "namespaces": " (graded on the local AWS, where each container instance is a network namespace of its own at its "
                  "private address and each awsvpc task another)",
    "loopback": " (graded on the local AWS in loopback mode: no network namespaces on this machine, so tasks share "
                "its loopback)",
}


def _graded_where(t: Target) -> str:
    if t.is_live:
        return ""
    from labkit.localaws.control import network_mode

    return GRADED_WHERE.get(network_mode(t.endpoint) or "", "")


# -- step 9: EKS -------------------------------------------------------------------------------

@check("L05.23", "The EKS cluster's API is private, its control plane logs, and it encrypts Kubernetes secrets", step=9,
       points=3,
       hint="create_cluster <prefix>-eks in the private subnets with endpointPrivateAccess True and "
            "endpointPublicAccess False, logging for api, audit and authenticator, and encryptionConfig "
            "[{resources: [\"secrets\"], provider: {keyArn: <a KMS key>}}].",
       docs=f"{DOCS}#ecs-and-eks")
def eks_cluster(t: Target):
    cluster = _eks(t)
    if cluster is None:
        return _no_eks(t)
    name = eks_name(t)
    vpc = cluster.get("resourcesVpcConfig") or {}
    if vpc.get("endpointPublicAccess", True) or not vpc.get("endpointPrivateAccess"):
        return failed(f"EKS cluster {name}'s API endpoint is reachable from the internet; set endpointPublicAccess "
                      "False and endpointPrivateAccess True.")
    public = _public_subnet_ids(t)
    if set(vpc.get("subnetIds") or []) & public:
        return failed(f"EKS cluster {name} uses public subnets; give it the private ones.")
    enabled = {kind for entry in (cluster.get("logging") or {}).get("clusterLogging", []) if entry.get("enabled")
               for kind in entry.get("types", [])}
    missing = [k for k in EKS_LOG_TYPES if k not in enabled]
    if missing:
        return failed(f"EKS cluster {name} does not log {', '.join(missing)} from its control plane.")
    keys = [e.get("provider", {}).get("keyArn") for e in cluster.get("encryptionConfig") or []
            if "secrets" in e.get("resources", [])]
    if not keys or not keys[0]:
        return failed(f"EKS cluster {name} does not encrypt Kubernetes secrets with a KMS key.")
    key = absent(lambda: t.client("kms").describe_key(KeyId=keys[0]), "NotFoundException")
    if key is None or key["KeyMetadata"].get("KeyState") != "Enabled":
        return failed(f"EKS cluster {name} encrypts secrets with {keys[0]}, which is not an enabled KMS key.")
    return passed(f"EKS cluster {name} has a private API endpoint, logs {', '.join(EKS_LOG_TYPES)}, and encrypts secrets.")


@check("L05.24", "A managed node group and a Fargate profile run in the private subnets, each with its own role", step=9,
       points=2,
       hint="create_nodegroup <prefix>-nodes (private subnets, role trusted by ec2.amazonaws.com, 2-4 nodes) and "
            "create_fargate_profile <prefix>-catalog (private subnets, namespace catalog, pod execution role trusted "
            "by eks-fargate-pods.amazonaws.com).",
       docs=f"{DOCS}#ecs-and-eks")
def eks_compute(t: Target):
    if _eks(t) is None:
        return _no_eks(t)
    eks = t.client("eks")
    name = eks_name(t)
    group = (absent(lambda: eks.describe_nodegroup(clusterName=name, nodegroupName=nodegroup_name(t)),
                    "ResourceNotFoundException") or {}).get("nodegroup")
    if group is None:
        return failed(f"EKS cluster {name} has no node group {nodegroup_name(t)}.")
    profile = (absent(lambda: eks.describe_fargate_profile(clusterName=name, fargateProfileName=profile_name(t)),
                      "ResourceNotFoundException") or {}).get("fargateProfile")
    if profile is None:
        return failed(f"EKS cluster {name} has no Fargate profile {profile_name(t)}.")
    public = _public_subnet_ids(t)
    for what, subnets in ((f"node group {nodegroup_name(t)}", group.get("subnets")),
                          (f"Fargate profile {profile_name(t)}", profile.get("subnets"))):
        if not subnets or set(subnets) & public:
            return failed(f"The {what} of {name} is not in the private subnets only.")
    if (group.get("scalingConfig") or {}).get("minSize", 0) < 2:
        return failed(f"Node group {nodegroup_name(t)} may shrink below two nodes, one per zone.")
    if FARGATE_NAMESPACE not in [s.get("namespace") for s in profile.get("selectors", [])]:
        return failed(f"Fargate profile {profile_name(t)} does not select namespace {FARGATE_NAMESPACE}.")
    node_role, pod_role = group.get("nodeRole"), profile.get("podExecutionRoleArn")
    if node_role == pod_role:
        return failed(f"The node group and the Fargate profile of {name} share role {node_role}; give each its own.")
    for role_arn, service in ((node_role, "ec2.amazonaws.com"), (pod_role, "eks-fargate-pods.amazonaws.com")):
        role = iam.role(t, str(role_arn).rsplit("/", 1)[-1])
        if role is None:
            return failed(f"Role {role_arn} does not exist.")
        trusted, others = iam.trusted_principals(role, service)
        if not trusted or others:
            return failed(f"Role {role['RoleName']} should be trusted by {service} alone.")
    return passed(f"Node group {nodegroup_name(t)} and Fargate profile {profile_name(t)} run in the private subnets, "
                  "each with its own role.")


@check("L05.25", "Cluster access is granted by EKS access entries, not the aws-auth ConfigMap", step=9, points=1,
       hint="create_cluster with accessConfig {authenticationMode: \"API\"}; then grant people with access entries.",
       docs=f"{DOCS}#ecs-and-eks", local=LOCAL_PARTIAL,
       local_note="moto implements neither access entries nor the cluster's access configuration")
def eks_access(t: Target):
    cluster = _eks(t)
    if cluster is None:
        return _no_eks(t)
    if t.is_local:
        return skipped(f"EKS cluster {eks_name(t)}'s authentication mode cannot be read from the local AWS")
    mode = (cluster.get("accessConfig") or {}).get("authenticationMode", "CONFIG_MAP")
    if mode == "CONFIG_MAP":
        return failed(f"EKS cluster {eks_name(t)} grants access through the aws-auth ConfigMap only; use "
                      "authenticationMode API (access entries are IAM-audited and cannot lock you out).")
    return passed(f"EKS cluster {eks_name(t)} grants access with access entries ({mode}).")
