"""Container images without a container engine: build a Dockerfile into an OCI image, push it to ECR.

There is no Docker engine here and no network to fetch a base image such as ``python:3.12-slim``,
so an image labkit builds holds **the app's own layers only**: the base is recorded as a reference
(the OCI ``org.opencontainers.image.base.name`` annotation), and the local task runner supplies
what the base would (the course's own Python, which has the requirements installed). The same
Dockerfile builds and runs unchanged on a Docker engine elsewhere; an image built here is for the
local AWS only, so ``push`` refuses a live account (build and push with Docker there).

Supported Dockerfile instructions: FROM (one stage, recorded as the base), ARG, ENV, WORKDIR, COPY
(from the build context, ``--chmod`` and a numeric ``--chown``), USER, EXPOSE, LABEL, CMD,
ENTRYPOINT, HEALTHCHECK, and RUN only as ``pip install ...``, which is not run but checked: every
requirement it names must be installed in the course's Python, the one the local runner uses.
Any other instruction stops the build with a sentence naming its line. See ``SUPPORTED``.

Layers are deterministic (sorted entries, fixed times and owners, gzip without a timestamp), so the
same sources give the same digest::

    from labkit import images
    image = images.build("labkit/assets/catalog-service")
    images.push(image, "123456789012.dkr.ecr.us-east-1.amazonaws.com/ada-catalog", tag="v1")
"""
from __future__ import annotations

import base64
import fnmatch
import gzip
import hashlib
import http.client
import io
import json
import os
import platform
import re
import shlex
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable
from urllib.parse import urlencode, urlparse

from .errors import LabkitError

SUPPORTED = ("FROM", "ARG", "ENV", "WORKDIR", "COPY", "USER", "EXPOSE", "LABEL", "CMD", "ENTRYPOINT",
             "HEALTHCHECK", "RUN")
SUPPORTED_SENTENCE = ("labkit builds FROM (one stage, kept as a reference), ARG, ENV, WORKDIR, COPY, USER, EXPOSE, "
                      "LABEL, CMD, ENTRYPOINT, HEALTHCHECK and RUN pip install (checked against the course's Python, "
                      "not run); build anything else with Docker.")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
