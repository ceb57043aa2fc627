"""Where the local AWS is stricter than moto because AWS is: each test shows one refusal AWS makes."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from labkit.localaws.fidelity.cognitoidp import secret_hash

PASSWORD = "Corr3ct-horse!"


def pool_with_user(aws, **client):
    idp = aws.client("cognito-idp")
    pool = idp.create_user_pool(PoolName="ada-users")["UserPool"]["Id"]
    made = idp.create_user_pool_client(UserPoolId=pool, ClientName="ada-orders-web", **client)["UserPoolClient"]
    idp.admin_create_user(UserPoolId=pool, Username="tester", MessageAction="SUPPRESS", TemporaryPassword=PASSWORD + "x")
    idp.admin_set_user_password(UserPoolId=pool, Username="tester", Password=PASSWORD, Permanent=True)
    return idp, pool, made


def refused(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def sign_in(idp, client_id, **extra):
    return lambda: idp.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
                                     AuthParameters={"USERNAME": "tester", "PASSWORD": PASSWORD, **extra})


FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]


def test_a_client_with_a_secret_needs_the_secret_hash(aws):
    idp, _, client = pool_with_user(aws, GenerateSecret=True, ExplicitAuthFlows=FLOWS)
    cid, secret = client["ClientId"], client["ClientSecret"]
    assert refused(sign_in(idp, cid)) == (
        "NotAuthorizedException", f"Client {cid} is configured for secret but secret was not received")
    assert refused(sign_in(idp, cid, SECRET_HASH=secret_hash(secret, cid, "someone-else"))) == (
        "NotAuthorizedException", f"Unable to verify secret hash for client {cid}")
    good = sign_in(idp, cid, SECRET_HASH=secret_hash(secret, cid, "tester"))()
    assert good["AuthenticationResult"]["IdToken"]


def test_a_client_without_a_secret_signs_in_without_one(aws):
    idp, _, client = pool_with_user(aws, GenerateSecret=False, ExplicitAuthFlows=FLOWS)
    assert sign_in(idp, client["ClientId"])()["AuthenticationResult"]["IdToken"]


def test_sign_up_and_password_reset_need_the_secret_hash_too(aws):
    idp, _, client = pool_with_user(aws, GenerateSecret=True, ExplicitAuthFlows=FLOWS)
    cid = client["ClientId"]
    code, message = refused(lambda: idp.sign_up(ClientId=cid, Username="newcomer", Password=PASSWORD))
    assert (code, message) == ("NotAuthorizedException", f"Client {cid} is configured for secret but secret was not received")
    assert refused(lambda: idp.forgot_password(ClientId=cid, Username="tester"))[0] == "NotAuthorizedException"
    idp.sign_up(ClientId=cid, Username="newcomer", Password=PASSWORD,
                SecretHash=secret_hash(client["ClientSecret"], cid, "newcomer"))


def test_a_flow_the_client_does_not_allow_is_refused(aws):
    idp, pool, client = pool_with_user(aws, ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])
    cid = client["ClientId"]
    assert refused(sign_in(idp, cid)) == ("InvalidParameterException", "USER_PASSWORD_AUTH flow not enabled for this client")
    assert refused(lambda: idp.admin_initiate_auth(
        UserPoolId=pool, ClientId=cid, AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "tester", "PASSWORD": PASSWORD})) == (
        "InvalidParameterException", "Auth flow not enabled for this client")


def test_the_legacy_flow_names_still_count(aws):
    idp, _, client = pool_with_user(aws, ExplicitAuthFlows=["USER_PASSWORD_AUTH"])
    assert sign_in(idp, client["ClientId"])()["AuthenticationResult"]["IdToken"]


# -- CloudFront --------------------------------------------------------------------

def test_a_second_origin_access_control_with_the_same_name_is_refused(aws):
    cloudfront = aws.client("cloudfront")
    config = {"Name": "ada-site-oac", "SigningProtocol": "sigv4", "SigningBehavior": "always",
              "OriginAccessControlOriginType": "s3"}
    cloudfront.create_origin_access_control(OriginAccessControlConfig=config)
    code, _ = refused(lambda: cloudfront.create_origin_access_control(OriginAccessControlConfig=config))
    assert code == "OriginAccessControlAlreadyExists"
    cloudfront.create_origin_access_control(OriginAccessControlConfig={**config, "Name": "ada-other-oac"})
    assert len(cloudfront.list_origin_access_controls()["OriginAccessControlList"]["Items"]) == 2



def test_the_default_password_policy_asks_for_eight_characters(aws):
    idp, pool, _ = pool_with_user(aws, ExplicitAuthFlows=FLOWS)
    assert refused(lambda: idp.admin_set_user_password(UserPoolId=pool, Username="tester", Password="Aa1!xyz",
                                                       Permanent=True))[0] == "InvalidPasswordException"
    idp.admin_set_user_password(UserPoolId=pool, Username="tester", Password="Aa1!wxyz", Permanent=True)


# -- API Gateway and Lambda: a re-run that attaches or grants twice -------------------------

def test_attaching_a_key_twice_to_a_usage_plan_is_a_conflict(aws):
    apigw = aws.client("apigateway")
    plan = apigw.create_usage_plan(name="ada-orders-plan")["id"]
    key = apigw.create_api_key(name="ada-orders-key", enabled=True)["id"]
    apigw.create_usage_plan_key(usagePlanId=plan, keyId=key, keyType="API_KEY")
    assert refused(lambda: apigw.create_usage_plan_key(usagePlanId=plan, keyId=key, keyType="API_KEY"))[0] == "ConflictException"
    assert [k["id"] for k in apigw.get_usage_plan_keys(usagePlanId=plan)["items"]] == [key]


def test_a_statement_id_names_one_statement_of_a_function_policy(aws):
    import io
    import zipfile

    role = aws.client("iam").create_role(RoleName="ada-orders-fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    lam = aws.client("lambda")
    lam.create_function(FunctionName="ada-orders", Runtime="python3.13", Role=role, Handler="handler.handler",
                        Code={"ZipFile": code.getvalue()})
    grant = dict(FunctionName="ada-orders", StatementId="orders-api-invoke", Action="lambda:InvokeFunction",
                 Principal="apigateway.amazonaws.com")
    lam.add_permission(**grant)
    code_, message = refused(lambda: lam.add_permission(**grant))
    assert code_ == "ResourceConflictException" and "orders-api-invoke" in message
    lam.remove_permission(FunctionName="ada-orders", StatementId="orders-api-invoke")
    lam.add_permission(**grant)  # removed first, as the lab does: allowed again


# -- CloudWatch Logs ---------------------------------------------------------------------

def test_only_the_retention_periods_cloudwatch_offers_are_accepted(aws):
    logs = aws.client("logs")
    logs.create_log_group(logGroupName="/aws/lambda/ada-orders")
    code, message = refused(lambda: logs.put_retention_policy(logGroupName="/aws/lambda/ada-orders", retentionInDays=10))
    assert code == "InvalidParameterException" and "retentionInDays" in message and "14" in message
    logs.put_retention_policy(logGroupName="/aws/lambda/ada-orders", retentionInDays=14)
