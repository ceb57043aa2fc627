"""The learner's toolkit: the local AWS, the target, names and tags.

In a notebook::

    import labkit
    t = labkit.target()          # the local AWS, or a live account if you opted in
    s3 = t.client("s3")
    t.name("site")               # "<prefix>-site"
    t.tags("01")                 # the course tags for lab 01
"""
from __future__ import annotations

from .errors import LabkitError
from .config import COURSE_ID, Settings, load_settings, save_settings
from .target import Target

__all__ = ["COURSE_ID", "LabkitError", "Target", "configure", "target", "settings"]


def settings() -> Settings:
    return load_settings()


def configure(prefix: str | None = None, region: str | None = None, target: str | None = None) -> Settings:
    """Save your prefix, region and target (local or live) for notebooks and the grader."""
    from .config import PREFIX_RULE_TEXT, valid_prefix, valid_region

    try:
        current = load_settings()
    except LabkitError:
        if prefix is None and region is None and target is None:
            raise
        current = Settings(prefix="", region="us-east-1")  # saved settings are broken: configure replaces them
    chosen = Settings(prefix=prefix or current.prefix, region=region or current.region, target=target or current.target)
    if chosen.target not in ("local", "live"):
        raise LabkitError(f"Target {chosen.target!r} is not one of 'local' or 'live'.")
    if not valid_region(chosen.region):
        raise LabkitError(f"Region {chosen.region!r} is not an AWS region; use one like us-east-1 or eu-west-1.")
    if not valid_prefix(chosen.prefix):
        raise LabkitError(f"Prefix {chosen.prefix!r} is not valid: use {PREFIX_RULE_TEXT}.")
    save_settings(chosen)
    return chosen


def target(live: bool | None = None) -> Target:
    """The target your settings choose: the local AWS unless you opted into live mode."""
    return Target.from_settings(live=live)