BASE_ANNOTATION = "org.opencontainers.image.base.name"
REQUIREMENTS_LABEL = "dev.labkit.python-requirements"  # what the local runner's Python must have installed
EPOCH = "1970-01-01T00:00:00Z"  # every timestamp in a built image: the same sources give the same digest
CHUNK = 4 * 1024 * 1024  # a blob larger than this is pushed in PATCH chunks of this size
DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(h|ms|m|s|us|ns))+$")
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)")
NANOSECONDS = {"h": 3600e9, "m": 60e9, "s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1}


class BuildError(LabkitError):
    """A Dockerfile labkit cannot build; the sentence names the line."""


@dataclass
class BuiltImage:
    """An OCI image in memory: its manifest, config and layers, each by digest."""

    manifest: bytes
    config: bytes
    layers: list[tuple[str, bytes]]  # (digest, gzip bytes), lowest first
    base: str | None = None
    files: int = 0

    @property
    def digest(self) -> str:
        return _digest(self.manifest)

    @property
    def config_digest(self) -> str:
        return _digest(self.config)

    @property
    def size(self) -> int:
        return len(self.manifest) + len(self.config) + sum(len(b) for _, b in self.layers)

    def blobs(self) -> list[tuple[str, bytes]]:
        """The blobs a push sends before the manifest: layers first, then the config."""
        return list(self.layers) + [(self.config_digest, self.config)]

    def save(self, folder: Path) -> Path:
        """Write the image as an OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/``)."""
        folder = Path(folder)
        (folder / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        for digest, data in self.blobs() + [(self.digest, self.manifest)]:
            (folder / "blobs" / "sha256" / digest.split(":", 1)[1]).write_bytes(data)
        (folder / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": [{"mediaType": OCI_MANIFEST, "digest": self.digest, "size": len(self.manifest)}]}
        (folder / "index.json").write_text(json.dumps(index, indent=2))
        return folder

    @classmethod
    def load(cls, folder: Path) -> "BuiltImage":
        """An image saved with ``save`` (an OCI image layout with one manifest)."""
        folder = Path(folder)
        try:
            index = json.loads((folder / "index.json").read_text())
            blob = lambda d: (folder / "blobs" / "sha256" / d.split(":", 1)[1]).read_bytes()  # noqa: E731
            manifest = blob(index["manifests"][0]["digest"])
            parsed = json.loads(manifest)
            layers = [(layer["digest"], blob(layer["digest"])) for layer in parsed["layers"]]
            return cls(manifest, blob(parsed["config"]["digest"]), layers,
                       (parsed.get("annotations") or {}).get(BASE_ANNOTATION))
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise LabkitError(f"{folder} is not an OCI image layout labkit saved ({exc}).") from None


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(data) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


# -- the Dockerfile -----------------------------------------------------------------------

@dataclass
class Instruction:
    line: int
    keyword: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Instructions with their first line number: comments dropped, continuation lines joined."""
    out: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if pending and line.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if pending:
            line = line.lstrip()  # a continued line's indent is layout, not part of the instruction
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        keyword, _, args = whole.partition(" ")
        out.append(Instruction(start, keyword.upper(), args.strip()))
    if pending.strip():
        keyword, _, args = pending.strip().partition(" ")
        out.append(Instruction(start, keyword.upper(), args.strip()))
    return out


def _exec_form(args: str) -> list[str] | None:
    if not args.startswith("["):
        return None
    try:
        value = json.loads(args)
    except ValueError:
        return None
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


VARIABLE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<op>[-+])(?P<word>[^}]*))?\}"
                      r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")


def substitute(text: str, values: dict) -> str:
    """Docker's variable forms: $NAME, ${NAME}, ${NAME:-default}, ${NAME:+alternative}."""
    def one(found):
        name = found.group("braced") or found.group("plain")
        value = values.get(name)
        op = found.group("op")
        if op == "-":
            return value if value else found.group("word")
        if op == "+":
            return found.group("word") if value else ""
        return value or ""
    return VARIABLE.sub(one, text.replace("\\$", "\0")).replace("\0", "$")


def _pairs(args: str, where: str, values: dict | None = None) -> list[tuple[str, str]]:
    """``key=value ...`` (quotes allowed), or the legacy one-pair ``key value``."""
    try:
        words = shlex.split(args)
    except ValueError as exc:
        raise BuildError(f"{where}: {exc}.") from None
    if words and "=" not in words[0]:
        value = args.split(None, 1)[1] if len(args.split(None, 1)) > 1 else ""
        return [(words[0], substitute(value, values or {}))]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise BuildError(f"{where}: {word!r} is not key=value.")
        pairs.append((key, substitute(value, values or {})))
    return pairs


def _nanoseconds(text: str, where: str) -> int:
    if not DURATION.match(text):
        raise BuildError(f"{where}: {text!r} is not a duration like 30s, 1m30s or 500ms.")
    return int(sum(float(n) * NANOSECONDS[unit] for n, unit in DURATION_PART.findall(text)))


# -- the build context ----------------------------------------------------------------------

def _ignore_rules(context: Path) -> list[tuple[bool, str]]:
    path = context / ".dockerignore"
    if not path.is_file():
        return []
    rules = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:].strip() if negate else line
        rules.append((negate, os.path.normpath(pattern.lstrip("/")).replace(os.sep, "/")))
    return rules


def _ignored(relative: str, rules: list[tuple[bool, str]]) -> bool:
    """Docker's .dockerignore: the last matching rule decides; a pattern matching a folder covers what it holds."""
    result = False
    parts = relative.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for negate, pattern in rules:
        regex = _ignore_regex(pattern)
        if any(regex.match(p) for p in prefixes):
            result = not negate
    return result


def _ignore_regex(pattern: str) -> re.Pattern:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        else:
            c = pattern[i]
            out += "[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c)
            i += 1
    return re.compile(f"^{out}$")


def _sources(context: Path, pattern: str, rules, where: str) -> list[tuple[Path, str]]:
    """(file, path relative to the source's own root) for one COPY source, folders walked."""
    relative = os.path.normpath(pattern.lstrip("/"))
    if relative == ".." or relative.startswith("../"):
        raise BuildError(f"{where}: {pattern!r} is outside the build context.")
    matches = sorted(context.glob(relative)) if any(c in relative for c in "*?[") else [context / relative]
    matches = [m for m in matches if m.exists() and not _ignored(m.relative_to(context).as_posix(), rules)]
    if not matches:
        raise BuildError(f"{where}: {pattern!r} is not in the build context {context}.")
    out: list[tuple[Path, str]] = []
    for match in matches:
        if match.resolve() != context.resolve() and context.resolve() not in match.resolve().parents:
            raise BuildError(f"{where}: {pattern!r} leads outside the build context.")
        if match.is_dir():
            for path in sorted(match.rglob("*")):
                rel = path.relative_to(context).as_posix()
                if path.is_symlink() or not path.is_file() or _ignored(rel, rules):
                    continue
                out.append((path, path.relative_to(match).as_posix()))
        else:
            out.append((match, match.name))
    return out


# -- layers ---------------------------------------------------------------------------------

def _layer(files: dict[str, tuple[bytes, int]], owner: tuple[int, int]) -> tuple[bytes, bytes]:
    """(gzip bytes, uncompressed tar bytes) for ``files`` (image path -> (bytes, mode)): folders first, sorted."""
    folders = set()
    for path in files:
        parent = PurePosixPath(path).parent
        while str(parent) not in ("/", "."):
            folders.add(str(parent).lstrip("/"))
            parent = parent.parent
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name in sorted(folders):
            info = tarfile.TarInfo(name + "/")
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            archive.addfile(info)
        for path in sorted(files):
            data, mode = files[path]
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), mode, 0
            info.uid, info.gid = owner
            archive.addfile(info, io.BytesIO(data))
    tar = raw.getvalue()
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0, filename="", compresslevel=6) as gz:
        gz.write(tar)
    return packed.getvalue(), tar


