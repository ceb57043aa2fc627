"""Lab 01 (static front end): a private S3 bucket served by CloudFront through OAC."""
from __future__ import annotations

import json

from labkit.assets import CONTENT_TYPES, SITE_DIR, site_files
from labkit.policyeval import Principal, evaluate, named_principals
from labkit.target import Target

from .aws import absent, as_list, missing_tags
from .core import LOCAL_PARTIAL, check, failed, passed, skipped

DOCS = "labs/01-static-front-end.md"
OAI_MARKERS = ("CloudFront Origin Access Identity", "CanonicalUser")
CLOUDFRONT = "cloudfront.amazonaws.com"
# What a read-only distribution must not be granted besides s3:GetObject.
NOT_READS = ("s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "s3:GetObjectAcl", "s3:PutObjectAcl",
             "s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucket")


# -- shared lookups (memoised per grading run) -------------------------------

def site_bucket(t: Target) -> str:
    # Bucket names are global, so the account id keeps them unique on live accounts.
    return t.name("site", t.account_id)


def _bucket_exists(t: Target) -> bool:
    # Only 404 means "no such bucket"; a 403 is access denied, which the grader reports as an ERROR.
    return t.memo("lab01.bucket", lambda: absent(lambda: t.client("s3").head_bucket(Bucket=site_bucket(t)),
                                                 "404", "NoSuchBucket") is not None)


def _origin_is_bucket(origin: dict, bucket: str) -> bool:
    return origin.get("DomainName", "").startswith(f"{bucket}.s3.") or origin.get("DomainName") == f"{bucket}.s3.amazonaws.com"


def _distribution(t: Target) -> dict | None:
    """The full distribution whose origin is the site bucket, or None."""

    ids = _distribution_ids(t)
    if not ids:
        return None
    return t.memo("lab01.distribution", lambda: t.client("cloudfront").get_distribution(Id=ids[0])["Distribution"])


def _distribution_ids(t: Target) -> list[str]:
    """The ids of every distribution whose origin is the site bucket (one, when all is well)."""

    def look():
        bucket = site_bucket(t)
        return [summary["Id"] for page in t.client("cloudfront").get_paginator("list_distributions").paginate()
                for summary in page.get("DistributionList", {}).get("Items", []) or []
                if any(_origin_is_bucket(o, bucket) for o in summary["Origins"].get("Items", []))]

    return t.memo("lab01.distribution_ids", look)


def _website_origin_distribution(t: Target) -> str | None:
    bucket = site_bucket(t)
    for page in t.client("cloudfront").get_paginator("list_distributions").paginate():
        for summary in page.get("DistributionList", {}).get("Items", []) or []:
            if any(o.get("DomainName", "").startswith(f"{bucket}.s3-website") for o in summary["Origins"].get("Items", [])):
                return summary["Id"]
    return None


def _site_origin(dist: dict, bucket: str) -> dict:
    return next(o for o in dist["DistributionConfig"]["Origins"]["Items"] if _origin_is_bucket(o, bucket))


def _policy(t: Target) -> dict | None:
    def look():
        found = absent(lambda: t.client("s3").get_bucket_policy(Bucket=site_bucket(t)), "NoSuchBucketPolicy")
        return found and json.loads(found["Policy"])

    return t.memo("lab01.policy", look)


def _no_bucket(t: Target):
    return failed(f"Bucket {site_bucket(t)} does not exist.")


def _no_distribution(t: Target):
    website = _website_origin_distribution(t)
    if website:
        return failed(f"Distribution {website} uses the S3 website endpoint; use the bucket's REST endpoint "
                      f"({site_bucket(t)}.s3.{t.region}.amazonaws.com) so the bucket can stay private.")
    return failed(f"No CloudFront distribution has bucket {site_bucket(t)} as its origin.")


# -- the bucket -----------------------------------------------------------------

@check("L01.01", "The site bucket exists and carries the course tags", step=1, points=1,
       hint="Create <prefix>-site-<account id> and put_bucket_tagging with t.tags('01').",
       docs=f"{DOCS}#the-site-bucket")
def bucket_tagged(t: Target):
    if not _bucket_exists(t):
        return _no_bucket(t)
    bucket = site_bucket(t)
    tagging = absent(lambda: t.client("s3").get_bucket_tagging(Bucket=bucket), "NoSuchTagSet")
    wrong = missing_tags(tagging and tagging["TagSet"], t.tag_map("01"))
    if wrong:
        return failed(f"Bucket {bucket} lacks the tags {', '.join(wrong)}.")
    return passed(f"Bucket {bucket} exists with the course tags.")


