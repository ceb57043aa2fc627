"""Behaviour checks say what they send through the learner's API; configuration checks send nothing there.

The rule is static: a check "calls your API" when its function reaches
``checks.api.send`` (the one place that sends a request to the learner's
endpoints), directly or through helpers in its own module or in ``checks.api``.
Every such check declares ``acts=`` in ``@check``, and no other check does.
"""
from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import checks
from checks import api
from checks.core import REGISTRY, check

# checks.api.send sends every request (call and call_patiently go through it); invoke runs the function; probe sends
# one from inside a VPC (lab 06)
SENDERS = {"send", "invoke", "probe"}


def _calls(tree: ast.AST) -> dict[str, set[str]]:
    """{function name: names it calls} for the top-level functions of a module."""
    found = {}
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names = set()
            for sub in ast.walk(node):
                if isinstance(sub, ast.Call):
                    fn = sub.func
                    if isinstance(fn, ast.Name):
                        names.add(fn.id)
                    elif isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name) and fn.value.id == "api":
                        names.add(fn.attr)  # api.call(...); another object's .call (a learner child's) is not the API
            found[node.name] = names
    return found


def _reaching(graph: dict[str, set[str]], targets: set[str]) -> set[str]:
    reach = set(targets)
    while True:
        more = {name for name, called in graph.items() if called & reach} - reach
        if not more:
            return reach
        reach |= more


def _api_callers() -> set[str]:
    """Names of the check functions that send requests to the learner's API."""
    checks.load_all()
    helpers = _reaching(_calls(ast.parse(inspect.getsource(api))), SENDERS)
    assert {"call", "call_patiently"} <= helpers
    callers = set()
    for module in {inspect.getmodule(c.func) for c in REGISTRY.values()}:
        for name in _reaching(_calls(ast.parse(inspect.getsource(module))), helpers):
            callers.add(f"{module.__name__}.{name}")
    return callers


def test_every_check_that_calls_the_learners_api_declares_it_and_no_other_does():
    callers = _api_callers()
    sending = {c.id for c in REGISTRY.values() if f"{c.func.__module__}.{c.func.__name__}" in callers}
    declared = {c.id for c in REGISTRY.values() if c.acts}
    assert sending, "the rule found no behaviour check at all"
    assert sending - declared == set(), "these checks call the learner's API without acts= in @check"
    assert declared - sending == set(), "these checks declare acts= but send nothing to the learner's API"


def test_a_check_that_creates_something_says_it_deletes_it():
    for c in REGISTRY.values():
        if c.acts and "creates" in c.acts:
            assert "deletes" in c.acts, c.id
    with pytest.raises(ValueError, match="deletes"):
        check("L99.01", "t", step=1, points=1, hint="h", docs="index.md", acts="calls your API: creates one order")
    with pytest.raises(ValueError, match="calls your API"):
        check("L99.02", "t", step=1, points=1, hint="h", docs="index.md", acts="sends a GET")
    assert "L99.01" not in REGISTRY and "L99.02" not in REGISTRY


def test_the_catalogue_and_the_list_show_what_each_check_sends():
    from checks.catalogue import READS_ONLY, catalogue_markdown

    checks.load_all()
    catalogue = catalogue_markdown()
    for c in REGISTRY.values():
        row = next(line for line in catalogue.splitlines() if f" | `{c.id}` | " in line)
        assert (c.acts or READS_ONLY) in row.replace("\\|", "|")
    run = subprocess.run([sys.executable, "-m", "checks", "02", "03", "--list"], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert run.returncode == 0
    lines = {line.split()[0]: line for line in run.stdout.splitlines() if line.strip()}
    for c in REGISTRY.values():
        if c.lab in ("02", "03"):
            assert (f"[{c.acts}]" in lines[c.id]) == bool(c.acts), lines[c.id]
