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
import tempfile
from dataclasses import asdict, dataclass
from functools import lru_cache
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
    return private_dir(_usable_folder("LABKIT_HOME", REPO_ROOT / ".labkit"))


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
    return _usable_folder("LABS_WORK_DIR", REPO_ROOT / "work")


_WRITABLE: set[Path] = set()  # folders already proven writable in this process


def _usable_folder(variable: str, default: Path) -> Path:
    """The folder ``variable`` names (else ``default``), created, and proven writable once per process."""
    home = os.environ.get(variable)
    path = Path(home) if home else default
    if path in _WRITABLE:
        try:
            path.mkdir(parents=True, exist_ok=True)  # it may have been removed since
            return path
        except OSError:
            _WRITABLE.discard(path)
    named = f"{variable}={path}" if home else str(path)
    if path.exists() and not path.is_dir():
        raise LabkitError(f"{named} is not a folder; point {variable} at a folder of yours (it is created if missing).")
    try:
        path.mkdir(parents=True, exist_ok=True)
        # A probe, since os.access says yes to root on folders nobody can write (/proc).
        fd, probe = tempfile.mkstemp(dir=path, prefix=".labkit-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise LabkitError(f"{named} is not a folder labkit can write to ({exc.strerror}); "
                          f"point {variable} at a folder of yours.") from None
    _WRITABLE.add(path)
    return path


def port() -> int:
    """LABS_AWS_PORT, else the port the local AWS was last started on, else the default.

    The server record is what lets a notebook or the grader find a server that
    was started on another port without repeating the variable everywhere.
    """
    raw = os.environ.get("LABS_AWS_PORT")
    if not raw:
        record = read_server_record()
        return record["port"] if record else DEFAULT_PORT
    if not _valid_port(raw):
        raise LabkitError(f"LABS_AWS_PORT={raw!r} is not a port number; set it to a number between 1024 and 65535.")
    return int(raw)


def _valid_port(value) -> bool:
    if isinstance(value, str):  # ASCII digits only: "²".isdigit() is true but int("²") fails
        return re.fullmatch(r"[0-9]{1,5}", value) is not None and 1 <= int(value) <= 65535
    return type(value) is int and 1 <= value <= 65535


# -- the server record (server.json): which process serves which port --------------

LOOPBACK_ENDPOINT = re.compile(r"^http://(localhost|127(\.[0-9]{1,3}){3}|\[::1\]):([0-9]{1,5})$")


def process_alive(pid) -> bool:
    """Whether a recorded pid still names a running process (one of another user's counts as running).

    A process that ended but was not reaped yet (a zombie) has stopped: where the machine's first process
    reaps late (containers), counting it as running made every `down` wait out its SIGKILL timeout."""
    if type(pid) is not int or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # ended only when every thread has: a leader that is a zombie while its threads exit still holds its files
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc (macOS): the signal's answer stands; else it is gone
    except OSError:
        return True
    for task in tasks:
        try:
            if (task / "stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                return True
        except (OSError, IndexError):
            continue  # that thread ended while we looked
    return False


def server_record_path() -> Path:
    return state_dir() / "server.json"


def read_server_record() -> dict | None:
    """The record ``labkit up`` wrote, checked, or None when there is none.

    A damaged record is one sentence, never a guess: a wrong pid would have
    ``labkit down`` signal a process that is not the local AWS.
    """
    path = server_record_path()
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _damaged(path, f"it cannot be read: {exc.strerror}") from None
    try:
        record = json.loads(text)
    except ValueError:
        raise _damaged(path, "it is not JSON") from None
    if not isinstance(record, dict):
        raise _damaged(path, f"it holds {_json_type(record)}, not a record")
    pid = record.get("pid")
    if type(pid) is not int or not 0 <= pid < 2 ** 31:
        raise _damaged(path, f"pid {pid!r} is not a process id")
    if not _valid_port(record.get("port")):
        raise _damaged(path, f"port {record.get('port')!r} is not a port number")
    endpoint = record.get("endpoint")
    if not isinstance(endpoint, str) or not LOOPBACK_ENDPOINT.match(endpoint):
        raise _damaged(path, f"endpoint {endpoint!r} is not a loopback address")
    if not isinstance(record.get("state", ""), str):
        raise _damaged(path, "its state label is not text")
    return record


def _damaged(path: Path, problem: str) -> LabkitError:
    return LabkitError(f"The server record {path} is damaged ({problem}); stop any running `python -m labkit.localaws` "
                       "yourself, delete that file (your state is in the journal, not there) and run `python -m labkit up`.")


def _json_type(value) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "true or false",
            type(None): "null", dict: "an object"}[type(value)]


