"""REST APIs from OpenAPI 3 contracts, the same way on the local AWS and on AWS.

``import_api(t, contract)`` validates the contract and creates the API. On a
live account API Gateway's own importer does the work. The local AWS's
importer covers too little of OpenAPI (path-level parameters, MOCK
integrations, validators, authorizers, models, API keys), so locally the
contract is translated into the control-plane calls API Gateway's importer
makes, and the result reads back the same through ``get_resources`` and
friends.

``load_contract(path)`` reads a contract file; ``operations(contract)`` lists
its ``(METHOD, path)`` pairs for checks.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .errors import LabkitError

# OpenAPI operation keys API Gateway turns into methods; other path-level keys
# (parameters, summary, description, servers, ...) are not methods.
HTTP_METHODS = {
    "get": "GET", "put": "PUT", "post": "POST", "delete": "DELETE", "patch": "PATCH",
    "head": "HEAD", "options": "OPTIONS", "x-amazon-apigateway-any-method": "ANY",
}
ENDPOINT_TYPES = ("REGIONAL", "EDGE", "PRIVATE")
DRAFT4 = "http://json-schema.org/draft-04/schema#"
SCHEMA_REF = "#/components/schemas/"
# OpenAPI schema keywords JSON Schema draft 4 does not have.
OPENAPI_ONLY = {"nullable", "discriminator", "readOnly", "writeOnly", "xml", "externalDocs", "example", "deprecated"}
PARAMETER_PLACES = {"path": "path", "query": "querystring", "header": "header"}
AUTHORIZER_TYPES = {"cognito_user_pools": "COGNITO_USER_POOLS", "token": "TOKEN", "request": "REQUEST"}


# -- reading and validating ---------------------------------------------------

def load_contract(path: str | Path) -> dict:
    """The contract in a YAML or JSON file, as a dict."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LabkitError(f"There is no contract at {file}; save your OpenAPI file there first.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LabkitError(f"The contract {file} could not be read ({exc}).") from None
    return _parse(text, f"The contract {file.name}")


def validate_contract(contract: dict | str) -> dict:
    """The contract as a dict if it is valid OpenAPI 3.0; otherwise a one-sentence LabkitError."""
    spec = _as_dict(contract)
    _require_openapi_30(spec)
    from jsonschema.exceptions import ValidationError
    from openapi_spec_validator import validate
    from openapi_spec_validator.exceptions import OpenAPIError
    from referencing.exceptions import Unresolvable

    try:
        validate(spec)
    except (ValidationError, OpenAPIError, Unresolvable) as exc:
        raise LabkitError(f"The contract is not valid OpenAPI 3: {_validator_problem(exc)}.") from None
    return spec


def validate_contract_remembered(contract: dict | str) -> dict:
    """validate_contract, remembering verdicts by the contract's content.

    Importing the validator costs about 0.2 s, most of a lab's grading time;
    an unchanged contract has the same verdict, so the grader asks once.
    """
    from .remember import digest, remembered

    spec = _as_dict(contract)

    def judge() -> str:
        try:
            validate_contract(spec)
            return ""
        except LabkitError as exc:
            return str(exc)

    verdict = remembered("contract-verdicts.json", digest(json.dumps(spec, sort_keys=True, default=str)), judge)
    if verdict:
        raise LabkitError(verdict)
    return spec


def operations(contract: dict | str) -> set[tuple[str, str]]:
    """Every ``(METHOD, path)`` the contract declares, e.g. ``("GET", "/orders")``."""
    spec = _as_dict(contract)
    return {(method, path) for path, item in _paths(spec) for method, _ in _operations_of(item)}


