"""Stand-in until the load balancer runtime is merged: where an application load balancer answers.

On a live account a listener answers at the load balancer's DNS name and port. Locally each listener
answers on a loopback port the local AWS records; until that runtime is merged there is none.
"""
from __future__ import annotations

from .errors import LabkitError
from .target import Target


def balancers(t: Target) -> list[dict]:
    """One row per served listener: name, DNS name, listener port and URL."""
    if t.is_local:
        return []
    client = t.client("elbv2")
    rows = []
    for page in client.get_paginator("describe_load_balancers").paginate():
        for lb in page["LoadBalancers"]:
            if lb.get("Type") != "application":
                continue
            for listener in client.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]:
                scheme = "https" if listener["Protocol"] == "HTTPS" else "http"
                rows.append({"name": lb["LoadBalancerName"], "dns_name": lb["DNSName"], "listener_port": listener["Port"],
                             "url": f"{scheme}://{lb['DNSName']}:{listener['Port']}"})
    return sorted(rows, key=lambda r: (r["name"], r["listener_port"]))


def url(t: Target, name: str, listener_port: int | None = None) -> str:
    """Where load balancer ``name`` answers (its listener on ``listener_port``, or its first)."""
    for row in balancers(t):
        if row["name"] == name and listener_port in (None, row["listener_port"]):
            return row["url"]
    on = f" with a listener on port {listener_port}" if listener_port else " with an HTTP listener"
    raise LabkitError(f"No application load balancer named {name!r}{on} answers on {t.describe()}; "
                      "create its listener first (`python -m labkit lb` lists those that answer).")
