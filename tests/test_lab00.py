"""Lab 00 checks: each passes on the solution's state and fails on states wrong in one way."""
from __future__ import annotations

import json

import botocore.session
import pytest
from botocore.stub import Stubber

from checks.core import LIVE_ONLY, Status

from .cases import Case, assert_whole_lab, covered, params, run_case
from .conftest import fast_session
from .states import alert, build_lab00

PASS, FAIL, SKIP = Status.PASS, Status.FAIL, Status.SKIP
ROOT_ARN = "arn:aws:iam::123456789012:root"


def stub_identity(arn: str):
    """prepare: the view's STS client answers GetCallerIdentity with ``arn``."""

    def prepare(view, state, monkeypatch):
        client = view.session().client("sts", region_name=view.region)
        stub = Stubber(client)
        stub.add_response("get_caller_identity", {"UserId": "AIDAEXAMPLE", "Account": state["account"], "Arn": arn})
        stub.activate()
        view._clients[("sts", view.region)] = client

    return prepare


def in_region(region: str):
    """prepare: grade as a target in ``region`` (botocore's real region data, read through the shared loader)."""

    def prepare(view, state, monkeypatch):
        view.region = region
        monkeypatch.setattr(botocore.session, "get_session", lambda: fast_session()._session)

    return prepare


def stub_subscribers(subscribers: list[dict]):
    """prepare: moto has no DescribeSubscribersForNotification, so the view's budgets
    client replays moto's budget and notifications and answers with ``subscribers``."""

    def prepare(view, state, monkeypatch):
        real = view.client("budgets", "us-east-1")
        ask = {"AccountId": state["account"], "BudgetName": state["budget"]}
        budget = real.describe_budget(**ask)["Budget"]
        notes = real.describe_notifications_for_budget(**ask)["Notifications"]
        client = view.session().client("budgets", region_name="us-east-1")
        stub = Stubber(client)
        stub.add_response("describe_budget", {"Budget": budget}, ask)
        stub.add_response("describe_notifications_for_budget", {"Notifications": notes}, ask)
        for note in notes:
            stub.add_response("describe_subscribers_for_notification", {"Subscribers": subscribers} if subscribers else {},
                              {**ask, "Notification": note})
        stub.activate()
        view._clients[("budgets", "us-east-1")] = client

    return prepare


EMAIL = [{"SubscriptionType": "EMAIL", "Address": "learner@example.com"}]
SETTINGS = {"prefix": "ada", "region": "us-east-1"}

