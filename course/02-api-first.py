# %% [markdown]
# # Lab 02: API first
#
# Every service of the application is reached through an API. In this lab
# you write that API down first, as an **OpenAPI contract**, and let
# **Amazon API Gateway** build and guard it: API keys, throttling, a cache
# for reads, request validation and Cognito sign-in all act before a request
# reaches any code. The methods answer with canned (mock) responses for now;
# lab 03 puts a Lambda function behind them.
#
# You will build, step by step:
#
# 1. a Cognito user pool, an app client and a test user;
# 2. the contract, saved as `work/orders-api.yaml` and validated;
# 3. the REST API, imported from the contract;
# 4. stage `v1`, with throttling and a cache for the two reads;
# 5. a usage plan and an API key;
# 6. requests that show each rule at work.
#
# Concepts: [Lab 02 in the course docs](../site/labs/02-api-first.md).
# This lab starts from the end of lab 01; `python -m labkit start 02` puts
# the local AWS there.
#
# **On a live account** the stage cache is billed by the hour (about
# 0.02 USD an hour for 0.5 GB, whether you use it or not); everything else
# here costs well under one cent. Run `python -m labkit cleanup --live` when
# you are done (see the cost table in the docs).

# %%
import json
import secrets
import urllib.error
import urllib.request

import yaml

import checks
import labkit
from labkit.config import work_dir
from labkit.openapi import import_api, load_contract, validate_contract

t = labkit.target()
idp = t.client("cognito-idp")
ssm = t.client("ssm")
apigw = t.client("apigateway")
print("region:", t.region, " prefix:", t.prefix)

# %% [markdown]
# ## 1. Users who can sign in
#
# Writes to the API will need a signed-in user
# ([authorizers](../site/labs/02-api-first.md#authorizers)). Create:
#
# - a user pool `<prefix>-users`, tagged with `t.tag_map("02")`;
# - an app client `<prefix>-orders-web` **without** a client secret (a browser
#   app cannot keep one) that allows `ALLOW_USER_PASSWORD_AUTH` and
#   `ALLOW_REFRESH_TOKEN_AUTH`;
# - a test user `tester`: `admin_create_user` with `MessageAction="SUPPRESS"`
#   (no invitation e-mail), then `admin_set_user_password` with the strong
#   random `password` made for you below and `Permanent=True`;
# - an SSM `SecureString` parameter `/<prefix>/orders/tester` holding
#   `{"username": ..., "password": ...}` as JSON. The checks sign in with it.
#
# Look for the pool and the client before creating them, so the cell can run
# twice.

# %%
pool_name = t.name("users")
client_name = t.name("orders-web")
tester = "tester"
tester_parameter = f"/{t.prefix}/orders/tester"
# Random, plus one character of each class the pool's default password policy asks for.
password = secrets.token_urlsafe(24) + "aA1!"
# TODO: find or create the pool (pool_id, pool_arn) and the app client (client_id); create or update the test user with `password`; store the credentials in SSM.
# BEGIN SOLUTION
pools = [p for page in idp.get_paginator("list_user_pools").paginate(MaxResults=60)
         for p in page["UserPools"] if p["Name"] == pool_name]
if pools:
    pool_id = pools[0]["Id"]
else:
    pool_id = idp.create_user_pool(PoolName=pool_name, UserPoolTags=t.tag_map("02"))["UserPool"]["Id"]
pool_arn = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["Arn"]

app_clients = [c for c in idp.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
               if c["ClientName"] == client_name]
if app_clients:
    client_id = app_clients[0]["ClientId"]
else:
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName=client_name, GenerateSecret=False,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]

try:
    idp.admin_create_user(UserPoolId=pool_id, Username=tester, MessageAction="SUPPRESS",
                          TemporaryPassword=secrets.token_urlsafe(24) + "aA1!")
except idp.exceptions.UsernameExistsException:
    pass  # re-running: keep the user, give it the new password
