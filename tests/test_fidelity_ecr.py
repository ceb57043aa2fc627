"""ECR on the local AWS: digests, immutable tags and lifecycle policies as ECR keeps them."""
from __future__ import annotations

import hashlib
import json

import pytest
from botocore.exceptions import ClientError

from labkit.ecrlifecycle import REFUSAL

OCI = "application/vnd.oci.image.manifest.v1+json"


def manifest(n: int) -> str:
    config = "sha256:" + hashlib.sha256(f"config {n}".encode()).hexdigest()
    return json.dumps({"schemaVersion": 2, "mediaType": OCI, "layers": [],
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config,
                                  "size": 2}})


def refused(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def push(ecr, repo, n, tag):
    return ecr.put_image(repositoryName=repo, imageManifest=manifest(n), imageTag=tag, imageManifestMediaType=OCI)


def images(ecr, repo):
    return sorted((tuple(sorted(i.get("imageTags", []))), i["imageDigest"])
                  for i in ecr.describe_images(repositoryName=repo)["imageDetails"])


def test_the_digest_is_the_sha256_of_the_manifest_as_pushed(aws):
    ecr = aws.client("ecr")
    ecr.create_repository(repositoryName="ada-orders")
    first, second = push(ecr, "ada-orders", 1, "v1"), push(ecr, "ada-orders", 2, "v2")
    assert first["image"]["imageId"]["imageDigest"] == "sha256:" + hashlib.sha256(manifest(1).encode()).hexdigest()
    assert first["image"]["imageId"]["imageDigest"] != second["image"]["imageId"]["imageDigest"]


def test_an_immutable_tag_refuses_a_changed_push(aws):
    ecr = aws.client("ecr")
    ecr.create_repository(repositoryName="ada-orders", imageTagMutability="IMMUTABLE")
    push(ecr, "ada-orders", 1, "v1")
    assert refused(lambda: push(ecr, "ada-orders", 2, "v1")) == (
        "ImageTagAlreadyExistsException", "The image tag 'v1' already exists in the 'ada-orders' repository and "
                                          "cannot be overwritten because the repository is immutable.")
    assert refused(lambda: push(ecr, "ada-orders", 1, "v1"))[0] == "ImageAlreadyExistsException"
    push(ecr, "ada-orders", 1, "latest")  # a new tag on the same image is allowed
    assert [tags for tags, _ in images(ecr, "ada-orders")] == [("latest", "v1")]


def test_a_moved_mutable_tag_leaves_the_old_image_untagged(aws):
    ecr = aws.client("ecr")
    ecr.create_repository(repositoryName="ada-orders")
    old = push(ecr, "ada-orders", 1, "latest")["image"]["imageId"]["imageDigest"]
    new = push(ecr, "ada-orders", 2, "latest")["image"]["imageId"]["imageDigest"]
    assert images(ecr, "ada-orders") == sorted([((), old), (("latest",), new)])


def test_pushing_to_a_missing_repository_is_refused_by_name(aws):
    code, message = refused(lambda: push(aws.client("ecr"), "ada-missing", 1, "v1"))
    assert code == "RepositoryNotFoundException" and "ada-missing" in message


def rule(priority, status, count_type="imageCountMoreThan", number=5, **extra):
    selection = {"tagStatus": status, "countType": count_type, "countNumber": number, **extra}
    return {"rulePriority": priority, "selection": selection, "action": {"type": "expire"}}


UNTAGGED_14_DAYS = rule(1, "untagged", "sinceImagePushed", 14, countUnit="days")


@pytest.mark.parametrize("rules, reason", [
    ([UNTAGGED_14_DAYS, rule(1, "tagged", tagPrefixList=["v"])], "rulePriority 1 is used by more than one rule"),
    ([rule(1, "tagged")], "needs a non-empty tagPrefixList or tagPatternList"),
    ([rule(1, "any", tagPrefixList=["v"])], "may only be used when tagStatus is tagged"),
    ([rule(1, "untagged", "sinceImagePushed", 14)], "countUnit must be \"days\""),
    ([rule(1, "untagged", countUnit="days")], "countUnit is only used when countType is sinceImagePushed"),
    ([rule(1, "any"), rule(2, "tagged", tagPrefixList=["v"])], "must have the highest rulePriority"),
    ([UNTAGGED_14_DAYS, rule(2, "untagged")], "only one rule is allowed to select untagged images"),
    ([rule(1, "tagged", tagPrefixList=["v"], tagPatternList=["v*"])], "either tagPatternList or tagPrefixList"),
], ids=["duplicate-priority", "tagged-without-prefix", "prefix-without-tagged", "since-without-days",
        "count-with-unit", "any-not-last", "two-untagged", "prefix-and-pattern"])
def test_a_lifecycle_policy_ecr_refuses_is_refused(aws, rules, reason):
    ecr = aws.client("ecr")
    ecr.create_repository(repositoryName="ada-orders")
    code, message = refused(lambda: ecr.put_lifecycle_policy(repositoryName="ada-orders",
                                                             lifecyclePolicyText=json.dumps({"rules": rules})))
    assert code == "InvalidParameterException" and reason in message
    assert message.startswith(REFUSAL.split("{}")[0])
    nothing_stored = refused(lambda: ecr.get_lifecycle_policy(repositoryName="ada-orders"))
    assert nothing_stored[0] == "LifecyclePolicyNotFoundException"


def test_a_good_lifecycle_policy_is_stored_and_images_stay(aws):
    ecr = aws.client("ecr")
    ecr.create_repository(repositoryName="ada-orders")
    push(ecr, "ada-orders", 1, "v1")
    text = json.dumps({"rules": [UNTAGGED_14_DAYS, rule(2, "tagged", tagPrefixList=["v"], number=10),
                                 rule(3, "any", number=20)]})
    ecr.put_lifecycle_policy(repositoryName="ada-orders", lifecyclePolicyText=text)
    assert json.loads(ecr.get_lifecycle_policy(repositoryName="ada-orders")["lifecyclePolicyText"]) == json.loads(text)
    assert len(images(ecr, "ada-orders")) == 1


def test_the_lifecycle_preview_says_what_the_policy_would_expire(aws):
    ecr = aws.client("ecr")
    ecr.create_repository(repositoryName="ada-orders")
    assert refused(lambda: ecr.get_lifecycle_policy_preview(repositoryName="ada-orders"))[0] == \
        "LifecyclePolicyPreviewNotFoundException"
    assert refused(lambda: ecr.start_lifecycle_policy_preview(repositoryName="ada-orders"))[0] == \
        "LifecyclePolicyNotFoundException"
    for n in range(4):
        push(ecr, "ada-orders", n, f"v{n}")
    push(ecr, "ada-orders", 9, "v3")  # v3 moves: its old image is now untagged
    text = json.dumps({"rules": [rule(1, "untagged", number=1), rule(2, "tagged", tagPrefixList=["v"], number=2)]})
    ecr.put_lifecycle_policy(repositoryName="ada-orders", lifecyclePolicyText=text)
    assert ecr.start_lifecycle_policy_preview(repositoryName="ada-orders")["status"] == "IN_PROGRESS"
    preview = ecr.get_lifecycle_policy_preview(repositoryName="ada-orders")
    assert preview["status"] == "COMPLETE" and preview["summary"]["expiringImageTotalCount"] == 2
    assert sorted(tuple(r["imageTags"]) for r in preview["previewResults"]) == [("v0",), ("v1",)]
    assert {r["appliedRulePriority"] for r in preview["previewResults"]} == {2}
    assert len(images(ecr, "ada-orders")) == 5  # a preview deletes nothing
