"""Every registered check has at least one passing and one failing fixture."""
from __future__ import annotations

import pytest

import checks

from . import test_lab00, test_lab01, test_lab02, test_lab03, test_lab04

MODULES = {"00": test_lab00, "01": test_lab01, "02": test_lab02, "03": test_lab03, "04": test_lab04}


def registered(lab: str) -> set[str]:
    checks.load_all()
    return {i for i, c in checks.REGISTRY.items() if c.lab == lab}


def test_every_lab_has_a_test_module():
    checks.load_all()
    assert {c.lab for c in checks.REGISTRY.values()} == set(MODULES)


@pytest.mark.parametrize("lab", sorted(MODULES))
@pytest.mark.parametrize("table", ["PASSING", "FAILING"])
def test_every_check_has_a_case(lab, table):
    ids = getattr(MODULES[lab], table)
    assert ids <= registered(lab), f"lab {lab} {table} names unknown checks: {sorted(ids - registered(lab))}"
    missing = sorted(registered(lab) - ids)
    assert not missing, f"lab {lab}: no {table.lower()} test for {', '.join(missing)}"


@pytest.mark.parametrize("lab", sorted(MODULES))
def test_case_names_are_unique(lab):
    names = [(c.check, c.name) for c in MODULES[lab].CASES]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
