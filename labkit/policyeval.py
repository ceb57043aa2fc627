"""IAM policy evaluation, as AWS does it, for the grader and the local AWS alike.

Ask ``evaluate(policies, action=..., resource=..., principal=..., context=...)`` and get a
``Decision``: allowed, explicitly denied or implicitly denied, with the statements that decided.

The rules followed (IAM User Guide, "Policy evaluation logic" and the element references):
an explicit Deny wins over any Allow; without a matching Allow the answer is an implicit deny.
A statement applies when its Action/NotAction, Resource/NotResource, Principal/NotPrincipal and
every condition match. Action names and condition key names ignore case; ARNs, resource names
and condition values do not (unless the operator says IgnoreCase). Wildcards are ``*`` and ``?``
only. In an ARN a wildcard stays within its colon-separated segment, except that a ``*`` ending a
segment may run on across colons, and in the resource part (after the fifth colon) ``*`` matches
anything, ``/`` and ``:`` included. A condition on a key absent from the request is false, except
for ``Null``, ``...IfExists`` and the negated operators (``StringNotEquals`` and friends), which are
true; ``ForAllValues`` on an absent key is true, ``ForAnyValue`` false.

Not supported (said so rather than guessed): policy variables such as ``${aws:username}`` are
compared literally; permissions boundaries, SCPs and session policies are not combined here (pass
the policies that apply); cross-account rules (both sides must allow) are the caller's to combine.
No boto3 here: the local AWS imports this module inside its request path.
"""
from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache

ALLOW, DENY, IMPLICIT = "allow", "explicit deny", "implicit deny"
ACCOUNT_ID = re.compile(r"^\d{12}$")
ROOT_ARN = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}):root$")
ASSUMED_ROLE = re.compile(r"^arn:(aws[\w-]*):sts::(\d{12}):assumed-role/([^/]+)/.+$")


# -- wildcards ------------------------------------------------------------------------

@lru_cache(maxsize=4096)
def _glob_regex(pattern: str, ignore_case: bool) -> re.Pattern:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's wildcard match on plain strings: ``*`` any run of characters, ``?`` one; nothing else special."""
    return _glob_regex(str(pattern), ignore_case).fullmatch(str(value)) is not None


@lru_cache(maxsize=4096)
def _arn_regex(pattern: str) -> re.Pattern:
    out, colons = [], 0
    for i, c in enumerate(pattern):
        in_resource = colons >= 5
        segment_end = i + 1 == len(pattern) or pattern[i + 1] == ":"
        if c == "*":
            out.append(".*" if in_resource or segment_end else "[^:]*")
        elif c == "?":
            out.append("." if in_resource else "[^:]")
        else:
            colons += c == ":"
            out.append(re.escape(c))
    return re.compile("".join(out), re.DOTALL)


def arn_match(pattern: str, arn: str) -> bool:
    """IAM's ARN match (Resource, ArnLike, ArnEquals): case-sensitive, wildcards per segment (see module doc)."""
    pattern, arn = str(pattern), str(arn)
    if pattern == "*":
        return True
    return _arn_regex(pattern).fullmatch(arn) is not None


def action_match(pattern: str, action: str) -> bool:
    """Action names ignore case: s3:getobject is s3:GetObject."""
    return glob(pattern, action, ignore_case=True)


# -- who asks -------------------------------------------------------------------------

@dataclass(frozen=True)
class Principal:
    """The caller: ``kind`` is AWS (an account's user, role, session or root), Service, Federated,
    CanonicalUser, or Anonymous (an unsigned request)."""
    kind: str
    id: str
    account: str | None = None

    @classmethod
    def aws(cls, arn_or_account: str) -> Principal:
        value = str(arn_or_account)
        if ACCOUNT_ID.match(value):
            return cls("AWS", f"arn:aws:iam::{value}:root", value)
        parts = value.split(":")
        return cls("AWS", value, parts[4] if len(parts) > 5 and ACCOUNT_ID.match(parts[4]) else None)

    @classmethod
    def service(cls, name: str) -> Principal:
        return cls("Service", name)

    @classmethod
    def federated(cls, provider: str) -> Principal:
        return cls("Federated", provider)

    @classmethod
    def canonical_user(cls, user_id: str) -> Principal:
        return cls("CanonicalUser", user_id)

    @classmethod
    def anonymous(cls) -> Principal:
        return cls("Anonymous", "*")

    def __str__(self) -> str:
        return "everyone (an anonymous caller)" if self.kind == "Anonymous" else f"{self.kind} {self.id}"


