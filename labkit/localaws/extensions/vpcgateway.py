"""S3 and DynamoDB from inside a VPC: only through a gateway endpoint, and only what its policy allows.

A VPC of the course has no internet gateway the local AWS emulates, so a request to S3 or DynamoDB from
inside it goes nowhere unless the subnet's route table routes the service to a gateway endpoint. Then the
endpoint policy is evaluated with the course's one policy evaluator (``labkit.policyeval``), as AWS does
before the service's own policies: a request no statement allows, or one a Deny matches, gets the
service's AccessDenied. An allowed read goes on to the local AWS, signed with the course's local
credentials; a probe never writes (grading reads, and so does a probe a learner sends).
"""
from __future__ import annotations

import http.client
import json
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ...policyeval import Principal, evaluate
from .vpcview import Gateway, View

S3_HOST = re.compile(r"^(?:(?P<bucket>[a-z0-9][a-z0-9.-]*)\.)?s3(?:[.-](?P<region>[a-z0-9-]+))?\.amazonaws\.com$")
DYNAMODB_HOST = re.compile(r"^dynamodb\.(?P<region>[a-z0-9-]+)\.amazonaws\.com$")
DYNAMODB_READS = {"GetItem", "BatchGetItem", "Query", "Scan", "DescribeTable", "ListTables"}
CREDENTIALS = ("testing", "testing")  # the local target's credentials (labkit.target)


@dataclass(frozen=True)
class Call:
    """One request to S3 or DynamoDB, as a policy sees it."""
    service: str  # "s3" or "dynamodb"
    action: str
    resource: str
    path: str  # path-style, on the local AWS
    read: bool


def service_of(host: str) -> str | None:
    """``s3`` or ``dynamodb`` when ``host`` is one of their public names, else None."""
    if S3_HOST.match(host):
        return "s3"
    if DYNAMODB_HOST.match(host):
        return "dynamodb"
    return None


def call_for(view: View, url: str, method: str, headers: dict, body: str) -> Call:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    path = parts.path or "/"
    found = S3_HOST.match(host)
    if found:
        bucket = found["bucket"]
        if bucket is None:
            bucket, _, key = path.lstrip("/").partition("/")
        else:
            key = path.lstrip("/")
        query = f"?{parts.query}" if parts.query else ""
        local_path = (f"/{bucket}/{key}" if bucket else "/") + query
        reading = method in ("GET", "HEAD")
        if not bucket:
            return Call("s3", "s3:ListAllMyBuckets", "*", local_path, reading)
        if not key:
            action = "s3:ListBucket" if reading else ("s3:CreateBucket" if method == "PUT" else "s3:DeleteBucket")
            return Call("s3", action, f"arn:aws:s3:::{bucket}", local_path, reading)
        action = {"GET": "s3:GetObject", "HEAD": "s3:GetObject", "PUT": "s3:PutObject",
                  "DELETE": "s3:DeleteObject", "POST": "s3:PutObject"}.get(method, "s3:GetObject")
        return Call("s3", action, f"arn:aws:s3:::{bucket}/{key}", local_path, reading)
    target = next((v for k, v in headers.items() if k.lower() == "x-amz-target"), "")
    operation = target.rpartition(".")[2]
    try:
        table = json.loads(body or "{}").get("TableName") or ""
    except (ValueError, AttributeError):
        table = ""
    resource = f"arn:aws:dynamodb:{view.region}:{view.account}:table/{table}" if table else "*"
    return Call("dynamodb", f"dynamodb:{operation or 'Unknown'}", resource, "/", operation in DYNAMODB_READS)


def route_for(view: View, subnet_id: str, service: str) -> Gateway | None:
    """The gateway endpoint for ``service`` that the subnet's route table routes to, or None."""
    table = view.tables.get(subnet_id)
    return next((g for g in view.gateways if g.service == service and table in g.tables), None)


def decide(view: View, gateway: Gateway, call: Call):
    """The endpoint policy's decision for ``call`` from the course's credentials."""
    return evaluate(gateway.policy, action=call.action, resource=call.resource,
                    principal=Principal.aws(f"arn:aws:iam::{view.account}:root"),
                    context={"aws:SourceVpce": gateway.id, "aws:SourceVpc": view.vpc_id})


def denied_body(view: View, gateway: Gateway, call: Call) -> tuple[str, dict]:
    if call.service == "s3":
        return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                '<Message>Access Denied</Message></Error>', {"Content-Type": "application/xml"})
    who = f"arn:aws:iam::{view.account}:root"
    message = (f"User: {who} is not authorized to perform: {call.action} on resource: {call.resource} "
               f"because no VPC endpoint policy allows the {call.action} action")
    return (json.dumps({"__type": "com.amazon.coral.service#AccessDeniedException", "message": message}),
            {"Content-Type": "application/x-amz-json-1.0"})


def send(endpoint: str, view: View, call: Call, method: str, headers: dict, body: str, timeout: float):
    """Send an allowed read to the local AWS at ``endpoint`` (loopback), signed: (status, body, headers)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    base = urlsplit(endpoint)
    url = f"{base.scheme}://{base.netloc}{call.path}"
    wanted = {k: v for k, v in headers.items() if k.lower() not in ("host", "authorization", "content-length")}
    request = AWSRequest(method=method, url=url, data=body.encode() if body else b"", headers=wanted)
    if call.service == "s3":
        request.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
    SigV4Auth(Credentials(*CREDENTIALS), call.service, view.region).add_auth(request)
    connection = http.client.HTTPConnection(base.hostname, base.port, timeout=timeout)
    try:
        connection.request(method, call.path, body=request.body or None, headers=dict(request.headers.items()))
        answer = connection.getresponse()
        return answer.status, answer.read(), dict(answer.getheaders())
    finally:
        connection.close()
