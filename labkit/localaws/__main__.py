"""The local AWS process: ``python -m labkit.localaws --port P --journal FILE``.

Learners never run this directly: ``python -m labkit up`` starts it in the
background (``control.py``) and ``down`` stops it.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

LOOPBACK = ("localhost", "127.0.0.1", "::1")  # the only addresses it may listen on


def _exit_with(pid: int) -> None:
    """Stop (cleanly, through the SIGTERM handler) once ``pid`` is gone: a killed test run leaves no server."""
    def watch():
        from ..config import process_alive

        while process_alive(pid):
            time.sleep(1.0)
        logging.getLogger("labkit.localaws").info("process %d is gone; stopping", pid)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="exit-with", daemon=True).start()


# A connection that sends nothing for this long is closed (a stuck or hostile client must not hold a
# thread forever). Only reads and writes on the socket count: a long Lambda invoke is not idle time.
IDLE_CONNECTION_S = 120.0


def _patient_for(handler):
    """``handler`` with a bound on how long it waits for a client that sends nothing."""
    try:
        idle = float(os.environ.get("LABKIT_IDLE_CONNECTION_S") or IDLE_CONNECTION_S)  # a test hook
    except ValueError:
        idle = IDLE_CONNECTION_S
    return type("PatientRequestHandler", (handler,), {"timeout": idle if idle > 0 else IDLE_CONNECTION_S})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="The course's local AWS (moto with a journal and extensions).")
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--journal", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.host not in LOOPBACK:
        sys.stderr.write(f"The local AWS listens on loopback only; {args.host!r} is not localhost, 127.0.0.1 or ::1.\n")
        return 2
    args.journal = args.journal.resolve()
    from ..config import private_dir
    from .guard import ALREADY_SERVED, ensure_secret, hold_state_folder

    private_dir(args.journal.parent)
    if hold_state_folder(args.journal.parent) is None:
        sys.stderr.write(f"Another local AWS already serves {args.journal.parent}; stop it before starting one here.\n")
        return ALREADY_SERVED
    ensure_secret(args.journal.parent)  # `labkit up` made it already; a hand-started server makes its own

    from moto.moto_server.werkzeug_app import MotoRequestHandler  # keeps moto's header handling
    from werkzeug.serving import run_simple

    from .app import build_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log: it would grow without bound
    os.environ["MOTO_PORT"] = str(args.port)  # moto builds some URLs (queues, endpoints) from it
    app = build_app(args.journal, f"http://localhost:{args.port}")
    from . import netns

    netns.remove_all()  # namespaces a killed local AWS left (never another running one's)

    def stop(signum, frame):
        app.close()  # runtimes the local AWS started stop with it; every change is already on disk
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        # Without the interpreter's teardown: freeing moto's objects one by one took 2 s of every `down`.
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    watched = os.environ.get("LABKIT_EXIT_WITH_PID", "")
    if watched.isdigit() and int(watched) > 0:
        _exit_with(int(watched))
    if app.journal.exists():
        app.replay(app.journal.read())  # bring back what the last session built: the journal is the state
    else:
        app.journal.rewrite(b"")
    try:
        run_simple(args.host, args.port, app, threaded=True, request_handler=_patient_for(MotoRequestHandler))
    finally:
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
