"""Lab 01 checks: each passes on the solution's state and fails on states wrong in one way."""
from __future__ import annotations

import http.client
import io
import urllib.error
import urllib.request
import urllib.response

import pytest

from checks.core import LIVE_ONLY, Status
from labkit.assets import SITE_DIR

from .cases import Case, assert_whole_lab, covered, params, run_case
from .conftest import grade
from .states import LEGACY_OAI, OAI_PRINCIPAL, build_lab01, put_policy, scoped_statement

PASS, FAIL, SKIP = Status.PASS, Status.FAIL, Status.SKIP
OTHER_DIST_ARN = "arn:aws:cloudfront::123456789012:distribution/EDFDVBD6EXAMPLE"
OTHER_OAC = "E1OTHEROACEXAMPLE"

def tags(lab: str = "01", learner: str = "ada") -> list[dict]:
    return [{"Key": "course", "Value": "microservices-labs"}, {"Key": "lab", "Value": lab},
            {"Key": "learner", "Value": learner}]


def plus_deny_http(bucket, arn):
    """build: the solution's statement and the standard deny-insecure-transport statement."""
    return [scoped_statement(bucket, arn), {
        "Sid": "DenyHttp", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]


def policy(**changes):
    """build: a bucket policy of the solution's statement with ``changes`` (None drops a field)."""
    return lambda bucket, arn: [scoped_statement(bucket, arn, **changes)]


def with_distribution(edit, *, live: bool = False):
    """prepare: grade against the distribution moto returns, edited by ``edit(dist, state)``.

    moto drops S3OriginConfig and OriginAccessControlId from get_distribution, so
    facts it cannot echo are put into the grader's memoised lookup instead;
    ``live`` makes the view a live target (the session stays moto's).
    """

    def prepare(view, state, monkeypatch):
        dist = view.client("cloudfront").get_distribution(Id=state["dist_id"])["Distribution"]
        edit(dist, state)
        view._memo["lab01.distribution"] = dist
        if live:
            view.mode = "live"

    return prepare


def origin(dist: dict) -> dict:
    return dist["DistributionConfig"]["Origins"]["Items"][0]


def attach_oac(oac_id: str | None):
    def edit(dist, state):
        origin(dist)["OriginAccessControlId"] = state["oac_id"] if oac_id == "own" else oac_id

    return edit


def allow_http_after_create(t, state):
    """mutate: update_distribution to ViewerProtocolPolicy allow-all."""
    cloudfront = t.client("cloudfront")
    got = cloudfront.get_distribution_config(Id=state["dist_id"])
    config = got["DistributionConfig"]
    config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] = "allow-all"
    cloudfront.update_distribution(Id=state["dist_id"], IfMatch=got["ETag"], DistributionConfig=config)


def copy_index_to(prefix: str):
    def mutate(t, state):
        t.client("s3").put_object(Bucket=state["bucket"], Key=f"{prefix}/index.html",
                                  Body=(SITE_DIR / "index.html").read_bytes(), ContentType="text/html")

    return mutate


def single_statement_policy(t, state):
    """mutate: the solution's statement written as a Statement object, not a one-item list (valid IAM JSON)."""
    put_policy(t, state["bucket"], scoped_statement(state["bucket"], state["dist_arn"]), single=True)


def second_distribution(t, state):
    """mutate: a re-run cell that made another distribution on the same bucket."""
    cloudfront = t.client("cloudfront")
    config = cloudfront.get_distribution_config(Id=state["dist_id"])["DistributionConfig"]
    config["CallerReference"] = "second-run"
    cloudfront.create_distribution_with_tags(DistributionConfigWithTags={
        "DistributionConfig": config, "Tags": {"Items": t.tags("01")}})


def head_bucket_403(view, state, monkeypatch):
    """prepare: S3 answers HEAD on the bucket with a bare 403 (access denied; HEAD carries no error code)."""
    from botocore.exceptions import ClientError

    def refuse(**_):
        raise ClientError({"Error": {"Code": "403", "Message": "Forbidden"},
                           "ResponseMetadata": {"HTTPStatusCode": 403}}, "HeadBucket")

    monkeypatch.setattr(view.client("s3"), "head_bucket", refuse)


