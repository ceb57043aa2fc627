"""Lab 03 (Lambda microservice): the orders function, its role, and requests end to end."""
from __future__ import annotations

import json
import re
import time
import uuid
from datetime import datetime
from urllib.parse import quote

from labkit.config import work_dir
from labkit.policyeval import (Principal, action_match, applies, arn_match, evaluate, named_principals,
                              principal_match, statements)
from labkit.target import Target

from . import api, iam
from .aws import absent, as_list, missing_tags
from .core import Outcome, Status, check, failed, passed

DOCS = "labs/03-lambda-microservice.md"
HANDLER = "handler.handler"
RUNTIMES = ("python3.12", "python3.13", "python3.14")  # the Python runtimes Lambda supports
API_TIMEOUT_S = 29  # API Gateway's default integration timeout
DATA_ACTIONS = {"putitem": "PutItem", "getitem": "GetItem", "deleteitem": "DeleteItem", "scan": "Scan"}
USED_BY = {"PutItem": "POST /orders", "GetItem": "GET /orders/{orderId}", "DeleteItem": "DELETE /orders/{orderId}",
           "Scan": "GET /orders"}
LOG_ACTIONS = {"createlogstream": "CreateLogStream", "putlogevents": "PutLogEvents"}
# Actions the handler never calls, asked about on whatever resource a too-broad statement names.
NEVER_CALLED = ("dynamodb:DeleteTable", "logs:DeleteLogStream", "logs:DeleteLogGroup", "s3:GetObject", "iam:PassRole")
METHODS = (("GET", "/orders"), ("POST", "/orders"), ("GET", "/orders/{orderId}"), ("DELETE", "/orders/{orderId}"))
LAMBDA_URI = re.compile(r"^arn:aws[\w-]*:apigateway:[\w-]+:lambda:path/2015-03-31/functions/(?P<arn>.+)/invocations$")
EXECUTE_API = re.compile(r"^arn:aws[\w-]*:execute-api:(?P<region>[^:]*):(?P<account>[^:]*):(?P<api>[^/]*)(?P<rest>/.*)?$")
# Lines Lambda itself writes to a function's log group; anything else came from the code.
PLATFORM_LINES = ("START RequestId:", "END RequestId:", "REPORT RequestId:", "INIT_START", "INIT_REPORT",
                  "EXTENSION", "TELEMETRY", "RESTORE_", "RUNTIME_DONE")
ERROR_LINES = ("[ERROR]", "Traceback", "  File ", "LAMBDA_WARNING")
LOG_WAIT_S = 5.0  # logs arrive a moment after the request that wrote them
# What the checks order: the body is a valid NewOrder (lab 02's model) and easy to spot in the table.
CHECK_ORDER = {"customerId": "course-grader", "items": [{"sku": "GRADER-CHECK", "quantity": 1}]}
NOT_JSON = b'{"customerId": "course-grader", "items": ['


# -- names and shared lookups (memoised per grading run) ------------------------

def table_name(t: Target) -> str:
    return t.name("orders")


def function_name(t: Target) -> str:
    return t.name("orders")


def role_name(t: Target) -> str:
    return t.name("orders-fn")


def log_group(t: Target) -> str:
    return f"/aws/lambda/{function_name(t)}"


def source_folder():
    return work_dir() / "orders"


def table_arn(t: Target) -> str:
    return f"arn:aws:dynamodb:{t.region}:{t.account_id}:table/{table_name(t)}"


def log_group_arn(t: Target) -> str:
    return f"arn:aws:logs:{t.region}:{t.account_id}:log-group:{log_group(t)}"


def _table(t: Target) -> dict | None:
    return t.memo("lab03.table", lambda: (absent(lambda: t.client("dynamodb").describe_table(TableName=table_name(t)),
                                                 "ResourceNotFoundException") or {}).get("Table"))


def _role(t: Target) -> dict | None:
    return iam.role(t, role_name(t))


def _function(t: Target) -> dict | None:
    return t.memo("lab03.function", lambda: absent(
        lambda: t.client("lambda").get_function_configuration(FunctionName=function_name(t)), "ResourceNotFoundException"))


def _group(t: Target) -> dict | None:
    def look():
        client = t.client("logs")
        for page in client.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=log_group(t)):
            for group in page.get("logGroups", []):
                if group["logGroupName"] == log_group(t):
                    return group
        return None

    return t.memo("lab03.group", look)


def _no_table(t: Target):
    return failed(f"Table {table_name(t)} does not exist.")


def _no_role(t: Target):
    return failed(f"Role {role_name(t)} does not exist.")


def _no_function(t: Target):
    return failed(f"Function {function_name(t)} does not exist.")


def _no_group(t: Target):
    return failed(f"Log group {log_group(t)} does not exist; create it, with a retention period, before the function runs.")


# -- reading the role's permissions as AWS does -------------------------------------

def _other_region(t: Target) -> str:
    return "eu-west-1" if t.region != "eu-west-1" else "us-east-1"


