# %% [markdown]
# # Lab 01: Static front end
#
# The user interface of the microservices application is a single-page app:
# HTML, JavaScript and CSS that the browser loads once and then talks to the
# APIs you build in the next labs. Static files need no servers. You will
# serve them from a **private S3 bucket** through a **CloudFront
# distribution** that alone may read it.
#
# You will build, step by step:
#
# 1. the bucket: private, encrypted, tagged;
# 2. the site's files, each with the content type browsers expect;
# 3. an Origin Access Control and the distribution (HTTPS only, default root object, SPA routing);
# 4. the bucket policy that lets only that distribution read.
#
# Concepts: [Lab 01 in the course docs](../site/labs/01-static-front-end.md).
# This lab starts from the end of lab 00; `python -m labkit start 01` puts
# the local AWS there.
#
# **On a live account** this lab costs well under one US cent: three small
# S3 objects and an idle CloudFront distribution (see the cost table in the
# docs). Remove it with `python -m labkit cleanup --live` when you are done.

# %%
import json

import checks
import labkit
from labkit.assets import CONTENT_TYPES, SITE_DIR, site_files

t = labkit.target()
s3 = t.client("s3")
cloudfront = t.client("cloudfront")
bucket = t.name("site", t.account_id)  # bucket names are global: the account id keeps yours unique
print("bucket:", bucket)

# %% [markdown]
# ## 1. The bucket
#
# Create the bucket, tag it with `t.tags("01")`, block **all four** kinds of
# public access, and turn on default encryption with SSE-S3 (`AES256`).
# SSE-KMS (`aws:kms`) passes the check too, but on a live account CloudFront
# can then read the files only if the key's policy lets it decrypt: SSE-S3
# needs nothing more.
# Outside `us-east-1`, `create_bucket` needs
# `CreateBucketConfiguration={"LocationConstraint": t.region}`.

# %%
# TODO: create the bucket (tolerate BucketAlreadyOwnedByYou when you re-run), tag it, block public access, set default encryption.
# BEGIN SOLUTION
options = {} if t.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": t.region}}
try:
    s3.create_bucket(Bucket=bucket, **options)
except s3.exceptions.BucketAlreadyOwnedByYou:
    pass
s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": t.tags("01")})
s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
    "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
# END SOLUTION

# %%
checks.run("L01.01-L01.03")

# %% [markdown]
# ## 2. The site's files
#
# `site_files()` lists the app's files under `SITE_DIR`. Upload each one with
# its path relative to `SITE_DIR` as the key. S3 stores whatever
# `ContentType` you send and CloudFront passes it on: an `index.html` stored
# as `binary/octet-stream` is downloaded by the browser instead of shown.
# `CONTENT_TYPES` says what browsers expect: `text/html`, `text/css`, and
# `text/javascript` for scripts (the HTML standard's one type for JavaScript;
# `application/javascript` is obsolete). Upload each file's own bytes, unchanged.

# %%
# NBVAL_CHECK_OUTPUT
for path in site_files():
    print(path.relative_to(SITE_DIR))

# %% [output]
# app.js
# index.html
# style.css

# %%
# TODO: upload every file of site_files() under its relative key, with ContentType CONTENT_TYPES[path.suffix].
# BEGIN SOLUTION
for path in site_files():
    key = path.relative_to(SITE_DIR).as_posix()
    s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), ContentType=CONTENT_TYPES[path.suffix])
# END SOLUTION

# %%
checks.run("L01.04")

# %% [markdown]
# ## 3. Origin Access Control and the distribution
#
# CloudFront reaches a private bucket by signing its requests to S3 with an
# **Origin Access Control** (OAC): SigV4, signing `always`, origin type `s3`.
# Name yours `<prefix>-site-oac`. (The older Origin Access Identity still
# exists; do not use it.)
#
# Then create the distribution with tags:
#
# - one origin: the bucket's REST endpoint `<bucket>.s3.<region>.amazonaws.com`
#   (not the website endpoint), with `S3OriginConfig.OriginAccessIdentity`
#   empty and `OriginAccessControlId` set to your OAC;
# - a default cache behavior with `ViewerProtocolPolicy` `redirect-to-https`
#   and the managed *CachingOptimized* cache policy
#   (`658327ea-f89d-4fab-a63d-7e88639e58f6`), AWS's recommendation for static
#   files; the checks do not grade the cache policy, so any managed or own
#   cache policy is fine;
# - `DefaultRootObject` `index.html`;
# - custom error responses that turn 403 and 404 into `/index.html` with
#   status 200, so the app's own routes (like `/orders`) load the app.
#
# Re-running the cell must not make a second distribution: look for yours
# first.

