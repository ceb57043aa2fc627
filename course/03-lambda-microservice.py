# %% [markdown]
# # Lab 03: Lambda microservice
#
# In lab 02 the orders API answered with canned responses. Now it gets real
# code: a **Lambda function** that keeps orders in a **DynamoDB table** and
# runs as an **execution role** allowed to do exactly what the code does, no
# more. At the end, a request to the API's invoke URL goes through the gateway
# into your deployed code and back.
#
# You will build, step by step:
#
# 1. the orders table;
# 2. the handler, in `work/orders/handler.py`, and a first test on your machine;
# 3. the execution role and its least-privilege policy;
# 4. the function's log group, with a retention period;
# 5. the function itself, and a first real invocation;
# 6. proof that the role refuses what it was not granted;
# 7. Lambda proxy integrations for the four API methods, the invoke permission, a new deployment;
# 8. requests through the API, and a look at the logs.
#
# Concepts: [Lab 03 in the course docs](../site/labs/03-lambda-microservice.md).
# This lab starts from the end of lab 02; `python -m labkit start 03` puts the
# local AWS there.
#
# **On a live account** this lab costs well under one US cent: a few Lambda
# requests, DynamoDB requests and log lines, all inside the free tier. Lab
# 02's stage cache is still billed by the hour. Remove everything with
# `python -m labkit cleanup --live` when you are done.

# %%
import base64
import importlib.util
import json
import os
import time

import boto3
import requests
from botocore.exceptions import ClientError

import checks
import labkit
import labkit.lambdas

t = labkit.target()
ddb = t.client("dynamodb")
iam = t.client("iam")
logs = t.client("logs")
lam = t.client("lambda")
apigw = t.client("apigateway")

table_name = t.name("orders")
role_name = t.name("orders-fn")
fn_name = t.name("orders")
log_group = f"/aws/lambda/{fn_name}"
source_dir = labkit.config.work_dir() / "orders"  # your code lives here, outside the notebook
print("table and function:", table_name, "| role:", role_name, "| code:", source_dir)

# %% [markdown]
# ## 1. The table
#
# Create the table `<prefix>-orders`: partition key `orderId` of type `S`,
# billing mode `PAY_PER_REQUEST` (no capacity to plan), and the course tags
# `t.tags("03")`. Only the key is declared; every other attribute of an order
# is just stored. See [The table](../site/labs/03-lambda-microservice.md#the-table).
#
# A table takes a moment to become `ACTIVE`: wait for it with the
# `table_exists` waiter. When you re-run the cell the table already exists
# (`ResourceInUseException`): keep it.

# %%
# TODO: create the table table_name (orderId S, PAY_PER_REQUEST, Tags=t.tags("03")), tolerate ResourceInUseException, and wait until it exists.
# BEGIN SOLUTION
try:
    ddb.create_table(TableName=table_name, BillingMode="PAY_PER_REQUEST", Tags=t.tags("03"),
                     AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}])
except ddb.exceptions.ResourceInUseException:
    pass  # made by an earlier run
ddb.get_waiter("table_exists").wait(TableName=table_name)
# END SOLUTION
table_arn = ddb.describe_table(TableName=table_name)["Table"]["TableArn"]
print(table_arn)

# %%
checks.run("L03.01")

# %% [markdown]
# ## 2. The handler
#
# The handler is the code API Gateway runs for every request. It receives the
# whole HTTP request as one [proxy event](../site/labs/03-lambda-microservice.md#the-proxy-event)
# and must return a [proxy response](../site/labs/03-lambda-microservice.md#the-response):
# `statusCode`, `headers`, and a `body` that is a **string**.
#
# Write `handler.py` so that, with the table's name read from the environment
# variable `TABLE_NAME`:
#
# | Request | Response |
# | --- | --- |
# | `POST /orders`, a valid body | `201` and the stored order: the body plus `orderId` (a fresh `uuid4`), `status` `"NEW"`, `createdAt` |
# | `POST /orders`, a body that is not JSON or not a valid order | `400` |
# | `GET /orders/{orderId}` | `200` and the order, or `404` with `{"message": "order not found"}` |
# | `GET /orders` | `200` and `{"orders": [...]}`, read with `Scan` |
# | `DELETE /orders/{orderId}` | `204`, no body |
#
# Create the DynamoDB client **outside** the handler function, so a warm
# execution environment reuses it, and print **one log line per request**.
# Remember that DynamoDB returns numbers as `Decimal`, which `json.dumps`
# refuses. The file lives in `work/orders/`, the folder you deploy: write the
# source as a string here and save it there.

