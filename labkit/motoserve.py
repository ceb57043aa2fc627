"""The local AWS process: moto's server app behind a small recorder.

Run as ``python -m labkit.motoserve --port P --journal FILE``; learners start
it with ``python -m labkit up``.

Why not moto's own recorder alone: replaying its log re-creates resources
with *new* random ids, so a bucket policy that names a distribution ARN, or a
subnet that names a VPC id, no longer matches after a restore. Here every
state-changing request is numbered and moto's random generator is seeded from
that number, and reads run on a saved-and-restored generator, so replaying
the writes in order rebuilds the same ids. The journal uses the line format
of moto's recorder (method, url, headers, body).
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import logging
import os
import re
import threading
from pathlib import Path
from urllib.parse import parse_qs, unquote

from . import gateway
from .target import is_read

log = logging.getLogger("labkit.motoserve")
CONTROL = "/_labkit/"  # our own control paths (replay, journal), never recorded
INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
SCOPE = re.compile(r"Credential=[^/]+/\d+/(?P<region>[\w-]+)/(?P<service>[\w-]+)/")
# Writes to these services change what the local gateway serves.
GATEWAY_SERVICES = ("apigateway", "cognito-idp", "lambda")
REPLAYING = threading.Event()
# (api id, deployment id) -> the API's resources and methods when it was deployed:
# a stage serves its deployment, not the API as it is now, exactly as on AWS.
DEPLOYED: dict[tuple[str, str], list] = {}


def classify(method: str, path: str, headers: dict, body: bytes) -> str:
    """'read', 'write' or 'control' for one request, erring towards 'write'."""
    if path.startswith(CONTROL):
        return "control"
    if path.startswith("/moto-api/"):
        # reset is handled by us; config/seed change state and are journaled.
        return "write" if method == "POST" else "read"
    target = headers.get("X-Amz-Target") or headers.get("x-amz-target")
    if target:
        return "read" if is_read(target.rsplit(".", 1)[-1]) else "write"
    action = None
    if "Action=" in (body[:200].decode("latin-1") if body else ""):
        action = parse_qs(body.decode("latin-1")).get("Action", [None])[0]
    if action:
        return "read" if is_read(action) else "write"
    return "read" if method in ("GET", "HEAD", "OPTIONS") else "write"


class Recorder:
    """WSGI middleware: numbers writes, seeds moto's randomness, journals writes."""

    def __init__(self, app, journal: Path):
        from moto.moto_api._internal import mock_random

        self.app = app
        self.journal = journal
        self.random = mock_random
        self.lock = threading.RLock()  # one request at a time keeps ids deterministic
        self.writes = 0
        self.replaying = False
        self.gateway_generation = 0  # bumped by writes that can change a served API
        self.gateway = None  # set by build_app: the local API gateway
        self.runner = None  # and the local Lambda runner

    # -- WSGI ---------------------------------------------------------------
    def __call__(self, environ, start_response):
        body = _read_body(environ)
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        headers = _headers(environ)
        if self.gateway is not None and path.startswith(gateway.PREFIX):
            return self.gateway(environ, start_response)  # data plane: outside the lock, never journaled
        if method == "POST" and INVOKE.match(path) and self.runner is not None:
            return self._invoke(environ, headers, body, start_response)
        kind = classify(method, path, headers, body)
        if kind == "control":
            return self._control(path, method, body, start_response)
        if path == "/moto-api/reset" and method == "POST":
            with self.lock:
                response = _collect(self.app, environ, start_response)
                self.reset()
                return response
        with self.lock:
            if kind == "read":
                state = self.random.getstate()
                try:
                    return _collect(self.app, environ, start_response)
                finally:
                    self.random.setstate(state)
            self.writes += 1
            self.random.seed(self.writes)
            scope = SCOPE.search(headers.get("Authorization", ""))
            if scope is None or scope.group("service") in GATEWAY_SERVICES:
                self.gateway_generation += 1
            if not self.replaying:
                self._append(method, environ, headers, body)
            return _collect(self.app, environ, start_response)

    # -- journal ------------------------------------------------------------
    def _append(self, method, environ, headers, body):
        query = environ.get("QUERY_STRING")
        url = f"http://{environ.get('HTTP_HOST', 'localhost')}{environ.get('RAW_URI') or environ.get('PATH_INFO', '')}"
        if query and "?" not in url:
            url += f"?{query}"
        entry = {"method": method, "url": url, "headers": headers,
                 "body": base64.b64encode(body).decode("ascii"), "body_encoded": True}
        with self.journal.open("a") as fh:
            fh.write(json.dumps(entry) + "\n")

    def reset(self):
        with self.lock:
            self.writes = 0
            self.gateway_generation += 1
            self.journal.write_text("")
            DEPLOYED.clear()
            if self.runner is not None:
                self.runner.clear()  # their role sessions are gone with the state
            if self.gateway is not None:
                self.gateway.clear()

    # -- Lambda and API Gateway, run for real --------------------------------
    def read_backend(self, look):
        """Run ``look`` on moto's models under the lock, without moving the seeded generator."""
        with self.lock:
            state = self.random.getstate()
            try:
                return look()
            finally:
                self.random.setstate(state)

    def lambda_spec(self, name_or_arn: str, region: str | None = None, account: str | None = None):
        from moto.awslambda.utils import get_backend  # the Docker-free backend build_app chose

        from .config import LOCAL_ACCOUNT_ID
        from .lambdarun import FunctionSpec

        if name_or_arn.startswith("arn:"):
            region, account = name_or_arn.split(":")[3:5]
        region, account = region or "us-east-1", account or LOCAL_ACCOUNT_ID

        def look():
            backend = get_backend(account, region)
            try:
                fn = backend.get_function(name_or_arn)
            except Exception as exc:
                log.info("function lookup failed: %r", exc)
                raise LookupError(f"No Lambda function {name_or_arn} in the local AWS ({region}).") from None
            try:
                policy = json.loads(json.loads(backend.get_policy(fn.function_name))["Policy"])
            except Exception as exc:  # no policy yet: nothing may invoke it
                log.debug("no resource policy on %s: %r", fn.function_name, exc)
                policy = None
            return FunctionSpec(name=fn.function_name, arn=fn.function_arn.split(":$LATEST")[0], region=region,
                                account=account, handler=fn.handler, runtime=fn.run_time,
                                env=dict(fn.environment_vars or {}), timeout=int(fn.timeout or 3),
                                memory=int(fn.memory_size or 128), role=fn.role, code_sha=fn.code_sha_256,
                                code=fn.code_bytes or b""), policy

        return self.read_backend(look)

    def assume_role(self, spec) -> dict:
        from moto.sts.models import sts_backends

        def look():
            session = sts_backends[spec.account]["aws"].assume_role(
                region_name=spec.region, role_session_name=spec.name[:64], role_arn=spec.role,
                policy=None, duration=43200, external_id=None)
            return {"AccessKeyId": session.access_key_id, "SecretAccessKey": session.secret_access_key,
                    "SessionToken": session.session_token}

        return self.read_backend(look)

    def locate_api(self, api_id: str):
        from moto.apigateway.models import apigateway_backends

        def look():
            for account, regions in apigateway_backends.items():
                for region, backend in regions.items():
                    if api_id in backend.apis:
                        return region, account
            return None

        return self.read_backend(look)

    def _invoke(self, environ, headers, body, start_response):
        """Lambda's Invoke API, answered by running the deployed code."""
        name = unquote(INVOKE.match(environ["PATH_INFO"]).group("name"))
        scope = SCOPE.search(headers.get("Authorization", ""))
        try:
            spec, _ = self.lambda_spec(name, scope.group("region") if scope else None)
        except LookupError as exc:
            start_response("404 Not Found", [("Content-Type", "application/json"),
                                              ("x-amzn-ErrorType", "ResourceNotFoundException")])
            return [json.dumps({"Type": "User", "message": f"Function not found: {name} ({exc})"}).encode()]
        kind = headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if kind == "DryRun":
            start_response("204 No Content", [])
            return [b""]
        try:
            event = json.loads(body) if body else {}
        except ValueError:
            start_response("400 Bad Request", [("Content-Type", "application/json"),
                                                ("x-amzn-ErrorType", "InvalidRequestContentException")])
            return [b'{"Type": "User", "message": "Could not parse request body into json"}']
        if kind == "Event":
            threading.Thread(target=self.runner.invoke, args=(spec, event), daemon=True).start()
            start_response("202 Accepted", [])
            return [b""]
        result = self.runner.invoke(spec, event)
        out = [("Content-Type", "application/json"), ("X-Amz-Executed-Version", "$LATEST")]
        if result.function_error:
            out.append(("X-Amz-Function-Error", result.function_error))
        if headers.get("X-Amz-Log-Type") == "Tail":
            tail = "\n".join(result.logs).encode()[-4096:]
            out.append(("X-Amz-Log-Result", base64.b64encode(tail).decode()))
        start_response("200 OK", out)
        return [result.payload]

    def replay(self, lines: list[str]) -> int:
        """Re-send journaled writes through the app, in order, rebuilding state."""
        from werkzeug.test import EnvironBuilder

        count = 0
        with self.lock:
            self.replaying = True
            REPLAYING.set()
            try:
                kept = []
                for number, line in enumerate(lines, 1):
                    if not line.strip():
                        continue
                    try:
                        entry = json.loads(line)
                        body = (base64.b64decode(entry["body"]) if entry.get("body_encoded")
                                else (entry.get("body") or "").encode())
                        headers = {k: v for k, v in entry["headers"].items()
                                   if k.lower() not in ("content-length", "transfer-encoding")}
                        builder = EnvironBuilder(method=entry["method"], base_url=_base(entry["url"]),
                                                 path=_path(entry["url"]), query_string=_query(entry["url"]),
                                                 headers=headers, data=body)
                        environ = builder.get_environ()
                        environ["RAW_URI"] = _path_and_query(entry["url"])
                        self(environ, lambda *a, **k: None)
                    except Exception as exc:  # a torn last line (a killed process) must not cost the rest
                        log.warning("journal line %d skipped: %s", number, exc)
                        continue
                    kept.append(line)
                    count += 1
            finally:
                self.replaying = False
                REPLAYING.clear()
            # The replayed writes are the journal now.
            self.journal.write_text("".join(line + "\n" for line in kept))
        return count

    def _control(self, path, method, body, start_response):
        if path == CONTROL + "replay" and method == "POST":
            self.app_reset()
            count = self.replay(body.decode("utf-8").splitlines())
            return _json(start_response, {"replayed": count})
        if path == CONTROL + "journal" and method == "GET":
            data = self.journal.read_text() if self.journal.exists() else ""
            start_response("200 OK", [("Content-Type", "application/x-ndjson")])
            return [data.encode()]
        if path == CONTROL + "status":
            return _json(start_response, {"writes": self.writes, "pid": os.getpid()})
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [b'{"error": "unknown control path"}']

    def app_reset(self):
        from moto.moto_api._internal.models import moto_api_backend

        with self.lock:
            moto_api_backend.reset()
            self.reset()


