"""The local AWS's own request counts: DynamoDB reads per table, at ``GET /_counts/dynamodb``.

On AWS a table's reads show in CloudWatch (``ConsumedReadCapacityUnits``, ``SuccessfulRequestLatency``
sample counts); moto keeps no metrics, so the local AWS counts the read calls it serves. Lab 07 reads
them before and after a load to measure what its cache saves the table. Counting changes no state.
"""
from __future__ import annotations

from ..http import Request, Response, json_response
from . import Claim, Extension

PATH = "/_counts/dynamodb"


class RequestCounts(Extension):
    name = "counts"

    def claims(self, request: Request) -> Claim | None:
        return Claim.DATA if request.method == "GET" and request.path == PATH else None

    def handle(self, request: Request) -> Response:
        from ..fidelity.dynamodb import READS

        tables: dict = {}
        for (table, operation), count in list(READS.items()):
            tables.setdefault(table, {})[operation] = count
        return json_response({"reads": tables})

    def reset(self) -> None:
        from ..fidelity.dynamodb import READS

        READS.clear()


EXTENSION = RequestCounts
