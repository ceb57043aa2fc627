"""The local API gateway and Lambda runner, through the real local AWS process."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from labkit import lambdas
from labkit.target import Target

HANDLER = '''
import json, os
import boto3

table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])

def handler(event, context):
    print("handling", event["httpMethod"], event["path"])
    if event["httpMethod"] == "POST":
        order = json.loads(event["body"])
        table.put_item(Item=order)
        return {"statusCode": 201, "body": json.dumps(order)}
    if event.get("pathParameters", {}) and event["pathParameters"].get("orderId") == "bad":
        return {"statusCode": 200, "body": {"not": "a string"}}
    if event.get("pathParameters", {}) and event["pathParameters"].get("orderId") == "drop":
        table.delete_item(Key={"orderId": "x"})  # not in the role's policy
    found = table.get_item(Key={"orderId": event["pathParameters"]["orderId"]}).get("Item")
    if not found:
        return {"statusCode": 404, "body": json.dumps({"message": "order not found"})}
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(found)}
'''


def http(url, method="GET", body=None, headers=None):
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null"), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null"), dict(error.headers)


@pytest.fixture
def api(local, tmp_path):
    """An orders API: GET /orders (MOCK), POST /orders and GET /orders/{orderId} (Lambda proxy)."""
    t = Target("local", prefix="gw", region="us-east-1")
    iam, lam, ddb, apigw, cognito = (t.client(s) for s in ("iam", "lambda", "dynamodb", "apigateway", "cognito-idp"))
    ddb.create_table(TableName="gw-orders", KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                      "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName="gw-fn", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    table_arn = "arn:aws:dynamodb:us-east-1:123456789012:table/gw-orders"
    iam.put_role_policy(RoleName="gw-fn", PolicyName="data", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["dynamodb:PutItem", "dynamodb:GetItem"], "Resource": table_arn},
        {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/gw-orders:*"}]}))
    t.client("logs").create_log_group(logGroupName="/aws/lambda/gw-orders")
    source = tmp_path / "orders"
    source.mkdir()
    (source / "handler.py").write_text(HANDLER)
    fn = lam.create_function(FunctionName="gw-orders", Runtime="python3.13", Role=role, Handler="handler.handler",
                             Code={"ZipFile": lambdas.package(source)}, Timeout=5,
                             Environment={"Variables": {"TABLE_NAME": "gw-orders"}})["FunctionArn"]
    pool = cognito.create_user_pool(PoolName="gw-users")["UserPool"]
    client_id = cognito.create_user_pool_client(UserPoolId=pool["Id"], ClientName="web",
                                                ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])["UserPoolClient"]["ClientId"]
    cognito.admin_create_user(UserPoolId=pool["Id"], Username="ada", TemporaryPassword="Temp-Passw0rd!",
                              MessageAction="SUPPRESS")
    cognito.admin_set_user_password(UserPoolId=pool["Id"], Username="ada", Password="Real-Passw0rd!", Permanent=True)
    token = cognito.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
                                  AuthParameters={"USERNAME": "ada", "PASSWORD": "Real-Passw0rd!"})["AuthenticationResult"]["IdToken"]

    api_id = apigw.create_rest_api(name="gw-orders-api")["id"]
    root = apigw.get_resources(restApiId=api_id)["items"][0]["id"]
    orders = apigw.create_resource(restApiId=api_id, parentId=root, pathPart="orders")["id"]
    one = apigw.create_resource(restApiId=api_id, parentId=orders, pathPart="{orderId}")["id"]
    authorizer = apigw.create_authorizer(restApiId=api_id, name="gw-cognito", type="COGNITO_USER_POOLS",
                                         providerARNs=[pool["Arn"]], identitySource="method.request.header.Authorization")["id"]
    apigw.create_model(restApiId=api_id, name="NewOrder", contentType="application/json", schema=json.dumps(
        {"type": "object", "required": ["orderId"], "properties": {"orderId": {"type": "string", "minLength": 1}}}))
    validator = apigw.create_request_validator(restApiId=api_id, name="body", validateRequestBody=True)["id"]
    apigw.put_method(restApiId=api_id, resourceId=orders, httpMethod="GET", authorizationType="NONE", apiKeyRequired=True)
    apigw.put_integration(restApiId=api_id, resourceId=orders, httpMethod="GET", type="MOCK",
                          requestTemplates={"application/json": '{"statusCode": 200}'})
    apigw.put_integration_response(restApiId=api_id, resourceId=orders, httpMethod="GET", statusCode="200",
                                   responseTemplates={"application/json": '{"orders": []}'})
    apigw.put_method(restApiId=api_id, resourceId=orders, httpMethod="POST", authorizationType="COGNITO_USER_POOLS",
                     authorizerId=authorizer, apiKeyRequired=True, requestValidatorId=validator,
                     requestModels={"application/json": "NewOrder"})
    apigw.put_method(restApiId=api_id, resourceId=one, httpMethod="GET", authorizationType="NONE", apiKeyRequired=True)
    uri = f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{fn}/invocations"
    for resource, verb in ((orders, "POST"), (one, "GET")):
        apigw.put_integration(restApiId=api_id, resourceId=resource, httpMethod=verb, type="AWS_PROXY",
                              integrationHttpMethod="POST", uri=uri)
    lam.add_permission(FunctionName="gw-orders", StatementId="apigw", Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com",
                       SourceArn=f"arn:aws:execute-api:us-east-1:123456789012:{api_id}/*")
    apigw.create_deployment(restApiId=api_id, stageName="v1")
    key = apigw.create_api_key(name="gw-key", enabled=True)
    plan = apigw.create_usage_plan(name="gw-plan", apiStages=[{"apiId": api_id, "stage": "v1"}],
                                   throttle={"rateLimit": 10, "burstLimit": 5}, quota={"limit": 1000, "period": "DAY"})
    apigw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")

    class Api:
        url = t.invoke_url(api_id, "v1")
        id, plan_id = api_id, plan["id"]
        headers = {"x-api-key": key["value"]}
        auth = {"x-api-key": key["value"], "Authorization": token}
        target, folder = t, source
    return Api


def test_invoke_url_is_served_and_routes_to_mock_and_lambda(api):
    assert api.url.startswith("http://localhost:") and api.url.endswith(f"/_api/{api.id}/v1")
    assert http(api.url + "/orders", headers=api.headers)[:2] == (200, {"orders": []})
    status, body, _ = http(api.url + "/orders", "POST", {"orderId": "o-1", "item": "tea"}, api.auth)
    assert (status, body) == (201, {"orderId": "o-1", "item": "tea"}), body
    assert http(api.url + "/orders/o-1", headers=api.headers)[:2] == (200, {"orderId": "o-1", "item": "tea"})
    assert http(api.url + "/orders/nope", headers=api.headers)[:2] == (404, {"message": "order not found"})


def test_gateway_answers_with_api_gateways_own_errors(api):
    status, body, headers = http(api.url + "/nothing-here", headers=api.headers)
    assert (status, body["message"]) == (403, "Missing Authentication Token")
    assert headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert http(api.url + "/orders")[:2] == (403, {"message": "Forbidden"})  # no API key
    assert http(api.url + "/orders", headers={"x-api-key": "not-a-key"})[0] == 403
    assert http(api.url + "/orders", "POST", {"orderId": "o-2"}, api.headers)[:2] == (401, {"message": "Unauthorized"})
    bad_token = dict(api.auth, Authorization=api.auth["Authorization"][:-4] + "AAAA")
    assert http(api.url + "/orders", "POST", {"orderId": "o-2"}, bad_token)[0] == 401
    assert http(api.url + "/orders", "POST", {"item": "no id"}, api.auth)[:2] == (400, {"message": "Invalid request body"})
    status, body, _ = http(api.url + "/orders/bad", headers=api.headers)  # body is not a string
    assert (status, body["message"]) == (502, "Internal server error")
    assert "Malformed Lambda proxy response" in body["localNote"]


def test_usage_plan_throttles_then_the_fix_takes_effect_without_restart(api):
    statuses = [http(api.url + "/orders", headers=api.headers)[0] for _ in range(12)]
    assert statuses[:5] == [200] * 5 and 429 in statuses
    apigw = api.target.client("apigateway")
    apigw.update_usage_plan(usagePlanId=api.plan_id, patchOperations=[
        {"op": "replace", "path": "/throttle/burstLimit", "value": "100"},
        {"op": "replace", "path": "/throttle/rateLimit", "value": "100"}])
    assert [http(api.url + "/orders", headers=api.headers)[0] for _ in range(12)] == [200] * 12


def test_quota_runs_out_with_limit_exceeded(api):
    api.target.client("apigateway").update_usage_plan(usagePlanId=api.plan_id, patchOperations=[
        {"op": "replace", "path": "/quota/limit", "value": "2"}])
    results = [http(api.url + "/orders", headers=api.headers)[:2] for _ in range(3)]
    assert [s for s, _ in results] == [200, 200, 429]
    assert results[2][1] == {"message": "Limit Exceeded"}


def test_missing_permission_is_a_500_like_aws(api):
    api.target.client("lambda").remove_permission(FunctionName="gw-orders", StatementId="apigw")
    status, body, _ = http(api.url + "/orders/o-1", headers=api.headers)
    assert (status, body["message"]) == (500, "Internal server error")
    assert "Invalid permissions on Lambda function" in body["localNote"]


def test_role_policy_is_enforced_inside_the_handler(api):
    status, body, _ = http(api.url + "/orders/drop", headers=api.headers)
    assert status == 502 and "AccessDenied" in body["localNote"]


def test_handler_logs_reach_the_functions_log_group(api):
    http(api.url + "/orders/o-9", headers=api.headers)
    logs = api.target.client("logs")
    deadline = time.time() + 5
    messages: list[str] = []
    while time.time() < deadline and not any("handling GET /orders/o-9" in m for m in messages):
        streams = logs.describe_log_streams(logGroupName="/aws/lambda/gw-orders").get("logStreams", [])
        messages = [e["message"] for s in streams for e in logs.get_log_events(
            logGroupName="/aws/lambda/gw-orders", logStreamName=s["logStreamName"])["events"]]
        time.sleep(0.1)
    assert any("handling GET /orders/o-9" in m for m in messages)
    assert any(m.startswith("REPORT RequestId:") for m in messages)


def test_changed_source_is_refused_until_redeployed(api):
    lam = api.target.client("lambda")
    (api.folder / "handler.py").write_text(HANDLER + "\n# edited\n")
    result = lam.invoke(FunctionName="gw-orders", Payload=json.dumps({"httpMethod": "GET", "path": "/orders/x",
                                                                       "pathParameters": {"orderId": "x"}}))
    payload = json.loads(result["Payload"].read())
    assert result["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Labkit.DeployedCodeDiffers"
    assert "Deployed code differs from source: handler.py" in payload["errorMessage"]
    lam.update_function_code(FunctionName="gw-orders", ZipFile=lambdas.package(api.folder))
    result = lam.invoke(FunctionName="gw-orders", Payload=json.dumps({"httpMethod": "GET", "path": "/orders/x",
                                                                       "pathParameters": {"orderId": "x"}}))
    assert "FunctionError" not in result and json.loads(result["Payload"].read())["statusCode"] == 404


def test_unhandled_error_and_timeout_come_back_in_lambdas_shapes(local, tmp_path: Path):
    t = Target("local", prefix="gw", region="us-east-1")
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow" / "app.py").write_text(
        "import time\ndef main(event, context):\n    if event.get('fail'):\n        raise KeyError('sku')\n"
        "    time.sleep(event.get('sleep', 0))\n    return {'left': context.get_remaining_time_in_millis() > 0}\n")
    lam = t.client("lambda")
    role = t.client("iam").create_role(RoleName="gw-slow", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    lam.create_function(FunctionName="gw-slow", Runtime="python3.12", Role=role,
                        Handler="app.main", Code={"ZipFile": lambdas.package(tmp_path / "slow")}, Timeout=1)
    ok = lam.invoke(FunctionName="gw-slow", Payload=b"{}")
    assert json.loads(ok["Payload"].read()) == {"left": True}
    failed = lam.invoke(FunctionName="gw-slow", Payload=json.dumps({"fail": True}))
    payload = json.loads(failed["Payload"].read())
    assert failed["FunctionError"] == "Unhandled" and payload["errorType"] == "KeyError"
    assert payload["errorMessage"] == "'sku'" and payload["stackTrace"]
    slow = lam.invoke(FunctionName="gw-slow", Payload=json.dumps({"sleep": 3}))
    assert "Task timed out after 1.00 seconds" in json.loads(slow["Payload"].read())["errorMessage"]


def test_package_is_deterministic_and_drift_names_the_file(tmp_path):
    (tmp_path / "handler.py").write_text("x = 1\n")
    first = lambdas.package(tmp_path)
    assert lambdas.package(tmp_path) == first and lambdas.drift(first) is None
    (tmp_path / "handler.py").write_text("x = 2\n")
    assert "handler.py" in lambdas.drift(first)


def test_labkit_api_prints_one_line_per_stage(api, capsys):
    from labkit.__main__ import main

    assert main(["api"]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert lines == [["gw-orders-api", "v1", api.url]]


def test_routes_prefer_static_segments_then_parameters_then_greedy_proxy():
    from labkit.localaws.extensions.gateway import Route, match_route

    routes = [Route("/", "r", {}), Route("/orders", "a", {}), Route("/orders/{orderId}", "b", {}),
              Route("/orders/latest", "c", {}), Route("/{proxy+}", "d", {})]
    assert match_route(routes, "/orders/latest")[0].resource_id == "c"
    assert match_route(routes, "/orders/o%2D1") == (routes[2], {"orderId": "o-1"})
    assert match_route(routes, "/files/a/b.txt") == (routes[4], {"proxy": "files/a/b.txt"})
    assert match_route(routes, "/")[0].resource_id == "r"
    assert match_route([Route("/orders", "a", {})], "/orders/x") is None


def test_token_bucket_allows_the_burst_then_refills_at_the_rate():
    from labkit.localaws.extensions.gateway import Bucket

    bucket = Bucket(rate=1000, burst=3)
    assert [bucket.take() for _ in range(4)][:3] == [True, True, True]
    time.sleep(0.01)
    assert bucket.take()
    assert not Bucket(rate=0, burst=0).take()


def test_invoke_permission_must_cover_the_methods_source_arn():
    from labkit.localaws.extensions.gateway import may_invoke

    arn = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/GET/orders/{orderId}"
    allow = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"},
                            "Action": "lambda:InvokeFunction",
                            "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:execute-api:us-east-1:123456789012:abc123/*"}}}]}
    assert may_invoke(allow, arn)
    other_api = json.loads(json.dumps(allow).replace("abc123/*", "zzz999/*"))
    assert not may_invoke(other_api, arn)
    assert not may_invoke(None, arn)
    # IAM's wildcards are * and ? only: brackets are literal characters (fnmatch would read them as a set)
    bracket = json.loads(json.dumps(allow).replace("abc123/*", "abc12[3]/*"))
    assert not may_invoke(bracket, arn)
    # an explicit Deny wins over the Allow
    denied = {"Statement": allow["Statement"] + [{"Effect": "Deny", "Principal": "*", "Action": "lambda:*"}]}
    assert not may_invoke(denied, arn)


def test_proxy_responses_are_checked_like_api_gateway_does():
    from labkit.localaws.extensions.gateway import proxy_response

    assert proxy_response({"statusCode": 201, "body": "{}"}).status == 201
    assert proxy_response({"statusCode": 200, "body": {"a": 1}}).status == 502
    assert proxy_response({"body": "x"}).status == 502
    assert proxy_response("ok").status == 502
    encoded = proxy_response({"statusCode": 200, "body": "aGk=", "isBase64Encoded": True})
    assert encoded.body == b"hi"
    assert proxy_response({"statusCode": 200, "headers": None, "multiValueHeaders": None, "body": None}).status == 200
    merged = proxy_response({"statusCode": 200, "headers": {"A": "1"}, "multiValueHeaders": {"Set-Cookie": ["a", "b"]}})
    assert merged.headers == {"A": "1", "Set-Cookie": "a, b"}


# Each answer API Gateway (REST) refuses with 502 "Malformed Lambda proxy response" instead of coercing it.
MALFORMED = {
    "header-int": ({"statusCode": 200, "headers": {"Content-Length": 2}, "body": "{}"}, "Content-Length"),
    "header-bool": ({"statusCode": 200, "headers": {"X-Cached": True}, "body": "{}"}, "X-Cached"),
    "header-null": ({"statusCode": 200, "headers": {"X-Note": None}, "body": "{}"}, "X-Note"),
    "status-string": ({"statusCode": "200", "body": "{}"}, "'200'"),
    "status-bool": ({"statusCode": True, "body": "{}"}, "True"),
    "status-float": ({"statusCode": 200.0, "body": "{}"}, "200.0"),
    "body-dict": ({"statusCode": 200, "body": {"a": 1}}, "json.dumps"),
    "body-number": ({"statusCode": 200, "body": 3}, "not a string"),
    "unknown-key": ({"statusCode": 200, "body": "{}", "message": "ok"}, "message"),
    "multi-value-string": ({"statusCode": 200, "multiValueHeaders": {"Set-Cookie": "a=1"}}, "Set-Cookie"),
    "multi-value-ints": ({"statusCode": 200, "multiValueHeaders": {"X-N": [1, 2]}}, "X-N"),
    "multi-value-not-object": ({"statusCode": 200, "multiValueHeaders": ["a"]}, "multiValueHeaders"),
    "headers-list": ({"statusCode": 200, "headers": [["A", "1"]]}, "headers are not an object"),
    "base64-flag-string": ({"statusCode": 200, "body": "aGk=", "isBase64Encoded": "true"}, "isBase64Encoded"),
    "base64-not-base64": ({"statusCode": 200, "body": "not base64!", "isBase64Encoded": True}, "base64"),
}


@pytest.mark.parametrize("answer,named", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_proxy_responses_are_502_as_on_api_gateway(answer, named):
    from labkit.localaws.extensions.gateway import proxy_response

    response = proxy_response(answer)
    assert response.status == 502
    note = json.loads(response.body)["localNote"]
    assert note.startswith("Malformed Lambda proxy response") and named in note


def test_bodies_are_validated_against_models_that_reference_each_other():
    from labkit.localaws.extensions.gateway import body_is_valid

    models = {"Item": {"type": "object", "required": ["sku"], "properties": {"sku": {"type": "string"}}},
              "NewOrder": {"type": "object", "required": ["items"], "properties": {"items": {
                  "type": "array", "minItems": 1,
                  "items": {"$ref": "https://apigateway.amazonaws.com/restapis/abc/models/Item"}}}}}
    assert body_is_valid(b'{"items": [{"sku": "tea"}]}', "NewOrder", models)
    assert not body_is_valid(b'{"items": [{"qty": 1}]}', "NewOrder", models)
    assert not body_is_valid(b'{"items": []}', "NewOrder", models)
    assert not body_is_valid(b"not json", "NewOrder", models)
    assert not body_is_valid(b"{}", "Missing", models)


def test_stage_cache_keys_on_the_resource_and_declared_parameters(api):
    apigw = api.target.client("apigateway")
    apigw.update_stage(restApiId=api.id, stageName="v1", patchOperations=[
        {"op": "replace", "path": "/cacheClusterEnabled", "value": "true"},
        {"op": "replace", "path": "/~1orders~1{orderId}/GET/caching/enabled", "value": "true"},
        {"op": "replace", "path": "/~1orders~1{orderId}/GET/caching/ttlInSeconds", "value": "60"}])
    assert http(api.url + "/orders/o-7", headers=api.headers)[0] == 404  # errors are not cached
    assert http(api.url + "/orders", "POST", {"orderId": "o-7", "v": "1"}, api.auth)[0] == 201
    assert http(api.url + "/orders/o-7", headers=api.headers)[1] == {"orderId": "o-7", "v": "1"}
    api.target.client("dynamodb").put_item(TableName="gw-orders", Item={"orderId": {"S": "o-7"}, "v": {"S": "2"}})
    assert http(api.url + "/orders/o-7", headers=api.headers)[1] == {"orderId": "o-7", "v": "1"}  # from the cache
    # No cache key parameter: like API Gateway, every order id shares the resource's one entry.
    assert http(api.url + "/orders/o-8", headers=api.headers)[1] == {"orderId": "o-7", "v": "1"}
    one = next(r["id"] for r in apigw.get_resources(restApiId=api.id)["items"] if r["path"] == "/orders/{orderId}")
    fn = api.target.client("lambda").get_function(FunctionName="gw-orders")["Configuration"]["FunctionArn"]
    apigw.put_integration(restApiId=api.id, resourceId=one, httpMethod="GET", type="AWS_PROXY", integrationHttpMethod="POST",
                          uri=f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{fn}/invocations",
                          cacheKeyParameters=["method.request.path.orderId"])
    apigw.create_deployment(restApiId=api.id, stageName="v1")
    assert http(api.url + "/orders/o-8", headers=api.headers)[0] == 404  # keyed on orderId: its own entry
    assert http(api.url + "/orders/o-7", headers=api.headers)[1] == {"orderId": "o-7", "v": "2"}  # a fresh entry


def test_orders_written_by_the_handler_survive_a_snapshot_restore(api):
    from labkit import localaws

    assert http(api.url + "/orders", "POST", {"orderId": "o-5", "item": "tea"}, api.auth)[0] == 201
    localaws.save("with-order")
    localaws.reset()
    localaws.restore("with-order")
    # The handler's own write was signed by a role session that no longer exists; it replays anyway.
    assert http(api.url + "/orders/o-5", headers=api.headers)[:2] == (200, {"orderId": "o-5", "item": "tea"})


def test_a_stage_serves_its_deployment_until_the_next_one(api):
    apigw = api.target.client("apigateway")
    orders = next(r["id"] for r in apigw.get_resources(restApiId=api.id)["items"] if r["path"] == "/orders")
    apigw.put_integration_response(restApiId=api.id, resourceId=orders, httpMethod="GET", statusCode="200",
                                   responseTemplates={"application/json": '{"orders": ["changed"]}'})
    assert http(api.url + "/orders", headers=api.headers)[1] == {"orders": []}  # not deployed yet
    apigw.create_deployment(restApiId=api.id, stageName="v1")
    assert http(api.url + "/orders", headers=api.headers)[1] == {"orders": ["changed"]}
    # Redeploying kept the usage plan's stage: the key still works, and so do the throttles.
    assert apigw.get_stage(restApiId=api.id, stageName="v1")["deploymentId"]


def test_a_throttled_function_is_api_gateways_500_not_a_429(api):
    lam = api.target.client("lambda")
    lam.put_function_concurrency(FunctionName="gw-orders", ReservedConcurrentExecutions=0)
    status, body, headers = http(api.url + "/orders/o-1", headers=api.headers)
    assert (status, body["message"]) == (500, "Internal server error")
    assert "throttled by Lambda (ReservedFunctionConcurrentInvocationLimitExceeded)" in body["localNote"]
    lam.delete_function_concurrency(FunctionName="gw-orders")
    assert http(api.url + "/orders/o-1", headers=api.headers)[0] == 404  # served again: no such order yet
