"""Packaging Lambda code, and knowing whether what runs is what is on disk.

``package(folder)`` builds a zip that is byte-for-byte the same for the same
files (sorted names, fixed timestamps and modes), so its SHA-256 -- Lambda's
``CodeSha256`` -- identifies the source. The zip's comment names the folder
it came from; the local runner reads it to tell a learner that the deployed
code differs from the source they are editing, instead of silently running
old code. The comment changes nothing on AWS.
"""
from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from pathlib import Path

from .errors import LabkitError

COMMENT_PREFIX = b"labkit-source:"
SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}
FIXED_TIME = (2020, 1, 1, 0, 0, 0)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and not SKIP_DIRS.intersection(p.relative_to(folder).parts)
                  and p.suffix not in (".pyc",))


def package(folder: str | Path) -> bytes:
    """The folder as a deterministic zip (what ``create_function(Code={"ZipFile": ...})`` takes)."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise LabkitError(f"There is no folder {folder} to package; write the handler there first.")
    files = _files(folder)
    if not files:
        raise LabkitError(f"The folder {folder} is empty; write the handler there first.")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), FIXED_TIME)
            info.external_attr = 0o644 << 16  # readable by Lambda's runtime user
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
        archive.comment = COMMENT_PREFIX + str(folder).encode()
    return buffer.getvalue()


def code_sha256(data: bytes) -> str:
    """Lambda's CodeSha256: base64 of the zip's SHA-256 digest."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def source_of(zip_bytes: bytes) -> Path | None:
    """The folder a zip was packaged from, if ``package`` made it."""
    try:
        comment = zipfile.ZipFile(io.BytesIO(zip_bytes)).comment
    except zipfile.BadZipFile:
        return None
    if comment.startswith(COMMENT_PREFIX):
        return Path(comment[len(COMMENT_PREFIX):].decode(errors="replace"))
    return None


def changed_files(zip_bytes: bytes, folder: Path) -> list[str]:
    """Files that differ between a deployed zip and the folder on disk (added, removed or edited)."""
    archive = zipfile.ZipFile(io.BytesIO(zip_bytes))
    deployed = {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}
    on_disk = {p.relative_to(folder).as_posix(): p.read_bytes() for p in _files(folder)} if folder.is_dir() else {}
    return sorted(name for name in deployed.keys() | on_disk.keys() if deployed.get(name) != on_disk.get(name))


def drift(zip_bytes: bytes, folder: Path | None = None) -> str | None:
    """None when the deployed zip matches its source folder, else one sentence saying what changed."""
    folder = folder or source_of(zip_bytes)
    if folder is None:
        return None  # not packaged by labkit: nothing to compare with
    changed = changed_files(zip_bytes, folder)
    if not changed:
        return None
    shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
    return (f"deployed code differs from source: {shown} in {folder} changed since the last deploy; "
            "redeploy with update_function_code to run your change")


def deployed_drift(target, function_name: str, folder: str | Path) -> str | None:
    """Compare a function's CodeSha256 with the folder on disk, through the API (works live too)."""
    config = target.client("lambda").get_function_configuration(FunctionName=function_name)
    on_disk = code_sha256(package(folder))
    if config["CodeSha256"] == on_disk:
        return None
    return (f"deployed code differs from source: {function_name}'s CodeSha256 is {config['CodeSha256']}, "
            f"the folder {Path(folder)} packages to {on_disk}; redeploy with update_function_code")
