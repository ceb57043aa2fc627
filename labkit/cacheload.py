"""Lab 07's provided read load, and the local AWS's count of the table reads it caused.

Shops read a few orders far more often than the rest (the order a customer refreshes, the ones
support has open): a Zipf-shaped load over the seeded orders, the same every run, so the notebook,
the grader and the benchmark measure the same thing.
"""
from __future__ import annotations

import json
import random
import urllib.request

from . import assets

ORDERS = 200  # how many of lab 04's orders the lab seeds into the lab 03 table
READS = 300  # reads in the provided load: enough for the skew to show, few enough to grade in seconds
SKEW = 2.5  # the Zipf exponent: the i-th most popular order is read about 1/i**SKEW as often as the first
SEED = 7


def seed_orders() -> list[dict]:
    """The orders the lab writes to the orders table (lab 04's first ``ORDERS``, keyed by orderId)."""
    return [{k: v for k, v in order.items() if k != "expiresAt"} for order in assets.lab04_orders()[:ORDERS]]


def skewed_reads(count: int = READS) -> list[str]:
    """``count`` order ids, most popular first in weight, in a fixed random order."""
    ids = [order["orderId"] for order in seed_orders()]
    weights = [1 / (rank + 1) ** SKEW for rank in range(len(ids))]
    return random.Random(SEED).choices(ids, weights=weights, k=count)


def table_reads(t, table: str) -> int:
    """Read calls the local AWS has served on ``table`` since it was reset (GetItem, BatchGetItem, Query, Scan)."""
    if not t.is_local:
        raise ValueError("The local AWS counts its own requests; on AWS read the table's CloudWatch metrics.")
    with urllib.request.urlopen(t.endpoint.rstrip("/") + "/_counts/dynamodb", timeout=10) as answer:
        counts = json.loads(answer.read())["reads"].get(table, {})
    return sum(counts.values())