def _outside_groups(t: Target) -> list[str]:
    """ARNs a grant for the function's log group must not reach: any other log group."""
    base = f"arn:aws:logs:{t.region}:{t.account_id}:log-group:"
    group = log_group(t)
    return [f"{base}{group}-other:log-stream:s", f"{base}{group}-other", f"{base}/aws/lambda/other:log-stream:s",
            f"{base}/aws/lambda/other", f"{base}/other:*", f"{base}a",
            f"arn:aws:logs:{_other_region(t)}:{t.account_id}:log-group:{group}:log-stream:s"]


def _stream_arn(t: Target) -> str:
    return f"{log_group_arn(t)}:log-stream:2025/01/01/[$LATEST]0123456789abcdef"


def _own(t: Target, kind: str, resource: str) -> bool:
    """Resources of the table or the log group that are not the ones the handler writes: its indexes, the group itself."""
    if kind == "data":
        return resource.startswith(f"{table_arn(t)}/index/")
    return resource == log_group_arn(t)


def _beyond(t: Target, kind: str) -> list[tuple[str, str]]:
    """Requests the handler never makes, of one kind: what a role that is exactly right must not allow."""
    table, group = table_arn(t), log_group_arn(t)
    if kind == "data":
        return [*((f"dynamodb:{op}", table) for op in ("DeleteTable", "UpdateItem", "BatchWriteItem", "UpdateTable")),
                *((f"dynamodb:{op}", other) for other in iam.outside_tables(t, table_name(t))
                  for op in DATA_ACTIONS.values()),
                ("s3:GetObject", "arn:aws:s3:::x/x"), ("iam:PassRole", f"arn:aws:iam::{t.account_id}:role/x"),
                ("lambda:InvokeFunction", f"arn:aws:lambda:{t.region}:{t.account_id}:function:x")]
    return [("logs:DeleteLogGroup", group), ("logs:PutRetentionPolicy", group), ("logs:DeleteLogStream", _stream_arn(t)),
            *((f"logs:{op}", other) for other in _outside_groups(t) for op in LOG_ACTIONS.values())]


def _grants(t: Target) -> dict:
    """What the role's policies grant, judged per service by the evaluator (Deny statements included).

    ``data`` and ``logs`` list the over-broad grants (sentences); each names the statement that
    grants it and stands only when the evaluator confirms the role may really make such a request.
    ``data_ok`` and ``logs_ok`` are the needed actions the role may do on the needed resource.
    """

    def judge():
        out = {"data": [], "logs": [], "data_ok": set(), "logs_ok": set()}
        table, stream = table_arn(t), _stream_arn(t)
        outside_tables, outside_groups = iam.outside_tables(t, table_name(t)), _outside_groups(t)
        policies = iam.role_policies(t, role_name(t))
        probes = {kind: _beyond(t, kind) for kind in ("data", "logs")}

        def flag(kinds, sentence, requests):
            if any(iam.allows(policies, a, r) for a, r in requests):  # a Deny may take it away again
                for kind in kinds:
                    out[kind].append(sentence)

        for ref in statements(policies):
            st = ref.statement
            if st.get("Effect") != "Allow":
                continue  # a Deny only takes away; the evaluator weighs it below
            where = ref.where
            if "NotAction" in st or "NotResource" in st:
                key = "NotAction" if "NotAction" in st else "NotResource"
                reach = [(a, r) for a, r in probes["data"] + probes["logs"] if applies(st, a, r, None, {})]
                reach += [(a, iam.example(r)) for a in NEVER_CALLED for r in as_list(st.get("Resource"))]
                flag(("data", "logs"), f"{where} uses {key} in an Allow, which grants everything it does not list", reach)
                continue
            resources = [str(r) for r in as_list(st.get("Resource"))]
            for action in (str(a) for a in as_list(st.get("Action"))):
                service, _, name = action.lower().partition(":")
                if action == "*" or service == "*" or ("*" in service or "?" in service):
                    reach = [(a, r) for a, r in probes["data"] + probes["logs"] if applies(st, a, r, None, {})]
                    reach += [(a, iam.example(r)) for a in NEVER_CALLED for r in resources if action_match(action, a)]
                    flag(("data", "logs"), f"{where} allows {action}: every action of every service", reach)
                    continue
                if service not in ("dynamodb", "logs"):
                    flag(("data",), f"{where} also allows {action}, which the handler never calls",
                         [(iam.example(action), iam.example(r)) for r in resources])
                    continue
                kind = "data" if service == "dynamodb" else "logs"
                if "*" in name or "?" in name:
                    example = "DeleteTable" if kind == "data" else "DeleteLogGroup"
                    known = DATA_ACTIONS if kind == "data" else LOG_ACTIONS
                    reach = [(a, iam.example(r)) for a, _ in probes[kind] for r in resources
                             if action_match(action, a) and a.partition(":")[2].lower() not in known]
                    flag((kind,), f"{where} allows {action}, a wildcard that includes {example} and more; "
                                  "name the actions instead", reach)
                    continue
                if kind == "data" and name not in DATA_ACTIONS:
                    flag(("data",), f"{where} allows {action}, which the handler does not call",
                         [(action, iam.example(r)) for r in resources])
                    continue
                inside, outside = (table, outside_tables) if kind == "data" else (stream, outside_groups)
                mine = f"table {table_name(t)}" if kind == "data" else f"log group {log_group(t)}"
                for resource in resources:
                    if resource == "*":
                        reach = "every table in the account" if kind == "data" else "every log group in the account"
                        fix = "the table's ARN" if kind == "data" else f"{log_group_arn(t)}:*"
                        flag((kind,), f"{where} allows {action} on Resource \"*\" ({reach}); use {fix}",
                             [(action, arn) for arn in outside])
                    elif any(arn_match(resource, arn) for arn in outside):
                        flag((kind,), f"{where} allows {action} on {resource}, which reaches beyond {mine}",
                             [(action, arn) for arn in outside if arn_match(resource, arn)])
                    elif not arn_match(resource, inside) and resource.startswith(f"arn:aws:{service}:") \
                            and not _own(t, kind, resource):
                        flag((kind,), f"{where} allows {action} on {resource}, which is not {mine}",
                             [(action, iam.example(resource))])
        for kind in ("data", "logs"):
            if not out[kind]:  # whatever the sentences above do not name, the evaluator still finds
                out[kind] = [f"it allows {request}, which the handler never needs" for request in
                             iam.beyond(policies, probes[kind])]
            out[kind] = list(dict.fromkeys(out[kind]))
        out["data_ok"] = {op for op in DATA_ACTIONS.values() if iam.allows(policies, f"dynamodb:{op}", table)}
        out["logs_ok"] = {op for op in LOG_ACTIONS.values() if iam.allows(policies, f"logs:{op}", stream)}
        return out

    return t.memo("lab03.grants", judge)


