"""Lookups and HTTP calls shared by the behaviour checks (labs 02 and 03; lab 06's probes from inside a VPC).

Behaviour checks call the deployed stage like any client would: through the
local gateway offline, through API Gateway itself on a live account. They
sign a test user in (Cognito InitiateAuth, which changes no resource) to
send authorised writes.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from labkit.errors import LabkitError
from labkit.target import Target

from .aws import absent

STAGE = "v1"


def api_name(t: Target) -> str:
    return t.name("orders-api")


def rest_api(t: Target) -> dict | None:
    """The learner's REST API (named <prefix>-orders-api), or None."""

    def look():
        for page in t.client("apigateway").get_paginator("get_rest_apis").paginate():
            for api in page.get("items", []):
                if api.get("name") == api_name(t):
                    return api
        return None

    return t.memo("api.rest_api", look)


def stage(t: Target) -> dict | None:
    api = rest_api(t)
    if api is None:
        return None
    return t.memo("api.stage", lambda: absent(
        lambda: t.client("apigateway").get_stage(restApiId=api["id"], stageName=STAGE), "NotFoundException"))


def routes(t: Target) -> dict:
    """{(METHOD, path): method dict with methodIntegration} for the learner's API."""
    api = rest_api(t)
    if api is None:
        return {}

    def look():
        found = {}
        for page in t.client("apigateway").get_paginator("get_resources").paginate(restApiId=api["id"], embed=["methods"]):
            for resource in page.get("items", []):
                for verb, method in (resource.get("resourceMethods") or {}).items():
                    found[(verb, resource["path"])] = dict(method, resourceId=resource["id"])
        return found

    return t.memo("api.routes", look)


def api_key_value(t: Target) -> str | None:
    """The value of the enabled key <prefix>-orders-key, or None."""

    def look():
        items = t.client("apigateway").get_api_keys(nameQuery=t.name("orders-key"), includeValues=True).get("items", [])
        return next((k["value"] for k in items if k.get("name") == t.name("orders-key") and k.get("enabled")), None)

    return t.memo("api.key", look)


def user_pool(t: Target) -> dict | None:
    """The course user pool <prefix>-users (described), or None."""

    def look():
        idp = t.client("cognito-idp")
        for page in idp.get_paginator("list_user_pools").paginate(MaxResults=60):
            for pool in page["UserPools"]:
                if pool["Name"] == t.name("users"):
                    return idp.describe_user_pool(UserPoolId=pool["Id"])["UserPool"]
        return None

    return t.memo("api.pool", look)


def user_pool_ids(t: Target) -> list[str]:
    """The ids of every user pool named <prefix>-users (Cognito allows the same name twice; the course wants one)."""

    def look():
        return [pool["Id"] for page in t.client("cognito-idp").get_paginator("list_user_pools").paginate(MaxResults=60)
                for pool in page["UserPools"] if pool["Name"] == t.name("users")]

    return t.memo("api.pool_ids", look)


def app_clients(t: Target) -> list[dict]:
    """Every app client named <prefix>-orders-web in the course user pool (one, when all is well)."""
    pool = user_pool(t)
    if pool is None:
        return []

    def look():
        idp = t.client("cognito-idp")
        return [c for page in idp.get_paginator("list_user_pool_clients").paginate(UserPoolId=pool["Id"], MaxResults=60)
                for c in page["UserPoolClients"] if c["ClientName"] == t.name("orders-web")]

    return t.memo("api.clients", look)


def _app_client(t: Target) -> dict | None:
    found = app_clients(t)
    return found[0] if found else None


def _tester(t: Target) -> tuple[dict | None, str]:
    """(the test user's {"username", "password"}, the SSM parameter's name), or (None, why there is none)."""
    name = f"/{t.prefix}/orders/tester"
    found = absent(lambda: t.client("ssm").get_parameter(Name=name, WithDecryption=True), "ParameterNotFound")
    if found is None:
        return None, f"There is no SSM parameter {name} with the test user's credentials"
    try:
        tester = json.loads(found["Parameter"]["Value"])
    except ValueError:
        tester = None
    if not (isinstance(tester, dict) and tester.get("username") and tester.get("password")):
        return None, f"SSM parameter {name} is not JSON with a username and a password"
    return tester, name