def _names_principal(value: str, kind: str, who: Principal) -> bool:
    value = str(value)
    if value == "*":
        # "Principal": "*" and {"AWS": "*"} both mean everyone, anonymous callers and services included.
        return kind == "AWS" or who.kind == kind
    if who.kind != kind:
        return False
    if kind == "Service":
        return value.lower() == who.id.lower()
    if kind != "AWS":
        return value == who.id
    root = ROOT_ARN.match(value)
    account = value if ACCOUNT_ID.match(value) else root and root.group(1)
    if account:  # an account names every principal in it
        return who.account == account
    if value == who.id:
        return True
    session = ASSUMED_ROLE.match(who.id)  # a role names its sessions too
    return bool(session) and re.fullmatch(rf"arn:{session.group(1)}:iam::{session.group(2)}:role/(.+/)?"
                                          rf"{re.escape(session.group(3))}", value) is not None


def principal_match(element, who: Principal) -> bool:
    """Whether a Principal (or NotPrincipal) element names ``who``."""
    if element == "*" or element == ["*"]:
        return True
    if not isinstance(element, dict):
        return False
    return any(_names_principal(v, kind, who) for kind, values in element.items() for v in _list(values))


# -- conditions -----------------------------------------------------------------------

def _list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]


def _text(value) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _date(value) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    number = _number(value)
    if number is not None:
        return datetime.fromtimestamp(number, timezone.utc)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _ip(policy: str, actual: str) -> bool:
    try:
        return ipaddress.ip_address(str(actual)) in ipaddress.ip_network(str(policy), strict=False)
    except ValueError:
        return False


def _compare(kind: str, op: str):
    def num(a, p, test):
        a, p = _number(a), _number(p)
        return a is not None and p is not None and test(a, p)

    def date(a, p, test):
        a, p = _date(a), _date(p)
        return a is not None and p is not None and test(a, p)

    tests = {"Equals": lambda a, p: a == p, "LessThan": lambda a, p: a < p, "LessThanEquals": lambda a, p: a <= p,
             "GreaterThan": lambda a, p: a > p, "GreaterThanEquals": lambda a, p: a >= p}
    if kind == "String":
        return {"Equals": lambda a, p: _text(a) == _text(p),
                "EqualsIgnoreCase": lambda a, p: _text(a).casefold() == _text(p).casefold(),
                "Like": lambda a, p: glob(_text(p), _text(a))}.get(op)
    if kind == "Numeric" and op in tests:
        return lambda a, p: num(a, p, tests[op])
    if kind == "Date" and op in tests:
        return lambda a, p: date(a, p, tests[op])
    if kind == "Bool" and op == "":
        return lambda a, p: _text(a).lower() == _text(p).lower()
    if kind == "Binary" and op == "Equals":
        return lambda a, p: _text(a) == _text(p) or base64.b64encode(_text(a).encode()).decode() == _text(p)
    if kind == "Arn" and op in ("Equals", "Like"):
        return lambda a, p: arn_match(_text(p), _text(a))
    if kind == "IpAddress" and op == "":
        return lambda a, p: _ip(p, a)
    return None


OPERATOR = re.compile(r"^(?:(?P<set>ForAnyValue|ForAllValues):)?(?P<not>Not)?"
                      r"(?P<kind>String|Numeric|Date|Bool|Binary|Arn|IpAddress|Null)(?P<neg>Not)?"
                      r"(?P<op>[A-Za-z]*?)(?P<ifexists>IfExists)?$")


class UnsupportedCondition(ValueError):
    """A condition operator this evaluator does not know; AWS would reject the policy."""


@lru_cache(maxsize=256)
def _operator(operator: str) -> tuple:
    """(set operator, negated, kind, IfExists, value test) for one condition operator, parsed once."""
    parts = OPERATOR.match(operator)
    if parts is None:
        raise UnsupportedCondition(f"unknown condition operator {operator}")
    kind, negated = parts.group("kind"), bool(parts.group("not") or parts.group("neg"))
    test = None if kind == "Null" else _compare(kind, parts.group("op"))
    if kind != "Null" and (test is None or (negated and kind in ("Bool", "Binary"))):
        raise UnsupportedCondition(f"unknown condition operator {operator}")
    return parts.group("set"), negated, kind, bool(parts.group("ifexists")), test


def condition_holds(operator: str, key: str, policy_values, context: dict) -> bool:
    """One operator/key pair of a Condition block against the request context (keys already lowercased)."""
    set_op, negated, kind, if_exists, test = _operator(operator)
    present = key.lower() in context
    wanted = _list(policy_values)
    if kind == "Null":
        return any(_text(v).lower() == ("false" if present else "true") for v in wanted)
    if not present:
        if if_exists or set_op == "ForAllValues":
            return True
        if set_op == "ForAnyValue":
            return False
        return negated  # absent key: positive operators fail, negated ones hold
    actual = _list(context[key.lower()])
    hits = [any(test(value, p) for p in wanted) != negated for value in actual]
    if set_op == "ForAllValues" or (negated and set_op is None):
        return all(hits)  # every value must pass; for a negated operator, no value may match
    return any(hits)


