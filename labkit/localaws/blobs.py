"""The registry's content-addressed store: every blob (layer, config) a client pushed, by digest.

Blobs live under ``<state dir>/registry/blobs/sha256/<hex>``, owner-only, each written aside and
renamed into place only once its bytes hash to its name, so a file there is always whole and what
its name says. Manifests are not here: they live in moto's ECR (journaled); a blob is never deleted
while the server runs, so a snapshot or the state before a reset that names it can still be restored.
Uploads in progress are files under ``registry/uploads/`` named by a random id; they are not state
(a push interrupted by ``down`` starts again) and are removed when the server starts.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
from pathlib import Path

from .journal import _sync_folder

DIGEST = re.compile(r"^sha256:(?P<hex>[0-9a-f]{64})$")
UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


class BlobError(Exception):
    """A digest that is malformed, or bytes that do not match the digest they were sent with."""


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_digest(digest: str) -> str:
    """The hex part of a ``sha256:<64 hex>`` digest; BlobError for anything else (the only algorithm ECR takes)."""
    found = DIGEST.match(digest or "")
    if not found:
        raise BlobError(f"{digest!r} is not a sha256 digest (sha256: and 64 lower-case hex digits).")
    return found.group("hex")


class Blobs:
    """The store in one state folder."""

    def __init__(self, state_dir: Path):
        self.root = Path(state_dir) / "registry"
        self.folder = self.root / "blobs" / "sha256"
        self.uploads = self.root / "uploads"

    def _ready(self) -> None:
        for folder in (self.root, self.folder.parent, self.folder, self.uploads):
            folder.mkdir(mode=0o700, exist_ok=True)

    def path(self, digest: str) -> Path:
        return self.folder / check_digest(digest)

    def has(self, digest: str) -> bool:
        try:
            return self.path(digest).is_file()
        except BlobError:
            return False

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def read(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def put(self, data: bytes, digest: str | None = None) -> str:
        """Store ``data``; BlobError if ``digest`` is given and the bytes do not hash to it. Returns the digest."""
        actual = sha256_digest(data)
        if digest is not None and actual != digest:
            check_digest(digest)
            raise BlobError(f"the bytes sent hash to {actual}, not to {digest}")
        if self.has(actual):
            return actual
        self._ready()
        aside = self.uploads / f"{secrets.token_hex(16)}.put"
        _write_private(aside, data)
        self._settle(aside, actual)
        return actual

    def _settle(self, aside: Path, digest: str) -> None:
        os.replace(aside, self.path(digest))  # atomic: the name appears only with whole, verified bytes
        _sync_folder(self.folder)

    # -- uploads: a session id, chunks appended in order, then the digest -------------------------
    def start_upload(self) -> str:
        self._ready()
        upload = secrets.token_hex(16)
        _write_private(self.uploads / upload, b"")
        return upload

    def upload_path(self, upload: str) -> Path | None:
        if not UPLOAD_ID.match(upload or ""):
            return None
        path = self.uploads / upload
        return path if path.is_file() else None

    def upload_size(self, upload: str) -> int | None:
        path = self.upload_path(upload)
        return None if path is None else path.stat().st_size

    def append(self, upload: str, data: bytes, start: int | None = None) -> int:
        """Add a chunk; ``start`` (from Content-Range) must be where the upload ends. Returns the new size."""
        path = self.upload_path(upload)
        if path is None:
            raise KeyError(upload)
        size = path.stat().st_size
        if start is not None and start != size:
            raise BlobError(f"the chunk starts at byte {start}, but the upload holds {size} bytes")
        with open(path, "ab") as handle:
            handle.write(data)
        return size + len(data)

    def finish(self, upload: str, digest: str) -> str:
        """Verify the whole upload against ``digest`` and store it; the upload ends either way."""
        path = self.upload_path(upload)
        if path is None:
            raise KeyError(upload)
        check_digest(digest)
        hasher = hashlib.sha256()
        with open(path, "rb") as handle:
            for piece in iter(lambda: handle.read(1 << 20), b""):
                hasher.update(piece)
        actual = "sha256:" + hasher.hexdigest()
        if actual != digest:
            path.unlink(missing_ok=True)
            raise BlobError(f"the bytes sent hash to {actual}, not to {digest}")
        _fsync_file(path)
        if self.has(digest):
            path.unlink(missing_ok=True)
        else:
            self._settle(path, digest)
        return digest

    def cancel(self, upload: str) -> bool:
        path = self.upload_path(upload)
        if path is None:
            return False
        path.unlink(missing_ok=True)
        return True

    def forget_uploads(self) -> None:
        """Unfinished uploads are not state: a new server starts without them."""
        shutil.rmtree(self.uploads, ignore_errors=True)

    def digests(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted("sha256:" + p.name for p in self.folder.iterdir() if DIGEST.match("sha256:" + p.name))


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
