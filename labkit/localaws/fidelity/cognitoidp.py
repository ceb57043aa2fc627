"""Cognito user pools: an app client's secret and its allowed auth flows hold, as on AWS.

moto lets a client created with ``GenerateSecret=True`` sign users in
with USER_PASSWORD_AUTH (and sign up, reset passwords) without a
``SECRET_HASH``, and ignores the client's ``ExplicitAuthFlows``. AWS refuses
both, so a lab 02 app client with a secret, or without ALLOW_USER_PASSWORD_AUTH,
would work offline and fail on the first live run. And a pool's default password policy asks
for 8 characters (moto: 5), so a short test-user password is refused as on AWS.
"""
from __future__ import annotations

import base64
import hashlib
import hmac

# Operations that take the hash as a top-level SecretHash (with Username) rather than in AuthParameters.
SECRET_HASH_OPERATIONS = ("sign_up", "confirm_sign_up", "forgot_password", "confirm_forgot_password")
# Flows the client must list (either spelling AWS accepts) before InitiateAuth / AdminInitiateAuth may use them.
FLOW_NAMES = {
    "USER_PASSWORD_AUTH": ("ALLOW_USER_PASSWORD_AUTH", "USER_PASSWORD_AUTH"),
    "ADMIN_USER_PASSWORD_AUTH": ("ALLOW_ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH"),
    "ADMIN_NO_SRP_AUTH": ("ALLOW_ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH"),
}
DEFAULT_MINIMUM_LENGTH = 8  # AWS's default password policy; moto's default is 5
# Flows that carry a username and so a SECRET_HASH (moto already checks SRP and refresh itself).
PASSWORD_FLOWS = tuple(FLOW_NAMES)


def secret_hash(secret: str, client_id: str, username: str) -> str:
    """AWS's SECRET_HASH: Base64(HMAC-SHA256(key=client secret, message=username + client id))."""
    digest = hmac.new(secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def apply() -> None:
    from moto.cognitoidp.responses import CognitoIdpResponse

    _default_password_length()
    for name in ("initiate_auth", "admin_initiate_auth"):
        setattr(CognitoIdpResponse, name, _checked_auth(getattr(CognitoIdpResponse, name), admin=name.startswith("admin")))
    for name in SECRET_HASH_OPERATIONS:
        setattr(CognitoIdpResponse, name, _checked_secret(getattr(CognitoIdpResponse, name)))


def _find_client(client_id: str):
    from moto.cognitoidp.models import cognitoidp_backends

    for account in cognitoidp_backends.values():
        for region, backend in account.items():
            if region == "global":
                continue
            for pool in backend.user_pools.values():
                if client_id in pool.clients:
                    return pool.clients[client_id]
    return None  # moto's own handler answers ResourceNotFoundException


def _require_secret(client, username, given) -> None:
    from moto.cognitoidp.exceptions import NotAuthorizedError

    if client is None or not client.generate_secret:
        return
    if not given:
        raise NotAuthorizedError(f"Client {client.id} is configured for secret but secret was not received")
    if not hmac.compare_digest(str(given), secret_hash(client.secret, client.id, str(username or ""))):
        raise NotAuthorizedError(f"Unable to verify secret hash for client {client.id}")


def _checked_auth(original, *, admin: bool):
    def handler(self):
        from moto.cognitoidp.exceptions import InvalidParameterException

        flow = self._get_param("AuthFlow")
        client = _find_client(self._get_param("ClientId") or "")
        if client is not None and flow in PASSWORD_FLOWS:
            allowed = client.extended_config.get("ExplicitAuthFlows") or []
            if not any(name in allowed for name in FLOW_NAMES[flow]):
                raise InvalidParameterException("Auth flow not enabled for this client" if admin
                                                else f"{flow} flow not enabled for this client")
            params = self._get_param("AuthParameters") or {}
            _require_secret(client, params.get("USERNAME"), params.get("SECRET_HASH"))
        return original(self)

    return handler


def _checked_secret(original):
    def handler(self):
        client = _find_client(self._get_param("ClientId") or "")
        _require_secret(client, self._get_param("Username"), self._get_param("SecretHash"))
        return original(self)

    return handler


def _default_password_length() -> None:
    from moto.cognitoidp.exceptions import InvalidPasswordException
    from moto.cognitoidp.models import CognitoIdpBackend

    original = CognitoIdpBackend._validate_password

    def validate(self, user_pool_id, password):
        original(self, user_pool_id, password)
        policy = self.describe_user_pool(user_pool_id).extended_config.get("Policies", {}).get("PasswordPolicy", {})
        if len(password) < policy.get("MinimumLength", DEFAULT_MINIMUM_LENGTH):
            raise InvalidPasswordException()

    CognitoIdpBackend._validate_password = validate
