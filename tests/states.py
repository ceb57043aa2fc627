"""AWS states for the check tests, built with boto3 on a Target.

``build_lab00`` and ``build_lab01`` mirror the solution code of
``course/00-setup.py`` and ``course/01-static-front-end.py``: with no
arguments they build the correct end state of the lab. Every keyword changes
one thing, so a test can build a state that is wrong in exactly one way.
Both return a dict of the names and ids the tests need (and format their
expected messages with).
"""
from __future__ import annotations

import json
from typing import Callable

from labkit.assets import SITE_DIR, content_type, site_files
from labkit.config import COURSE_ID
from labkit.target import Target

CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
LEGACY_OAI = "E2QWRUHAPOMQZL"
OAI_PRINCIPAL = {"AWS": f"arn:aws:iam::cloudfront:user/CloudFront Origin Access Identity {LEGACY_OAI}"}
DEFAULT = object()  # "as the solution does it"


# -- lab 00 -----------------------------------------------------------------------

def alert(threshold: float = 80, *, kind: str = "ACTUAL", threshold_type: str = "PERCENTAGE",
          operator: str = "GREATER_THAN", email: str = "learner@example.com") -> dict:
    """One NotificationWithSubscribers entry for create_budget (the solution's alert by default)."""
    return {
        "Notification": {"NotificationType": kind, "ComparisonOperator": operator,
                         "Threshold": threshold, "ThresholdType": threshold_type},
        "Subscribers": [{"SubscriptionType": "EMAIL", "Address": email}],  # AWS needs at least one
    }


def build_lab00(
    t: Target,
    *,
    parameter: bool = True,
    value: str | None = None,
    param_type: str = "String",
    tags: list[dict] | None = DEFAULT,
    budget: bool = True,
    budget_type: str = "COST",
    time_unit: str = "MONTHLY",
    limit: str = "10",
    unit: str = "USD",
    notifications: list[dict] = DEFAULT,
) -> dict:
    """The end state of lab 00: the tagged settings parameter and the cost budget."""
    name = f"/{COURSE_ID}/{t.prefix}/config"
    budget_name = t.name("course-budget")
    if parameter:
        ssm = t.client("ssm")
        ssm.put_parameter(Name=name, Type=param_type, Overwrite=True,
                          Value=value if value is not None else json.dumps({"prefix": t.prefix, "region": t.region}))
        tags = t.tags("00") if tags is DEFAULT else tags
        if tags:
            ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=name, Tags=tags)
    if budget:
        t.client("budgets", "us-east-1").create_budget(
            AccountId=t.account_id,
            Budget={"BudgetName": budget_name, "BudgetType": budget_type, "TimeUnit": time_unit,
                    "BudgetLimit": {"Amount": limit, "Unit": unit}},
            NotificationsWithSubscribers=[alert()] if notifications is DEFAULT else notifications,
        )
    return {"parameter": name, "budget": budget_name, "account": t.account_id, "region": t.region}


# -- lab 01 -----------------------------------------------------------------------

def scoped_statement(bucket: str, distribution_arn: str, **changes) -> dict:
    """The solution's one Allow statement; keyword arguments replace (or, given None, drop) its fields."""
    statement = {
        "Sid": "AllowCloudFrontRead",
        "Effect": "Allow",
        "Principal": {"Service": "cloudfront.amazonaws.com"},
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
        "Condition": {"StringEquals": {"AWS:SourceArn": distribution_arn}},
    }
    for key, value in changes.items():
        if value is None:
            statement.pop(key, None)
        else:
            statement[key] = value
    return statement