idp.admin_set_user_password(UserPoolId=pool_id, Username=tester, Password=password, Permanent=True)
ssm.put_parameter(Name=tester_parameter, Type="SecureString", Overwrite=True,
                  Value=json.dumps({"username": tester, "password": password}))
ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=tester_parameter, Tags=t.tags("02"))
# END SOLUTION
print("pool:", pool_arn)

# %% [markdown]
# Sign the test user in the way the single-page app will, and keep the
# **ID token**: it is what a write sends in the `Authorization` header.

# %%
auth = idp.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
                         AuthParameters={"USERNAME": tester, "PASSWORD": password})
id_token = auth["AuthenticationResult"]["IdToken"]
print("signed in; the ID token starts", id_token[:24], "...")

# %% [markdown]
# ## 2. The contract
#
# Write the contract as a Python dict; the next cell saves it as YAML and
# validates it. It needs ([the contract](../site/labs/02-api-first.md#the-contract)):
#
# - `openapi: 3.0.3`; `info` with `title` **`<prefix>-orders-api`** (the
#   import names the API after it), a `version` and a `description`;
# - the four operations, each with its `operationId` and `responses`:
#   `GET /orders` (`listOrders`), `POST /orders` (`createOrder`, body
#   `$ref` to `NewOrder`), `GET /orders/{orderId}` (`getOrder`) and
#   `DELETE /orders/{orderId}` (`deleteOrder`); the two `{orderId}`
#   operations declare the path parameter;
# - `components.schemas`: `NewOrder` and `Order`, as in the docs;
# - `components.securitySchemes`: `api_key` and `cognito` (with your
#   `pool_arn`). Reads list `api_key`; writes list `api_key` **and**
#   `cognito` in one entry;
# - a request validator `body` (`x-amazon-apigateway-request-validators`),
#   used by `POST /orders`;
# - an `x-amazon-apigateway-integration` on every operation. `mock()` below
#   builds a MOCK integration that answers a status and a body. Use 200
#   `{"orders": []}` for the list, 201 `CANNED_ORDER` for the create, 200
#   `CANNED_ORDER` for the read and 204 for the delete. The read's
#   integration also lists `cacheKeyParameters:
#   ["method.request.path.orderId"]` (pass it to `mock` as a keyword).

# %%
CANNED_ORDER = {"orderId": "o-example", "customerId": "c-42", "items": [{"sku": "BOOK-1", "quantity": 2}],
                "status": "NEW", "createdAt": "2026-01-01T00:00:00Z"}


def mock(status, body=None, **extra):
    """An x-amazon-apigateway-integration answering `status` (and `body`) from API Gateway itself."""
    response = {"statusCode": str(status)}
    if body is not None:
        response["responseTemplates"] = {"application/json": json.dumps(body)}
    return {"type": "mock", "requestTemplates": {"application/json": json.dumps({"statusCode": status})},
            "passthroughBehavior": "when_no_match", "responses": {"default": response}, **extra}


