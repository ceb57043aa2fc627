"""Secrets Manager: IAM sees the secret a call touches."""
from __future__ import annotations

from .iam import request_body


def apply() -> None:
    """moto checks Secrets Manager calls against Resource "*", so a role allowed to read one secret (the
    least-privilege answer, as lab 07's function is) would be denied; name the secret's ARN."""
    from moto.secretsmanager.models import secretsmanager_backends
    from moto.secretsmanager.responses import SecretsManagerResponse

    def resource(self):
        secret_id = request_body(self).get("SecretId")
        if not secret_id:
            return "*"
        try:
            return secretsmanager_backends[self.current_account][self.region].secrets[secret_id].arn
        except (KeyError, AttributeError):
            return "*"  # an unknown secret: the call answers ResourceNotFound after IAM

    SecretsManagerResponse._determine_resource = resource
