"""Lab 02 (API first): the contract, the REST API, and its behaviour through the gateway."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from labkit.config import work_dir
from labkit.errors import LabkitError
from labkit.openapi import load_contract, operations, validate_contract_remembered
from labkit.target import Target

from .api import (STAGE, answer, api_key_value, api_name, app_clients, call, call_patiently, id_token, message,
                  rest_api, routes, sign_in_problem, stage, user_pool, user_pool_ids)
from .aws import absent, missing_tags
from .core import check, failed, passed

DOCS = "labs/02-api-first.md"
CONTRACT_FILE = "orders-api.yaml"
OPERATIONS = {
    ("GET", "/orders"): "listOrders",
    ("POST", "/orders"): "createOrder",
    ("GET", "/orders/{orderId}"): "getOrder",
    ("DELETE", "/orders/{orderId}"): "deleteOrder",
}
READS = (("GET", "/orders"), ("GET", "/orders/{orderId}"))
WRITES = (("POST", "/orders"), ("DELETE", "/orders/{orderId}"))
CACHE_TTL = 30
ORDER_ID_KEY = "method.request.path.orderId"
BURST = 30  # requests sent to provoke the usage plan's throttle (burst 5, rate 10)
BAD_ORDER = {"items": [{"sku": "BOOK-1", "quantity": 1}]}  # no customerId


def _route(method: str, path: str) -> str:
    return f"{method} {path}"


# -- the contract file ----------------------------------------------------------

def contract_path() -> Path:
    return work_dir() / CONTRACT_FILE


def _contract(t: Target) -> tuple[dict | None, str | None]:
    """(the saved contract, None) or (None, why it cannot be used)."""

    def look():
        path = contract_path()
        if not path.exists():
            return None, f"There is no contract at {path}; save your OpenAPI document there."
        try:
            return load_contract(path), None
        except LabkitError as exc:
            return None, str(exc)

    return t.memo("lab02.contract", look)


def _schema(spec: dict, node) -> dict:
    """A schema with a $ref to components.schemas followed (one level at a time)."""
    seen = set()
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"] not in seen:
        seen.add(node["$ref"])
        name = node["$ref"].rsplit("/", 1)[-1]
        node = ((spec.get("components") or {}).get("schemas") or {}).get(name)
    return node if isinstance(node, dict) else {}


def _new_order_problems(spec: dict) -> list[str]:
    schema = _schema(spec, ((spec.get("components") or {}).get("schemas") or {}).get("NewOrder"))
    if not schema:
        return ["components.schemas has no NewOrder"]
    problems = []
    missing = [f for f in ("customerId", "items") if f not in (schema.get("required") or [])]
    if missing:
        problems.append(f"NewOrder does not require {' and '.join(missing)}")
    props = schema.get("properties") or {}
    if _schema(spec, props.get("customerId")).get("type") != "string":
        problems.append("NewOrder.customerId is not a string")
    items = _schema(spec, props.get("items"))
    if items.get("type") != "array" or not isinstance(items.get("minItems"), int) or items["minItems"] < 1:
        problems.append("NewOrder.items is not an array with minItems 1")
    else:
        line = _schema(spec, items.get("items"))
        line_props = line.get("properties") or {}
        quantity = _schema(spec, line_props.get("quantity"))
        if not {"sku", "quantity"} <= set(line.get("required") or []):
            problems.append("an item does not require sku and quantity")
        elif quantity.get("type") != "integer" or quantity.get("minimum") != 1:
            problems.append("an item's quantity is not an integer with minimum 1")
    return problems


@check("L02.01", "The contract is valid OpenAPI 3", step=2, points=2,
       hint="Write the contract as a dict, yaml.safe_dump it to work/orders-api.yaml, and run "
            "labkit.openapi.validate_contract on it until it passes.",
       docs=f"{DOCS}#the-contract")
def contract_valid(t: Target):
    spec, problem = _contract(t)
    if spec is None:
        return failed(problem)
    try:
        validate_contract_remembered(spec)
    except LabkitError as exc:
        return failed(f"{CONTRACT_FILE}: {exc}")
    return passed(f"{CONTRACT_FILE} is valid OpenAPI {spec.get('openapi')} ({len(operations(spec))} operations).")


@check("L02.02", "The contract covers the four order operations and the NewOrder schema", step=2, points=2,
       hint="Paths /orders (get listOrders, post createOrder) and /orders/{orderId} (get getOrder, delete "
            "deleteOrder); components.schemas.NewOrder as in the docs; POST's requestBody refers to NewOrder.",
       docs=f"{DOCS}#the-contract")
def contract_covers(t: Target):
    spec, problem = _contract(t)
    if spec is None:
        return failed(problem)
    problems = []
    paths = spec.get("paths") if isinstance(spec.get("paths"), dict) else {}
    for (method, path), op_id in OPERATIONS.items():
        operation = (paths.get(path) or {}).get(method.lower()) if isinstance(paths.get(path), dict) else None
        if not isinstance(operation, dict):
            problems.append(f"{_route(method, path)} is missing")
        elif operation.get("operationId") != op_id:
            problems.append(f"{_route(method, path)} has operationId {operation.get('operationId')!r}, expected {op_id!r}")
    post = ((paths.get("/orders") or {}).get("post") or {}) if isinstance(paths.get("/orders"), dict) else {}
    body = ((post.get("requestBody") or {}).get("content") or {}).get("application/json") or {}
    ref = (body.get("schema") or {}).get("$ref", "") if isinstance(body, dict) else ""
    if post and ref.rsplit("/", 1)[-1] != "NewOrder":
        problems.append("POST /orders' application/json requestBody does not refer to #/components/schemas/NewOrder")
    problems += _new_order_problems(spec)
    if problems:
        return failed(f"{CONTRACT_FILE}: {'; '.join(problems)}.")
    return passed(f"{CONTRACT_FILE} declares the four order operations and the NewOrder schema.")


# -- the REST API ------------------------------------------------------------------

def _no_api(t: Target):
    return failed(f"There is no REST API named {api_name(t)}; create it from your contract with "
                  "labkit.openapi.import_api.")


def _no_stage(t: Target):
    api = rest_api(t)
    if api is None:
        return _no_api(t)
    return failed(f"REST API {api_name(t)} has no stage {STAGE}; create_deployment(restApiId=..., stageName='{STAGE}').")


def _same_name_count(t: Target) -> int:
    return sum(1 for page in t.client("apigateway").get_paginator("get_rest_apis").paginate()
               for api in page.get("items", []) if api.get("name") == api_name(t))


@check("L02.03", "The REST API exists, is regional and carries the course tags", step=3, points=1,
       hint="import_api(t, contract, tags=t.tag_map('02')) with info.title <prefix>-orders-api; delete any older "
            "API of the same name first.",
       docs=f"{DOCS}#the-rest-api")
def api_exists(t: Target):
    api = rest_api(t)
    if api is None:
        return _no_api(t)
    name = api_name(t)
    count = _same_name_count(t)
    if count > 1:
        return failed(f"There are {count} REST APIs named {name}; delete all but one so clients and checks "
                      "know which is yours.")
    types = (api.get("endpointConfiguration") or {}).get("types") or []
    if types != ["REGIONAL"]:
        return failed(f"REST API {name} ({api['id']}) is {', '.join(types) or 'of no endpoint type'}, expected REGIONAL.")
    wrong = missing_tags([{"Key": k, "Value": v} for k, v in (api.get("tags") or {}).items()], t.tag_map("02"))
    if wrong:
        return failed(f"REST API {name} ({api['id']}) lacks the tags {', '.join(wrong)}.")
    return passed(f"REST API {name} ({api['id']}) is regional and tagged.")


@check("L02.04", "The API's routes are exactly the contract's operations", step=3, points=2,
       hint="Import the API from the saved contract (import_api) rather than adding methods by hand; "
            "re-import after changing the file.",
       docs=f"{DOCS}#the-rest-api")
def routes_match(t: Target):
    api = rest_api(t)
    if api is None:
        return _no_api(t)
    spec, problem = _contract(t)
    if spec is None:
        return failed(f"Cannot compare REST API {api_name(t)} with its contract: {problem}")
    wanted, have = operations(spec), set(routes(t))
    problems = [f"lacks {_route(*r)}" for r in sorted(wanted - have, key=lambda r: (r[1], r[0]))]
    problems += [f"has {_route(*r)}, which the contract does not declare"
                 for r in sorted(have - wanted, key=lambda r: (r[1], r[0]))]
    if problems:
        return failed(f"REST API {api_name(t)} {'; '.join(problems)}.")
    return passed(f"REST API {api_name(t)} has exactly the {len(wanted)} operations of {CONTRACT_FILE}.")


# -- stage, throttling and caching ----------------------------------------------------

def _method_settings(st: dict) -> dict[tuple[str, str], dict]:
    """Stage method settings keyed by (resource path, METHOD); ``("*", "*")`` is the stage default."""
    found = {}
    for key, settings in (st.get("methodSettings") or {}).items():
        path, _, method = key.rpartition("/")
        path = path.replace("~1", "/")
        path = "*" if path == "*" else "/" + path.lstrip("/")
        found[(path, method.upper())] = settings or {}
    return found


def _setting(settings: dict, path: str, method: str, name: str, default=None):
    for key in ((path, method), ("*", "*")):
        if name in settings.get(key, {}):
            return settings[key][name]
    return default


@check("L02.05", "Stage v1 is deployed and throttles every method", step=4, points=2,
       hint="create_deployment(stageName='v1'), then update_stage with replace /*/*/throttling/rateLimit 100 "
            "and /*/*/throttling/burstLimit 50.",
       docs=f"{DOCS}#stages-and-throttling")
def stage_throttled(t: Target):
    st = stage(t)
    if st is None:
        return _no_stage(t)
    name = api_name(t)
    if not st.get("deploymentId"):
        return failed(f"Stage {STAGE} of {name} points at no deployment; create_deployment(stageName='{STAGE}').")
    default = _method_settings(st).get(("*", "*"), {})
    rate, burst = default.get("throttlingRateLimit"), default.get("throttlingBurstLimit")
    if rate is None or burst is None:
        return failed(f"Stage {STAGE} of {name} has no stage-wide throttling (method settings */*).")
    if float(rate) != 100 or int(burst) != 50:
        return failed(f"Stage {STAGE} of {name} throttles */* at rate {float(rate):g} and burst {int(burst)}, "
                      "expected rate 100 and burst 50.")
    return passed(f"Stage {STAGE} of {name} is deployed and throttles */* at rate 100, burst 50.")


@check("L02.06", "Only the two reads are cached, for 30 s, with orderId in the cache key", step=4, points=2,
       hint="update_stage: /cacheClusterEnabled true, /cacheClusterSize 0.5, and caching/enabled true with "
            "caching/ttlInSeconds 30 on /~1orders/GET and /~1orders~1{orderId}/GET only; in the contract, "
            "getOrder's integration lists cacheKeyParameters [method.request.path.orderId].",
       docs=f"{DOCS}#caching")
def reads_cached(t: Target):
    st = stage(t)
    if st is None:
        return _no_stage(t)
    name = api_name(t)
    if not st.get("cacheClusterEnabled"):
        return failed(f"Stage {STAGE} of {name} has no cache (cacheClusterEnabled is false).")
    size = str(st.get("cacheClusterSize") or "")
    if size != "0.5":
        return failed(f"Stage {STAGE} of {name} has a {size or 'default-sized'} GB cache; use 0.5, the smallest "
                      "(it is billed by the hour).")
    settings = _method_settings(st)
    problems = []
    cached_writes = sorted({"*/* (every method)" if (p, m) == ("*", "*") else _route(m, p)
                            for (p, m), s in settings.items()
                            if s.get("cachingEnabled") and m not in ("GET", "HEAD", "OPTIONS")})
    if cached_writes:
        problems.append(f"caching is on for {', '.join(cached_writes)}, so writes would be answered from the cache")
    for method, path in READS:
        if not _setting(settings, path, method, "cachingEnabled", False):
            problems.append(f"{_route(method, path)} is not cached")
        else:
            ttl = _setting(settings, path, method, "cacheTtlInSeconds", 300)
            if int(ttl) != CACHE_TTL:
                problems.append(f"{_route(method, path)} is cached for {ttl} s, expected {CACHE_TTL}")
    if problems:
        return failed(f"Stage {STAGE} of {name}: {'; '.join(problems)}.")
    get_order = routes(t).get(("GET", "/orders/{orderId}"))
    if get_order is None:
        return failed(f"REST API {name} has no GET /orders/{{orderId}}, so its cache key cannot be checked.")
    keys = (get_order.get("methodIntegration") or {}).get("cacheKeyParameters") or []
    caching = f"Stage {STAGE} of {name} caches the two reads for {CACHE_TTL} s and no writes"
    if ORDER_ID_KEY not in keys:
        return failed(f"{caching}, but GET /orders/{{orderId}}'s integration has no cache key parameter "
                      f"{ORDER_ID_KEY}: every order id would get the first order read.")
    return passed(f"{caching}, keyed on orderId.")


# -- usage plan and API keys ---------------------------------------------------------

def _plans(t: Target) -> list[dict]:
    """Every usage plan named <prefix>-orders-plan (API Gateway allows the same name twice)."""

    def look():
        return [plan for page in t.client("apigateway").get_paginator("get_usage_plans").paginate()
                for plan in page.get("items", []) if plan.get("name") == t.name("orders-plan")]

    return t.memo("lab02.plans", look)


def _plan(t: Target) -> dict | None:
    plans = _plans(t)
    return plans[0] if plans else None


def _keys(t: Target) -> list[dict]:
    """Every API key named <prefix>-orders-key (names are not unique either)."""
    return [k for page in t.client("apigateway").get_paginator("get_api_keys").paginate(nameQuery=t.name("orders-key"))
            for k in page.get("items", []) if k.get("name") == t.name("orders-key")]


def _duplicates(kind: str, name: str, ids: list[str]) -> str:
    return (f"There are {len(ids)} {kind} named {name} ({', '.join(ids)}); a re-run made another one: delete all "
            "but one so clients and checks know which is yours.")


@check("L02.07", "A usage plan throttles and meters the API key on stage v1", step=5, points=2,
       hint="create_usage_plan(name=<prefix>-orders-plan, apiStages=[{apiId, stage: 'v1'}], throttle rate 10 burst 5, "
            "quota 1000 per DAY); create_api_key(<prefix>-orders-key, enabled=True); create_usage_plan_key; on a re-run, "
            "find the plan and the key first instead of making second ones.",
       docs=f"{DOCS}#usage-plans-and-api-keys")
def usage_plan(t: Target):
    api = rest_api(t)
    if api is None:
        return _no_api(t)
    plan = _plan(t)
    plan_name = t.name("orders-plan")
    if plan is None:
        return failed(f"There is no usage plan named {plan_name}.")
    if len(_plans(t)) > 1:
        return failed(_duplicates("usage plans", plan_name, [p["id"] for p in _plans(t)]))
    stages = [(s.get("apiId"), s.get("stage")) for s in plan.get("apiStages") or []]
    if (api["id"], STAGE) not in stages:
        shown = ", ".join(f"{a}/{s}" for a, s in stages) or "no stage"
        return failed(f"Usage plan {plan_name} covers {shown}, not stage {STAGE} of {api_name(t)} ({api['id']}).")
    problems = []
    throttle = plan.get("throttle") or {}
    if float(throttle.get("rateLimit") or 0) != 10 or int(throttle.get("burstLimit") or 0) != 5:
        problems.append(f"its throttle is rate {float(throttle.get('rateLimit') or 0):g}, burst "
                        f"{int(throttle.get('burstLimit') or 0)}, expected rate 10, burst 5" if throttle
                        else "it has no throttle (expected rate 10, burst 5)")
    quota = plan.get("quota") or {}
    if int(quota.get("limit") or 0) != 1000 or quota.get("period") != "DAY":
        problems.append(f"its quota is {quota.get('limit')} per {quota.get('period')}, expected 1000 per DAY" if quota
                        else "it has no quota (expected 1000 per DAY)")
    if problems:
        return failed(f"Usage plan {plan_name}: {'; '.join(problems)}.")
    key_name = t.name("orders-key")
    keys = _keys(t)
    if not keys:
        return failed(f"There is no API key named {key_name}.")
    if len(keys) > 1:
        return failed(_duplicates("API keys", key_name, [k["id"] for k in keys]))
    key = keys[0]
    if not key.get("enabled"):
        return failed(f"API key {key_name} is disabled.")
    attached = {k.get("id") for page in t.client("apigateway").get_paginator("get_usage_plan_keys").paginate(
        usagePlanId=plan["id"]) for k in page.get("items", [])}
    if key["id"] not in attached:
        return failed(f"API key {key_name} is not attached to usage plan {plan_name}; create_usage_plan_key.")
    return passed(f"Usage plan {plan_name} meters key {key_name} on stage {STAGE}: rate 10, burst 5, 1000 a DAY.")


@check("L02.08", "Every method requires an API key", step=3, points=1,
       hint="List the api_key security scheme on every operation of the contract and import it again.",
       docs=f"{DOCS}#usage-plans-and-api-keys")
def keys_required(t: Target):
    api = rest_api(t)
    if api is None:
        return _no_api(t)
    found = routes(t)
    if not found:
        return failed(f"REST API {api_name(t)} has no methods.")
    open_ = [_route(m, p) for (m, p), method in sorted(found.items(), key=lambda i: (i[0][1], i[0][0]))
             if not method.get("apiKeyRequired")]
    if open_:
        return failed(f"REST API {api_name(t)}: {', '.join(open_)} {'does' if len(open_) == 1 else 'do'} not "
                      "require an API key, so callers skip the usage plan's limits.")
    return passed(f"All {len(found)} methods of REST API {api_name(t)} require an API key.")


# -- request validation and authorizers ---------------------------------------------

@check("L02.09", "POST /orders validates its body against the NewOrder model", step=3, points=2,
       hint="Declare x-amazon-apigateway-request-validators {body: {validateRequestBody: true}}, give POST /orders "
            "x-amazon-apigateway-request-validator: body and a requestBody with $ref NewOrder, and import again.",
       docs=f"{DOCS}#request-validation")
def body_validated(t: Target):
    api = rest_api(t)
    if api is None:
        return _no_api(t)
    post = routes(t).get(("POST", "/orders"))
    if post is None:
        return failed(f"REST API {api_name(t)} has no POST /orders.")
    client = t.client("apigateway")
    validator_id = post.get("requestValidatorId")
    if not validator_id:
        return failed(f"POST /orders of {api_name(t)} has no request validator, so any body reaches the backend.")
    validator = absent(lambda: client.get_request_validator(restApiId=api["id"], requestValidatorId=validator_id),
                       "NotFoundException")
    if validator is None or not validator.get("validateRequestBody"):
        shown = validator.get("name") if validator else validator_id
        return failed(f"POST /orders of {api_name(t)} uses request validator {shown}, which does not validate the body.")
    model_name = (post.get("requestModels") or {}).get("application/json")
    if not model_name:
        return failed(f"POST /orders of {api_name(t)} has no application/json request model, so the validator "
                      "has nothing to check the body against.")
    model = absent(lambda: client.get_model(restApiId=api["id"], modelName=model_name), "NotFoundException")
    if model is None:
        return failed(f"POST /orders of {api_name(t)} names model {model_name}, which the API does not have.")
    try:
        schema = json.loads(model.get("schema") or "{}")
    except ValueError:
        return failed(f"Model {model_name} of {api_name(t)} is not valid JSON Schema, so every body is rejected.")
    missing = [f for f in ("customerId", "items") if f not in (schema.get("required") or [])]
    if missing:
        return failed(f"Model {model_name} of {api_name(t)} does not require {' and '.join(missing)}.")
    return passed(f"POST /orders of {api_name(t)} validates bodies with {validator.get('name')} against {model_name}.")


@check("L02.10", "POST and DELETE require a Cognito ID token from the course user pool", step=3, points=2,
       hint="Add a cognito security scheme (x-amazon-apigateway-authtype cognito_user_pools, authorizer providerARNs "
            "[your <prefix>-users pool ARN]) and list it with api_key on post and delete.",
       docs=f"{DOCS}#authorizers")
def writes_authorized(t: Target):
    api = rest_api(t)
    if api is None:
        return _no_api(t)
    pool = user_pool(t)
    if pool is None:
        return failed(f"There is no Cognito user pool named {t.name('users')}.")
    if len(user_pool_ids(t)) > 1:
        return failed(_duplicates("Cognito user pools", t.name("users"), user_pool_ids(t)))
    found = routes(t)
    client = t.client("apigateway")
    problems = []
    for method, path in WRITES:
        where = _route(method, path)
        m = found.get((method, path))
        if m is None:
            problems.append(f"{where} is missing")
            continue
        if m.get("authorizationType") != "COGNITO_USER_POOLS" or not m.get("authorizerId"):
            problems.append(f"{where} uses authorization {m.get('authorizationType') or 'NONE'}, not a Cognito authorizer")
            continue
        authorizer = absent(lambda: client.get_authorizer(restApiId=api["id"], authorizerId=m["authorizerId"]),
                            "NotFoundException")
        if authorizer is None:
            problems.append(f"{where} names authorizer {m['authorizerId']}, which does not exist")
        elif pool["Arn"] not in (authorizer.get("providerARNs") or []):
            problems.append(f"{where}'s authorizer {authorizer.get('name')} trusts "
                            f"{', '.join(authorizer.get('providerARNs') or []) or 'no user pool'}, not {t.name('users')}")
        elif (authorizer.get("identitySource") or "").lower() != "method.request.header.authorization":
            problems.append(f"{where}'s authorizer {authorizer.get('name')} reads the token from "
                            f"{authorizer.get('identitySource')}, not method.request.header.Authorization")
    if problems:
        return failed(f"REST API {api_name(t)}: {'; '.join(problems)}.")
    return passed(f"POST and DELETE of {api_name(t)} require an ID token from user pool {t.name('users')}.")


# -- behaviour through the gateway ------------------------------------------------------

def _precheck(t: Target, *, key: bool = False):
    """A FAIL when there is nothing to call yet, else None."""
    if stage(t) is None:
        return _no_stage(t)
    if key and api_key_value(t) is None:
        return failed(f"There is no enabled API key named {t.name('orders-key')} to call {api_name(t)} with.")
    return None


@check("L02.11", "A request without an API key is refused with 403", step=6, points=1,
       hint="Require an API key on GET /orders (api_key in its security), import the contract again and redeploy v1.",
       docs=f"{DOCS}#calling-the-api",
       acts="calls your API: one GET /orders without an API key; stores nothing")
def no_key_403(t: Target):
    stop = _precheck(t)
    if stop:
        return stop
    status, body, _ = call_patiently(t, "GET", "/orders")
    if status == 403 and message(body) == "Forbidden":
        return passed(f"GET /orders on {STAGE} without an API key was refused with 403 Forbidden.")
    if status == 403:
        return failed(f"GET /orders on {STAGE} answered {answer(status, body)}: the method is not deployed; "
                      f"create a new deployment to {STAGE}.")
    return failed(f"GET /orders on {STAGE} without an API key answered {answer(status, body)}, expected 403: "
                  "it does not require a key.")


@check("L02.12", "A burst over the usage plan's limit is throttled with 429", step=6, points=2,
       hint="Give the usage plan a throttle (rate 10, burst 5) and attach the key; the check sends up to "
            f"{BURST} quick requests to /orders with the key.",
       docs=f"{DOCS}#calling-the-api",
       acts=f"calls your API: up to {BURST} quick requests to /orders with the key (signed-in POSTs whose body is "
            "not JSON, refused before any integration runs); stores nothing")
def burst_429(t: Target):
    stop = _precheck(t, key=True)
    if stop:
        return stop
    headers = {"x-api-key": api_key_value(t)}
    token = id_token(t)
    if token:
        # Throttling comes before validation: the writes that get through are refused
        # with 400 before any integration runs, so the burst starts no functions and stores nothing.
        what, send = "POST /orders (body not JSON)", lambda: call(
            t, "POST", "/orders", raw=b"{not json", headers={**headers, "Authorization": token})
    else:
        what, send = "GET /orders", lambda: call(t, "GET", "/orders", headers=headers)
    statuses: list[tuple[int, str]] = []
    with ThreadPoolExecutor(10) as pool:
        while len(statuses) < BURST and not any(s == 429 for s, _ in statuses):
            batch = [pool.submit(send) for _ in range(10)]
            statuses += [(f.result()[0], message(f.result()[1])) for f in batch]
    refused = [m for s, m in statuses if s == 429]
    if refused:
        reason = "the quota is used up (Limit Exceeded)" if "Limit Exceeded" in refused else "Too Many Requests"
        return passed(f"{len(refused)} of {len(statuses)} quick {what} with the key were refused with 429: {reason}.")
    codes = sorted({s for s, _ in statuses})
    if codes == [403]:
        return failed(f"Every {what} with key {t.name('orders-key')} answered 403: the key is not on a usage "
                      f"plan for stage {STAGE}.")
    shown = ", ".join(str(c) for c in codes)
    return failed(f"{len(statuses)} quick {what} with key {t.name('orders-key')} all answered {shown}; none was "
                  "throttled: give the usage plan a throttle of rate 10 and burst 5.")


@check("L02.13", "A write without an ID token is refused with 401", step=6, points=1,
       hint="Use the Cognito authorizer on POST /orders (security: api_key and cognito), import again and redeploy v1.",
       docs=f"{DOCS}#calling-the-api",
       acts="calls your API: one POST /orders with no ID token and a body that is not JSON; stores nothing")
def write_without_token_401(t: Target):
    stop = _precheck(t)
    if stop:
        return stop
    key = api_key_value(t)
    headers = {"x-api-key": key} if key else {}
    # A body that is not even JSON: if no authorizer stops it, validation or the function must, so nothing is created.
    status, body, _ = call_patiently(t, "POST", "/orders", raw=b"{not json", headers=headers)
    if status == 401:
        return passed(f"POST /orders on {STAGE} without an ID token was refused with 401 Unauthorized.")
    return failed(f"POST /orders on {STAGE} with an API key and no ID token answered {answer(status, body)}, "
                  "expected 401: the method does not check for a token.")


@check("L02.14", "A signed-in write with an invalid body is refused with 400", step=6, points=1,
       hint="Keep the body validator and NewOrder model on POST /orders, and keep the test user's credentials in "
            "SSM /<prefix>/orders/tester so the check can sign in.",
       docs=f"{DOCS}#calling-the-api",
       acts="calls your API: one signed-in POST /orders with an invalid body, sent only when a validator will refuse it; stores nothing")
def invalid_body_400(t: Target):
    stop = _precheck(t, key=True)
    if stop:
        return stop
    post = routes(t).get(("POST", "/orders"))
    if post is None or not post.get("requestValidatorId") or not (post.get("requestModels") or {}):
        # Sending it would reach the backend and, from lab 03 on, create an order.
        return failed(f"POST /orders of {api_name(t)} has no request validator with a model, so an invalid order "
                      "would reach the backend (not sent).")
    if len(app_clients(t)) > 1:
        return failed(_duplicates(f"app clients in user pool {t.name('users')}", t.name("orders-web"),
                                  [c["ClientId"] for c in app_clients(t)]))
    token = id_token(t)
    if token is None:
        return failed(f"{sign_in_problem(t)}; the check needs an ID token to send a signed-in request.")
    found = absent(lambda: t.client("ssm").get_parameter(Name=f"/{t.prefix}/orders/tester"), "ParameterNotFound")
    if found and found["Parameter"].get("Type") != "SecureString":
        return failed(f"SSM parameter /{t.prefix}/orders/tester is a {found['Parameter'].get('Type')}; it holds a "
                      "password, so store it as a SecureString.")
    status, body, _ = call_patiently(t, "POST", "/orders", body=BAD_ORDER,
                            headers={"x-api-key": api_key_value(t), "Authorization": token})
    if status == 400:
        return passed(f"POST /orders on {STAGE} with a body missing customerId was refused with 400.")
    if status == 401:
        return failed(f"POST /orders on {STAGE} refused the test user's ID token with 401: the authorizer does not "
                      f"trust user pool {t.name('users')}.")
    return failed(f"POST /orders on {STAGE} with a body missing customerId answered {answer(status, body)}, "
                  "expected 400 Invalid request body.")


@check("L02.15", "A good request reaches the integration and gets 200", step=6, points=1,
       hint="GET /orders with the key must pass every rule and reach the integration (MOCK: 200 {\"orders\": []}).",
       docs=f"{DOCS}#calling-the-api",
       acts="calls your API: one GET /orders with the key; stores nothing")
def good_request_200(t: Target):
    stop = _precheck(t, key=True)
    if stop:
        return stop
    status, body, _ = call_patiently(t, "GET", "/orders", headers={"x-api-key": api_key_value(t)})
    if status == 429:
        return failed(f"GET /orders on {STAGE} with the key answered {answer(status, body)} even after waiting: "
                      "the throttle or quota leaves no room.")
    if status != 200:
        return failed(f"GET /orders on {STAGE} with the key answered {answer(status, body)}, expected 200.")
    if not (isinstance(body, dict) and isinstance(body.get("orders"), list)):
        return failed(f"GET /orders on {STAGE} answered 200 but not with {{\"orders\": [...]}}; check the "
                      "integration's response.")
    return passed(f"GET /orders on {STAGE} with the key answered 200 with {len(body['orders'])} order(s).")