# %%
handler_path = source_dir / "handler.py"
source_dir.mkdir(parents=True, exist_ok=True)  # the folder you deploy
# TODO: set handler_source to the code of handler.py (see the table above), then write it to handler_path.
# BEGIN SOLUTION
handler_source = '''\
"""The orders service: the four operations of the orders API, kept in DynamoDB."""
import base64
import json
import os
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import boto3

# Runs once per execution environment; warm requests reuse the client.
TABLE = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


def _plain(value):
    """json.dumps helper: DynamoDB returns every number as a Decimal."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def respond(status, body=None):
    text = "" if body is None else json.dumps(body, default=_plain)  # the body is always a string
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": text}


def new_order(event):
    """The NewOrder in the request body, or None when the body is not one."""
    raw = event.get("body") or ""
    try:
        if event.get("isBase64Encoded"):
            raw = base64.b64decode(raw).decode("utf-8")
        data = json.loads(raw)
    except ValueError:  # not base64, not UTF-8 or not JSON
        return None
    if not isinstance(data, dict) or not isinstance(data.get("customerId"), str) or not data["customerId"]:
        return None
    items = data.get("items")
    if not isinstance(items, list) or not items:
        return None
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("sku"), str):
            return None
        if type(item.get("quantity")) is not int or item["quantity"] < 1:  # True is no quantity
            return None
    return {"customerId": data["customerId"],
            "items": [{"sku": i["sku"], "quantity": i["quantity"]} for i in items]}


def create_order(event):
    order = new_order(event)
    if order is None:
        return respond(400, {"message": "the body must be a JSON NewOrder"})
    order.update(orderId=str(uuid.uuid4()), status="NEW",
                 createdAt=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    TABLE.put_item(Item=order)
    return respond(201, order)


def get_order(order_id):
    item = TABLE.get_item(Key={"orderId": order_id}).get("Item")
    return respond(200, item) if item else respond(404, {"message": "order not found"})


def list_orders():
    page = TABLE.scan()
    orders = page["Items"]
    while "LastEvaluatedKey" in page:  # one Scan call returns at most 1 MB
        page = TABLE.scan(ExclusiveStartKey=page["LastEvaluatedKey"])
        orders += page["Items"]
    return respond(200, {"orders": orders})


def delete_order(order_id):
    TABLE.delete_item(Key={"orderId": order_id})
    return respond(204)


def route(event):
    method, resource = event.get("httpMethod"), event.get("resource")
    order_id = (event.get("pathParameters") or {}).get("orderId")
    if resource == "/orders" and method == "POST":
        return create_order(event)
    if resource == "/orders" and method == "GET":
        return list_orders()
    if resource == "/orders/{orderId}" and method == "GET":
        return get_order(order_id)
    if resource == "/orders/{orderId}" and method == "DELETE":
        return delete_order(order_id)
    return respond(404, {"message": f"no route for {method} {resource}"})


def handler(event, context):
    response = route(event)
    # One structured line per request: easy to read, easy to query in CloudWatch.
    print(json.dumps({"requestId": getattr(context, "aws_request_id", None), "method": event.get("httpMethod"),
                      "path": event.get("path"), "status": response["statusCode"]}))
    return response
'''
handler_path.write_text(handler_source)
# END SOLUTION
print(handler_path, len(handler_path.read_text().splitlines()), "lines")

# %% [markdown]
# ### A first test, on your machine
#
# A handler is an ordinary Python function, so test it before deploying
# anything: import `handler.py` the way Lambda would (with `TABLE_NAME` in the
# environment) and call `handler(event, context)` with fake proxy events.
# `load_handler` below sets the environment only while the module loads, so
# its DynamoDB client talks to your target; `context` is `None` here.

# %%
def set_environment(values):
    """Set (or, for None, remove) environment variables; return their old values."""
    old = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    return old


