"""Reading IAM roles as AWS does: trust policies and permissions policies, judged by the one evaluator."""
from __future__ import annotations

import json
from urllib.parse import unquote

from labkit.policyeval import Principal, evaluate, named_principals
from labkit.target import Target

from .aws import absent


def document(raw) -> dict:
    """A policy document as a dict (IAM sends URL-encoded JSON; boto3 usually decodes it)."""
    if isinstance(raw, dict):
        return raw
    try:
        return json.loads(unquote(raw))
    except (TypeError, ValueError):
        return {}


def example(pattern: str) -> str:
    """One concrete name a wildcard pattern matches, to ask the evaluator about (``*`` and ``?`` become x)."""
    return str(pattern).replace("*", "x").replace("?", "x")


def allows(policies, action: str, resource: str) -> bool:
    """Whether identity policies ``policies`` ((label, document) pairs) allow the request, Denies included."""
    return evaluate(policies, action=action, resource=resource).allowed


def beyond(policies, requests) -> list[str]:
    """The (action, resource) requests that ``policies`` allow, as "action on resource"."""
    return [f"{a} on {r}" for a, r in requests if allows(policies, a, r)]


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


# Callers a trust policy meant for one service must not let in, besides those it names itself.
OTHER_SERVICES = ("lambda.amazonaws.com", "ec2.amazonaws.com", "ecs-tasks.amazonaws.com", "apigateway.amazonaws.com",
                  "events.amazonaws.com", "dax.amazonaws.com", "states.amazonaws.com")
ASSUME_ACTIONS = {"Federated": ("sts:AssumeRoleWithWebIdentity", "sts:AssumeRoleWithSAML")}


def trusted_principals(found: dict, service: str) -> tuple[bool, list[str]]:
    """Whether the role's trust policy lets ``service`` assume it, and who else it lets in.

    Every caller is put to the evaluator (Deny statements, NotPrincipal and conditions included): anyone,
    IAM principals of this and another account, other services, a web identity, and every principal the
    policy names. A service assumes a role for the role's own account (aws:SourceAccount).
    """
    doc = document(found.get("AssumeRolePolicyDocument"))
    account = str(found.get("Arn", "")).split(":")[4] if str(found.get("Arn", "")).count(":") >= 5 else None
    other = "210987654321" if account != "210987654321" else "123456789012"

    def assumes(who: Principal) -> tuple[bool, list]:
        context = {"aws:SourceAccount": account} if who.kind == "Service" else {}
        for action in ASSUME_ACTIONS.get(who.kind, ("sts:AssumeRole",)):
            decision = evaluate(doc, action=action, principal=who, context=context)
            if decision.allowed:
                return True, list(decision.allowed_by)
        return False, []

    trusted = assumes(Principal.service(service))[0]
    anyone, refs = assumes(Principal.anonymous())
    if anyone:
        principal = refs[0].statement.get("Principal")
        public = principal in ("*", ["*"]) or principal == {"AWS": "*"}
        how = "Principal *" if public else f"{refs[0].where} uses NotPrincipal"
        return trusted, [f"everyone ({how})"]
    callers = [*named_principals(doc), Principal.aws(f"arn:aws:iam::{account}:root"),
               Principal.aws(f"arn:aws:iam::{account}:user/someone"), Principal.aws(f"arn:aws:iam::{other}:root"),
               *(Principal.service(s) for s in OTHER_SERVICES), Principal.federated("cognito-identity.amazonaws.com")]
    others = [str(who) for who in dict.fromkeys(callers)
              if not (who.kind == "Service" and who.id == service) and assumes(who)[0]]
    return trusted, others
