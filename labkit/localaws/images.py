"""Images in the local ECR, as the task runner needs them: found by name, unpacked into a folder.

An image is what a client pushed to the registry (``extensions/registry.py``): its manifest in moto's
ECR, its config and layers in the content-addressed store (``blobs.py``). ``resolve`` finds one by
the URI a task definition names; ``unpack`` lays its layers, in order, into a root folder, the way
an OCI runtime would (whiteouts honoured), but refuses any entry that would land outside that folder
and creates no devices, and keeps the result per digest so a second task starts at once.
"""
from __future__ import annotations

import fnmatch
import gzip
import json
import os
import re
import shutil
import tarfile
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LabkitError
from .blobs import DIGEST, Blobs

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
# What a task definition's image may say: ECR's own name, the registry endpoint's, or its region-naming alias.
IMAGE_URI = re.compile(r"^(?:(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.(?:amazonaws\.com|localhost(?::\d+)?)"
                       r"|(?:localhost|127\.0\.0\.1)(?::\d+)?)/(?P<name>[a-z0-9][a-z0-9._/-]*?)"
                       r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9._-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$")
DONE = ".labkit-unpacked"  # written last: a root without it is a half-finished unpack, redone
_unpacking = threading.Lock()


class ImageError(LabkitError):
    """The image cannot be found or used; one sentence naming what is missing."""


@dataclass
class Image:
    digest: str  # the manifest's digest (for an index, the platform manifest chosen from it)
    repository: str
    config: dict  # the image config's "config": Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts, Healthcheck
    layers: list[Path]  # the layer blobs, lowest first
    document: dict = field(default_factory=dict)  # the whole image config (rootfs, history, labels, ...)
    media_types: list[str] = field(default_factory=list)  # each layer's media type


def registry_password(account: str) -> str:
    """The password ``ecr.get_authorization_token`` hands out locally (moto's: the account's auth token)."""
    return f"{account}-auth-token"


def find_image(repository, reference: str):
    """The moto image in ``repository`` with this tag or ``sha256:`` digest, or None."""
    by_digest = reference.startswith("sha256:")
    for image in repository.images:
        if (image.get_image_digest() == reference) if by_digest else (reference in image.image_tags):
            return image
    return None


def tag_immutable(repository, tag: str) -> bool:
    """Whether ECR refuses to move ``tag`` in ``repository`` (IMMUTABLE, or IMMUTABLE_WITH_EXCLUSION outside its filters)."""
    mutability = getattr(repository, "image_tag_mutability", "MUTABLE")
    mutability = str(getattr(mutability, "value", mutability))  # moto keeps an enum
    if not mutability.startswith("IMMUTABLE"):
        return False
    filters = getattr(repository, "image_tag_mutability_exclusion_filters", None) or []
    if mutability.endswith("WITH_EXCLUSION"):
        return not any(fnmatch.fnmatchcase(tag, f.get("filter", "")) for f in filters)
    return True


def parse_uri(image: str) -> dict:
    found = IMAGE_URI.match((image or "").strip())
    if not found:
        raise ImageError(f"{image!r} is not an image in the local ECR; name it as "
                         "<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag> (or @sha256:<digest>).")
    parts = found.groupdict()
    if not parts["tag"] and not parts["digest"]:
        parts["tag"] = "latest"
    return parts


def resolve(host, image: str) -> Image:
    """The image ``image`` names, from the local AWS ``host`` (its moto ECR and its blob store)."""
    from ..config import LOCAL_ACCOUNT_ID

    parts = parse_uri(image)
    account = parts["account"] or LOCAL_ACCOUNT_ID
    name, reference = parts["name"], parts["digest"] or parts["tag"]
    blobs = Blobs(host.state_dir)

    def look():
        from moto.ecr.models import ecr_backends

        regions = [parts["region"]] if parts["region"] else sorted(
            r for r, b in ecr_backends[account].items() if name in b.repositories)
        for region in regions:
            repository = ecr_backends[account][region].repositories.get(name)
            if repository is None:
                continue
            found = find_image(repository, reference)
            if found is None:
                return region, True, None
            return region, True, (found.get_image_digest(), found.image_manifest, repository)
        return (regions[0] if regions else parts["region"]), False, None

    region, exists, found = host.read_backend(look)
    where = f"in {region}" if region else "in any region"
    if not exists:
        raise ImageError(f"The ECR repository {name} does not exist {where}; create it and push the image first.")
    if found is None:
        raise ImageError(f"The ECR repository {name} has no image {reference}; push it first.")
    digest, text, repository = found
    manifest = json.loads(text)
    if manifest.get("manifests") is not None:  # an index: the platform this machine runs
        digest = _platform_child(manifest, name)
        child = host.read_backend(lambda: find_image(repository, digest))
        if child is None:
            raise ImageError(f"The image index {reference} in {name} names {digest}, which the repository lacks.")
        manifest = json.loads(child.image_manifest)
    config_digest = (manifest.get("config") or {}).get("digest", "")
    missing = [d for d in [config_digest] + [layer.get("digest", "") for layer in manifest.get("layers", [])]
               if not blobs.has(d)]
    if missing:
        raise ImageError(f"The image {name}@{digest} names blob {missing[0]}, which the local registry does not "
                         "hold; push the image again.")
    document = json.loads(blobs.read(config_digest))
    layers = manifest.get("layers", [])
    return Image(digest=digest, repository=name, config=document.get("config") or {},
                 layers=[blobs.path(layer["digest"]) for layer in layers], document=document,
                 media_types=[layer.get("mediaType", "") for layer in layers])


def _platform_child(index: dict, name: str) -> str:
    import platform

    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), platform.machine())
    children = [m for m in index.get("manifests", []) if isinstance(m, dict) and DIGEST.match(m.get("digest", ""))]
    for child in children:
        wanted = child.get("platform") or {}
        if wanted.get("os", "linux") == "linux" and wanted.get("architecture") == arch:
            return child["digest"]
    if not children:
        raise ImageError(f"The image index in {name} lists no manifests.")
    return children[0]["digest"]


