"""The Lambda runner's sandboxes: how many may run at once, how many stay warm, and for how long.

Lambda's rules, sized for a laptop:

- **Concurrency** is the number of invocations in flight; each one holds a
  sandbox. A function's reserved concurrency (``PutFunctionConcurrency``) caps
  that function; the account's limit caps all of them. Over either, Invoke is
  refused at once with 429 ``TooManyRequestsException`` and its ``Reason``,
  as on AWS: nothing queues.
- AWS's account limit is 1,000. Locally every sandbox is a Python process of
  about 50 MB and the machine has a few cores, so the local limit is
  ``2 x CPUs`` (at least 4, at most 32), and no more than a quarter of the
  machine's memory allows at 256 MB a sandbox. ``LABKIT_LAMBDA_CONCURRENCY``
  overrides it. A reservation caps its function (Reason
  ``ReservedFunctionConcurrentInvocationLimitExceeded``; 0 stops it), and every
  function shares the local limit (``ConcurrentInvocationLimitExceeded``): unlike
  AWS, a reservation is not set aside from the others, since on a limit this small
  one reservation could starve every other function.
- Sandboxes alive (busy or warm) never outnumber the limit: a new one evicts
  the longest-idle warm sandbox of any function, so memory stays bounded.
- **Init** is Lambda's 10 s phase. Starting dozens of interpreters at once on
  two cores would make every one of them miss it, so at most ``CPUs`` inits
  run at once and the others wait their turn; the 10 s count from each
  sandbox's own start.
- **Warm sandboxes** are kept for the next request, at most
  ``LABKIT_LAMBDA_WARM_PER_FUNCTION`` per function (default: the limit), and
  retired after ``LABKIT_LAMBDA_IDLE_S`` seconds unused (default 90; Lambda
  keeps them for minutes, but a laptop wants its memory back).
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Callable

MB = 1024 * 1024
SANDBOX_BUDGET_MB = 256  # what one sandbox may take of the machine, for sizing the limit
DEFAULT_IDLE_S = 90.0
THROTTLE_MESSAGE = "Rate Exceeded."  # Lambda's message for both reasons
RESERVED = "ReservedFunctionConcurrentInvocationLimitExceeded"
ACCOUNT = "ConcurrentInvocationLimitExceeded"


def _memory_mb() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // MB
    except (ValueError, OSError, AttributeError):
        return None


def _env_number(name: str, kind=int):
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = kind(raw)
    except ValueError:
        return None
    return value if value > 0 else None


@dataclass(frozen=True)
class Limits:
    concurrency: int
    warm_per_function: int
    idle_s: float
    parallel_inits: int

    @classmethod
    def for_this_machine(cls, concurrency: int | None = None, warm_per_function: int | None = None,
                         idle_s: float | None = None, parallel_inits: int | None = None) -> "Limits":
        """Arguments first, then ``LABKIT_LAMBDA_*`` variables, then what this machine can take."""
        cpus = os.cpu_count() or 2
        default = min(max(4, 2 * cpus), 32)
        memory = _memory_mb()
        if memory:
            default = max(2, min(default, memory // 4 // SANDBOX_BUDGET_MB))
        limit = concurrency or _env_number("LABKIT_LAMBDA_CONCURRENCY") or default
        warm = warm_per_function or _env_number("LABKIT_LAMBDA_WARM_PER_FUNCTION") or limit
        idle = idle_s or _env_number("LABKIT_LAMBDA_IDLE_S", float) or DEFAULT_IDLE_S
        inits = parallel_inits or _env_number("LABKIT_LAMBDA_PARALLEL_INITS") or max(1, cpus)
        return cls(limit, min(warm, limit), idle, min(inits, limit))


class Throttled(Exception):
    """Over a concurrency limit: Lambda's 429, with its Reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Pool:
    """Concurrency slots, warm sandboxes and their retirement, for sandboxes made by ``start(spec)``.

    A sandbox (``Worker``) needs ``spec``, ``proc`` (a Popen), ``kill()``; the pool stamps
    ``last_used`` and ``generation`` on it.
    """

    def __init__(self, limits: Limits, start: Callable):
        self.limits = limits
        self.start = start
        self.lock = threading.Lock()
        self.busy: dict[str, int] = {}  # function ARN -> invocations in flight
        self.in_flight = 0
        self.live = 0  # sandboxes alive or starting, busy or warm
        self.idle: dict[tuple, list] = {}  # FunctionSpec.key() -> warm sandboxes, oldest first
        self.generation = 0  # bumped by clear(): sandboxes busy then are not kept afterwards
        self.peak_in_flight = 0
        self.peak_live = 0
        self.inits = threading.BoundedSemaphore(limits.parallel_inits)
        self._stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="lambda-reaper", daemon=True)
        self._reaper.start()

    # -- a slot and a sandbox -------------------------------------------------
    def acquire(self, spec):
        """A sandbox for one invocation of ``spec`` (warm if there is one); raises Throttled."""
        doomed: list = []
        with self.lock:
            reserved = spec.reserved
            if reserved is not None and self.busy.get(spec.arn, 0) >= min(reserved, self.limits.concurrency):
                raise Throttled(RESERVED)
            if self.in_flight >= self.limits.concurrency:
                raise Throttled(ACCOUNT)
            self.busy[spec.arn] = self.busy.get(spec.arn, 0) + 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            warm = self.idle.get(spec.key(), [])
            while warm:
                worker = warm.pop()  # the most recently used: the likeliest to be hot
                if worker.proc.poll() is None:
                    return worker
                self.live -= 1
            # Configuration changed: this function's older sandboxes are stale.
            for key in [k for k in self.idle if k[0] == spec.arn and k != spec.key()]:
                doomed += self.idle.pop(key)
            self.live -= len(doomed)
            if self.live >= self.limits.concurrency:  # make room: the longest-idle sandbox of any function
                oldest = min((w for ws in self.idle.values() for w in ws), key=lambda w: w.last_used, default=None)
                if oldest is not None:
                    self.idle[oldest.spec.key()].remove(oldest)
                    self.live -= 1
                    doomed.append(oldest)
            self.live += 1
            self.peak_live = max(self.peak_live, self.live)
            generation = self.generation
        for worker in doomed:
            worker.kill()
        try:
            with self.inits:  # init's 10 s start counting once this sandbox actually starts
                worker = self.start(spec)
        except BaseException:
            with self.lock:
                self.live -= 1
                self._free(spec.arn)
            raise
        worker.generation = generation
        return worker

    def release(self, worker, keep: bool) -> None:
        """The invocation ended; keep the sandbox warm if it is healthy and there is room."""
        with self.lock:
            self._free(worker.spec.arn)
            warm = self.idle.setdefault(worker.spec.key(), [])
            if (keep and worker.proc.poll() is None and getattr(worker, "generation", None) == self.generation
                    and len(warm) < self.limits.warm_per_function):
                worker.last_used = time.monotonic()
                warm.append(worker)
                return
            self.live -= 1
        worker.kill()

    def _free(self, arn: str) -> None:
        self.in_flight -= 1
        self.busy[arn] -= 1
        if not self.busy[arn]:
            del self.busy[arn]

    # -- retirement ---------------------------------------------------------------
    def _reap(self) -> None:
        tick = max(0.05, min(self.limits.idle_s / 4, 5.0))
        while not self._stop.wait(tick):
            self.retire_idle()

    def retire_idle(self) -> int:
        """Stop sandboxes unused for ``idle_s``; returns how many."""
        cutoff = time.monotonic() - self.limits.idle_s
        with self.lock:
            doomed = [w for ws in self.idle.values() for w in ws if w.last_used <= cutoff]
            for key in list(self.idle):
                self.idle[key] = [w for w in self.idle[key] if w.last_used > cutoff]
                if not self.idle[key]:
                    del self.idle[key]
            self.live -= len(doomed)
        for worker in doomed:
            worker.kill()
        return len(doomed)

    def clear(self) -> None:
        """Stop every warm sandbox; busy ones stop when their invocation ends."""
        with self.lock:
            doomed = [w for ws in self.idle.values() for w in ws]
            self.idle.clear()
            self.live -= len(doomed)
            self.generation += 1
        for worker in doomed:
            worker.kill()

    def close(self) -> None:
        self._stop.set()
        self.clear()

    def status(self) -> dict:
        with self.lock:
            return {"warm_sandboxes": sum(len(ws) for ws in self.idle.values()), "in_flight": self.in_flight,
                    "sandboxes": self.live, "concurrency_limit": self.limits.concurrency,
                    "peak_in_flight": self.peak_in_flight, "peak_sandboxes": self.peak_live}

    def pids(self) -> list[int]:
        with self.lock:
            return [w.proc.pid for ws in self.idle.values() for w in ws]