def _parse(text: str, source: str) -> dict:
    import yaml

    try:
        # JSON first: PyYAML rejects tab-indented JSON, which is still JSON.
        data = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise LabkitError(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.") from None
    except yaml.YAMLError as exc:
        raise LabkitError(f"{source} is not valid YAML: {_yaml_problem(exc)}.") from None
    if not isinstance(data, dict):
        raise LabkitError(
            f"{source} is not an OpenAPI document (a mapping with openapi, info and paths); "
            "pass the contract's text or use load_contract(path)."
        )
    return _str_keys(data)


def _yaml_problem(exc: Exception) -> str:
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def _as_dict(contract: dict | str) -> dict:
    if isinstance(contract, str):
        return _parse(contract, "The contract")
    if not isinstance(contract, dict):
        raise LabkitError(f"The contract must be a dict or YAML/JSON text, not {type(contract).__name__}.")
    return _str_keys(contract)


def _str_keys(node: Any) -> Any:
    """A copy with every mapping key a string: YAML reads ``200:`` as an int, JSON never does."""
    if isinstance(node, dict):
        return {str(k): _str_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_str_keys(v) for v in node]
    return node


def _require_openapi_30(spec: dict) -> None:
    # API Gateway imports OpenAPI 3.0 (and Swagger 2.0); the course writes 3.0.
    if "swagger" in spec:
        raise LabkitError("The contract is Swagger 2.0; write it as OpenAPI 3.0, starting with openapi: 3.0.3.")
    version = str(spec.get("openapi", ""))
    if not version:
        raise LabkitError("The contract has no openapi field; start it with openapi: 3.0.3.")
    if not version.startswith("3.0"):
        raise LabkitError(f"The contract says openapi: {version}, but API Gateway imports OpenAPI 3.0; use 3.0.3.")


def _validator_problem(exc: Exception) -> str:
    ref = getattr(exc, "ref", None)
    if ref is not None:  # referencing's PointerToNowhere (a bare JSON pointer) / Unresolvable
        shown = "#" + ref if ref.startswith("/") else ref
        return f"$ref {shown!r} points to nothing"
    exc = _cause(exc)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    instance = getattr(exc, "instance", None)
    if isinstance(instance, (dict, list)) and message.startswith(repr(instance)):
        message = "the value" + message[len(repr(instance)):]  # not the whole mapping again
    first = message.strip().splitlines()[0].rstrip(".")
    if len(first) > 200:
        first = first[:197] + "..."
    place = ".".join(str(p) for p in getattr(exc, "absolute_path", None) or ())
    return f"{first} at {place}" if place else first


def _cause(error: Any) -> Any:
    """The most specific reason a oneOf/anyOf failed.

    Most OpenAPI objects may be written inline or as a Reference, so every
    failure also says "'$ref' is a required property"; that alternative is
    never what the learner meant, so it is skipped and the deepest remaining
    error is followed.
    """
    causes = [e for e in getattr(error, "context", None) or ()
              if not (e.validator == "required" and "'$ref'" in e.message)]
    if not causes:
        return error
    return _cause(max(causes, key=lambda e: len(e.absolute_path)))


# -- importing ----------------------------------------------------------------

def import_api(target, contract: dict | str, *, tags: dict[str, str] | None = None,
               endpoint_type: str = "REGIONAL") -> str:
    """Create a REST API from an OpenAPI 3 contract and return its id."""
    spec = validate_contract(contract)
    if endpoint_type not in ENDPOINT_TYPES:
        raise LabkitError(f"Endpoint type {endpoint_type!r} is not one of {', '.join(ENDPOINT_TYPES)}.")
    if target.is_live:
        return _import_live(target, spec, tags or {}, endpoint_type)
    return _Translator(target.client("apigateway"), spec).run(tags or {}, endpoint_type)


def _import_live(target, spec: dict, tags: dict[str, str], endpoint_type: str) -> str:
    client = target.client("apigateway")
    with _step("API Gateway refused the contract"):
        api_id = client.import_rest_api(
            body=json.dumps(spec, default=str).encode("utf-8"),
            failOnWarnings=True,
            parameters={"endpointConfigurationTypes": endpoint_type},
        )["id"]
    if tags:
        try:
            with _step(f"The API {api_id} was imported but could not be tagged, so it was deleted"):
                client.tag_resource(resourceArn=f"arn:aws:apigateway:{target.region}::/restapis/{api_id}", tags=tags)
        except LabkitError:
            _delete_quietly(client, api_id)
            raise
    return api_id


@contextmanager
def _step(lead: str) -> Iterator[None]:
    """Turn an AWS error into one sentence: ``lead``, a colon, and AWS's reason."""
    try:
        yield
    except ClientError as exc:
        raise LabkitError(f"{lead}: {_aws_message(exc)}.") from None
    except BotoCoreError as exc:
        raise LabkitError(f"{lead}: {_one_line(str(exc))}.") from None


def _at(where: str):
    return _step(f"Importing the contract failed at {where}")


def _aws_message(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return _one_line(error.get("Message") or error.get("Code") or str(exc))


def _one_line(text: str) -> str:
    # API Gateway's import errors run over several tab-indented lines.
    return " ".join(text.split()).rstrip(".:")


def _delete_quietly(client, api_id: str) -> None:
    try:
        client.delete_rest_api(restApiId=api_id)
    except (ClientError, BotoCoreError):
        pass  # the original error is the one worth reporting


def _paths(spec: dict) -> Iterator[tuple[str, dict]]:
    paths = spec.get("paths")
    for path, item in (paths.items() if isinstance(paths, dict) else ()):
        if isinstance(item, dict):
            yield path, item


def _operations_of(item: dict) -> Iterator[tuple[str, dict]]:
    for key, operation in item.items():
        if key in HTTP_METHODS and isinstance(operation, dict):
            yield HTTP_METHODS[key], operation


def _mapping(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise LabkitError(f"{where} must be a mapping, not {type(value).__name__}.")
    return value


def _model_url(api_id: str, name: str) -> str:
    return f"https://apigateway.amazonaws.com/restapis/{api_id}/models/{name}"


def _ref_name(ref: Any, prefix: str, where: str) -> str:
    if not isinstance(ref, str) or not ref.startswith(prefix):
        raise LabkitError(f"{where} has $ref {ref!r}; only refs to {prefix}<Name> can be imported.")
    return ref[len(prefix):]


def _schema_refs(node: Any) -> Iterator[str]:
    """Every ``$ref`` string anywhere below a schema (for creating models in dependency order)."""
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _schema_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _schema_refs(value)


def _to_draft4(schema: dict, api_id: str, where: str = "the schema") -> dict:
    """An OpenAPI 3.0 schema object as JSON Schema draft 4, with refs pointing at API Gateway models."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$ref":
            out[key] = _model_url(api_id, _ref_name(value, SCHEMA_REF, where))
        elif key in OPENAPI_ONLY or key.startswith("x-"):
            continue
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: _sub_schema(sub, api_id, where) for name, sub in value.items()}
        elif key in ("allOf", "anyOf", "oneOf") and isinstance(value, list):
            out[key] = [_sub_schema(sub, api_id, where) for sub in value]
        elif key in ("items", "additionalProperties", "not"):
            out[key] = _sub_schema(value, api_id, where)
        else:
            out[key] = value  # enum, default, required, ...: data, not schemas
    if schema.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def _sub_schema(value: Any, api_id: str, where: str) -> Any:
    return _to_draft4(value, api_id, where) if isinstance(value, dict) else value


class _Translator:
    """The calls API Gateway's importer makes, made one by one against the local AWS."""

    def __init__(self, client, spec: dict):
        self.client = client
        self.spec = spec
        self.components = _mapping(spec.get("components"), "components")
        self.schemas = _mapping(self.components.get("schemas"), "components.schemas")
        self.schemes = _mapping(self.components.get("securitySchemes"), "components.securitySchemes")
        self.api_id = ""
        self.resources: dict[str, str] = {}
        self.validators: dict[str, str] = {}
        self.authorizers: dict[str, tuple[str, str]] = {}  # scheme name -> (id, type)

    def run(self, tags: dict[str, str], endpoint_type: str) -> str:
        self._create_api(tags, endpoint_type)
        try:
            self._create_models()
            self._create_validators()
            self._create_authorizers()
            for path, item in _paths(self.spec):
                for method, operation in _operations_of(item):
                    self._create_method(path, item, method, operation)
        except BaseException:
            _delete_quietly(self.client, self.api_id)  # no half-made API left behind
            raise
        return self.api_id

    # -- the API and what hangs off it directly -------------------------------
    def _create_api(self, tags: dict[str, str], endpoint_type: str) -> None:
        info = self.spec["info"]
        args: dict[str, Any] = {
            "name": info["title"],
            "description": info.get("description") or "",
            "endpointConfiguration": {"types": [endpoint_type]},
            "apiKeySource": str(self.spec.get("x-amazon-apigateway-api-key-source", "HEADER")).upper(),
        }
        binary = self.spec.get("x-amazon-apigateway-binary-media-types")
        if binary:
            args["binaryMediaTypes"] = list(binary)
        if tags:
            args["tags"] = dict(tags)
        with _at("creating the API"):
            api = self.client.create_rest_api(**args)
        self.api_id = api["id"]
        self.resources["/"] = api["rootResourceId"]

    def _create_models(self) -> None:
        done: set[str] = set()
        for name in self.schemas:
            self._create_model(name, done, ())

    def _create_model(self, name: str, done: set[str], chain: tuple[str, ...]) -> None:
        # Referenced models first, as API Gateway checks refs when a model is created.
        if name in done or name in chain:
            return
        where = f"components.schemas.{name}"
        if name not in self.schemas:
            raise LabkitError(f"{chain[-1] if chain else 'A schema'} refers to schema {name!r}, which components.schemas does not define.")
        if not re.fullmatch(r"[A-Za-z0-9]+", name):
            raise LabkitError(f"Schema name {name!r} cannot be an API Gateway model name; use letters and digits only.")
        schema = _mapping(self.schemas[name], where)
        for ref in _schema_refs(schema):
            self._create_model(_ref_name(ref, SCHEMA_REF, where), done, (*chain, name))
        body = {"$schema": DRAFT4, "title": name, **_to_draft4(schema, self.api_id, where)}
        with _at(where):
            self.client.create_model(restApiId=self.api_id, name=name, contentType="application/json",
                                     schema=json.dumps(body), description=schema.get("description", ""))
        done.add(name)

    def _create_validators(self) -> None:
        declared = _mapping(self.spec.get("x-amazon-apigateway-request-validators"),
                            "x-amazon-apigateway-request-validators")
        for name, rules in declared.items():
            where = f"x-amazon-apigateway-request-validators.{name}"
            rules = _mapping(rules, where)
            with _at(where):
                self.validators[name] = self.client.create_request_validator(
                    restApiId=self.api_id, name=name,
                    validateRequestBody=bool(rules.get("validateRequestBody", False)),
                    validateRequestParameters=bool(rules.get("validateRequestParameters", False)),
                )["id"]

    def _create_authorizers(self) -> None:
        for name, scheme in self.schemes.items():
            where = f"components.securitySchemes.{name}"
            extension = _mapping(_mapping(scheme, where).get("x-amazon-apigateway-authorizer"),
                                 f"{where}.x-amazon-apigateway-authorizer")
            if extension:
                args = _authorizer_args(name, scheme, extension, where)
                with _at(where):
                    created = self.client.create_authorizer(restApiId=self.api_id, **args)
                self.authorizers[name] = (created["id"], args["type"])

    # -- resources and methods ------------------------------------------------
    def _resource(self, path: str) -> str:
        """The id of the resource for ``path``, creating it and any missing ancestors."""
        current = "/"
        for part in (p for p in path.strip("/").split("/") if p):
            child = current.rstrip("/") + "/" + part
            if child not in self.resources:
                with _at(f"path {child}"):
                    self.resources[child] = self.client.create_resource(
                        restApiId=self.api_id, parentId=self.resources[current], pathPart=part)["id"]
            current = child
        return self.resources[current]

    def _create_method(self, path: str, item: dict, method: str, operation: dict) -> None:
        where = f"{method} {path}"
        resource_id = self._resource(path)
        args = {
            "restApiId": self.api_id, "resourceId": resource_id, "httpMethod": method,
            **self._security(operation, where),
            **self._request(item, operation, where),
        }
        with _at(where):
            self.client.put_method(**args)
            for code, response in self._method_responses(operation, where):
                self.client.put_method_response(restApiId=self.api_id, resourceId=resource_id,
                                                httpMethod=method, statusCode=code, **response)
        integration = _mapping(operation.get("x-amazon-apigateway-integration"),
                               f"{where} x-amazon-apigateway-integration")
        if integration:
            self._create_integration(resource_id, method, integration, where)

    def _security(self, operation: dict, where: str) -> dict[str, Any]:
        """authorizationType, authorizerId, scopes and apiKeyRequired from the effective security."""
        requirements = operation["security"] if "security" in operation else self.spec.get("security") or []
        args: dict[str, Any] = {"authorizationType": "NONE", "apiKeyRequired": False}
        for requirement in requirements:
            for name, scopes in _mapping(requirement, f"{where} security").items():
                self._apply_scheme(args, name, scopes, where)
        return args

    def _apply_scheme(self, args: dict[str, Any], name: str, scopes: Any, where: str) -> None:
        scheme = self.schemes.get(name)
        if not isinstance(scheme, dict):
            raise LabkitError(f"{where} names security scheme {name!r}, which components.securitySchemes does not define.")
        authtype = str(scheme.get("x-amazon-apigateway-authtype", "")).lower()
        if name in self.authorizers:
            authorizer_id, kind = self.authorizers[name]
            if args.get("authorizerId") not in (None, authorizer_id):
                raise LabkitError(f"{where} names two authorizers; API Gateway allows one per method.")
            args["authorizerId"] = authorizer_id
            args["authorizationType"] = "COGNITO_USER_POOLS" if kind == "COGNITO_USER_POOLS" else "CUSTOM"
            if scopes and kind == "COGNITO_USER_POOLS":
                args["authorizationScopes"] = list(scopes)
        elif authtype == "awssigv4":
            args["authorizationType"] = "AWS_IAM"
        elif scheme.get("type") == "apiKey" and not authtype:
            args["apiKeyRequired"] = True
        else:
            raise LabkitError(
                f"{where} uses security scheme {name!r}, which API Gateway cannot enforce; "
                "use an API key scheme or one with x-amazon-apigateway-authorizer."
            )

    def _request(self, item: dict, operation: dict, where: str) -> dict[str, Any]:
        """requestParameters, requestModels, requestValidatorId and operationName."""
        args: dict[str, Any] = {}
        parameters = self._parameters(item, operation, where)
        if parameters:
            args["requestParameters"] = parameters
        models = self._request_models(operation, where)
        if models:
            args["requestModels"] = models
        validator = operation.get("x-amazon-apigateway-request-validator",
                                  self.spec.get("x-amazon-apigateway-request-validator"))
        if validator:
            if validator not in self.validators:
                raise LabkitError(
                    f"{where} names request validator {validator!r}, which "
                    "x-amazon-apigateway-request-validators does not define."
                )
            args["requestValidatorId"] = self.validators[validator]
        if operation.get("operationId"):
            args["operationName"] = str(operation["operationId"])
        return args

    def _parameters(self, item: dict, operation: dict, where: str) -> dict[str, bool]:
        # Operation-level parameters override path-level ones with the same name and place.
        merged: dict[tuple[str, str], dict] = {}
        for parameter in [*(item.get("parameters") or []), *(operation.get("parameters") or [])]:
            parameter = self._resolve(parameter, "#/components/parameters/", "parameters", where)
            merged[(parameter.get("in", ""), parameter.get("name", ""))] = parameter
        return {
            f"method.request.{PARAMETER_PLACES[place]}.{name}": bool(parameter.get("required", False))
            for (place, name), parameter in merged.items()
            if place in PARAMETER_PLACES  # API Gateway has no cookie parameters
        }

    def _request_models(self, operation: dict, where: str) -> dict[str, str]:
        body = operation.get("requestBody")
        if not body:
            return {}
        body = self._resolve(body, "#/components/requestBodies/", "requestBodies", where)
        return self._content_models(body.get("content"), f"{where} requestBody")

    def _content_models(self, content: Any, where: str) -> dict[str, str]:
        """Content type -> model name, for content whose schema is a $ref to a component schema."""
        models = {}
        for content_type, media in _mapping(content, f"{where} content").items():
            ref = _mapping(media, f"{where} content").get("schema", {}).get("$ref")
            if ref is not None:
                name = _ref_name(ref, SCHEMA_REF, where)
                if name not in self.schemas:
                    raise LabkitError(f"{where} refers to schema {name!r}, which components.schemas does not define.")
                models[content_type] = name
        return models

    def _method_responses(self, operation: dict, where: str) -> Iterator[tuple[str, dict]]:
        for code, response in _mapping(operation.get("responses"), f"{where} responses").items():
            if code == "default":
                continue  # a method response needs a real status code
            response = self._resolve(response, "#/components/responses/", "responses", where)
            args: dict[str, Any] = {}
            models = self._content_models(response.get("content"), f"{where} response {code}")
            if models:
                args["responseModels"] = models
            headers = _mapping(response.get("headers"), f"{where} response {code} headers")
            if headers:
                args["responseParameters"] = {
                    f"method.response.header.{name}": bool(_mapping(header, where).get("required", False))
                    for name, header in headers.items()
                }
            yield code, args

    def _resolve(self, node: Any, prefix: str, section: str, where: str) -> dict:
        node = _mapping(node, where)
        if "$ref" not in node:
            return node
        name = _ref_name(node["$ref"], prefix, where)
        target = _mapping(self.components.get(section), f"components.{section}").get(name)
        if target is None:
            raise LabkitError(f"{where} refers to {node['$ref']}, which the contract does not define.")
        return _mapping(target, f"components.{section}.{name}")

    # -- integrations ---------------------------------------------------------
    def _create_integration(self, resource_id: str, method: str, integration: dict, where: str) -> None:
        args = _integration_args(integration, where)
        place = {"restApiId": self.api_id, "resourceId": resource_id, "httpMethod": method}
        with _at(f"{where} integration"):
            self.client.put_integration(**place, **args)
        responses = _mapping(integration.get("responses"), f"{where} integration responses")
        for pattern, response in responses.items():
            response_args = _integration_response_args(pattern, response, where)
            with _at(f"{where} integration response {pattern!r}"):
                self.client.put_integration_response(**place, **response_args)


def _authorizer_args(name: str, scheme: dict, extension: dict, where: str) -> dict[str, Any]:
    kind = AUTHORIZER_TYPES.get(str(extension.get("type", "")).lower())
    if kind is None:
        raise LabkitError(
            f"{where} has authorizer type {extension.get('type')!r}; use cognito_user_pools, token or request."
        )
    args: dict[str, Any] = {"name": name, "type": kind}
    header = scheme.get("name") if scheme.get("in") == "header" else None
    source = extension.get("identitySource") or (f"method.request.header.{header}" if header else None)
    if source:
        args["identitySource"] = source
    if kind == "COGNITO_USER_POOLS":
        arns = extension.get("providerARNs")
        if not isinstance(arns, list) or not arns:
            raise LabkitError(f"{where} needs providerARNs: a list with your user pool's ARN.")
        args["providerARNs"] = [str(a) for a in arns]
        return args
    if not extension.get("authorizerUri"):
        raise LabkitError(f"{where} needs an authorizerUri for a {kind} authorizer.")
    args["authorizerUri"] = extension["authorizerUri"]
    for key in ("authorizerCredentials", "identityValidationExpression"):
        if extension.get(key):
            args[key] = str(extension[key])
    if extension.get("authorizerResultTtlInSeconds") is not None:
        args["authorizerResultTtlInSeconds"] = _whole(extension["authorizerResultTtlInSeconds"],
                                                      f"{where} authorizerResultTtlInSeconds")
    return args


def _whole(value: Any, where: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise LabkitError(f"{where} must be a whole number, not {value!r}.") from None


def _integration_args(integration: dict, where: str) -> dict[str, Any]:
    kind = str(integration.get("type", "")).upper()
    if kind not in ("MOCK", "AWS", "AWS_PROXY", "HTTP", "HTTP_PROXY"):
        raise LabkitError(
            f"{where} x-amazon-apigateway-integration has type {integration.get('type')!r}; "
            "use mock, aws, aws_proxy, http or http_proxy."
        )
    args: dict[str, Any] = {"type": kind}
    if integration.get("uri"):
        args["uri"] = str(integration["uri"])
    if integration.get("httpMethod"):
        args["integrationHttpMethod"] = str(integration["httpMethod"]).upper()
    for key in ("requestTemplates", "requestParameters", "cacheKeyParameters", "tlsConfig"):
        if integration.get(key):
            args[key] = integration[key]
    for key in ("credentials", "cacheNamespace", "connectionId"):
        if integration.get(key):
            args[key] = str(integration[key])
    for key in ("passthroughBehavior", "contentHandling", "connectionType"):
        if integration.get(key):
            args[key] = str(integration[key]).upper()  # the extension writes these in lower case
    if integration.get("timeoutInMillis") is not None:
        args["timeoutInMillis"] = _whole(integration["timeoutInMillis"], f"{where} timeoutInMillis")
    return args


def _integration_response_args(pattern: str, response: Any, where: str) -> dict[str, Any]:
    response = _mapping(response, f"{where} integration response {pattern!r}")
    if response.get("statusCode") is None:
        raise LabkitError(f"{where} integration response {pattern!r} needs a statusCode.")
    args: dict[str, Any] = {"statusCode": str(response["statusCode"])}
    if pattern != "default":  # "default" is the response used when no pattern matches
        args["selectionPattern"] = pattern
    for key in ("responseTemplates", "responseParameters"):
        if response.get(key):
            args[key] = response[key]
    if response.get("contentHandling"):
        args["contentHandling"] = str(response["contentHandling"]).upper()
    return args
