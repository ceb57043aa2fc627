"""A private DynamoDB for checks that must write to judge behaviour.

Grading only reads the learner's account. Whether ``create_order`` refuses a
duplicate, or ``place_order`` is all-or-nothing, can only be seen by calling
them; they run here instead: an in-process moto holding empty copies of the
learner's tables (same keys and indexes), discarded afterwards.
"""
from __future__ import annotations

import threading
import uuid
from contextlib import contextmanager
from typing import Iterator

from labkit.target import _botocore_session

_LOCK = threading.Lock()  # moto's mock is process-wide: one sandbox at a time
_CLIENT = None


def _definition(table: dict, name: str) -> dict:
    """create_table arguments that copy ``table``'s (a describe_table answer) keys and global indexes."""
    out = {"TableName": name, "BillingMode": "PAY_PER_REQUEST",
           "AttributeDefinitions": table["AttributeDefinitions"], "KeySchema": table["KeySchema"]}
    indexes = [{"IndexName": i["IndexName"], "KeySchema": i["KeySchema"], "Projection": i["Projection"]}
               for i in table.get("GlobalSecondaryIndexes", [])]
    if indexes:
        out["GlobalSecondaryIndexes"] = indexes
    return out


@contextmanager
def dynamodb(*tables: dict) -> Iterator[tuple[object, dict[str, str]]]:
    """(client, {learner's table name: sandbox copy's name}) for empty copies of ``tables``."""
    import boto3
    from moto import mock_aws

    global _CLIENT
    with _LOCK, mock_aws():
        if _CLIENT is None:  # one per process: moto answers any client made after it was imported
            _CLIENT = boto3.Session(aws_access_key_id="sandbox", aws_secret_access_key="sandbox", region_name="us-east-1",
                                    botocore_session=_botocore_session()).client("dynamodb")
        client = _CLIENT
        names = {}
        try:
            for table in tables:
                # A fresh name per run: the mock may be shared with whoever else uses moto in this process.
                names[table["TableName"]] = copy = f"sandbox-{uuid.uuid4().hex[:8]}-{table['TableName']}"
                client.create_table(**_definition(table, copy))
            yield client, names
        finally:
            for copy in names.values():
                try:
                    client.delete_table(TableName=copy)
                except Exception:  # a table that was never created; nothing to discard
                    pass