# -- RUN pip install --------------------------------------------------------------------------

PIP = re.compile(r"^(?:python3?(?:\.\d+)?\s+-m\s+)?pip3?\s+install\s+(?P<args>.*)$")
PIP_FLAGS_WITH_VALUE = ("-i", "--index-url", "--extra-index-url", "-c", "--constraint", "-f", "--find-links",
                        "--target", "-t", "--prefix", "--root", "--progress-bar")


def _pip_requirements(args: str, where: str, copied: dict[str, bytes], workdir: str) -> list[str]:
    words = shlex.split(args)
    found: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("-r", "--requirement"):
            if i + 1 >= len(words):
                raise BuildError(f"{where}: -r names no file.")
            path = str(PurePosixPath(workdir) / words[i + 1])
            path = os.path.normpath(path)
            if path not in copied:
                raise BuildError(f"{where}: {words[i + 1]} is not in the image yet; COPY it before this RUN.")
            for line in copied[path].decode("utf-8", "replace").splitlines():
                line = line.split("#", 1)[0].strip()
                if line and not line.startswith("-"):
                    found.append(line)
            i += 2
            continue
        if word in PIP_FLAGS_WITH_VALUE:
            i += 2
            continue
        if not word.startswith("-"):
            found.append(word)
        i += 1
    return found


def _check_installed(requirements: list[str], where: str) -> None:
    from importlib import metadata

    from packaging.requirements import InvalidRequirement, Requirement

    for text in requirements:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            raise BuildError(f"{where}: {text!r} is not a requirement pip understands.") from None
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            version = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            raise BuildError(f"{where}: {requirement.name} is not installed in the course's Python, which the local "
                             f"task runner uses instead of the image's; install it with pip and build again.") from None
        if requirement.specifier and not requirement.specifier.contains(version, prereleases=True):
            raise BuildError(f"{where}: the course's Python has {requirement.name} {version}, which does not satisfy "
                             f"{text!r}; change the requirement or install a matching version.")


