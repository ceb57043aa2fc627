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


def ingress(group: dict) -> list[tuple[int | None, int | None, str, str]]:
    """(from port, to port, protocol, source) for every ingress grant of a security group: CIDR ranges (v4 and
    v6), other security groups and prefix lists alike, so a check of "only X" sees every way in."""
    out = []
    for perm in group.get("IpPermissions", []):
        low, high, proto = perm.get("FromPort"), perm.get("ToPort"), perm.get("IpProtocol")
        for r in perm.get("IpRanges", []):
            out.append((low, high, proto, r["CidrIp"]))
        for r in perm.get("Ipv6Ranges", []):
            out.append((low, high, proto, r["CidrIpv6"]))
        for g in perm.get("UserIdGroupPairs", []):
            out.append((low, high, proto, g["GroupId"]))
        for p in perm.get("PrefixListIds", []):
            out.append((low, high, proto, p["PrefixListId"]))
    return out


def ports_phrase(proto: str | None, low: int | None, high: int | None) -> str:
    return "all ports" if proto == "-1" else (f"port {low}" if low == high else f"ports {low}-{high}")


def admits_only(group: dict, name: str, source: dict, source_name: str, port: int, reaches: str):
    """The outcome of "security group ``name`` admits TCP ``port`` from ``source`` only" (``reaches``: what the
    source cannot reach without the grant, for the message)."""
    from .core import failed, passed

    problems, admitted = [], False
    for low, high, proto, origin in ingress(group):
        ports = ports_phrase(proto, low, high)
        if origin != source["GroupId"]:
            kind = "security group " if origin.startswith("sg-") else "prefix list " if origin.startswith("pl-") else ""
            problems.append(f"admits {kind}{origin} on {ports}")
        elif not (proto == "tcp" and low == port and high == port):
            problems.append(f"admits the service on {ports}, not only TCP {port}")
        else:
            admitted = True
    if problems:
        return failed(f"Security group {name} {'; '.join(problems)}: admit TCP {port} from {source_name} only.")
    if not admitted:
        return failed(f"Security group {name} does not admit TCP {port} from {source_name} ({source['GroupId']}), "
                      f"so the service cannot reach {reaches}.")
    return passed(f"Security group {name} admits TCP {port} from {source_name} only.")