def id_token(t: Target) -> str | None:
    """An ID token for the test user kept in SSM at /<prefix>/orders/tester, or None (sign_in_problem says why)."""

    def look():
        tester, _ = _tester(t)
        client = _app_client(t)
        if tester is None or client is None:
            return None
        result = absent(lambda: t.client("cognito-idp").initiate_auth(
            ClientId=client["ClientId"], AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": tester["username"], "PASSWORD": tester["password"]}),
            "NotAuthorizedException", "UserNotFoundException", "InvalidParameterException",
            "PasswordResetRequiredException", "UserNotConfirmedException")  # AWS: flow not enabled, user not ready
        # A user still on a temporary password gets a NEW_PASSWORD_REQUIRED challenge, not tokens.
        return (result or {}).get("AuthenticationResult", {}).get("IdToken")

    return t.memo("api.token", look)


def sign_in_problem(t: Target) -> str:
    """Why the grader cannot sign the test user in (when id_token is None), in one clause."""
    tester, name_or_why = _tester(t)
    if tester is None:
        return name_or_why
    name = name_or_why
    if user_pool(t) is None:
        return f"There is no Cognito user pool named {t.name('users')}"
    summary = _app_client(t)
    client_name = t.name("orders-web")
    if summary is None:
        return f"User pool {t.name('users')} has no app client named {client_name}"
    client = t.client("cognito-idp").describe_user_pool_client(
        UserPoolId=user_pool(t)["Id"], ClientId=summary["ClientId"])["UserPoolClient"]
    if "ALLOW_USER_PASSWORD_AUTH" not in (client.get("ExplicitAuthFlows") or []):
        return f"App client {client_name} does not allow ALLOW_USER_PASSWORD_AUTH"
    if client.get("ClientSecret"):
        return f"App client {client_name} has a client secret; a browser app cannot keep one, so create it without"
    return (f"The test user {tester['username']} from {name} cannot sign in to app client {client_name} with "
            "the stored password (set it with admin_set_user_password, Permanent=True)")


def call(t: Target, method: str, path: str, body=None, headers: dict | None = None, raw: bytes | None = None):
    """(status, parsed JSON body or None, headers) for one request to the learner's stage."""
    if t.mode == "inprocess":
        raise LabkitError("Calling the API needs the local AWS process; in-process moto serves no APIs.")
    api = rest_api(t)
    if api is None:
        raise LabkitError(f"There is no REST API named {api_name(t)} to call.")
    url = t.invoke_url(api["id"], STAGE) + path
    where = "the local gateway (is `python -m labkit up` running?)" if t.is_local else "API Gateway"
    return send(t, method, url, body=body, headers=headers, raw=raw, where=where)


LOOPBACK = ("localhost", "127.0.0.1", "::1")


def send(t: Target, method: str, url: str, body=None, headers: dict | None = None, raw: bytes | None = None,
         where: str = "the learner's endpoint", timeout: float = 30, text: bool = False):
    """(status, parsed JSON body (or with ``text`` the body's text when it is not JSON; else None), headers) for one request to a URL the learner's resources answer at.

    Locally only loopback is ever called: the local AWS serves everything there.
    """
    from urllib.parse import urlsplit

    if t.is_local and (urlsplit(url).hostname or "") not in LOOPBACK and not (urlsplit(url).hostname or "").startswith("127."):
        raise LabkitError(f"{url} is not a loopback address; the local grader calls nothing else.")
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, payload, out = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        status, payload, out = error.code, error.read(), dict(error.headers)
    except (urllib.error.URLError, OSError) as exc:
        raise LabkitError(f"Could not reach {where} at {url}: {getattr(exc, 'reason', exc)}.") from None
    try:
        parsed = json.loads(payload) if payload else None
    except ValueError:
        parsed = payload.decode("utf-8", "replace") if text else None
    return status, parsed, out


def call_patiently(t: Target, method: str, path: str, **kwargs):
    """``call``, waiting out a throttle (429 Too Many Requests) the way a polite client does.

    A used-up quota (429 Limit Exceeded) does not come back in seconds, so it is returned at once.
    """
    delay = 0.1  # a plan refilling 10 tokens a second has one again after 0.1 s
    for _ in range(8):
        status, body, headers = call(t, method, path, **kwargs)
        if status != 429 or message(body) != "Too Many Requests":
            break
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
    return status, body, headers


def message(body) -> str:
    """The "message" of an API Gateway style answer, or ""."""
    return str(body.get("message") or "") if isinstance(body, dict) else ""


def answer(status: int, body) -> str:
    """A response in a few words: the status and what came back (with the local gateway's note, if any)."""
    if isinstance(body, dict) and "message" in body:
        note = f"; local gateway: {body['localNote']}" if body.get("localNote") else ""
        return f"{status} {{\"message\": {json.dumps(body['message'])}}}{note}"
    if body is None:
        return f"{status} with no body"
    shown = json.dumps(body)
    return f"{status} {shown if len(shown) <= 80 else shown[:77] + '...'}"


def invoke(t: Target, function: str, method: str, resource: str, body=None, **params) -> tuple[int | None, object]:
    """(status, parsed body) of the learner's function, invoked with the proxy event API Gateway would send
    (local only: the live grader sends reads only). Status None: the function crashed or answered no proxy response."""
    path = resource
    for name, value in params.items():
        path = path.replace("{" + name + "}", value)
    event = {"httpMethod": method, "resource": resource, "path": path, "pathParameters": params or None,
             "body": None if body is None else json.dumps(body), "isBase64Encoded": False, "headers": {},
             "requestContext": {"resourcePath": resource, "httpMethod": method, "stage": STAGE}}
    result = t.behaviour_client("lambda", "Invoke").invoke(FunctionName=function, Payload=json.dumps(event).encode())
    try:
        answer = json.loads(result["Payload"].read() or b"null")
    except ValueError:
        return None, None
    if result.get("FunctionError") or not isinstance(answer, dict) or "statusCode" not in answer:
        return None, answer
    try:
        parsed = json.loads(answer.get("body") or "null")
    except ValueError:
        parsed = answer.get("body")
    return answer["statusCode"], parsed


def probe(t: Target, vpc_id: str, url: str, groups: list[str], subnet: str | None = None) -> dict:
    """One request to the learner's service from inside VPC ``vpc_id``, from an address carrying security groups
    ``groups`` (``labkit.vpc.probe``: the local AWS only; its answer says which mode carried it)."""
    import labkit.vpc

    if t.is_live:
        raise LabkitError("A probe from inside a VPC runs on the local AWS only.")
    return labkit.vpc.probe(vpc_id, url, security_group_ids=groups, subnet_id=subnet, timeout=5.0)
