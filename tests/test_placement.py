"""The EC2 placement scheduler: each row is one situation and what ECS would do in it."""
from __future__ import annotations

import random

import pytest

from labkit.localaws.placement import (
    DISTINCT_INSTANCE, MEMBER_OF, NO_INSTANCES, RESOURCE_CPU, RESOURCE_MEMORY, ContainerInstance, PlacementError,
    TaskNeeds, matches, place, place_tasks,
)

ORDERS = "service:ada-orders"


def ci(id_, zone, kind, cpu, memory, *tasks, **attributes):
    return ContainerInstance(id_, f"us-east-1{zone}", kind, attributes, cpu, memory, tuple(tasks))


# Four instances in three zones; two already run tasks of the orders service.
FLEET = [
    ci("a1", "a", "t3.micro", 2048, 1024),
    ci("a2", "a", "t3.large", 2048, 4096, ORDERS),
    ci("b1", "b", "t3.micro", 2048, 2048),
    ci("c1", "c", "m5.large", 512, 8192, ORDERS, ORDERS, stack="prod"),
]
SPREAD_AZ = {"type": "spread", "field": "attribute:ecs.availability-zone"}
SPREAD_ID = {"type": "spread", "field": "instanceId"}
BINPACK_MEM = {"type": "binpack", "field": "memory"}
BINPACK_CPU = {"type": "binpack", "field": "cpu"}


def member(expression):
    return {"type": "memberOf", "expression": expression}


DISTINCT = {"type": "distinctInstance"}
SMALL = TaskNeeds(cpu=256, memory=512, group=ORDERS)

CASES = [
    # id, instances, needs, constraints, strategy, the instance chosen or ECS's reason
    ("empty cluster", [], SMALL, [], [], NO_INSTANCES),
    ("no strategy: lowest id that fits", FLEET, SMALL, [], [], "a1"),
    ("binpack memory: least memory left", FLEET, TaskNeeds(256, 512, "family:x"), [], [BINPACK_MEM], "a1"),
    ("binpack memory skips one too small", FLEET, TaskNeeds(256, 1500, "family:x"), [], [BINPACK_MEM], "b1"),
    ("binpack cpu: least cpu left", FLEET, SMALL, [], [BINPACK_CPU], "c1"),
    ("spread zones: the zone with fewest of the group", FLEET, SMALL, [], [SPREAD_AZ], "b1"),
    ("spread instances: fewest of the group, then id", FLEET, SMALL, [], [SPREAD_ID], "a1"),
    ("spread zones then binpack within the zone",
     [ci("a1", "a", "t3.micro", 2048, 4096), ci("a2", "a", "t3.micro", 2048, 1024),
      ci("b1", "b", "t3.micro", 2048, 512, ORDERS)], SMALL, [], [SPREAD_AZ, BINPACK_MEM], "a2"),
    ("binpack first, then spread breaks nothing",
     [ci("a1", "a", "t3.micro", 2048, 4096), ci("a2", "a", "t3.micro", 2048, 1024),
      ci("b1", "b", "t3.micro", 2048, 512, ORDERS)], SMALL, [], [BINPACK_MEM, SPREAD_AZ], "b1"),
    ("memberOf zone in a list", FLEET, SMALL, [member("attribute:ecs.availability-zone in [us-east-1b, us-east-1c]")],
     [], "b1"),
    ("memberOf zone not_in a list", FLEET, SMALL, [member("attribute:ecs.availability-zone not_in [us-east-1a]")],
     [], "b1"),
    ("memberOf instance type ==", FLEET, SMALL, [member("attribute:ecs.instance-type == m5.large")], [], "c1"),
    ("memberOf != and ==", FLEET, SMALL,
     [member("attribute:ecs.instance-type != t3.micro and attribute:ecs.availability-zone == us-east-1a")], [], "a2"),
    ("memberOf or", FLEET, SMALL,
     [member("attribute:ecs.instance-type == m5.large or attribute:ecs.availability-zone == us-east-1b")], [], "b1"),
    ("memberOf parentheses and not", FLEET, SMALL,
     [member("not (attribute:ecs.instance-type =~ t3.* or attribute:ecs.availability-zone == us-east-1b)")], [], "c1"),
    ("memberOf wildcard with binpack", FLEET, SMALL, [member("attribute:ecs.instance-type =~ t3.*")], [BINPACK_MEM],
     "a1"),
    ("memberOf a custom attribute", FLEET, SMALL, [member("attribute:stack == prod")], [], "c1"),
    ("memberOf a custom attribute exists", FLEET, SMALL, [member("attribute:stack exists")], [], "c1"),
    ("two constraints both hold", FLEET, SMALL,
     [member("attribute:ecs.availability-zone == us-east-1a"), DISTINCT], [], "a1"),
    ("memberOf matches nothing", FLEET, SMALL, [member("attribute:ecs.instance-type == c7g.large")], [], MEMBER_OF),
    ("distinctInstance avoids instances running the group", FLEET, SMALL, [DISTINCT], [BINPACK_MEM], "a1"),
    ("distinctInstance everywhere taken",
     [ci("a2", "a", "t3.large", 2048, 4096, ORDERS), ci("c1", "c", "m5.large", 512, 8192, ORDERS)], SMALL, [DISTINCT],
     [], DISTINCT_INSTANCE),
    ("distinctInstance ignores other groups", [ci("a2", "a", "t3.large", 2048, 4096, "service:ada-web")], SMALL,
     [DISTINCT], [], "a2"),
    ("not enough memory anywhere", FLEET, TaskNeeds(256, 10000, ORDERS), [], [], RESOURCE_MEMORY),
    ("not enough cpu anywhere", FLEET, TaskNeeds(4096, 512, ORDERS), [], [], RESOURCE_CPU),
    ("the closest instance's reason: memory fits only where the zone does not", FLEET, TaskNeeds(256, 5000, ORDERS),
     [member("attribute:ecs.availability-zone == us-east-1a")], [], MEMBER_OF),
]


