"""Finding a container's image in the local ECR: ``labkit.localaws.images`` when it is there.

The registry (``images.py``: manifests in moto's ECR, blobs under ``<state>/registry/blobs``)
is its own module. Until it is present this file reads the same layout itself, only what
a task needs: the manifest that ECR holds for the tag or digest, its config, its layers
unpacked in order into a root folder (whiteouts honoured, nothing outside the folder,
no devices or links out), cached per digest.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import threading
from dataclasses import dataclass
from pathlib import Path

try:
    from ... import images as _images  # the registry, when it is part of the local AWS
except ImportError:
    _images = None

REFERENCE = re.compile(r"^(?P<registry>[^/]+)/(?P<repository>[a-z0-9][a-z0-9._/-]*?)(?::(?P<tag>[\w][\w.-]{0,127}))?"
                       r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?$")
_unpacking = threading.Lock()


class ImageError(Exception):
    """The image cannot be pulled; the message is the reason, as ECS's CannotPullContainerError gives it."""


@dataclass
class Image:
    digest: str
    repository: str
    config: dict
    layers: list[Path]


def resolve(host, image: str):
    """The image ``image`` names (an ECR URI with a tag or a digest), or ImageError."""
    if _images is not None:
        try:
            return _images.resolve(host, image)
        except _images.ImageError as exc:  # ECS names the reference it could not pull, then why
            raise ImageError(f"pull image manifest has been retried 1 time(s): failed to resolve ref {image}: "
                             f"{exc}") from None
    match = REFERENCE.match(image or "")
    registry = match and match.group("registry")
    if not match or not (".dkr.ecr." in registry or registry.startswith(("localhost", "127.0.0.1"))):
        raise ImageError(f"pull image manifest has been retried 1 time(s): failed to resolve ref {image}: "
                         "the local AWS runs images from its own ECR only")
    repository, tag, digest = match.group("repository"), match.group("tag"), match.group("digest")
    account = registry.split(".")[0] if ".dkr.ecr." in registry else None
    region = registry.split(".")[3] if ".dkr.ecr." in registry else None
    if not tag and not digest:
        tag = "latest"
    found = host.read_backend(lambda: _find(account, region, repository, tag, digest))
    if found is None:
        raise ImageError(f"pull image manifest has been retried 1 time(s): failed to resolve ref {image}: "
                         f"{image}: not found")
    manifest_text, stored_digest = found
    manifest_bytes = manifest_text.encode() if isinstance(manifest_text, str) else manifest_text
    actual = "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
    if digest and actual != digest:
        raise ImageError(f"pull image manifest has been retried 1 time(s): {image}: the manifest ECR holds has "
                         f"digest {actual}, not {digest}")
    manifest = json.loads(manifest_bytes)
    blobs = host.state_dir / "registry" / "blobs"
    config = json.loads(_blob(blobs, manifest["config"]["digest"]).read_bytes())
    layers = [_blob(blobs, layer["digest"]) for layer in manifest.get("layers", [])]
    return Image(stored_digest or actual, repository, config.get("config") or {}, layers)


def _find(account, region, repository, tag, digest):
    from moto.ecr.models import ecr_backends

    from ....config import LOCAL_ACCOUNT_ID

    backend = ecr_backends[account or LOCAL_ACCOUNT_ID][region or "us-east-1"]
    repo = backend.repositories.get(repository)
    if repo is None:
        return None
    for stored in reversed(repo.images):
        # The digest is the sha256 of the manifest's bytes as pushed (what a registry reports).
        text = stored.image_manifest or ""
        actual = "sha256:" + hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()
        if (digest and digest in (actual, stored.image_digest)) or (tag and tag in (stored.image_tags or [])):
            return text, actual
    return None


def _blob(blobs: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    path = blobs / algorithm / hexdigest
    if algorithm != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", hexdigest) or not path.is_file():
        raise ImageError(f"pull image manifest has been retried 1 time(s): blob {digest} is not in the local registry")
    return path


def unpack(image, dest: Path) -> Path:
    """The image's layers, in order, in a root folder under ``dest`` (kept per digest)."""
    if _images is not None:
        try:
            return _images.unpack(image, dest)
        except _images.ImageError as exc:
            raise ImageError(str(exc)) from None
    root = dest / image.digest.replace(":", "-")
    with _unpacking:
        if root.is_dir():
            return root
        partial = dest / f".{root.name}.{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for layer in image.layers:
            _apply(layer, partial)
        partial.chmod(0o755)
        partial.rename(root)
    return root


def _apply(layer: Path, root: Path) -> None:
    with tarfile.open(layer) as tar:  # gzip or plain, as the media type allows
        for member in tar.getmembers():
            name = os.path.normpath(member.name.lstrip("/"))
            if name.startswith(".."):
                continue
            folder, base = os.path.split(name)
            if base == ".wh..wh..opq":  # opaque directory: what lower layers put there is gone
                target = root / folder
                if target.is_dir():
                    for child in target.iterdir():
                        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
                continue
            if base.startswith(".wh."):
                gone = root / folder / base[len(".wh."):]
                if gone.is_dir() and not gone.is_symlink():
                    shutil.rmtree(gone)
                elif gone.exists() or gone.is_symlink():
                    gone.unlink()
                continue
            member.name = name
            try:
                tar.extract(member, root, filter="data")  # no devices, no paths or links outside the root
            except (tarfile.FilterError, OSError):
                continue
