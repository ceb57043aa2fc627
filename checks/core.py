"""The grader's core: how a check is declared, run and reported.

A check is a small function registered with ``@check``; everything a learner
or an instructor sees about it (id, title, points, hint, docs anchor, whether
the local AWS can show it) is declared in that one place.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Iterable

from labkit.target import Target, WriteRefused


class Status(str, Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"  # the check could not run; never the learner's fault
    SKIP = "SKIP"  # the local AWS cannot show this fact


# How much of a check the local AWS can show (the offline-fidelity table).
LOCAL_FULL = "full"  # graded offline exactly as on AWS
LOCAL_PARTIAL = "partial"  # graded offline where moto shows the fact, SKIP where it does not

LIVE_ONLY = "verified on a live account"


@dataclass(frozen=True)
class Outcome:
    """What a check function returns: a status and a message naming the resource."""

    status: Status
    message: str


def passed(message: str) -> Outcome:
    return Outcome(Status.PASS, message)


def failed(message: str) -> Outcome:
    return Outcome(Status.FAIL, message)


def skipped(message: str) -> Outcome:
    """The local AWS cannot show this fact; the message says what a live run checks."""
    if LIVE_ONLY not in message:
        message = f"{message} ({LIVE_ONLY})"
    return Outcome(Status.SKIP, message)


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    points: int
    hint: str
    docs: str  # page.md#anchor under site/
    func: Callable[[Target], Outcome]
    local: str = LOCAL_FULL
    local_note: str = ""  # why the local AWS cannot show it
    step: int = 0  # the lab's step (its "## N." heading) whose check cell runs it; @check demands one
    acts: str = ""  # a behaviour check: what it sends through the learner's API (see ACTS_RULE)

    @property
    def lab(self) -> str:
        return self.id[1:3]

    @property
    def docs_url(self) -> str:
        from . import docs_url

        return docs_url(self.docs)


@dataclass
class Result:
    check: Check
    status: Status
    message: str
    seconds: float = 0.0

    @property
    def earned(self) -> int:
        return self.check.points if self.status is Status.PASS else 0

    @property
    def possible(self) -> int:
        # A fact nobody could verify is neither earned nor lost.
        return 0 if self.status is Status.SKIP else self.check.points


REGISTRY: dict[str, Check] = {}
ID_RULE = re.compile(r"^L\d{2}\.\d{2}$")
# "calls your API: <what it sends>"; a check that creates something says it deletes it again.
ACTS_RULE = re.compile(r"^calls your API: \S.*$")


def check(id: str, title: str, *, points: int, hint: str, docs: str, local: str = LOCAL_FULL, local_note: str = "",
          step: int | None = None, acts: str = ""):
    """Register a check. ``docs`` is ``page.md#anchor`` relative to ``site/``; ``step`` is the lab step that grades
    it; ``acts`` says what a behaviour check sends through the learner's API (configuration checks only read and
    leave it empty)."""
    if not ID_RULE.match(id):
        raise ValueError(f"check id {id!r} must look like L01.02")
    if type(step) is not int or step < 1:  # bool is an int subclass, and no step is 0
        raise ValueError(f"{id}: declare the notebook step that grades it as a positive number (step=3), not {step!r}")
    if local != LOCAL_FULL and not local_note:
        raise ValueError(f"{id}: say why the local AWS cannot show this (local_note)")
    if acts and not (ACTS_RULE.match(acts) and ("creates" not in acts or "deletes" in acts)):
        raise ValueError(f"{id}: acts must read \"calls your API: ...\" and a check that creates something must say "
                         f"it deletes it, not {acts!r}")

    def register(func: Callable[[Target], Outcome]) -> Callable[[Target], Outcome]:
        if id in REGISTRY:
            raise ValueError(f"check id {id} registered twice")
        REGISTRY[id] = Check(id, title, points, hint, docs, func, local, local_note, step=step, acts=acts)
        return func

    return register


# -- running -----------------------------------------------------------------

def run_check(chk: Check, target: Target) -> Result:
    """Run one check on a read-only view of the target; never raises."""
    start = time.perf_counter()
    grading = target if target.read_only else target.for_grading()
    try:
        outcome = chk.func(grading)
        if not isinstance(outcome, Outcome):
            raise TypeError(f"check returned {type(outcome).__name__}, not an Outcome")
        status, message = outcome.status, outcome.message
    except Exception as exc:  # every failure to run becomes ERROR or FAIL with one sentence
        status, message = classify_exception(exc, target)
    return Result(chk, status, message, time.perf_counter() - start)


def classify_exception(exc: Exception, target: Target) -> tuple[Status, str]:
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        ReadTimeoutError,
    )
    from botocore.parsers import ResponseParserError
    from labkit.errors import LabkitError

    if isinstance(exc, WriteRefused):
        return Status.ERROR, f"This check tried a write ({exc.operation}) and the grader refused it: grading is read-only. Please report it."
    if isinstance(exc, LabkitError):
        return Status.ERROR, str(exc)
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError)):
        if target.is_local:
            return Status.ERROR, f"Cannot reach the local AWS at {target.endpoint}; start it with `python -m labkit up`."
        return Status.ERROR, f"Cannot reach AWS ({exc}); check your network."
    if isinstance(exc, ReadTimeoutError):
        return Status.ERROR, "AWS did not answer in time; run the check again."
    if isinstance(exc, NoCredentialsError):
        return Status.ERROR, "No AWS credentials were found; run `aws configure` or set AWS_PROFILE."
    if isinstance(exc, NoRegionError):
        return Status.ERROR, "No AWS region is set; set AWS_REGION or run labkit.configure(region=...)."
    if isinstance(exc, ResponseParserError):
        return Status.ERROR, "The local AWS does not implement a call this check needs, so it could not run."
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        op = exc.operation_name
        http = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        # A HEAD request carries no error code, only its status: a bare 403 is access denied too.
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException",
                    "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException", "AuthFailure", "403", "Forbidden"):
            return Status.ERROR, (f"Access denied for {op}: the grader needs the read-only policy in "
                                  "labkit/policies/grader-readonly.json.")
        if "Throttl" in code or code in ("TooManyRequestsException", "RequestLimitExceeded", "SlowDown"):
            return Status.ERROR, f"AWS throttled {op}; wait a moment and run the check again."
        if http >= 500:
            if target.is_local:
                return Status.ERROR, f"The local AWS answered {op} with an internal error (it may not implement it), so this check could not run."
            return Status.ERROR, f"AWS answered {op} with an internal error ({code}); run the check again."
        if re.search(r"NoSuch|NotFound|NotExist|Nonexistent", code):
            # A missing resource is the learner's to create: a FAIL, not an ERROR.
            return Status.FAIL, f"{op} found nothing: {error.get('Message') or code}."
    return Status.ERROR, f"The check crashed ({type(exc).__name__}: {exc}). Please report it."


def select(spec: str) -> list[Check]:
    """Checks for a lab (``01``), a step (``01.3``), a check (``L01.02``), a range (``L01.02-L01.05``), a
    comma-separated list of those, or ``all``."""
    from . import load_all

    load_all()
    spec = spec.strip()
    ids = sorted(REGISTRY)
    if "," in spec:
        if not all(part.strip() for part in spec.split(",")):
            raise UnknownSelection(f"The list {spec!r} has an empty entry; separate checks with single commas, like L03.05,L03.07.")
        chosen = {c.id: c for part in spec.split(",") for c in select(part)}
        return [chosen[i] for i in ids if i in chosen]
    if spec.lower() == "all":
        return [REGISTRY[i] for i in ids]
    m = re.fullmatch(r"(?ia)(?:lab)?\s*(\d{1,2})\.(\d{1,2})", spec)  # a step: lab 04, step 3
    if m:
        return _step(spec, f"{int(m.group(1)):02d}", int(m.group(2)))
    m = re.fullmatch(r"(?ia)(?:l|lab)?\s*(\d{1,2})", spec)  # ASCII digits: int() refuses some \d
    if m:
        lab = f"{int(m.group(1)):02d}"
        chosen = [REGISTRY[i] for i in ids if REGISTRY[i].lab == lab]
        if chosen:
            return chosen
        raise UnknownSelection(f"There is no lab {spec!r}; choose one of {', '.join(labs())} or all.")
    m = re.fullmatch(r"(?ia)(L\d{2}\.\d{2})\s*-\s*(L\d{2}\.\d{2})", spec)
    if m:
        low, high = m.group(1).upper(), m.group(2).upper()
        if low > high:
            raise UnknownSelection(f"The range {spec!r} is reversed; write the lower check first, like {high}-{low}.")
        chosen = [REGISTRY[i] for i in ids if low <= i <= high]
        if chosen:
            return chosen
    elif spec.upper() in REGISTRY:
        return [REGISTRY[spec.upper()]]
    raise UnknownSelection(f"There is no check or lab {spec!r}; use a lab number ({', '.join(labs())}), a step like 01.3, "
                           "a check id like L01.02, a range like L01.02-L01.05, or all.")


def _step(spec: str, lab: str, step: int) -> list[Check]:
    in_lab = [REGISTRY[i] for i in sorted(REGISTRY) if REGISTRY[i].lab == lab]
    if not in_lab:
        raise UnknownSelection(f"There is no lab {lab!r} in {spec!r}; choose one of {', '.join(labs())}.")
    chosen = [c for c in in_lab if c.step == step]
    if not chosen:
        graded = ", ".join(str(s) for s in sorted({c.step for c in in_lab}))
        raise UnknownSelection(f"Lab {lab} has no checks in step {step}; its graded steps are {graded}.")
    return chosen


def labs() -> list[str]:
    from . import load_all

    load_all()
    return sorted({c.lab for c in REGISTRY.values()})


class UnknownSelection(ValueError):
    pass


@dataclass
class Report:
    """The results of one grading run, with the renderers a learner sees."""

    results: list[Result]
    target: str = ""
    seconds: float = 0.0

    @property
    def earned(self) -> int:
        return sum(r.earned for r in self.results)

    @property
    def possible(self) -> int:
        return sum(r.possible for r in self.results)

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status is status)

    @property
    def exit_code(self) -> int:
        if self.count(Status.FAIL):
            return 1
        if self.count(Status.ERROR):
            return 2
        return 0

    def _repr_html_(self) -> str:
        from .render import html

        return html(self)

    def __str__(self) -> str:
        from .render import text

        return text(self, color=False)


def preflight(target: Target) -> None:
    """Raise LabkitError (one sentence) when grading cannot start at all."""
    from labkit.errors import LabkitError
    from labkit.localaws.control import endpoint_up
    from labkit.reach import silence

    if target.is_live:
        target.session()  # no credentials: one sentence
        try:
            target.account_id  # one call, so no network or refused credentials is one sentence, not a check each
        except Exception as exc:
            from labkit.cli import aws_problem

            sentence = aws_problem(exc)
            if sentence is None:
                raise
            raise LabkitError(sentence) from None
    elif target.endpoint:
        problem = silence(target.endpoint, "The local AWS", path="/_labkit/status")  # one request when all is well
        if problem and not endpoint_up(target.endpoint):
            raise LabkitError(f"The local AWS is not running at {target.endpoint}; start it with `python -m labkit up`.")
        if problem:
            raise LabkitError(problem)


def grade(checks: Iterable[Check], target: Target) -> Report:
    start = time.perf_counter()
    grading = target.for_grading()
    try:
        results = [run_check(c, grading) for c in checks]
    finally:
        grading.close()  # learner code's processes end with the run, and the local AWS's lockdown with them
    return Report(results, target=target.describe(), seconds=time.perf_counter() - start)
