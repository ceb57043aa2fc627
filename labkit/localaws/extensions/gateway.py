"""The local API gateway: serves the REST APIs defined in the local AWS.

moto stores API Gateway configuration but cannot answer requests to a
deployed stage. This gateway does, at ``http://localhost:<port>/_api/<api id>/<stage>/...``,
in the order API Gateway applies its rules:

1. route: resource and method (path parameters, greedy ``{proxy+}``, ANY),
   else 403 "Missing Authentication Token";
2. Cognito user pool authorizer: a JWT from the pool, signature checked
   against its JWKS, else 401;
3. API key of a usage plan on this stage, else 403 "Forbidden";
4. throttling (usage plan per key, then stage method settings) as token
   buckets, and the plan's quota: 429;
5. request validation (required parameters, body against the model): 400;
6. the stage cache, for methods with caching enabled;
7. the integration: MOCK, or Lambda proxy into the Lambda runner (``lambdarun.py``)
   (502 on a bad proxy response, 500 when API Gateway may not invoke it or Lambda
   throttles it).

Bodies over API Gateway's 10 MB limit are refused (413) before they are read, in ``http.py``.

The definition is read through the ordinary API Gateway read calls and kept
until the next change to API Gateway or Cognito, so a learner's fix takes
effect on the next request without restarting anything. As on AWS, a stage
serves the resources and methods of its deployment: a changed method needs
``create_deployment`` before callers see it (keys, plans and stage settings
apply at once).
"""
from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from ..fidelity.apigateway import DEPLOYED
from ..http import Request as HTTPRequest
from ..http import Response
from . import Claim, Extension

log = logging.getLogger("labkit.gateway")
PREFIX = "/_api/"
LAMBDA_URI = re.compile(r"^arn:aws[\w-]*:apigateway:[\w-]+:lambda:path/2015-03-31/functions/(?P<arn>.+)/invocations$")
MODEL_REF = re.compile(r"https://apigateway\.amazonaws\.com/restapis/[^/]+/models/(?P<name>[\w.-]+)")
PERIOD_SECONDS = {"DAY": 86400, "WEEK": 7 * 86400, "MONTH": 30 * 86400}


def invoke_url(endpoint: str, api_id: str, stage: str) -> str:
    return f"{endpoint.rstrip('/')}{PREFIX}{api_id}/{stage}"


# -- responses ---------------------------------------------------------------

def gateway_error(status: int, message: str, error_type: str, note: str | None = None) -> Response:
    body = {"message": message}
    if note:
        body["localNote"] = note  # clients read "message"; the note says why, for the learner
    return Response(status, json.dumps(body).encode(),
                    {"Content-Type": "application/json", "x-amzn-ErrorType": error_type})


# -- throttling ----------------------------------------------------------------

class Bucket:
    """A token bucket: ``burst`` requests at once, refilled at ``rate`` per second."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = float(rate), int(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


# -- the definition ---------------------------------------------------------

@dataclass
class Route:
    path: str  # the resource path, e.g. /orders/{orderId}
    resource_id: str
    methods: dict  # HTTP method -> method dict (with methodIntegration)


@dataclass
class Definition:
    api: dict
    region: str
    account: str
    stage: dict
    routes: list
    authorizers: dict
    validators: dict
    models: dict
    plans: list  # [{"plan": plan, "stage": apiStage, "keys": {value: key}}]


def load_definition(client, api_id: str, stage_name: str, region: str, account: str,
                    deployed=lambda key: None) -> Definition | None:
    """The stage as it serves: the routes of its deployment, with today's keys, plans and authorizers."""
    from botocore.exceptions import ClientError

    try:
        api = client.get_rest_api(restApiId=api_id)
        stage = client.get_stage(restApiId=api_id, stageName=stage_name)
    except ClientError:
        return None
    snapshot = deployed((api_id, stage.get("deploymentId")))
    if snapshot is None:  # a deployment made before this process started keeping snapshots
        snapshot = [item for page in client.get_paginator("get_resources").paginate(restApiId=api_id, embed=["methods"])
                    for item in page["items"]]
    routes = [Route(item["path"], item["id"], item.get("resourceMethods") or {}) for item in snapshot]
    authorizers = {a["id"]: a for a in client.get_authorizers(restApiId=api_id).get("items", [])}
    validators = {v["id"]: v for v in client.get_request_validators(restApiId=api_id).get("items", [])}
    models = {}
    for model in client.get_models(restApiId=api_id).get("items", []):
        try:
            models[model["name"]] = json.loads(model.get("schema") or "{}")
        except ValueError:
            models[model["name"]] = None  # an unparsable model rejects every body, as on AWS
    plans = []
    for plan in client.get_usage_plans().get("items", []):
        for api_stage in plan.get("apiStages", []):
            if api_stage.get("apiId") == api_id and api_stage.get("stage") == stage_name:
                keys = {}
                for key in client.get_usage_plan_keys(usagePlanId=plan["id"]).get("items", []):
                    full = client.get_api_key(apiKey=key["id"], includeValue=True)
                    keys[full.get("value")] = full
                plans.append({"plan": plan, "stage": api_stage, "keys": keys})
    return Definition(api, region, account, stage, routes, authorizers, validators, models, plans)