def load_handler():
    """Import work/orders/handler.py as Lambda would: TABLE_NAME set, boto3 talking to your target."""
    env = {"TABLE_NAME": table_name, "AWS_DEFAULT_REGION": t.region}
    if t.is_local:  # the local AWS takes any keys; a session token would make it check IAM
        env.update(AWS_ENDPOINT_URL=t.endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_SESSION_TOKEN=None)
    saved = set_environment(env)
    try:
        spec = importlib.util.spec_from_file_location("orders_handler", handler_path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # the init code runs now: its table client gets this environment
        return module
    finally:
        set_environment(saved)


def fake_event(method, resource, order_id=None, body=None):
    """The parts of an API Gateway proxy event (format 1.0) the handler reads."""
    path = resource.replace("{orderId}", order_id or "")
    return {"httpMethod": method, "resource": resource, "path": path, "body": body, "isBase64Encoded": False,
            "pathParameters": {"orderId": order_id} if order_id else None, "headers": {}, "requestContext": {}}


orders = load_handler()
new = {"customerId": "c-42", "items": [{"sku": "BOOK-1", "quantity": 2}]}
created = orders.handler(fake_event("POST", "/orders", body=json.dumps(new)), None)
order_id = json.loads(created["body"])["orderId"]
for event in (fake_event("GET", "/orders/{orderId}", order_id),
              fake_event("GET", "/orders/{orderId}", "no-such-order"),
              fake_event("POST", "/orders", body="{not json"),
              fake_event("DELETE", "/orders/{orderId}", order_id)):
    answer = orders.handler(event, None)
    print(event["httpMethod"], event["path"], "->", answer["statusCode"], answer["body"])
assert created["statusCode"] == 201 and isinstance(created["body"], str)

# %% [markdown]
# The line printed before each result is the handler's own log line. On
# Lambda, that output goes to CloudWatch Logs instead.
#
# ## 3. The execution role
#
# The function calls DynamoDB with the permissions of its
# [execution role](../site/labs/03-lambda-microservice.md#the-execution-role).
# Create the role `<prefix>-orders-fn` (tags `t.tags("03")`) with a **trust
# policy** that lets only the Lambda service assume it, then give it the
# inline **permissions policy** `<prefix>-orders-data` with
# [least privilege](../site/labs/03-lambda-microservice.md#least-privilege):
#
# - `dynamodb:PutItem`, `GetItem`, `DeleteItem` and `Scan`, on the table's ARN only;
# - `logs:CreateLogStream` and `logs:PutLogEvents`, on
#   `arn:aws:logs:<region>:<account>:log-group:/aws/lambda/<prefix>-orders:*` only.
#
# No wildcards, no `Resource: "*"`, no managed policies. When you re-run the
# cell the role exists (`EntityAlreadyExists`): update its trust policy
# instead. `put_role_policy` simply replaces the inline policy.

# %%
group_arn = f"arn:aws:logs:{t.region}:{t.account_id}:log-group:{log_group}"
# TODO: create role_name (trusting lambda.amazonaws.com only), or update its trust policy when it exists; put the inline policy t.name("orders-data").
# BEGIN SOLUTION
trust_policy = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
data_policy = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "OrdersTable", "Effect": "Allow",
         "Action": ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Scan", "dynamodb:DeleteItem"],
         "Resource": table_arn},
        {"Sid": "OwnLogGroup", "Effect": "Allow",
         "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": f"{group_arn}:*"},
    ],
}
try:
    iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust_policy), Tags=t.tags("03"),
                    Description="Runs the orders function")
except iam.exceptions.EntityAlreadyExistsException:
    iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps(trust_policy))
iam.put_role_policy(RoleName=role_name, PolicyName=t.name("orders-data"), PolicyDocument=json.dumps(data_policy))
# END SOLUTION
role_arn = iam.get_role(RoleName=role_name)["Role"]["Arn"]
print(role_arn)

# %%
checks.run("L03.02-L03.04")

# %% [markdown]
# ## 4. The log group
#
# Lambda writes a function's output to the log group
# `/aws/lambda/<function name>`. Create it yourself, with the course tags and
# a **retention** of 14 days, so the logs do not pile up (and get billed)
# forever; your role could not create it anyway. Any retention period
# CloudWatch offers passes the check (1, 3, 5, 7, 14, 30, ... days); 14 is the
# course's choice. See [Logs](../site/labs/03-lambda-microservice.md#logs).

# %%
# TODO: create the log group log_group with tags=t.tag_map("03") (tolerate ResourceAlreadyExistsException) and set its retention to 14 days.
# BEGIN SOLUTION
try:
    logs.create_log_group(logGroupName=log_group, tags=t.tag_map("03"))
