"""The local AWS's clock for waiting periods.

AWS makes a service wait on purpose: a health check every 10 or 30 seconds, a target draining for
its deregistration delay, a grace period before health counts, a scaling policy's minute-long
metric periods and cooldowns. On one laptop those waits teach nothing by lasting, so the local AWS
runs them ``speed()`` times faster (ten by default; ``LABKIT_CLOCK_SPEED=1`` is AWS's own pace).
What is configured and reported stays what the learner set: a 10-second interval reads as 10 in
every describe call and is probed every second.

Grace and start periods shrink too, but never below ten seconds (``start_allowance``): they exist to
cover a task's real start, which no clock speeds up.

Timeouts are not waits and keep their configured length: a container health check that starts
Python may take over a second on a loaded machine, and must not look like a dead task.
"""
from __future__ import annotations

import os

ENV = "LABKIT_CLOCK_SPEED"
DEFAULT_SPEED = 10.0
STARTUP_FLOOR_S = 10.0  # a grace or start period is not shortened below this (see start_allowance)
MAX_SPEED = 100.0  # beyond this a 5-second interval is probed faster than a busy machine answers


def speed() -> float:
    """How many times faster than AWS the waits run (from ``LABKIT_CLOCK_SPEED``; bad values mean the default)."""
    raw = os.environ.get(ENV, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_SPEED
    except ValueError:
        return DEFAULT_SPEED
    if not value > 0:
        return DEFAULT_SPEED
    return min(value, MAX_SPEED)


def wait(aws_seconds: float) -> float:
    """The real seconds a wait of ``aws_seconds`` on AWS lasts here."""
    return max(0.0, float(aws_seconds)) / speed()


def start_allowance(aws_seconds: float) -> float:
    """The real seconds of a grace or start period (``aws_seconds`` on AWS): shorter like any wait, but never
    below ``STARTUP_FLOOR_S`` (or the period itself, if shorter). Such a period covers a task's real start,
    which the clock does not speed up: a loaded machine takes seconds to start Python and bind a port."""
    aws_seconds = max(0.0, float(aws_seconds))
    return max(aws_seconds / speed(), min(aws_seconds, STARTUP_FLOOR_S))


def describe(value: float | None = None) -> str:
    """One phrase for status lines: how the local AWS's waits (``value``, or this process's) relate to AWS's."""
    value = speed() if value is None else float(value)
    if value == 1.0:
        return "waits at AWS's pace"
    return f"waits {value:g}x faster than AWS (health checks, draining, grace periods, scaling periods)"
