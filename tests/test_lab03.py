"""Lab 03 checks: each passes on the solution's state and fails on states wrong in one way.

Configuration checks (L03.01-L03.09) run on in-process moto (``aws``). The
behaviour checks (L03.10-L03.13) call the stage through the local gateway,
which runs the deployed function, so they run on the real local AWS
(``local``), as do the tests of the runner's promises the lab relies on.
"""
from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import checks
from checks import lab03
from checks.core import Status
from labkit import lambdas

from .cases import Case, assert_whole_lab, covered, params, run_case
from .states_lab03 import (
    BASIC_EXECUTION,
    DYNAMODB_FULL,
    build_lab03,
    data_statements,
    handler_with,
    no_body_validator,
)

PASS, FAIL = Status.PASS, Status.FAIL
BEHAVIOUR = {"L03.10", "L03.11", "L03.12", "L03.13"}
OTHER_FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:ada-payments"


# -- policy builders (build: statements=...) --------------------------------------------

def table_statement(*, actions=("dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Scan", "dynamodb:DeleteItem"),
                    resource=None):
    """statements: the solution's, with the table statement's actions or resource replaced."""

    def statements(table_arn, group_arn):
        own = data_statements(table_arn, group_arn)
        own[0]["Action"] = list(actions) if not isinstance(actions, str) else actions
        if resource is not None:
            own[0]["Resource"] = resource(table_arn) if callable(resource) else resource
        return own

    return statements


def log_statement(*, actions=("logs:CreateLogStream", "logs:PutLogEvents"), resource=None):
    """statements: the solution's, with the log statement's actions or resource replaced."""

    def statements(table_arn, group_arn):
        own = data_statements(table_arn, group_arn)
        own[1]["Action"] = list(actions) if not isinstance(actions, str) else actions
        if resource is not None:
            own[1]["Resource"] = resource(group_arn) if callable(resource) else resource
        return own

    return statements


def plus(*extra: dict):
    """statements: the solution's and ``extra``."""
    return lambda table_arn, group_arn: data_statements(table_arn, group_arn) + list(extra)


def only_table(table_arn, group_arn):
    return data_statements(table_arn, group_arn)[:1]


def trust(*principals, **extra):
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": p, "Action": "sts:AssumeRole", **extra} for p in principals]}


# -- mutations and stubs ---------------------------------------------------------------

def edit_handler(t, state):
    path = Path(state["folder"]) / "handler.py"
    path.write_text(path.read_text() + "\n# edited after the deploy\n")


def add_file(t, state):
    (Path(state["folder"]) / "notes.txt").write_text("scratch\n")


def remove_source(t, state):
    shutil.rmtree(state["folder"])


def public_permission(t, state):
    t.client("lambda").add_permission(FunctionName=state["function"], StatementId="anyone",
                                      Action="lambda:InvokeFunction", Principal="*")


def events_permission(t, state):
    """mutate: a second invoke permission, for EventBridge, with no SourceArn."""
    t.client("lambda").add_permission(FunctionName=state["function"], StatementId="events-too",
                                      Action="lambda:InvokeFunction", Principal="events.amazonaws.com")


def quick_logs(view, state, monkeypatch):
    """prepare: wait 1 s, not 5, for log lines that are not coming."""
    monkeypatch.setattr(lab03, "LOG_WAIT_S", 1.0)


