"""How a report is shown: a coloured terminal table, HTML, JSON and JUnit XML."""
from __future__ import annotations

import json
import shutil
import textwrap
from html import escape
from xml.etree import ElementTree as ET

from .core import Report, Status

COLORS = {Status.PASS: "32", Status.FAIL: "31", Status.ERROR: "35", Status.SKIP: "33"}
HTML_COLORS = {Status.PASS: "#1b7f3b", Status.FAIL: "#b00020", Status.ERROR: "#7b1fa2", Status.SKIP: "#8a6d00"}


def _points(r) -> str:
    # A SKIP is neither earned nor lost: it does not count towards the score.
    return f"-/{r.check.points}" if r.status is Status.SKIP else f"{r.earned}/{r.check.points}"


def _paint(text: str, status: Status, color: bool) -> str:
    return f"\033[{COLORS[status]}m{text}\033[0m" if color else text


def text(report: Report, color: bool = True) -> str:
    width = max(60, min(shutil.get_terminal_size((100, 20)).columns, 120))
    lines: list[str] = []
    labs = sorted({r.check.lab for r in report.results})
    for lab in labs:
        rows = [r for r in report.results if r.check.lab == lab]
        earned, possible = sum(r.earned for r in rows), sum(r.possible for r in rows)
        lines.append(f"Lab {lab}  ({report.target})" if report.target else f"Lab {lab}")
        for r in rows:
            points = _points(r)
            head = f"  {_paint(f'{r.status.value:<5}', r.status, color)} {r.check.id}  {points:>5}  {r.check.title}"
            lines.append(head)
            indent = " " * 9
            for part in textwrap.wrap(r.message, width - len(indent)) or [""]:
                lines.append(indent + part)
            if r.status is Status.FAIL:
                for part in textwrap.wrap(f"hint: {r.check.hint}", width - len(indent)):
                    lines.append(indent + part)
            if r.status in (Status.FAIL, Status.SKIP):
                lines.append(f"{indent}docs: {r.check.docs_url}")
        lines.append(f"  score {earned}/{possible}")
        lines.append("")
    summary = ", ".join(f"{report.count(s)} {s.value.lower()}" for s in Status if report.count(s))
    lines.append(f"Total {report.earned}/{report.possible} points ({summary}) in {report.seconds:.2f} s")
    return "\n".join(lines)


GRADESCOPE_STATUS = {Status.PASS: "passed", Status.FAIL: "failed", Status.ERROR: "failed"}


def as_dict(report: Report) -> dict:
    """JSON that Gradescope's autograder format reads as it is (score, max_score, tests[]).

    ``result`` is the course's own verdict (PASS/FAIL/ERROR/SKIP); ``status`` is
    Gradescope's passed/failed and is absent for a SKIP, which counts for nothing.
    """
    tests = []
    for r in report.results:
        entry = {
            "id": r.check.id,
            "name": f"{r.check.id} {r.check.title}",
            "title": r.check.title,
            "result": r.status.value,
            "score": r.earned,
            "max_score": r.possible,
            "points": r.check.points,
            "output": r.message,
            "message": r.message,
            "hint": r.check.hint,
            "docs": r.check.docs_url,
            "local": r.check.local,
            "seconds": round(r.seconds, 4),
        }
        if r.status in GRADESCOPE_STATUS:
            entry["status"] = GRADESCOPE_STATUS[r.status]
        tests.append(entry)
    return {
        "score": report.earned,
        "max_score": report.possible,
        "target": report.target,
        "execution_time": round(report.seconds, 3),
        "counts": {s.value: report.count(s) for s in Status},
        "tests": tests,
    }


def as_json(report: Report) -> str:
    return json.dumps(as_dict(report), indent=2)


def junit(report: Report) -> str:
    suites = ET.Element("testsuites", name="microservices-labs", tests=str(len(report.results)),
                        failures=str(report.count(Status.FAIL)), errors=str(report.count(Status.ERROR)),
                        skipped=str(report.count(Status.SKIP)), time=f"{report.seconds:.3f}")
    for lab in sorted({r.check.lab for r in report.results}):
        rows = [r for r in report.results if r.check.lab == lab]
        suite = ET.SubElement(suites, "testsuite", name=f"lab{lab}", tests=str(len(rows)),
                              failures=str(sum(r.status is Status.FAIL for r in rows)),
                              errors=str(sum(r.status is Status.ERROR for r in rows)),
                              skipped=str(sum(r.status is Status.SKIP for r in rows)),
                              time=f"{sum(r.seconds for r in rows):.3f}")
        for r in rows:
            case = ET.SubElement(suite, "testcase", classname=f"lab{lab}", name=f"{r.check.id} {r.check.title}",
                                 time=f"{r.seconds:.3f}")
            ET.SubElement(case, "properties").append(
                ET.Element("property", name="points", value=_points(r)))
            detail = f"{r.message}\nhint: {r.check.hint}\ndocs: {r.check.docs_url}"
            if r.status is Status.FAIL:
                ET.SubElement(case, "failure", message=r.message).text = detail
            elif r.status is Status.ERROR:
                ET.SubElement(case, "error", message=r.message).text = detail
            elif r.status is Status.SKIP:
                ET.SubElement(case, "skipped", message=r.message)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode")


def html(report: Report) -> str:
    cell = "padding:4px 10px;border-bottom:1px solid #ddd;vertical-align:top;text-align:left"
    tight = cell + ";white-space:nowrap"
    rows = []
    for r in report.results:
        color = HTML_COLORS[r.status]
        extra = ""
        if r.status in (Status.FAIL, Status.SKIP):
            hint = f"<i>Hint:</i> {escape(r.check.hint)} " if r.status is Status.FAIL else ""
            extra = (f'<div style="opacity:.8;margin-top:2px">{hint}'
                     f'<a href="{escape(r.check.docs_url)}" target="_blank">docs</a></div>')
        rows.append(
            f"<tr><td style='{tight};color:{color};font-weight:bold'>{r.status.value}</td>"
            f"<td style='{tight}'><code>{r.check.id}</code></td><td style='{tight}'>{_points(r)}</td>"
            f"<td style='{cell}'><b>{escape(r.check.title)}</b><div>{escape(r.message)}</div>{extra}</td></tr>"
        )
    summary = ", ".join(f"{report.count(s)} {s.value.lower()}" for s in Status if report.count(s))
    head = "".join(f"<th style='{tight}'>{h}</th>" for h in ("status", "check", "points", "result"))
    return (
        "<table style='border-collapse:collapse;margin:4px 0'>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"<p><b>Score {report.earned}/{report.possible}</b> ({summary}) on {escape(report.target)}</p>"
    )