# -- the table ------------------------------------------------------------------------

@check("L03.01", "The orders table is keyed by orderId (string), billed per request, and tagged", step=1, points=1,
       hint="create_table <prefix>-orders with KeySchema orderId HASH, AttributeDefinitions orderId S, "
            "BillingMode PAY_PER_REQUEST and Tags=t.tags('03').",
       docs=f"{DOCS}#the-table")
def table_ready(t: Target):
    table = _table(t)
    if table is None:
        return _no_table(t)
    name = table_name(t)
    keys = [(k["AttributeName"], k["KeyType"]) for k in table.get("KeySchema", [])]
    if keys != [("orderId", "HASH")]:
        shown = ", ".join(f"{n} ({k})" for n, k in keys)
        return failed(f"Table {name} is keyed by {shown}; the key must be orderId alone (HASH).")
    kind = {a["AttributeName"]: a["AttributeType"] for a in table.get("AttributeDefinitions", [])}.get("orderId")
    if kind != "S":
        return failed(f"Table {name}'s key orderId has type {kind}; order ids are strings (S).")
    billing = (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
    if billing != "PAY_PER_REQUEST":
        return failed(f"Table {name} is billed as {billing}; use PAY_PER_REQUEST (on demand).")
    tags = t.client("dynamodb").list_tags_of_resource(ResourceArn=table["TableArn"]).get("Tags", [])
    wrong = missing_tags(tags, t.tag_map("03"))
    if wrong:
        return failed(f"Table {name} lacks the tags {', '.join(wrong)}.")
    return passed(f"Table {name} is keyed by orderId (S), billed per request, and tagged.")


# -- the execution role ----------------------------------------------------------------

@check("L03.02", "The execution role trusts the Lambda service and nobody else", step=3, points=2,
       hint="create_role <prefix>-orders-fn with a trust policy whose only principal is "
            "{\"Service\": \"lambda.amazonaws.com\"} (action sts:AssumeRole).",
       docs=f"{DOCS}#the-execution-role")
def role_trusts_lambda(t: Target):
    role = _role(t)
    if role is None:
        return _no_role(t)
    name = role_name(t)
    trusted, others = iam.trusted_principals(role, "lambda.amazonaws.com")
    if others:
        return failed(f"Role {name} may also be assumed by {', '.join(others)}; "
                      "only lambda.amazonaws.com should be trusted.")
    if not trusted:
        return failed(f"Role {name} does not trust lambda.amazonaws.com, so Lambda cannot run the function as it.")
    return passed(f"Role {name} can be assumed by the Lambda service only.")


@check("L03.03", "The role may do exactly the four table operations the handler needs, on the table only", step=3, points=3,
       hint="put_role_policy <prefix>-orders-data allowing dynamodb:PutItem, GetItem, DeleteItem and Scan on the "
            "table's ARN; no wildcards, no Resource \"*\", no managed policies such as AmazonDynamoDBFullAccess.",
       docs=f"{DOCS}#least-privilege")
def data_least_privilege(t: Target):
    if _role(t) is None:
        return _no_role(t)
    grants = _grants(t)
    name = role_name(t)
    if grants["data"]:
        return failed(f"Role {name}: {iam.short(grants['data'])}.")
    missing = [a for a in DATA_ACTIONS.values() if a not in grants["data_ok"]]
    if missing:
        needed = ", ".join(f"dynamodb:{a} ({USED_BY[a]})" for a in missing)
        return failed(f"Role {name} does not allow {needed} on table {table_name(t)}; "
                      "those requests would fail with AccessDenied.")
    return passed(f"Role {name} allows only PutItem, GetItem, DeleteItem and Scan, on table {table_name(t)} only.")


@check("L03.04", "The role may write logs only into the function's own log group", step=3, points=2,
       hint="Allow logs:CreateLogStream and logs:PutLogEvents on "
            "arn:aws:logs:<region>:<account>:log-group:/aws/lambda/<prefix>-orders:* only; "
            "do not attach AWSLambdaBasicExecutionRole (it grants every log group).",
       docs=f"{DOCS}#least-privilege")
def logs_least_privilege(t: Target):
    if _role(t) is None:
        return _no_role(t)
    grants = _grants(t)
    name = role_name(t)
    if grants["logs"]:
        return failed(f"Role {name}: {iam.short(grants['logs'])}.")
    missing = [a for a in LOG_ACTIONS.values() if a not in grants["logs_ok"]]
    if missing:
        return failed(f"Role {name} does not allow {', '.join('logs:' + a for a in missing)} on the streams of "
                      f"{log_group(t)} ({log_group_arn(t)}:*); the function's logs would be lost.")
    return passed(f"Role {name} may write logs into {log_group(t)} only.")


# -- the function --------------------------------------------------------------------

@check("L03.05", "The function runs a supported Python runtime with handler.handler, the role, TABLE_NAME "
                 "and a timeout API Gateway can wait for", step=5, points=2,
       hint="create_function <prefix>-orders with Runtime python3.13, Handler handler.handler, the role's ARN, "
            "Environment TABLE_NAME=<prefix>-orders, Timeout 10 and Tags=t.tag_map('03').",
       docs=f"{DOCS}#the-function")
def function_configured(t: Target):
    fn = _function(t)
    if fn is None:
        return _no_function(t)
    name = function_name(t)
    problems = []
    runtime = fn.get("Runtime") or "none (a container image)"
    if runtime not in RUNTIMES:
        why = "Lambda no longer supports it" if runtime.startswith("python") else "the handler is Python"
        problems.append(f"runtime is {runtime} ({why}; use python3.13)")
    if fn.get("Handler") != HANDLER:
        problems.append(f"handler is {fn.get('Handler')!r}, expected {HANDLER} (the function handler in handler.py)")
    role = _role(t)
    if role is None or fn.get("Role") != role["Arn"]:
        problems.append(f"it runs as {fn.get('Role')}, not role {role_name(t)}")
    env = (fn.get("Environment") or {}).get("Variables") or {}
    if env.get("TABLE_NAME") != table_name(t):
        problems.append(f"TABLE_NAME is {env.get('TABLE_NAME')!r}, expected {table_name(t)!r}")
    timeout = int(fn.get("Timeout") or 3)
    if timeout > API_TIMEOUT_S:
        problems.append(f"timeout is {timeout} s; API Gateway gives up after {API_TIMEOUT_S} s, so keep it at or below that")
    if problems:
        return failed(f"Function {name}: {'; '.join(problems)}.")
    tags = t.client("lambda").list_tags(Resource=fn["FunctionArn"]).get("Tags") or {}
    wrong = missing_tags([{"Key": k, "Value": v} for k, v in tags.items()], t.tag_map("03"))
    if wrong:
        return failed(f"Function {name} lacks the tags {', '.join(wrong)}.")
    return passed(f"Function {name} runs {runtime} with {HANDLER}, role {role_name(t)}, "
                  f"TABLE_NAME={table_name(t)} and a {timeout} s timeout.")


@check("L03.06", "The function's log group exists with a retention period and the course tags", step=4, points=1,
       hint="create_log_group /aws/lambda/<prefix>-orders with tags=t.tag_map('03'), then "
            "put_retention_policy with retentionInDays=14.",
       docs=f"{DOCS}#logs")
def log_group_retention(t: Target):
    group = _group(t)
    if group is None:
        return _no_group(t)
    name = log_group(t)
    days = group.get("retentionInDays")
    if not days:
        return failed(f"Log group {name} keeps logs forever (no retention); set retentionInDays=14.")
    arn = group.get("logGroupArn") or group["arn"].removesuffix(":*")
    tags = t.client("logs").list_tags_for_resource(resourceArn=arn).get("tags") or {}
    wrong = missing_tags([{"Key": k, "Value": v} for k, v in tags.items()], t.tag_map("03"))
    if wrong:
        return failed(f"Log group {name} lacks the tags {', '.join(wrong)}.")
    return passed(f"Log group {name} keeps logs for {days} days and carries the course tags.")


@check("L03.07", "The deployed code is the code in work/orders", step=5, points=2,
       hint="Package work/orders with labkit.lambdas.package and update_function_code after every edit.",
       docs=f"{DOCS}#deploying-code")
def deployed_code_matches(t: Target):
    from labkit.lambdas import deployed_drift

    fn = _function(t)
    if fn is None:
        return _no_function(t)
    folder = source_folder()
    if not (folder / "handler.py").is_file():
        return failed(f"There is no {folder / 'handler.py'} to compare function {function_name(t)} with; "
                      "write the handler there.")
    drift = deployed_drift(t, function_name(t), folder)
    if drift:
        return failed(f"Function {function_name(t)}: {drift}.")
    return passed(f"Function {function_name(t)} runs exactly the code in {folder} (CodeSha256 {fn['CodeSha256']}).")


# -- the API -----------------------------------------------------------------------------

def _no_api(t: Target):
    return failed(f"There is no REST API named {api.api_name(t)} (lab 02); `python -m labkit start 03` builds it.")


def _function_arn(t: Target) -> str | None:
    fn = _function(t)
    return fn and fn["FunctionArn"].removesuffix(":$LATEST")


@check("L03.08", "All four API methods use Lambda proxy integrations to the function", step=7, points=2,
       hint="put_integration on each method with type AWS_PROXY, integrationHttpMethod POST and uri "
            "arn:aws:apigateway:<region>:lambda:path/2015-03-31/functions/<function arn>/invocations; then redeploy v1.",
       docs=f"{DOCS}#proxy-integration")
def proxy_integrations(t: Target):
    found = api.rest_api(t)
    if found is None:
        return _no_api(t)
    fn_arn = _function_arn(t)
    if fn_arn is None:
        return _no_function(t)
    routes = api.routes(t)
    problems = []
    for verb, path in METHODS:
        method = routes.get((verb, path))
        if method is None:
            problems.append(f"there is no {verb} {path} method")
            continue
        integration = method.get("methodIntegration") or {}
        kind = integration.get("type") or "no integration"
        if kind != "AWS_PROXY":
            extra = " (AWS without proxy needs mapping templates; use AWS_PROXY)" if kind == "AWS" else ""
            problems.append(f"{verb} {path} uses {kind}{extra}")
            continue
        if integration.get("httpMethod") != "POST":
            problems.append(f"{verb} {path} calls Lambda with integrationHttpMethod {integration.get('httpMethod')}; "
                            "Lambda's Invoke API takes POST")
            continue
        target = LAMBDA_URI.match(integration.get("uri") or "")
        if target is None:
            problems.append(f"{verb} {path}'s uri {integration.get('uri')!r} is not a Lambda invocation URI")
        elif target.group("arn").removesuffix(":$LATEST") != fn_arn:
            problems.append(f"{verb} {path} invokes {target.group('arn')}, not {fn_arn}")
    if problems:
        return failed(f"API {found['id']} ({api.api_name(t)}): {iam.short(problems, 4)}.")
    return passed(f"API {found['id']}: GET and POST /orders, GET and DELETE /orders/{{orderId}} all proxy to "
                  f"function {function_name(t)}.")


def _source_arns(st: dict) -> list[str]:
    return [str(v) for op, values in (st.get("Condition") or {}).items()
            if isinstance(values, dict) and re.match(r"^(ForAnyValue:|ForAllValues:)?(Arn|String)(Equals|Like)", op)
            for key, value in values.items() if key.lower() == "aws:sourcearn" for v in as_list(value)]


def _why_invoker(t: Target, st: dict, api_id: str, who: str) -> str:
    """Why a statement that lets ``who`` invoke the function is too wide (or does not reach this API)."""
    sid = st.get("Sid") or "a statement"
    arns = _source_arns(st)
    if who == "Service apigateway.amazonaws.com":
        if not arns:
            return f"statement {sid} has no SourceArn, so any API in any account could invoke it"
        for arn in arns:
            parts = EXECUTE_API.match(arn)
            if parts is None or parts.group("api") != api_id:
                return f"statement {sid}'s SourceArn {arn} does not name API {api_id}"
            if parts.group("region") != t.region or parts.group("account") != t.account_id:
                return f"statement {sid}'s SourceArn {arn} is not scoped to region {t.region} and account {t.account_id}"
    return f"statement {sid} lets {who} invoke it"


def _other_invokers(t: Target, api_id: str, policy: dict) -> list[tuple[Principal, str | None]]:
    """(caller, SourceArn) for everyone but this API: other APIs here, this API id elsewhere, API Gateway with
    no SourceArn, other services, other accounts, and every principal the policy names."""
    region = _other_region(t)
    account = "210987654321" if t.account_id != "210987654321" else "123456789012"
    gateway = Principal.service("apigateway.amazonaws.com")
    callers = [(gateway, f"arn:aws:execute-api:{t.region}:{t.account_id}:zz{api_id}/{api.STAGE}/GET/orders"),
               (gateway, f"arn:aws:execute-api:{region}:{t.account_id}:{api_id}/{api.STAGE}/GET/orders"),
               (gateway, f"arn:aws:execute-api:{t.region}:{account}:{api_id}/{api.STAGE}/GET/orders"),
               (gateway, None)]
    callers += [(Principal.service(s), None) for s in ("events.amazonaws.com", "s3.amazonaws.com", "sns.amazonaws.com",
                                                       "lambda.amazonaws.com", "cloudfront.amazonaws.com")]
    callers += [(Principal.aws(f"arn:aws:iam::{account}:root"), None),
                (Principal.aws(f"arn:aws:iam::{t.account_id}:user/someone"), None)]
    callers += [(who, None) for who in named_principals(policy) if who != gateway]
    return callers


def _invoke(policy: dict, who: Principal, source_arn: str | None):
    context = {"aws:SecureTransport": True}
    if source_arn:
        context.update({"aws:SourceArn": source_arn, "aws:SourceAccount": source_arn.split(":")[4]})
    return evaluate(policy, action="lambda:InvokeFunction", principal=who, context=context)


@check("L03.09", "Only this API may invoke the function (scoped invoke permission)", step=7, points=2,
       hint="lambda add_permission with Principal apigateway.amazonaws.com, Action lambda:InvokeFunction and "
            "SourceArn arn:aws:execute-api:<region>:<account>:<api id>/*.",
       docs=f"{DOCS}#invoke-permission")
def invoke_permission(t: Target):
    from labkit.localaws.extensions.gateway import may_invoke

    found = api.rest_api(t)
    if found is None:
        return _no_api(t)
    if _function(t) is None:
        return _no_function(t)
    name = function_name(t)
    raw = absent(lambda: t.client("lambda").get_policy(FunctionName=name), "ResourceNotFoundException")
    if raw is None:
        return failed(f"Function {name} has no resource-based policy, so API Gateway may not invoke it "
                      "(the API answers 500).")
    policy = json.loads(raw["Policy"])
    api_id = found["id"]
    anyone = _invoke(policy, Principal.anonymous(), None)
    if anyone.allowed:
        return failed(f"Function {name}'s policy: statement {anyone.allowed_by[0].sid or 'a statement'} lets anyone "
                      "invoke it (Principal *).")
    problems = []
    for who, source_arn in _other_invokers(t, api_id, policy):
        decision = _invoke(policy, who, source_arn)
        problems += [_why_invoker(t, ref.statement, api_id, str(who)) for ref in decision.allowed_by] \
            if decision.allowed else []
    if problems:
        return failed(f"Function {name}'s policy: {iam.short(list(dict.fromkeys(problems)))}.")
    method_arn = {f"{verb} {path}": f"arn:aws:execute-api:{t.region}:{t.account_id}:{api_id}/{api.STAGE}/{verb}{path}"
                  for verb, path in METHODS}
    blocked = [method for method, arn in method_arn.items() if not may_invoke(policy, arn)]
    if len(blocked) == len(METHODS):
        denied = _invoke(policy, Principal.service("apigateway.amazonaws.com"), next(iter(method_arn.values())))
        if denied.denied:
            return failed(f"Function {name}'s policy denies API {api_id} ({denied.denied_by[0].sid or 'a Deny statement'}), "
                          "so the API answers 500.")
        reasons = [_why_invoker(t, ref.statement, api_id, "Service apigateway.amazonaws.com")
                   for ref in statements(policy) if ref.statement.get("Effect") == "Allow"
                   and principal_match(ref.statement.get("Principal"), Principal.service("apigateway.amazonaws.com"))]
        if not reasons:
            return failed(f"Function {name}'s policy does not let apigateway.amazonaws.com invoke it "
                          f"from API {api_id}.")
        wrong = [r for r in reasons if "lets Service" not in r]
        if len(wrong) == len(reasons):  # else a statement names this API, for other stages or methods only
            return failed(f"Function {name}'s policy: {iam.short(wrong)}.")
    if blocked:
        return failed(f"Function {name}'s policy lets API {api_id} invoke it, but not for {', '.join(blocked)} "
                      f"on stage {api.STAGE}; use the SourceArn arn:aws:execute-api:{t.region}:{t.account_id}:{api_id}/*.")
    return passed(f"Function {name} may be invoked by API {api_id} only.")


# -- behaviour through the gateway ---------------------------------------------------

def _client(t: Target):
    """(read headers, write headers), or a failed Outcome when the API cannot be called as the tests need."""
    found = api.rest_api(t)
    if found is None:
        return _no_api(t)
    if api.stage(t) is None:
        return failed(f"API {found['id']} has no stage {api.STAGE}; create_deployment to {api.STAGE}.")
    key = api.api_key_value(t)
    if key is None:
        return failed(f"There is no enabled API key {t.name('orders-key')} (lab 02) to call API {found['id']} with.")
    token = api.id_token(t)
    if token is None:
        return failed(f"{api.sign_in_problem(t)}; the check needs an ID token to send signed-in requests (lab 02).")
    return {"x-api-key": key}, {"x-api-key": key, "Authorization": token}


def _same_order(got, sent: dict) -> bool:
    return (isinstance(got, dict) and got.get("customerId") == sent["customerId"]
            and got.get("items") == sent["items"])


def _order_problems(order) -> list[str]:
    if not isinstance(order, dict):
        return ["the body is not a JSON object"]
    problems = []
    try:
        uuid.UUID(str(order.get("orderId")))
    except ValueError:
        problems.append(f"orderId {order.get('orderId')!r} is not a UUID")
    if order.get("status") != "NEW":
        problems.append(f"status is {order.get('status')!r}, expected 'NEW'")
    try:
        datetime.fromisoformat(str(order.get("createdAt")))
    except ValueError:
        problems.append(f"createdAt {order.get('createdAt')!r} is not an ISO 8601 time")
    if not _same_order(order, CHECK_ORDER):
        problems.append("customerId and items are not the ones sent")
    return problems


@check("L03.10", "POST /orders creates an order that GET /orders/{orderId} returns (through the API)", step=8, points=3,
       hint="The handler answers POST with 201 and the stored order (orderId, status NEW, createdAt), GET with 200 "
            "and the item; read the function's log group when it answers 5xx.",
       docs=f"{DOCS}#end-to-end",
       acts="calls your API: creates one order with a signed-in POST /orders, reads it back and deletes it")
def create_and_read(t: Target):
    headers = _client(t)
    if not isinstance(headers, tuple):
        return headers
    reads, writes = headers
    status, created, _ = api.call_patiently(t, "POST", "/orders", body=CHECK_ORDER, headers=writes)
    if status != 201:
        return failed(f"POST /orders answered {api.answer(status, created)}, expected 201 with the new order.")
    problems = _order_problems(created)
    order_id = created.get("orderId") if isinstance(created, dict) else None
    if problems or not order_id:
        cleanup = _delete(t, order_id, writes) if order_id else ""
        return failed(f"POST /orders answered 201, but {'; '.join(problems)}.{cleanup}")
    path = f"/orders/{quote(str(order_id), safe='')}"
    status, got, _ = api.call_patiently(t, "GET", path, headers=reads)
    gone = api.call_patiently(t, "DELETE", path, headers=writes)[0]
    deleted = gone == 204
    tail = (" The check deleted its order again." if deleted else
            f" DELETE {path} answered {gone}, not 204, so the check's order may still be in the table.")
    if status != 200:
        return failed(f"POST /orders created {order_id}, but GET {path} answered {api.answer(status, got)}.{tail}")
    if not isinstance(got, dict) or got.get("orderId") != order_id or not _same_order(got, CHECK_ORDER):
        return failed(f"GET {path} answered 200 with {json.dumps(got)[:160]}, not the order just created.{tail}")
    if not deleted:
        return failed(f"POST and GET work for order {order_id}, but{tail}")
    return passed(f"POST /orders created order {order_id} (status NEW), GET {path} returned it, and DELETE removed it "
                  "again, so grading leaves no data behind.")


def _delete(t: Target, order_id: str, writes: dict) -> str:
    status = api.call_patiently(t, "DELETE", f"/orders/{quote(str(order_id), safe='')}", headers=writes)[0]
    return " The check deleted its order again." if status == 204 else ""


@check("L03.11", "GET /orders/{orderId} answers 404 for an order that does not exist", step=8, points=1,
       hint="When get_item returns no Item, answer 404 with the body {\"message\": \"order not found\"}.",
       docs=f"{DOCS}#end-to-end",
       acts="calls your API: one GET /orders/{orderId} for an order that does not exist; stores nothing")
def missing_order_404(t: Target):
    headers = _client(t)
    if not isinstance(headers, tuple):
        return headers
    path = f"/orders/{uuid.uuid4()}"
    status, body, _ = api.call_patiently(t, "GET", path, headers=headers[0])
    if status != 404:
        return failed(f"GET {path} (no such order) answered {api.answer(status, body)}, expected 404.")
    if not isinstance(body, dict) or body.get("message") != "order not found":
        return failed(f"GET {path} answered 404 with {json.dumps(body)[:120]}; "
                      "the body should be {\"message\": \"order not found\"}.")
    return passed(f"GET {path} answered 404 {{\"message\": \"order not found\"}}.")


def _post_event(t: Target, api_id: str, body: str) -> dict:
    """The proxy event (format 1.0) API Gateway sends the function for a signed-in POST /orders."""
    headers = {"Content-Type": "application/json"}
    return {"resource": "/orders", "path": "/orders", "httpMethod": "POST", "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()}, "queryStringParameters": None,
            "multiValueQueryStringParameters": None, "pathParameters": None, "stageVariables": None,
            "requestContext": {"resourcePath": "/orders", "httpMethod": "POST", "path": f"/{api.STAGE}/orders",
                               "accountId": t.account_id, "stage": api.STAGE, "apiId": api_id,
                               "requestId": str(uuid.uuid4()), "identity": {"sourceIp": "127.0.0.1"},
                               "authorizer": {"claims": {"sub": "course-grader", "cognito:username": "tester"}}},
            "body": body, "isBase64Encoded": False}


def _handler_answers_bad_body(t: Target):
    """Invoke the function itself with the body the validator stopped: a failed Outcome, or None when it answers 400."""
    from labkit.localaws.extensions.gateway import malformed

    name = function_name(t)
    result = t.behaviour_client("lambda", "Invoke").invoke(
        FunctionName=name, Payload=json.dumps(_post_event(t, api.rest_api(t)["id"], NOT_JSON.decode())).encode())
    try:
        answer = json.loads(result["Payload"].read() or b"null")
    except ValueError:
        answer = None
    direct = f"Function {name}, invoked directly with a POST /orders body that is not JSON,"
    if result.get("FunctionError"):
        error = answer if isinstance(answer, dict) else {}
        return failed(f"{direct} crashed ({error.get('errorType')}: {str(error.get('errorMessage'))[:120]}); the stage's "
                      "validator hides that today, but catch the parse error and answer 400.")
    bad = malformed(answer)
    if bad:
        return failed(f"{direct} answered a malformed proxy response ({bad}); API Gateway would answer 502.")
    if answer["statusCode"] != 400:
        return failed(f"{direct} answered {answer['statusCode']}, expected 400.")
    return None


@check("L03.12", "A POST body that is not JSON gets 400, not a server error", step=8, points=1,
       hint="Catch the json.loads error in the handler and answer 400. The stage's request validator from lab 02 "
            "rejects such bodies first, so the check also invokes the function directly with one.",
       docs=f"{DOCS}#end-to-end",
       acts="calls your API: one signed-in POST /orders with a body that is not JSON, and invokes the function once "
            "with such a body when a validator answers first; stores nothing")
def bad_body_400(t: Target):
    headers = _client(t)
    if not isinstance(headers, tuple):
        return headers
    status, body, _ = api.call_patiently(t, "POST", "/orders", raw=NOT_JSON, headers=headers[1])
    if status != 400:
        why = " (the function crashed on it: catch the parse error)" if status in (500, 502) else ""
        return failed(f"POST /orders with a body that is not JSON answered {api.answer(status, body)}{why}; expected 400.")
    if not (isinstance(body, dict) and body.get("message") == "Invalid request body"):
        return passed(f"POST /orders with a body that is not JSON answered 400 from the function ({api.answer(status, body)}).")
    # The validator answered, so the handler never saw the body: ask the handler itself.
    if t.is_live:
        return Outcome(Status.SKIP, "POST /orders with a body that is not JSON answered 400 from the stage's request "
                                    "validator; the handler's own answer is graded on the local AWS, which lets the "
                                    "grader invoke the function (the live grader only reads).")
    if _function(t) is None:
        return _no_function(t)
    refused = _handler_answers_bad_body(t)
    if refused:
        return refused
    return passed("POST /orders with a body that is not JSON answered 400 from the stage's request validator, and "
                  f"function {function_name(t)} answers 400 to it too when invoked directly.")


# -- logs -----------------------------------------------------------------------------

def _log_lines(t: Target) -> list[str]:
    """The messages of the function's most recent log streams, newest first."""
    client = t.client("logs")
    group = log_group(t)
    streams = client.describe_log_streams(logGroupName=group, orderBy="LastEventTime", descending=True,
                                          limit=5).get("logStreams", [])
    events = []
    for stream in streams:
        events += client.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"],
                                        limit=100, startFromHead=False).get("events", [])
    events.sort(key=lambda e: e.get("timestamp", 0), reverse=True)
    return [e.get("message", "").rstrip("\n") for e in events]