def local_endpoint() -> str:
    # localhost, not 127.0.0.1: S3 virtual-host addressing and the CDK CLI need a name.
    return f"http://localhost:{port()}"


def valid_prefix(prefix) -> bool:
    return isinstance(prefix, str) and PREFIX_RULE.match(prefix) is not None


def _default_prefix() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (some containers)
        user = ""
    name = re.sub(r"[^a-z0-9-]", "", user.lower())
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
    """Read the saved settings, then apply environment overrides; every value is checked here."""
    path = settings_path()
    data = _read_settings_file(path)
    settings = Settings(prefix=data.get("prefix") or _default_prefix(), region=data.get("region") or DEFAULT_REGION,
                        target=data.get("target") or "local")
    source = {"prefix": f"The prefix in {path}", "region": f"The region in {path}", "target": f"The target in {path}"}
    for field, variable in (("prefix", "LABS_PREFIX"), ("target", "LABS_TARGET")):
        if variable in os.environ:
            setattr(settings, field, os.environ[variable])
            source[field] = f"{variable}"
    if settings.target == "live":
        # Live mode follows the normal AWS chain for the region.
        for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            if os.environ.get(variable):
                settings.region, source["region"] = os.environ[variable], variable
                break
    if settings.target not in ("local", "live"):
        raise LabkitError(f"{_said(source['target'], settings.target)} is not a target; use 'local' or 'live'.")
    if not valid_prefix(settings.prefix):
        raise LabkitError(f"{_said(source['prefix'], settings.prefix)} is not a valid prefix: use {PREFIX_RULE_TEXT}.")
    if not valid_region(settings.region):
        raise LabkitError(f"{_said(source['region'], settings.region)} is not an AWS region; use one like us-east-1 or eu-west-1.")
    return settings


def _said(source: str, value) -> str:
    """``LABS_TARGET='x'`` for a variable, ``The target in FILE ('x')`` for the settings file."""
    return f"{source}={value!r}" if source.isupper() or source.startswith("AWS_") else f"{source} ({value!r})"


def _read_settings_file(path: Path) -> dict:
    fix = "fix it or delete it and run labkit.configure() again"
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise LabkitError(f"{path} cannot be read ({exc.strerror}); {fix}.") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise LabkitError(f"{path} is not valid JSON; {fix}.") from None
    if not isinstance(data, dict):
        raise LabkitError(f"{path} holds {_json_type(data)}, not the settings object; {fix}.")
    for field in ("prefix", "region", "target"):
        if data.get(field) is not None and not isinstance(data[field], str):
            raise LabkitError(f"The {field} in {path} is {_json_type(data[field])}, not text; {fix}.")
    return data


def valid_region(name) -> bool:
    return isinstance(name, str) and name in _known_regions()


@lru_cache(maxsize=1)
def _known_regions() -> frozenset[str]:
    """Every region the installed botocore knows, in every partition (China and GovCloud too).

    Read from botocore's small partitions file without importing botocore (about 0.15 s that
    `labkit start` and the notebooks' settings would pay), and not through a session, which
    would read the AWS config (and fail on an unknown AWS_PROFILE before saying anything useful).
    """
    import importlib.util

    spec = importlib.util.find_spec("botocore")
    folder = Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None
    try:
        data = json.loads((folder / "data" / "partitions.json").read_text())
        return frozenset(region for partition in data["partitions"] for region in partition["regions"])
    except (OSError, ValueError, KeyError, TypeError):  # another layout: ask botocore itself
        import botocore.loaders

        data = botocore.loaders.create_loader().load_data("endpoints")
        return frozenset(region for partition in data["partitions"] for region in partition["regions"])


def save_settings(settings: Settings) -> Path:
    if not valid_prefix(settings.prefix):
        raise LabkitError(f"Prefix {settings.prefix!r} is not valid: use {PREFIX_RULE_TEXT}.")
    return write_private(settings_path(), json.dumps(asdict(settings), indent=2) + "\n")