# -- build -------------------------------------------------------------------------------------

def _architecture() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


def build(context_dir, dockerfile: str = "Dockerfile", build_args: dict | None = None,
          progress: Callable[[str], None] | None = None) -> BuiltImage:
    """Build ``context_dir``'s Dockerfile into an OCI image (see the module's text for what it supports)."""
    context = Path(context_dir)
    if not context.is_dir():
        raise BuildError(f"The build context {context} is not a folder.")
    path = context / dockerfile
    if not path.is_file():
        raise BuildError(f"There is no {dockerfile} in {context}.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildError(f"{path} cannot be read ({exc}).") from None
    say = progress or (lambda sentence: None)
    rules = _ignore_rules(context)
    given = dict(build_args or {})
    args: dict[str, str] = {}  # ARGs in scope
    env: list[tuple[str, str]] = []
    config: dict = {}
    labels: dict[str, str] = {}
    layers: list[tuple[str, bytes]] = []
    diff_ids: list[str] = []
    history: list[dict] = []
    copied: dict[str, bytes] = {}  # image path -> bytes, for RUN pip install -r
    requirements: list[str] = []
    base: str | None = None
    before_from: dict[str, str] = {}
    workdir = "/"
    files = 0
    for step in parse(text):
        where = f"{path.name} line {step.line} ({step.keyword})"
        values = {**args, **dict(env)}
        keyword = step.keyword
        if keyword not in SUPPORTED:
            raise BuildError(f"{where}: {keyword} is not supported here; {SUPPORTED_SENTENCE}")
        if keyword != "FROM" and keyword != "ARG" and base is None:
            raise BuildError(f"{where}: the first instruction must be FROM (ARG may come before it).")
        if keyword == "FROM":
            if base is not None:
                raise BuildError(f"{where}: a second FROM (a multi-stage build) is not supported; {SUPPORTED_SENTENCE}")
            words = substitute(step.args, values).split()
            words = [w for w in words if not w.startswith("--platform")]
            if not words:
                raise BuildError(f"{where}: FROM names no base image.")
            base = _qualified(words[0])
            before_from, args = args, {}  # ARGs before FROM are for FROM, and for a bare ARG NAME after it
            history.append({"created": EPOCH, "created_by": f"FROM {base} (the base is a reference: its layers are "
                                                             "not in this image)", "empty_layer": True})
            continue
        if keyword == "ARG":
            name, sep, default = step.args.partition("=")
            name = name.strip()
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                raise BuildError(f"{where}: {name!r} is not an ARG name.")
            inherited = before_from.get(name, "") if base is not None else ""
            args[name] = str(given.get(name, substitute(default.strip().strip('"'), values) if sep else inherited))
            continue
        if keyword == "ENV":
            for key, value in _pairs(step.args, where, values):
                env = [(k, v) for k, v in env if k != key] + [(key, value)]
                values[key] = value
        elif keyword == "LABEL":
            labels.update(_pairs(step.args, where, values))
        elif keyword == "WORKDIR":
            workdir = os.path.normpath(str(PurePosixPath(workdir) / substitute(step.args, values)))
            config["WorkingDir"] = workdir
        elif keyword == "USER":
            config["User"] = substitute(step.args, values).strip()
        elif keyword == "EXPOSE":
            ports = config.setdefault("ExposedPorts", {})
            for port in substitute(step.args, values).split():
                number, _, proto = port.partition("/")
                if not number.isdigit() or not 0 < int(number) < 65536 or proto not in ("", "tcp", "udp"):
                    raise BuildError(f"{where}: {port!r} is not a port like 8080 or 8080/tcp.")
                ports[f"{int(number)}/{proto or 'tcp'}"] = {}
        elif keyword in ("CMD", "ENTRYPOINT"):
            form = _exec_form(step.args)
            config["Cmd" if keyword == "CMD" else "Entrypoint"] = form if form is not None else ["/bin/sh", "-c", step.args]
        elif keyword == "HEALTHCHECK":
            config["Healthcheck"] = _healthcheck(step.args, where)
        elif keyword == "RUN":
            command = " ".join(_exec_form(step.args) or [step.args])
            found = PIP.match(command.strip())
            if not found or any(sep in command for sep in ("&&", ";", "|", "`", "$(")):
                raise BuildError(f"{where}: RUN is supported only as a single `pip install ...`, because labkit "
                                 f"builds without a container engine and cannot run commands; {SUPPORTED_SENTENCE}")
            named = _pip_requirements(found.group("args"), where, copied, workdir)
            _check_installed(named, where)
            requirements += [r for r in named if r not in requirements]
            history.append({"created": EPOCH, "created_by": f"RUN {step.args} (not run: the course's Python has "
                                                             "these requirements)", "empty_layer": True})
            continue
        elif keyword == "COPY":
            layer_files, owner = _copy(context, substitute(step.args, values), rules, where, workdir)
            if not layer_files:
                raise BuildError(f"{where}: the sources copy no files.")
            packed, tar = _layer(layer_files, owner)
            digest = _digest(packed)
            layers.append((digest, packed))
            diff_ids.append(_digest(tar))
            copied.update({os.path.normpath("/" + k.lstrip("/")): v[0] for k, v in layer_files.items()})
            files += len(layer_files)
            history.append({"created": EPOCH, "created_by": f"COPY {step.args}"})
            say(f"{where}: {len(layer_files)} file(s), layer {digest[:19]} ({len(packed):,} bytes)")
            continue
        history.append({"created": EPOCH, "created_by": f"{keyword} {step.args}", "empty_layer": True})
    if base is None:
        raise BuildError(f"{path} has no FROM instruction.")
    if env:
        config["Env"] = [f"{k}={v}" for k, v in env]
    if requirements:
        labels[REQUIREMENTS_LABEL] = " ".join(requirements)
    if labels:
        config["Labels"] = labels
    document = {"created": EPOCH, "architecture": _architecture(), "os": "linux", "config": config,
                "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": history}
    config_bytes = _json(document)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": _digest(config_bytes), "size": len(config_bytes)},
                "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": len(b)} for d, b in layers],
                "annotations": {BASE_ANNOTATION: base}}
    image = BuiltImage(_json(manifest), config_bytes, layers, base, files)
    say(f"built {image.digest} ({len(layers)} layer(s), {image.size:,} bytes; base {base} kept as a reference)")
    return image


