"""The shipped read-only grader policy allows exactly what the checks call, and nothing that writes."""
from __future__ import annotations

import json
from pathlib import Path

import checks
from checks.core import REGISTRY, grade
from labkit.target import Target, is_read

from .states import build_lab00, build_lab01

POLICY = Path(__file__).resolve().parent.parent / "labkit" / "policies" / "grader-readonly.json"

# API operations whose IAM action has another name (the rest are service:Operation).
IAM_ACTION = {
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "GetBucketEncryption"): "s3:GetEncryptionConfiguration",
    ("budgets", "DescribeBudget"): "budgets:ViewBudget",
    ("budgets", "DescribeNotificationsForBudget"): "budgets:ViewBudget",
    ("budgets", "DescribeSubscribersForNotification"): "budgets:ViewBudget",
    ("sts", "GetCallerIdentity"): None,  # needs no permission
    ("cognito-idp", "InitiateAuth"): None,  # a public sign-in call: no IAM permission at all
}
NOT_NAMED_AS_READS = {"budgets:ViewBudget", "apigateway:GET"}


def iam_action(call: tuple[str, str]) -> str | None:
    """The IAM action an API call needs (None: none). API Gateway's are named after the HTTP verb."""
    if call[0] == "apigateway":
        return "apigateway:GET" if is_read(call[1]) else f"apigateway:{call[1]}"
    prefix = {"api.ecr": "ecr"}.get(call[0], call[0])  # ECR's endpoint is api.ecr; its actions are ecr:
    return IAM_ACTION.get(call, f"{prefix}:{call[1]}")


def _allowed() -> set[str]:
    doc = json.loads(POLICY.read_text())
    return {a for st in doc["Statement"] if st["Effect"] == "Allow" for a in st["Action"]}


def test_policy_allows_only_reads():
    for action in _allowed():
        assert is_read(action.split(":", 1)[1]) or action in NOT_NAMED_AS_READS, action


def recording_calls(monkeypatch) -> set[tuple[str, str]]:
    """(endpoint prefix, operation) of every call made through clients Target.client creates from now on."""
    calls: set[tuple[str, str]] = set()
    original = Target.client

    def client(self, service, region=None):
        made = original(self, service, region)
        made.meta.events.register("before-call", lambda model, **_: calls.add(
            (model.service_model.endpoint_prefix, model.name)), unique_id="policy-test")
        return made

    monkeypatch.setattr(Target, "client", client)
    return calls


def missing_from_policy(calls: set[tuple[str, str]]) -> set[str]:
    """The IAM actions ``calls`` need that the grader's policy does not allow."""
    return {iam_action(call) for call in calls} - {None} - _allowed()


def test_every_call_the_checks_make_is_in_the_policy(aws, monkeypatch):
    build_lab00(aws)
    build_lab01(aws)
    calls = recording_calls(monkeypatch)
    monkeypatch.setattr(Target, "is_local", property(lambda self: False))  # run the live-only checks too
    checks.load_all()
    grade(list(REGISTRY.values()), aws)
    assert calls, "the checks made no calls"
    missing = missing_from_policy(calls)
    assert missing == set(), f"add to {POLICY.name}: {sorted(missing)}"