def policy_without_distribution(t, state):
    put_policy(t, state["bucket"], scoped_statement(state["bucket"], OTHER_DIST_ARN))


# -- a fake CloudFront edge for L01.13 ----------------------------------------------

def to_https(url: str) -> str:
    return "https://" + url.split("://", 1)[1]


def _answer(code: int, content_type: str | None = None, location=None):
    def open_(handler, req):
        headers = http.client.HTTPMessage()
        if content_type:
            headers["Content-Type"] = content_type
        if location:
            headers["Location"] = location(req.full_url)
        response = urllib.response.addinfourl(io.BytesIO(b"<!doctype html>"), headers, req.full_url, code)
        response.msg = http.client.responses.get(code, "")
        return response

    return open_


def serve(https=(200, "text/html"), http=(301, None, to_https)):
    """prepare: answer https:// and http:// requests at the socket layer, so urllib's own
    redirect and error handling (and the check's NoRedirect) run as they would."""

    def prepare(view, state, monkeypatch):
        for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setattr(urllib.request, "_opener", None)
        monkeypatch.setattr(urllib.request.HTTPSHandler, "https_open", _answer(*https))
        monkeypatch.setattr(urllib.request.HTTPHandler, "http_open", _answer(*http))

    return prepare


def status(value: str):
    def edit(dist, state):
        dist["Status"] = value

    return edit


