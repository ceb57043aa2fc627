"""``labkit start NN``: the local AWS as lab NN expects to find it.

Lab NN starts from the end of lab NN-1, so the state is built by running the
solution code of every earlier lab against the learner's own prefix (a
recording would carry someone else's names). Always local, never live.

Building takes a second per lab, so a built start state is kept (its journal
and the files the solutions wrote under ``work/``) and replayed the next
time, as long as nothing it was built from has changed: the earlier labs'
sources, the course's data, labkit's own code, the prefix and the region.
A start with no kept state of its own goes on from the latest one that is
still valid, so only the labs after it are built.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import time
from pathlib import Path
from typing import Callable

from . import assets, config, localaws, remember
from .authoring import notebooks
from .errors import LabkitError

CACHE_VERSION = "1"  # bump when what a cached start holds changes


def start(number: str, progress: Callable[[str], None] = lambda _: None) -> str:
    wanted = notebooks.lab(number)  # validates the number
    config.load_settings()  # and the prefix, region and target, before anything changes
    localaws.require_running()
    before = [lab for lab in notebooks.labs() if lab.number < wanted.number]
    key = _fingerprint(before)
    if not _from_cache(wanted.number, key, progress):
        begun = time.time()
        _build(_from_nearest_cache(before, progress), progress)
        _keep(wanted.number, key, begun)
    localaws.set_state_label(f"start of lab {wanted.number}")
    return wanted.number


def _from_nearest_cache(before: list, progress: Callable[[str], None]) -> list:
    """The local AWS at the latest kept start state still valid for ``before``'s labs (empty when there is
    none); returns the labs whose solutions are still to run on it. A start of lab 08 after one of lab 07
    runs lab 07's solution only."""
    for i in range(len(before) - 1, 0, -1):
        if _from_cache(before[i].number, _fingerprint(before[:i]), progress):
            return before[i:]
    localaws.reset()
    return before


def _build(before: list, progress: Callable[[str], None]) -> None:
    saved = os.environ.get("LABS_TARGET")
    os.environ["LABS_TARGET"] = "local"  # building states must never touch a live account
    try:
        for lab in before:
            progress(f"Building the end state of lab {lab.number} ({lab.slug}) ...")
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    notebooks.run_solution(lab)
                except LabkitError:
                    raise
                except Exception as exc:
                    raise LabkitError(f"Building the end state of lab {lab.number} failed ({type(exc).__name__}: {exc}); "
                                      "run `python -m labkit reset` and try again.") from None
    finally:
        if saved is None:
            os.environ.pop("LABS_TARGET", None)
        else:
            os.environ["LABS_TARGET"] = saved


# -- the kept start states ----------------------------------------------------------

def _cache_dir() -> Path:
    return config.state_dir() / "starts"


def _fingerprint(before: list) -> str:
    settings = config.load_settings()
    digest = hashlib.sha256(f"{CACHE_VERSION}|{settings.prefix}|{settings.region}".encode())
    for lab in before:
        digest.update(lab.path.read_bytes())
    for path in sorted(p for p in assets.ASSETS.rglob("*") if p.is_file()):
        digest.update(path.name.encode() + path.read_bytes())
    # labkit's own code makes what a solution writes (a function's zip, say): a new version builds afresh.
    digest.update(remember.code_digest("labkit").encode())
    return digest.hexdigest()


def _keep(number: str, key: str, begun: float) -> None:
    """Keep the state just built, with the work files the solutions wrote since ``begun``."""
    work = config.work_dir()
    files = {}
    if work.is_dir():
        for path in sorted(p for p in work.rglob("*") if p.is_file() and p.stat().st_mtime >= begun - 1):
            files[str(path.relative_to(work))] = base64.b64encode(path.read_bytes()).decode()
    folder = config.private_dir(_cache_dir())
    config.write_private(folder / f"{number}.ndjson", localaws.read_journal())
    localaws.save_data(f"starts/{number}.data")  # the engines' data (a database's rows) is part of it
    config.write_private(folder / f"{number}.json", json.dumps({"key": key, "files": files}) + "\n")


def _from_cache(number: str, key: str, progress: Callable[[str], None]) -> bool:
    folder = _cache_dir()
    try:
        meta = json.loads((folder / f"{number}.json").read_text())
        lines = (folder / f"{number}.ndjson").read_bytes()
    except (OSError, ValueError):
        return False  # never built, or unreadable: build it
    if meta.get("key") != key:
        return False  # built from other sources or for another prefix
    progress(f"Replaying the start state of lab {number} built earlier ...")
    try:
        localaws.replay(lines, data=f"starts/{number}.data")
    except Exception:  # a kept state that no longer replays is rebuilt, not reported
        return False
    work = config.work_dir()
    for name, data in meta.get("files", {}).items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
    return True