def put_policy(t: Target, bucket: str, *statements: dict, single: bool = False) -> dict:
    """Replace the bucket policy; ``single`` writes one statement as an object, not a list (valid IAM JSON)."""
    policy = {"Version": "2012-10-17", "Statement": statements[0] if single else list(statements)}
    t.client("s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    return policy


def build_lab01(
    t: Target,
    *,
    bucket: bool = True,
    bucket_tags: list[dict] | None = DEFAULT,
    public_access: dict | None = DEFAULT,
    encryption: str | None = "AES256",
    files: bool = True,
    content_types: dict[str, str | None] | None = None,
    skip_files: tuple[str, ...] = (),
    bodies: dict[str, bytes] | None = None,
    oac: bool = True,
    oac_name: str | None = None,
    oac_config: dict | None = None,
    distribution: bool = True,
    origin_domain: str | None = None,
    origin_path: str | None = None,
    origin_access_identity: str = "",
    enabled: bool = True,
    dist_tags: list[dict] | None = DEFAULT,
    viewer_protocol: str = "redirect-to-https",
    cache_behaviors: list[dict] | None = None,
    default_root: str | None = "index.html",
    error_responses: list[dict] | None = DEFAULT,
    policy: Callable[[str, str], list[dict]] | None = DEFAULT,
) -> dict:
    """The end state of lab 01, in the solution's order: bucket, files, OAC, distribution, policy.

    ``None`` leaves a piece out (tags, public access block, encryption, error
    responses, default root object, policy). ``public_access`` overrides some
    of the four flags; ``content_types`` maps a key to the ContentType to
    upload it with (None: send none, so S3 stores binary/octet-stream);
    ``origin_domain`` may use ``{bucket}`` and ``{region}``; ``policy`` maps
    (bucket, distribution ARN) to the statements of the bucket policy.
    """
    s3 = t.client("s3")
    cloudfront = t.client("cloudfront")
    name = t.name("site", t.account_id)
    state = {"bucket": name, "oac_name": t.name("site-oac"), "oac_id": None,
             "dist_id": None, "dist_arn": None, "domain": None}

    if bucket:
        options = {} if t.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": t.region}}
        s3.create_bucket(Bucket=name, **options)
        tags = t.tags("01") if bucket_tags is DEFAULT else bucket_tags
        if tags:
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags})
        block = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
        if public_access is not None:
            block.update({} if public_access is DEFAULT else public_access)
            s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=block)
        if encryption:
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": encryption}}]})
        if files:
            for path in site_files():
                key = path.relative_to(SITE_DIR).as_posix()
                if key in skip_files:
                    continue
                kind = (content_types or {}).get(key, content_type(path))
                extra = {"ContentType": kind} if kind else {}
                body = (bodies or {}).get(key, path.read_bytes())
                s3.put_object(Bucket=name, Key=key, Body=body, **extra)

    if oac:
        config = {"Name": oac_name or state["oac_name"], "Description": "Signs CloudFront requests to the site bucket",
                  "SigningProtocol": "sigv4", "SigningBehavior": "always", "OriginAccessControlOriginType": "s3"}
        config.update(oac_config or {})
        state["oac_id"] = cloudfront.create_origin_access_control(
            OriginAccessControlConfig=config)["OriginAccessControl"]["Id"]

    if distribution:
        domain = (origin_domain or "{bucket}.s3.{region}.amazonaws.com").format(bucket=name, region=t.region)
        origin = {"Id": "site-bucket", "DomainName": domain}
        if ".s3-website" in domain:  # a website endpoint is a custom (HTTP) origin, without OAC
            origin["CustomOriginConfig"] = {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "http-only"}
        else:
            origin["S3OriginConfig"] = {"OriginAccessIdentity": origin_access_identity}
            if state["oac_id"] and not origin_access_identity:  # AWS takes an OAI or an OAC, not both
                origin["OriginAccessControlId"] = state["oac_id"]
        if origin_path:
            origin["OriginPath"] = origin_path
        errors = ([{"ErrorCode": code, "ResponsePagePath": "/index.html", "ResponseCode": "200",
                    "ErrorCachingMinTTL": 10} for code in (403, 404)]
                  if error_responses is DEFAULT else error_responses or [])
        config = {
            "CallerReference": name,
            "Comment": f"{t.prefix} static front end",
            "Enabled": enabled,
            "Origins": {"Quantity": 1, "Items": [origin]},
            "DefaultCacheBehavior": {"TargetOriginId": "site-bucket", "ViewerProtocolPolicy": viewer_protocol,
                                     "CachePolicyId": CACHING_OPTIMIZED, "Compress": True},
            "CustomErrorResponses": {"Quantity": len(errors), "Items": errors},
        }
        if default_root is not None:
            config["DefaultRootObject"] = default_root
        if cache_behaviors:
            config["CacheBehaviors"] = {"Quantity": len(cache_behaviors), "Items": [
                {"TargetOriginId": "site-bucket", "CachePolicyId": CACHING_OPTIMIZED, **b} for b in cache_behaviors]}
        tags = t.tags("01") if dist_tags is DEFAULT else dist_tags
        made = cloudfront.create_distribution_with_tags(DistributionConfigWithTags={
            "DistributionConfig": config, "Tags": {"Items": tags or []}})["Distribution"]
        state.update(dist_id=made["Id"], dist_arn=made["ARN"], domain=made["DomainName"])

    if bucket and state["dist_arn"] and policy is not None:
        statements = [scoped_statement(name, state["dist_arn"])] if policy is DEFAULT else policy(name, state["dist_arn"])
        put_policy(t, name, *statements)
    return state
