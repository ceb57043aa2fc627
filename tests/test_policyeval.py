"""The policy evaluator's own rules: one row per rule, each a small policy, one question, the expected decision."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from labkit.policyeval import ALLOW, DENY, IMPLICIT, Principal, arn_match, evaluate, glob

ACCOUNT = "123456789012"
OTHER = "210987654321"
BUCKET = "arn:aws:s3:::site"
DIST = f"arn:aws:cloudfront::{ACCOUNT}:distribution/E1"
CLOUDFRONT = Principal.service("cloudfront.amazonaws.com")
BOB = Principal.aws(f"arn:aws:iam::{ACCOUNT}:user/bob")


def allow(**fields) -> dict:
    return {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{BUCKET}/*", **fields}


def deny(**fields) -> dict:
    return {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"{BUCKET}/*", **fields}


@dataclass(frozen=True)
class Row:
    name: str
    statements: tuple
    expected: str
    action: str = "s3:GetObject"
    resource: str | None = f"{BUCKET}/index.html"
    principal: Principal | None = None
    context: dict = field(default_factory=dict)


def condition(op: str, key: str, value, **fields) -> dict:
    return allow(Condition={op: {key: value}}, **fields)


ROWS = [
    # Effect
    Row("allow", (allow(),), ALLOW),
    Row("nothing-matches-is-implicit-deny", (allow(Action="s3:PutObject"),), IMPLICIT),
    Row("no-statements", (), IMPLICIT),
    Row("deny-wins", (allow(), deny()), DENY),
    Row("deny-wins-over-wildcard-allow", (allow(Action="*", Resource="*"), deny(Action="s3:Get*")), DENY),
    Row("deny-elsewhere-does-not-apply", (allow(), deny(Resource=f"{BUCKET}/private/*")), ALLOW),
    # Action / NotAction
    Row("action-case-insensitive", (allow(Action="S3:getobject"),), ALLOW),
    Row("action-star", (allow(Action="s3:*"),), ALLOW),
    Row("action-question-mark", (allow(Action="s3:GetObjec?"),), ALLOW),
    Row("action-question-mark-is-one-char", (allow(Action="s3:GetObj?"),), IMPLICIT),
    Row("action-brackets-are-literal", (allow(Action="s3:[G]etObject"),), IMPLICIT),
    Row("notaction-allows-the-rest", (allow(Action=None, NotAction="s3:PutObject"),), ALLOW),
    Row("notaction-excludes-listed", (allow(Action=None, NotAction="s3:Get*"),), IMPLICIT),
    Row("deny-notaction-blocks-unlisted", (allow(Action="s3:*"), deny(Action=None, NotAction="s3:PutObject")), DENY),
    # Resource / NotResource and ARN wildcards
    Row("resource-exact-case-sensitive", (allow(Resource=f"{BUCKET}/INDEX.html"),), IMPLICIT),
    Row("resource-star-in-path-crosses-slash", (allow(Resource=f"{BUCKET}/*"),), ALLOW,
        resource=f"{BUCKET}/a/b/c.html"),
    Row("resource-question-mark", (allow(Resource=f"{BUCKET}/index.htm?"),), ALLOW),
    Row("resource-notresource", (allow(Resource=None, NotResource=f"{BUCKET}/private/*"),), ALLOW),
    Row("resource-notresource-excludes", (allow(Resource=None, NotResource=f"{BUCKET}/*"),), IMPLICIT),
    Row("resource-star-segment-does-not-cross-colon", (allow(Action="dynamodb:GetItem",
                                                            Resource=f"arn:aws:dynamodb:us-*-1:{ACCOUNT}:table/t"),),
        IMPLICIT, action="dynamodb:GetItem", resource=f"arn:aws:dynamodb:us-east-1:{OTHER}:x:{ACCOUNT}:table/t"),
    Row("resource-star-ending-segment-runs-on", (allow(Action="dynamodb:GetItem", Resource="arn:aws:dynamodb:*"),),
        ALLOW, action="dynamodb:GetItem", resource=f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/t"),
    Row("resource-star-in-resource-part-crosses-colon",
        (allow(Action="logs:PutLogEvents", Resource=f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/f*"),),
        ALLOW, action="logs:PutLogEvents",
        resource=f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/f:log-stream:s"),
    # Principal forms
    Row("principal-star", (allow(Principal="*"),), ALLOW, principal=Principal.anonymous()),
    Row("principal-aws-star-is-everyone", (allow(Principal={"AWS": "*"}),), ALLOW, principal=CLOUDFRONT),
    Row("principal-service", (allow(Principal={"Service": "cloudfront.amazonaws.com"}),), ALLOW, principal=CLOUDFRONT),
    Row("principal-other-service", (allow(Principal={"Service": "lambda.amazonaws.com"}),), IMPLICIT,
        principal=CLOUDFRONT),
    Row("principal-service-list", (allow(Principal={"Service": ["ec2.amazonaws.com", "cloudfront.amazonaws.com"]}),),
        ALLOW, principal=CLOUDFRONT),
    Row("principal-account-id-names-its-users", (allow(Principal={"AWS": ACCOUNT}),), ALLOW, principal=BOB),
    Row("principal-root-arn-names-its-users", (allow(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"}),), ALLOW,
        principal=BOB),
    Row("principal-other-account", (allow(Principal={"AWS": OTHER}),), IMPLICIT, principal=BOB),
    Row("principal-account-not-services", (allow(Principal={"AWS": ACCOUNT}),), IMPLICIT, principal=CLOUDFRONT),
    Row("principal-role-names-its-sessions", (allow(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:role/r"}),), ALLOW,
        principal=Principal.aws(f"arn:aws:sts::{ACCOUNT}:assumed-role/r/session")),
    Row("principal-user-arn", (allow(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"}),), IMPLICIT,
        principal=BOB),
    Row("principal-federated", (allow(Principal={"Federated": "cognito-identity.amazonaws.com"},
                                      Action="sts:AssumeRoleWithWebIdentity", Resource=None),), ALLOW,
        action="sts:AssumeRoleWithWebIdentity", resource=None,
        principal=Principal.federated("cognito-identity.amazonaws.com")),
    Row("principal-anonymous-not-named", (allow(Principal={"Service": "cloudfront.amazonaws.com"}),), IMPLICIT,
        principal=Principal.anonymous()),
    Row("notprincipal-everyone-else", (allow(NotPrincipal={"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"}),), ALLOW,
        principal=BOB),
    Row("notprincipal-excludes-listed", (deny(NotPrincipal={"Service": "cloudfront.amazonaws.com"}),
                                         allow(Principal="*")), ALLOW, principal=CLOUDFRONT),
    Row("notprincipal-deny-hits-others", (deny(NotPrincipal={"Service": "cloudfront.amazonaws.com"}),
                                          allow(Principal="*")), DENY, principal=BOB),
    # Condition operators
    Row("string-equals", (condition("StringEquals", "aws:SourceArn", DIST),), ALLOW, context={"aws:SourceArn": DIST}),
    Row("string-equals-case-sensitive-value", (condition("StringEquals", "aws:SourceArn", DIST.lower()),), IMPLICIT,
        context={"aws:SourceArn": DIST}),
    Row("condition-key-case-insensitive", (condition("StringEquals", "AWS:SOURCEARN", DIST),), ALLOW,
        context={"aws:sourcearn": DIST}),
    Row("string-equals-any-of-list", (condition("StringEquals", "aws:SourceAccount", [OTHER, ACCOUNT]),), ALLOW,
        context={"aws:SourceAccount": ACCOUNT}),
    Row("string-not-equals", (condition("StringNotEquals", "aws:SourceAccount", ACCOUNT),), IMPLICIT,
        context={"aws:SourceAccount": ACCOUNT}),
    Row("string-equals-ignore-case", (condition("StringEqualsIgnoreCase", "s3:prefix", "HOME"),), ALLOW,
        context={"s3:prefix": "home"}),
    Row("string-like-star", (condition("StringLike", "aws:SourceArn", f"arn:aws:cloudfront::{ACCOUNT}:*"),), ALLOW,
        context={"aws:SourceArn": DIST}),
    Row("string-like-brackets-literal", (condition("StringLike", "aws:SourceArn", "arn:aws:cloudfront::[0-9]*"),),
        IMPLICIT, context={"aws:SourceArn": DIST}),
    Row("string-not-like", (condition("StringNotLike", "aws:SourceArn", "*:distribution/E1"),), IMPLICIT,
        context={"aws:SourceArn": DIST}),
    Row("arn-like", (condition("ArnLike", "aws:SourceArn", f"arn:aws:cloudfront::{ACCOUNT}:distribution/*"),), ALLOW,
        context={"aws:SourceArn": DIST}),
    Row("arn-equals-other", (condition("ArnEquals", "aws:SourceArn", f"arn:aws:cloudfront::{OTHER}:distribution/E1"),),
        IMPLICIT, context={"aws:SourceArn": DIST}),
    Row("arn-like-not-an-arn", (condition("ArnLike", "aws:SourceArn", "arn:aws:*"),), IMPLICIT,
        context={"aws:SourceArn": "not-an-arn"}),
    Row("arn-not-like", (condition("ArnNotLike", "aws:SourceArn", f"arn:aws:cloudfront::{ACCOUNT}:*"),), IMPLICIT,
        context={"aws:SourceArn": DIST}),
    Row("bool-true", (condition("Bool", "aws:SecureTransport", "true"),), ALLOW, context={"aws:SecureTransport": True}),
    Row("bool-false-statement-skipped", (allow(), deny(Condition={"Bool": {"aws:SecureTransport": "false"}})), ALLOW,
        context={"aws:SecureTransport": True}),
    Row("bool-deny-insecure", (allow(), deny(Condition={"Bool": {"aws:SecureTransport": "false"}})), DENY,
        context={"aws:SecureTransport": "false"}),
    Row("numeric-less-than", (condition("NumericLessThan", "s3:max-keys", "10"),), ALLOW, context={"s3:max-keys": 5}),
    Row("numeric-less-than-fails", (condition("NumericLessThan", "s3:max-keys", "10"),), IMPLICIT,
        context={"s3:max-keys": "10"}),
    Row("numeric-greater-than-equals", (condition("NumericGreaterThanEquals", "s3:max-keys", 10),), ALLOW,
        context={"s3:max-keys": "10"}),
    Row("numeric-not-a-number", (condition("NumericEquals", "s3:max-keys", "10"),), IMPLICIT,
        context={"s3:max-keys": "ten"}),
    Row("date-less-than", (condition("DateLessThan", "aws:CurrentTime", "2030-01-01T00:00:00Z"),), ALLOW,
        context={"aws:CurrentTime": "2026-01-01T00:00:00Z"}),
    Row("ip-address", (condition("IpAddress", "aws:SourceIp", "10.0.0.0/8"),), ALLOW, context={"aws:SourceIp": "10.1.2.3"}),
    Row("ip-address-outside", (condition("IpAddress", "aws:SourceIp", "10.0.0.0/8"),), IMPLICIT,
        context={"aws:SourceIp": "192.168.0.1"}),
    Row("not-ip-address", (condition("NotIpAddress", "aws:SourceIp", "10.0.0.0/8"),), ALLOW,
        context={"aws:SourceIp": "192.168.0.1"}),
    Row("null-true-when-missing", (condition("Null", "aws:SourceArn", "true"),), ALLOW),
    Row("null-false-when-present", (condition("Null", "aws:SourceArn", "false"),), ALLOW,
        context={"aws:SourceArn": DIST}),
    Row("null-true-when-present", (condition("Null", "aws:SourceArn", "true"),), IMPLICIT,
        context={"aws:SourceArn": DIST}),
    Row("conditions-are-anded", (allow(Condition={"StringEquals": {"aws:SourceArn": DIST},
                                                  "Bool": {"aws:SecureTransport": "true"}}),), IMPLICIT,
        context={"aws:SourceArn": DIST, "aws:SecureTransport": False}),
    # Missing keys and IfExists
    Row("missing-key-is-false", (condition("StringEquals", "aws:SourceArn", DIST),), IMPLICIT),
    Row("missing-key-deny-does-not-apply", (allow(), deny(Condition={"Bool": {"aws:SecureTransport": "false"}})), ALLOW),
    Row("missing-key-negated-is-true", (condition("StringNotEquals", "aws:SourceAccount", OTHER),), ALLOW),
    Row("ifexists-missing-is-true", (condition("StringEqualsIfExists", "aws:SourceArn", DIST),), ALLOW),
    Row("ifexists-present-is-tested", (condition("StringEqualsIfExists", "aws:SourceArn", DIST),), IMPLICIT,
        context={"aws:SourceArn": "arn:aws:cloudfront::1:distribution/X"}),
    Row("bool-ifexists", (deny(Condition={"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}), allow()), DENY),
    # Multi-valued keys
    Row("for-any-value", (condition("ForAnyValue:StringEquals", "aws:TagKeys", ["a", "b"]),), ALLOW,
        context={"aws:TagKeys": ["x", "b"]}),
    Row("for-any-value-none", (condition("ForAnyValue:StringEquals", "aws:TagKeys", ["a", "b"]),), IMPLICIT,
        context={"aws:TagKeys": ["x", "y"]}),
    Row("for-any-value-missing-is-false", (condition("ForAnyValue:StringEquals", "aws:TagKeys", ["a"]),), IMPLICIT),
    Row("for-all-values", (condition("ForAllValues:StringEquals", "aws:TagKeys", ["a", "b"]),), ALLOW,
        context={"aws:TagKeys": ["a", "b"]}),
    Row("for-all-values-one-outside", (condition("ForAllValues:StringEquals", "aws:TagKeys", ["a", "b"]),), IMPLICIT,
        context={"aws:TagKeys": ["a", "c"]}),
    Row("for-all-values-missing-is-true", (condition("ForAllValues:StringEquals", "aws:TagKeys", ["a"]),), ALLOW),
    # Keys the evaluator derives from the principal
    Row("principal-service-name-key", (condition("StringEquals", "aws:PrincipalServiceName",
                                                  "cloudfront.amazonaws.com", Principal="*"),), ALLOW,
        principal=CLOUDFRONT),
    Row("principal-account-key", (condition("StringEquals", "aws:PrincipalAccount", ACCOUNT, Principal="*"),), ALLOW,
        principal=BOB),
    # Trust policies: no Resource element, the role is the resource
    Row("trust-policy", ({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                          "Action": "sts:AssumeRole"},), ALLOW, action="sts:AssumeRole", resource=None,
        principal=Principal.service("lambda.amazonaws.com")),
]


def _clean(st: dict) -> dict:
    return {k: v for k, v in st.items() if v is not None}


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_rule(row):
    policy = {"Version": "2012-10-17", "Statement": [_clean(s) for s in row.statements]}
    decision = evaluate(policy, action=row.action, resource=row.resource, principal=row.principal, context=row.context)
    assert decision.effect == row.expected


def test_decision_names_the_statements_that_decided():
    policy = {"Statement": [allow(Sid="Read"), deny(Sid="NoHttp", Condition={"Bool": {"aws:SecureTransport": "false"}})]}
    decision = evaluate([("bucket policy", policy)], action="s3:GetObject", resource=f"{BUCKET}/a",
                        context={"aws:SecureTransport": False})
    assert decision.denied and [r.sid for r in decision.denied_by] == ["NoHttp"]
    assert [r.where for r in decision.allowed_by] == ["bucket policy (statement Read)"]


def test_a_statement_object_is_a_one_statement_list():
    assert evaluate({"Statement": allow()}, action="s3:GetObject", resource=f"{BUCKET}/a").allowed


@pytest.mark.parametrize("pattern, value, expected", [
    ("a*c", "abbc", True), ("a?c", "abc", True), ("a?c", "ac", False), ("a[b]c", "abc", False),
    ("a[b]c", "a[b]c", True), ("a.c", "abc", False), ("*", "", True)])
def test_glob(pattern, value, expected):
    assert glob(pattern, value) is expected


@pytest.mark.parametrize("pattern, arn, expected", [
    ("arn:aws:execute-api:us-east-1:1:abc/*", "arn:aws:execute-api:us-east-1:1:abc/v1/GET/orders", True),
    ("arn:aws:execute-api:us-east-1:1:abc/*", "arn:aws:execute-api:us-east-1:1:abcd/v1/GET/orders", False),
    ("arn:aws:execute-api:*:1:abc/*", "arn:aws:execute-api:eu-west-1:1:abc/v1/GET/x", True),
    ("arn:aws:execute-api:us-?ast-1:1:abc/*", "arn:aws:execute-api:us-east-1:1:abc/v1", True),
    ("arn:aws:execute-api:us-e*t-1:1:abc/*", "arn:aws:execute-api:us-e:x:t-1:1:abc/v1", False),
    ("arn:aws:execute-api:us-east-1:1:abc/[v]1/*", "arn:aws:execute-api:us-east-1:1:abc/v1/GET", False)])
def test_arn_match(pattern, arn, expected):
    assert arn_match(pattern, arn) is expected