except logs.exceptions.ResourceAlreadyExistsException:
    pass
logs.put_retention_policy(logGroupName=log_group, retentionInDays=14)
# END SOLUTION
group = logs.describe_log_groups(logGroupNamePrefix=log_group)["logGroups"][0]
print(group["logGroupName"], "keeps logs for", group.get("retentionInDays", "ever (no retention)"), "days")

# %%
checks.run("L03.06")

# %% [markdown]
# ## 5. The function
#
# [The function](../site/labs/03-lambda-microservice.md#the-function) ties the
# code, the role and the settings together: `<prefix>-orders`, runtime
# `python3.13`, handler `handler.handler`, the role's ARN, the environment
# variable `TABLE_NAME`, a 10 second timeout, 256 MB of memory and the tags
# `t.tag_map("03")`. The check accepts any Python runtime Lambda supports
# (`python3.12` to `python3.14`) and any timeout up to the 29 seconds API
# Gateway waits; the memory size is yours to choose.
#
# The code is a zip of `work/orders`: `labkit.lambdas.package(source_dir)`
# builds it, byte for byte the same for the same files, so its `CodeSha256`
# identifies your source (see
# [Deploying code](../site/labs/03-lambda-microservice.md#deploying-code)).
# When the function already exists (`ResourceConflictException`), ship the new
# zip with `update_function_code` and the settings with
# `update_function_configuration`, waiting for each update to finish
# (`function_updated_v2`) before the next.
#
# On a live account a new role takes a few seconds to reach Lambda:
# `create_function` may answer "The role defined for the function cannot be
# assumed by Lambda". Wait and try again.

# %%
# TODO: package source_dir and create the function fn_name (or update its code, then its configuration); wait until it is ready.
# BEGIN SOLUTION
zip_bytes = labkit.lambdas.package(source_dir)
settings = {"Runtime": "python3.13", "Handler": "handler.handler", "Role": role_arn, "Timeout": 10, "MemorySize": 256,
            "Environment": {"Variables": {"TABLE_NAME": table_name}}}
for attempt in range(10):
    try:
        lam.create_function(FunctionName=fn_name, Code={"ZipFile": zip_bytes}, Tags=t.tag_map("03"), **settings)
        lam.get_waiter("function_active_v2").wait(FunctionName=fn_name)
        break
    except lam.exceptions.ResourceConflictException:  # it exists: ship the code, then the settings
        lam.update_function_code(FunctionName=fn_name, ZipFile=zip_bytes)
        lam.get_waiter("function_updated_v2").wait(FunctionName=fn_name)
        lam.update_function_configuration(FunctionName=fn_name, **settings)
        lam.get_waiter("function_updated_v2").wait(FunctionName=fn_name)
        break
    except lam.exceptions.InvalidParameterValueException as exc:
        if "cannot be assumed" not in str(exc) or attempt == 9:
            raise
        time.sleep(3)  # the new role is still on its way to Lambda
# END SOLUTION
fn = lam.get_function_configuration(FunctionName=fn_name)
print(fn["FunctionArn"], fn["Runtime"], fn["CodeSha256"])

# %%
checks.run("L03.05,L03.07")

# %% [markdown]
# ### A first real invocation
#
# Invoke the deployed function once with a fake `GET /orders` event. This time
# the code runs where Lambda runs it (locally: in a separate process, with the
# role's credentials), and `LogType="Tail"` returns the end of its log:
# `START`, your line, `END` and `REPORT` (read
# [Logs](../site/labs/03-lambda-microservice.md#logs) for what `REPORT` tells you).

# %%
answer = lam.invoke(FunctionName=fn_name, Payload=json.dumps(fake_event("GET", "/orders")), LogType="Tail")
print("function error:", answer.get("FunctionError"))
print(json.loads(answer["Payload"].read()))
print(base64.b64decode(answer["LogResult"]).decode())

# %% [markdown]
# ## 6. Least privilege, seen working
#
# The role's policy is not a formality: a call it does not allow fails. Take
# the role yourself (`sts.assume_role`; the local AWS lets you) and use its
# temporary credentials: reading the orders table works, reading another
# service's table or listing every table is refused with an access-denied
# error that names the action. This is what the function would see.
#
# On a live account AWS refuses the `assume_role` itself: the trust policy
# lets only Lambda take the role, which is the other half of the same lesson.

