"""``python -m checks 01`` / ``01.3`` (a step) / ``all`` / ``L01.02`` / ``L01.02-L01.05``.

Exit codes: 0 when nothing failed or errored (SKIP is fine), 1 when a check
failed, 2 on a usage error or when grading could not run.
"""
from __future__ import annotations

import argparse
import os
import sys


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one sentence, exit 2, no usage dump
        sys.stderr.write(f"checks: {message}; see `python -m checks --help`.\n")
        sys.exit(2)

    def print_help(self, file=None):  # argparse would drop a failed write silently; the guard reports it
        (file or sys.stdout).write(self.format_help())


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m checks", description="Grade the course labs (read-only).")
    parser.add_argument("specs", nargs="*", default=["all"], metavar="LAB",
                        help="a lab (01), a lab's step (01.3), a check (L01.02), a range (L01.02-L01.05) or all (default)")
    parser.add_argument("--live", action="store_true", help="grade a live AWS account (normal credential chain)")
    parser.add_argument("--format", choices=("text", "json", "junit"), default="text")
    parser.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE as well as the exit code")
    parser.add_argument("--list", action="store_true", help="list the selected checks without running them")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    args = parser.parse_args(argv)

    from labkit.errors import LabkitError
    from labkit.target import Target

    from . import render
    from .core import UnknownSelection, grade, preflight, select

    try:
        chosen, seen = [], set()
        for spec in args.specs:
            for chk in select(spec):
                if chk.id not in seen:
                    seen.add(chk.id)
                    chosen.append(chk)
        if args.list:
            from .catalogue import in_course_order

            for chk in in_course_order(chosen):
                print(f"{chk.id}  step {chk.step}  {chk.points:>2} pt  {chk.title}" + (f"  [{chk.acts}]" if chk.acts else ""))
            return 0
        target = Target.from_settings(live=True if args.live else None)
        preflight(target)
    except (UnknownSelection, LabkitError) as exc:
        sys.stderr.write(f"{exc}\n")
        return 2

    report = grade(chosen, target)
    if args.format == "json":
        out = render.as_json(report)
    elif args.format == "junit":
        out = render.junit(report)
    else:
        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ and not args.output
        out = render.text(report, color=color)
    if args.output:
        try:
            with open(args.output, "w") as fh:
                fh.write(out + "\n")
        except OSError as exc:
            sys.stderr.write(f"Cannot write {args.output}: {exc.strerror}.\n")
            return 2
        print(render.text(report, color=sys.stdout.isatty()).splitlines()[-1])
    else:
        print(out)
    return report.exit_code


if __name__ == "__main__":
    from labkit.cli import run

    run(main, "checks")
