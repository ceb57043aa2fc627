"""API Gateway: stages keep their settings on redeploy, integrations keep their cache keys,
and every deployment remembers what it deployed (a stage serves its deployment)."""
from __future__ import annotations

import json

# (api id, deployment id) -> the API's resources and methods when it was deployed:
# a stage serves its deployment, not the API as it is now, exactly as on AWS.
DEPLOYED: dict[tuple[str, str], list] = {}


def apply() -> None:
    _redeploy_keeps_the_stage()
    _keep_cache_key_parameters()
    _one_usage_plan_key()


def _redeploy_keeps_the_stage() -> None:
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


def _keep_cache_key_parameters() -> None:
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


def _one_usage_plan_key() -> None:
    """Attaching a key its usage plan already has is a ConflictException on AWS; moto silently re-attaches it,
    so a lab 02 cell re-run without looking first would pass offline and fail on a live account."""
    from moto.apigateway.exceptions import ConflictException
    from moto.apigateway.models import APIGatewayBackend

    original = APIGatewayBackend.create_usage_plan_key

    def create_usage_plan_key(self, usage_plan_id, payload):
        if payload.get("keyId") in self.usage_plan_keys.get(usage_plan_id, {}):
            raise ConflictException(f"Usage plan {usage_plan_id} already has the API key {payload['keyId']}.")
        return original(self, usage_plan_id, payload)

    APIGatewayBackend.create_usage_plan_key = create_usage_plan_key
