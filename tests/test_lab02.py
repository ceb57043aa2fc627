"""Lab 02 checks: each passes on the solution's state and fails on states wrong in one way.

Configuration checks run on in-process moto (``aws``); the behaviour checks
(L02.11-L02.15) call the stage through the local gateway, so they run on the
real local AWS (``local``).
"""
from __future__ import annotations

import pytest

from checks.api import routes
from checks.core import Status
from labkit.openapi import import_api

from .cases import Case, assert_whole_lab, covered, params, run_case
from .states_lab02 import READ_CACHE, build_lab02, mock, orders_contract, stage_patches

PASS, FAIL, SKIP = Status.PASS, Status.FAIL, Status.SKIP
BEHAVIOUR = {"L02.11", "L02.12", "L02.13", "L02.14", "L02.15"}
OTHER_POOL = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_SOMEONEELSE"


# -- contract edits (build: contract_edit=..., import_edit=...) -------------------------

def op(contract: dict, method: str, path: str) -> dict:
    return contract["paths"][path][method.lower()]


def edit_op(method: str, path: str, **changes):
    """Replace (or, given None, drop) fields of one operation."""

    def edit(contract):
        operation = op(contract, method, path)
        for key, value in changes.items():
            if value is None:
                operation.pop(key, None)
            else:
                operation[key] = value

    return edit


def drop_op(method: str, path: str):
    return lambda contract: contract["paths"][path].pop(method.lower())


def add_put(contract):
    contract["paths"]["/orders/{orderId}"]["put"] = {
        "operationId": "replaceOrder", "security": [{"api_key": []}], "parameters": op(contract, "GET", "/orders/{orderId}")["parameters"],
        "responses": {"200": {"description": "Replaced"}}, "x-amazon-apigateway-integration": mock(200)}


def new_order(**changes):
    """Replace fields of components.schemas.NewOrder (None drops one)."""

    def edit(contract):
        schema = contract["components"]["schemas"]["NewOrder"]
        for key, value in changes.items():
            if value is None:
                schema.pop(key, None)
            else:
                schema[key] = value

    return edit


def item_field(field: str, **changes):
    """Update NewOrder's items array (field "items") or one property of a line item."""

    def edit(contract):
        items = contract["components"]["schemas"]["NewOrder"]["properties"]["items"]
        (items if field == "items" else items["items"]["properties"][field]).update(changes)

    return edit


def line_item_component(contract):
    """NewOrder's items refer to a LineItem schema: the same contract, factored."""
    schemas = contract["components"]["schemas"]
    schemas["LineItem"] = schemas["NewOrder"]["properties"]["items"]["items"]
    schemas["NewOrder"]["properties"]["items"]["items"] = {"$ref": "#/components/schemas/LineItem"}


def cognito_extension(**changes):
    def edit(contract):
        contract["components"]["securitySchemes"]["cognito"]["x-amazon-apigateway-authorizer"].update(changes)

    return edit


def validators(**rules):
    def edit(contract):
        contract["x-amazon-apigateway-request-validators"]["body"].update(rules)

    return edit


def inline_body(contract):
    """POST's body schema written inline instead of as a $ref: API Gateway makes no model from it."""
    body = op(contract, "POST", "/orders")["requestBody"]["content"]["application/json"]
    body["schema"] = dict(contract["components"]["schemas"]["NewOrder"])


def swagger(contract):
    contract.pop("openapi")
    contract["swagger"] = "2.0"


# -- mutations and stubs ----------------------------------------------------------------

def import_twice(t, state):
    import_api(t, orders_contract(t, state["pool_arn"]), tags=t.tag_map("02"))


def use_up_quota(t, state):
    """mutate: the one request a quota of 1 allows."""
    from checks.api import call

    view = t.for_grading()
    assert call(view, "GET", "/orders", headers={"x-api-key": state["key_value"]})[0] == 200


LIST_HANDLER = """
import json

def handler(event, context):
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"orders": [{"orderId": "o-1"}]})}
"""


def lambda_uri(region: str, function_arn: str) -> str:
    return f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}/invocations"


def proxy_integrations(contract):
    """import_edit: every operation a Lambda proxy integration, as lab 03 leaves them."""
    arn = "arn:aws:lambda:us-east-1:123456789012:function:ada-orders"
    for item in contract["paths"].values():
        for operation in item.values():
            keys = operation["x-amazon-apigateway-integration"].get("cacheKeyParameters")
            operation["x-amazon-apigateway-integration"] = {
                "type": "aws_proxy", "httpMethod": "POST", "uri": lambda_uri("us-east-1", arn),
                **({"cacheKeyParameters": keys} if keys else {})}


