"""DynamoDB: IAM sees the table a call touches."""
from __future__ import annotations

from collections import Counter

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
    count_reads()


# Reads per table and operation since the last reset, as CloudWatch's per-table request metrics would
# count them: what lab 07 measures a cache's read reduction with (``extensions/counts.py`` serves them).
READS: "Counter[tuple[str, str]]" = Counter()
COUNTED = ("get_item", "batch_get_item", "query", "scan")


def count_reads() -> None:
    from moto.dynamodb.responses import DynamoHandler

    for name in COUNTED:
        original = getattr(DynamoHandler, name)

        def counted(self, _original=original, _name=name):
            data = request_body(self)
            tables = [data["TableName"]] if data.get("TableName") else list(data.get("RequestItems") or {})
            for table in tables:
                READS[(table, _name)] += 1
            return _original(self)

        setattr(DynamoHandler, name, counted)
