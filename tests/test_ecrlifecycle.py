"""Which images an ECR lifecycle policy expires: each row one repository and one policy."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from labkit.ecrlifecycle import expired, refusal

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


def image(name, days_ago, *tags):
    return {"imageDigest": f"sha256:{name}", "imageTags": list(tags),
            "imagePushedAt": NOW - timedelta(days=days_ago)}


def rule(priority, status, count_type="imageCountMoreThan", number=1, **extra):
    selection = {"tagStatus": status, "countType": count_type, "countNumber": number, **extra}
    if count_type == "sinceImagePushed":
        selection["countUnit"] = "days"
    return {"rulePriority": priority, "selection": selection, "action": {"type": "expire"}}


REPO = [
    image("u1", 30), image("u2", 10), image("u3", 1),  # untagged, oldest first
    image("v1", 40, "v1"), image("v2", 20, "v2"), image("v3", 5, "v3", "latest"),
    image("d1", 50, "dev-1"), image("d2", 2, "dev-2"),
]

CASES = [
    ("untagged older than 14 days", [rule(1, "untagged", "sinceImagePushed", 14)], {"u1": 1}),
    ("keep the newest untagged image", [rule(1, "untagged", number=1)], {"u1": 1, "u2": 1}),
    ("keep two v images", [rule(1, "tagged", number=2, tagPrefixList=["v"])], {"v1": 1}),
    ("a prefix list needs every prefix on the image",
     [rule(1, "tagged", number=1, tagPrefixList=["v", "lat"])], {}),
    ("a pattern list matches wildcards", [rule(1, "tagged", "sinceImagePushed", 30, tagPatternList=["dev-*"])],
     {"d1": 1}),
    ("any: keep the newest three of everything", [rule(1, "any", number=3)],
     {"d1": 1, "v1": 1, "u1": 1, "v2": 1, "u2": 1}),
    ("a higher rule's matches are safe from a lower rule",
     [rule(1, "tagged", number=5, tagPrefixList=["v"]), rule(2, "any", number=1)],
     {"d1": 2, "d2": 2, "u1": 2, "u2": 2}),
    ("a lower rule still counts what a higher rule expired",
     [rule(1, "untagged", "sinceImagePushed", 20), rule(2, "any", number=7)], {"u1": 1, "d1": 2}),
    ("nothing old enough", [rule(1, "any", "sinceImagePushed", 365)], {}),
]


@pytest.mark.parametrize("rules, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_policy_expires_what_ecr_would(rules, expected):
    result = expired({"rules": rules}, REPO, now=NOW)
    assert {e.digest.split(":")[1]: e.rule_priority for e in result} == expected
    assert [e.pushed_at for e in result] == sorted(e.pushed_at for e in result)  # oldest first


def test_pushed_at_may_be_epoch_seconds_or_text_as_the_apis_return_it():
    repo = [{"imageDigest": "sha256:a", "imagePushedAt": (NOW - timedelta(days=30)).timestamp()},
            {"imageDigest": "sha256:b", "imagePushedAt": (NOW - timedelta(days=1)).isoformat()}]
    policy = '{"rules": [' + \
        '{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", ' \
        '"countUnit": "days", "countNumber": 14}, "action": {"type": "expire"}}]}'
    assert [e.digest for e in expired(policy, repo, now=NOW)] == ["sha256:a"]


def test_a_policy_ecr_refuses_cannot_be_evaluated():
    with pytest.raises(ValueError, match="tagPrefixList or tagPatternList"):
        expired({"rules": [rule(1, "tagged")]}, REPO, now=NOW)
    assert refusal("{not json") == "Could not map policyString into LifecyclePolicy."
    assert refusal({"rules": [rule(1, "untagged", "sinceImagePushed", 14)]}) is None


def test_images_pushed_in_the_same_second_count_in_the_order_listed():
    same = NOW - timedelta(days=1)
    repo = [{"imageDigest": d, "imagePushedAt": same} for d in ("sha256:first", "sha256:second")]
    assert [e.digest for e in expired({"rules": [rule(1, "any", number=1)]}, repo, now=NOW)] == ["sha256:first"]
