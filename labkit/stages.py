"""Deployed REST API stages and where they answer (``python -m labkit api``)."""
from __future__ import annotations

from .target import Target


def stages(t: Target) -> list[dict]:
    """One row per deployed stage: API name, id, stage and invoke URL."""
    client = t.client("apigateway")
    rows = []
    for page in client.get_paginator("get_rest_apis").paginate():
        for api in page.get("items", []):
            for stage in client.get_stages(restApiId=api["id"]).get("item", []):
                rows.append({"api": api["name"], "id": api["id"], "stage": stage["stageName"],
                             "url": t.invoke_url(api["id"], stage["stageName"])})
    return sorted(rows, key=lambda r: (r["api"], r["stage"]))
