"""The docs build strictly (every check's docs anchor exists), and the README leads with the two commands."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_docs_build_strict(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "site" / "reference" / "checks" / "index.html").exists()
    assert (tmp_path / "site" / "notebooks" / "01-static-front-end" / "index.html").exists()


def test_readme_opens_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    head = readme[:1500]
    assert "make lab" in head and "make test" in head
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_built_site_is_not_committed():
    ignored = (ROOT / ".gitignore").read_text()
    assert "build/" in ignored and ".venv/" in ignored