CASES = [
    # L03.01 the table
    Case("L03.01", "solution", PASS, ("Table {table} is keyed by orderId (S), billed per request, and tagged",)),
    Case("L03.01", "missing", FAIL, ("Table {table} does not exist",), build={"table": False}),
    Case("L03.01", "keyed-by-id", FAIL, ("Table {table} is keyed by id (HASH); the key must be orderId",),
         build={"key": ("id", "S")}),
    Case("L03.01", "numeric-key", FAIL, ("Table {table}'s key orderId has type N",), build={"key": ("orderId", "N")}),
    Case("L03.01", "provisioned", FAIL, ("Table {table} is billed as PROVISIONED",), build={"billing": "PROVISIONED"}),
    Case("L03.01", "untagged", FAIL, ("Table {table} lacks the tags course=microservices-labs, lab=03, learner=ada",),
         build={"table_tags": None}),
    # L03.02 the trust policy
    Case("L03.02", "solution", PASS, ("Role {role} can be assumed by the Lambda service only",)),
    Case("L03.02", "with-source-account", PASS, ("Role {role} can be assumed by the Lambda service only",),
         build={"trust": trust({"Service": "lambda.amazonaws.com"},
                               Condition={"StringEquals": {"aws:SourceAccount": "123456789012"}})}),
    Case("L03.02", "missing", FAIL, ("Role {role} does not exist",), build={"role": False, "function": False}),
    Case("L03.02", "account-too", FAIL, ("Role {role} may also be assumed by AWS arn:aws:iam::123456789012:root",),
         build={"trust": trust({"Service": "lambda.amazonaws.com"}, {"AWS": "arn:aws:iam::123456789012:root"})}),
    Case("L03.02", "two-services", FAIL, ("may also be assumed by Service ec2.amazonaws.com",),
         build={"trust": trust({"Service": ["lambda.amazonaws.com", "ec2.amazonaws.com"]})}),
    Case("L03.02", "everyone", FAIL, ("may also be assumed by everyone (Principal *)",),
         build={"trust": trust("*")}),
    Case("L03.02", "not-lambda", FAIL, ("may also be assumed by Service ecs-tasks.amazonaws.com",),
         build={"trust": trust({"Service": "ecs-tasks.amazonaws.com"}), "function": False}),
    Case("L03.02", "second-principal-own-statement", FAIL, (
        "Role {role} may also be assumed by AWS arn:aws:iam::123456789012:user/mallory",),
         build={"trust": trust({"Service": "lambda.amazonaws.com"}, {"AWS": "arn:aws:iam::123456789012:user/mallory"})}),
    Case("L03.02", "not-principal-statement", FAIL, ("may also be assumed by everyone (statement 2 uses NotPrincipal)",),
         build={"trust": {"Version": "2012-10-17", "Statement": [
             {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"},
             {"Effect": "Allow", "NotPrincipal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}}),
    Case("L03.02", "second-principal-denied", PASS, ("Role {role} can be assumed by the Lambda service only",),
         build={"trust": {"Version": "2012-10-17", "Statement": [
             {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"},
             {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"},
             {"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]}}),
    Case("L03.02", "deny-only", FAIL, ("Role {role} does not trust lambda.amazonaws.com",),
         build={"trust": {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": {"AWS": "*"},
                                                                  "Action": "sts:AssumeRole"}]},
                "function": False}),
    # L03.03 least privilege: data
    Case("L03.03", "solution", PASS, ("Role {role} allows only PutItem, GetItem, DeleteItem and Scan, on table {table} only",)),
    Case("L03.03", "with-indexes", PASS, ("on table {table} only",),
         build={"statements": table_statement(resource=lambda arn: [arn, f"{arn}/index/*"])}),
    Case("L03.03", "one-statement-per-action-lowercase", PASS, ("on table {table} only",),
         build={"statements": lambda table, group: [
             {"Effect": "Allow", "Action": a, "Resource": table}
             for a in ("dynamodb:putitem", "dynamodb:getitem", "dynamodb:scan", "dynamodb:deleteitem")]
             + data_statements(table, group)[1:]}),
    Case("L03.03", "plus-deny", PASS, ("on table {table} only",),
         build={"statements": plus({"Effect": "Deny", "Action": "dynamodb:DeleteTable", "Resource": "*"})}),
    Case("L03.03", "mixed-statement", PASS, ("on table {table} only",),
         build={"statements": lambda table, group: [{"Effect": "Allow", "Action": [
             "dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Scan", "dynamodb:DeleteItem",
             "logs:CreateLogStream", "logs:PutLogEvents"], "Resource": [table, f"{group}:*"]}]}),
    Case("L03.03", "star-narrowed-by-deny-notaction", PASS, ("on table {table} only",),
         build={"statements": lambda table, group: table_statement(actions="dynamodb:*")(table, group) + [
             {"Effect": "Deny", "NotAction": ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Scan",
                                              "dynamodb:DeleteItem", "logs:CreateLogStream", "logs:PutLogEvents"],
              "Resource": "*"}]}),
    Case("L03.03", "every-table-narrowed-by-deny-notresource", PASS, ("on table {table} only",),
         build={"statements": lambda table, group: table_statement(resource="*")(table, group) + [
             {"Effect": "Deny", "Action": "dynamodb:*", "NotResource": table}]}),
    Case("L03.03", "deny-delete-item", FAIL, ("does not allow dynamodb:DeleteItem (DELETE /orders/{{orderId}}) on table {table}",),
         build={"statements": plus({"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": "*"})}),
    Case("L03.03", "not-resource", FAIL, ("uses NotResource in an Allow",),
         build={"statements": lambda table, group: data_statements(table, group) + [
             {"Effect": "Allow", "Action": "dynamodb:PutItem", "NotResource": f"{table}-archive"}]}),
    Case("L03.03", "missing-role", FAIL, ("Role {role} does not exist",), build={"role": False, "function": False}),
    Case("L03.03", "dynamodb-star", FAIL, (("Role {role}: inline policy {policy} (statement OrdersTable) allows dynamodb:*, "
                                           "a wildcard that includes DeleteTable"),),
         build={"statements": table_statement(actions="dynamodb:*")}),
    Case("L03.03", "item-wildcard", FAIL, ("allows dynamodb:*Item, a wildcard",),
         build={"statements": table_statement(actions=["dynamodb:*Item", "dynamodb:Scan"])}),
    Case("L03.03", "every-action", FAIL, ("allows *: every action of every service",),
         build={"statements": table_statement(actions="*")}),
    Case("L03.03", "resource-star", FAIL, ("allows dynamodb:PutItem on Resource \"*\" (every table in the account)",),
         build={"statements": table_statement(resource="*")}),
    Case("L03.03", "prefix-wildcard", FAIL, (("on arn:aws:dynamodb:us-east-1:123456789012:table/ada-*, "
                                             "which reaches beyond table {table}"),),
         build={"statements": table_statement(resource="arn:aws:dynamodb:us-east-1:123456789012:table/ada-*")}),
    Case("L03.03", "any-region", FAIL, ("which reaches beyond table {table}",),
         build={"statements": table_statement(resource="arn:aws:dynamodb:*:*:table/ada-orders")}),
    Case("L03.03", "table-and-below", FAIL, ("on {table_arn}/*, which reaches beyond",),
         build={"statements": table_statement(resource=lambda arn: [arn, f"{arn}/*"])}),
    Case("L03.03", "update-item", FAIL, ("allows dynamodb:UpdateItem, which the handler does not call",),
         build={"statements": table_statement(actions=["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Scan",
                                                       "dynamodb:DeleteItem", "dynamodb:UpdateItem"])}),
    Case("L03.03", "full-access-attached", FAIL, ("managed policy AmazonDynamoDBFullAccess allows dynamodb:*",),
         build={"managed": {"AmazonDynamoDBFullAccess": DYNAMODB_FULL}}),
    Case("L03.03", "other-service", FAIL, ("also allows s3:GetObject, which the handler never calls",),
         build={"statements": plus({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::ada-data/*"})}),
    Case("L03.03", "not-action", FAIL, ("uses NotAction in an Allow",),
         build={"statements": plus({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})}),
    Case("L03.03", "no-scan", FAIL, ("Role {role} does not allow dynamodb:Scan (GET /orders) on table {table}",),
         build={"statements": table_statement(actions=["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem"])}),
    Case("L03.03", "no-policy", FAIL, ("does not allow dynamodb:PutItem (POST /orders), dynamodb:GetItem",),
         build={"statements": None}),
    Case("L03.03", "other-table", FAIL, (("allows dynamodb:PutItem on arn:aws:dynamodb:us-east-1:123456789012:table/ada-orders-v2, "
                                         "which is not table {table}"),),
         build={"statements": table_statement(resource="arn:aws:dynamodb:us-east-1:123456789012:table/ada-orders-v2")}),
    # L03.04 least privilege: logs
    Case("L03.04", "solution", PASS, ("Role {role} may write logs into {group} only",)),
    Case("L03.04", "own-group-create-too", PASS, ("may write logs into {group} only",),
         build={"statements": plus({"Effect": "Allow", "Action": "logs:CreateLogGroup",
                                    "Resource": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/ada-orders"})}),
    Case("L03.04", "streams-named", PASS, ("may write logs into {group} only",),
         build={"statements": log_statement(resource=lambda arn: f"{arn}:log-stream:*")}),
    Case("L03.04", "deny-put-log-events", FAIL, ("does not allow logs:PutLogEvents on the streams of {group}",),
         build={"statements": plus({"Effect": "Deny", "Action": "logs:PutLogEvents", "Resource": "*"})}),
    Case("L03.04", "every-group-narrowed-by-deny", PASS, ("may write logs into {group} only",),
         build={"statements": lambda table, group: log_statement(resource="*")(table, group) + [
             {"Effect": "Deny", "Action": "logs:*", "NotResource": f"{group}:*"}]}),
    Case("L03.04", "missing-role", FAIL, ("Role {role} does not exist",), build={"role": False, "function": False}),
    Case("L03.04", "basic-execution-role", FAIL, (("managed policy AWSLambdaBasicExecutionRole allows logs:CreateLogGroup "
                                                  "on Resource \"*\" (every log group in the account)"),),
         build={"statements": only_table, "managed": {"AWSLambdaBasicExecutionRole": BASIC_EXECUTION}}),
    Case("L03.04", "logs-star", FAIL, ("allows logs:*, a wildcard that includes DeleteLogGroup",),
         build={"statements": log_statement(actions="logs:*")}),
    Case("L03.04", "every-group", FAIL, (("on arn:aws:logs:us-east-1:123456789012:log-group:*, which reaches beyond "
                                         "log group {group}"),),
         build={"statements": log_statement(resource="arn:aws:logs:us-east-1:123456789012:log-group:*")}),
    Case("L03.04", "every-lambda-group", FAIL, ("which reaches beyond log group {group}",),
         build={"statements": log_statement(resource="arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/*")}),
    Case("L03.04", "name-prefix", FAIL, ("which reaches beyond log group {group}",),
         build={"statements": log_statement(resource=lambda arn: f"{arn}*")}),
    Case("L03.04", "group-not-streams", FAIL, (("does not allow logs:CreateLogStream, logs:PutLogEvents on the streams of "
                                               "{group}"), "the function's logs would be lost"),
         build={"statements": log_statement(resource=lambda arn: arn)}),
    Case("L03.04", "no-logs", FAIL, ("does not allow logs:CreateLogStream, logs:PutLogEvents",),
         build={"statements": only_table}),
    Case("L03.04", "every-action", FAIL, ("allows *: every action of every service",),
         build={"statements": log_statement(actions="*")}),
    # L03.05 the function's configuration
    Case("L03.05", "solution", PASS, (("Function {function} runs python3.13 with handler.handler, role {role}, "
                                      "TABLE_NAME={table} and a 10 s timeout"),)),
    Case("L03.05", "python3.12-29s", PASS, ("runs python3.12", "a 29 s timeout"),
         build={"runtime": "python3.12", "timeout": 29}),
    Case("L03.05", "missing", FAIL, ("Function {function} does not exist",), build={"function": False}),
    Case("L03.05", "python3.9", FAIL, ("Function {function}: runtime is python3.9 (Lambda no longer supports it",),
         build={"runtime": "python3.9"}),
    Case("L03.05", "nodejs", FAIL, ("runtime is nodejs20.x (the handler is Python",), build={"runtime": "nodejs20.x"}),
    Case("L03.05", "wrong-handler", FAIL, ("handler is 'app.handler', expected handler.handler",),
         build={"handler_name": "app.handler"}),
    Case("L03.05", "no-environment", FAIL, ("TABLE_NAME is None, expected '{table}'",), build={"env": None}),
    Case("L03.05", "other-table", FAIL, ("TABLE_NAME is 'orders', expected '{table}'",),
         build={"env": {"TABLE_NAME": "orders"}}),
    Case("L03.05", "timeout-60", FAIL, ("timeout is 60 s; API Gateway gives up after 29 s",), build={"timeout": 60}),
    Case("L03.05", "other-role", FAIL, ("it runs as arn:aws:iam::123456789012:role/ada-admin, not role {role}",),
         build={"run_as": "ada-admin"}),
    Case("L03.05", "untagged", FAIL, ("Function {function} lacks the tags course=microservices-labs, lab=03",),
         build={"fn_tags": None}),
    # L03.06 the log group
    Case("L03.06", "solution", PASS, ("Log group {group} keeps logs for 14 days and carries the course tags",)),
    Case("L03.06", "thirty-days", PASS, ("keeps logs for 30 days",), build={"retention": 30}),
    Case("L03.06", "missing", FAIL, ("Log group {group} does not exist",), build={"log_group": False}),
    Case("L03.06", "forever", FAIL, ("Log group {group} keeps logs forever (no retention)",), build={"retention": None}),
    Case("L03.06", "untagged", FAIL, ("Log group {group} lacks the tags",), build={"group_tags": None}),
    # L03.07 deployed code is the source
    Case("L03.07", "solution", PASS, ("Function {function} runs exactly the code in {folder}",)),
    Case("L03.07", "missing", FAIL, ("Function {function} does not exist",), build={"function": False}),
    Case("L03.07", "edited-after-deploy", FAIL, ("Function {function}: deployed code differs from source",
                                                 "redeploy with update_function_code"), mutate=edit_handler),
    Case("L03.07", "file-added", FAIL, ("deployed code differs from source",), mutate=add_file),
    Case("L03.07", "no-source", FAIL, ("There is no {folder}/handler.py to compare function {function} with",),
         mutate=remove_source),
    # L03.08 proxy integrations
    Case("L03.08", "solution", PASS, ("all proxy to function {function}",)),
    Case("L03.08", "no-api", FAIL, ("There is no REST API named {api_name} (lab 02)",), build={"lab02": {"api": False}}),
    Case("L03.08", "no-function", FAIL, ("Function {function} does not exist",), build={"function": False}),
    Case("L03.08", "list-still-mock", FAIL, ("API {api_id} ({api_name}): GET /orders uses MOCK",),
         build={"integration": {("GET", "/orders"): None}}),
    Case("L03.08", "not-switched", FAIL, ("GET /orders uses MOCK", "POST /orders uses MOCK", "DELETE /orders/{{orderId}} uses MOCK"),
         build={"integrations": False}),
    Case("L03.08", "get-with-get", FAIL, ("GET /orders/{{orderId}} calls Lambda with integrationHttpMethod GET",),
         build={"integration": {("GET", "/orders/{orderId}"): {"integrationHttpMethod": "GET"}}}),
    Case("L03.08", "aws-not-proxy", FAIL, ("POST /orders uses AWS (AWS without proxy needs mapping templates",),
         build={"integration": {("POST", "/orders"): {"type": "AWS"}}}),
    Case("L03.08", "other-function", FAIL, (f"DELETE /orders/{{{{orderId}}}} invokes {OTHER_FUNCTION}, not {{function_arn}}",),
         build={"integration": {("DELETE", "/orders/{orderId}"): {
             "uri": f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{OTHER_FUNCTION}/invocations"}}}),
    # L03.09 the invoke permission
    Case("L03.09", "solution", PASS, ("Function {function} may be invoked by API {api_id} only",)),
    Case("L03.09", "stage-v1-only", PASS, ("may be invoked by API {api_id} only",),
         build={"source_arn": "arn:aws:execute-api:{region}:{account}:{api_id}/v1/*/*"}),
    Case("L03.09", "no-function", FAIL, ("Function {function} does not exist",), build={"function": False}),
    Case("L03.09", "no-permission", FAIL, ("Function {function} has no resource-based policy",),
         build={"permission": False}),
    Case("L03.09", "no-source-arn", FAIL, ("statement orders-api-invoke has no SourceArn, so any API in any account",),
         build={"source_arn": None}),
    Case("L03.09", "other-api", FAIL, (("SourceArn arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/* does not "
                                       "name API {api_id}"),),
         build={"source_arn": "arn:aws:execute-api:{region}:{account}:a1b2c3d4e5/*"}),
    Case("L03.09", "any-api", FAIL, ("does not name API {api_id}",),
         build={"source_arn": "arn:aws:execute-api:{region}:{account}:*"}),
    Case("L03.09", "any-region", FAIL, ("is not scoped to region us-east-1 and account 123456789012",),
         build={"source_arn": "arn:aws:execute-api:*:*:{api_id}/*"}),
    Case("L03.09", "list-only", FAIL, (("lets API {api_id} invoke it, but not for POST /orders, GET /orders/{{orderId}}, "
                                       "DELETE /orders/{{orderId}} on stage v1"),),
         build={"source_arn": "arn:aws:execute-api:{region}:{account}:{api_id}/v1/GET/orders"}),
    Case("L03.09", "other-stage", FAIL, ("but not for GET /orders, POST /orders",),
         build={"source_arn": "arn:aws:execute-api:{region}:{account}:{api_id}/prod/*"}),
    Case("L03.09", "events-unscoped-too", FAIL, ("statement events-too lets Service events.amazonaws.com invoke it",),
         mutate=events_permission),
    Case("L03.09", "anyone-too", FAIL, ("statement anyone lets anyone invoke it (Principal *)",),
         mutate=public_permission),
]

# Behaviour through the local gateway (the real local AWS process, which runs the function).
CASES += [
    # L03.10 create and read back
    Case("L03.10", "solution", PASS, ("POST /orders created order", "(status NEW), GET /orders/",
                                      "DELETE removed it again, so grading leaves no data behind")),
    Case("L03.10", "no-key", FAIL, ("There is no enabled API key ada-orders-key (lab 02)",),
         build={"lab02": {"key": False}}),
    Case("L03.10", "still-mocks", FAIL, ("POST /orders answered 201, but orderId 'o-example' is not a UUID",
                                         "customerId and items are not the ones sent"),
         build={"integrations": False}),
    Case("L03.10", "body-not-a-string", FAIL, (("POST /orders answered 502 {{\"message\": \"Internal server error\"}}; "
                                               "local gateway: Malformed Lambda proxy response"),),
         build={"handler": handler_with(('"body": text}', '"body": body}'))}),
    # API Gateway refuses a header value that is not a string; the local gateway no longer turns 42 into "42".
    Case("L03.10", "header-not-a-string", FAIL, ("POST /orders answered 502", "Malformed Lambda proxy response",
                                                 "Content-Length"),
         build={"handler": handler_with(('"headers": {"Content-Type": "application/json"}',
                                         '"headers": {"Content-Type": "application/json", "Content-Length": len(text)}'))}),
    Case("L03.10", "extra-response-field", FAIL, ("POST /orders answered 502", "Malformed Lambda proxy response",
                                                  "the field(s) ok"),
         build={"handler": handler_with(('"body": text}', '"body": text, "ok": True}'))}),
    Case("L03.10", "decimal-not-converted", FAIL, ("GET /orders/", "answered 502", "is not JSON serializable",
                                                   "The check deleted its order again"),
         build={"handler": handler_with((", default=_plain)", ")"))}),
    Case("L03.10", "no-invoke-permission", FAIL, ("POST /orders answered 500", "Invalid permissions on Lambda function"),
         build={"permission": False}),
    Case("L03.10", "role-cannot-put", FAIL, ("POST /orders answered 502", "AccessDenied"),
         build={"statements": table_statement(actions=["dynamodb:GetItem", "dynamodb:Scan", "dynamodb:DeleteItem"])}),
    Case("L03.10", "status-lowercase", FAIL, ("POST /orders answered 201, but status is 'new', expected 'NEW'",),
         build={"handler": handler_with(('status="NEW"', 'status="new"'))}),
    Case("L03.10", "delete-answers-200", FAIL, ("POST and GET work for order", "DELETE /orders/",
                                                "answered 200, not 204"),
         build={"handler": handler_with(("return respond(204)", "return respond(200, {})"))}),
    # L03.11 404
    Case("L03.11", "solution", PASS, ("answered 404 {{\"message\": \"order not found\"}}",)),
    Case("L03.11", "still-mock", FAIL, ("(no such order) answered 200", "expected 404"),
         build={"integrations": False}),
    Case("L03.11", "not-redeployed", FAIL, ("(no such order) answered 200", "expected 404"),
         build={"deploy": False}),  # the stage still serves lab 02's mocks, as on AWS
    Case("L03.11", "null-with-200", FAIL, ("(no such order) answered 200 with no body, expected 404",),
         build={"handler": handler_with(('return respond(200, item) if item else respond(404, {"message": "order not found"})',
                                         "return respond(200, item)"))}),
    Case("L03.11", "other-message", FAIL, ("answered 404 with {{\"message\": \"not found\"}}",
                                           "the body should be {{\"message\": \"order not found\"}}"),
         build={"handler": handler_with(('"order not found"', '"not found"'))}),
    # L03.12 400 for a body that is not JSON
    Case("L03.12", "solution", PASS, ("answered 400 from the stage's request validator, and function {function} "
                                      "answers 400 to it too when invoked directly",)),
    # The validator hides the handler: the check invokes the function itself, so a crash behind it still fails.
    Case("L03.12", "crashes-behind-validator", FAIL, ("Function {function}, invoked directly with a POST /orders body "
                                                      "that is not JSON, crashed (JSONDecodeError",),
         build={"handler": handler_with(("    except ValueError:  # not base64, not UTF-8 or not JSON\n        return None\n",
                                         "    finally:\n        pass\n"))}),
    Case("L03.12", "500-behind-validator", FAIL, ("invoked directly with a POST /orders body that is not JSON, answered 500, "
                                                  "expected 400",),
         build={"handler": handler_with(('return respond(400, {"message": "the body must be a JSON NewOrder"})',
                                         'return respond(500, {"message": "bad"})'))}),
    Case("L03.12", "malformed-behind-validator", FAIL, ("answered a malformed proxy response", "Content-Length"),
         build={"handler": handler_with(('return respond(400, {"message": "the body must be a JSON NewOrder"})',
                                         'return {"statusCode": 400, "headers": {"Content-Length": 2}, "body": "{}"}'))}),
    Case("L03.12", "handler-rejects", PASS, ("answered 400 from the function", "the body must be a JSON NewOrder"),
         build={"lab02": {"contract_edit": no_body_validator}}),
    Case("L03.12", "handler-crashes", FAIL, ("answered 502", ("(the function crashed on it: catch the parse error); "
                                             "expected 400")),
         build={"lab02": {"contract_edit": no_body_validator},
                "handler": handler_with(("    except ValueError:  # not base64, not UTF-8 or not JSON\n        return None\n",
                                         "    finally:\n        pass\n"))}),
    Case("L03.12", "tester-cannot-sign-in", FAIL, ("The test user tester from /ada/orders/tester cannot sign in to app client ada-orders-web",),
         build={"lab02": {"tester_value": '{"username": "tester", "password": "Not-the-passw0rd!"}'}}),
    # L03.13 the handler's lines reach the log group
    Case("L03.13", "solution", PASS, ("Log group {group} holds", "line(s) from the handler", '"method": "GET"')),
    Case("L03.13", "missing-group", FAIL, ("Log group {group} does not exist",), build={"log_group": False}),
    Case("L03.13", "never-invoked", FAIL, ("Log group {group} holds no log events",),
         build={"invoke": False}, prepare=quick_logs),
    Case("L03.13", "role-without-logs", FAIL, ("Log group {group} holds no log events", "logs:PutLogEvents"),
         build={"statements": only_table}, prepare=quick_logs),
    Case("L03.13", "silent-handler", FAIL, ("holds Lambda's START, END and REPORT lines but nothing the handler printed",),
         build={"handler": handler_with(("    print(json.dumps(", "    (json.dumps("))}, prepare=quick_logs),
    Case("L03.13", "handler-raises", FAIL, ("holds only Lambda's own lines and errors", "[ERROR] KeyError"),
         build={"handler": handler_with(("    response = route(event)\n", "    response = route(event['nope'])\n"))},
         prepare=quick_logs),
]

PASSING = covered(CASES, PASS)
FAILING = covered(CASES, FAIL)


@pytest.mark.parametrize("case", params([c for c in CASES if c.check not in BEHAVIOUR]))
def test_check(aws, case, monkeypatch):
    run_case(case, aws, build_lab03, monkeypatch)


@pytest.mark.server
@pytest.mark.parametrize("case", params([c for c in CASES if c.check in BEHAVIOUR]))
def test_behaviour(local_target, case, monkeypatch):
    run_case(case, local_target, build_lab03, monkeypatch)


def test_whole_lab_on_the_solution_state(aws):
    """In-process moto cannot run the function, so the behaviour checks are graded in test_whole_lab_locally."""
    build_lab03(aws)
    report = checks.grade([checks.REGISTRY[i] for i in sorted(checks.REGISTRY)
                           if i.startswith("L03.") and i not in BEHAVIOUR], aws)
    assert {r.status for r in report.results} == {PASS}, report


@pytest.mark.server
def test_whole_lab_locally(local_target):
    assert_whole_lab(local_target, "03", build_lab03, skipped=set())


@pytest.mark.server
def test_grading_twice_passes_and_leaves_no_orders(local_target):
    """L03.10 deletes what it creates, and back-to-back runs (after lab 02's throttle test) wait out the 429s."""
    state = build_lab03(local_target)
    for _ in range(2):
        report = checks.grade(checks.select("L02.11-L03.13"), local_target)
        assert {r.check.id for r in report.results if r.status not in (PASS, Status.SKIP)} == set(), report
    assert local_target.client("dynamodb").scan(TableName=state["table"], Select="COUNT")["Count"] == 0


def _get(url: str, headers: dict):
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.mark.server
def test_edited_source_fails_the_check_and_the_gateway_until_redeployed(local_target):
    state = build_lab03(local_target)
    folder = Path(state["folder"])
    (folder / "handler.py").write_text((folder / "handler.py").read_text() + "\n# not deployed yet\n")
    result = checks.grade(checks.select("L03.07"), local_target).results[0]
    assert result.status is FAIL and "deployed code differs from source" in result.message
    status, body = _get(f"{state['url']}/orders", {"x-api-key": state["key_value"]})
    assert status == 502 and body["message"] == "Internal server error"
    assert "deployed code differs from source" in body["localNote"].lower() and "handler.py" in body["localNote"]

    local_target.client("lambda").update_function_code(FunctionName=state["function"], ZipFile=lambdas.package(folder))
    assert checks.grade(checks.select("L03.07"), local_target).results[0].status is PASS
    assert _get(f"{state['url']}/orders", {"x-api-key": state["key_value"]}) == (200, {"orders": []})


@pytest.mark.server
def test_role_credentials_get_only_what_the_policy_grants(local_target):
    """The notebook's least-privilege demonstration: the local AWS enforces the role's policy for its sessions."""
    import boto3
    from botocore.exceptions import ClientError

    state = build_lab03(local_target, invoke=False)
    creds = local_target.client("sts").assume_role(RoleArn=state["role_arn"], RoleSessionName="demo")["Credentials"]
    ddb = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"], region_name="us-east-1").client(
        "dynamodb", endpoint_url=local_target.endpoint)
    assert ddb.scan(TableName=state["table"], Select="COUNT")["Count"] == 0
    for forbidden in (lambda: ddb.scan(TableName="ada-payments"), ddb.list_tables,
                      lambda: ddb.delete_table(TableName=state["table"])):
        with pytest.raises(ClientError) as refused:
            forbidden()
        assert "AccessDenied" in refused.value.response["Error"]["Code"]
    assert local_target.client("dynamodb").describe_table(TableName=state["table"])["Table"]["TableStatus"] == "ACTIVE"


@pytest.mark.server
def test_redeploying_keeps_lab02s_stage_settings(local_target):
    """create_deployment to v1 moves the stage, as on AWS; it must not wipe lab 02's throttling and cache."""
    state = build_lab03(local_target, deploy=False)
    apigw = local_target.client("apigateway")
    before = apigw.get_stage(restApiId=state["api_id"], stageName="v1")
    apigw.create_deployment(restApiId=state["api_id"], stageName="v1")
    after = apigw.get_stage(restApiId=state["api_id"], stageName="v1")
    assert after["deploymentId"] != before["deploymentId"]
    assert after["methodSettings"] == before["methodSettings"] and after["cacheClusterEnabled"] is True


@pytest.mark.server
def test_every_call_the_lab03_checks_make_is_in_the_grader_policy(local_target, monkeypatch):
    from .test_policy import missing_from_policy, recording_calls

    build_lab03(local_target)
    calls = recording_calls(monkeypatch)
    report = checks.grade(checks.select("03"), local_target)
    assert report.exit_code == 0, report
    missing = missing_from_policy(calls)
    assert missing == set(), f"add to grader-readonly.json: {sorted(missing)}"