# %%
try:
    credentials = t.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="least-privilege-demo")["Credentials"]
except ClientError as exc:
    credentials = None
    print("assume_role refused:", exc.response["Error"]["Code"], "- only lambda.amazonaws.com may assume", role_name)
if credentials:
    as_role = boto3.Session(aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
                            aws_session_token=credentials["SessionToken"], region_name=t.region)
    ddb_as_role = as_role.client("dynamodb", endpoint_url=t.endpoint)
    print("Scan", table_name, "->", ddb_as_role.scan(TableName=table_name, Select="COUNT")["Count"], "orders (allowed)")
    for what, call in (("Scan " + t.name("payments"), lambda: ddb_as_role.scan(TableName=t.name("payments"))),
                       ("ListTables", lambda: ddb_as_role.list_tables())):
        try:
            call()
            print(what, "-> allowed?! the policy grants more than it should")
        except ClientError as exc:
            print(what, "->", exc.response["Error"]["Code"] + ":", exc.response["Error"]["Message"])

# %% [markdown]
# ## 7. Connect the API to the function
#
# ### Proxy integrations
#
# Switch each of the four methods of `<prefix>-orders-api` from its `MOCK`
# integration to a [Lambda proxy integration](../site/labs/03-lambda-microservice.md#proxy-integration):
# `put_integration` with `type="AWS_PROXY"`, `integrationHttpMethod="POST"`
# (always `POST`: it is how API Gateway calls Lambda's Invoke API) and the
# function's invocation URI below.
#
# Lab 02's stage caches `GET /orders/{orderId}` keyed by the order id. The
# cache key belongs to the integration, so give the new one
# `cacheKeyParameters=["method.request.path.orderId"]` too; without it every
# order id would share one cached answer on AWS.

# %%
api_id = next(a["id"] for page in apigw.get_paginator("get_rest_apis").paginate()
              for a in page["items"] if a["name"] == t.name("orders-api"))
resources = {r["path"]: r["id"] for page in apigw.get_paginator("get_resources").paginate(restApiId=api_id)
             for r in page["items"]}
methods = [("/orders", "GET"), ("/orders", "POST"), ("/orders/{orderId}", "GET"), ("/orders/{orderId}", "DELETE")]
uri = f"arn:aws:apigateway:{t.region}:lambda:path/2015-03-31/functions/{fn['FunctionArn']}/invocations"
print(api_id, uri)
# TODO: for each (path, method) in methods, put an AWS_PROXY integration (integrationHttpMethod POST, uri) on resources[path]; keep the cache key on GET /orders/{orderId}.
# BEGIN SOLUTION
for path, method in methods:
    cache_key = ["method.request.path.orderId"] if (path, method) == ("/orders/{orderId}", "GET") else []
    apigw.put_integration(restApiId=api_id, resourceId=resources[path], httpMethod=method, type="AWS_PROXY",
                          integrationHttpMethod="POST", uri=uri, cacheKeyParameters=cache_key)
# END SOLUTION

# %%
checks.run("L03.08")

# %% [markdown]
# ### The invoke permission
#
# Lambda refuses every caller it was not told about. Add a statement to the
# function's resource policy for the principal `apigateway.amazonaws.com`,
# action `lambda:InvokeFunction`, with `SourceArn`
# `arn:aws:execute-api:<region>:<account>:<api id>/*`: this API, any stage,
# method and path, and nothing else. See
# [Invoke permission](../site/labs/03-lambda-microservice.md#invoke-permission).
#
# A statement id can be used once: to make the cell safe to re-run, remove
# the statement first (ignoring `ResourceNotFoundException`), then add it.

# %%
source_arn = f"arn:aws:execute-api:{t.region}:{t.account_id}:{api_id}/*"
# TODO: remove the statement "orders-api-invoke" if it exists, then add_permission for apigateway.amazonaws.com scoped with source_arn.
# BEGIN SOLUTION
try:
    lam.remove_permission(FunctionName=fn_name, StatementId="orders-api-invoke")
except lam.exceptions.ResourceNotFoundException:
    pass
lam.add_permission(FunctionName=fn_name, StatementId="orders-api-invoke", Action="lambda:InvokeFunction",
                   Principal="apigateway.amazonaws.com", SourceArn=source_arn)
