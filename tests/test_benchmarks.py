"""The benchmarks the README quotes stay runnable: each one compiles and says what it measures."""
from __future__ import annotations

import ast
import py_compile
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parent.parent / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.name)
def test_a_benchmark_compiles_and_has_a_docstring(path):
    py_compile.compile(str(path), doraise=True)
    assert ast.get_docstring(ast.parse(path.read_text())), f"{path.name} says nothing about what it measures"
