"""Every registered check has at least one passing and one failing fixture."""
from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import checks

# tests/test_labNN.py for every lab, found by name: a new lab's tests join without an edit here.
MODULES = {m.name[-2:]: importlib.import_module(f"tests.{m.name}")
           for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if re.fullmatch(r"test_lab\d\d", m.name)}


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
