"""Where ECS would put a task of the EC2 launch type: a pure scheduler, no AWS calls.

ECS places a task in four steps (Amazon ECS Developer Guide, "How Amazon ECS places tasks"):
keep the container instances with enough CPU, memory and free host ports, keep those that satisfy the placement
constraints, order them by each placement strategy in turn, and take the first. When none is
left, ``run_task`` reports a failure reason for the closest instance; those reasons are ECS's own.

Constraints are ``distinctInstance`` and ``memberOf`` with the part of the cluster query language
the course uses: ``attribute:NAME`` (``ecs.availability-zone``, ``ecs.instance-type`` or any custom
attribute) compared with ``==``, ``!=``, ``=~`` (``*`` wildcards), ``in [...]``, ``not_in [...]``,
``exists``, combined with ``and``, ``or``, ``not`` and parentheses. Ties left after every strategy
go to the lowest instance id, so the same state always places the same way.
"""
from __future__ import annotations

import fnmatch
import random as _random
import re
from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping, Sequence

# run_task's failure reasons and the refusal when a cluster has no instance at all.
NO_INSTANCES = "No Container Instances were found in your cluster."
RESOURCE_CPU = "RESOURCE:CPU"
RESOURCE_MEMORY = "RESOURCE:MEMORY"
RESOURCE_PORTS = "RESOURCE:PORTS"
MEMBER_OF = "MemberOf placement constraint unsatisfied."
DISTINCT_INSTANCE = "DistinctInstance placement constraint unsatisfied."


class PlacementError(ValueError):
    """A constraint or strategy ECS would refuse (one sentence, for the learner)."""


@dataclass(frozen=True)
class ContainerInstance:
    id: str
    availability_zone: str
    instance_type: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)  # custom attributes, name -> value
    cpu: int = 0  # CPU units still free
    memory: int = 0  # MiB still free
    tasks: tuple[str, ...] = ()  # the group of each task running there ("service:ada-orders", "family:ada-batch")
    ports: frozenset[int] = frozenset()  # static host ports its tasks hold

    def attribute(self, name: str) -> str | None:
        built_in = {"ecs.availability-zone": self.availability_zone, "ecs.instance-type": self.instance_type}
        if name in built_in and built_in[name]:
            return built_in[name]
        return self.attributes.get(name)


@dataclass(frozen=True)
class TaskNeeds:
    cpu: int = 0
    memory: int = 0
    group: str = ""  # the task's group: a service's tasks are "service:NAME", run_task's "family:NAME" by default
    ports: frozenset[int] = frozenset()  # static host ports it needs (bridge hostPort, host mode containerPort)


@dataclass(frozen=True)
class Placement:
    instance: ContainerInstance | None
    reason: str | None = None  # why no instance fits, in ECS's words
    nearest: ContainerInstance | None = None  # the instance that came closest (a failure's arn)


# -- the cluster query language subset ---------------------------------------------

_TOKEN = re.compile(r"\s*(\(|\)|\[|\]|,|==|!=|=~|[^\s()\[\],]+)")


def _tokens(expression: str) -> list[str]:
    out, pos = [], 0
    text = expression.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise PlacementError(f"The placement constraint expression '{expression}' is not valid.")
        out.append(match.group(1))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, expression: str):
        self.expression, self.tokens, self.pos = expression, _tokens(expression), 0

    def fail(self):
        raise PlacementError(f"The placement constraint expression '{self.expression}' is not valid.")

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token.lower() != expected):
            self.fail()
        self.pos += 1
        return token

    def parse(self):
        tree = self.disjunction()
        if self.peek() is not None:
            self.fail()
        return tree

    def disjunction(self):
        terms = [self.conjunction()]
        while (self.peek() or "").lower() == "or":
            self.take()
            terms.append(self.conjunction())
        return ("or", terms) if len(terms) > 1 else terms[0]

    def conjunction(self):
        terms = [self.unary()]
        while (self.peek() or "").lower() == "and":
            self.take()
            terms.append(self.unary())
        return ("and", terms) if len(terms) > 1 else terms[0]

    def unary(self):
        if (self.peek() or "").lower() == "not":
            self.take()
            return ("not", self.unary())
        if self.peek() == "(":
            self.take()
            tree = self.disjunction()
            self.take(")")
            return tree
        return self.comparison()

    def comparison(self):
        subject = self.take()
        if not subject.startswith("attribute:") or len(subject) == len("attribute:"):
            self.fail()
        name = subject[len("attribute:"):]
        op = self.take().lower()
        if op == "exists":
            return ("exists", name)
        if op in ("in", "not_in"):
            self.take("[")
            values = [self.take()]
            while self.peek() == ",":
                self.take()
                values.append(self.take())
            self.take("]")
            return (op, name, values)
        if op in ("==", "!=", "=~"):
            return (op, name, self.take())
        self.fail()


def _holds(tree, instance: ContainerInstance) -> bool:
    kind = tree[0]
    if kind == "or":
        return any(_holds(t, instance) for t in tree[1])
    if kind == "and":
        return all(_holds(t, instance) for t in tree[1])
    if kind == "not":
        return not _holds(tree[1], instance)
    value = instance.attribute(tree[1])
    if kind == "exists":
        return value is not None
    if kind == "in":
        return value in tree[2]
    if kind == "not_in":
        return value not in tree[2]
    if kind == "==":
        return value == tree[2]
    if kind == "!=":
        return value != tree[2]
    return value is not None and fnmatch.fnmatchcase(value, tree[2])  # =~


