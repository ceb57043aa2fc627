"""The course docs, served where the learner is.

``make lab`` builds the site if it is missing or older than its sources and
JupyterLab serves it twice over (``labkit.jupyter``): under its own
``/labkit-docs/`` path, which the notebooks' concept links open, and on a
free loopback port of its own, recorded in the state folder (``docs.json``),
which the grader's links (``checks.docs_url``) read. ``make serve-docs`` (the
authors' live-reloading server) records its port the same way. A record
whose process is gone is ignored, and the grader falls back to the default.

``python -m labkit.docs build-if-needed | serve-live [--port P]``.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from . import config
from .errors import LabkitError

ROOT = config.REPO_ROOT
SITE = Path(os.environ.get("LABKIT_DOCS_SITE") or ROOT / "build" / "site")  # mkdocs.yml's site_dir
DEFAULT_PORT = 8000  # checks.DEFAULT_DOCS_URL's port: tried first
SOURCES = ("site", "course", "checks", "mkdocs.yml", "mkdocs_hooks.py")


def record_path() -> Path:
    return config.state_dir() / "docs.json"


def recorded_url() -> str | None:
    """The URL a running docs server recorded, or None (no record, a damaged one, or its process is gone)."""
    try:
        record = json.loads(record_path().read_text(encoding="utf-8"))
    except (OSError, ValueError, LabkitError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("url"), str) or not config.process_alive(record.get("pid")):
        return None
    return record["url"]


def record(url: str, pid: int | None = None) -> Path:
    return config.write_private(record_path(), json.dumps({"url": url, "pid": pid or os.getpid()}))


def forget(pid: int | None = None) -> None:
    """Remove the record if it is this process's (another server may have recorded itself since)."""
    path = record_path()
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == (pid or os.getpid()):
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def taken(port: int) -> str:
    """One sentence for a taken port, offering a free one."""
    return (f"Port {port} is taken by another program, so the docs cannot be served there; "
            f"run `make serve-docs DOCS_PORT={free_port()}` to use a free port.")


# -- building -------------------------------------------------------------------------

def _newest(paths) -> float:
    newest = 0.0
    for name in paths:
        path = ROOT / name
        files = [path] if path.is_file() else (p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
        for file in files:
            newest = max(newest, file.stat().st_mtime)
    return newest


def stale(site: Path = SITE) -> bool:
    index = site / "index.html"
    return not index.exists() or index.stat().st_mtime < _newest(SOURCES)


def build_if_needed() -> bool:
    """Build the site when it is missing or older than its sources; True when it built."""
    if not stale():
        return False
    print("Building the course docs (once, and again after the course changes) ...", flush=True)
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--quiet", "--site-dir", str(SITE)],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    if run.returncode != 0:
        last = (run.stderr.strip().splitlines() or ["no message"])[-1]
        raise LabkitError(f"The docs did not build ({last}); the labs work without them.")
    return True


# -- serving --------------------------------------------------------------------------

class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # JupyterLab's terminal is the learner's: no access log there
        pass


def serve_in_thread(site: Path = SITE, port: int | None = None) -> ThreadingHTTPServer:
    """Serve ``site`` on loopback (port DEFAULT_PORT if free, else any free one) in a daemon thread; recorded."""
    handler = partial(_Quiet, directory=str(site))
    if port is None:
        try:
            server = ThreadingHTTPServer(("127.0.0.1", DEFAULT_PORT), handler)
        except OSError:  # taken: any free port will do, the record says which
            server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    else:
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="labkit-docs", daemon=True).start()
    record(f"http://127.0.0.1:{server.server_address[1]}/")
    return server


def serve_live(port: int) -> int:
    """The authors' ``mkdocs serve`` on ``port`` (recorded while it runs); a taken port is one sentence."""
    if not port_free(port):
        sys.stderr.write(taken(port) + "\n")
        return 2
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    child = subprocess.Popen([sys.executable, "-m", "mkdocs", "serve", "--strict", "--dev-addr", f"127.0.0.1:{port}"],
                             cwd=ROOT, env=env)
    record(f"http://127.0.0.1:{port}/", child.pid)
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.terminate()
        return child.wait()
    finally:
        forget(child.pid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labkit.docs")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build-if-needed")
    p = sub.add_parser("serve-live")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    try:
        if args.command == "build-if-needed":
            build_if_needed()
            return 0
        return serve_live(args.port)
    except LabkitError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2


if __name__ == "__main__":
    from .cli import run

    run(main, "labkit.docs")
