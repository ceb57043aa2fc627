"""A private DynamoDB for checks that must write to judge behaviour.

Grading only reads the learner's account. Whether ``create_order`` refuses a
duplicate, or ``place_order`` is all-or-nothing, can only be seen by calling
them; they run on empty copies of the learner's tables (same names, keys and
indexes) in moto inside the learner's child process (``checks.learner.sandbox``),
which has no endpoint, no credentials and nothing of the environment that
could reach an account, and is discarded afterwards.
"""
from __future__ import annotations


def definition(table: dict) -> dict:
    """create_table arguments that copy ``table``'s (a describe_table answer) name, keys and global indexes."""
    out = {"TableName": table["TableName"], "BillingMode": "PAY_PER_REQUEST",
           "AttributeDefinitions": table["AttributeDefinitions"], "KeySchema": table["KeySchema"]}
    indexes = [{"IndexName": i["IndexName"], "KeySchema": i["KeySchema"], "Projection": i["Projection"]}
               for i in table.get("GlobalSecondaryIndexes", [])]
    if indexes:
        out["GlobalSecondaryIndexes"] = indexes
    return out
