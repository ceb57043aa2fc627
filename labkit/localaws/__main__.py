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
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="The course's local AWS (moto with a journal and extensions).")
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--journal", type=Path, required=True)
    args = parser.parse_args(argv)

    from moto.moto_server.werkzeug_app import MotoRequestHandler  # keeps moto's header handling
    from werkzeug.serving import run_simple

    from .app import build_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log: it would grow without bound
    os.environ["MOTO_PORT"] = str(args.port)  # moto builds some URLs (queues, endpoints) from it
    app = build_app(args.journal, f"http://localhost:{args.port}")

    def stop(signum, frame):
        app.close()  # runtimes the local AWS started stop with it
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    if app.journal.exists():
        app.replay(app.journal.read())  # bring back what the last session built: the journal is the state
    else:
        app.journal.rewrite(b"")
    try:
        run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    finally:
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
