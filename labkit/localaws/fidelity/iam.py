"""IAM: managed policies loaded once, and role sessions held to their policies."""
from __future__ import annotations

import json
import os

from ..journal import REPLAYING


def apply() -> None:
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    _lean_managed_policies()
    _enforce_for_role_sessions()


def _lean_managed_policies() -> None:
    """Load AWS-managed IAM policies once per process, and only in the aws partition.

    moto builds an IAM backend per partition and parses ~1,600 managed policies
    for each on every reset (about 1 s); learners only ever use the aws one.
    """
    from moto.iam import models as iam

    parsed: dict = {}

    def init_aws_policies(self):
        if not iam.load_iam_aws_managed_policies() or self.region_name not in ("global", "aws"):
            return []
        if not parsed:
            parsed.update(json.loads(iam.aws_managed_policies_data))
        return [iam.AWSManagedPolicy.from_data(name, self.account_id, self.region_name, d) for name, d in parsed.items()]

    iam.IAMBackend._init_aws_policies = init_aws_policies


def _enforce_for_role_sessions() -> None:
    """Check IAM policies for requests signed with temporary (role session) credentials.

    The learner's own dummy keys act like an administrator, but a Lambda
    handler runs with its execution role's session credentials: for those,
    the local AWS applies the role's policies as AWS does, so least privilege
    can be seen working (AccessDenied on a forbidden call).
    """
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.exceptions import AccessDeniedError, JsonRESTError

    original = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def authorize(self, iam_request_cls, resource="*"):
        # A replay re-sends writes that were already allowed, by sessions that no longer exist.
        if not self.headers.get("X-Amz-Security-Token") or REPLAYING.is_set():
            return original(self, iam_request_cls, resource)
        saved = settings.INITIAL_NO_AUTH_ACTION_COUNT
        settings.INITIAL_NO_AUTH_ACTION_COUNT = -1  # requests are serialised by the app's lock
        try:
            return original(self, iam_request_cls, resource)
        except AccessDeniedError as exc:
            if not json_protocol(self.headers):
                raise
            # moto answers in XML, which JSON clients cannot parse ("An error occurred (403)");
            # DynamoDB and Logs answer 400 AccessDeniedException naming the action and resource.
            where = f" on resource: {resource}" if resource and resource != "*" else ""
            raise JsonRESTError("AccessDeniedException", f"{exc.message}{where} because no identity-based "
                                                         "policy allows the action") from None
        finally:
            settings.INITIAL_NO_AUTH_ACTION_COUNT = saved

    ActionAuthenticatorMixin._authenticate_and_authorize_action = authorize


def json_protocol(headers) -> bool:
    """Whether a request speaks AWS's JSON protocols (DynamoDB, Logs, ...), whose errors are JSON."""
    kind = headers.get("Content-Type") or headers.get("content-type") or ""
    return bool(headers.get("X-Amz-Target") or headers.get("x-amz-target")) or "json" in kind


def request_body(handler) -> dict:
    """A JSON-protocol handler's parsed body, for telling IAM which resource a call touches."""
    if isinstance(handler.body, dict):  # DynamoDB's handler has parsed it already
        return handler.body
    try:
        return json.loads(handler.body or "{}")
    except ValueError:
        return {}
