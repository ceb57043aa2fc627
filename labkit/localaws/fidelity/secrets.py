"""Secrets Manager and SSM Parameter Store: IAM sees the secret or parameter a call touches.

moto checks their calls against Resource "*", so an execution role allowed to read one
secret (the least-privilege answer, and what ECS task secrets need) would be denied."""
from __future__ import annotations

from .iam import request_body


def apply() -> None:
    from moto.secretsmanager.responses import SecretsManagerResponse
    from moto.ssm.responses import SimpleSystemManagerResponse

    def secret(self):
        secret_id = request_body(self).get("SecretId")
        if not secret_id:
            return "*"
        try:  # a name or a partial ARN: IAM matches the secret's full ARN
            return str(self.backend.describe_secret(secret_id).arn)
        except Exception:
            if secret_id.startswith("arn:"):
                return secret_id
            return f"arn:aws:secretsmanager:{self.region}:{self.current_account}:secret:{secret_id}"

    def parameter(self):
        data = request_body(self)
        names = data.get("Names") or ([data["Name"]] if data.get("Name") else [data["Path"]] if data.get("Path") else [])
        if len(names) != 1:
            return "*"
        name = names[0]
        if name.startswith("arn:"):
            return name
        return f"arn:aws:ssm:{self.region}:{self.current_account}:parameter/{name.lstrip('/')}"

    SecretsManagerResponse._determine_resource = secret
    SimpleSystemManagerResponse._determine_resource = parameter