def _headers(environ) -> dict:
    out = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            out[key[5:].replace("_", "-").title()] = value
    if environ.get("CONTENT_TYPE"):
        out["Content-Type"] = environ["CONTENT_TYPE"]
    # boto3's X-Amz-* headers keep their case in AWS docs; title() is fine for moto.
    return out


def _read_body(environ) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ.get("wsgi.input")
    if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked" and stream is not None:
        body = stream.read()
    else:
        body = stream.read(length) if (stream is not None and length) else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    return body


def _collect(app, environ, start_response):
    # Run the whole response inside the lock so lazily generated bodies
    # draw from the seeded generator too.
    return list(app(environ, start_response))


def _json(start_response, data):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(data).encode()]


def _base(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{rest.split('/', 1)[0]}"


def _path_and_query(url: str) -> str:
    rest = url.split("://", 1)[1]
    return "/" + rest.split("/", 1)[1] if "/" in rest else "/"


def _path(url: str) -> str:
    from urllib.parse import unquote

    return unquote(_path_and_query(url).split("?", 1)[0])


def _query(url: str) -> str:
    pq = _path_and_query(url)
    return pq.split("?", 1)[1] if "?" in pq else ""


def _deterministic_backends():
    """Seed moto's generator by name when a region backend is first built.

    moto builds backends lazily (EC2's default VPC is made on first touch),
    maybe during a read that is not journaled; seeding by name makes the ids
    the same whenever that first touch happens.
    """
    import zlib

    from moto.core import base_backend
    from moto.moto_api._internal import mock_random

    original = base_backend.AccountSpecificBackend.__getitem__

    def getitem(self, region_name):
        if region_name in self.keys() or (region_name == "global" and "aws" in self.keys()):
            return original(self, region_name)
        state = mock_random.getstate()
        mock_random.seed(zlib.crc32(f"{self.backend.__name__}/{self.account_id}/{region_name}".encode()))
        try:
            return original(self, region_name)
        finally:
            mock_random.setstate(state)

    base_backend.AccountSpecificBackend.__getitem__ = getitem


def _lean_iam_policies():
    """Load AWS-managed IAM policies once per process, and only in the aws partition.

    moto builds an IAM backend per partition and parses ~1,600 managed policies
    for each on every reset (about 1 s); learners only ever use the aws one.
    """
    import json as _json

    from moto.iam import models as iam

    parsed: dict = {}

    def init_aws_policies(self):
        if not iam.load_iam_aws_managed_policies() or self.region_name not in ("global", "aws"):
            return []
        if not parsed:
            parsed.update(_json.loads(iam.aws_managed_policies_data))
        return [iam.AWSManagedPolicy.from_data(name, self.account_id, self.region_name, d) for name, d in parsed.items()]

    iam.IAMBackend._init_aws_policies = init_aws_policies


def _enforce_iam_for_role_sessions():
    """Check IAM policies for requests signed with temporary (role session) credentials.

    The learner's own dummy keys act like an administrator, but a Lambda
    handler runs with its execution role's session credentials: for those,
    the local AWS applies the role's policies as AWS does, so least privilege
    can be seen working (AccessDenied on a forbidden call).
    """
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.exceptions import AccessDeniedError, JsonRESTError

    original = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def authorize(self, iam_request_cls, resource="*"):
        # A replay re-sends writes that were already allowed, by sessions that no longer exist.
        if not self.headers.get("X-Amz-Security-Token") or REPLAYING.is_set():
            return original(self, iam_request_cls, resource)
        saved = settings.INITIAL_NO_AUTH_ACTION_COUNT
        settings.INITIAL_NO_AUTH_ACTION_COUNT = -1  # requests are serialised by the Recorder lock
        try:
            return original(self, iam_request_cls, resource)
        except AccessDeniedError as exc:
            if not _json_protocol(self.headers):
                raise
            # moto answers in XML, which JSON clients cannot parse ("An error occurred (403)");
            # DynamoDB and Logs answer 400 AccessDeniedException naming the action and resource.
            where = f" on resource: {resource}" if resource and resource != "*" else ""
            raise JsonRESTError("AccessDeniedException", f"{exc.message}{where} because no identity-based "
                                                         "policy allows the action") from None
        finally:
            settings.INITIAL_NO_AUTH_ACTION_COUNT = saved

    ActionAuthenticatorMixin._authenticate_and_authorize_action = authorize
    _resource_arns()


def _json_protocol(headers) -> bool:
    """Whether a request speaks AWS's JSON protocols (DynamoDB, Logs, ...), whose errors are JSON."""
    kind = headers.get("Content-Type") or headers.get("content-type") or ""
    return bool(headers.get("X-Amz-Target") or headers.get("x-amz-target")) or "json" in kind


def _resource_arns():
    """Tell moto's IAM check which resource a DynamoDB or Logs call touches.

    moto checks these calls against Resource "*", so a policy scoped to one
    table (the least-privilege answer) would deny everything.
    """
    from moto.dynamodb.responses import DynamoHandler
    from moto.logs.responses import LogsResponse

    def body(handler) -> dict:
        if isinstance(handler.body, dict):  # DynamoDB's handler has parsed it already
            return handler.body
        try:
            return json.loads(handler.body or "{}")
        except ValueError:
            return {}

    def dynamodb_resource(self):
        data = body(self)
        table = data.get("TableName") or next(iter(data.get("RequestItems") or {}), None)
        for item in data.get("TransactItems") or []:
            table = table or next(iter(item.values()), {}).get("TableName")
        if not table:
            return "*"
        arn = f"arn:aws:dynamodb:{self.region}:{self.current_account}:table/{table}"
        return f"{arn}/index/{data['IndexName']}" if data.get("IndexName") else arn

    def logs_resource(self):
        data = body(self)
        group = data.get("logGroupName")
        if not group:
            return "*"
        arn = f"arn:aws:logs:{self.region}:{self.current_account}:log-group:{group}"
        return f"{arn}:log-stream:{data['logStreamName']}" if data.get("logStreamName") else f"{arn}:*"

    DynamoHandler._determine_resource = dynamodb_resource
    LogsResponse._determine_resource = logs_resource


def _redeploy_keeps_the_stage():
    """``create_deployment`` to an existing stage points that stage at the new deployment.

    That is what API Gateway does; moto replaces the stage with a blank one,
    which would silently drop the throttling, caching and tags set on it (lab
    03 redeploys the stage lab 02 configured).
    """
    from moto.apigateway.models import RestAPI

    original = RestAPI.create_deployment

    def create_deployment(self, name, description, stage_variables=None):
        existing = self.stages.get(name) if name else None
        deployment = original(self, name, description, stage_variables)
        DEPLOYED[(self.id, deployment.id)] = json.loads(json.dumps([r.to_dict() for r in self.resources.values()]))
        if existing is not None:
            existing.deployment_id = deployment.id
            existing.variables.update(stage_variables or {})
            self.stages[name] = existing
        return deployment

    RestAPI.create_deployment = create_deployment


def _keep_cache_key_parameters():
    """Keep an integration's cacheKeyParameters, which moto's put_integration drops.

    Without them a stage cache keys GET /orders/{orderId} on the resource alone,
    so every order id gets the first answer: the local gateway shows that
    mistake only if the declared keys survive.
    """
    from moto.apigateway.responses import APIGatewayResponse

    original = APIGatewayResponse.put_integration

    def put_integration(self):
        status, headers, body = original(self)
        keys = self._get_param("cacheKeyParameters")
        if keys is not None and int(status) < 300:
            parts = self.path.split("/")
            integration = self.backend.get_integration(parts[2], parts[4], parts[6])
            integration.cache_key_parameters = list(keys)
            body = json.dumps(integration.to_json())
        return status, headers, body

    APIGatewayResponse.put_integration = put_integration


def patch_models():
    """Where moto's API Gateway differs from AWS in ways the labs can see, behave like AWS.

    The local AWS applies these; the course's in-process tests apply them too,
    so both grade the same facts. Safe to call more than once.
    """
    global _MODELS_PATCHED
    if _MODELS_PATCHED:
        return
    _MODELS_PATCHED = True
    _redeploy_keeps_the_stage()
    _keep_cache_key_parameters()


_MODELS_PATCHED = False


def build_app(journal: Path, endpoint: str | None = None):
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    from moto.core.config import default_user_config
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    # FACTS: without Docker, Lambda must use the stub backend, set before any Lambda call.
    default_user_config["lambda"] = {"use_docker": False}
    _deterministic_backends()
    _lean_iam_policies()
    _enforce_iam_for_role_sessions()
    patch_models()
    app = DomainDispatcherApplication(create_backend_app)
    recorder = Recorder(app, journal)
    if endpoint:
        from .lambdarun import Runner

        recorder.runner = Runner(endpoint, journal.parent / "lambda-code", recorder.assume_role)
        recorder.gateway = gateway.Gateway(endpoint, recorder.locate_api, recorder.lambda_spec, recorder.runner,
                                           lambda: recorder.gateway_generation, DEPLOYED.get)
    return recorder


def main(argv=None):
    parser = argparse.ArgumentParser(description="The course's local AWS (moto with a deterministic journal).")
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--journal", type=Path, required=True)
    args = parser.parse_args(argv)

    from werkzeug.serving import run_simple
    from moto.moto_server.werkzeug_app import MotoRequestHandler  # keeps moto's header handling

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log: it would grow without bound
    os.environ["MOTO_PORT"] = str(args.port)  # moto builds some URLs (queues, endpoints) from it
    recorder = build_app(args.journal, f"http://localhost:{args.port}")
    if args.journal.exists() and args.journal.read_text().strip():
        # Bring back what the last session built: the journal is the state.
        lines = args.journal.read_text().splitlines()
        recorder.replay(lines)
    else:
        args.journal.write_text("")
    run_simple(args.host, args.port, recorder, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