# TODO: set `contract` to the dict described above.
# BEGIN SOLUTION
order_ref = {"$ref": "#/components/schemas/Order"}
order_id_parameter = {"name": "orderId", "in": "path", "required": True, "schema": {"type": "string"}}
read_security = [{"api_key": []}]
write_security = [{"api_key": [], "cognito": []}]
contract = {
    "openapi": "3.0.3",
    "info": {"title": t.name("orders-api"), "version": "1.0.0",
             "description": "Orders: create, list, read and delete orders."},
    "x-amazon-apigateway-request-validators": {
        "body": {"validateRequestBody": True, "validateRequestParameters": False}},
    "paths": {
        "/orders": {
            "get": {
                "operationId": "listOrders", "summary": "List orders", "security": read_security,
                "responses": {"200": {"description": "The orders", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"orders": {"type": "array", "items": order_ref}}}}}}},
                "x-amazon-apigateway-integration": mock(200, {"orders": []}),
            },
            "post": {
                "operationId": "createOrder", "summary": "Create an order", "security": write_security,
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/NewOrder"}}}},
                "responses": {"201": {"description": "The new order",
                                      "content": {"application/json": {"schema": order_ref}}},
                              "400": {"description": "The body is not a NewOrder"},
                              "401": {"description": "No valid ID token"}},
                "x-amazon-apigateway-request-validator": "body",
                "x-amazon-apigateway-integration": mock(201, CANNED_ORDER),
            },
        },
        "/orders/{orderId}": {
            "get": {
                "operationId": "getOrder", "summary": "Read one order", "security": read_security,
                "parameters": [order_id_parameter],
                "responses": {"200": {"description": "The order",
                                      "content": {"application/json": {"schema": order_ref}}},
                              "404": {"description": "No such order"}},
                "x-amazon-apigateway-integration": mock(
                    200, CANNED_ORDER, cacheKeyParameters=["method.request.path.orderId"]),
            },
            "delete": {
                "operationId": "deleteOrder", "summary": "Delete one order", "security": write_security,
                "parameters": [order_id_parameter],
                "responses": {"204": {"description": "Deleted"}, "401": {"description": "No valid ID token"}},
                "x-amazon-apigateway-integration": mock(204),
            },
        },
    },
    "components": {
        "schemas": {
            "NewOrder": {
                "type": "object",
                "required": ["customerId", "items"],
                "properties": {
                    "customerId": {"type": "string"},
                    "items": {"type": "array", "minItems": 1, "items": {
                        "type": "object", "required": ["sku", "quantity"],
                        "properties": {"sku": {"type": "string"}, "quantity": {"type": "integer", "minimum": 1}}}},
                },
            },
            "Order": {"allOf": [
                {"$ref": "#/components/schemas/NewOrder"},
                {"type": "object", "required": ["orderId", "status", "createdAt"], "properties": {
                    "orderId": {"type": "string"}, "status": {"type": "string"},
                    "createdAt": {"type": "string", "format": "date-time"}}},
            ]},
        },
        "securitySchemes": {
            "api_key": {"type": "apiKey", "name": "x-api-key", "in": "header"},
            "cognito": {
                "type": "apiKey", "name": "Authorization", "in": "header",
                "x-amazon-apigateway-authtype": "cognito_user_pools",
                "x-amazon-apigateway-authorizer": {"type": "cognito_user_pools", "providerARNs": [pool_arn]},
            },
        },
    },
}
# END SOLUTION

# %%
contract_path = work_dir() / "orders-api.yaml"
contract_path.write_text(yaml.safe_dump(contract, sort_keys=False))
validate_contract(load_contract(contract_path))  # raises a one-sentence error naming the first problem
print("saved and valid:", contract_path)

# %%
checks.run("L02.01-L02.02")

# %% [markdown]
# ## 3. The REST API
#
# Create the API from the contract with
# `import_api(t, contract, tags=t.tag_map("02"))`; it returns the API's id
# ([the REST API](../site/labs/02-api-first.md#the-rest-api)). Importing
# again makes a *second* API with the same name, so first delete any API
# named `<prefix>-orders-api`. A usage plan that still lists an API's stage
# blocks deleting it: remove that stage from the plan first
# (`update_usage_plan` with `{"op": "remove", "path": "/apiStages", "value": "<api id>:<stage>"}`).

# %%
api_name = t.name("orders-api")
# TODO: delete any API named api_name (after removing its stages from usage plans), then import the contract as api_id.
# BEGIN SOLUTION
old_ids = [a["id"] for page in apigw.get_paginator("get_rest_apis").paginate()
           for a in page["items"] if a["name"] == api_name]