CASES = [
    # L01.01 bucket and tags
    Case("L01.01", "solution", PASS, ("Bucket {bucket} exists with the course tags",)),
    Case("L01.01", "no-bucket", FAIL, ("Bucket {bucket} does not exist",), build={"bucket": False}),
    Case("L01.01", "untagged", FAIL, ("Bucket {bucket} lacks the tags", "course=microservices-labs", "lab=01", "learner=ada"),
         build={"bucket_tags": None}),
    Case("L01.01", "lab-00-tags", FAIL, ("Bucket {bucket} lacks the tags lab=01.",), build={"bucket_tags": tags("00")}),
    Case("L01.01", "head-403", Status.ERROR, ("Access denied for HeadBucket",), prepare=head_bucket_403),
    Case("L01.01", "other-learner", FAIL, ("Bucket {bucket} lacks the tags learner=ada.",), build={"bucket_tags": tags(learner="bob")}),
    # L01.02 public access block
    Case("L01.02", "solution", PASS, ("Bucket {bucket} blocks all four",)),
    Case("L01.02", "no-bucket", FAIL, ("Bucket {bucket} does not exist",), build={"bucket": False}),
    Case("L01.02", "no-block", FAIL, ("Bucket {bucket} has no public access block",), build={"public_access": None}),
    *[Case("L01.02", f"{flag}-off", FAIL, (f"Bucket {{bucket}} leaves {flag} off",), build={"public_access": {flag: False}})
      for flag in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")],
    Case("L01.02", "two-off", FAIL, ("Bucket {bucket} leaves BlockPublicPolicy, RestrictPublicBuckets off",),
         build={"public_access": {"BlockPublicPolicy": False, "RestrictPublicBuckets": False}}),
    # L01.03 default encryption
    Case("L01.03", "sse-s3", PASS, ("Bucket {bucket} encrypts new objects with AES256",)),
    Case("L01.03", "sse-kms", PASS, ("Bucket {bucket} encrypts new objects with aws:kms",), build={"encryption": "aws:kms"}),
    Case("L01.03", "no-bucket", FAIL, ("Bucket {bucket} does not exist",), build={"bucket": False}),
    Case("L01.03", "unencrypted", FAIL, ("Bucket {bucket} has no default encryption",), build={"encryption": None}),
    # L01.04 content types
    Case("L01.04", "solution", PASS, ("Bucket {bucket} holds all 3 site files",)),
    Case("L01.04", "charset", PASS, ("Bucket {bucket} holds all 3",),
         build={"content_types": {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8"}}),
    Case("L01.04", "application-javascript", FAIL, ("Bucket {bucket}: app.js is application/javascript, expected text/javascript.",),
         build={"content_types": {"app.js": "application/javascript"}}),
    Case("L01.04", "other-bytes", FAIL, ("Bucket {bucket}: app.js is not the course's app.js (14 bytes",),
         build={"bodies": {"app.js": b"console.log(1)"}}),
    Case("L01.04", "plus-deny-insecure-transport", PASS, ("Bucket {bucket} holds all 3 site files",),
         build={"policy": plus_deny_http}),
    Case("L01.04", "no-bucket", FAIL, ("Bucket {bucket} does not exist",), build={"bucket": False}),
    Case("L01.04", "index-binary", FAIL, ("Bucket {bucket}: index.html is binary/octet-stream, expected text/html.",),
         build={"content_types": {"index.html": None}}),
    Case("L01.04", "js-as-text-plain", FAIL, ("Bucket {bucket}: app.js is text/plain, expected text/javascript",),
         build={"content_types": {"app.js": "text/plain"}}),
    Case("L01.04", "css-missing", FAIL, ("Bucket {bucket}: style.css is missing",), build={"skip_files": ("style.css",)}),
    Case("L01.04", "nothing-uploaded", FAIL, ("app.js is missing; index.html is missing; style.css is missing",),
         build={"files": False}),
    # L01.05 the distribution
    Case("L01.05", "solution", PASS, ("Distribution {dist_id} ({domain}) serves bucket {bucket}",)),
    Case("L01.05", "no-distribution", FAIL, ("No CloudFront distribution has bucket {bucket} as its origin",),
         build={"distribution": False, "policy": None}),
    Case("L01.05", "website-endpoint", FAIL, ("Distribution {dist_id} uses the S3 website endpoint",
                                              "{bucket}.s3.us-east-1.amazonaws.com"),
         build={"origin_domain": "{bucket}.s3-website-us-east-1.amazonaws.com"}),
    Case("L01.05", "someone-elses-bucket", FAIL, ("No CloudFront distribution has bucket {bucket}",),
         build={"origin_domain": "bob-site-123456789012.s3.us-east-1.amazonaws.com"}),
    Case("L01.05", "disabled", FAIL, ("Distribution {dist_id} is disabled",), build={"enabled": False}),
    Case("L01.05", "second-distribution", FAIL, ("2 distributions ({dist_id}, ", "serve bucket {bucket}; delete all but one"),
         mutate=second_distribution),
    Case("L01.05", "untagged", FAIL, ("Distribution {dist_id} lacks the tags", "lab=01"), build={"dist_tags": None}),
    # L01.06 origin access control
    Case("L01.06", "solution", PASS, ("Origin access control {oac_name} ({oac_id}) signs every request",)),
    Case("L01.06", "no-oac", FAIL, ("There is no origin access control named {oac_name}",), build={"oac": False}),
    Case("L01.06", "misnamed-oac", FAIL, ("There is no origin access control named {oac_name}",), build={"oac_name": "ada-oac"}),
    Case("L01.06", "signing-no-override", FAIL, ("Origin access control {oac_name}: SigningBehavior is no-override, expected always",),
         build={"oac_config": {"SigningBehavior": "no-override"}}),
    Case("L01.06", "mediastore-origin-type", FAIL, ("OriginAccessControlOriginType is mediastore, expected s3",),
         build={"oac_config": {"OriginAccessControlOriginType": "mediastore"}}),
    Case("L01.06", "policy-grants-oai", FAIL, ("The policy of bucket {bucket} grants a legacy origin access identity",),
         build={"policy": policy(Principal=OAI_PRINCIPAL, Condition=None)}),
    Case("L01.06", "deny-names-oai", PASS, ("Origin access control {oac_name}",),
         build={"policy": lambda b, arn: [scoped_statement(b, arn), scoped_statement(
             b, arn, Sid="NoLegacy", Effect="Deny", Principal=OAI_PRINCIPAL, Condition=None)]}),
    Case("L01.06", "statement-object", PASS, ("Origin access control {oac_name}",), mutate=single_statement_policy),
    # L01.07 OAC attached, no OAI on the origin: moto echoes neither (SKIP); the live path reads both
    Case("L01.07", "local-cannot-show", SKIP, ("Distribution {dist_id}", LIVE_ONLY)),
    Case("L01.07", "local-cannot-show-oai-either", SKIP, ("Distribution {dist_id}", LIVE_ONLY),
         build={"origin_access_identity": f"origin-access-identity/cloudfront/{LEGACY_OAI}"}),
    Case("L01.07", "live-origin-uses-oai", FAIL,
         (f"Distribution {{dist_id}} reaches the bucket through legacy identity origin-access-identity/cloudfront/{LEGACY_OAI}",),
         prepare=with_distribution(lambda d, s: origin(d).update(
             S3OriginConfig={"OriginAccessIdentity": f"origin-access-identity/cloudfront/{LEGACY_OAI}"}), live=True)),
    Case("L01.07", "no-distribution", FAIL, ("No CloudFront distribution has bucket {bucket}",),
         build={"distribution": False, "policy": None}),
    Case("L01.07", "live-attached", PASS, ("The S3 origin of distribution {dist_id} signs its requests with {oac_id}",),
         prepare=with_distribution(attach_oac("own"), live=True)),
    Case("L01.07", "live-other-oac", FAIL, (f"distribution {{dist_id}} uses origin access control {OTHER_OAC}, not {{oac_name}}",),
         prepare=with_distribution(attach_oac(OTHER_OAC), live=True)),
    Case("L01.07", "live-none-attached", FAIL, ("The S3 origin of distribution {dist_id} has no origin access control",),
         prepare=with_distribution(attach_oac(None), live=True)),
    Case("L01.07", "live-misnamed-oac", FAIL, ("uses origin access control {oac_id}, not {oac_name}",),
         build={"oac_name": "ada-oac"}, prepare=with_distribution(attach_oac("own"), live=True)),
    # L01.08 HTTPS only
    Case("L01.08", "redirect-to-https", PASS, ("Distribution {dist_id} redirects HTTP to HTTPS on all 1 behavior(s)",)),
    Case("L01.08", "https-only", FAIL, ("Distribution {dist_id} refuses plain HTTP on its default behavior (https-only) "
                                        "instead of redirecting it",), build={"viewer_protocol": "https-only"}),
    Case("L01.08", "two-behaviors", PASS, ("on all 2 behavior(s)",),
         build={"cache_behaviors": [{"PathPattern": "/assets/*", "ViewerProtocolPolicy": "redirect-to-https"}]}),
    Case("L01.08", "no-distribution", FAIL, ("No CloudFront distribution has bucket {bucket}",),
         build={"distribution": False, "policy": None}),
    Case("L01.08", "allow-all", FAIL, ("Distribution {dist_id} allows plain HTTP on its default behavior",),
         build={"viewer_protocol": "allow-all"}),
    Case("L01.08", "allow-all-by-update", FAIL, ("Distribution {dist_id} allows plain HTTP on its default behavior",),
         mutate=allow_http_after_create),
    Case("L01.08", "path-behavior-allow-all", FAIL, ("Distribution {dist_id} allows plain HTTP on its behavior /assets/*",),
         build={"cache_behaviors": [{"PathPattern": "/assets/*", "ViewerProtocolPolicy": "allow-all"}]}),
    # L01.09 default root object
    Case("L01.09", "solution", PASS, ("Distribution {dist_id} answers / with index.html",)),
    Case("L01.09", "no-distribution", FAIL, ("No CloudFront distribution has bucket {bucket}",),
         build={"distribution": False, "policy": None}),
    Case("L01.09", "unset", FAIL, ("Distribution {dist_id} answers / with nothing, not index.html",), build={"default_root": None}),
    Case("L01.09", "leading-slash", FAIL, ("Distribution {dist_id} answers / with '/index.html'",), build={"default_root": "/index.html"}),
    Case("L01.09", "other-page", FAIL, ("Distribution {dist_id} answers / with 'home.html'",), build={"default_root": "home.html"}),
    # L01.10 SPA routing
    Case("L01.10", "solution", PASS, ("Distribution {dist_id} sends 403 and 404 to /index.html with 200",)),
    Case("L01.10", "no-distribution", FAIL, ("No CloudFront distribution has bucket {bucket}",),
         build={"distribution": False, "policy": None}),
    Case("L01.10", "no-rules", FAIL, ("Distribution {dist_id}: no rule for 403; no rule for 404",), build={"error_responses": None}),
    Case("L01.10", "only-404", FAIL, ("Distribution {dist_id}: no rule for 403.",),
         build={"error_responses": [{"ErrorCode": 404, "ResponsePagePath": "/index.html", "ResponseCode": "200"}]}),
    Case("L01.10", "403-keeps-status", FAIL, ("Distribution {dist_id}: 403 goes to /index.html with 403, expected /index.html with 200",),
         build={"error_responses": [{"ErrorCode": 403, "ResponsePagePath": "/index.html", "ResponseCode": "403"},
                                    {"ErrorCode": 404, "ResponsePagePath": "/index.html", "ResponseCode": "200"}]}),
    Case("L01.10", "404-error-page", FAIL, ("404 goes to /404.html with 404",),
         build={"error_responses": [{"ErrorCode": 403, "ResponsePagePath": "/index.html", "ResponseCode": "200"},
                                    {"ErrorCode": 404, "ResponsePagePath": "/404.html", "ResponseCode": "404"}]}),
    # L01.11 the bucket policy
    Case("L01.11", "solution", PASS, ("Only distribution {dist_id} may read objects in bucket {bucket}",)),
    Case("L01.11", "arn-equals-list", PASS, ("Only distribution {dist_id}",),
         build={"policy": lambda b, arn: [scoped_statement(b, arn, Action=["s3:GetObject"],
                                                           Condition={"ArnEquals": {"aws:SourceArn": [arn]}})]}),
    Case("L01.11", "plus-deny-insecure-transport", PASS, ("Only distribution {dist_id}",),
         build={"policy": plus_deny_http}),
    Case("L01.11", "deny-blocks-cloudfront", FAIL, ("Bucket {bucket}'s policy denies distribution {dist_id}'s reads "
                                                    "(OnlyMyAccount), so CloudFront cannot serve the site",),
         build={"policy": lambda b, arn: [scoped_statement(b, arn), {
             "Sid": "OnlyMyAccount", "Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::123456789012:root"},
             "Action": "s3:*", "Resource": [f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*"]}]}),
    Case("L01.11", "deny-other-distributions", PASS, ("Only distribution {dist_id}",),
         build={"policy": lambda b, arn: [
             scoped_statement(b, arn, Condition={"StringLike": {"AWS:SourceArn": "arn:aws:cloudfront::123456789012:*"}}),
             {"Sid": "NotOtherDistributions", "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
              "Resource": f"arn:aws:s3:::{b}/*", "Condition": {"ArnNotEquals": {"AWS:SourceArn": arn}}}]}),
    Case("L01.11", "second-statement-any-distribution", FAIL, (
        "does not scope reads to distribution {dist_id}: its AWS:SourceArn is arn:aws:cloudfront::123456789012:*",
        "another distribution may read it"),
         build={"policy": lambda b, arn: [scoped_statement(b, arn), scoped_statement(
             b, arn, Sid="AnyOfMine", Condition={"StringLike": {"AWS:SourceArn": "arn:aws:cloudfront::123456789012:*"}})]}),
    Case("L01.11", "statement-object", PASS, ("Only distribution {dist_id}",), mutate=single_statement_policy),
    Case("L01.11", "lowercase-action", PASS, ("Only distribution {dist_id}",), build={"policy": policy(Action="s3:getobject")}),
    Case("L01.11", "no-bucket", FAIL, ("Bucket {bucket} does not exist",), build={"bucket": False}),
    Case("L01.11", "missing", FAIL, ("Bucket {bucket} has no bucket policy",), build={"policy": None}),
    Case("L01.11", "public-principal", FAIL, ("Bucket {bucket}'s policy grants AllowCloudFrontRead to everyone (Principal *)",),
         build={"policy": policy(Principal="*", Condition=None)}),
    Case("L01.11", "public-aws-principal", FAIL, ("Bucket {bucket}'s policy grants", "to everyone"),
         build={"policy": policy(Principal={"AWS": "*"}, Condition=None)}),
    Case("L01.11", "oai-principal", FAIL, ("Bucket {bucket}'s policy grants a legacy origin access identity",),
         build={"policy": policy(Principal=OAI_PRINCIPAL, Condition=None)}),
    Case("L01.11", "no-condition", FAIL, ("Bucket {bucket}'s policy does not scope reads to distribution {dist_id}",
                                          "no AWS:SourceArn condition"),
         build={"policy": policy(Condition=None)}),
    Case("L01.11", "source-account-only", FAIL, ("no AWS:SourceArn condition",),
         build={"policy": policy(Condition={"StringEquals": {"AWS:SourceAccount": "123456789012"}})}),
    Case("L01.11", "other-distribution", FAIL, (f"its AWS:SourceArn is {OTHER_DIST_ARN}, not this distribution ({{dist_arn}})",),
         build={"policy": lambda b, arn: [scoped_statement(b, OTHER_DIST_ARN)]}),
    Case("L01.11", "any-distribution-wildcard", FAIL, ("its AWS:SourceArn is arn:aws:cloudfront::123456789012:distribution/*",),
         build={"policy": policy(Condition={"StringLike": {"AWS:SourceArn": "arn:aws:cloudfront::123456789012:distribution/*"}})}),
    Case("L01.11", "action-s3-star", FAIL, ("Bucket {bucket}'s policy does not scope reads", "it allows s3:* instead of only s3:GetObject"),
         build={"policy": policy(Action="s3:*")}),
    Case("L01.11", "action-plus-list", FAIL, ("it allows s3:GetObject, s3:ListBucket instead of only s3:GetObject",),
         build={"policy": policy(Action=["s3:GetObject", "s3:ListBucket"])}),
    Case("L01.11", "whole-bucket-resource", FAIL, ("its resource is arn:aws:s3:::{bucket}, expected arn:aws:s3:::{bucket}/*",),
         build={"policy": lambda b, arn: [scoped_statement(b, arn, Resource=f"arn:aws:s3:::{b}")]}),
    Case("L01.11", "service-principal-other", FAIL, ("its principal is not the cloudfront.amazonaws.com service",),
         build={"policy": policy(Principal={"Service": "lambda.amazonaws.com"})}),
    Case("L01.11", "extra-grant", FAIL, ("Bucket {bucket}'s policy also allows ReadForBob; only the distribution may read",),
         build={"policy": lambda b, arn: [scoped_statement(b, arn), scoped_statement(
             b, arn, Sid="ReadForBob", Principal={"AWS": "arn:aws:iam::123456789012:user/bob"}, Condition=None)]}),
    Case("L01.11", "no-distribution", FAIL, ("No CloudFront distribution has bucket {bucket}",),
         build={"distribution": False, "policy": None}, mutate=policy_without_distribution),
    # L01.12 the entry page, following the request path
    Case("L01.12", "solution", PASS, ("A request for / reaches s3://{bucket}/index.html",)),
    Case("L01.12", "origin-path", PASS, ("A request for / reaches s3://{bucket}/v1/index.html",),
         build={"origin_path": "/v1"}, mutate=copy_index_to("v1")),
    Case("L01.12", "plus-deny-insecure-transport", PASS, ("A request for / reaches s3://{bucket}/index.html",),
         build={"policy": plus_deny_http}),
    Case("L01.12", "no-distribution", FAIL, ("No CloudFront distribution has bucket {bucket}",),
         build={"distribution": False, "policy": None}),
    Case("L01.12", "index-missing", FAIL, ("A request for / would fetch s3://{bucket}/index.html, which does not exist",),
         build={"skip_files": ("index.html",)}),
    Case("L01.12", "origin-path-without-files", FAIL, ("s3://{bucket}/v1/index.html, which does not exist",),
         build={"origin_path": "/v1"}),
    Case("L01.12", "other-page", FAIL, ("s3://{bucket}/index.html is not the course's index.html (19 bytes",),
         build={"bodies": {"index.html": b"<h1>my own app</h1>"}}),
    Case("L01.12", "served-as-binary", FAIL, ("s3://{bucket}/index.html is served as binary/octet-stream",),
         build={"content_types": {"index.html": None}}),
    # L01.13 HTTPS at the edge: SKIP on the local AWS once the distribution exists; graded as live with a fake edge
    Case("L01.13", "local-target", SKIP, (LIVE_ONLY,)),
    Case("L01.13", "https-and-redirect", PASS, ("https://{domain}/ serves the site and http:// redirects to it",),
         prepare=serve(), live=True),
    Case("L01.13", "302-redirect-charset", PASS, ("https://{domain}/ serves the site",),
         prepare=serve(https=(200, "text/html; charset=utf-8"), http=(302, None, to_https)), live=True),
    Case("L01.13", "no-distribution-on-local-aws", FAIL, ("No CloudFront distribution has bucket {bucket}",),
         build={"distribution": False, "policy": None}),
    Case("L01.13", "no-distribution", FAIL, ("No CloudFront distribution has bucket {bucket}",),
         build={"distribution": False, "policy": None}, live=True),
    Case("L01.13", "in-progress", FAIL, ("Distribution {dist_id} is still InProgress",),
         prepare=with_distribution(status("InProgress")), live=True),
    Case("L01.13", "https-403", FAIL, ("https://{domain}/ answered 403; the bucket policy or OAC",),
         prepare=serve(https=(403, "application/xml")), live=True),
    Case("L01.13", "https-binary", FAIL, ("https://{domain}/ answered 200 binary/octet-stream, expected 200 text/html",),
         prepare=serve(https=(200, "binary/octet-stream")), live=True),
    Case("L01.13", "http-served", FAIL, ("http://{domain}/ answered without redirecting to HTTPS",),
         prepare=serve(http=(200, "text/html")), live=True),
    Case("L01.13", "http-redirects-to-http", FAIL, ("http://{domain}/ answered 301 instead of redirecting to HTTPS",),
         prepare=serve(http=(301, None, lambda url: "http://example.com/")), live=True),
]

PASSING = covered(CASES, PASS)
FAILING = covered(CASES, FAIL)


@pytest.mark.parametrize("case", params(CASES))
def test_check(aws, case, monkeypatch):
    run_case(case, aws, build_lab01, monkeypatch)


def test_a_deny_that_applies_still_denies_the_local_s3(aws):
    """The local S3 judges the bucket policy with the course's evaluator: a secure request passes the
    deny-insecure-transport statement, and a Deny that does apply to the caller still answers 403."""
    import botocore.exceptions

    state = build_lab01(aws, policy=lambda b, arn: plus_deny_http(b, arn) + [{
        "Sid": "NoDrafts", "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{b}/drafts/*"}])
    s3 = aws.client("s3")
    s3.put_object(Bucket=state["bucket"], Key="drafts/next.html", Body=b"soon")
    assert s3.get_object(Bucket=state["bucket"], Key="index.html")["Body"].read()
    with pytest.raises(botocore.exceptions.ClientError) as denied:
        s3.get_object(Bucket=state["bucket"], Key="drafts/next.html")
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_moto_reports_the_distribution_deployed(aws):
    """L01.13 runs on moto's own distribution status: keep that assumption visible."""
    state = build_lab01(aws)
    assert aws.client("cloudfront").get_distribution(Id=state["dist_id"])["Distribution"]["Status"] == "Deployed"


def test_unreachable_edge_is_not_the_learners_fault(aws, monkeypatch):
    """A network failure is an ERROR (one sentence), never a FAIL."""
    state = build_lab01(aws)

    def unreachable(handler, req):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "_opener", None)
    monkeypatch.setattr(urllib.request.HTTPSHandler, "https_open", unreachable)
    view = aws.for_grading()
    view.mode = "live"
    result = grade(view, "L01.13")
    assert result.status is Status.ERROR and f"Could not reach https://{state['domain']}/" in result.message


def test_whole_lab_on_the_solution_state(aws):
    assert_whole_lab(aws, "01", build_lab01, skipped={"L01.07", "L01.13"})
