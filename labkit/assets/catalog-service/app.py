"""The catalog service: what the shop sells and how many are available, over HTTP.

The orders service asks it about items before it takes an order. Standard library only, plus boto3
when it reads a DynamoDB table:

    GET /health        {"status": "ok", "source": "table" | "sample"}
    GET /items         {"items": [...]}  (sorted by SKU)
    GET /items/{sku}   the item, or 404

Configuration (twelve-factor: the environment only):
    PORT            the port to listen on (8080)
    HOST            the address to listen on (0.0.0.0, as a container needs)
    CATALOG_TABLE   a DynamoDB table to read items from; unset: the sample data in items.json
    CATALOG_KEY     the table's partition key (sku)
boto3 finds the region and credentials the usual way (the task role on Fargate), and honours
AWS_ENDPOINT_URL when it is set.
"""
from __future__ import annotations

import json
import os
import sys
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

SAMPLE = Path(__file__).resolve().parent / "items.json"


class Catalog:
    """Where items come from: a DynamoDB table, or the sample file."""

    def __init__(self, table: str | None = None, key: str = "sku"):
        self.key = key
        self.table = None
        if table:
            import boto3

            self.table = boto3.resource("dynamodb").Table(table)
        else:
            self.sample = {item[key]: item for item in json.loads(SAMPLE.read_text())}

    @property
    def source(self) -> str:
        return "table" if self.table is not None else "sample"

    def items(self) -> list[dict]:
        if self.table is None:
            found = list(self.sample.values())
        else:
            found, page = [], {}
            while True:
                answer = self.table.scan(**page)
                found += answer.get("Items", [])
                if "LastEvaluatedKey" not in answer:
                    break
                page = {"ExclusiveStartKey": answer["LastEvaluatedKey"]}
        return sorted((plain(i) for i in found), key=lambda i: str(i.get(self.key)))

    def item(self, sku: str) -> dict | None:
        if self.table is None:
            return self.sample.get(sku)
        found = self.table.get_item(Key={self.key: sku}).get("Item")
        return plain(found) if found else None


def plain(value):
    """DynamoDB's Decimals as JSON numbers."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def handler_for(catalog: Catalog):
    class Handler(BaseHTTPRequestHandler):
        server_version = "catalog/1.0"

        def do_GET(self):  # noqa: N802 (the http.server name)
            path = urlsplit(self.path).path.rstrip("/") or "/"
            try:
                if path == "/health":
                    return self.send(200, {"status": "ok", "source": catalog.source})
                if path == "/items":
                    return self.send(200, {"items": catalog.items()})
                if path.startswith("/items/"):
                    sku = unquote(path[len("/items/"):])
                    item = catalog.item(sku) if sku and "/" not in sku else None
                    if item is None:
                        return self.send(404, {"message": f"No item {sku!r} in the catalog."})
                    return self.send(200, item)
                return self.send(404, {"message": f"No route for GET {path}."})
            except Exception as exc:  # a table that is missing or unreachable: say so, keep serving
                self.log_error("catalog read failed: %s", exc)
                return self.send(503, {"message": f"The catalog could not be read ({type(exc).__name__})."})

        def send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args):  # one line per request on stderr, as container logs expect
            sys.stderr.write("%s %s\n" % (self.address_string(), format % args))

    return Handler


def main() -> None:
    catalog = Catalog(os.environ.get("CATALOG_TABLE") or None, os.environ.get("CATALOG_KEY") or "sku")
    server = ThreadingHTTPServer((os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "8080"))),
                                 handler_for(catalog))
    print(f"catalog service on port {server.server_address[1]}, items from the {catalog.source}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
