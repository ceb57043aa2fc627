"""ECR lifecycle policies: which rules AWS accepts, and which images a policy would expire.

The local AWS never expires an image (moto stores the policy and stops there), so the course
asks this module instead: the same rules ECR applies, from the ECR User Guide ("Lifecycle policy
evaluation rules"). Pure: no AWS calls; images are ``describe_images`` image details.

- Rules are applied in ascending ``rulePriority``; an image is expired by one rule at most.
- An image a rule's tag selection matches cannot be expired by a rule of lower priority, and
  rules still count images a higher rule expires ("as if they haven't been expired").
- ``imageCountMoreThan`` keeps the N most recently pushed matches and expires the rest;
  ``sinceImagePushed`` expires matches pushed more than N days ago. Older images go first.
- ``tagPrefixList`` / ``tagPatternList`` (``*`` wildcards): every entry must match one of the
  image's tags.
"""
from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

# ECR's own framing of a lifecycle policy refusal (InvalidParameterException).
REFUSAL = ("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: "
           "'Lifecycle policy validation failure: {}'")
TAG_STATUSES = ("tagged", "untagged", "any")
COUNT_TYPES = ("imageCountMoreThan", "sinceImagePushed")
MAX_WILDCARDS = 4


def _rules(policy) -> list:
    if isinstance(policy, (str, bytes)):
        policy = json.loads(policy)
    return list((policy or {}).get("rules") or [])


def refusal(policy) -> str | None:
    """The reason ECR would refuse this lifecycle policy (the part after ECR's framing), or None."""
    try:
        rules = _rules(policy)
    except (ValueError, AttributeError):
        return "Could not map policyString into LifecyclePolicy."
    if not rules:
        return "object has missing required properties ([\"rules\"])"
    priorities = []
    for rule in rules:
        priority, selection = rule.get("rulePriority"), rule.get("selection") or {}
        if not isinstance(priority, int) or isinstance(priority, bool) or priority < 1:
            return f"rulePriority must be an integer of at least 1, not {priority!r}."
        if priority in priorities:
            return f"rulePriority {priority} is used by more than one rule; each rule needs its own priority."
        priorities.append(priority)
        status, count_type = selection.get("tagStatus"), selection.get("countType")
        if status not in TAG_STATUSES:
            return f"tagStatus must be one of {', '.join(TAG_STATUSES)}, not {status!r}."
        prefixes, patterns = selection.get("tagPrefixList"), selection.get("tagPatternList")
        if status == "tagged" and not (prefixes or patterns):
            return (f"rule {priority} selects tagged images, so it needs a non-empty tagPrefixList or "
                    "tagPatternList.")
        if status != "tagged" and (prefixes or patterns):
            return f"rule {priority}: tagPrefixList and tagPatternList may only be used when tagStatus is tagged."
        if prefixes and patterns:
            return f"rule {priority} may specify either tagPatternList or tagPrefixList, but not both."
        if any(p.count("*") > MAX_WILDCARDS for p in patterns or []):
            return f"rule {priority}: a tagPatternList entry may hold at most {MAX_WILDCARDS} wildcards."
        if count_type not in COUNT_TYPES:
            return f"countType must be imageCountMoreThan or sinceImagePushed, not {count_type!r}."
        number = selection.get("countNumber")
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            return f"rule {priority}: countNumber must be an integer of at least 1, not {number!r}."
        unit = selection.get("countUnit")
        if count_type == "sinceImagePushed" and unit != "days":
            return f"rule {priority}: sinceImagePushed counts days, so countUnit must be \"days\"."
        if count_type == "imageCountMoreThan" and unit is not None:
            return f"rule {priority}: countUnit is only used when countType is sinceImagePushed."
        if (rule.get("action") or {}).get("type") != "expire":
            return f"rule {priority}: the action type must be expire."
    statuses = {r["rulePriority"]: r["selection"]["tagStatus"] for r in rules}
    if sum(1 for s in statuses.values() if s == "untagged") > 1:
        return "only one rule is allowed to select untagged images."
    for priority, status in statuses.items():
        if status == "any" and priority != max(statuses):
            return f"the rule with tagStatus any (priority {priority}) must have the highest rulePriority."
    return None


def refusal_message(policy) -> str | None:
    """ECR's whole InvalidParameterException message for this policy, or None if ECR accepts it."""
    reason = refusal(policy)
    return REFUSAL.format(reason) if reason else None


@dataclass(frozen=True)
class Expiry:
    digest: str
    tags: tuple[str, ...]
    pushed_at: datetime
    rule_priority: int


def _pushed_at(image) -> datetime:
    value = image.get("imagePushedAt")
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _selects(selection, tags) -> bool:
    status = selection["tagStatus"]
    if status == "any":
        return True
    if status == "untagged":
        return not tags
    if not tags:
        return False
    if selection.get("tagPrefixList"):
        return all(any(t.startswith(p) for t in tags) for p in selection["tagPrefixList"])
    return all(any(fnmatch.fnmatchcase(t, p) for t in tags) for p in selection.get("tagPatternList") or [])


def expired(policy, images, now: datetime | None = None) -> list[Expiry]:
    """The images this lifecycle policy would expire, oldest first, each with the rule that expires it.

    ``images`` are describe_images image details (imageDigest, imageTags, imagePushedAt as a
    datetime, ISO text or epoch seconds). Raises ValueError for a policy ECR would refuse.
    """
    reason = refusal(policy)
    if reason:
        raise ValueError(reason)
    now = now or datetime.now(timezone.utc)
    # Images pushed in the same instant are ordered as given (describe_images lists them as pushed).
    known = sorted(({"digest": i["imageDigest"], "tags": tuple(i.get("imageTags") or ()), "at": _pushed_at(i),
                     "order": n} for n, i in enumerate(images)), key=lambda i: (i["at"], i["order"]))
    claimed: set[str] = set()  # selected by a rule of higher priority: no lower rule may expire them
    out: dict[str, tuple[int, Expiry]] = {}
    for rule in sorted(_rules(policy), key=lambda r: r["rulePriority"]):
        selection = rule["selection"]
        matched = [i for i in known if _selects(selection, i["tags"])]
        if selection["countType"] == "imageCountMoreThan":
            keep = selection["countNumber"]
            newest_first = sorted(matched, key=lambda i: (i["at"], i["order"]), reverse=True)
            candidates = newest_first[keep:]
        else:
            cutoff = now - timedelta(days=selection["countNumber"])
            candidates = [i for i in matched if i["at"] < cutoff]
        for image in candidates:
            if image["digest"] not in claimed:
                out[image["digest"]] = (image["order"], Expiry(image["digest"], image["tags"], image["at"],
                                                               rule["rulePriority"]))
        claimed.update(i["digest"] for i in matched)
    return [e for _, e in sorted(out.values(), key=lambda pair: (pair[1].pushed_at, pair[0]))]
