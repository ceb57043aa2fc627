"""Stand-in until the ECR lifecycle evaluator is merged: which images a lifecycle policy expires.

Rules apply in ascending rulePriority; an image matched by a higher rule is never expired by a lower
one; ``imageCountMoreThan`` keeps the newest N matches, ``sinceImagePushed`` expires matches older than
N days. ``images`` are describe_images image details.
"""
from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone


@dataclass(frozen=True)
class Expiry:
    digest: str
    tags: tuple[str, ...]
    pushed_at: datetime
    rule_priority: int


def _selects(selection, tags) -> bool:
    status = selection.get("tagStatus")
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
    rules = (json.loads(policy) if isinstance(policy, (str, bytes)) else policy or {}).get("rules") or []
    now = now or datetime.now(timezone.utc)
    known = sorted(({"digest": i["imageDigest"], "tags": tuple(i.get("imageTags") or ()), "at": i["imagePushedAt"]}
                    for i in images), key=lambda i: (i["at"], i["digest"]))
    claimed: set[str] = set()
    out: dict[str, Expiry] = {}
    for rule in sorted(rules, key=lambda r: r["rulePriority"]):
        selection = rule["selection"]
        matched = [i for i in known if _selects(selection, i["tags"])]
        if selection["countType"] == "imageCountMoreThan":
            candidates = sorted(matched, key=lambda i: (i["at"], i["digest"]), reverse=True)[selection["countNumber"]:]
        else:
            candidates = [i for i in matched if i["at"] < now - timedelta(days=selection["countNumber"])]
        for image in candidates:
            if image["digest"] not in claimed:
                out[image["digest"]] = Expiry(image["digest"], image["tags"], image["at"], rule["rulePriority"])
        claimed.update(i["digest"] for i in matched)
    return sorted(out.values(), key=lambda e: (e.pushed_at, e.digest))