for old_id in old_ids:
    for plan in apigw.get_usage_plans()["items"]:
        for api_stage in plan.get("apiStages", []):
            if api_stage["apiId"] == old_id:
                apigw.update_usage_plan(usagePlanId=plan["id"], patchOperations=[
                    {"op": "remove", "path": "/apiStages", "value": f"{old_id}:{api_stage['stage']}"}])
    apigw.delete_rest_api(restApiId=old_id)
api_id = import_api(t, contract, tags=t.tag_map("02"))
# END SOLUTION
print("API:", api_id)

# %%
checks.run("L02.03-L02.04")

# %% [markdown]
# The import also turned the contract's security schemes and validator into
# method settings: API keys on every method, the `cognito` authorizer on the
# writes and the `body` validator with the `NewOrder` model on
# `POST /orders`.

# %%
checks.run("L02.08-L02.10")

# %% [markdown]
# ## 4. Stage `v1`: throttling and a cache
#
# Deploy the API to stage `v1` (`create_deployment`), then set the stage's
# method settings with one `update_stage` call
# ([stages and throttling](../site/labs/02-api-first.md#stages-and-throttling),
# [caching](../site/labs/02-api-first.md#caching)):
#
# - every method (`/*/*`): throttling rate 100, burst 50;
# - a 0.5 GB cache: `/cacheClusterEnabled` `true`, `/cacheClusterSize` `0.5`;
# - caching on for the two `GET` methods only (`/~1orders/GET` and
#   `/~1orders~1{orderId}/GET`), with a TTL of 30 seconds.
#
# Patch values are always strings.

