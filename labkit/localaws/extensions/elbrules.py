"""An Application Load Balancer's listener rules, as ALB evaluates them (pure functions, no I/O).

Rules are tried by priority, lowest first, the default rule last; a rule matches when every one of
its conditions does, and a condition when any of its values does. Values take ALB's wildcards
(``*`` any run of characters, ``?`` exactly one); paths and methods compare case-sensitively,
hosts, header values and query strings not. The matching rule's last action decides: forward
(to one target group, or weighted across several), fixed-response, or redirect.
"""
from __future__ import annotations

import ipaddress
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl, unquote

FINAL_ACTIONS = ("forward", "fixed-response", "redirect")


@dataclass(frozen=True)
class Incoming:
    """What rules look at in a request."""
    method: str
    path: str          # without the query string
    query: str
    headers: dict      # lowercase name -> first value
    client_ip: str
    listener_port: int
    protocol: str = "http"

    @property
    def host(self) -> str:
        host = self.headers.get("host", "")
        return host.rsplit(":", 1)[0] if not host.startswith("[") and host.count(":") == 1 else host


@lru_cache(maxsize=512)
def _pattern(value: str, case_sensitive: bool) -> re.Pattern:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in value)
    return re.compile(f"^{body}$", 0 if case_sensitive else re.IGNORECASE | re.DOTALL)


def wildcard(value: str, text: str, case_sensitive: bool = False) -> bool:
    return _pattern(value, case_sensitive).match(text) is not None


def _values(condition: dict, config: str) -> list:
    return list((condition.get(config) or {}).get("Values") or condition.get("Values") or [])


def condition_matches(condition: dict, r: Incoming) -> bool:
    field = condition.get("Field")
    if field == "path-pattern":
        return any(wildcard(v, unquote(r.path), case_sensitive=True) for v in _values(condition, "PathPatternConfig"))
    if field == "host-header":
        return any(wildcard(v, r.host) for v in _values(condition, "HostHeaderConfig"))
    if field == "http-header":
        config = condition.get("HttpHeaderConfig") or {}
        value = r.headers.get(str(config.get("HttpHeaderName", "")).lower())
        return value is not None and any(wildcard(v, value) for v in config.get("Values") or [])
    if field == "http-request-method":
        return r.method in _values(condition, "HttpRequestMethodConfig")
    if field == "query-string":
        pairs = parse_qsl(r.query, keep_blank_values=True)
        for wanted in (condition.get("QueryStringConfig") or {}).get("Values") or []:
            key, value = wanted.get("Key"), wanted.get("Value", "")
            if any((key is None or wildcard(key, k)) and wildcard(value, v) for k, v in pairs):
                return True
        return False
    if field == "source-ip":
        try:
            client = ipaddress.ip_address(r.client_ip)
            return any(client in ipaddress.ip_network(v, strict=False) for v in _values(condition, "SourceIpConfig"))
        except ValueError:
            return False
    return False  # a condition this ALB does not know never matches


def matching_rule(rules: list, r: Incoming):
    """The first rule (sorted by priority, default last) whose conditions all match."""
    for rule in rules:
        if all(condition_matches(c, r) for c in rule.conditions):
            return rule
    return None


def final_action(actions: list) -> dict | None:
    ordered = sorted(actions, key=lambda a: a.get("Order") or 0)
    finals = [a for a in ordered if a.get("Type") in FINAL_ACTIONS]
    return finals[-1] if finals else None


def forward_choices(action: dict) -> list[tuple[str, int]]:
    """(target group ARN, weight) of a forward action."""
    groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
    if groups:
        return [(g["TargetGroupArn"], int(g.get("Weight", 1))) for g in groups]
    return [(action["TargetGroupArn"], 1)] if action.get("TargetGroupArn") else []


def pick_group(choices: list[tuple[str, int]], rng: random.Random) -> str | None:
    """A target group drawn by weight (weight 0 never)."""
    weighted = [(arn, w) for arn, w in choices if w > 0]
    if not weighted:
        return None
    total = sum(w for _, w in weighted)
    draw = rng.uniform(0, total)
    for arn, weight in weighted:
        draw -= weight
        if draw <= 0:
            return arn
    return weighted[-1][0]


def redirect_location(config: dict, r: Incoming) -> str:
    """The Location of a redirect action, with ALB's #{protocol} #{host} #{port} #{path} #{query}."""
    def fill(template: str) -> str:
        return (template.replace("#{protocol}", r.protocol).replace("#{host}", r.host)
                .replace("#{port}", str(r.listener_port)).replace("#{path}", r.path.lstrip("/"))
                .replace("#{query}", r.query))

    protocol = fill(config.get("Protocol") or "#{protocol}").lower()
    host = fill(config.get("Host") or "#{host}")
    port = fill(config.get("Port") or "#{port}")
    path = fill(config.get("Path") or "/#{path}")
    query = fill(config.get("Query") if config.get("Query") is not None else "#{query}")
    default = (protocol, port) in (("http", "80"), ("https", "443"))
    return f"{protocol}://{host}{'' if default else ':' + port}{path}{'?' + query if query else ''}"


def redirect_status(config: dict) -> int:
    return 301 if config.get("StatusCode") == "HTTP_301" else 302


# -- ALB's own answers -----------------------------------------------------------

ALB_REASONS = {301: "Moved Permanently", 302: "Found", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 460: "", 500: "Internal Server Error",
               502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}


def alb_error_body(status: int) -> bytes:
    """The HTML page ALB itself answers with (not the target)."""
    title = f"{status} {ALB_REASONS.get(status, '')}".strip()
    return (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
            "</body>\r\n</html>\r\n").encode()
