"""DynamoDB: IAM sees the table a call touches."""
from __future__ import annotations

from .iam import request_body


def apply() -> None:
    """moto checks DynamoDB calls against Resource "*", so a policy scoped to one
    table (the least-privilege answer) would deny everything; name the table."""
    from moto.dynamodb.responses import DynamoHandler

    def resource(self):
        data = request_body(self)
        table = data.get("TableName") or next(iter(data.get("RequestItems") or {}), None)
        for item in data.get("TransactItems") or []:
            table = table or next(iter(item.values()), {}).get("TableName")
        if not table:
            return "*"
        arn = f"arn:aws:dynamodb:{self.region}:{self.current_account}:table/{table}"
        return f"{arn}/index/{data['IndexName']}" if data.get("IndexName") else arn

    DynamoHandler._determine_resource = resource