def _handler_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if line.strip()
            and not line.startswith(PLATFORM_LINES) and not line.startswith(ERROR_LINES)]


@check("L03.13", "The handler's log lines reach the function's log group", step=8, points=1,
       hint="print one line per request in the handler; the role needs logs:CreateLogStream and logs:PutLogEvents "
            "on the group's streams, and the group must exist.",
       docs=f"{DOCS}#logs")
def handler_logs_arrived(t: Target):
    if _group(t) is None:
        return _no_group(t)
    group = log_group(t)
    deadline = time.monotonic() + LOG_WAIT_S
    while True:
        lines = _log_lines(t)
        mine = _handler_lines(lines)
        if mine or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    if not lines:
        return failed(f"Log group {group} holds no log events: no request has reached the function, or its role "
                      "may not write there (logs:CreateLogStream, logs:PutLogEvents).")
    if not mine:
        errors = [line for line in lines if line.startswith(ERROR_LINES)]
        if errors:
            return failed(f"Log group {group} holds only Lambda's own lines and errors, the latest {errors[0][:160]!r}; "
                          "fix the error and print one line per request.")
        return failed(f"Log group {group} holds Lambda's START, END and REPORT lines but nothing the handler printed; "
                      "print one line per request.")
    return passed(f"Log group {group} holds {len(mine)} line(s) from the handler, the latest {mine[0][:160]!r}.")
