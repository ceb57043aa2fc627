"""Cleanup removes this learner's course resources and nothing else."""
from __future__ import annotations

from checks import Status, grade, select
from labkit.cleanup import cleanup
from labkit.target import Target

from .states import build_lab00, build_lab01


def _quiet(_):
    pass


def test_dry_run_lists_everything_and_deletes_nothing(aws):
    build_lab00(aws)
    build_lab01(aws)
    done = cleanup(aws, dry_run=True, say=_quiet)
    assert len(done["found"]) == 5 and done["deleted"] == []
    assert grade(select("01"), aws).count(Status.FAIL) == 0


def test_cleanup_removes_the_learners_resources_only(aws):
    build_lab00(aws)
    build_lab01(aws)
    bob = Target("inprocess", prefix="bob", region="us-east-1")
    bob.client("s3").create_bucket(Bucket="bob-site-123456789012")
    bob.client("s3").put_bucket_tagging(Bucket="bob-site-123456789012", Tagging={"TagSet": bob.tags("01")})
    aws.client("s3").create_bucket(Bucket="ada-untagged")  # not course-tagged: not ours to delete

    done = cleanup(aws, say=_quiet)

    assert done["pending"] == [] and len(done["deleted"]) == 5
    buckets = {b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]}
    assert buckets == {"bob-site-123456789012", "ada-untagged"}
    assert aws.client("cloudfront").list_distributions()["DistributionList"].get("Items") in (None, [])
    lab00, lab01 = grade(select("00"), aws), grade(select("01"), aws)
    assert lab01.count(Status.FAIL) == len(lab01.results)
    assert {r.check.id for r in lab00.results if r.status is Status.FAIL} == {"L00.03", "L00.04", "L00.05", "L00.06"}
    assert cleanup(aws, say=_quiet)["found"] == []  # a second run finds nothing