@check("L01.02", "The site bucket blocks all public access", step=1, points=2,
       hint="put_public_access_block with BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy and "
            "RestrictPublicBuckets all True.",
       docs=f"{DOCS}#block-public-access")
def public_access_blocked(t: Target):
    if not _bucket_exists(t):
        return _no_bucket(t)
    bucket = site_bucket(t)
    found = absent(lambda: t.client("s3").get_public_access_block(Bucket=bucket), "NoSuchPublicAccessBlockConfiguration")
    if found is None:
        return failed(f"Bucket {bucket} has no public access block.")
    conf = found["PublicAccessBlockConfiguration"]
    off = [k for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets") if not conf.get(k)]
    if off:
        return failed(f"Bucket {bucket} leaves {', '.join(off)} off.")
    return passed(f"Bucket {bucket} blocks all four kinds of public access.")


@check("L01.03", "The site bucket encrypts objects at rest by default", step=1, points=1,
       hint="put_bucket_encryption with SSEAlgorithm AES256 (SSE-S3).",
       docs=f"{DOCS}#encryption-at-rest")
def default_encryption(t: Target):
    if not _bucket_exists(t):
        return _no_bucket(t)
    bucket = site_bucket(t)
    found = absent(lambda: t.client("s3").get_bucket_encryption(Bucket=bucket),
                   "ServerSideEncryptionConfigurationNotFoundError")
    if found is None:
        return failed(f"Bucket {bucket} has no default encryption.")
    rules = found["ServerSideEncryptionConfiguration"]["Rules"]
    algos = [r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules]
    if not any(a in ("AES256", "aws:kms", "aws:kms:dsse") for a in algos):
        return failed(f"Bucket {bucket} has no default encryption algorithm set.")
    return passed(f"Bucket {bucket} encrypts new objects with {algos[0]} by default.")


@check("L01.04", "Every site file is uploaded with the content type browsers expect", step=2, points=2,
       hint="Upload each file's own bytes with ContentType from labkit.assets.CONTENT_TYPES: "
            + ", ".join(f"{kind} for {suffix}" for suffix, kind in CONTENT_TYPES.items()) + ".",
       docs=f"{DOCS}#content-types")
def content_types(t: Target):
    if not _bucket_exists(t):
        return _no_bucket(t)
    bucket = site_bucket(t)
    s3 = t.client("s3")
    problems = []
    for path in site_files():
        key = path.relative_to(SITE_DIR).as_posix()
        obj = absent(lambda: s3.get_object(Bucket=bucket, Key=key), "NoSuchKey", "404")
        if obj is None:
            problems.append(f"{key} is missing")
            continue
        body, expected = obj["Body"].read(), path.read_bytes()
        if body != expected:
            problems.append(f"{key} is not the course's {key} ({len(body)} bytes, expected {len(expected)})")
        got = (obj.get("ContentType") or "").split(";")[0].strip().lower()
        want = CONTENT_TYPES.get(path.suffix)
        if want and got != want:
            problems.append(f"{key} is {got or 'untyped'}, expected {want}")
    if problems:
        return failed(f"Bucket {bucket}: {'; '.join(problems)}.")
    return passed(f"Bucket {bucket} holds all {len(site_files())} site files, each as the course ships it "
                  "and with the content type browsers expect.")


# -- the distribution -----------------------------------------------------------

@check("L01.05", "A CloudFront distribution serves the bucket through its REST endpoint, enabled and tagged", step=3, points=2,
       hint="create_distribution_with_tags with an origin DomainName of <bucket>.s3.<region>.amazonaws.com "
            "and Tags from t.tags('01'); look for an existing one first, so a re-run makes no second distribution.",
       docs=f"{DOCS}#the-distribution")
def distribution(t: Target):
    dist = _distribution(t)
    if dist is None:
        return _no_distribution(t)
    ids = _distribution_ids(t)
    if len(ids) > 1:
        return failed(f"{len(ids)} distributions ({', '.join(ids)}) serve bucket {site_bucket(t)}; delete all but one "
                      "so the bucket policy, the checks and your visitors agree on which is the site.")
    if not dist["DistributionConfig"].get("Enabled"):
        return failed(f"Distribution {dist['Id']} is disabled.")
    tags = t.client("cloudfront").list_tags_for_resource(Resource=dist["ARN"])["Tags"].get("Items")
    wrong = missing_tags(tags, t.tag_map("01"))
    if wrong:
        return failed(f"Distribution {dist['Id']} lacks the tags {', '.join(wrong)}.")
    return passed(f"Distribution {dist['Id']} ({dist['DomainName']}) serves bucket {site_bucket(t)}.")


def _oac(t: Target) -> dict | None:
    name = t.name("site-oac")
    items = t.client("cloudfront").list_origin_access_controls()["OriginAccessControlList"].get("Items", []) or []
    return next((i for i in items if i["Name"] == name), None)


def _oai_principals(policy: dict | None, bucket: str) -> list[str]:
    """Statements that let a legacy origin access identity read the site (a Deny naming one grants nothing)."""
    found = []
    for who in named_principals(policy or {}):
        if who.kind == "CanonicalUser" or any(marker in who.id for marker in OAI_MARKERS):
            decision = _ask(policy, who, "s3:GetObject", f"arn:aws:s3:::{bucket}/index.html")
            found += [ref.sid or "a statement" for ref in decision.allowed_by] if decision.allowed else []
    return list(dict.fromkeys(found))


def _ask(policy: dict | None, who: Principal, action: str, resource: str, source_arn: str | None = None):
    """The bucket policy's answer to one request over HTTPS; ``source_arn`` is the distribution CloudFront
    reads for (CloudFront sends it, and its account as aws:SourceAccount)."""
    context = {"aws:SecureTransport": True}
    if source_arn:
        context.update({"aws:SourceArn": source_arn, "aws:SourceAccount": source_arn.split(":")[4]})
    return evaluate(policy or {}, action=action, resource=resource, principal=who, context=context)


@check("L01.06", "An origin access control signs CloudFront's requests; no legacy origin access identity is granted", step=3,
       points=2,
       hint="create_origin_access_control named <prefix>-site-oac with SigningProtocol sigv4, SigningBehavior always, "
            "OriginAccessControlOriginType s3; grant the bucket to the CloudFront service, not to an identity.",
       docs=f"{DOCS}#origin-access-control")
def origin_access_control(t: Target):
    name = t.name("site-oac")
    if _bucket_exists(t):
        legacy = _oai_principals(_policy(t), site_bucket(t))
        if legacy:
            return failed(f"The policy of bucket {site_bucket(t)} grants a legacy origin access identity ({', '.join(legacy)}); "
                          "grant the cloudfront.amazonaws.com service principal instead.")
    oac = _oac(t)
    if oac is None:
        return failed(f"There is no origin access control named {name}.")
    wrong = [f"{k} is {oac.get(k)}, expected {v}" for k, v in
             (("SigningProtocol", "sigv4"), ("SigningBehavior", "always"), ("OriginAccessControlOriginType", "s3"))
             if oac.get(k) != v]
    if wrong:
        return failed(f"Origin access control {name}: {'; '.join(wrong)}.")
    return passed(f"Origin access control {name} ({oac['Id']}) signs every request to S3 with SigV4.")


@check("L01.07", "The distribution's S3 origin uses that origin access control, not a legacy identity", step=3, points=1,
       hint="Set OriginAccessControlId on the S3 origin to the OAC's Id and leave S3OriginConfig.OriginAccessIdentity empty.",
       docs=f"{DOCS}#origin-access-control", local=LOCAL_PARTIAL,
       local_note="The local AWS returns neither OriginAccessControlId nor S3OriginConfig in the distribution config")
def oac_attached(t: Target):
    dist = _distribution(t)
    if dist is None:
        return _no_distribution(t)
    origin = _site_origin(dist, site_bucket(t))
    oai = (origin.get("S3OriginConfig") or {}).get("OriginAccessIdentity")
    if oai:
        return failed(f"Distribution {dist['Id']} reaches the bucket through legacy identity {oai}; use the OAC instead.")
    oac = _oac(t)
    attached = origin.get("OriginAccessControlId")
    if not attached:
        if t.is_local:
            return skipped(f"Distribution {dist['Id']}: the local AWS does not echo the origin's access settings")
        return failed(f"The S3 origin of distribution {dist['Id']} has no origin access control.")
    if oac is None or attached != oac["Id"]:
        return failed(f"The S3 origin of distribution {dist['Id']} uses origin access control {attached}, "
                      f"not {t.name('site-oac')}.")
    return passed(f"The S3 origin of distribution {dist['Id']} signs its requests with {oac['Id']}.")


@check("L01.08", "Viewers are redirected to HTTPS on every path", step=3, points=2,
       hint="Set ViewerProtocolPolicy to redirect-to-https on the default cache behavior and every other behavior.",
       docs=f"{DOCS}#https-only")
def https_only(t: Target):
    dist = _distribution(t)
    if dist is None:
        return _no_distribution(t)
    conf = dist["DistributionConfig"]
    behaviors = [("default behavior", conf["DefaultCacheBehavior"])]
    behaviors += [(f"behavior {b.get('PathPattern')}", b) for b in (conf.get("CacheBehaviors", {}).get("Items") or [])]
    loose = [name for name, b in behaviors if b.get("ViewerProtocolPolicy") not in ("redirect-to-https", "https-only")]
    if loose:
        return failed(f"Distribution {dist['Id']} allows plain HTTP on its {', '.join(loose)}.")
    # https-only answers plain HTTP with 403: no plain HTTP either, but a visitor typing the address gets an error page.
    refusing = [name for name, b in behaviors if b.get("ViewerProtocolPolicy") == "https-only"]
    if refusing:
        return failed(f"Distribution {dist['Id']} refuses plain HTTP on its {', '.join(refusing)} (https-only) instead "
                      "of redirecting it; use redirect-to-https so http:// links still reach the site.")
    return passed(f"Distribution {dist['Id']} redirects HTTP to HTTPS on all {len(behaviors)} behavior(s).")


@check("L01.09", "The distribution answers / with index.html", step=3, points=1,
       hint="Set DefaultRootObject to index.html (no leading slash).",
       docs=f"{DOCS}#default-root-object")
def default_root_object(t: Target):
    dist = _distribution(t)
    if dist is None:
        return _no_distribution(t)
    root = dist["DistributionConfig"].get("DefaultRootObject") or ""
    if root != "index.html":
        shown = repr(root) if root else "nothing"
        return failed(f"Distribution {dist['Id']} answers / with {shown}, not index.html.")
    return passed(f"Distribution {dist['Id']} answers / with index.html.")


@check("L01.10", "Unknown paths fall back to index.html so the single-page app can route", step=3, points=2,
       hint="Add CustomErrorResponses mapping ErrorCode 403 and 404 to ResponsePagePath /index.html with ResponseCode 200.",
       docs=f"{DOCS}#single-page-app-routing")
def spa_routing(t: Target):
    dist = _distribution(t)
    if dist is None:
        return _no_distribution(t)
    items = dist["DistributionConfig"].get("CustomErrorResponses", {}).get("Items") or []
    by_code = {int(i["ErrorCode"]): i for i in items}
    problems = []
    for code in (403, 404):
        rule = by_code.get(code)
        if rule is None:
            problems.append(f"no rule for {code}")
        elif rule.get("ResponsePagePath") != "/index.html" or str(rule.get("ResponseCode")) != "200":
            problems.append(f"{code} goes to {rule.get('ResponsePagePath') or 'the error'} with "
                            f"{rule.get('ResponseCode') or code}, expected /index.html with 200")
    if problems:
        return failed(f"Distribution {dist['Id']}: {'; '.join(problems)}.")
    return passed(f"Distribution {dist['Id']} sends 403 and 404 to /index.html with 200.")


# -- the bucket policy ------------------------------------------------------------

def _statement_grants_distribution(st: dict, bucket: str, dist_arn: str) -> str | None:
    """None when the statement is the scoped OAC grant, else why it is not."""
    principal = st.get("Principal")
    services = as_list(principal.get("Service")) if isinstance(principal, dict) else []
    if services != ["cloudfront.amazonaws.com"]:
        return "its principal is not the cloudfront.amazonaws.com service"
    if [a.lower() for a in as_list(st.get("Action"))] != ["s3:getobject"]:  # IAM actions ignore case
        return f"it allows {', '.join(as_list(st.get('Action')))} instead of only s3:GetObject"
    if as_list(st.get("Resource")) != [f"arn:aws:s3:::{bucket}/*"]:
        return f"its resource is {', '.join(as_list(st.get('Resource')))}, expected arn:aws:s3:::{bucket}/*"
    condition = st.get("Condition") or {}
    arns = []
    for op in ("StringEquals", "ArnEquals", "ArnLike", "StringLike"):
        for key, value in (condition.get(op) or {}).items():
            if key.lower() == "aws:sourcearn":
                arns += as_list(value)
    if not arns:
        return "it has no AWS:SourceArn condition, so any distribution in any account could read the bucket"
    if arns != [dist_arn]:
        return f"its AWS:SourceArn is {', '.join(arns)}, not this distribution ({dist_arn})"
    return None


def _other_readers(t: Target, dist_arn: str, policy: dict) -> list[tuple[Principal, str | None, str]]:
    """(principal, SourceArn, who in words) for every caller but this distribution: other distributions here and
    in another account, CloudFront with no distribution, another service, IAM principals here and elsewhere,
    and every principal the policy itself names."""
    account = t.account_id
    other = "210987654321" if account != "210987654321" else "123456789012"
    cloudfront = Principal.service(CLOUDFRONT)
    callers = [
        (cloudfront, f"arn:aws:cloudfront::{account}:distribution/EOTHERDISTRIBUTION", "another distribution"),
        (cloudfront, f"arn:aws:cloudfront::{other}:distribution/{dist_arn.rsplit('/', 1)[-1]}",
         f"a distribution in account {other}"),
        (cloudfront, None, "CloudFront on behalf of no distribution"),
        (Principal.service("lambda.amazonaws.com"), None, "the Lambda service"),
        (Principal.aws(f"arn:aws:iam::{account}:user/someone"), None, f"an IAM user of account {account}"),
        (Principal.aws(f"arn:aws:iam::{other}:root"), None, f"account {other}"),
    ]
    callers += [(who, None, str(who)) for who in named_principals(policy) if who != cloudfront]
    return callers


@check("L01.11", "The bucket policy lets only this distribution read the site", step=4, points=3,
       hint="One Allow statement: Principal {'Service': 'cloudfront.amazonaws.com'}, Action s3:GetObject, "
            "Resource arn:aws:s3:::<bucket>/*, Condition StringEquals AWS:SourceArn = the distribution ARN.",
       docs=f"{DOCS}#bucket-policy")
def bucket_policy(t: Target):
    if not _bucket_exists(t):
        return _no_bucket(t)
    bucket = site_bucket(t)
    policy = _policy(t)
    if policy is None:
        return failed(f"Bucket {bucket} has no bucket policy, so CloudFront cannot read it.")
    page, whole = f"arn:aws:s3:::{bucket}/index.html", f"arn:aws:s3:::{bucket}"
    public = _ask(policy, Principal.anonymous(), "s3:GetObject", page)
    if public.allowed:
        sid = public.allowed_by[0].sid or "a statement"
        return failed(f"Bucket {bucket}'s policy grants {sid} to everyone (Principal *): the site is public.")
    if _oai_principals(policy, bucket):
        return failed(f"Bucket {bucket}'s policy grants a legacy origin access identity; grant the CloudFront service principal instead.")
    dist = _distribution(t)
    if dist is None:
        return _no_distribution(t)
    arn, cloudfront = dist["ARN"], Principal.service(CLOUDFRONT)

    def why(decision) -> str:
        ref = decision.allowed_by[0]
        return _statement_grants_distribution(ref.statement, bucket, arn) or f"{ref.where} grants it too"

    own = _ask(policy, cloudfront, "s3:GetObject", page, arn)
    if own.denied:
        names = ", ".join(ref.sid or "a Deny statement" for ref in own.denied_by)
        return failed(f"Bucket {bucket}'s policy denies distribution {dist['Id']}'s reads ({names}), "
                      "so CloudFront cannot serve the site.")
    if not own.allowed:
        allows = [st for st in as_list(policy.get("Statement")) if isinstance(st, dict) and st.get("Effect") == "Allow"]
        reasons = [r for r in (_statement_grants_distribution(st, bucket, arn) for st in allows) if r]
        reason = reasons[0] if reasons else "it has no Allow statement"
        return failed(f"Bucket {bucket}'s policy does not scope reads to distribution {dist['Id']}: {reason}.")
    for action in NOT_READS:
        for resource in (whole, page):
            more = _ask(policy, cloudfront, action, resource, arn)
            if more.allowed:
                return failed(f"Bucket {bucket}'s policy does not scope reads to distribution {dist['Id']}: "
                              f"{why(more)}.")
    for who, source_arn, words in _other_readers(t, arn, policy):
        other = _ask(policy, who, "s3:GetObject", page, source_arn)
        if not other.allowed:
            continue
        if who.kind == "Service" and who.id == CLOUDFRONT:
            return failed(f"Bucket {bucket}'s policy does not scope reads to distribution {dist['Id']}: {why(other)} "
                          f"({words} may read it).")
        names = ", ".join(ref.sid or "a statement" for ref in other.allowed_by)
        return failed(f"Bucket {bucket}'s policy also allows {names}; only the distribution may read ({words} can).")
    return passed(f"Only distribution {dist['Id']} may read objects in bucket {bucket}.")


# -- behaviour ----------------------------------------------------------------------

@check("L01.12", "The entry page is served from the distribution's origin", step=4, points=2,
       hint="Upload index.html to the bucket the distribution points at, and set the default root object.",
       docs=f"{DOCS}#how-a-request-flows")
def entry_page_from_origin(t: Target):
    """Follow the request path: distribution -> default root object -> origin bucket -> object."""
    dist = _distribution(t)
    if dist is None:
        return _no_distribution(t)
    bucket = site_bucket(t)
    origin = _site_origin(dist, bucket)
    root = dist["DistributionConfig"].get("DefaultRootObject") or "index.html"
    key = (origin.get("OriginPath") or "").strip("/")
    key = f"{key}/{root}" if key else root
    obj = absent(lambda: t.client("s3").get_object(Bucket=bucket, Key=key), "NoSuchKey", "404")
    if obj is None:
        return failed(f"A request for / would fetch s3://{bucket}/{key}, which does not exist.")
    body = obj["Body"].read()
    expected = (SITE_DIR / "index.html").read_bytes()
    if body != expected:
        return failed(f"s3://{bucket}/{key} is not the course's index.html ({len(body)} bytes, expected {len(expected)}).")
    if not (obj.get("ContentType") or "").startswith("text/html"):
        return failed(f"s3://{bucket}/{key} is served as {obj.get('ContentType') or 'untyped'}; browsers would download it.")
    return passed(f"A request for / reaches s3://{bucket}/{key}: {len(body)} bytes of HTML.")


@check("L01.13", "The site answers over HTTPS at the distribution's domain and redirects HTTP", step=4, points=2,
       hint="Wait until the distribution is Deployed, then open https://<domain>/ in a browser.",
       docs=f"{DOCS}#how-a-request-flows", local=LOCAL_PARTIAL,
       local_note="The local AWS does not serve requests through a CloudFront distribution")
def served_by_cloudfront(t: Target):
    import urllib.error
    import urllib.request

    from labkit.errors import LabkitError

    dist = _distribution(t)
    if dist is None:
        return _no_distribution(t)
    domain = dist["DomainName"]
    if t.is_local:
        return skipped(f"Distribution {dist['Id']} exists; the local AWS cannot serve requests through it")
    if dist.get("Status") != "Deployed":
        return failed(f"Distribution {dist['Id']} is still {dist.get('Status')}; wait for Deployed and check again.")
    try:
        with urllib.request.urlopen(f"https://{domain}/", timeout=10) as response:
            kind = response.headers.get("Content-Type", "")
            if response.status != 200 or not kind.startswith("text/html"):
                return failed(f"https://{domain}/ answered {response.status} {kind}, expected 200 text/html.")
    except urllib.error.HTTPError as exc:
        return failed(f"https://{domain}/ answered {exc.code}; the bucket policy or OAC is not letting CloudFront read.")
    except urllib.error.URLError as exc:
        raise LabkitError(f"Could not reach https://{domain}/ ({exc.reason}); check your network.") from None

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        urllib.request.build_opener(NoRedirect).open(f"http://{domain}/", timeout=10)
        return failed(f"http://{domain}/ answered without redirecting to HTTPS.")
    except urllib.error.URLError as exc:
        if not isinstance(exc, urllib.error.HTTPError):
            raise LabkitError(f"Could not reach http://{domain}/ ({exc.reason}); check your network.") from None
        if exc.code not in (301, 302, 307, 308) or not exc.headers.get("Location", "").startswith("https://"):
            return failed(f"http://{domain}/ answered {exc.code} instead of redirecting to HTTPS.")
    return passed(f"https://{domain}/ serves the site and http:// redirects to it.")
