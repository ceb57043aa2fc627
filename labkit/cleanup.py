"""Remove every course resource this learner created (``python -m labkit cleanup``).

Only resources named with the learner's prefix *and* carrying the course tag
(or living under the course's parameter path) are touched, so a shared
account's other work is safe. CloudFront makes deletion a two-step affair on
AWS: a distribution must be disabled and finish deploying before it can be
deleted, so a first run disables it and a later run deletes it.
"""
from __future__ import annotations

from typing import Callable

from botocore.exceptions import ClientError

from .config import COURSE_ID
from .target import Target


def _tagged(tags: list[dict], t: Target) -> bool:
    have = {tag["Key"]: tag["Value"] for tag in tags}
    return have.get("course") == COURSE_ID and have.get("learner") == t.prefix


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

    _parameters(t, act)
    _budget(t, act)
    _distributions(t, act, done, dry_run, say)
    _buckets(t, act)
    _origin_access_controls(t, act, done, say)
    return done


def _parameters(t, act):
    ssm = t.client("ssm")
    path = f"/{COURSE_ID}/{t.prefix}"
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=path, Recursive=True):
        for param in page["Parameters"]:
            act(f"parameter {param['Name']}", lambda n=param["Name"]: ssm.delete_parameter(Name=n))


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
