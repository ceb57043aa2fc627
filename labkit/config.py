"""Course constants and the learner's settings (prefix, region, target).

Settings live in the state folder (``.labkit/`` in the repository, or
``$LABKIT_HOME``) so notebooks, the grader and the CLI all read the same
values; environment variables override them (twelve-factor config).
"""
from __future__ import annotations

import getpass
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import LabkitError

COURSE_ID = "microservices-labs"
DEFAULT_PORT = 4747  # clear of 5000 (macOS AirPlay), 4566 (LocalStack), 8000/8888 (docs, Jupyter)
DEFAULT_REGION = "us-east-1"
LOCAL_ACCOUNT_ID = "123456789012"  # moto's fixed account

PREFIX_RULE = re.compile(r"^[a-z][a-z0-9-]{1,18}[a-z0-9]$")
PREFIX_RULE_TEXT = "3-20 characters: lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen"

REPO_ROOT = Path(__file__).resolve().parent.parent


def state_dir() -> Path:
    """Where the server record, the recording, snapshots and settings live."""
    home = os.environ.get("LABKIT_HOME")
    return private_dir(Path(home) if home else REPO_ROOT / ".labkit")


def private_dir(path: Path) -> Path:
    """``path`` as a folder only its owner may enter (0700): the state holds the control secret."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        if path.stat().st_mode & 0o077:
            path.chmod(0o700)  # a folder made by an older version, or under a loose umask
    except OSError:
        pass  # not ours to change: the files inside are still written owner-only
    return path


def write_private(path: Path, data: bytes | str) -> Path:
    """Replace ``path`` with ``data``, owner-only (0600) and atomically (the old file or the new, never torn).

    Every state file goes through here: the journal's own atomic rewrite does the work.
    """
    from .localaws.journal import write_atomically

    write_atomically(path, data.encode() if isinstance(data, str) else data)
    return path


def work_dir() -> Path:
    """Where the learner's own files go (the contract, handler code): ``work/``, or $LABS_WORK_DIR."""
    home = os.environ.get("LABS_WORK_DIR")
    path = Path(home) if home else REPO_ROOT / "work"
    path.mkdir(parents=True, exist_ok=True)
    return path


def port() -> int:
    """LABS_AWS_PORT, else the port the local AWS was last started on, else the default.

    The server record is what lets a notebook or the grader find a server that
    was started on another port without repeating the variable everywhere.
    """
    raw = os.environ.get("LABS_AWS_PORT") or str(_recorded_port() or DEFAULT_PORT)
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise LabkitError(f"LABS_AWS_PORT={raw!r} is not a port number; set it to a number between 1024 and 65535.")
    return int(raw)


def _recorded_port() -> int | None:
    try:
        return int(json.loads((state_dir() / "server.json").read_text())["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def local_endpoint() -> str:
    # localhost, not 127.0.0.1: S3 virtual-host addressing and the CDK CLI need a name.
    return f"http://localhost:{port()}"


def valid_prefix(prefix: str) -> bool:
    return bool(PREFIX_RULE.match(prefix or ""))


def _default_prefix() -> str:
    name = re.sub(r"[^a-z0-9-]", "", getpass.getuser().lower())
    name = name.strip("-")[:20]
    if not name or not name[0].isalpha():
        name = "learner"
    return name if valid_prefix(name) else "learner"


@dataclass
class Settings:
    prefix: str
    region: str = DEFAULT_REGION
    target: str = "local"  # "local" or "live"


def settings_path() -> Path:
    return state_dir() / "settings.json"


def load_settings() -> Settings:
    """Read the saved settings, then apply environment overrides."""
    data: dict = {}
    path = settings_path()
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            raise LabkitError(f"{path} is not valid JSON; fix it or delete it and run labkit.configure() again.") from None
    settings = Settings(
        prefix=data.get("prefix") or _default_prefix(),
        region=data.get("region") or DEFAULT_REGION,
        target=data.get("target") or "local",
    )
    settings.prefix = os.environ.get("LABS_PREFIX", settings.prefix)
    settings.target = os.environ.get("LABS_TARGET", settings.target)
    if settings.target == "live":
        # Live mode follows the normal AWS chain for the region.
        settings.region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or settings.region
    if settings.target not in ("local", "live"):
        raise LabkitError(f"LABS_TARGET={settings.target!r} is not a target; use 'local' or 'live'.")
    return settings


def save_settings(settings: Settings) -> Path:
    if not valid_prefix(settings.prefix):
        raise LabkitError(f"Prefix {settings.prefix!r} is not valid: use {PREFIX_RULE_TEXT}.")
    return write_private(settings_path(), json.dumps(asdict(settings), indent=2) + "\n")
