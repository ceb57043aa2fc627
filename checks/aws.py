"""Small helpers the lab checks share for reading AWS answers."""
from __future__ import annotations

from typing import Any, Callable


def absent(call: Callable[[], Any], *codes: str) -> Any:
    """``call()``, or None when AWS answers with one of ``codes`` (the thing does not exist).

    An HTTP status in ``codes`` (``"404"``) matches too: HEAD requests carry no error code.
    """
    from botocore.exceptions import ClientError

    try:
        return call()
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        if code in codes or status in codes:
            return None
        raise


def missing_tags(tags: list[dict] | None, wanted: dict[str, str]) -> list[str]:
    """The ``key=value`` course tags a resource lacks, from its Key/Value tag list."""
    have = {tag["Key"]: tag["Value"] for tag in tags or []}
    return [f"{k}={v}" for k, v in wanted.items() if have.get(k) != v]


def as_list(value) -> list:
    """A policy element that may be one value or a list (Action, Resource, Statement), as a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
