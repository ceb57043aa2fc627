"""The benchmarks' own local AWS: a temporary state folder, a free port and prefix ``bench``."""
from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
from pathlib import Path


def use_own_local_aws(name: str) -> Path:
    """Point labkit at a fresh state folder and port (the learner's own state and work/ stay untouched)."""
    home = Path(tempfile.mkdtemp(prefix=f"labs-{name}-"))
    atexit.register(shutil.rmtree, home, True)  # the benchmark's state, never the learner's
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    os.environ.update(LABKIT_HOME=str(home), LABS_AWS_PORT=str(port), LABS_PREFIX="bench",
                      LABS_WORK_DIR=str(home / "work"))
    # A learner's Python keeps bytecode caches; without them every run compiles the course's modules
    # again (0.3 s of a lab's grading here), which is not what learners feel.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    return home