def _qualified(reference: str) -> str:
    """A base image as Docker would name it in full: ``python:3.12-slim`` is ``docker.io/library/python:3.12-slim``."""
    first, sep, _ = reference.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return reference
    return f"docker.io/{reference if sep else 'library/' + reference}"


def _copy(context: Path, args: str, rules, where: str, workdir: str):
    words = _exec_form(args)
    if words is None:
        try:
            words = shlex.split(args)
        except ValueError as exc:
            raise BuildError(f"{where}: {exc}.") from None
    chmod, owner = None, (0, 0)
    while words and words[0].startswith("--"):
        flag, _, value = words.pop(0).partition("=")
        if flag == "--chmod" and re.match(r"^[0-7]{3,4}$", value):
            chmod = int(value, 8)
        elif flag == "--chown" and re.match(r"^\d+(?::\d+)?$", value):
            uid, _, gid = value.partition(":")
            owner = (int(uid), int(gid or uid))
        elif flag == "--chown":
            raise BuildError(f"{where}: --chown={value} names users by name, which need the base image's "
                             "/etc/passwd; use numeric ids like --chown=10001:10001.")
        else:
            raise BuildError(f"{where}: {flag} is not supported here (COPY takes --chmod=OCTAL and a numeric "
                             "--chown=UID:GID, from the build context).")
    if len(words) < 2:
        raise BuildError(f"{where}: COPY needs at least one source and a destination.")
    *patterns, dest = words
    dest_path = dest if dest.startswith("/") else str(PurePosixPath(workdir) / dest)
    into_folder = dest.endswith("/") or dest in (".", "./") or len(patterns) > 1
    out: dict[str, tuple[bytes, int]] = {}
    for pattern in patterns:
        sources = _sources(context, pattern, rules, where)
        single_file = len(sources) == 1 and not (context / pattern.lstrip("/")).is_dir() and not any(
            c in pattern for c in "*?[")
        for source, relative in sources:
            if single_file and not into_folder:
                target = dest_path
            else:
                target = str(PurePosixPath(dest_path) / relative)
            mode = chmod if chmod is not None else (0o755 if source.stat().st_mode & stat.S_IXUSR else 0o644)
            out[os.path.normpath(target).lstrip("/")] = (source.read_bytes(), mode)
    return out, owner