# END SOLUTION
for statement in json.loads(lam.get_policy(FunctionName=fn_name)["Policy"])["Statement"]:
    print(statement["Sid"], statement["Principal"], statement.get("Condition"))

# %%
checks.run("L03.09")

# %% [markdown]
# ### Redeploy
#
# Integrations are part of the API's definition; stage `v1` keeps serving the
# deployment it has, mocks included, until you deploy again. Create a new
# deployment to `v1`: its throttling, cache and usage plan stay as lab 02 set
# them.

# %%
# TODO: create a deployment of api_id to the stage "v1".
# BEGIN SOLUTION
apigw.create_deployment(restApiId=api_id, stageName="v1", description="lab 03: Lambda proxy integrations")
# END SOLUTION
stage = apigw.get_stage(restApiId=api_id, stageName="v1")
print("stage v1 now serves deployment", stage["deploymentId"], "| cache on:", stage.get("cacheClusterEnabled"))

# %% [markdown]
# ## 8. Through the API
#
# Now call the API like any client: the invoke URL of stage `v1`, the API key
# on every request, and on writes the ID token of lab 02's test user (its
# credentials are in SSM). See
# [End to end](../site/labs/03-lambda-microservice.md#end-to-end).

# %%
url = t.invoke_url(api_id, "v1")
key = next(k["value"] for k in apigw.get_api_keys(nameQuery=t.name("orders-key"), includeValues=True)["items"]
           if k["name"] == t.name("orders-key"))
tester = json.loads(t.client("ssm").get_parameter(Name=f"/{t.prefix}/orders/tester", WithDecryption=True)["Parameter"]["Value"])
cognito = t.client("cognito-idp")
pool_id = next(p["Id"] for p in cognito.list_user_pools(MaxResults=60)["UserPools"] if p["Name"] == t.name("users"))
client_id = next(c["ClientId"] for c in cognito.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
                 if c["ClientName"] == t.name("orders-web"))
token = cognito.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={
    "USERNAME": tester["username"], "PASSWORD": tester["password"]})["AuthenticationResult"]["IdToken"]
reads = {"x-api-key": key}
writes = {"x-api-key": key, "Authorization": token}


def show(response):
    print(response.request.method, response.request.path_url, "->", response.status_code, response.text[:200])
    return response


created = show(requests.post(f"{url}/orders", json=new, headers=writes, timeout=30))
order_id = created.json()["orderId"]
show(requests.get(f"{url}/orders/{order_id}", headers=reads, timeout=30))
show(requests.get(f"{url}/orders/no-such-order", headers=reads, timeout=30))
bad = show(requests.post(f"{url}/orders", data="{not json", headers={**writes, "Content-Type": "application/json"},
                         timeout=30))

# %% [markdown]
# The last request got `400` from the gateway's request validator (lab 02),
# before the function ran; your handler's own `400` covers every other way
# the function can be invoked. When a request answers `502` instead, the
# function failed: the log group has the traceback.

# %%
checks.run("L03.10-L03.12")

# %% [markdown]
# ### The logs
#
# Every request above left lines in the function's log group: Lambda's
# `START`, `END` and `REPORT`, and the line your handler printed. Read the
# newest stream. (Logs arrive a moment after the request.)

# %%
events, deadline = [], time.time() + 10
while not any(e["message"].startswith("REPORT") for e in events) and time.time() < deadline:
    time.sleep(0.2)  # the last request's lines are on their way
    streams = logs.describe_log_streams(logGroupName=log_group, orderBy="LastEventTime", descending=True,
                                        limit=1)["logStreams"]
    events = [e for s in streams for e in logs.get_log_events(logGroupName=log_group, logStreamName=s["logStreamName"],
                                                              limit=12)["events"]]
for event in events:
    print(event["message"].rstrip())

# %%
checks.run("L03.13")

# %% [markdown]
# ## What you built
#
# A request to `v1` passes the API key, the authorizer and the validator as
# in lab 02; API Gateway then invokes your function, allowed by the invoke
# permission that names your API. The function runs as a role that may touch
# one table and one log group, answers with a proxy response, and logs one
# line per request. Change the handler and the grader notices until you
# deploy it again.
#
# The whole lab, graded in one go (run it again after any change):

# %%
checks.run("03")

# %% [markdown]
# Save your state before moving on: `python -m labkit save end-of-03`.
