"""Checkpoints: moto's backends, pickled and loaded back, hold the same state for every service the labs use."""
from __future__ import annotations

import io
import json
import zipfile

from labkit.localaws import checkpoint

TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                  "Action": "sts:AssumeRole"}]}


def _build(t) -> None:
    s3 = t.client("s3")
    s3.create_bucket(Bucket="ada-site")
    s3.put_object(Bucket="ada-site", Key="index.html", Body=b"<h1>hello</h1>" * 100)
    cf = t.client("cloudfront")
    oac = cf.create_origin_access_control(OriginAccessControlConfig={
        "Name": "ada-oac", "SigningProtocol": "sigv4", "SigningBehavior": "always",
        "OriginAccessControlOriginType": "s3"})["OriginAccessControl"]["Id"]
    cf.create_distribution(DistributionConfig={
        "CallerReference": "ada", "Comment": "", "Enabled": True, "DefaultRootObject": "index.html",
        "Origins": {"Quantity": 1, "Items": [{"Id": "s3", "DomainName": "ada-site.s3.amazonaws.com",
                                               "OriginAccessControlId": oac,
                                               "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "s3", "ViewerProtocolPolicy": "redirect-to-https", "MinTTL": 0,
                                 "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                                 "TrustedSigners": {"Enabled": False, "Quantity": 0}}})
    t.client("ssm").put_parameter(Name="/ada/p", Value="v", Type="String")
    t.client("budgets").create_budget(AccountId="123456789012", Budget={
        "BudgetName": "ada-budget", "BudgetLimit": {"Amount": "5", "Unit": "USD"}, "TimeUnit": "MONTHLY",
        "BudgetType": "COST"})
    apigw = t.client("apigateway")
    api = apigw.create_rest_api(name="ada-api")["id"]
    root = apigw.get_resources(restApiId=api)["items"][0]["id"]
    apigw.put_method(restApiId=api, resourceId=root, httpMethod="GET", authorizationType="NONE")
    apigw.put_integration(restApiId=api, resourceId=root, httpMethod="GET", type="MOCK")
    apigw.create_deployment(restApiId=api, stageName="dev")
    role = t.client("iam").create_role(RoleName="ada-role", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return 1\n")
    t.client("lambda").create_function(FunctionName="ada-fn", Runtime="python3.12", Role=role, Handler="app.handler",
                                       Code={"ZipFile": buf.getvalue()})
    t.client("logs").create_log_group(logGroupName="/ada/app")
    ddb = t.client("dynamodb")
    ddb.create_table(TableName="ada-items", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST", StreamSpecification={"StreamEnabled": True,
                                                                          "StreamViewType": "NEW_IMAGE"})
    ddb.put_item(TableName="ada-items", Item={"pk": {"S": "1"}})
    pool = t.client("cognito-idp").create_user_pool(PoolName="ada-pool")["UserPool"]["Id"]
    t.client("cognito-idp").create_user_pool_client(UserPoolId=pool, ClientName="ada-client")
    t.client("application-autoscaling").register_scalable_target(
        ServiceNamespace="dynamodb", ResourceId="table/ada-items", ScalableDimension="dynamodb:table:ReadCapacityUnits",
        MinCapacity=1, MaxCapacity=10)
    ec2 = t.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")
    t.client("dax").create_cluster(ClusterName="ada-dax", NodeType="dax.t3.small", ReplicationFactor=1,
                                   IamRoleArn=role)


def _look(t) -> dict:
    fn = t.client("lambda").get_function(FunctionName="ada-fn")
    from moto.awslambda.utils import get_backend

    code = get_backend("123456789012", "us-east-1").get_function("ada-fn").code_bytes
    return {
        "object": t.client("s3").get_object(Bucket="ada-site", Key="index.html")["Body"].read(),
        "distributions": [(d["Id"], d["DefaultRootObject"] if "DefaultRootObject" in d else None)
                          for d in t.client("cloudfront").list_distributions()["DistributionList"]["Items"]],
        "param": t.client("ssm").get_parameter(Name="/ada/p")["Parameter"]["Value"],
        "budgets": [b["BudgetName"] for b in t.client("budgets").describe_budgets(AccountId="123456789012")["Budgets"]],
        "apis": [(a["id"], a["name"]) for a in t.client("apigateway").get_rest_apis()["items"]],
        "stages": [s["deploymentId"] for a in t.client("apigateway").get_rest_apis()["items"]
                   for s in t.client("apigateway").get_stages(restApiId=a["id"])["item"]],
        "role": t.client("iam").get_role(RoleName="ada-role")["Role"]["RoleId"],
        "sha": fn["Configuration"]["CodeSha256"], "code": code,
        "who": t.client("sts").get_caller_identity()["Account"],
        "logs": [g["logGroupName"] for g in t.client("logs").describe_log_groups()["logGroups"]],
        "items": t.client("dynamodb").scan(TableName="ada-items")["Items"],
        "stream": t.client("dynamodb").describe_table(TableName="ada-items")["Table"]["LatestStreamArn"],
        "pools": [p["Id"] for p in t.client("cognito-idp").list_user_pools(MaxResults=10)["UserPools"]],
        "targets": [s["ResourceId"] for s in t.client("application-autoscaling").describe_scalable_targets(
            ServiceNamespace="dynamodb")["ScalableTargets"]],
        "vpcs": sorted(v["VpcId"] for v in t.client("ec2").describe_vpcs()["Vpcs"]),
        "dax": [c["ClusterArn"] for c in t.client("dax").describe_clusters()["Clusters"]],
    }


def test_every_service_the_labs_use_comes_back_from_a_checkpoint(aws):
    from moto.moto_api._internal import mock_random
    from moto.moto_api._internal.models import moto_api_backend

    _build(aws)
    before = _look(aws)
    data = checkpoint.capture(42, mock_random.getstate(), [checkpoint.compress(b"line\n")], 1)
    moto_api_backend.reset()
    assert aws.client("ssm").describe_parameters()["Parameters"] == []  # really gone
    loaded = checkpoint.restore(data)
    assert loaded["n"] == 42 and checkpoint.lines(loaded["history"]) == b"line\n"
    assert _look(aws) == before
    # and it goes on working: the loaded backends take new writes and still see each other
    aws.client("dynamodb").put_item(TableName="ada-items", Item={"pk": {"S": "2"}})
    assert len(aws.client("dynamodb").scan(TableName="ada-items")["Items"]) == 2
    aws.client("lambda").get_function(FunctionName="ada-fn")


def test_a_checkpoint_from_another_moto_is_refused_not_loaded(aws):
    import pickle

    import pytest

    data = checkpoint.capture(1, None, [], 0)
    outer = pickle.loads(data[len(checkpoint.MAGIC):])
    outer["moto"] = "0.0"
    with pytest.raises(checkpoint.Unusable):
        checkpoint.restore(checkpoint.MAGIC + pickle.dumps(outer))
    with pytest.raises(checkpoint.Unusable):
        checkpoint.restore(b"not a checkpoint")
    assert checkpoint.history(data) == []


ECHO = '''
import json, sys
from pathlib import Path
from werkzeug.test import Client
from labkit.localaws import extensions
from labkit.localaws.app import build_app

journal = Path(sys.argv[1])
app = build_app(journal, "http://localhost:1", extensions.REGISTERED + ("tests.echo_extension",))
if sys.argv[2] == "write":
    app.journal.rewrite(b"")
    for i in range(3):
        Client(app).post("/_echo/keep", data=f"kept-{i}".encode())
else:
    app.replay(journal.read_bytes())
echo = app.extension("echo")
print(json.dumps({"kept": echo.kept, "heard": echo.heard, "head": journal.read_bytes()[:13].decode()}))
'''


def test_what_an_extension_keeps_outside_moto_survives_a_checkpoint(tmp_path):
    import os
    import subprocess
    import sys

    from labkit.config import REPO_ROOT

    journal = tmp_path / "journal.ndjson"
    env = {**os.environ, "LABKIT_COMPACT_EVERY": "2"}  # the second write folds the journal into a checkpoint

    def run(mode):
        done = subprocess.run([sys.executable, "-c", ECHO, str(journal), mode], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    assert run("write")["kept"] == ["kept-0", "kept-1", "kept-2"]
    back = run("replay")
    assert back["head"] == '{"checkpoint"'  # loaded from a checkpoint, one line after it
    assert back["kept"] == ["kept-0", "kept-1", "kept-2"] and back["heard"][-1] == "restored"
