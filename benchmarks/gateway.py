"""Measure the local API gateway: a GET through the gateway into a handler that reads DynamoDB.

Runs against its own local AWS (a temporary state folder and a free port),
deploys one small function behind one REST API method, then reports median
and p99 latency and requests per second for:

- a direct in-process call of the same handler (the floor: the handler's own
  DynamoDB read over HTTP, nothing else);
- ``lambda.invoke`` through the local AWS (the runner's warm sandbox);
- GET through the local gateway (routing, API key, usage plan, then the runner);
- the same GET from 4 client threads at once.

Usage: ``python benchmarks/gateway.py [--requests N]``.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import importlib.util
import json
import os
import statistics
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from isolated import use_own_local_aws  # benchmarks/ is the script's folder

HANDLER = '''
import json, os
import boto3

table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])

def handler(event, context):
    item = table.get_item(Key={"orderId": event["pathParameters"]["orderId"]}).get("Item")
    if item is None:
        return {"statusCode": 404, "body": json.dumps({"message": "order not found"})}
    return {"statusCode": 200, "body": json.dumps(item)}
'''


def _deploy(t, folder: Path) -> tuple[str, str]:
    from labkit import lambdas

    iam, lam, ddb, apigw = (t.client(s) for s in ("iam", "lambda", "dynamodb", "apigateway"))
    ddb.create_table(TableName="bench-orders", KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    ddb.put_item(TableName="bench-orders", Item={"orderId": {"S": "o-1"}, "item": {"S": "tea"}})
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                      "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName="bench-fn", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName="bench-fn", PolicyName="read", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": f"arn:aws:dynamodb:{t.region}:{t.account_id}:table/bench-orders"},
        {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": f"arn:aws:logs:{t.region}:{t.account_id}:log-group:/aws/lambda/bench-orders:*"}]}))
    t.client("logs").create_log_group(logGroupName="/aws/lambda/bench-orders")
    fn = lam.create_function(FunctionName="bench-orders", Runtime="python3.13", Role=role, Handler="handler.handler",
                             Code={"ZipFile": lambdas.package(folder)}, MemorySize=256,
                             Environment={"Variables": {"TABLE_NAME": "bench-orders"}})["FunctionArn"]
    api = apigw.create_rest_api(name="bench-api")["id"]
    root = apigw.get_resources(restApiId=api)["items"][0]["id"]
    orders = apigw.create_resource(restApiId=api, parentId=root, pathPart="orders")["id"]
    one = apigw.create_resource(restApiId=api, parentId=orders, pathPart="{orderId}")["id"]
    apigw.put_method(restApiId=api, resourceId=one, httpMethod="GET", authorizationType="NONE", apiKeyRequired=True)
    apigw.put_integration(restApiId=api, resourceId=one, httpMethod="GET", type="AWS_PROXY", integrationHttpMethod="POST",
                          uri=f"arn:aws:apigateway:{t.region}:lambda:path/2015-03-31/functions/{fn}/invocations")
    lam.add_permission(FunctionName="bench-orders", StatementId="apigw", Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com", SourceArn=f"arn:aws:execute-api:{t.region}:{t.account_id}:{api}/*")
    apigw.create_deployment(restApiId=api, stageName="v1")
    key = apigw.create_api_key(name="bench-key", enabled=True)
    plan = apigw.create_usage_plan(name="bench-plan", apiStages=[{"apiId": api, "stage": "v1"}],
                                   throttle={"rateLimit": 10000, "burstLimit": 5000})
    apigw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    return t.invoke_url(api, "v1") + "/orders/o-1", key["value"]


def deploy_with_floor(t, home: Path):
    """Deploy the handler behind an API; returns (invoke URL, API key, the handler imported in this
    process with its boto3 pointed at the local AWS -- the floor --, and an event it answers)."""
    folder = home / "orders"
    folder.mkdir()
    (folder / "handler.py").write_text(HANDLER)
    url, key = _deploy(t, folder)
    os.environ.update(AWS_ENDPOINT_URL=t.endpoint, TABLE_NAME="bench-orders", AWS_ACCESS_KEY_ID="testing",
                      AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    spec = importlib.util.spec_from_file_location("bench_handler", folder / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    event = {"httpMethod": "GET", "path": "/orders/o-1", "pathParameters": {"orderId": "o-1"}}
    return url, key, module, event


def _measure(name: str, call, n: int, threads: int = 1) -> str:
    for _ in range(5):
        call()  # warm: sandbox started, clients built
    samples: list[float] = []

    def timed(_):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)

    began = time.perf_counter()
    if threads == 1:
        for i in range(n):
            timed(i)
    else:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            list(pool.map(timed, range(n)))
    wall = time.perf_counter() - began
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (f"{name:<44} median {statistics.median(samples) * 1000:6.1f} ms   p99 {p99 * 1000:6.1f} ms   "
            f"{n / wall:6.0f} req/s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    home = use_own_local_aws("gw-bench")
    from labkit import localaws
    from labkit.target import Target

    localaws.up()
    try:
        t = Target("local", prefix="bench", region="us-east-1")
        url, key, module, event = deploy_with_floor(t, home)

        def direct():
            assert module.handler(event, None)["statusCode"] == 200

        lam = t.client("lambda")

        def invoke():
            assert "FunctionError" not in lam.invoke(FunctionName="bench-orders", Payload=json.dumps(event))

        def through_gateway():
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers={"x-api-key": key}), timeout=30) as r:
                    assert r.status == 200
            except urllib.error.HTTPError as error:
                raise SystemExit(f"The gateway answered {error.code}: {error.read().decode()}") from None

        print(f"{args.requests} requests each, after 5 warm-up requests; Python {sys.version.split()[0]}")
        print(_measure("handler called in-process (the floor)", direct, args.requests))
        print(_measure("lambda.invoke through the local AWS", invoke, args.requests))
        print(_measure("GET through the local gateway", through_gateway, args.requests))
        print(_measure("GET through the local gateway, 4 threads", through_gateway, args.requests, threads=4))
    finally:
        localaws.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
