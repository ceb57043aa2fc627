"""Writes the local AWS makes itself, sent through its own dispatch so the journal keeps them.

A runtime that changes what moto stores (the scaler setting a desired count, the circuit breaker
rolling a service back) must not change moto's objects behind the journal's back: a restart or a
restore replays the journal, and a change it never saw would be undone (a rolled-back service would
come back on its broken revision). So such a change is made as the AWS request that makes it, signed
for the resource's own account, carrying ``X-Labkit-Internal`` (which the guard refuses from outside)
with what the request alone cannot say, for the extension that hears it.
"""
from __future__ import annotations

import json
import logging

from .guard import INTERNAL_HEADER
from .http import Request
from .journal import environ_for

log = logging.getLogger("labkit.localaws")


def json_write(host, *, account: str, region: str, scope: str, target: str, body: dict,
               marker: dict | None = None) -> bool:
    """Send a JSON-protocol write (``target``: its X-Amz-Target) as the local AWS's own; True when it succeeded.
    The caller may hold the host's lock (it is re-entrant)."""
    headers = {"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1",
               # moto reads a 12-digit access key as the account it acts in
               "Authorization": f"AWS4-HMAC-SHA256 Credential={account}/20260101/{region}/{scope}/aws4_request, "
                                "SignedHeaders=host, Signature=0",
               INTERNAL_HEADER: json.dumps(marker or {})}
    entry = {"method": "POST", "url": "http://localhost/", "headers": headers, "body": json.dumps(body)}
    status: list = []
    host.dispatch(Request.from_environ(environ_for(entry)), lambda s, *_: status.append(s))
    if not status or not str(status[0]).startswith("2"):
        log.warning("the local AWS's own %s was refused (%s)", target.rpartition(".")[2], status[0] if status else "no answer")
        return False
    return True


def marker_of(request: Request) -> dict:
    """What an internal write carries for its extensions ({} for a learner's request)."""
    try:
        found = json.loads(request.header(INTERNAL_HEADER) or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}
