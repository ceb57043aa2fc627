"""labkit.openapi: contracts are validated, then imported the same way locally and live."""
from __future__ import annotations

import json

import pytest
import yaml
from botocore.stub import ANY, Stubber

from labkit import openapi
from labkit.errors import LabkitError
from labkit.target import Target
from tests.conftest import fast_session

# The lab 02 contract, shaped as the design describes; POOL_ARN is filled in per test.
CONTRACT = """
openapi: 3.0.3
info:
  title: ada-orders-api
  description: Orders, API first.
  version: "1.0"
x-amazon-apigateway-api-key-source: HEADER
x-amazon-apigateway-request-validators:
  body:
    validateRequestBody: true
    validateRequestParameters: false
security:
  - api_key: []
paths:
  /orders:
    summary: The order collection
    get:
      operationId: listOrders
      parameters:
        - {name: limit, in: query, schema: {type: integer}}
      responses:
        200:
          description: Orders
          content:
            application/json:
              schema: {$ref: "#/components/schemas/OrderList"}
      x-amazon-apigateway-integration:
        type: mock
        requestTemplates: {application/json: '{"statusCode": 200}'}
        passthroughBehavior: when_no_match
        responses:
          default:
            statusCode: "200"
            responseTemplates: {application/json: '{"orders": []}'}
    post:
      operationId: createOrder
      security:
        - api_key: []
          cognito: []
      x-amazon-apigateway-request-validator: body
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/NewOrder"}
      responses:
        "201":
          description: Created
          headers:
            Location: {schema: {type: string}}
        "400": {description: Bad body}
      x-amazon-apigateway-integration:
        type: mock
        requestTemplates: {application/json: '{"statusCode": 201}'}
        responses:
          default: {statusCode: "201"}
          "4\\\\d{2}": {statusCode: "400"}
  /orders/{orderId}:
    parameters:
      - {name: orderId, in: path, required: true, schema: {type: string}}
    get:
      operationId: getOrder
      responses:
        "200": {description: The order}
      x-amazon-apigateway-integration:
        type: mock
        requestTemplates: {application/json: '{"statusCode": 200}'}
        responses:
          default: {statusCode: "200"}
    delete:
      operationId: deleteOrder
      security:
        - api_key: []
          cognito: []
      responses:
        "204": {description: Deleted}
      x-amazon-apigateway-integration:
        type: mock
        requestTemplates: {application/json: '{"statusCode": 204}'}
        responses:
          default: {statusCode: "204"}
components:
  securitySchemes:
    api_key: {type: apiKey, in: header, name: x-api-key}
    cognito:
      type: apiKey
      in: header
      name: Authorization
      x-amazon-apigateway-authtype: cognito_user_pools
      x-amazon-apigateway-authorizer:
        type: cognito_user_pools
        providerARNs: [POOL_ARN]
  schemas:
    Item:
      type: object
      required: [sku, quantity]
      properties:
        sku: {type: string, example: ABC-1}
        quantity: {type: integer, minimum: 1}
    NewOrder:
      type: object
      required: [customerId, items]
      properties:
        customerId: {type: string}
        items: {type: array, minItems: 1, items: {$ref: "#/components/schemas/Item"}}
    Order:
      allOf:
        - $ref: "#/components/schemas/NewOrder"
        - type: object
          properties:
            orderId: {type: string}
            status: {type: string}
            createdAt: {type: string, nullable: true}
            example: {type: string}
    OrderList:
      type: object
      properties:
        orders: {type: array, items: {$ref: "#/components/schemas/Order"}}
"""


