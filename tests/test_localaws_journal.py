"""The local AWS's journal: which requests change state (and are journaled and replayed)."""
from __future__ import annotations

import pytest

from labkit.localaws.http import Request
from labkit.localaws.journal import classify


@pytest.mark.parametrize("method,path,headers,body,kind", [
    ("GET", "/ada-site", {}, b"", "read"),
    ("HEAD", "/ada-site/index.html", {}, b"", "read"),
    ("PUT", "/ada-site/index.html", {}, b"<html>", "write"),
    ("DELETE", "/ada-site", {}, b"", "write"),
    ("POST", "/", {"X-Amz-Target": "DynamoDB_20120810.GetItem"}, b"{}", "read"),
    ("POST", "/", {"X-Amz-Target": "DynamoDB_20120810.PutItem"}, b"{}", "write"),
    ("POST", "/", {"X-Amz-Target": "AmazonSSM.GetParameter"}, b"{}", "read"),
    ("POST", "/", {}, b"Action=DescribeVpcs&Version=2016-11-15", "read"),
    ("POST", "/", {}, b"Action=CreateVpc&CidrBlock=10.0.0.0%2F16", "write"),
    ("POST", "/2015-03-31/functions/f/invocations", {}, b"{}", "write"),  # unknown POSTs count as writes
    ("POST", "/moto-api/config", {}, b"{}", "write"),
    ("GET", "/moto-api/config", {}, b"", "read"),
    ("POST", "/_labkit/replay", {}, b"", "control"),
    ("GET", "/?Action=CreateVpc&CidrBlock=10.0.0.0%2F16", {}, b"", "write"),  # the query protocol also takes GET
    ("GET", "/?Action=DescribeVpcs", {}, b"", "read"),
])
def test_requests_are_told_apart(method, path, headers, body, kind):
    path, _, query = path.partition("?")
    request = Request({}, method, path, query, {k.title(): v for k, v in headers.items()}, body)
    assert classify(request) == kind
