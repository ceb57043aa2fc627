"""Writes lab 04's data set: orders.jsonl and stock.json, the same on every run.

    python labkit/assets/lab04/generate.py

The numbers are chosen so the access patterns differ in size: some
customers have a handful of orders and some dozens, and a status on a day
holds a few percent of the table.
"""
from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDERS, CUSTOMERS, DAYS = 800, 40, 14
FIRST_DAY = datetime(2026, 10, 1, tzinfo=timezone.utc)
SKUS = {f"SKU-{n:03d}": price for n, price in enumerate(
    (1299, 2499, 499, 8999, 1999, 349, 5999, 799, 1499, 2999, 12999, 999), start=1)}
STATUSES = (("DELIVERED", 40), ("SHIPPED", 20), ("PAID", 15), ("NEW", 10), ("PENDING", 8), ("CANCELLED", 7))


def orders(rng: random.Random) -> list[dict]:
    # A few busy customers and a long tail, as real shops have.
    weights = [1 / (rank + 1) for rank in range(CUSTOMERS)]
    customers = [f"customer-{n:03d}" for n in range(1, CUSTOMERS + 1)]
    out = []
    for _ in range(ORDERS):
        created = FIRST_DAY + timedelta(seconds=rng.randrange(DAYS * 86400))
        status = rng.choices([s for s, _ in STATUSES], weights=[w for _, w in STATUSES])[0]
        lines = [{"sku": sku, "quantity": rng.randint(1, 3)} for sku in rng.sample(sorted(SKUS), rng.randint(1, 3))]
        order = {
            # An id that starts with its UTC time sorts the way the orders were placed.
            "orderId": f"{created:%Y%m%dT%H%M%SZ}-{rng.getrandbits(24):06x}",
            "customerId": rng.choices(customers, weights=weights)[0],
            "createdAt": f"{created:%Y-%m-%dT%H:%M:%SZ}",
            "status": status,
            "items": lines,
            "total": sum(SKUS[line["sku"]] * line["quantity"] for line in lines),  # in cents
        }
        if status == "PENDING":  # an unpaid order is dropped a day after it was placed
            order["expiresAt"] = int((created + timedelta(days=1)).timestamp())
        out.append(order)
    return sorted(out, key=lambda o: o["orderId"])


def main() -> None:
    rng = random.Random(4)
    with open(HERE / "orders.jsonl", "w") as f:
        for order in orders(rng):
            f.write(json.dumps(order, separators=(",", ":")) + "\n")
    stock = [{"sku": sku, "available": rng.randint(20, 200), "price": price} for sku, price in SKUS.items()]
    (HERE / "stock.json").write_text(json.dumps(stock, indent=1) + "\n")


if __name__ == "__main__":
    main()