# %%
oac_name = t.name("site-oac")
origin_domain = f"{bucket}.s3.{t.region}.amazonaws.com"
# TODO: find or create the OAC oac_name; find or create the distribution (distribution), tagged with t.tags("01"), as described above.
# BEGIN SOLUTION
oacs = cloudfront.list_origin_access_controls()["OriginAccessControlList"].get("Items") or []
oac_id = next((o["Id"] for o in oacs if o["Name"] == oac_name), None)
if oac_id is None:
    oac_id = cloudfront.create_origin_access_control(OriginAccessControlConfig={
        "Name": oac_name, "Description": "Signs CloudFront requests to the site bucket",
        "SigningProtocol": "sigv4", "SigningBehavior": "always", "OriginAccessControlOriginType": "s3",
    })["OriginAccessControl"]["Id"]

existing = cloudfront.list_distributions()["DistributionList"].get("Items") or []
distribution = next((d for d in existing
                     if any(o["DomainName"] == origin_domain for o in d["Origins"]["Items"])), None)
if distribution is None:
    error_to_app = [{"ErrorCode": code, "ResponsePagePath": "/index.html", "ResponseCode": "200",
                     "ErrorCachingMinTTL": 10} for code in (403, 404)]
    config = {
        "CallerReference": bucket,
        "Comment": f"{t.prefix} static front end",
        "Enabled": True,
        "DefaultRootObject": "index.html",
        "Origins": {"Quantity": 1, "Items": [{
            "Id": "site-bucket",
            "DomainName": origin_domain,
            "S3OriginConfig": {"OriginAccessIdentity": ""},
            "OriginAccessControlId": oac_id,
        }]},
        "DefaultCacheBehavior": {
            "TargetOriginId": "site-bucket",
            "ViewerProtocolPolicy": "redirect-to-https",
            "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
            "Compress": True,
        },
        "CustomErrorResponses": {"Quantity": 2, "Items": error_to_app},
    }
    distribution = cloudfront.create_distribution_with_tags(DistributionConfigWithTags={
        "DistributionConfig": config, "Tags": {"Items": t.tags("01")}})["Distribution"]
# END SOLUTION
distribution_arn = distribution["ARN"]
print(distribution["Id"], distribution["DomainName"])

# %%
checks.run("L01.05-L01.10")

# %% [markdown]
# `L01.07` is SKIP on the local AWS: it stores your OAC but does not echo
# its id back in the distribution's configuration. A live run checks it.
#
# ## 4. The bucket policy
#
# The bucket is private, so CloudFront still cannot read it. Grant exactly
# one thing: the **CloudFront service** may `s3:GetObject` on
# `arn:aws:s3:::<bucket>/*`, **only** when the request comes from your
# distribution (`StringEquals` on `AWS:SourceArn`). Without that condition any
# distribution, in any account, could read your bucket.

# %%
# TODO: put a bucket policy that allows only your distribution (distribution_arn) to read objects.
# BEGIN SOLUTION
policy = {
    "Version": "2012-10-17",
    "Statement": [{
        "Sid": "AllowCloudFrontRead",
        "Effect": "Allow",
        "Principal": {"Service": "cloudfront.amazonaws.com"},
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
        "Condition": {"StringEquals": {"AWS:SourceArn": distribution_arn}},
    }],
}
s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
# END SOLUTION

# %%
checks.run("L01.11-L01.13")

# %% [markdown]
# `L01.13` asks CloudFront itself for your page over HTTPS, which only a live
# account can answer. Everything else is graded here.
#
# ## What you built
#
# A browser asks the distribution for `/`; CloudFront answers from its cache
# or signs a request to S3 for `index.html`; S3 checks the bucket policy
# (the CloudFront service, on behalf of *your* distribution) and returns the
# page. Nothing is public, every byte travels over HTTPS, and the app's own
# routes fall back to `index.html`.
#
# The whole lab, graded in one go (run it again after any change):

# %%
checks.run("01")

# %% [markdown]
# Save your state before moving on: `python -m labkit save end-of-01`.