@pytest.mark.parametrize("instances, needs, constraints, strategy, expected", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_one_task_is_placed_as_ecs_places_it(instances, needs, constraints, strategy, expected):
    result = place(instances, needs, constraints, strategy)
    if expected in (NO_INSTANCES, RESOURCE_CPU, RESOURCE_MEMORY, MEMBER_OF, DISTINCT_INSTANCE):
        assert (result.instance, result.reason) == (None, expected)
    else:
        assert (result.instance.id, result.reason) == (expected, None)


def test_random_picks_among_the_instances_that_fit():
    chosen = {place(FLEET, SMALL, [member("attribute:ecs.instance-type =~ t3.*")], [{"type": "random"}],
                    random.Random(seed)).instance.id for seed in range(20)}
    assert chosen == {"a1", "a2", "b1"}


def test_tasks_spread_over_zones_one_after_another():
    fleet = [ci("a1", "a", "t3.micro", 1024, 2048), ci("a2", "a", "t3.micro", 1024, 2048),
             ci("b1", "b", "t3.micro", 1024, 2048), ci("c1", "c", "t3.micro", 1024, 2048)]
    placements, after = place_tasks(fleet, SMALL, 4, strategy=[SPREAD_AZ, SPREAD_ID])
    assert [p.instance.id for p in placements] == ["a1", "b1", "c1", "a2"]
    assert [(i.id, i.cpu, i.memory, i.tasks) for i in after][0] == ("a1", 768, 1536, (ORDERS,))


def test_binpack_fills_one_instance_before_the_next_and_then_runs_out():
    fleet = [ci("a1", "a", "t3.micro", 2048, 1024), ci("b1", "b", "t3.micro", 2048, 2048)]
    placements, _ = place_tasks(fleet, TaskNeeds(256, 1024, "family:batch"), 4, strategy=[BINPACK_MEM])
    assert [p.instance.id if p.instance else p.reason for p in placements] == ["a1", "b1", "b1", RESOURCE_MEMORY]


def test_distinct_instance_leaves_the_third_task_unplaced():
    fleet = [ci("a1", "a", "t3.micro", 2048, 4096), ci("b1", "b", "t3.micro", 2048, 4096)]
    placements, _ = place_tasks(fleet, SMALL, 3, constraints=[DISTINCT])
    assert [p.instance.id if p.instance else p.reason for p in placements] == ["a1", "b1", DISTINCT_INSTANCE]


@pytest.mark.parametrize("constraints, strategy", [
    ([member("attribute:ecs.instance-type === t3.micro")], []),
    ([member("ecs.instance-type == t3.micro")], []),
    ([member("attribute:ecs.availability-zone in [us-east-1a")], []),
    ([member("")], []),
    ([{"type": "sameInstance"}], []),
    ([], [{"type": "binpack", "field": "disk"}]),
    ([], [{"type": "spread"}]),
    ([], [{"type": "fill"}]),
], ids=["bad-operator", "no-attribute-prefix", "unclosed-list", "empty", "unknown-constraint", "binpack-disk",
        "spread-no-field", "unknown-strategy"])
def test_rules_ecs_would_refuse_are_a_placement_error(constraints, strategy):
    with pytest.raises(PlacementError):
        place(FLEET, SMALL, constraints, strategy)


def test_matches_reads_the_built_in_and_custom_attributes():
    c1 = FLEET[3]
    assert matches("attribute:ecs.availability-zone == us-east-1c and attribute:stack == prod", c1)
    assert not matches("attribute:stack != prod", c1)
