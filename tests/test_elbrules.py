"""ALB's rule language, one row per rule of it (the live routing is in test_elb.py)."""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import pytest

from labkit.localaws.extensions.elbhealth import code_matches
from labkit.localaws.extensions.elbrules import (Incoming, condition_matches, final_action, forward_choices, matching_rule,
                                                 pick_group, redirect_location)


def request(path="/", query="", method="GET", client="10.0.0.5", **headers) -> Incoming:
    return Incoming(method, path, query, {k.replace("_", "-").lower(): v for k, v in headers.items()}, client, 80)


ROWS = [
    # (condition, request, matches)
    ({"Field": "path-pattern", "Values": ["/img/*"]}, request("/img/a/b.png"), True),
    ({"Field": "path-pattern", "Values": ["/img/*"]}, request("/IMG/a.png"), False),  # case-sensitive
    ({"Field": "path-pattern", "PathPatternConfig": {"Values": ["/v?/x"]}}, request("/v1/x"), True),
    ({"Field": "path-pattern", "PathPatternConfig": {"Values": ["/v?/x"]}}, request("/v10/x"), False),  # ? is one character
    ({"Field": "path-pattern", "Values": ["/[ab]"]}, request("/a"), False),  # brackets are literal, not a set
    ({"Field": "host-header", "Values": ["*.example.com"]}, request(host="API.Example.com:8080"), True),
    ({"Field": "host-header", "Values": ["*.example.com"]}, request(host="example.com"), False),
    ({"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "User-Agent", "Values": ["*Mobile*"]}},
     request(user_agent="x mobile y"), True),
    ({"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Env", "Values": ["blue"]}}, request(), False),
    ({"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["POST", "PUT"]}}, request(method="PUT"), True),
    ({"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["POST"]}}, request(method="post"), False),
    ({"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "version", "Value": "v2"}]}},
     request(query="a=1&version=V2"), True),
    ({"Field": "query-string", "QueryStringConfig": {"Values": [{"Value": "beta*"}]}}, request(query="x=beta-1"), True),
    ({"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "version", "Value": "v2"}]}},
     request(query="version=v3"), False),
    ({"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/24"]}}, request(client="10.0.0.200"), True),
    ({"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/24"]}}, request(client="10.0.1.1"), False),
    ({"Field": "no-such-field", "Values": ["*"]}, request(), False),
]


@pytest.mark.parametrize("condition,incoming,matches", ROWS)
def test_a_condition_matches_as_alb_says(condition, incoming, matches):
    assert condition_matches(condition, incoming) is matches


@dataclass
class Rule:
    priority: object
    conditions: list
    actions: list


def test_every_condition_of_a_rule_must_match_and_the_default_comes_last():
    both = Rule(1, [{"Field": "path-pattern", "Values": ["/api/*"]}, {"Field": "host-header", "Values": ["a.example.com"]}], [])
    default = Rule("default", [], [])
    assert matching_rule([both, default], request("/api/x", host="a.example.com")) is both
    assert matching_rule([both, default], request("/api/x", host="b.example.com")) is default


def test_the_last_final_action_by_order_decides():
    actions = [{"Type": "authenticate-cognito", "Order": 1}, {"Type": "fixed-response", "Order": 2}]
    assert final_action(actions)["Type"] == "fixed-response"
    assert final_action([{"Type": "authenticate-oidc"}]) is None


def test_weights_draw_groups_in_proportion_and_zero_never():
    choices = forward_choices({"Type": "forward", "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": "a", "Weight": 1}, {"TargetGroupArn": "b", "Weight": 0}, {"TargetGroupArn": "c", "Weight": 3}]}})
    rng = random.Random(7)
    drawn = Counter(pick_group(choices, rng) for _ in range(4000))
    assert drawn["b"] == 0 and 800 <= drawn["a"] <= 1200 and drawn["a"] + drawn["c"] == 4000
    assert pick_group([("a", 0)], random.Random(1)) is None
    assert forward_choices({"Type": "forward", "TargetGroupArn": "x"}) == [("x", 1)]


def test_redirects_fill_alb_placeholders_and_drop_default_ports():
    r = request("/shop/cart", "id=3", host="www.example.com")
    assert redirect_location({"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}, r) == \
        "https://www.example.com/shop/cart?id=3"
    assert redirect_location({"Host": "new.example.com", "Path": "/v2/#{path}", "Query": "", "Port": "8443"}, r) == \
        "http://new.example.com:8443/v2/shop/cart"


@pytest.mark.parametrize("matcher,code,ok", [("200", 200, True), ("200", 204, False), ("200-299", 204, True),
                                             ("200,302", 302, True), ("200,302", 301, False), ("", 200, True)])
def test_the_health_check_matcher(matcher, code, ok):
    assert code_matches(matcher, code) is ok