def conditions_hold(block, context: dict) -> bool:
    for operator, pairs in (block or {}).items():
        for key, values in (pairs or {}).items():
            if not condition_holds(operator, key, values, context):
                return False
    return True


# -- statements and decisions ---------------------------------------------------------

@dataclass(frozen=True)
class StatementRef:
    """One statement of one policy, named the way messages name it."""
    label: str
    index: int
    statement: dict = field(compare=False, hash=False, repr=False)

    @property
    def sid(self) -> str | None:
        return self.statement.get("Sid") or None

    @property
    def where(self) -> str:
        sid = f" (statement {self.sid})" if self.sid else ""
        return f"{self.label}{sid}" if self.label else (f"statement {self.sid}" if self.sid else
                                                       f"statement {self.index + 1}")


@dataclass(frozen=True)
class Decision:
    effect: str
    allowed_by: tuple[StatementRef, ...] = ()
    denied_by: tuple[StatementRef, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.effect == ALLOW

    @property
    def denied(self) -> bool:
        return self.effect == DENY


def statements(policies) -> list[StatementRef]:
    """Every statement of ``policies``: one document, a list of documents, or (label, document) pairs."""
    if isinstance(policies, dict):
        policies = [policies]
    found = []
    for item in policies or ():
        label, doc = item if isinstance(item, tuple) else ("", item)
        for i, st in enumerate(_list((doc or {}).get("Statement"))):
            if isinstance(st, dict):
                found.append(StatementRef(label, i, st))
    return found


def context_for(principal: Principal | None, context: dict | None) -> dict:
    """The request context with lowercased keys, plus the keys AWS derives from the principal."""
    out = {str(k).lower(): v for k, v in (context or {}).items() if v is not None}
    if principal is not None and principal.kind == "Service":
        out.setdefault("aws:principalservicename", principal.id)
    if principal is not None and principal.kind == "AWS":
        out.setdefault("aws:principalarn", principal.id)
        if principal.account:
            out.setdefault("aws:principalaccount", principal.account)
    return out


def applies(st: dict, action: str, resource: str | None, principal: Principal | None, context: dict) -> bool:
    """Whether one statement matches the request (its Effect aside)."""
    if "NotAction" in st:
        if any(action_match(a, action) for a in _list(st["NotAction"])):
            return False
    elif not any(action_match(a, action) for a in _list(st.get("Action"))):
        return False
    if resource is not None:
        if "NotResource" in st:
            if any(arn_match(r, resource) for r in _list(st["NotResource"])):
                return False
        elif "Resource" in st and not any(arn_match(r, resource) for r in _list(st["Resource"])):
            return False
    if principal is not None:
        if "NotPrincipal" in st:
            if principal_match(st["NotPrincipal"], principal):
                return False
        elif "Principal" in st and not principal_match(st["Principal"], principal):
            return False
    return conditions_hold(st.get("Condition"), context)


def evaluate(policies, *, action: str, resource: str | None = None, principal: Principal | None = None,
             context: dict | None = None) -> Decision:
    """May ``principal`` do ``action`` on ``resource`` with ``context``, by these policies?

    ``principal`` None evaluates identity policies (no Principal element to match); ``resource``
    None evaluates a trust policy (the role itself is the resource).
    """
    ctx = context_for(principal, context)
    allows, denies = [], []
    for ref in statements(policies):
        effect = ref.statement.get("Effect")
        if effect in ("Allow", "Deny") and applies(ref.statement, action, resource, principal, ctx):
            (allows if effect == "Allow" else denies).append(ref)
    if denies:
        return Decision(DENY, tuple(allows), tuple(denies))
    return Decision(ALLOW if allows else IMPLICIT, tuple(allows), ())


def named_principals(policies) -> list[Principal]:
    """Every principal a policy names (in Principal or NotPrincipal), as callers to ask about."""
    found = []
    for ref in statements(policies):
        for key in ("Principal", "NotPrincipal"):
            element = ref.statement.get(key)
            if element == "*" or not isinstance(element, dict):
                continue
            for kind, values in element.items():
                for value in _list(values):
                    value = str(value)
                    if value == "*":
                        continue
                    if kind == "AWS":
                        found.append(Principal.aws(value))
                    elif kind in ("Service", "Federated", "CanonicalUser"):
                        found.append(Principal(kind, value))
    return list(dict.fromkeys(found))
