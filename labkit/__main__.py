"""``python -m labkit up | down | status | api | lb | reset | save NAME | restore NAME | snapshots | start NN | image``.

Every failure is one sentence on stderr and exit code 2; nothing here deletes
what the learner built except ``reset`` and ``start``, which say so.
"""
from __future__ import annotations

import argparse
import sys
import time

from .errors import LabkitError


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write(f"labkit: {message}; see `python -m labkit --help`.\n")
        sys.exit(2)

    def print_help(self, file=None):  # argparse would drop a failed write silently; the guard reports it
        (file or sys.stdout).write(self.format_help())


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m labkit", description="The course's local AWS and lab states.")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error (anywhere on the line)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("up", help="start the local AWS in the background (keeps your last state)")
    sub.add_parser("down", help="stop the local AWS (your state is kept for the next `up`)")
    sub.add_parser("status", help="say whether the local AWS runs, where, and what state it holds")
    p = sub.add_parser("api", help="list the deployed API stages and their invoke URLs")
    p.add_argument("--live", action="store_true", help="list the stages on your live account instead")
    p = sub.add_parser("lb", help="list the application load balancers and the URLs their listeners answer at")
    p.add_argument("--live", action="store_true", help="list the load balancers on your live account instead")
    sub.add_parser("reset", help="empty the local AWS (the old state is kept as snapshot before-reset)")
    p = sub.add_parser("save", help="save the local AWS state as a named snapshot")
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="replace a snapshot of that name")
    p = sub.add_parser("restore", help="replace the local AWS state with a named snapshot")
    p.add_argument("name")
    sub.add_parser("snapshots", help="list saved snapshots")
    p = sub.add_parser("start", help="put the local AWS into the state lab NN starts from")
    p.add_argument("lab", metavar="NN")
    p = sub.add_parser("cleanup", help="delete every course resource you created (local, or --live)")
    p.add_argument("--live", action="store_true", help="clean a live AWS account (asks first)")
    p.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    p.add_argument("--yes", action="store_true", help="do not ask before deleting on a live account")
    p = sub.add_parser("image", help="build a Dockerfile into an OCI image without Docker, or push one to the local ECR")
    verbs = p.add_subparsers(dest="verb", metavar="build|push")
    b = verbs.add_parser("build", help="build CONTEXT's Dockerfile; prints the image digest")
    b.add_argument("context", nargs="?", default=".", help="the build context folder (default: here)")
    b.add_argument("--file", "-f", default="Dockerfile", help="the Dockerfile's name in the context")
    b.add_argument("--build-arg", action="append", default=[], metavar="NAME=VALUE")
    b.add_argument("--output", "-o", help="also save the image as an OCI image layout in this folder")
    u = verbs.add_parser("push", help="build CONTEXT (or read a saved OCI layout) and push it to an ECR repository")
    u.add_argument("source", help="a build context folder, or an OCI layout saved with `image build --output`")
    u.add_argument("repository", metavar="REPOSITORY_URI", help="<account>.dkr.ecr.<region>.amazonaws.com/<name>[:tag]")
    u.add_argument("--tag", "-t", help="the tag to push (default: the URI's, else latest)")
    u.add_argument("--file", "-f", default="Dockerfile", help="the Dockerfile's name in the context")
    u.add_argument("--build-arg", action="append", default=[], metavar="NAME=VALUE")
    sub.add_parser("my-labs", help="copy each lab notebook you have no copy of yet into my-labs/ (never overwrites)")
    p = sub.add_parser("build-notebooks", help="regenerate labs/ and solutions/ from course/ (maintainers)")
    p.add_argument("--check", action="store_true", help="only report stale notebooks (exit 1 if any)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except LabkitError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2


def _up(args) -> int:
    from . import localaws

    journal = localaws.journal_path()
    if journal.is_dir():
        raise LabkitError(f"{journal} is a folder where your journal goes; move it aside and run `python -m labkit up` again.")
    if localaws.running() is None and journal.exists() and journal.stat().st_size:
        from .localaws import snapshots
        from .localaws.journal import count_changes, unreadable_lines

        data = journal.read_bytes()
        unreadable = unreadable_lines(data)
        changes = count_changes(journal)
        if unreadable:
            # The server skips what it cannot read and rewrites the journal: keep the original first.
            kept = snapshots.keep_damaged(localaws.control.snapshot_dir(),
                                          time.strftime("damaged-journal-%Y%m%d-%H%M%S"), data)
            print(f"{unreadable} line(s) of your journal cannot be read and will be skipped; the journal as it was "
                  f"is kept in {kept}.", flush=True)
        print(f"Starting the local AWS and replaying your last state ({changes} change(s)) ...", flush=True)
    info = localaws.up(progress=lambda sentence: print(sentence, flush=True))
    if info["already"]:
        print(f"The local AWS is already running at {info['endpoint']} (pid {info['pid']}).")
    else:
        note = " and restored your last state" if info.get("restored") else ""
        print(f"Started the local AWS at {info['endpoint']} (pid {info['pid']}){note}.")
    print(f"Deployed REST APIs answer at {info['endpoint']}/_api/<api id>/<stage>; `python -m labkit api` lists them.")
    return 0


def _api(args) -> int:
    from . import target
    from .stages import stages

    t = target(live=True if args.live else None)
    if t.is_local:
        from . import localaws

        localaws.require_running()
    rows = stages(t)
    if not rows:
        print(f"No deployed REST API stages on {t.describe()}.")
        return 0
    width = max(len(r["api"]) for r in rows)
    for row in rows:
        print(f"{row['api']:<{width}}  {row['stage']:<8}  {row['url']}")
    return 0


def _lb(args) -> int:
    from . import target
    from .balancers import balancers

    t = target(live=True if args.live else None)
    if t.is_local:
        from . import localaws

        localaws.require_running()
    rows = balancers(t)
    if not rows:
        print(f"No load balancer listener answers on {t.describe()}.")
        return 0
    name = max(len(r["name"]) for r in rows)
    dns = max(len(r["dns_name"]) for r in rows)
    for row in rows:
        print(f"{row['name']:<{name}}  {row['dns_name']:<{dns}}  {row['listener_port']:>5}  {row['url']}")
    return 0


def _down(args) -> int:
    from . import localaws

    if localaws.down():
        print("Stopped the local AWS; `python -m labkit up` brings your state back.")
    else:
        print("The local AWS was not running.")
    return 0


def _status(args) -> int:
    from . import localaws

    print(localaws.summary())
    return 0 if localaws.running() else 1


def _reset(args) -> int:
    from . import localaws

    kept = localaws.keep_copy("before-reset")
    localaws.reset()
    print("The local AWS is empty now." + (f" Your previous state is snapshot {kept!r}." if kept else ""))
    return 0


def _save(args) -> int:
    from . import localaws

    path = localaws.save(args.name, force=args.force)
    print(f"Saved snapshot {args.name!r} ({path}).")
    return 0


def _restore(args) -> int:
    from . import localaws

    started = time.perf_counter()
    count = localaws.restore(args.name)
    print(f"Restored snapshot {args.name!r}: {count} change(s) replayed in {time.perf_counter() - started:.1f} s.")
    return 0


def _snapshots(args) -> int:
    from . import localaws

    names = localaws.list_snapshots()
    print("\n".join(names) if names else "No snapshots yet; `python -m labkit save NAME` makes one.")
    return 0


def _start(args) -> int:
    from . import localaws
    from .authoring import notebooks
    from .starts import start

    from .config import load_settings, work_dir

    started = time.perf_counter()
    lab = notebooks.lab(args.lab)  # an unknown lab number changes nothing,
    load_settings()  # nor do a bad prefix, region or target,
    work_dir()  # nor a work folder the solutions cannot write to: all are checked before anything is kept
    kept = localaws.keep_copy(f"before-start-{lab.number}")
    if kept:
        print(f"Kept your current state as snapshot {kept!r}.")
    done = start(args.lab, progress=lambda msg: print(msg, flush=True))
    print(f"The local AWS is ready for lab {done} ({time.perf_counter() - started:.1f} s).")
    return 0


def _cleanup(args) -> int:
    from .cleanup import cleanup
    from .target import Target

    target = Target.from_settings(live=True if args.live else None)
    if target.is_live:
        asks = not args.dry_run and not args.yes
        if asks and not sys.stdin.isatty():  # said before anything is looked up: nothing can be asked
            raise LabkitError("Cleaning a live account deletes resources: add --yes to go ahead without a prompt.")
        target.session()  # one sentence if there are no credentials
        if asks:
            found = cleanup(target, dry_run=True)
            if not found["found"]:
                print("Nothing of yours to delete.")
                return 0
            if input(f"Delete these {len(found['found'])} resource(s) in account {target.account_id}? [y/N] ").strip().lower() != "y":
                print("Nothing was deleted.")
                return 1
    else:
        from . import localaws

        localaws.require_running()
    done = cleanup(target, dry_run=args.dry_run)
    if not done["found"] and not done["pending"]:
        print(f"Nothing of yours ({target.prefix}) to delete on {target.describe()}.")
    elif done["pending"]:
        print(f"{len(done['deleted'])} deleted; {len(done['pending'])} still waiting: run cleanup again later.")
    return 0


def _build_notebooks(args) -> int:
    from .authoring.notebooks import build

    kept: list = []
    stale = build(check_only=args.check, kept=kept)
    for path in stale:
        print(("stale: " if args.check else "wrote: ") + str(path))
    for path in kept:
        print(f"kept: {path} was edited since it was generated, so it is left as it is (learners fill their copies "
              "in my-labs/; move the edits there or into course/, then delete it and build again).")
    if args.check and stale:
        print("Run `python -m labkit build-notebooks` and commit the result.")
        return 1
    if not stale and not kept:
        print("All notebooks are up to date.")
    return 0


def _my_labs(args) -> int:
    from .mylabs import prepare

    for line in prepare():
        print(line)
    return 0


def _image(args) -> int:
    from pathlib import Path

    from . import images

    if not args.verb:
        raise LabkitError("Say what to do with images: `python -m labkit image build CONTEXT` or "
                          "`python -m labkit image push CONTEXT REPOSITORY_URI`.")
    build_args = {}
    for pair in args.build_arg:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise LabkitError(f"--build-arg {pair!r} is not NAME=VALUE.")
        build_args[name] = value
    say = lambda sentence: print(sentence, flush=True)  # noqa: E731
    source = Path(getattr(args, "context", None) or args.source)
    if args.verb == "push":
        from . import localaws

        images.repository_parts(args.repository)  # a bad URI is said before anything is built
        localaws.require_running()
    if args.verb == "push" and (source / "oci-layout").is_file():
        image = images.BuiltImage.load(source)
    else:
        image = images.build(source, args.file, build_args, progress=say)
    if args.verb == "build":
        if args.output:
            print(f"saved as an OCI image layout in {image.save(Path(args.output))}")
        print(image.digest)
        return 0
    images.push(image, args.repository, tag=args.tag, progress=say)
    return 0


COMMANDS = {"up": _up, "down": _down, "status": _status, "api": _api, "lb": _lb, "reset": _reset, "save": _save, "restore": _restore,
            "snapshots": _snapshots, "start": _start, "cleanup": _cleanup, "build-notebooks": _build_notebooks,
            "my-labs": _my_labs, "image": _image}

if __name__ == "__main__":
    from .cli import run

    run(main, "labkit")
