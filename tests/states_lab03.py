"""The end state of lab 03 (Lambda microservice), built with boto3 on a Target.

``build_lab03(t)`` builds lab 02's end state (``build_lab02``) and then, as
the solution of ``course/03-lambda-microservice.py`` does: the table, the
handler in ``work_dir()/orders`` (the notebook's own handler source, read
from the lab source), the execution role and its policy, the log group, the
function, the proxy integrations, the invoke permission and the redeployment.
On the local AWS process it also invokes the function once, as the notebook
does, so the log group holds lines. Every keyword changes one thing; the
returned dict holds the names and ids the tests format their messages with.
"""
from __future__ import annotations

import ast
import functools
import json
from typing import Callable

from labkit import lambdas
from labkit.config import REPO_ROOT, work_dir
from labkit.target import Target

from .states_lab02 import STAGE, build_lab02

DEFAULT = object()  # "as the solution does it"
COURSE_SOURCE = REPO_ROOT / "course" / "03-lambda-microservice.py"
METHODS = (("GET", "/orders"), ("POST", "/orders"), ("GET", "/orders/{orderId}"), ("DELETE", "/orders/{orderId}"))
LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
# The documents of two AWS managed policies learners reach for (in-process moto does not load AWS's own).
BASIC_EXECUTION = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"}]}
DYNAMODB_FULL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["dynamodb:*"], "Resource": "*"}]}


