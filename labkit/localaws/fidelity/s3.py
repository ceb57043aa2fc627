"""S3: bucket policies judged as AWS judges them.

moto's own bucket-policy check ignores the Principal and every condition operator but
StringEquals, so the standard "deny insecure transport" statement (Deny, Principal *,
Bool aws:SecureTransport false) denied every request, the learner's and the grader's alike.
Here the one policy evaluator decides, for the account's own caller over a secure connection:
the local AWS listens on loopback only and stands in for S3's HTTPS endpoint, so its clients
count as secure, as an SDK talking to AWS is.
"""
from __future__ import annotations

import json


def apply() -> None:
    from moto.iam.access_control import PermissionResult
    from moto.s3.models import FakeBucket

    from labkit.policyeval import Principal, evaluate

    def get_permission(self, action: str, resource: str):
        if self.policy is None:
            return PermissionResult.NEUTRAL
        try:
            policy = json.loads(self.policy.decode() if isinstance(self.policy, bytes) else self.policy)
        except ValueError:
            return PermissionResult.NEUTRAL
        decision = evaluate(policy, action=action, resource=resource,
                            principal=Principal.aws(f"arn:aws:iam::{self.account_id}:root"),
                            context={"aws:SecureTransport": True})
        if decision.denied:
            return PermissionResult.DENIED
        return PermissionResult.PERMITTED if decision.allowed else PermissionResult.NEUTRAL

    FakeBucket.get_permission = get_permission
