"""Load balancers and where they answer (``python -m labkit lb``).

Locally each HTTP listener of an application load balancer and each TCP listener of a network
load balancer answers on its own loopback port (``http://`` and ``tcp://`` URLs), which the local
AWS records in its state folder as it starts the listener; on a live account a listener answers
at the load balancer's DNS name and the listener's port.
"""
from __future__ import annotations

import json

from .errors import LabkitError
from .localaws.extensions.elb import RECORD  # the file the local AWS writes as it starts listeners
from .target import Target

SCHEMES = {"HTTP": "http", "HTTPS": "https", "TCP": "tcp", "TLS": "tls", "UDP": "udp", "TCP_UDP": "tcp"}


def balancers(t: Target) -> list[dict]:
    """One row per served listener: name, DNS name, listener port and URL."""
    if t.is_local:
        from . import config

        path = config.state_dir() / RECORD
        try:
            rows = json.loads(path.read_text()).get("serving", []) if path.exists() else []
        except (OSError, ValueError, AttributeError) as exc:
            raise LabkitError(f"{path} cannot be read ({exc}); restart the local AWS with "
                              "`python -m labkit down` and `python -m labkit up`.") from exc
        return [{k: row[k] for k in ("name", "dns_name", "listener_port", "url")} for row in rows]
    client = t.client("elbv2")
    rows = []
    for page in client.get_paginator("describe_load_balancers").paginate():
        for lb in page["LoadBalancers"]:
            if lb.get("Type") not in ("application", "network"):
                continue
            for listener in client.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]:
                scheme = SCHEMES.get(listener["Protocol"], listener["Protocol"].lower())
                rows.append({"name": lb["LoadBalancerName"], "dns_name": lb["DNSName"], "listener_port": listener["Port"],
                             "url": f"{scheme}://{lb['DNSName']}:{listener['Port']}"})
    return sorted(rows, key=lambda r: (r["name"], r["listener_port"]))


def url(t: Target, name: str, listener_port: int | None = None) -> str:
    """Where load balancer ``name`` answers (its listener on ``listener_port``, or its first)."""
    for row in balancers(t):
        if row["name"] == name and listener_port in (None, row["listener_port"]):
            return row["url"]
    on = f" with a listener on port {listener_port}" if listener_port else " with a served listener"
    raise LabkitError(f"No load balancer named {name!r}{on} answers on {t.describe()}; "
                      "create its listener first (`python -m labkit lb` lists those that answer).")
