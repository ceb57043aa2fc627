"""``labkit start NN``: the local AWS as lab NN expects to find it.

Lab NN starts from the end of lab NN-1, so the state is built by running the
solution code of every earlier lab against the learner's own prefix (a
recording would carry someone else's names). Always local, never live.
"""
from __future__ import annotations

import contextlib
import io
import os
from typing import Callable

from . import notebooks, server
from .errors import LabkitError


def start(number: str, progress: Callable[[str], None] = lambda _: None) -> str:
    wanted = notebooks.lab(number)  # validates the number
    server.require_running()
    server.reset()
    before = [lab for lab in notebooks.labs() if lab.number < wanted.number]
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
    server.set_state_label(f"start of lab {wanted.number}")
    return wanted.number
