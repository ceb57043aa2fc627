"""The end state of lab 02 (API first), built with boto3 on a Target.

``build_lab02(t)`` builds what the solution code of ``course/02-api-first.py`` builds (the contract comes from the lab source itself):
the Cognito user pool, app client and test user (credentials in SSM), the
OpenAPI contract saved to ``work_dir()/orders-api.yaml``, the REST API
imported from it, stage ``v1`` with throttling and caching, and the usage
plan with its API key. It does not build labs 00 and 01 (no lab 02 check
needs them). Every keyword changes one thing, so a test can build a state
that is wrong in exactly one way. It returns a dict of the names and ids the
tests need (and format their expected messages with).

Lab 03's tests start from ``build_lab02(t)``; keep that call working.
"""
from __future__ import annotations

import copy
import functools
import json
import secrets
from typing import Callable

import yaml

from labkit.authoring import notebooks
from labkit.config import work_dir
from labkit.openapi import import_api
from labkit.target import Target

DEFAULT = object()  # "as the solution does it"
STAGE = "v1"
CONTRACT_FILE = "orders-api.yaml"
TESTER = "tester"
READ_CACHE = ("/~1orders/GET", "/~1orders~1{orderId}/GET")


def mock(status: int, body: dict | None = None, **extra) -> dict:
    """An x-amazon-apigateway-integration that answers ``status`` (and ``body``) from API Gateway itself."""
    response: dict = {"statusCode": str(status)}
    if body is not None:
        response["responseTemplates"] = {"application/json": json.dumps(body)}
    return {
        "type": "mock",
        "requestTemplates": {"application/json": json.dumps({"statusCode": status})},
        "passthroughBehavior": "when_no_match",
        "responses": {"default": response},
        **extra,
    }


@functools.cache
def _contract_cell() -> str:
    """The lab source's cell that writes the contract, solution included."""
    for cell in notebooks.lab("02").cells():
        if cell.kind == "code" and "contract = {" in cell.source:
            return notebooks.solution_code(cell.source)
    raise AssertionError("course/02-api-first.py has no cell assigning contract")


def orders_contract(t: Target, pool_arn: str) -> dict:
    """The solution's contract: the lab's own cell, run for this target, so the tests grade what learners see."""
    namespace: dict = {"json": json, "t": t, "pool_arn": pool_arn}
    exec(compile(_contract_cell(), "course/02-api-first.py", "exec"), namespace)
    return namespace["contract"]