def _healthcheck(args: str, where: str) -> dict:
    words = args.split()
    if words and words[0].upper() == "NONE":
        return {"Test": ["NONE"]}
    check: dict = {}
    names = {"--interval": "Interval", "--timeout": "Timeout", "--start-period": "StartPeriod",
             "--start-interval": "StartInterval", "--retries": "Retries"}
    rest = args
    while rest.startswith("--"):
        option, _, rest = rest.partition(" ")
        rest = rest.lstrip()
        flag, _, value = option.partition("=")
        if flag not in names:
            raise BuildError(f"{where}: {flag} is not a HEALTHCHECK option (--interval, --timeout, --start-period, "
                             "--start-interval, --retries).")
        if flag == "--retries":
            if not value.isdigit():
                raise BuildError(f"{where}: --retries={value} is not a whole number.")
            check["Retries"] = int(value)
        else:
            check[names[flag]] = _nanoseconds(value, where)
    keyword, _, command = rest.partition(" ")
    if keyword.upper() != "CMD" or not command.strip():
        raise BuildError(f"{where}: HEALTHCHECK needs CMD and a command (or NONE).")
    form = _exec_form(command.strip())
    check["Test"] = ["CMD", *form] if form is not None else ["CMD-SHELL", command.strip()]
    return check


# -- push ------------------------------------------------------------------------------------------

REPOSITORY_URI = re.compile(r"^(?:(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com"
                            r"|(?P<local>localhost|127\.0\.0\.1)(?::(?P<port>\d+))?)/"
                            r"(?P<name>[a-z0-9][a-z0-9._/-]*?)(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9._-]{0,127}))?$")


class PushError(LabkitError):
    """The registry refused a push; the sentence says what it answered."""


def repository_parts(repository_uri: str) -> dict:
    """account, region, name and tag of an ECR repository URI; PushError for anything else."""
    found = REPOSITORY_URI.match((repository_uri or "").strip())
    if not found:
        raise PushError(f"{repository_uri!r} is not an ECR repository URI like "
                        "123456789012.dkr.ecr.us-east-1.amazonaws.com/<repository>.")
    return found.groupdict()