# -- unpacking -------------------------------------------------------------------------------

def unpack(image: Image, dest: Path) -> Path:
    """Lay ``image``'s layers into ``dest/<digest hex>/rootfs`` (once per digest); returns that root."""
    folder = Path(dest) / image.digest.split(":", 1)[-1]
    root = folder / "rootfs"
    with _unpacking:
        if (folder / DONE).is_file():
            return root
        shutil.rmtree(folder, ignore_errors=True)
        work = Path(dest) / f".{folder.name}.partial"
        shutil.rmtree(work, ignore_errors=True)
        (work / "rootfs").mkdir(parents=True, mode=0o755)  # a task may run as another, unprivileged user
        try:
            for number, layer in enumerate(image.layers, 1):
                _apply_layer(work / "rootfs", layer, f"layer {number} of {image.repository}@{image.digest}")
            (work / DONE).write_text(image.digest + "\n")
            os.replace(work, folder)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    return root


def _open_layer(path: Path):
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic[:2] == b"\x1f\x8b":
        return tarfile.open(fileobj=gzip.open(path, "rb"), mode="r|")
    if magic == b"\x28\xb5\x2f\xfd":
        raise ImageError(f"The layer {path.name} is zstd-compressed, which the local runner does not unpack; "
                         "push it with gzip layers.")
    return tarfile.open(path, mode="r|")


def _apply_layer(root: Path, layer: Path, what: str) -> None:
    try:
        archive = _open_layer(layer)
        with archive:
            for member in archive:
                _apply_member(root, archive, member, what)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, ImageError):
            raise
        raise ImageError(f"The {what} is not a readable layer archive ({exc}).") from None


def _relative(name: str, what: str) -> list[str]:
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ImageError(f"The {what} holds {name!r}, a path outside the image's root; the image is refused.")
    return parts


def _inside(root: Path, parts: list[str], what: str, name: str) -> Path:
    """``root``/``parts`` with every symlink among the parents followed as if ``root`` were ``/``
    (so a link to ``/`` or ``..`` cannot carry a later entry out of ``root``)."""
    current: list[str] = []
    pending = list(parts[:-1])
    hops = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if current:
                current.pop()
            continue
        candidate = root.joinpath(*current, part)
        if candidate.is_symlink():
            hops += 1
            if hops > 40:
                raise ImageError(f"The {what} holds {name!r} behind a loop of symlinks; the image is refused.")
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = []
            pending = target.split("/") + pending
            continue
        current.append(part)
    resolved = root.joinpath(*current, *parts[-1:])
    if os.path.commonpath([str(root), str(resolved)]) != str(root):
        raise ImageError(f"The {what} holds {name!r}, a path outside the image's root; the image is refused.")
    return resolved


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _apply_member(root: Path, archive, member: tarfile.TarInfo, what: str) -> None:
    parts = _relative(member.name, what)
    if not parts:
        return
    base = parts[-1]
    if base.startswith(".wh."):  # a whiteout: this layer deletes what lower layers put there
        parent = _inside(root, parts[:-1] + ["x"], what, member.name).parent
        if base == ".wh..wh..opq":
            if parent.is_dir() and not parent.is_symlink():
                for child in parent.iterdir():
                    _remove(child)
        else:
            victim = parent / base[len(".wh."):]
            if victim.exists() or victim.is_symlink():
                _remove(victim)
        return
    path = _inside(root, parts, what, member.name)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    mode = member.mode & 0o777  # no setuid/setgid/sticky bits on the host
    if member.isdir():
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            _remove(path)
        path.mkdir(exist_ok=True, mode=0o755)
        os.chmod(path, mode | 0o700)
        return
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
    if member.issym():
        os.symlink(member.linkname, path)
    elif member.islnk():
        target = _inside(root, _relative(member.linkname, what) or ["."], what, member.linkname)
        if not target.is_file() or target.is_symlink():
            raise ImageError(f"The {what} links {member.name!r} to {member.linkname!r}, which is no file in the image.")
        os.link(target, path)
    elif member.isreg():
        source = archive.extractfile(member)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(source, out)
        os.chmod(path, mode | 0o600)
    # devices, fifos and other special files are not created: a task is an ordinary process here


def read_layer_names(layer: Path) -> list[str]:
    """The entry names of one layer (for tests and for showing what an image holds)."""
    with _open_layer(layer) as archive:
        return [m.name for m in archive]