def list_through_lambda(t, state):
    """mutate: GET /orders becomes a Lambda proxy integration (lab 03's shape), redeployed to v1."""
    import json

    from labkit import lambdas
    from labkit.config import work_dir

    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                      "Action": "sts:AssumeRole"}]}
    role = t.client("iam").create_role(RoleName="ada-orders-fn", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    folder = work_dir() / "list-orders"  # kept: the local runner checks the deployed code against its source
    folder.mkdir(exist_ok=True)
    (folder / "handler.py").write_text(LIST_HANDLER)
    code = lambdas.package(folder)
    fn = t.client("lambda").create_function(FunctionName="ada-orders", Runtime="python3.13", Role=role,
                                            Handler="handler.handler", Code={"ZipFile": code}, Timeout=5)["FunctionArn"]
    t.client("lambda").add_permission(FunctionName="ada-orders", StatementId="apigw", Action="lambda:InvokeFunction",
                                      Principal="apigateway.amazonaws.com",
                                      SourceArn=f"arn:aws:execute-api:{t.region}:123456789012:{state['api_id']}/*")
    apigw = t.client("apigateway")
    resource = next(r["id"] for r in apigw.get_resources(restApiId=state["api_id"])["items"] if r["path"] == "/orders")
    apigw.put_integration(restApiId=state["api_id"], resourceId=resource, httpMethod="GET", type="AWS_PROXY",
                          integrationHttpMethod="POST", uri=lambda_uri(t.region, fn))
    apigw.create_deployment(restApiId=state["api_id"], stageName="v1")


def get_order_cache_keys(*keys: str):
    """contract_edit: GET /orders/{orderId}'s integration declares these cacheKeyParameters."""

    def edit(contract):
        contract["paths"]["/orders/{orderId}"]["get"]["x-amazon-apigateway-integration"]["cacheKeyParameters"] = list(keys)

    return edit


def second_plan(t, state):
    """mutate: a re-run cell that made another usage plan of the same name."""
    t.client("apigateway").create_usage_plan(name=state["plan_name"], apiStages=[{"apiId": state["api_id"], "stage": "v1"}])


def second_key(t, state):
    t.client("apigateway").create_api_key(name=state["key_name"], enabled=True)


def second_pool(t, state):
    t.client("cognito-idp").create_user_pool(PoolName=state["pool_name"])


def second_app_client(t, state):
    t.client("cognito-idp").create_user_pool_client(UserPoolId=state["pool_id"], ClientName=state["client_name"],
                                                    ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"])


def sign_in_challenged(view, state, monkeypatch):
    """prepare: the user still has a temporary password, so Cognito answers with a challenge, not tokens."""
    monkeypatch.setattr(view.client("cognito-idp"), "initiate_auth",
                        lambda **_: {"ChallengeName": "NEW_PASSWORD_REQUIRED", "Session": "s", "ChallengeParameters": {}})


CASES = [
    # L02.01 valid contract
    Case("L02.01", "solution", PASS, ("orders-api.yaml is valid OpenAPI 3.0.3 (4 operations)",)),
    Case("L02.01", "no-file", FAIL, ("There is no contract at {contract_path}",), build={"contract_file": False}),
    Case("L02.01", "not-yaml", FAIL, ("The contract orders-api.yaml is not valid YAML",),
         build={"contract_text": "openapi: 3.0.3\ninfo: [title, version\n"}),
    Case("L02.01", "swagger-2", FAIL, ("orders-api.yaml: The contract is Swagger 2.0",), build={"contract_edit": swagger, "api": False}),
    Case("L02.01", "operation-without-responses", FAIL, ("orders-api.yaml: The contract is not valid OpenAPI 3", "responses"),
         build={"contract_edit": edit_op("GET", "/orders", responses=None), "api": False}),
    # L02.02 the four operations and NewOrder
    Case("L02.02", "solution", PASS, ("orders-api.yaml declares the four order operations and the NewOrder schema",)),
    Case("L02.02", "line-item-component", PASS, ("declares the four order operations",),
         build={"contract_edit": line_item_component}),
    Case("L02.02", "no-file", FAIL, ("There is no contract at {contract_path}",), build={"contract_file": False}),
    Case("L02.02", "no-delete", FAIL, ("orders-api.yaml: DELETE /orders/{{orderId}} is missing.",),
         build={"contract_edit": drop_op("DELETE", "/orders/{orderId}")}),
    Case("L02.02", "wrong-operation-id", FAIL, ("GET /orders has operationId 'getOrders', expected 'listOrders'",),
         build={"contract_edit": edit_op("GET", "/orders", operationId="getOrders")}),
    Case("L02.02", "items-optional", FAIL, ("NewOrder does not require items",),
         build={"contract_edit": new_order(required=["customerId"])}),
    Case("L02.02", "empty-items-allowed", FAIL, ("NewOrder.items is not an array with minItems 1",),
         build={"contract_edit": item_field("items", minItems=0)}),
    Case("L02.02", "quantity-zero", FAIL, ("an item's quantity is not an integer with minimum 1",),
         build={"contract_edit": item_field("quantity", minimum=0)}),
    Case("L02.02", "body-is-order", FAIL, ("POST /orders' application/json requestBody does not refer to #/components/schemas/NewOrder",),
         build={"contract_edit": edit_op("POST", "/orders", requestBody={"required": True, "content": {
             "application/json": {"schema": {"$ref": "#/components/schemas/Order"}}}})}),
    # L02.03 the REST API
    Case("L02.03", "solution", PASS, ("REST API {api_name} ({api_id}) is regional and tagged",)),
    Case("L02.03", "no-api", FAIL, ("There is no REST API named {api_name}",), build={"api": False}),
    Case("L02.03", "edge", FAIL, ("REST API {api_name} ({api_id}) is EDGE, expected REGIONAL",), build={"endpoint_type": "EDGE"}),
    Case("L02.03", "untagged", FAIL, ("REST API {api_name} ({api_id}) lacks the tags", "lab=02"), build={"api_tags": None}),
    Case("L02.03", "lab-01-tags", FAIL, ("lacks the tags lab=02",),
         build={"api_tags": {"course": "microservices-labs", "lab": "01", "learner": "ada"}}),
    Case("L02.03", "imported-twice", FAIL, ("There are 2 REST APIs named {api_name}",), mutate=import_twice),
    # L02.04 routes match the contract
    Case("L02.04", "solution", PASS, ("REST API {api_name} has exactly the 4 operations of orders-api.yaml",)),
    Case("L02.04", "lambda-proxy-integrations", PASS, ("REST API {api_name} has exactly the 4 operations",),
         build={"import_edit": proxy_integrations}),
    Case("L02.04", "no-api", FAIL, ("There is no REST API named {api_name}",), build={"api": False}),
    Case("L02.04", "no-contract", FAIL, ("Cannot compare REST API {api_name} with its contract: There is no contract",),
         build={"contract_file": False}),
    Case("L02.04", "delete-not-imported", FAIL, ("REST API {api_name} lacks DELETE /orders/{{orderId}}.",),
         build={"import_edit": drop_op("DELETE", "/orders/{orderId}")}),
    Case("L02.04", "extra-put", FAIL, ("REST API {api_name} has PUT /orders/{{orderId}}, which the contract does not declare",),
         build={"import_edit": add_put}),
    # L02.05 stage and throttling
    Case("L02.05", "solution", PASS, ("Stage v1 of {api_name} is deployed and throttles */* at rate 100, burst 50",)),
    Case("L02.05", "no-api", FAIL, ("There is no REST API named {api_name}",), build={"api": False}),
    Case("L02.05", "not-deployed", FAIL, ("REST API {api_name} has no stage v1",), build={"deploy": False}),
    Case("L02.05", "no-throttling", FAIL, ("Stage v1 of {api_name} has no stage-wide throttling",),
         build={"stage": [o for o in stage_patches() if "throttling" not in o["path"]]}),
    Case("L02.05", "too-generous", FAIL, ("throttles */* at rate 1000 and burst 2000, expected rate 100 and burst 50",),
         build={"stage": stage_patches(rate="1000", burst="2000")}),
    # L02.06 caching
    Case("L02.06", "solution", PASS, ("caches the two reads for 30 s and no writes, keyed on orderId",)),
    Case("L02.06", "no-cache-key", FAIL, ("has no cache key parameter method.request.path.orderId",
                                          "every order id would get the first order read"),
         build={"contract_edit": get_order_cache_keys()}),
    Case("L02.06", "wrong-cache-key", FAIL, ("has no cache key parameter method.request.path.orderId",),
         build={"contract_edit": get_order_cache_keys("method.request.header.Accept")}),
    Case("L02.06", "no-stage", FAIL, ("REST API {api_name} has no stage v1",), build={"deploy": False}),
    Case("L02.06", "no-cache-cluster", FAIL, ("Stage v1 of {api_name} has no cache (cacheClusterEnabled is false)",),
         build={"stage": stage_patches(cache=False)}),
    Case("L02.06", "big-cache", FAIL, ("Stage v1 of {api_name} has a 6.1 GB cache; use 0.5",),
         build={"stage": stage_patches(size="6.1")}),
    Case("L02.06", "caches-everything", FAIL, ("caching is on for */* (every method), so writes would be answered from the cache",),
         build={"stage": stage_patches(cached=("/*/*",))}),
    Case("L02.06", "caches-post", FAIL, ("caching is on for POST /orders",),
         build={"stage": stage_patches(cached=(*READ_CACHE, "/~1orders/POST"))}),
    Case("L02.06", "only-list-cached", FAIL, ("Stage v1 of {api_name}: GET /orders/{{orderId}} is not cached.",),
         build={"stage": stage_patches(cached=READ_CACHE[:1])}),
    Case("L02.06", "default-ttl", FAIL, ("GET /orders is cached for 300 s, expected 30",),
         build={"stage": stage_patches(ttl="300")}),
    # L02.07 usage plan and key
    Case("L02.07", "solution", PASS, ("Usage plan {plan_name} meters key {key_name} on stage v1",)),
    Case("L02.07", "no-api", FAIL, ("There is no REST API named {api_name}",), build={"api": False}),
    Case("L02.07", "no-plan", FAIL, ("There is no usage plan named {plan_name}",), build={"plan": False}),
    Case("L02.07", "other-stage", FAIL, ("Usage plan {plan_name} covers {api_id}/prod, not stage v1 of {api_name}",),
         build={"plan_stage": "prod"}),
    Case("L02.07", "no-throttle", FAIL, ("Usage plan {plan_name}: it has no throttle",), build={"plan_throttle": None}),
    Case("L02.07", "stage-sized-throttle", FAIL, ("its throttle is rate 100, burst 50, expected rate 10, burst 5",),
         build={"plan_throttle": {"rateLimit": 100.0, "burstLimit": 50}}),
    Case("L02.07", "weekly-quota", FAIL, ("its quota is 1000 per WEEK, expected 1000 per DAY",),
         build={"plan_quota": {"limit": 1000, "period": "WEEK"}}),
    Case("L02.07", "second-plan", FAIL, ("There are 2 usage plans named {plan_name} ({plan_id}, ", "delete all but one"),
         mutate=second_plan),
    Case("L02.07", "second-key", FAIL, ("There are 2 API keys named {key_name}", "delete all but one"), mutate=second_key),
    Case("L02.07", "no-key", FAIL, ("There is no API key named {key_name}",), build={"key": False}),
    Case("L02.07", "key-disabled", FAIL, ("API key {key_name} is disabled",), build={"key_enabled": False}),
    Case("L02.07", "key-not-attached", FAIL, ("API key {key_name} is not attached to usage plan {plan_name}",),
         build={"attach_key": False}),
    # L02.08 API keys required
    Case("L02.08", "solution", PASS, ("All 4 methods of REST API {api_name} require an API key",)),
    Case("L02.08", "no-api", FAIL, ("There is no REST API named {api_name}",), build={"api": False}),
    Case("L02.08", "get-order-open", FAIL, ("REST API {api_name}: GET /orders/{{orderId}} does not require an API key",),
         build={"contract_edit": edit_op("GET", "/orders/{orderId}", security=[])}),
    Case("L02.08", "writes-token-only", FAIL, ("POST /orders, DELETE /orders/{{orderId}} do not require an API key",),
         build={"contract_edit": lambda c: [edit_op(m, p, security=[{"cognito": []}])(c)
                                            for m, p in (("POST", "/orders"), ("DELETE", "/orders/{orderId}"))]}),
    # L02.09 request validation
    Case("L02.09", "solution", PASS, ("POST /orders of {api_name} validates bodies with body against NewOrder",)),
    Case("L02.09", "no-api", FAIL, ("There is no REST API named {api_name}",), build={"api": False}),
    Case("L02.09", "no-validator", FAIL, ("POST /orders of {api_name} has no request validator",),
         build={"contract_edit": edit_op("POST", "/orders", **{"x-amazon-apigateway-request-validator": None})}),
    Case("L02.09", "parameters-only", FAIL, ("uses request validator body, which does not validate the body",),
         build={"contract_edit": validators(validateRequestBody=False, validateRequestParameters=True)}),
    Case("L02.09", "inline-schema", FAIL, ("POST /orders of {api_name} has no application/json request model",),
         build={"contract_edit": inline_body}),
    Case("L02.09", "customer-optional", FAIL, ("Model NewOrder of {api_name} does not require customerId",),
         build={"contract_edit": new_order(required=["items"])}),
    # L02.10 the Cognito authorizer
    Case("L02.10", "solution", PASS, ("POST and DELETE of {api_name} require an ID token from user pool {pool_name}",)),
    Case("L02.10", "no-api", FAIL, ("There is no REST API named {api_name}",), build={"api": False}),
    Case("L02.10", "second-pool", FAIL, ("There are 2 Cognito user pools named {pool_name}",), mutate=second_pool),
    Case("L02.10", "no-pool", FAIL, ("There is no Cognito user pool named {pool_name}",), build={"cognito": False}),
    Case("L02.10", "delete-key-only", FAIL, ("DELETE /orders/{{orderId}} uses authorization NONE, not a Cognito authorizer",),
         build={"contract_edit": edit_op("DELETE", "/orders/{orderId}", security=[{"api_key": []}])}),
    Case("L02.10", "other-pool", FAIL, (f"POST /orders's authorizer cognito trusts {OTHER_POOL}, not {{pool_name}}",),
         build={"import_edit": cognito_extension(providerARNs=[OTHER_POOL])}),
    Case("L02.10", "token-in-other-header", FAIL, ("reads the token from method.request.header.X-Token",),
         build={"contract_edit": cognito_extension(identitySource="method.request.header.X-Token")}),
]

# Behaviour through the local gateway (the real local AWS process).
CASES += [
    # L02.11 403 without a key
    Case("L02.11", "solution", PASS, ("GET /orders on v1 without an API key was refused with 403 Forbidden",)),
    Case("L02.11", "no-stage", FAIL, ("REST API {api_name} has no stage v1",), build={"deploy": False}),
    Case("L02.11", "list-open", FAIL, ("GET /orders on v1 without an API key answered 200 {{\"orders\": []}}, expected 403",),
         build={"contract_edit": edit_op("GET", "/orders", security=[])}),
    Case("L02.11", "list-not-deployed", FAIL, ("GET /orders on v1 answered 403 {{\"message\": \"Missing Authentication Token\"}}: the method is not deployed",),
         build={"import_edit": drop_op("GET", "/orders")}),
    # L02.12 429 over the limit
    Case("L02.12", "solution", PASS, ("quick POST /orders (body not JSON) with the key were refused with 429: "
                                      "Too Many Requests",)),
    Case("L02.12", "no-key", FAIL, ("There is no enabled API key named {key_name}",), build={"key": False}),
    Case("L02.12", "key-not-on-plan", FAIL, ("answered 403: the key is not on a usage plan for stage v1",),
         build={"attach_key": False}),
    Case("L02.12", "no-plan-throttle", FAIL, ("30 quick POST /orders (body not JSON) with key {key_name} all answered 400; none was throttled",),
         build={"plan_throttle": None}),
    # L02.13 401 without a token
    Case("L02.13", "solution", PASS, ("POST /orders on v1 without an ID token was refused with 401 Unauthorized",)),
    Case("L02.13", "no-stage", FAIL, ("REST API {api_name} has no stage v1",), build={"deploy": False}),
    Case("L02.13", "post-key-only", FAIL, ("answered 400 {{\"message\": \"Invalid request body\"}}, expected 401",),
         build={"contract_edit": edit_op("POST", "/orders", security=[{"api_key": []}])}),
    # L02.14 400 for an invalid body
    Case("L02.14", "solution", PASS, ("POST /orders on v1 with a body missing customerId was refused with 400",)),
    Case("L02.14", "no-validator", FAIL, ("POST /orders of {api_name} has no request validator with a model", "(not sent)"),
         build={"contract_edit": edit_op("POST", "/orders", **{"x-amazon-apigateway-request-validator": None})}),
    Case("L02.14", "customer-optional", FAIL, ("with a body missing customerId answered 201 {{\"orderId\": \"o-example\"", "..., expected 400",),
         build={"contract_edit": new_order(required=["items"])}),
    Case("L02.14", "second-app-client", FAIL, ("There are 2 app clients in user pool {pool_name} named {client_name}",),
         mutate=second_app_client),
    Case("L02.14", "no-tester", FAIL, ("There is no SSM parameter {parameter}",), build={"tester": False}),
    Case("L02.14", "tester-not-json", FAIL, ("SSM parameter {parameter} is not JSON with a username and a password",),
         build={"tester_value": "tester / hunter2"}),
    Case("L02.14", "wrong-password", FAIL, ("The test user tester from {parameter} cannot sign in",),
         build={"tester_value": '{"username": "tester", "password": "Not-the-passw0rd!"}'}),
    Case("L02.14", "no-password-auth", FAIL, ("App client {client_name} does not allow ALLOW_USER_PASSWORD_AUTH",),
         build={"auth_flows": ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH"]}),
    # The local AWS refuses a secret client's sign-in without SECRET_HASH, as Cognito does (moto would not).
    Case("L02.14", "client-with-secret", FAIL, ("App client {client_name} has a client secret",),
         build={"client_secret": True}),
    Case("L02.14", "temporary-password-only", FAIL, ("The test user tester from {parameter} cannot sign in",),
         prepare=sign_in_challenged),
    Case("L02.14", "tester-plain-string", FAIL, ("SSM parameter {parameter} is a String", "SecureString"),
         build={"tester_type": "String"}),
    Case("L02.14", "authorizer-other-pool", FAIL, ("refused the test user's ID token with 401",),
         build={"import_edit": cognito_extension(providerARNs=[OTHER_POOL])}),
    # L02.15 200 for a good request
    Case("L02.15", "solution", PASS, ("GET /orders on v1 with the key answered 200 with 0 order(s)",)),
    Case("L02.15", "lambda-proxy-as-in-lab-03", PASS, ("GET /orders on v1 with the key answered 200 with 1 order(s)",),
         mutate=list_through_lambda),
    Case("L02.15", "no-key", FAIL, ("There is no enabled API key named {key_name}",), build={"key": False}),
    Case("L02.15", "mock-without-body", FAIL, ("GET /orders on v1 answered 200 but not with {{\"orders\": [...]}}",),
         build={"contract_edit": edit_op("GET", "/orders", **{"x-amazon-apigateway-integration": mock(200)})}),
    Case("L02.15", "key-not-on-plan", FAIL, ("GET /orders on v1 with the key answered 403 {{\"message\": \"Forbidden\"}}, expected 200",),
         build={"attach_key": False}),
    Case("L02.15", "quota-used-up", FAIL, ("answered 429 {{\"message\": \"Limit Exceeded\"}} even after waiting",),
         build={"plan_quota": {"limit": 1, "period": "DAY"}}, mutate=use_up_quota),
]

PASSING = covered(CASES, PASS)
FAILING = covered(CASES, FAIL)


@pytest.mark.parametrize("case", params([c for c in CASES if c.check not in BEHAVIOUR]))
def test_check(aws, case, monkeypatch):
    run_case(case, aws, build_lab02, monkeypatch)


@pytest.mark.server
@pytest.mark.parametrize("case", params([c for c in CASES if c.check in BEHAVIOUR]))
def test_behaviour(local_target, case, monkeypatch):
    run_case(case, local_target, build_lab02, monkeypatch)


def test_the_local_aws_keeps_cache_key_parameters(aws):
    """L02.06 grades them offline because labkit keeps what moto's put_integration drops."""
    state = build_lab02(aws)
    got = aws.client("apigateway").get_integration(restApiId=state["api_id"], resourceId=routes(aws)[
        ("GET", "/orders/{orderId}")]["resourceId"], httpMethod="GET")
    assert got["cacheKeyParameters"] == ["method.request.path.orderId"]


def test_whole_lab_on_the_solution_state(aws):
    """In-process moto cannot serve the stage, so the behaviour checks are graded in test_whole_lab_locally."""
    import checks

    build_lab02(aws)
    report = checks.grade([checks.REGISTRY[i] for i in sorted(checks.REGISTRY)
                           if i.startswith("L02.") and i not in BEHAVIOUR], aws)
    got = {r.check.id: r.status for r in report.results}
    assert got == {i: PASS for i in got}, report


@pytest.mark.server
def test_whole_lab_locally(local_target):
    assert_whole_lab(local_target, "02", build_lab02, skipped=set())


@pytest.mark.server
def test_behaviour_checks_create_nothing_and_leave_room_for_each_other(local_target):
    """Run back to back (L02.12 empties the key's bucket), the later checks wait out the throttle."""
    import checks

    build_lab02(local_target)
    for _ in range(2):
        report = checks.grade(checks.select("L02.11-L02.15"), local_target)
        assert {r.status for r in report.results} == {PASS}, report