def match_route(routes: list, path: str) -> tuple[Route, dict] | None:
    """The best resource for a request path: static segments beat {param}, which beat {proxy+}."""
    parts = [p for p in path.split("/") if p]
    best = None
    for route in routes:
        params = _match(route.path, parts)
        if params is None:
            continue
        score = tuple(0 if s.endswith("+}") else 1 if s.startswith("{") else 2
                      for s in route.path.strip("/").split("/") if s)
        if best is None or score > best[0]:
            best = (score, route, params)
    return (best[1], best[2]) if best else None


def _match(resource_path: str, parts: list[str]) -> dict | None:
    segments = [s for s in resource_path.split("/") if s]
    params: dict = {}
    for i, seg in enumerate(segments):
        if seg.startswith("{") and seg.endswith("+}"):
            if i >= len(parts):
                return None
            params[seg[1:-2]] = "/".join(parts[i:])
            return params
        if i >= len(parts):
            return None
        if seg.startswith("{") and seg.endswith("}"):
            params[seg[1:-1]] = unquote(parts[i])
        elif seg != parts[i]:
            return None
    return params if len(segments) == len(parts) else None


def method_setting(stage: dict, resource_path: str, method: str, name: str, default=None):
    """A stage method setting: the method's own entry first, then */*."""
    settings = stage.get("methodSettings") or {}
    own = resource_path.lstrip("/").replace("/", "~1")
    for key in (f"~1{own}/{method}", f"{own}/{method}", f"{resource_path.lstrip('/')}/{method}", "*/*"):
        if key in settings and name in settings[key]:
            return settings[key][name]
    return default


# -- the gateway ------------------------------------------------------------

