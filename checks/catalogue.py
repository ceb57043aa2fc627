"""The check catalogue and the offline-fidelity table, generated from the registry."""
from __future__ import annotations

from . import load_all
from labkit.localaws.fidelity import stricter_than_moto

from .core import LOCAL_FULL, LOCAL_PARTIAL, REGISTRY

READS_ONLY = "only reads"
FIDELITY = {LOCAL_FULL: "graded offline", LOCAL_PARTIAL: "partly: SKIP where moto cannot show it"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _link(ref: str) -> str:
    return f"../{ref}"


def in_course_order(chosen) -> list:
    """Checks as a learner meets them: by lab, then by the step that grades them."""
    return sorted(chosen, key=lambda c: (c.lab, c.step, c.id))


def sends(chk) -> str:
    """What a check sends: only reads, or (a behaviour check) what it calls through your API."""
    return chk.acts or READS_ONLY


def catalogue_markdown() -> str:
    load_all()
    out = ["# Check catalogue", "",
           "Every check the grader runs, generated from the checks' own declarations. "
           "Each is listed under its lab in the order of the steps that grade it. "
           "Run one with `python -m checks L01.02`, a lab with `python -m checks 01`, "
           "a lab's step with `python -m checks 01.3`, "
           "or from a notebook with `checks.run(\"L01.02\")`.", "",
           "Configuration checks only read; behaviour checks call your API as a client would and remove what "
           "they create. The *sends* column says which is which (see "
           "[what grading may do](../getting-started.md#what-grading-may-do)).", ""]
    from labkit.authoring.notebooks import labs as lab_sources

    titles = {src.number: src.title for src in lab_sources()}
    labs = sorted({c.lab for c in REGISTRY.values()})
    for lab in labs:
        rows = [c for c in REGISTRY.values() if c.lab == lab]
        total = sum(c.points for c in rows)
        out += [f"## Lab {lab}: {titles.get(lab, '')}".rstrip(": "), "",
                f"{len(rows)} checks, {total} points.", "",
                "| step | id | expected state | points | local AWS | sends | learn |", "|---|---|---|---|---|---|---|"]
        for c in in_course_order(rows):
            out.append(f"| {c.step} | `{c.id}` | {_cell(c.title)} | {c.points} | {FIDELITY[c.local]} | {_cell(sends(c))} "
                       f"| [concept]({_link(c.docs)}) |")
        out += ["", "??? tip \"Hints\"", ""]
        for c in in_course_order(rows):
            out.append(f"    - **{c.id}**: {_cell(c.hint)}")
        out.append("")
    return "\n".join(out) + "\n"


def fidelity_markdown() -> str:
    load_all()
    out = ["# Offline fidelity", "",
           "The local AWS (moto) stores most configuration faithfully but cannot show every fact. "
           "These checks say SKIP on the local AWS (\"verified on a live account\") instead of FAIL; "
           "`python -m checks --live` grades them for real. Every other check grades the same way "
           "on the local AWS and on a live account.", "",
           "| id | check | offline | why |", "|---|---|---|---|"]
    for c in sorted(REGISTRY.values(), key=lambda c: c.id):
        if c.local != LOCAL_FULL:
            out.append(f"| `{c.id}` | {_cell(c.title)} | {FIDELITY[c.local]} | {_cell(c.local_note)} |")
    full = sum(1 for c in REGISTRY.values() if c.local == LOCAL_FULL)
    out += ["", f"{full} of {len(REGISTRY)} checks grade fully offline.", ""]
    out += ["## Where the local AWS is stricter than moto", "",
            "moto accepts some things AWS refuses. Where a lab can see the difference, the local AWS "
            "answers as AWS does, so a mistake shows up offline and not on your first live run:", ""]
    out += [f"- {_cell(text)}" for _, text in stricter_than_moto()]
    return "\n".join(out) + "\n"
