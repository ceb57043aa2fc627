"""The local AWS: a moto server made durable, repeatable and able to run what it stores.

Layers, from the outside in:

- ``control``: what labkit's commands use from outside the process (up,
  down, status, save, restore, reset, ``grading_session``); re-exported here.
- ``__main__``: the process itself (``python -m labkit.localaws``).
- ``app``: the WSGI app: control paths, then extensions, then moto, one
  request at a time, every change journaled.
- ``journal``: the journal's format, classification of requests, atomic rewrites.
- ``guard``: who may talk to it (loopback Host, no browser Origin, the
  control secret) and the one-server-per-folder lock.
- ``grading``: grading sessions (read-only keys checked with ``sigv4``, a
  call log, small pages, a lockdown that refuses every write meanwhile).
- ``snapshots``: journal copies, written atomically, verified, kept before
  a reset or a replay empties the state.
- ``fidelity``: every place the local AWS deliberately differs from moto,
  one module per service.
- ``extensions``: runtimes behind one protocol (the Lambda runner, the API
  gateway); a new runtime is one module plus one line in ``REGISTERED``.
"""
from __future__ import annotations

from .control import (  # noqa: F401  (the public surface)
    NOT_RUNNING,
    GradingSession,
    down,
    endpoint_up,
    grading_session,
    journal_path,
    keep_copy,
    list_snapshots,
    open_grading_session,
    read_journal,
    replay,
    require_running,
    reset,
    restore,
    running,
    save,
    save_data,
    set_state_label,
    status,
    summary,
    up,
)