class Gateway(Extension):
    name = "gateway"
    # Writes to these services change what a stage serves: its definition is read again.
    services = ("apigateway", "cognito-idp", "lambda")

    def __init__(self, host):
        super().__init__(host)
        self.endpoint = host.endpoint
        self.generation = 0  # bumped by every write that can change a served API
        self.lock = threading.Lock()
        self.definitions: dict = {}
        self.buckets: dict = {}
        self.quotas: dict = {}
        self.cache: dict = {}
        self._clients: dict = {}
        # A burst of requests to a stage not loaded yet must load it once, not once per request:
        # each load is a dozen calls back into the local AWS, and each client costs ~100 ms to build.
        self._loading = threading.Lock()

    # -- the extension protocol ---------------------------------------------
    def claims(self, request: HTTPRequest) -> Claim | None:
        return Claim.DATA if request.path.startswith(PREFIX) else None

    def written(self, service, request) -> None:
        self.generation += 1

    def reset(self) -> None:
        DEPLOYED.clear()
        self.clear()

    def restored(self) -> None:
        self.generation += 1

    def status(self) -> dict:
        return {"stages_loaded": len(self.definitions)}

    @property
    def runtime(self):
        return self.host.extension("lambda")

    def locate(self, api_id: str):
        """(region, account) of a REST API, or None."""
        from moto.apigateway.models import apigateway_backends

        def look():
            for account, regions in apigateway_backends.items():
                for region, backend in regions.items():
                    if api_id in backend.apis:
                        return region, account
            return None

        return self.host.read_backend(look)

    def client(self, service: str, region: str):
        key = (service, region)
        with self._loading:
            return self._client(key, service, region)

    def _client(self, key, service: str, region: str):
        if key not in self._clients:
            import boto3
            from botocore.config import Config

            self._clients[key] = boto3.client(service, region_name=region, endpoint_url=self.endpoint,
                                              aws_access_key_id="testing", aws_secret_access_key="testing",
                                              config=Config(retries={"max_attempts": 1}))
        return self._clients[key]

    def clear(self) -> None:
        """Forget counters, quotas and cached responses (the local AWS was reset)."""
        with self.lock:
            self.definitions.clear()
            self.buckets.clear()
            self.quotas.clear()
            self.cache.clear()

    def definition(self, api_id: str, stage: str) -> Definition | None:
        where = self.locate(api_id)
        if where is None:
            return None
        generation = self.generation
        cached = self.definitions.get((api_id, stage))
        if cached and cached[0] == generation:
            return cached[1]
        with self._loading:
            cached = self.definitions.get((api_id, stage))
            if cached and cached[0] == generation:  # another request loaded it while this one waited
                return cached[1]
            client = self._client(("apigateway", where[0]), "apigateway", where[0])
            found = load_definition(client, api_id, stage, *where, deployed=DEPLOYED.get)
            with self.lock:
                self.definitions[(api_id, stage)] = (generation, found)
                # Changed configuration starts fresh counters and an empty cache, like a redeploy.
                self.cache = {k: v for k, v in self.cache.items() if k[0] != api_id}
        return found

    # -- serving --------------------------------------------------------------
    def handle(self, request: HTTPRequest) -> Response:
        try:
            response = self.serve(request)
        except Exception as exc:  # a bug here must look like API Gateway's 500, and be logged
            log.exception("local gateway failed")
            response = gateway_error(500, "Internal server error", "InternalServerErrorException",
                                     f"The local gateway failed: {type(exc).__name__}: {exc}")
        request_id = str(uuid.uuid4())
        headers = {"x-amzn-RequestId": request_id, "x-amz-apigw-id": request_id[:16], **response.headers}
        if "content-type" not in {k.lower() for k in headers}:
            headers["Content-Type"] = "application/json"
        return Response(response.status, response.body, headers)

    def serve(self, request: HTTPRequest) -> Response:
        raw = request.path[len(PREFIX):]
        api_id, _, rest = raw.partition("/")
        stage_name, _, path = rest.partition("/")
        path = "/" + path
        method = request.method
        headers = {k.lower(): v for k, v in request.headers.items()}
        query = parse_qsl(request.query, keep_blank_values=True)
        body = request.body

        definition = self.definition(api_id, stage_name) if api_id and stage_name else None
        if definition is None:
            return gateway_error(403, "Forbidden", "ForbiddenException",
                                 f"No deployed stage {stage_name!r} of a REST API {api_id!r} in the local AWS; "
                                 "`python -m labkit api` lists the invoke URLs.")
        matched = match_route(definition.routes, path)
        chosen = None
        if matched:
            route, params = matched
            chosen = route.methods.get(method) or route.methods.get("ANY")
        if not chosen:
            return gateway_error(403, "Missing Authentication Token", "MissingAuthenticationTokenException")
        request = Request(definition, route, chosen, method, path, params, headers, query, body)
        return self.process(request)

    def process(self, r: "Request") -> Response:
        for step in (self.authorize, self.api_key, self.throttle, self.validate):
            failure = step(r)
            if failure:
                return failure
        key = self.cache_key(r)
        if key:
            hit = self.cache.get(key)
            if hit and hit[0] > time.monotonic():
                return hit[1]
        response = self.integrate(r)
        if key and 200 <= response.status < 300:
            ttl = method_setting(r.d.stage, r.route.path, r.method, "cacheTtlInSeconds", 300)
            self.cache[key] = (time.monotonic() + float(ttl), response)
        return response

    # -- 2. authorizers -------------------------------------------------------
    def authorize(self, r: "Request") -> Response | None:
        kind = r.method_def.get("authorizationType", "NONE")
        if kind == "NONE":
            return None
        if kind != "COGNITO_USER_POOLS":
            return gateway_error(500, "Internal server error", "AuthorizerConfigurationException",
                                 f"The local gateway supports Cognito user pool authorizers only, not {kind}.")
        authorizer = r.d.authorizers.get(r.method_def.get("authorizerId") or "")
        if authorizer is None:
            return gateway_error(500, "Internal server error", "AuthorizerConfigurationException",
                                 "The method names an authorizer that does not exist.")
        source = (authorizer.get("identitySource") or "method.request.header.Authorization").rsplit(".", 1)[-1]
        token = r.headers.get(source.lower(), "")
        if token.lower().startswith("bearer "):
            token = token[7:]
        if not token:
            return gateway_error(401, "Unauthorized", "UnauthorizedException")
        claims = verify_cognito_token(token, authorizer.get("providerARNs") or [], r.method_def.get("authorizationScopes"))
        if claims is None:
            return gateway_error(401, "Unauthorized", "UnauthorizedException")
        r.claims = claims
        return None

    # -- 3. API keys ----------------------------------------------------------
    def api_key(self, r: "Request") -> Response | None:
        value = r.headers.get("x-api-key")
        if value:
            for entry in r.d.plans:
                key = entry["keys"].get(value)
                if key and key.get("enabled", True):
                    r.plan, r.key = entry, key
                    break
        if r.method_def.get("apiKeyRequired") and r.key is None:
            return gateway_error(403, "Forbidden", "ForbiddenException")
        return None

    # -- 4. throttling and quotas --------------------------------------------
    def throttle(self, r: "Request") -> Response | None:
        limits = []
        if r.plan:
            plan = r.plan["plan"]
            own = (r.plan["stage"].get("throttle") or {}).get(f"{r.route.path}/{r.method}")
            chosen = own or plan.get("throttle")
            if chosen:
                limits.append((("key", plan["id"], r.key["id"], bool(own) and r.route.path, r.method),
                               chosen.get("rateLimit", 0), chosen.get("burstLimit", 0)))
        rate = method_setting(r.d.stage, r.route.path, r.method, "throttlingRateLimit")
        burst = method_setting(r.d.stage, r.route.path, r.method, "throttlingBurstLimit")
        if rate is not None and burst is not None:
            limits.append((("stage", r.d.api["id"], r.d.stage["stageName"], r.route.path, r.method), rate, burst))
        with self.lock:
            for ident, rate, burst in limits:
                bucket = self.buckets.get(ident)
                if bucket is None or (bucket.rate, bucket.burst) != (float(rate), int(burst)):
                    bucket = self.buckets[ident] = Bucket(rate, burst)
                if not bucket.take():
                    return gateway_error(429, "Too Many Requests", "TooManyRequestsException")
            quota = r.plan["plan"].get("quota") if r.plan else None
            if quota:
                period = PERIOD_SECONDS.get(quota.get("period", "DAY"), 86400)
                window = int(time.time() // period)
                ident = (r.plan["plan"]["id"], r.key["id"], window)
                used = self.quotas.get(ident, 0)
                if used >= int(quota.get("limit", 0)):
                    return gateway_error(429, "Limit Exceeded", "LimitExceededException")
                self.quotas[ident] = used + 1
        return None

    # -- 5. request validation --------------------------------------------
    def validate(self, r: "Request") -> Response | None:
        validator = r.d.validators.get(r.method_def.get("requestValidatorId") or "")
        if not validator:
            return None
        if validator.get("validateRequestParameters"):
            missing = []
            for name, required in (r.method_def.get("requestParameters") or {}).items():
                if not required:
                    continue
                _, _, where, param = name.split(".", 3)
                present = {"path": r.params, "querystring": dict(r.query),
                           "header": r.headers}.get(where, {})
                if (param.lower() if where == "header" else param) not in present:
                    missing.append(param)
            if missing:
                return gateway_error(400, f"Missing required request parameters: [{', '.join(missing)}]",
                                     "BadRequestException")
        if validator.get("validateRequestBody"):
            models = r.method_def.get("requestModels") or {}
            content_type = (r.headers.get("content-type") or "application/json").split(";")[0].strip()
            model = models.get(content_type) or models.get("application/json")
            if model and not body_is_valid(r.body, model, r.d.models):
                return gateway_error(400, "Invalid request body", "BadRequestException")
        return None

    # -- 6. cache -------------------------------------------------------------
    def cache_key(self, r: "Request"):
        """The resource, the method and the declared cache key parameters, as API Gateway keys its cache.

        Path parameters count only when declared: without
        ``method.request.path.orderId`` every order id shares one entry.
        """
        if not r.d.stage.get("cacheClusterEnabled"):
            return None
        if not method_setting(r.d.stage, r.route.path, r.method, "cachingEnabled", False):
            return None
        declared = (r.method_def.get("methodIntegration") or {}).get("cacheKeyParameters") or []
        sources = {"path": r.params, "querystring": dict(r.query), "header": r.headers}
        values = []
        for name in declared:
            _, _, where, param = (name.split(".", 3) + ["", "", "", ""])[:4]
            values.append((name, sources.get(where, {}).get(param.lower() if where == "header" else param)))
        return (r.d.api["id"], r.d.stage["stageName"], r.method, r.route.path, tuple(values))

    # -- 7. integrations ------------------------------------------------------
    def integrate(self, r: "Request") -> Response:
        integration = r.method_def.get("methodIntegration") or {}
        kind = integration.get("type")
        if kind == "MOCK":
            return mock_response(integration, r)
        if kind == "AWS_PROXY":
            return self.lambda_proxy(integration, r)
        return gateway_error(500, "Internal server error", "InternalServerErrorException",
                             f"The method has no integration the local gateway can run ({kind or 'none'}); "
                             "use MOCK or a Lambda proxy (AWS_PROXY) integration.")

    def lambda_proxy(self, integration: dict, r: "Request") -> Response:
        found = LAMBDA_URI.match(integration.get("uri") or "")
        if not found:
            return gateway_error(500, "Internal server error", "InternalServerErrorException",
                                 "The AWS_PROXY integration's uri does not name a Lambda function.")
        try:
            spec, policy = self.runtime.spec(found.group("arn"))
        except LookupError as exc:
            return gateway_error(500, "Internal server error", "InternalServerErrorException", str(exc))
        source_arn = (f"arn:aws:execute-api:{r.d.region}:{r.d.account}:{r.d.api['id']}/{r.d.stage['stageName']}/"
                      f"{r.method}{r.route.path}")
        if not may_invoke(policy, source_arn):
            return gateway_error(500, "Internal server error", "InternalServerErrorException",
                                 f"Execution failed due to configuration error: Invalid permissions on Lambda function "
                                 f"{spec.name}: no permission lets apigateway.amazonaws.com invoke it from {source_arn}.")
        timeout_s = int(integration.get("timeoutInMillis") or 29000) / 1000  # API Gateway's own patience
        result = self.runtime.runner.invoke(spec, proxy_event(r), caller_timeout_s=timeout_s)
        if result.throttled:
            # A throttled Lambda behind a proxy integration is API Gateway's 500, not a 429: the 429 is
            # for API Gateway's own throttles (AWS Knowledge Center, "api-gateway-internal-server-error":
            # "If the backend service is throttled ... API Gateway can return an Internal Server Error").
            return gateway_error(500, "Internal server error", "InternalServerErrorException",
                                 f"{spec.name} was throttled by Lambda ({result.throttled}): more requests at once "
                                 "than its concurrency allows.")
        if result.function_error:
            error = result.body or {}
            if error.get("errorType") == "Sandbox.Timedout" and spec.timeout >= timeout_s:
                return gateway_error(504, "Endpoint request timed out", "IntegrationTimeoutException")
            note = f"{spec.name} failed: {error.get('errorType')}: {error.get('errorMessage')}"
            return gateway_error(502, "Internal server error", "InternalServerErrorException", note)
        return proxy_response(result.body)


@dataclass
class Request:
    d: Definition
    route: Route
    method_def: dict
    method: str
    path: str
    params: dict
    headers: dict
    query: list
    body: bytes
    claims: dict | None = None
    plan: dict | None = None
    key: dict | None = None


# -- pieces -----------------------------------------------------------------

def verify_cognito_token(token: str, provider_arns: list[str], scopes=None) -> dict | None:
    """The token's claims when a pool named by the authorizer issued it and it is unexpired, else None."""
    from joserfc import jwk, jwt
    from joserfc.errors import JoseError
    from moto.utilities.utils import load_resource

    try:
        key = jwk.RSAKey.import_key(load_resource("cognitoidp/resources/jwks-public.json")["keys"][0])
        claims = jwt.decode(token, key).claims
    except (JoseError, ValueError, KeyError, IndexError, TypeError):
        return None
    issuers = {f"https://cognito-idp.{arn.split(':')[3]}.amazonaws.com/{arn.rsplit('/', 1)[-1]}" for arn in provider_arns}
    if claims.get("iss") not in issuers or float(claims.get("exp", 0)) < time.time():
        return None
    if scopes:  # with scopes, API Gateway wants an access token carrying one of them
        granted = set((claims.get("scope") or "").split())
        return claims if claims.get("token_use") == "access" and granted.intersection(scopes) else None
    return claims if claims.get("token_use") == "id" else None


def body_is_valid(body: bytes, model_name: str, models: dict) -> bool:
    import jsonschema

    schema = models.get(model_name)
    if schema is None:
        return False
    try:
        document = json.loads(body or b"null")
    except ValueError:
        return False
    resolved = _inline_refs(schema, models, set())
    try:
        jsonschema.Draft4Validator(resolved).validate(document)
    except jsonschema.ValidationError:
        return False
    except jsonschema.SchemaError:
        return False
    return True


def _inline_refs(node, models: dict, seen: set):
    # Model schemas point at each other by URL; inline them so a plain validator can follow.
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and MODEL_REF.match(ref):
            name = MODEL_REF.match(ref).group("name")
            if name in seen or models.get(name) is None:
                return {}
            return _inline_refs(models[name], models, seen | {name})
        return {k: _inline_refs(v, models, seen) for k, v in node.items() if k != "$schema"}
    if isinstance(node, list):
        return [_inline_refs(v, models, seen) for v in node]
    return node


def mock_response(integration: dict, r: Request) -> Response:
    template = (integration.get("requestTemplates") or {}).get("application/json") or '{"statusCode": 200}'
    try:
        status = str(json.loads(template).get("statusCode", 200))
    except (ValueError, AttributeError):
        status = "200"
    responses = integration.get("integrationResponses") or {}
    chosen = None
    for response in responses.values():
        pattern = response.get("selectionPattern")
        if pattern and re.fullmatch(pattern, status):
            chosen = response
            break
    chosen = chosen or next((x for x in responses.values() if not x.get("selectionPattern")), None)
    if chosen is None:
        return gateway_error(500, "Internal server error", "InternalServerErrorException",
                             "The MOCK integration has no integration response for status " + status)
    headers = {}
    for name, value in (chosen.get("responseParameters") or {}).items():
        if name.startswith("method.response.header.") and value.startswith("'"):
            headers[name.rsplit(".", 1)[-1]] = value.strip("'")
    body = (chosen.get("responseTemplates") or {}).get("application/json") or ""
    return Response(int(chosen.get("statusCode", 200)), body.encode(), headers)


def may_invoke(policy: dict | None, source_arn: str) -> bool:
    """Whether the function's resource policy lets API Gateway invoke it from this method, judged as IAM does
    (an explicit Deny wins; SourceArn and SourceAccount are what API Gateway sends)."""
    from labkit.policyeval import Principal, evaluate

    account = source_arn.split(":")[4] if source_arn.count(":") >= 5 else None
    return evaluate(policy or {}, action="lambda:InvokeFunction", principal=Principal.service("apigateway.amazonaws.com"),
                    context={"aws:SourceArn": source_arn, "aws:SourceAccount": account,
                             "aws:SecureTransport": True}).allowed


def proxy_event(r: Request) -> dict:
    """API Gateway's Lambda proxy event, format 1.0."""
    single_query = dict(r.query) or None
    multi_query: dict = {}
    for k, v in r.query:
        multi_query.setdefault(k, []).append(v)
    headers = {_title(k): v for k, v in r.headers.items()}
    now = time.time()
    try:
        body = r.body.decode("utf-8") if r.body else None
        encoded = False
    except UnicodeDecodeError:
        body, encoded = base64.b64encode(r.body).decode(), True
    stage = r.d.stage["stageName"]
    context = {
        "resourceId": r.route.resource_id, "resourcePath": r.route.path, "httpMethod": r.method,
        "extendedRequestId": uuid.uuid4().hex[:16], "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "path": f"/{stage}{r.path}", "accountId": r.d.account, "protocol": "HTTP/1.1", "stage": stage,
        "domainPrefix": r.d.api["id"], "requestTimeEpoch": int(now * 1000), "requestId": str(uuid.uuid4()),
        "identity": {"sourceIp": "127.0.0.1", "userAgent": r.headers.get("user-agent"),
                     "apiKey": r.key.get("value") if r.key else None, "apiKeyId": r.key.get("id") if r.key else None},
        "domainName": f"{r.d.api['id']}.execute-api.{r.d.region}.amazonaws.com", "apiId": r.d.api["id"],
    }
    if r.claims is not None:
        context["authorizer"] = {"claims": {k: str(v) for k, v in r.claims.items()}}
    return {
        "resource": r.route.path, "path": r.path, "httpMethod": r.method,
        "headers": headers or None, "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
        "queryStringParameters": single_query, "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": r.params or None, "stageVariables": r.d.stage.get("variables") or None,
        "requestContext": context, "body": body, "isBase64Encoded": encoded,
    }


# The only fields API Gateway reads from a REST API's Lambda proxy answer; any other is a malformed response.
PROXY_FIELDS = ("statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded")


def malformed(result) -> str | None:
    """Why ``result`` is not a Lambda proxy response API Gateway (REST) accepts, or None.

    API Gateway answers 502 to each of these rather than coercing them, so
    the local gateway does too (a header value of 42 must be "42" in the handler).
    """
    if not isinstance(result, dict):
        return f"the handler returned {type(result).__name__}, not a dict with statusCode"
    extra = sorted(str(k) for k in result if k not in PROXY_FIELDS)
    if extra:
        return f"the handler's response has the field(s) {', '.join(extra)}; only {', '.join(PROXY_FIELDS)} are allowed"
    code = result.get("statusCode")
    if not isinstance(code, int) or isinstance(code, bool):
        return f"the handler's statusCode is {code!r}, not an integer"
    if result.get("body") is not None and not isinstance(result["body"], str):
        return "the handler's response body is not a string (use json.dumps)"
    if result.get("isBase64Encoded") is not None and not isinstance(result["isBase64Encoded"], bool):
        return "the handler's isBase64Encoded is not true or false"
    if result.get("isBase64Encoded"):
        try:
            base64.b64decode(result.get("body") or "", validate=True)
        except ValueError:
            return "the handler says its body is base64 but it is not"
    headers, multi = result.get("headers"), result.get("multiValueHeaders")
    if headers is not None and not isinstance(headers, dict):
        return "the handler's response headers are not an object"
    bad = [str(k) for k, v in (headers or {}).items() if not isinstance(v, str)]
    if bad:
        return f"the value of header(s) {', '.join(bad)} is not a string (headers take strings: str(value))"
    if multi is not None and not isinstance(multi, dict):
        return "the handler's multiValueHeaders is not an object"
    bad = [str(k) for k, v in (multi or {}).items() if not (isinstance(v, list) and all(isinstance(i, str) for i in v))]
    if bad:
        return f"multiValueHeaders {', '.join(bad)} is not a list of strings"
    return None


def proxy_response(result) -> Response:
    """The handler's answer, or API Gateway's 502 when it is not a proxy response."""
    bad = malformed(result)
    if bad:
        return gateway_error(502, "Internal server error", "InternalServerErrorException",
                             f"Malformed Lambda proxy response: {bad}.")
    headers = dict(result.get("headers") or {})
    for name, values in (result.get("multiValueHeaders") or {}).items():
        if values:
            headers[name] = ", ".join(values)
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    return Response(result["statusCode"], data, headers)


def _title(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


EXTENSION = Gateway