def push(image: BuiltImage, repository_uri: str, target=None, tag: str | None = None,
         progress: Callable[[str], None] | None = print) -> str:
    """Push ``image`` to the local ECR repository ``repository_uri`` (``...amazonaws.com/<repo>[:tag]``)
    over the OCI distribution API, logging in with ``ecr.get_authorization_token``; returns the digest."""
    from . import config as cfg
    from .target import Target

    parts = repository_parts(repository_uri)
    tag = tag or parts["tag"] or "latest"
    target = target or Target.from_settings()
    if target.is_live:
        raise PushError("labkit's images hold only the app's layers (no base image), so they run on the local AWS "
                        "only; on a live account build and push the same Dockerfile with Docker.")
    say = progress or (lambda sentence: None)
    region = parts["region"] or target.region
    endpoint = urlparse(target.endpoint or cfg.local_endpoint())
    port = endpoint.port or 80
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        data = target.client("ecr", region).get_authorization_token()["authorizationData"][0]
    except (ClientError, BotoCoreError) as exc:
        raise PushError(f"No ECR login could be had from {target.describe()} ({exc}).") from None
    account = parts["account"] or base64.b64decode(data["authorizationToken"]).decode().split(":", 1)[1].split("-")[0]
    registry = _Registry(endpoint.hostname or "localhost", port, f"{account}.dkr.ecr.{region}.localhost:{port}",
                         "Basic " + data["authorizationToken"])
    name = parts["name"]
    blobs = image.blobs()
    for number, (digest, blob) in enumerate(blobs, 1):
        what = "config" if digest == image.config_digest else f"layer {number}/{len(image.layers)}"
        if registry.request("HEAD", f"/v2/{name}/blobs/{digest}", ok=(200, 404))[0] == 200:
            say(f"{what} {digest[:19]} already in {name}")
            continue
        registry.upload(name, digest, blob, lambda sent, what=what, digest=digest, blob=blob: say(
            f"{what} {digest[:19]}: {sent:,} of {len(blob):,} bytes"))
    registry.request("PUT", f"/v2/{name}/manifests/{tag}", image.manifest, {"Content-Type": OCI_MANIFEST}, ok=(201,))
    say(f"pushed {name}:{tag} as {image.digest}")
    return image.digest


class _Registry:
    """A small OCI distribution client over one loopback connection."""

    def __init__(self, address: str, port: int, host: str, authorization: str):
        self.address, self.port, self.host, self.authorization = address, port, host, authorization

    def request(self, method: str, path: str, body: bytes = b"", headers: dict | None = None, ok=(200, 201, 202)):
        connection = http.client.HTTPConnection(self.address, self.port, timeout=60)
        try:
            connection.request(method, path, body=body or None, headers={
                "Host": self.host, "Authorization": self.authorization, "Content-Length": str(len(body)),
                **(headers or {})})
            response = connection.getresponse()
            data = response.read()
        except OSError as exc:
            raise PushError(f"The local registry at localhost:{self.port} did not answer ({exc}); is the local AWS "
                            "running (`python -m labkit up`)?") from None
        finally:
            connection.close()
        if response.status not in ok:
            raise PushError(_refusal(method, path, response.status, data))
        return response.status, dict(response.getheaders()), data

    def upload(self, name: str, digest: str, blob: bytes, progress: Callable[[int], None]) -> None:
        _, headers, _ = self.request("POST", f"/v2/{name}/blobs/uploads/", ok=(202,))
        location = headers.get("Location", "")
        sent = 0
        while len(blob) - sent > CHUNK:  # large blobs in chunks, each saying where it starts
            piece = blob[sent:sent + CHUNK]
            _, headers, _ = self.request("PATCH", _path(location), piece, {
                "Content-Type": "application/octet-stream", "Content-Range": f"{sent}-{sent + len(piece) - 1}"},
                ok=(202,))
            location = headers.get("Location", location)
            sent += len(piece)
            progress(sent)
        rest = blob[sent:]
        joiner = "&" if "?" in location else "?"
        self.request("PUT", _path(location) + joiner + urlencode({"digest": digest}), rest,
                     {"Content-Type": "application/octet-stream"}, ok=(201,))
        progress(len(blob))


def _path(location: str) -> str:
    parsed = urlparse(location)
    return parsed.path + (f"?{parsed.query}" if parsed.query else "")


def _refusal(method: str, path: str, status: int, data: bytes) -> str:
    try:
        first = json.loads(data)["errors"][0]
        detail = first.get("detail") or {}
        said = detail.get("message") if isinstance(detail, dict) else None
        return f"The registry refused {method} {path} ({status} {first.get('code')}): {said or first.get('message')}"
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return f"The registry refused {method} {path} with {status}: {data[:200].decode('utf-8', 'replace')}"


__all__ = ["BuiltImage", "BuildError", "PushError", "SUPPORTED", "SUPPORTED_SENTENCE", "build", "push", "parse"]
