"""MkDocs hooks: pages generated from the code, so they cannot drift from it.

- reference/checks.md and reference/offline-fidelity.md come from the check
  registry (every check's docs anchor is linked there, so a strict build
  fails when an anchor is missing);
- notebooks/NN-slug.md render the starter notebooks;
- assets/vendor/mermaid.min.js is served from build/ when `make docs` fetched it.
"""
from __future__ import annotations

import logging
from pathlib import Path

from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.course")
ROOT = Path(__file__).resolve().parent
MERMAID = ROOT / "build" / "vendor" / "mermaid.min.js"


def on_files(files, config):
    from checks.catalogue import catalogue_markdown, fidelity_markdown
    from labkit.authoring.notebooks import labs, notebook_markdown

    files.append(File.generated(config, "reference/checks.md", content=catalogue_markdown()))
    files.append(File.generated(config, "reference/offline-fidelity.md", content=fidelity_markdown()))
    for lab in labs():
        files.append(File.generated(config, f"notebooks/{lab.name}.md", content=notebook_markdown(lab)))
    if MERMAID.exists():
        files.append(File.generated(config, "assets/vendor/mermaid.min.js", abs_src_path=str(MERMAID)))
    else:
        log.info("mermaid.min.js not vendored (run `make docs`); diagrams show as text offline")
    return files