@functools.cache
def solution_handler() -> str:
    """The handler source the lab's solution writes (the string ``handler_source`` in the lab source)."""
    tree = ast.parse(COURSE_SOURCE.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(n, "id", None) == "handler_source" for n in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{COURSE_SOURCE.name} assigns no handler_source")


def handler_with(*edits: tuple[str, str]) -> str:
    """The solution's handler with (old, new) text replacements; each ``old`` must occur."""
    source = solution_handler()
    for old, new in edits:
        assert old in source, f"the solution handler has no {old!r}"
        source = source.replace(old, new)
    return source


def data_statements(table_arn: str, group_arn: str) -> list[dict]:
    """The solution's two statements: the four table actions, and the function's own log streams."""
    return [
        {"Sid": "OrdersTable", "Effect": "Allow",
         "Action": ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Scan", "dynamodb:DeleteItem"],
         "Resource": table_arn},
        {"Sid": "OwnLogGroup", "Effect": "Allow",
         "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": f"{group_arn}:*"},
    ]


def proxy_event(method: str, resource: str, order_id: str | None = None, body: str | None = None) -> dict:
    return {"httpMethod": method, "resource": resource, "path": resource.replace("{orderId}", order_id or ""),
            "body": body, "isBase64Encoded": False, "pathParameters": {"orderId": order_id} if order_id else None,
            "headers": {}, "requestContext": {}}


def no_body_validator(contract: dict) -> None:
    """A lab 02 contract edit: POST /orders without the request validator, so bad bodies reach the function."""
    contract["paths"]["/orders"]["post"].pop("x-amazon-apigateway-request-validator")


def build_lab03(
    t: Target,
    *,
    lab02: dict | None = None,
    table: bool = True,
    key: tuple[str, str] = ("orderId", "S"),
    billing: str = "PAY_PER_REQUEST",
    table_tags: list[dict] | None = DEFAULT,
    handler: str | None = None,
    role: bool = True,
    trust: dict = LAMBDA_TRUST,
    statements: Callable[[str, str], list[dict]] | None = data_statements,
    managed: dict[str, dict] | None = None,
    log_group: bool = True,
    retention: int | None = 14,
    group_tags: dict | None = DEFAULT,
    function: bool = True,
    runtime: str = "python3.13",
    handler_name: str = "handler.handler",
    timeout: int = 10,
    memory: int = 256,
    env: dict | None = DEFAULT,
    run_as: str | None = None,
    fn_tags: dict | None = DEFAULT,
    integrations: bool = True,
    integration: dict | None = None,
    permission: bool = True,
    source_arn: str | None = DEFAULT,
    deploy: bool = True,
    invoke: bool | None = None,
) -> dict:
    """The end state of lab 03 on top of lab 02's (``lab02`` are build_lab02's keywords).

    ``handler`` is the source written to work/orders/handler.py;
    ``statements(table_arn, group_arn)`` the inline policy's statements (None:
    no inline policy); ``managed`` maps a policy name to a document that is
    created as a customer managed policy and attached; ``run_as`` names
    another role (trusting Lambda) the function runs as; ``integration`` maps
    (METHOD, path) to put_integration overrides, or to None to keep lab 02's
    MOCK; ``source_arn`` may use ``{api_id}``, ``{region}`` and ``{account}``
    (None: a permission without SourceArn); ``invoke`` runs the function once
    (by default on the local AWS process only: in-process moto cannot run code).
    """
    state = build_lab02(t, **(lab02 or {}))
    account, region = t.account_id, t.region
    name = t.name("orders")
    group = f"/aws/lambda/{name}"
    state.update(table=name, table_arn=f"arn:aws:dynamodb:{region}:{account}:table/{name}",
                 role=t.name("orders-fn"), role_arn=None, policy=t.name("orders-data"),
                 function=name, function_arn=None, group=group,
                 group_arn=f"arn:aws:logs:{region}:{account}:log-group:{group}",
                 folder=str(work_dir() / "orders"), source_arn=None, account=account)

    if table:
        t.client("dynamodb").create_table(
            TableName=name, AttributeDefinitions=[{"AttributeName": key[0], "AttributeType": key[1]}],
            KeySchema=[{"AttributeName": key[0], "KeyType": "HASH"}], BillingMode=billing,
            **({"ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}
               if billing == "PROVISIONED" else {}),
            Tags=t.tags("03") if table_tags is DEFAULT else table_tags or [])

    folder = work_dir() / "orders"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "handler.py").write_text(solution_handler() if handler is None else handler)

    iam = t.client("iam")
    if role:
        state["role_arn"] = iam.create_role(RoleName=state["role"], AssumeRolePolicyDocument=json.dumps(trust),
                                            Tags=t.tags("03"))["Role"]["Arn"]
        if statements is not None:
            iam.put_role_policy(RoleName=state["role"], PolicyName=state["policy"], PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": statements(state["table_arn"], state["group_arn"])}))
        for policy_name, document in (managed or {}).items():
            arn = iam.create_policy(PolicyName=policy_name, PolicyDocument=json.dumps(document))["Policy"]["Arn"]
            iam.attach_role_policy(RoleName=state["role"], PolicyArn=arn)

    logs = t.client("logs")
    if log_group:
        logs.create_log_group(logGroupName=group, tags=t.tag_map("03") if group_tags is DEFAULT else group_tags or {})
        if retention:
            logs.put_retention_policy(logGroupName=group, retentionInDays=retention)

    lam = t.client("lambda")
    if function:
        role_arn = state["role_arn"]
        if run_as:
            role_arn = iam.create_role(RoleName=run_as, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))["Role"]["Arn"]
        made = lam.create_function(
            FunctionName=name, Runtime=runtime, Handler=handler_name, Role=role_arn,
            Code={"ZipFile": lambdas.package(folder)}, Timeout=timeout, MemorySize=memory,
            Environment={"Variables": {"TABLE_NAME": name} if env is DEFAULT else env or {}},
            Tags=t.tag_map("03") if fn_tags is DEFAULT else fn_tags or {})
        state["function_arn"] = made["FunctionArn"].removesuffix(":$LATEST")
        lam.get_waiter("function_active_v2").wait(FunctionName=name)

    api_id = state["api_id"]
    if api_id and state["function_arn"]:
        apigw = t.client("apigateway")
        uri = f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{state['function_arn']}/invocations"
        resources = {r["path"]: r["id"] for r in apigw.get_resources(restApiId=api_id, limit=500)["items"]}
        if integrations:
            for verb, path in METHODS:
                edit = (integration or {}).get((verb, path), {})
                if edit is None:
                    continue  # keep lab 02's MOCK
                cache = ["method.request.path.orderId"] if (verb, path) == ("GET", "/orders/{orderId}") else []
                args = {"type": "AWS_PROXY", "integrationHttpMethod": "POST", "uri": uri,
                        "cacheKeyParameters": cache, **edit}
                apigw.put_integration(restApiId=api_id, resourceId=resources[path], httpMethod=verb, **args)
        if permission:
            arn = ("arn:aws:execute-api:{region}:{account}:{api_id}/*" if source_arn is DEFAULT else source_arn)
            extra = {} if arn is None else {"SourceArn": arn.format(region=region, account=account, api_id=api_id)}
            state["source_arn"] = extra.get("SourceArn")
            lam.add_permission(FunctionName=name, StatementId="orders-api-invoke", Action="lambda:InvokeFunction",
                               Principal="apigateway.amazonaws.com", **extra)
        if deploy:
            apigw.create_deployment(restApiId=api_id, stageName=STAGE, description="lab 03: Lambda proxy integrations")

    if function and (invoke if invoke is not None else t.mode == "local"):
        lam.invoke(FunctionName=name, Payload=json.dumps(proxy_event("GET", "/orders")))
    return state