CASES = [
    # L00.01 identity
    Case("L00.01", "iam-user", PASS, ("arn:aws:sts::{account}:user/moto", "{account}")),
    Case("L00.01", "root-keys", FAIL, ("root user of account {account}",), prepare=stub_identity(ROOT_ARN)),
    # L00.02 region
    Case("L00.02", "us-east-1", PASS, ("Region us-east-1",), prepare=in_region("us-east-1")),
    Case("L00.02", "eu-west-1", PASS, ("Region eu-west-1",), prepare=in_region("eu-west-1")),
    Case("L00.02", "not-a-region", FAIL, ("'us-east-7' is not an AWS commercial region",), prepare=in_region("us-east-7")),
    Case("L00.02", "china-partition", FAIL, ("'cn-north-1'",), prepare=in_region("cn-north-1")),
    # botocore's endpoint data: me-south-1 is a commercial region without DAX
    Case("L00.02", "region-without-dax", FAIL, ("Region me-south-1 does not offer dax",), prepare=in_region("me-south-1")),
    # L00.03 settings parameter
    Case("L00.03", "solution", PASS, ("{parameter}", "'ada'", "'us-east-1'")),
    Case("L00.03", "missing", FAIL, ("Parameter {parameter} does not exist",), build={"parameter": False}),
    Case("L00.03", "secure-string", FAIL, ("Parameter {parameter} is a SecureString",), build={"param_type": "SecureString"}),
    Case("L00.03", "not-json", FAIL, ("Parameter {parameter} does not hold JSON",), build={"value": "prefix=ada region=us-east-1"}),
    Case("L00.03", "json-list", FAIL, ("Parameter {parameter} holds JSON that is not an object",), build={"value": '["ada", "us-east-1"]'}),
    Case("L00.03", "wrong-prefix", FAIL, ("Parameter {parameter}: prefix is 'bob', expected 'ada'",),
         build={"value": json.dumps({**SETTINGS, "prefix": "bob"})}),
    Case("L00.03", "wrong-region", FAIL, ("Parameter {parameter}: region is 'eu-west-1', expected 'us-east-1'",),
         build={"value": json.dumps({**SETTINGS, "region": "eu-west-1"})}),
    Case("L00.03", "no-region", FAIL, ("region is None",), build={"value": json.dumps({"prefix": "ada"})}),
    # L00.04 settings tags
    Case("L00.04", "solution", PASS, ("Parameter {parameter} carries the course tags",)),
    Case("L00.04", "missing", FAIL, ("Parameter {parameter} does not exist",), build={"parameter": False}),
    Case("L00.04", "untagged", FAIL, ("Parameter {parameter} lacks the tags", "course=microservices-labs", "lab=00", "learner=ada"),
         build={"tags": None}),
    Case("L00.04", "wrong-lab", FAIL, ("Parameter {parameter} lacks the tags lab=00.",),
         build={"tags": [{"Key": "course", "Value": "microservices-labs"}, {"Key": "lab", "Value": "01"},
                         {"Key": "learner", "Value": "ada"}]}),
    # L00.05 cost budget
    Case("L00.05", "solution", PASS, ("Budget {budget} caps 10 USD a month and alerts at 80%",)),
    Case("L00.05", "smaller-limit-earlier-alert", PASS, ("Budget {budget} caps 5 USD",),
         build={"limit": "5", "notifications": [alert(50)]}),
    Case("L00.05", "absolute-8-usd", PASS, ("alerts at 8 USD",),
         build={"notifications": [alert(8, threshold_type="ABSOLUTE_VALUE")]}),
    Case("L00.05", "forecast-and-actual", PASS, ("alerts at 80%",),
         build={"notifications": [alert(100, kind="FORECASTED"), alert(80)]}),
    Case("L00.05", "missing", FAIL, ("Budget {budget} does not exist",), build={"budget": False}),
    Case("L00.05", "limit-50-usd", FAIL, ("Budget {budget} allows 50", "at most 10 USD"), build={"limit": "50"}),
    Case("L00.05", "alert-at-90", FAIL, ("Budget {budget} has no ACTUAL-spend notification at 80% or less",),
         build={"notifications": [alert(90)]}),
    Case("L00.05", "quarterly", FAIL, ("Budget {budget} is a QUARTERLY COST budget",), build={"time_unit": "QUARTERLY"}),
    Case("L00.05", "usage-budget", FAIL, ("Budget {budget} is a MONTHLY USAGE budget",), build={"budget_type": "USAGE"}),
    Case("L00.05", "forecast-only", FAIL, ("Budget {budget} has no ACTUAL-spend notification",),
         build={"notifications": [alert(80, kind="FORECASTED")]}),
    Case("L00.05", "absolute-9-usd", FAIL, ("Budget {budget} has no ACTUAL-spend notification",),
         build={"notifications": [alert(9, threshold_type="ABSOLUTE_VALUE")]}),
    Case("L00.05", "no-notification", FAIL, ("Budget {budget} has no ACTUAL-spend notification",),
         build={"notifications": []}),
    # L00.06 subscriber: SKIP on the local AWS once the budget exists; graded as live on stubbed answers
    Case("L00.06", "email-subscriber", PASS, ("Budget {budget} notifies 1 subscriber(s) (EMAIL)",),
         prepare=stub_subscribers(EMAIL), live=True),
    Case("L00.06", "no-notification", FAIL, ("Budget {budget} has no notification at all",),
         build={"notifications": []}, prepare=stub_subscribers(EMAIL), live=True),
    Case("L00.06", "no-subscriber", FAIL, ("No notification of budget {budget} has a subscriber",),
         prepare=stub_subscribers([]), live=True),
    # No notification at all is visible offline: a FAIL, never a SKIP.
    Case("L00.06", "no-notification-on-local-aws", FAIL, ("Budget {budget} has no notification at all",),
         build={"notifications": []}),
    Case("L00.06", "missing", FAIL, ("Budget {budget} does not exist",), build={"budget": False}, live=True),
    Case("L00.06", "local-cannot-show", SKIP, ("Budget {budget} has 1 notification(s)", LIVE_ONLY)),
    Case("L00.06", "missing-on-local-aws", FAIL, ("Budget {budget} does not exist",), build={"budget": False}),
]

PASSING = covered(CASES, PASS)
FAILING = covered(CASES, FAIL)


@pytest.mark.parametrize("case", params(CASES))
def test_check(aws, case, monkeypatch):
    run_case(case, aws, build_lab00, monkeypatch)


def test_whole_lab_on_the_solution_state(aws):
    assert_whole_lab(aws, "00", build_lab00, skipped={"L00.06"})
