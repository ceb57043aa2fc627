"""Paired check fixtures: one table row per (check, state, expected outcome).

Each lab's test module lists ``Case`` rows and runs them all through one
test; ``covered`` turns a table into the check ids it shows passing or
failing, which ``test_check_coverage`` compares with the registry.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import pytest

import checks
from checks.core import Status

from .conftest import grade


@dataclass(frozen=True, eq=False)
class Case:
    check: str
    name: str
    status: Status
    says: tuple[str, ...] = ()  # fragments the message must contain, formatted with the built state
    build: dict = field(default_factory=dict)  # keyword arguments for the lab's builder
    mutate: Callable | None = None  # (target, state): writes after building
    prepare: Callable | None = None  # (grading view, state, monkeypatch): stubs on the read-only view
    live: bool = False  # grade as on a live account (facts the local AWS cannot show; answers stubbed)
    bug: str | None = None  # a known bug in the check: the row is xfail(strict=True)


def params(cases: list[Case]) -> list:
    return [pytest.param(c, id=f"{c.check}-{c.name}",
                         marks=[pytest.mark.xfail(strict=True, reason=c.bug)] if c.bug else [])
            for c in cases]


def covered(cases: list[Case], status: Status) -> set[str]:
    """Check ids with a non-xfail row expecting ``status``."""
    return {c.check for c in cases if c.status is status and not c.bug}


# Writable clients the builders reuse from test to test: moto keeps its state in
# the mock (fresh per test), not in the client, and creating clients is most of
# a test's time. Grading views always get their own clients, as in the grader.
_BUILDER_CLIENTS: dict = {}  # endpoint -> {(service, region): client}


def run_case(case: Case, target, build: Callable, monkeypatch):
    """Build the state, grade it on a read-only view, and check status and message."""
    reusable = _BUILDER_CLIENTS.setdefault(target.endpoint, {})  # in-process moto and the local server apart
    for key, client in reusable.items():
        target._clients.setdefault(key, client)
    state = build(target, **case.build)
    reusable.update(target._clients)
    if case.mutate:
        case.mutate(target, state)
    view = target.for_grading()  # read-only; run_check grades it as it is, stubs included
    if case.prepare:
        case.prepare(view, state, monkeypatch)
    if case.live:
        view.mode = "live"  # same in-process session; only the grader's view of where it is changes
    result = grade(view, case.check)
    assert result.status is case.status, f"{case.check} gave {result.status.value}: {result.message}"
    for fragment in case.says:
        assert fragment.format(**state) in result.message, f"{fragment.format(**state)!r} not in {result.message!r}"
    return result


def assert_whole_lab(target, lab: str, build: Callable, skipped: set[str]) -> None:
    """The solution state: every check of ``lab`` PASSes but the ``skipped`` ones moto cannot show."""
    build(target)
    report = checks.grade(checks.select(lab), target)
    got = {r.check.id: r.status for r in report.results}
    assert got == {i: (Status.SKIP if i in skipped else Status.PASS) for i in got}, report
    assert report.exit_code == 0
