"""Lab 00 (setup): who you are, where you are, your settings, your cost guard."""
from __future__ import annotations

import json

from labkit.config import COURSE_ID
from labkit.target import Target

from .aws import absent, missing_tags
from .core import LOCAL_PARTIAL, check, failed, passed, skipped

DOCS = "labs/00-setup.md"
# Every later lab runs in the learner's region, so it must offer all of these.
COURSE_SERVICES = ("s3", "apigateway", "lambda", "dynamodb", "dax", "ecs", "ecr", "eks", "elasticache", "rds", "cognito-idp")
BUDGET_LIMIT_USD = 10.0
ALERT_AT_MOST_PERCENT = 80.0


def settings_parameter(t: Target) -> str:
    return f"/{COURSE_ID}/{t.prefix}/config"


def budget_name(t: Target) -> str:
    return t.name("course-budget")


@check("L00.01", "You work as an IAM identity, not the account root user", step=2, points=1,
       hint="Sign in with an IAM Identity Center or IAM user profile (aws configure sso), never root access keys.",
       docs=f"{DOCS}#who-you-are-identity")
def identity(t: Target):
    me = t.client("sts").get_caller_identity()
    arn = me["Arn"]
    if arn.endswith(":root"):
        return failed(f"Credentials belong to the root user of account {me['Account']}; root keys must never do day-to-day work.")
    return passed(f"Working as {arn} in account {me['Account']}.")


@check("L00.02", "Your region is a real AWS region that offers every service the course uses", step=2, points=1,
       hint="Pick a commercial region such as us-east-1, eu-west-1 or ap-southeast-2 in labkit.configure(region=...).",
       docs=f"{DOCS}#region")
def region(t: Target):
    import botocore.session

    session = botocore.session.get_session()
    regions = set(session.get_available_regions("s3"))
    if t.region not in regions:
        return failed(f"{t.region!r} is not an AWS commercial region.")
    missing = [s for s in COURSE_SERVICES if t.region not in session.get_available_regions(s)]
    if missing:
        return failed(f"Region {t.region} does not offer {', '.join(missing)}, which later labs need.")
    return passed(f"Region {t.region} offers every service the course uses.")


def _read_settings(t: Target):
    name = settings_parameter(t)
    found = absent(lambda: t.client("ssm").get_parameter(Name=name), "ParameterNotFound")
    return name, found and found["Parameter"]


@check("L00.03", "Your settings parameter holds your prefix and region", step=3, points=2,
       hint="Store json.dumps({'prefix': t.prefix, 'region': t.region}) as a String parameter named "
            "/microservices-labs/<prefix>/config.",
       docs=f"{DOCS}#your-settings")
def settings_parameter_in_place(t: Target):
    name, param = _read_settings(t)
    if param is None:
        return failed(f"Parameter {name} does not exist.")
    if param["Type"] != "String":
        return failed(f"Parameter {name} is a {param['Type']}; settings are not secret, so use a plain String.")
    try:
        data = json.loads(param["Value"])
    except ValueError:
        return failed(f"Parameter {name} does not hold JSON.")
    if not isinstance(data, dict):
        return failed(f"Parameter {name} holds JSON that is not an object.")
    wrong = [f"{key} is {data.get(key)!r}, expected {want!r}"
             for key, want in (("prefix", t.prefix), ("region", t.region)) if data.get(key) != want]
    if wrong:
        return failed(f"Parameter {name}: {'; '.join(wrong)}.")
    return passed(f"Parameter {name} holds prefix {t.prefix!r} and region {t.region!r}.")


@check("L00.04", "Your settings parameter carries the course tags", step=3, points=1,
       hint="Tag the parameter with ssm.add_tags_to_resource(ResourceType='Parameter', ResourceId=<name>, "
            "Tags=t.tags('00')); put_parameter refuses Tags together with Overwrite=True.",
       docs=f"{DOCS}#naming-and-tagging")