# %%
# TODO: deploy api_id to stage v1 and apply the throttling and caching settings.
# BEGIN SOLUTION
apigw.create_deployment(restApiId=api_id, stageName="v1", description="lab 02")
stage_ops = [
    {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "100"},
    {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": "50"},
    {"op": "replace", "path": "/cacheClusterEnabled", "value": "true"},
    {"op": "replace", "path": "/cacheClusterSize", "value": "0.5"},
]
for method in ("/~1orders/GET", "/~1orders~1{orderId}/GET"):
    stage_ops += [{"op": "replace", "path": f"{method}/caching/enabled", "value": "true"},
                  {"op": "replace", "path": f"{method}/caching/ttlInSeconds", "value": "30"}]
apigw.update_stage(restApiId=api_id, stageName="v1", patchOperations=stage_ops)
# END SOLUTION
print("stage v1:", t.invoke_url(api_id, "v1"))

# %%
checks.run("L02.05-L02.06")

# %% [markdown]
# The cache key matters as much as the TTL: the local gateway, like API
# Gateway, keys `GET /orders/{orderId}` on the resource plus the declared
# `cacheKeyParameters`. Leave `method.request.path.orderId` out and every
# order id would be answered with the first order read.
#
# ## 5. A usage plan and an API key
#
# Create the usage plan `<prefix>-orders-plan` on stage `v1` of your API:
# throttle rate 10 and burst 5, quota 1000 requests per `DAY`, tagged. Then
# create the enabled API key `<prefix>-orders-key` and attach it to the plan
# ([usage plans and API keys](../site/labs/02-api-first.md#usage-plans-and-api-keys)).
# When you re-run the cell, find both first: update the plan (and add your
# API's stage to it with `{"op": "add", "path": "/apiStages", "value": "<api id>:v1"}`)
# instead of making another one. Keep the key's value as `api_key`.

# %%
plan_name = t.name("orders-plan")
key_name = t.name("orders-key")
# TODO: find or create the usage plan (plan) and the API key (key), attach the key to the plan, and set api_key to its value.
# BEGIN SOLUTION
plan = next((p for p in apigw.get_usage_plans()["items"] if p["name"] == plan_name), None)
if plan is None:
    plan = apigw.create_usage_plan(name=plan_name, apiStages=[{"apiId": api_id, "stage": "v1"}],
                                   throttle={"rateLimit": 10.0, "burstLimit": 5},
                                   quota={"limit": 1000, "period": "DAY"}, tags=t.tag_map("02"))
else:
    plan_ops = [{"op": "replace", "path": "/throttle/rateLimit", "value": "10"},
                {"op": "replace", "path": "/throttle/burstLimit", "value": "5"},
                {"op": "replace", "path": "/quota/limit", "value": "1000"},
                {"op": "replace", "path": "/quota/period", "value": "DAY"}]
    if not any(s["apiId"] == api_id and s["stage"] == "v1" for s in plan.get("apiStages", [])):
        plan_ops.append({"op": "add", "path": "/apiStages", "value": f"{api_id}:v1"})
    plan = apigw.update_usage_plan(usagePlanId=plan["id"], patchOperations=plan_ops)

key = next((k for k in apigw.get_api_keys(nameQuery=key_name, includeValues=True)["items"]
            if k["name"] == key_name), None)
if key is None:
    key = apigw.create_api_key(name=key_name, enabled=True, tags=t.tag_map("02"))
attached = {k["id"] for k in apigw.get_usage_plan_keys(usagePlanId=plan["id"])["items"]}
if key["id"] not in attached:
    apigw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
api_key = key["value"]
# END SOLUTION
print("plan:", plan["id"], " key:", key["id"])

# %%
checks.run("L02.07")

# %% [markdown]
# ## 6. Call the API
#
# `t.invoke_url(api_id, "v1")` is where stage `v1` answers: the local
# gateway here, API Gateway itself on a live account. `send` makes one
# request and returns the status and the body, errors included
# ([calling the API](../site/labs/02-api-first.md#calling-the-api)).

# %%
base_url = t.invoke_url(api_id, "v1")
print(base_url)


def send(method, path, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


# %% [markdown]
# Break one rule at a time and print what comes back. Expect:
#
# | Request | Status |
# | --- | --- |
# | `GET /orders` without a key | 403 |
# | `POST /orders` with the key, no token | 401 |
# | `POST /orders` with key and token, a body without `customerId` | 400 |
# | `GET /orders` with the key | 200 |
# | `POST /orders` with key, token and a good order | 201 (the mock's canned order) |

# %%
good_order = {"customerId": "c-42", "items": [{"sku": "BOOK-1", "quantity": 2}]}
# TODO: send the five requests of the table with send(...) and print each status and body.
# BEGIN SOLUTION
signed_in = {"x-api-key": api_key, "Authorization": id_token}
print("no key:         ", send("GET", "/orders"))
print("no token:       ", send("POST", "/orders", good_order, {"x-api-key": api_key}))
print("bad body:       ", send("POST", "/orders", {"items": good_order["items"]}, signed_in))
print("good read:      ", send("GET", "/orders", headers={"x-api-key": api_key}))
print("signed-in write:", send("POST", "/orders", good_order, signed_in))
# END SOLUTION

# %% [markdown]
# Now a burst: twelve quick reads with the key. The plan's bucket holds 5
# tokens and refills 10 a second, so after the first few the gateway answers
# 429. (On a live account each request takes longer, so the bucket refills
# between them; send more, or send them in parallel, to see it.)

# %%
print([send("GET", "/orders", headers={"x-api-key": api_key})[0] for _ in range(12)])

# %%
checks.run("L02.11-L02.15")

# %% [markdown]
# ## What you built
#
# The contract in `work/orders-api.yaml` is the single description of the
# orders API, and API Gateway enforces it: a request must name a deployed
# route, bring a token if it writes, bring a key on the plan, stay within
# the throttles and quota, and carry a valid body, all before anything
# behind the API runs. Reads may come from the cache. In lab 03 the mocks
# make way for a Lambda function, and none of these rules change.
#
# The whole lab, graded in one go (run it again after any change):

# %%
checks.run("02")

# %% [markdown]
# Save your state before moving on: `python -m labkit save end-of-02`.