def matches(expression: str, instance: ContainerInstance) -> bool:
    """Whether a memberOf expression holds for the instance (PlacementError if it is not valid)."""
    return _holds(_Parser(expression).parse(), instance)


# -- placing ------------------------------------------------------------------------

def _check_rules(constraints: Sequence[Mapping], strategy: Sequence[Mapping]) -> list:
    parsed = []
    for c in constraints:
        kind = c.get("type")
        if kind == "distinctInstance":
            parsed.append(("distinctInstance", None))
        elif kind == "memberOf":
            if not c.get("expression"):
                raise PlacementError("A memberOf placement constraint needs an expression.")
            parsed.append(("memberOf", _Parser(c["expression"]).parse()))
        else:
            raise PlacementError(f"The placement constraint type '{kind}' is not valid: "
                                 "use distinctInstance or memberOf.")
    for s in strategy:
        kind, field_ = s.get("type"), s.get("field")
        if kind not in ("spread", "binpack", "random"):
            raise PlacementError(f"The placement strategy type '{kind}' is not valid: use spread, binpack or random.")
        if kind == "binpack" and (field_ or "").lower() not in ("cpu", "memory"):
            raise PlacementError(f"A binpack placement strategy packs on cpu or memory, not '{field_}'.")
        if kind == "spread" and not field_:
            raise PlacementError("A spread placement strategy needs a field (instanceId or attribute:NAME).")
    return parsed


def _failure(instance: ContainerInstance, needs: TaskNeeds, rules: list) -> tuple[int, str | None]:
    """How far the instance gets through ECS's filters (higher is closer), and the reason it stops."""
    if instance.cpu < needs.cpu:
        return 0, RESOURCE_CPU
    if instance.memory < needs.memory:
        return 1, RESOURCE_MEMORY
    if needs.ports & instance.ports:
        return 2, RESOURCE_PORTS
    for kind, tree in rules:
        if kind == "memberOf" and not _holds(tree, instance):
            return 3, MEMBER_OF
    for kind, _ in rules:
        if kind == "distinctInstance" and needs.group and needs.group in instance.tasks:
            return 4, DISTINCT_INSTANCE
    return 5, None


def _spread_key(field_: str, instance: ContainerInstance) -> str | None:
    if field_.lower() in ("instanceid", "host"):
        return instance.id
    return instance.attribute(field_[len("attribute:"):] if field_.startswith("attribute:") else field_)


def _narrow(candidates: list, everyone: Sequence[ContainerInstance], needs: TaskNeeds, step: Mapping,
            rng: _random.Random) -> list:
    kind, field_ = step.get("type"), step.get("field") or ""
    if kind == "random":
        return [rng.choice(candidates)]
    if kind == "binpack":
        left = {c.id: (c.cpu if field_.lower() == "cpu" else c.memory) for c in candidates}
        least = min(left.values())
        return [c for c in candidates if left[c.id] == least]
    # spread: the value holding fewest tasks of this group, counted over every instance that has it
    counts: dict = {}
    for inst in everyone:
        key = _spread_key(field_, inst)
        counts[key] = counts.get(key, 0) + sum(1 for g in inst.tasks if g == needs.group)
    fewest = min(counts.get(_spread_key(field_, c), 0) for c in candidates)
    return [c for c in candidates if counts.get(_spread_key(field_, c), 0) == fewest]


def place(instances: Iterable[ContainerInstance], needs: TaskNeeds, constraints: Sequence[Mapping] = (),
          strategy: Sequence[Mapping] = (), rng: _random.Random | None = None) -> Placement:
    """The instance ECS would choose for one task, or no instance and ECS's reason why."""
    everyone = sorted(instances, key=lambda i: i.id)
    rules = _check_rules(constraints, strategy)
    if not everyone:
        return Placement(None, NO_INSTANCES)
    judged = [(inst, *_failure(inst, needs, rules)) for inst in everyone]
    candidates = [inst for inst, _, reason in judged if reason is None]
    if not candidates:
        closest = max(judged, key=lambda j: j[1])  # the first of the closest, by id
        return Placement(None, closest[2], closest[0])
    rng = rng or _random.Random(0)
    for step in strategy:
        candidates = _narrow(candidates, everyone, needs, step, rng)
    return Placement(candidates[0])


def place_tasks(instances: Iterable[ContainerInstance], needs: TaskNeeds, count: int,
                constraints: Sequence[Mapping] = (), strategy: Sequence[Mapping] = (),
                rng: _random.Random | None = None) -> tuple[list[Placement], list[ContainerInstance]]:
    """Place ``count`` tasks one after another, each seeing the ones before it; returns the
    placements and the instances as they are afterwards (resources taken, tasks added)."""
    current = sorted(instances, key=lambda i: i.id)
    rng = rng or _random.Random(0)
    placements = []
    for _ in range(count):
        result = place(current, needs, constraints, strategy, rng)
        placements.append(result)
        if result.instance is not None:
            chosen = result.instance
            updated = replace(chosen, cpu=chosen.cpu - needs.cpu, memory=chosen.memory - needs.memory,
                              tasks=chosen.tasks + (needs.group,), ports=chosen.ports | needs.ports)
            current = [updated if i.id == chosen.id else i for i in current]
    return placements, current