def settings_tagged(t: Target):
    name, param = _read_settings(t)
    if param is None:
        return failed(f"Parameter {name} does not exist, so it carries no tags.")
    tags = t.client("ssm").list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"]
    wrong = missing_tags(tags, t.tag_map("00"))
    if wrong:
        return failed(f"Parameter {name} lacks the tags {', '.join(wrong)}.")
    return passed(f"Parameter {name} carries the course tags.")


def _budget(t: Target):
    found = absent(lambda: t.client("budgets", "us-east-1").describe_budget(
        AccountId=t.account_id, BudgetName=budget_name(t)), "NotFoundException")
    return found and found["Budget"]


@check("L00.05", "A monthly cost budget of at most 10 USD warns you at 80% or earlier", step=4, points=2,
       hint="budgets.create_budget with BudgetType COST, TimeUnit MONTHLY, a limit of 10 USD or less and an ACTUAL "
            "notification at a PERCENTAGE threshold of 80 or less.",
       docs=f"{DOCS}#cost-guard")
def cost_budget(t: Target):
    name = budget_name(t)
    budget = _budget(t)
    if budget is None:
        return failed(f"Budget {name} does not exist.")
    if budget.get("BudgetType") != "COST" or budget.get("TimeUnit") != "MONTHLY":
        return failed(f"Budget {name} is a {budget.get('TimeUnit')} {budget.get('BudgetType')} budget; it must be a MONTHLY COST budget.")
    limit = budget.get("BudgetLimit", {})
    amount = float(limit.get("Amount", "inf"))
    if limit.get("Unit") != "USD" or amount > BUDGET_LIMIT_USD:
        return failed(f"Budget {name} allows {limit.get('Amount')} {limit.get('Unit')}; the course needs at most {BUDGET_LIMIT_USD:g} USD.")
    notes = t.client("budgets", "us-east-1").describe_notifications_for_budget(
        AccountId=t.account_id, BudgetName=name)["Notifications"]
    for note in notes:
        threshold = float(note.get("Threshold", 0))
        early = (threshold <= ALERT_AT_MOST_PERCENT if note.get("ThresholdType", "PERCENTAGE") == "PERCENTAGE"
                 else threshold <= amount * ALERT_AT_MOST_PERCENT / 100)
        if note.get("NotificationType") == "ACTUAL" and note.get("ComparisonOperator") == "GREATER_THAN" and early:
            return passed(f"Budget {name} caps {amount:g} USD a month and alerts at {threshold:g}"
                          f"{'%' if note.get('ThresholdType', 'PERCENTAGE') == 'PERCENTAGE' else ' USD'} of actual spend.")
    return failed(f"Budget {name} has no ACTUAL-spend notification at 80% or less of its limit.")


@check("L00.06", "The budget alert reaches a subscriber", step=4, points=1,
       hint="Give the notification a Subscribers list with an EMAIL address (or an SNS topic).",
       docs=f"{DOCS}#cost-guard", local=LOCAL_PARTIAL,
       local_note="The local AWS does not implement DescribeSubscribersForNotification")
def budget_subscriber(t: Target):
    name = budget_name(t)
    client = t.client("budgets", "us-east-1")
    if _budget(t) is None:
        return failed(f"Budget {name} does not exist.")
    notes = client.describe_notifications_for_budget(AccountId=t.account_id, BudgetName=name)["Notifications"]
    if not notes:
        return failed(f"Budget {name} has no notification at all, so nobody would hear of overspending.")
    if t.is_local:
        return skipped(f"Budget {name} has {len(notes)} notification(s); the local AWS cannot list who they reach")
    for note in notes:
        subs = client.describe_subscribers_for_notification(AccountId=t.account_id, BudgetName=name, Notification=note)
        if subs.get("Subscribers"):
            kinds = ", ".join(sorted({s["SubscriptionType"] for s in subs["Subscribers"]}))
            return passed(f"Budget {name} notifies {len(subs['Subscribers'])} subscriber(s) ({kinds}).")
    return failed(f"No notification of budget {name} has a subscriber, so nobody would hear of overspending.")
