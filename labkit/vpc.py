"""Probes from inside a VPC of the local AWS: what a program there would reach, and what it would not.

``probe(vpc_id, url, ...)`` asks the local AWS (``POST /_vpc/probe``) to send one HTTP request from an
address of a subnet of the VPC carrying the given security groups, and returns what happened as a dict:
``outcome`` (answered, refused, unreachable, timeout or unresolved), ``status`` and ``body`` when it was
answered, ``address`` (what the URL's name resolved to inside the VPC), ``source`` (the probe's own address),
``elapsed_ms``, ``mode`` (``namespaces``: the kernel isolated the VPC; ``loopback``: the local AWS enforced
the same rules itself) and ``detail`` (one sentence why). Only the local AWS has this: a live account's VPCs
are reached by programs running in them.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request

from . import config
from .errors import LabkitError


def probe(vpc_id: str, url: str, security_group_ids=(), *, subnet_id: str | None = None, method: str = "GET",
          timeout: float = 5.0, headers: dict | None = None, body: str = "", endpoint: str | None = None) -> dict:
    asked = {"vpc_id": vpc_id, "url": url, "security_group_ids": list(security_group_ids), "method": method,
             "timeout": timeout, "headers": dict(headers or {}), "body": body}
    if subnet_id is not None:
        asked["subnet_id"] = subnet_id
    base = (endpoint or config.local_endpoint()).rstrip("/")
    request = urllib.request.Request(f"{base}/_vpc/probe", data=json.dumps(asked).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout + 10) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("message")
        except ValueError:
            message = None
        raise LabkitError(message or f"The local AWS refused the probe ({exc.code}).") from None
    except (urllib.error.URLError, OSError) as exc:
        raise LabkitError(f"The local AWS at {base} did not answer the probe ({exc}); start it with "
                          "`python -m labkit up`.") from None