def _contract(pool_arn: str = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_x") -> str:
    return CONTRACT.replace("POOL_ARN", pool_arn)


def _dict() -> dict:
    """The contract as JSON would give it (YAML reads the unquoted 200 as an int)."""
    return json.loads(json.dumps(yaml.safe_load(_contract())))


@pytest.fixture
def imported(aws):
    """The lab 02 contract imported into in-process moto: (target, api id, user pool ARN)."""
    pool_arn = aws.client("cognito-idp").create_user_pool(PoolName="ada-users")["UserPool"]["Arn"]
    api_id = openapi.import_api(aws, _contract(pool_arn), tags=aws.tag_map("02"))
    return aws, api_id, pool_arn


def _resources(t: Target, api_id: str) -> dict[str, dict]:
    items = t.client("apigateway").get_resources(restApiId=api_id, embed=["methods"])["items"]
    return {r["path"]: r for r in items}


def _method(t: Target, api_id: str, method: str, path: str) -> dict:
    resource_id = _resources(t, api_id)[path]["id"]
    return t.client("apigateway").get_method(restApiId=api_id, resourceId=resource_id, httpMethod=method)


def _one_sentence(message: str) -> bool:
    return "\n" not in message and "Traceback" not in message and message.endswith(".")


# -- the full contract round-trips ------------------------------------------

def test_api_is_named_from_info_regional_and_tagged(imported):
    t, api_id, _ = imported
    api = t.client("apigateway").get_rest_api(restApiId=api_id)
    assert api["name"] == "ada-orders-api"
    assert api["description"] == "Orders, API first."
    assert api["endpointConfiguration"]["types"] == ["REGIONAL"]
    assert api["apiKeySource"] == "HEADER"
    assert api["tags"] == t.tag_map("02")


def test_resources_and_methods_match_the_contract(imported):
    t, api_id, _ = imported
    resources = _resources(t, api_id)
    assert set(resources) == {"/", "/orders", "/orders/{orderId}"}
    assert resources["/orders/{orderId}"]["pathPart"] == "{orderId}"
    routes = {(m, path) for path, r in resources.items() for m in r.get("resourceMethods", {})}
    assert routes == openapi.operations(_contract()) == {
        ("GET", "/orders"), ("POST", "/orders"), ("GET", "/orders/{orderId}"), ("DELETE", "/orders/{orderId}")}


def test_writes_use_the_cognito_authorizer_and_every_method_needs_a_key(imported):
    t, api_id, pool_arn = imported
    [authorizer] = t.client("apigateway").get_authorizers(restApiId=api_id)["items"]
    assert authorizer["name"] == "cognito"
    assert authorizer["type"] == "COGNITO_USER_POOLS"
    assert authorizer["providerARNs"] == [pool_arn]
    assert authorizer["identitySource"] == "method.request.header.Authorization"
    for method, path in openapi.operations(_contract()):
        got = _method(t, api_id, method, path)
        assert got["apiKeyRequired"] is True, (method, path)
        if method in ("POST", "DELETE"):
            assert (got["authorizationType"], got["authorizerId"]) == ("COGNITO_USER_POOLS", authorizer["id"])
        else:
            assert got["authorizationType"] == "NONE" and "authorizerId" not in got


def test_post_body_is_validated_against_the_new_order_model(imported):
    t, api_id, _ = imported
    [validator] = t.client("apigateway").get_request_validators(restApiId=api_id)["items"]
    assert (validator["name"], validator["validateRequestBody"], validator["validateRequestParameters"]) == (
        "body", True, False)
    post = _method(t, api_id, "POST", "/orders")
    assert post["requestValidatorId"] == validator["id"]
    assert post["requestModels"] == {"application/json": "NewOrder"}
    assert post["operationName"] == "createOrder"
    assert "requestValidatorId" not in _method(t, api_id, "GET", "/orders")


def test_models_are_draft4_with_refs_to_api_gateway_models(imported):
    t, api_id, _ = imported
    client = t.client("apigateway")
    models = {m["name"]: m for m in client.get_models(restApiId=api_id)["items"]}
    assert set(models) == {"Item", "NewOrder", "Order", "OrderList"}
    assert all(m["contentType"] == "application/json" for m in models.values())
    new_order = json.loads(models["NewOrder"]["schema"])
    assert new_order["$schema"] == "http://json-schema.org/draft-04/schema#"
    assert new_order["required"] == ["customerId", "items"]
    assert new_order["properties"]["items"]["items"]["$ref"] == (
        f"https://apigateway.amazonaws.com/restapis/{api_id}/models/Item")
    order = json.loads(models["Order"]["schema"])["allOf"][1]["properties"]
    assert order["createdAt"] == {"type": ["string", "null"]}  # nullable becomes a draft 4 type list
    assert order["example"] == {"type": "string"}  # a property called "example" is kept
    assert "example" not in json.loads(models["Item"]["schema"])["properties"]["sku"]


def test_path_level_and_operation_parameters_become_request_parameters(imported):
    t, api_id, _ = imported
    for method in ("GET", "DELETE"):
        got = _method(t, api_id, method, "/orders/{orderId}")
        assert got["requestParameters"] == {"method.request.path.orderId": True}
    assert _method(t, api_id, "GET", "/orders")["requestParameters"] == {"method.request.querystring.limit": False}


def test_mock_integrations_and_their_responses(imported):
    t, api_id, _ = imported
    get = _method(t, api_id, "GET", "/orders")
    integration = get["methodIntegration"]
    assert integration["type"] == "MOCK"
    assert integration["passthroughBehavior"] == "WHEN_NO_MATCH"
    assert integration["requestTemplates"] == {"application/json": '{"statusCode": 200}'}
    assert integration["integrationResponses"]["200"]["responseTemplates"] == {"application/json": '{"orders": []}'}
    assert "selectionPattern" not in integration["integrationResponses"]["200"]
    assert set(get["methodResponses"]) == {"200"}
    assert get["methodResponses"]["200"]["responseModels"] == {"application/json": "OrderList"}
    post = _method(t, api_id, "POST", "/orders")
    responses = post["methodIntegration"]["integrationResponses"]
    assert responses["400"]["selectionPattern"] == "4\\d{2}"
    assert "selectionPattern" not in responses["201"]
    assert post["methodResponses"]["201"]["responseParameters"] == {"method.response.header.Location": False}


def test_a_top_level_default_validator_applies_unless_an_operation_names_its_own(aws):
    contract = _dict()
    contract["x-amazon-apigateway-request-validators"]["params"] = {"validateRequestParameters": True}
    contract["x-amazon-apigateway-request-validator"] = "params"
    api_id = openapi.import_api(aws, contract)
    ids = {v["name"]: v["id"] for v in aws.client("apigateway").get_request_validators(restApiId=api_id)["items"]}
    assert _method(aws, api_id, "GET", "/orders")["requestValidatorId"] == ids["params"]
    assert _method(aws, api_id, "POST", "/orders")["requestValidatorId"] == ids["body"]


def test_token_authorizer_and_proxy_integration(aws):
    contract = _dict()
    fn = "arn:aws:lambda:us-east-1:123456789012:function:ada-auth"
    uri = f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{fn}/invocations"
    contract["components"]["securitySchemes"]["custom"] = {
        "type": "apiKey", "in": "header", "name": "X-Token", "x-amazon-apigateway-authtype": "custom",
        "x-amazon-apigateway-authorizer": {"type": "token", "authorizerUri": uri, "authorizerResultTtlInSeconds": 60}}
    get = contract["paths"]["/orders/{orderId}"]["get"]
    get["security"] = [{"custom": []}]
    get["x-amazon-apigateway-integration"] = {"type": "aws_proxy", "httpMethod": "POST", "uri": uri}
    api_id = openapi.import_api(aws, contract)
    authorizers = {a["name"]: a for a in aws.client("apigateway").get_authorizers(restApiId=api_id)["items"]}
    assert authorizers["custom"]["type"] == "TOKEN"
    assert authorizers["custom"]["identitySource"] == "method.request.header.X-Token"
    got = _method(aws, api_id, "GET", "/orders/{orderId}")
    assert (got["authorizationType"], got["authorizerId"], got["apiKeyRequired"]) == (
        "CUSTOM", authorizers["custom"]["id"], False)
    assert (got["methodIntegration"]["type"], got["methodIntegration"]["httpMethod"]) == ("AWS_PROXY", "POST")
    assert got["methodIntegration"]["uri"] == uri


# -- contracts that cannot be imported -----------------------------------------

def _no_apis(t: Target) -> bool:
    return t.client("apigateway").get_rest_apis()["items"] == []


def test_an_invalid_contract_is_one_sentence_and_creates_no_api(aws):
    contract = _dict()
    del contract["paths"]["/orders"]["post"]["responses"]
    with pytest.raises(LabkitError) as caught:
        openapi.import_api(aws, contract)
    message = str(caught.value)
    assert message == ("The contract is not valid OpenAPI 3: "
                       "'responses' is a required property at paths./orders.post.")
    assert _one_sentence(message)
    assert _no_apis(aws)


def test_bad_yaml_text_is_one_sentence_and_creates_no_api(aws):
    with pytest.raises(LabkitError) as caught:
        openapi.import_api(aws, "openapi: 3.0.3\ninfo: [title: x\npaths: {}\n")
    message = str(caught.value)
    assert message.startswith("The contract is not valid YAML:") and "line" in message
    assert _one_sentence(message)
    assert _no_apis(aws)


@pytest.mark.parametrize("change, expected", [
    (lambda c: c.update(openapi="3.1.0"), "says openapi: 3.1.0"),
    (lambda c: c.pop("openapi"), "has no openapi field"),
    (lambda c: c["paths"]["/orders"]["get"].update(parameters=[{"$ref": "#/components/parameters/Nope"}]),
     "$ref '#/components/parameters/Nope' points to nothing"),
    (lambda c: c["components"]["schemas"]["Item"].update(type="strin"),
     "'strin' is not one of ['array', 'boolean', 'integer', 'number', 'object', 'string'] at components.schemas.Item.type"),
    (lambda c: c["paths"]["/orders"]["get"]["responses"]["200"].pop("description"),
     "'description' is a required property at paths./orders.get.responses.200."),
])
def test_contracts_the_validator_or_api_gateway_reject(aws, change, expected):
    contract = _dict()
    change(contract)
    with pytest.raises(LabkitError) as caught:
        openapi.import_api(aws, contract)
    assert expected in str(caught.value) and _one_sentence(str(caught.value))
    assert _no_apis(aws)


@pytest.mark.parametrize("change, expected", [
    (lambda c: c["paths"]["/orders"]["post"].update({"x-amazon-apigateway-request-validator": "strict"}),
     "POST /orders names request validator 'strict'"),
    (lambda c: c["paths"]["/orders"]["get"].update(security=[{"oauth": []}]),
     "GET /orders names security scheme 'oauth'"),
    (lambda c: c["paths"]["/orders"]["post"]["x-amazon-apigateway-integration"].update(type="lambda"),
     "has type 'lambda'"),
    (lambda c: c["paths"]["/orders"]["post"]["requestBody"]["content"]["application/json"].update(
        schema={"$ref": "#/components/schemas/Missing"}), "refers to schema 'Missing'"),
    (lambda c: c["components"]["schemas"].update(Bad_Name={"type": "string"}), "letters and digits only"),
])
def test_translation_problems_name_the_place_and_leave_no_api(aws, change, expected):
    contract = _dict()
    change(contract)
    with pytest.raises(LabkitError) as caught:
        openapi.import_api(aws, contract)
    assert expected in str(caught.value) and _one_sentence(str(caught.value))
    assert _no_apis(aws)


def test_an_aws_error_mid_import_names_the_path_and_deletes_the_half_made_api(aws):
    contract = _dict()
    contract["paths"]["/orders/a b"] = {"get": {"responses": {"200": {"description": "OK"}}}}
    with pytest.raises(LabkitError) as caught:
        openapi.import_api(aws, contract)
    assert str(caught.value).startswith("Importing the contract failed at path /orders/a b: ")
    assert _one_sentence(str(caught.value))
    assert _no_apis(aws)


# -- files and operations ------------------------------------------------------

def test_load_contract_reads_yaml_and_json_files(tmp_path):
    (tmp_path / "api.yaml").write_text(_contract())
    (tmp_path / "api.json").write_text(json.dumps(_dict(), indent="\t"))
    from_yaml = openapi.load_contract(tmp_path / "api.yaml")
    assert from_yaml == openapi.load_contract(str(tmp_path / "api.json"))
    assert "200" in from_yaml["paths"]["/orders"]["get"]["responses"]  # YAML's int key read as text
    assert openapi.validate_contract(from_yaml) == from_yaml


def test_load_contract_errors_are_one_sentence(tmp_path):
    with pytest.raises(LabkitError, match="There is no contract at .*missing.yaml"):
        openapi.load_contract(tmp_path / "missing.yaml")
    (tmp_path / "broken.json").write_text('{"openapi": "3.0.3",}')
    with pytest.raises(LabkitError, match=r"broken.json is not valid JSON: .* line 1") as caught:
        openapi.load_contract(tmp_path / "broken.json")
    assert _one_sentence(str(caught.value))
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(LabkitError, match="is not an OpenAPI document"):
        openapi.load_contract(tmp_path / "list.yaml")


def test_operations_ignore_path_level_keys_that_are_not_methods():
    contract = _dict()
    contract["paths"]["/health"] = {"summary": "x", "parameters": [], "x-amazon-apigateway-any-method": {}}
    assert openapi.operations(contract) == {
        ("GET", "/orders"), ("POST", "/orders"), ("GET", "/orders/{orderId}"), ("DELETE", "/orders/{orderId}"),
        ("ANY", "/health")}


# -- the live branch -------------------------------------------------------------

class _JsonBody:
    """Matches an import body that decodes to the given contract."""

    def __init__(self, contract: dict):
        self.contract = contract

    def __eq__(self, other) -> bool:
        return json.loads(other) == self.contract


@pytest.fixture
def live():
    """A live-mode target whose API Gateway client is stubbed: nothing leaves the process."""
    t = Target("live", prefix="ada", region="eu-west-1")
    t._session = fast_session(t.region)
    with Stubber(t.client("apigateway")) as stub:
        yield t, stub
        stub.assert_no_pending_responses()


def test_live_uses_api_gateways_importer_and_tags_the_api(live):
    t, stub = live
    contract = openapi.validate_contract(_contract())
    stub.add_response("import_rest_api", {"id": "abc123", "name": "ada-orders-api"}, {
        "body": _JsonBody(contract), "failOnWarnings": True,
        "parameters": {"endpointConfigurationTypes": "REGIONAL"}})
    stub.add_response("tag_resource", {}, {
        "resourceArn": "arn:aws:apigateway:eu-west-1::/restapis/abc123", "tags": t.tag_map("02")})
    assert openapi.import_api(t, _contract(), tags=t.tag_map("02")) == "abc123"


def test_live_import_refusal_is_one_sentence(live):
    t, stub = live
    stub.add_client_error("import_rest_api", "BadRequestException",
                          "Errors found during import:\n\tUnable to create model 'NewOrder'", 400,
                          expected_params={"body": ANY, "failOnWarnings": True, "parameters": ANY})
    with pytest.raises(LabkitError) as caught:
        openapi.import_api(t, _contract())
    assert str(caught.value) == (
        "API Gateway refused the contract: Errors found during import: Unable to create model 'NewOrder'.")
    assert _one_sentence(str(caught.value))


def test_remembered_verdicts_match_the_validator_and_skip_it_the_second_time(monkeypatch):
    from labkit import openapi

    good = {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {}}
    bad = {"openapi": "3.0.3", "info": {"title": "t"}, "paths": {}}  # info.version is required
    assert openapi.validate_contract_remembered(good) == good
    with pytest.raises(LabkitError) as first:
        openapi.validate_contract_remembered(bad)

    def no_validator(_):
        raise AssertionError("the verdict should have been remembered")

    monkeypatch.setattr(openapi, "validate_contract", no_validator)
    assert openapi.validate_contract_remembered(good) == good
    with pytest.raises(LabkitError) as second:
        openapi.validate_contract_remembered(bad)
    assert str(second.value) == str(first.value) and "version" in str(first.value)