def stage_patches(*, rate: str = "100", burst: str = "50", cache: bool = True, size: str = "0.5",
                  cached: tuple[str, ...] = READ_CACHE, ttl: str = "30") -> list[dict]:
    """The solution's update_stage patch operations; keywords change one setting."""
    ops = [{"op": "replace", "path": "/*/*/throttling/rateLimit", "value": rate},
           {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": burst}]
    if cache:
        ops += [{"op": "replace", "path": "/cacheClusterEnabled", "value": "true"},
                {"op": "replace", "path": "/cacheClusterSize", "value": size}]
    for method in cached:
        ops += [{"op": "replace", "path": f"{method}/caching/enabled", "value": "true"},
                {"op": "replace", "path": f"{method}/caching/ttlInSeconds", "value": ttl}]
    return ops


def build_lab02(
    t: Target,
    *,
    cognito: bool = True,
    auth_flows: list[str] | None = None,
    client_secret: bool = False,
    tester: bool = True,
    tester_value: str | None = None,
    tester_type: str = "SecureString",
    contract_file: bool = True,
    contract_text: str | None = None,
    contract_edit: Callable[[dict], None] | None = None,
    import_edit: Callable[[dict], None] | None = None,
    api: bool = True,
    endpoint_type: str = "REGIONAL",
    api_tags: dict | None = DEFAULT,
    deploy: bool = True,
    stage: list[dict] | None = DEFAULT,
    plan: bool = True,
    plan_stage: str = STAGE,
    plan_throttle: dict | None = DEFAULT,
    plan_quota: dict | None = DEFAULT,
    key: bool = True,
    key_enabled: bool = True,
    attach_key: bool = True,
) -> dict:
    """The end state of lab 02, in the solution's order: Cognito, contract, API, stage, plan and key.

    ``contract_edit(contract)`` changes the contract both saved and imported;
    ``import_edit(contract)`` changes only what is imported (the API then
    differs from the saved file); ``contract_text`` is saved instead of the
    contract. ``stage`` is the list of update_stage patch operations (see
    ``stage_patches``); ``None`` leaves tags, throttle or quota out.
    """
    state = {"api_name": t.name("orders-api"), "api_id": None, "stage": STAGE, "url": None,
             "pool_name": t.name("users"), "pool_id": None, "pool_arn": None,
             "client_name": t.name("orders-web"), "client_id": None,
             "parameter": f"/{t.prefix}/orders/tester", "username": TESTER, "password": None,
             "contract_path": str(work_dir() / CONTRACT_FILE), "region": t.region,
             "plan_name": t.name("orders-plan"), "plan_id": None,
             "key_name": t.name("orders-key"), "key_id": None, "key_value": None}

    # Cognito: the pool, the app client and the test user, whose credentials go to SSM.
    pool_arn = f"arn:aws:cognito-idp:{t.region}:123456789012:userpool/{t.region}_EXAMPLE"
    if cognito:
        idp = t.client("cognito-idp")
        pool = idp.create_user_pool(PoolName=state["pool_name"], UserPoolTags=t.tag_map("02"))["UserPool"]
        pool_arn = pool["Arn"]
        state.update(pool_id=pool["Id"], pool_arn=pool_arn)
        flows = auth_flows if auth_flows is not None else ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
        state["client_id"] = idp.create_user_pool_client(
            UserPoolId=pool["Id"], ClientName=state["client_name"], GenerateSecret=client_secret,
            ExplicitAuthFlows=flows)["UserPoolClient"]["ClientId"]
        password = secrets.token_urlsafe(16) + "Aa1!"
        idp.admin_create_user(UserPoolId=pool["Id"], Username=TESTER, MessageAction="SUPPRESS",
                              TemporaryPassword=secrets.token_urlsafe(16) + "Aa1!")
        idp.admin_set_user_password(UserPoolId=pool["Id"], Username=TESTER, Password=password, Permanent=True)
        state["password"] = password
    if tester:
        value = tester_value if tester_value is not None else json.dumps(
            {"username": TESTER, "password": state["password"] or "no-pool"})
        t.client("ssm").put_parameter(Name=state["parameter"], Type=tester_type, Value=value, Overwrite=True)

    # The contract: saved, then imported.
    contract = orders_contract(t, pool_arn)
    if contract_edit:
        contract_edit(contract)
    path = work_dir() / CONTRACT_FILE
    if contract_file:
        path.write_text(contract_text if contract_text is not None else yaml.safe_dump(contract, sort_keys=False))
    else:
        path.unlink(missing_ok=True)
    if not api:
        return state
    imported = copy.deepcopy(contract)
    if import_edit:
        import_edit(imported)
    api_id = import_api(t, imported, tags=t.tag_map("02") if api_tags is DEFAULT else api_tags,
                        endpoint_type=endpoint_type)
    state.update(api_id=api_id, url=t.invoke_url(api_id, STAGE))
    apigw = t.client("apigateway")

    # Stage v1: the deployment, then throttling and caching.
    if deploy:
        apigw.create_deployment(restApiId=api_id, stageName=STAGE)
        ops = stage_patches() if stage is DEFAULT else stage or []
        if ops:
            apigw.update_stage(restApiId=api_id, stageName=STAGE, patchOperations=ops)

    # The usage plan and its key.
    if plan:
        args = {"name": state["plan_name"], "apiStages": [{"apiId": api_id, "stage": plan_stage}],
                "tags": t.tag_map("02")}
        throttle = {"rateLimit": 10.0, "burstLimit": 5} if plan_throttle is DEFAULT else plan_throttle
        quota = {"limit": 1000, "period": "DAY"} if plan_quota is DEFAULT else plan_quota
        if throttle:
            args["throttle"] = throttle
        if quota:
            args["quota"] = quota
        state["plan_id"] = apigw.create_usage_plan(**args)["id"]
    if key:
        made = apigw.create_api_key(name=state["key_name"], enabled=key_enabled, tags=t.tag_map("02"))
        state.update(key_id=made["id"], key_value=made["value"])
        if plan and attach_key:
            apigw.create_usage_plan_key(usagePlanId=state["plan_id"], keyId=made["id"], keyType="API_KEY")
    return state
