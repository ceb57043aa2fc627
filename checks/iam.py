"""Reading IAM roles as AWS does: trust policies, permissions policies and wildcard matches."""
from __future__ import annotations

import json
import re
from urllib.parse import unquote

from labkit.target import Target

from .aws import absent, as_list


def document(raw) -> dict:
    """A policy document as a dict (IAM sends URL-encoded JSON; boto3 usually decodes it)."""
    if isinstance(raw, dict):
        return raw
    try:
        return json.loads(unquote(raw))
    except (TypeError, ValueError):
        return {}


def glob(pattern: str, value: str) -> bool:
    """IAM's wildcard match: * is any run of characters, ? is one character; nothing else is special."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def short(items: list[str], limit: int = 3) -> str:
    return "; ".join(items[:limit]) + (f"; and {len(items) - limit} more" if len(items) > limit else "")


def outside_tables(t: Target, name: str, *others: str) -> list[str]:
    """ARNs a grant for table ``name`` must not reach: ``others`` and made-up tables here, the same name in
    another region or account, and the table's streams, backups and exports."""
    base = f"arn:aws:dynamodb:{t.region}:{t.account_id}"
    arn = f"{base}:table/{name}"
    region = "eu-west-1" if t.region != "eu-west-1" else "us-east-1"
    account = "210987654321" if t.account_id != "210987654321" else "123456789012"
    return [*(f"{base}:table/{other}" for other in others), f"{base}:table/{name}-archive", f"{base}:table/payments",
            f"{base}:table/a", f"arn:aws:dynamodb:{region}:{t.account_id}:table/{name}",
            f"arn:aws:dynamodb:{t.region}:{account}:table/{name}", f"{arn}/stream/2020-01-01T00:00:00.000",
            f"{arn}/backup/01577836800000-abcdefgh", f"{arn}/export/01577836800000-abcdefgh"]


def role(t: Target, name: str) -> dict | None:
    return t.memo(f"iam.role.{name}", lambda: (absent(lambda: t.client("iam").get_role(RoleName=name),
                                                      "NoSuchEntity") or {}).get("Role"))


def role_policies(t: Target, name: str) -> list[tuple[str, dict]]:
    """(label, document) for every permissions policy of role ``name``: inline and attached."""

    def look():
        iam = t.client("iam")
        found = []
        for page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
            for policy in page.get("PolicyNames", []):
                doc = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
                found.append((f"inline policy {policy}", document(doc)))
        for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
            for attached in page.get("AttachedPolicies", []):
                arn = attached["PolicyArn"]
                version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
                doc = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
                found.append((f"managed policy {attached['PolicyName']}", document(doc)))
        return found

    return t.memo(f"iam.policies.{name}", look)


def trusted_principals(found: dict, service: str) -> tuple[bool, list[str]]:
    """Whether the role's trust policy lets ``service`` assume it, and who else it lets in."""
    trusted, others = False, []
    for st in as_list(document(found.get("AssumeRolePolicyDocument")).get("Statement")):
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        if "NotPrincipal" in st:
            others.append("everyone but the NotPrincipal list")
            continue
        principal = st.get("Principal")
        if principal == "*":
            others.append("everyone (Principal *)")
            continue
        for kind, values in (principal or {}).items() if isinstance(principal, dict) else ():
            for value in as_list(values):
                if kind == "Service" and value == service:
                    trusted = True
                elif value == "*":
                    others.append(f"everyone ({kind} *)")
                else:
                    others.append(f"{kind} {value}")
    return trusted, list(dict.fromkeys(others))
