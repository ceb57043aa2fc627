"""What a container runs, read from its task definition over its image config, as Docker and ECS combine them.

- the command: the definition's ``entryPoint`` replaces the image's ``Entrypoint`` (and
  then the image's ``Cmd`` is dropped, as ``docker run --entrypoint`` does); its
  ``command`` replaces the image's ``Cmd``;
- the environment: the image's ``Env``, then the definition's ``environment``, then its
  ``secrets``; the working directory and user likewise, the definition first;
- the image's files are an unpacked root folder, not a chroot: absolute paths that exist
  in the image are read from it, and the image's ``python`` is the local AWS's own Python
  (an image built without a container engine carries the service's code, not an interpreter).
"""
from __future__ import annotations

import functools
import grp
import os
import pwd
import re
import site
import sys
from pathlib import Path

from .runner import ContainerPlan, HealthCheck, LogTarget

PYTHON = re.compile(r"^(/usr(/local)?/bin/)?python(3(\.\d+)?)?$")
NOBODY = 65534


class PlanError(Exception):
    """The container cannot start; the message is ECS's stoppedReason."""


@functools.lru_cache(maxsize=1)
def task_python() -> tuple[str, tuple[str, ...], bool]:
    """(interpreter, extra sys.path, whether nobody can run it) for a container's ``python``.

    This Python when an unprivileged user can start it; as root with an interpreter nobody may
    run (one under /root), the machine's own Python of the same version with this one's
    packages on its path; failing both, this Python (then containers must run as root)."""
    if os.geteuid() != 0:
        return sys.executable, (), False
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    packages = tuple(site.getsitepackages())
    if _nobody_runs(sys.executable, ()):
        return sys.executable, (), True
    for folder in ("/usr/local/bin", "/usr/bin", "/bin"):
        candidate = os.path.join(folder, version)
        if os.path.exists(candidate) and _nobody_runs(candidate, packages):
            return candidate, packages, True
    return sys.executable, (), False


def _nobody_runs(python: str, path: tuple[str, ...]) -> bool:
    import subprocess

    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(path)} if path else {"PATH": "/usr/bin:/bin"}
    try:
        return subprocess.run([python, "-c", "import boto3"], user=NOBODY, group=NOBODY, extra_groups=[], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/",
                              timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def nobody_can_run_python() -> bool:
    return task_python()[2]


def command(definition: dict, config: dict) -> list[str]:
    entry, cmd = definition.get("entryPoint") or [], definition.get("command") or []
    if entry:
        argv = list(entry) + list(cmd)
    else:
        argv = list(config.get("Entrypoint") or []) + list(cmd or config.get("Cmd") or [])
    if not argv:
        raise PlanError("CannotStartContainerError: Error response from daemon: No command specified")
    return argv


def python_wrapper(folder: Path) -> Path:
    """A folder with ``python`` and ``python3`` that run the task Python (a script, not a link, so a
    virtual environment's packages come along)."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    for name in ("python", "python3"):
        path = folder / name
        text = f'#!/bin/sh\nexec "{task_python()[0]}" "$@"\n'
        if not path.exists() or path.read_text() != text:
            tmp = path.with_name(f".{name}.{os.getpid()}")
            tmp.write_text(text)
            tmp.chmod(0o755)
            tmp.replace(path)
    return folder


def in_root(root: Path, value: str) -> str:
    """An absolute path that exists in the image, as a path into its root folder; anything else as is."""
    if value.startswith("/") and not value.startswith("//"):
        candidate = root / value.lstrip("/")
        if candidate.exists() and _inside(root, candidate):
            return str(candidate)
    return value


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except (ValueError, OSError):
        return False


def resolve_argv(argv: list[str], root: Path) -> list[str]:
    first = task_python()[0] if PYTHON.match(argv[0]) else in_root(root, argv[0])
    return [first] + [in_root(root, a) for a in argv[1:]]


def env_list(pairs) -> dict:
    out = {}
    for item in pairs or []:
        if isinstance(item, dict):
            out[item["name"]] = str(item.get("value", ""))
        else:
            key, _, value = str(item).partition("=")
            out[key] = value
    return out


def user(spec: str | None, root: Path) -> tuple[int | None, int | None, str]:
    """(uid, gid, home) for a definition's or image's ``user`` ("name", "uid", "name:group", "uid:gid");
    names are looked up in the image's /etc/passwd, then the machine's. PlanError if unknown."""
    if not spec:
        return None, None, "/root"
    name, _, group = spec.partition(":")
    uid = gid = None
    home = "/"
    if name.isdigit():
        uid = int(name)
    else:
        entry = _passwd(root).get(name)
        if entry is None:
            try:
                found = pwd.getpwnam(name)
                entry = (found.pw_uid, found.pw_gid, found.pw_dir)
            except KeyError:
                raise PlanError(f"CannotStartContainerError: Error response from daemon: unable to find user "
                                f"{name}: no matching entries in passwd file") from None
        uid, gid, home = entry
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            try:
                gid = grp.getgrnam(group).gr_gid
            except KeyError:
                raise PlanError(f"CannotStartContainerError: Error response from daemon: unable to find group "
                                f"{group}: no matching entries in group file") from None
    return uid, gid if gid is not None else uid, home


def _passwd(root: Path) -> dict:
    out = {}
    try:
        text = (root / "etc" / "passwd").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 6 and parts[2].isdigit() and parts[3].isdigit():
            out[parts[0]] = (int(parts[2]), int(parts[3]), parts[5])
    return out


def health(definition: dict, config: dict, root: Path, rewrite) -> HealthCheck | None:
    """The definition's healthCheck (or the image's HEALTHCHECK), as a command to run."""
    check = definition.get("healthCheck")
    if check:
        argv, seconds = list(check.get("command") or []), 1.0
        interval, timeout = check.get("interval", 30), check.get("timeout", 5)
        retries, start = check.get("retries", 3), check.get("startPeriod", 0)
    else:
        image = config.get("Healthcheck") or {}
        argv, seconds = list(image.get("Test") or []), 1e-9  # Docker's image config counts nanoseconds
        interval, timeout = image.get("Interval") or 30e9, image.get("Timeout") or 5e9
        retries, start = image.get("Retries") or 3, image.get("StartPeriod") or 0
    if not argv or argv[0] == "NONE":
        return None
    if argv[0] == "CMD-SHELL":
        run = ["/bin/sh", "-c", rewrite(" ".join(argv[1:]))]
    elif argv[0] == "CMD":
        run = [rewrite(a) for a in resolve_argv(argv[1:], root)]
    else:  # ECS takes a bare command as CMD-SHELL would
        run = ["/bin/sh", "-c", rewrite(" ".join(argv))]
    return HealthCheck(run, interval=float(interval) * seconds, timeout=float(timeout) * seconds,
                       retries=int(retries), start_period=float(start) * seconds)


def port_rewriter(host_ports: dict[int, int]):
    """Loopback mode: ``localhost:8080`` in a health check means the container's own port, which lives elsewhere."""
    if not host_ports:
        return lambda text: text
    pattern = re.compile(r"\b(localhost|127\.0\.0\.1|0\.0\.0\.0):(\d+)\b")

    def rewrite(text: str) -> str:
        return pattern.sub(lambda m: f"127.0.0.1:{host_ports[int(m.group(2))]}" if int(m.group(2)) in host_ports
                           else m.group(0), text)

    return rewrite


def container(definition: dict, config: dict, root: Path, *, task_id: str, task_memory: int | None,
              extra_env: dict, secrets: dict, bin_dir: Path, shim_dir: Path | None,
              host_ports: dict[int, int], region: str, image_digest: str | None = None) -> ContainerPlan:
    """One container's plan. ``host_ports`` (loopback mode): containerPort -> loopback port;
    ``shim_dir``: the sitecustomize that applies them inside a Python process."""
    root = Path(root)
    argv = resolve_argv(command(definition, config), root)
    uid, gid, home = user(definition.get("user") or config.get("User"), root)
    if os.geteuid() == 0 and (uid is None or uid == 0):
        # A container's root is not the machine's: run it as nobody, unless this Python cannot be
        # run by nobody (an interpreter under /root), where root is the only way it runs at all.
        uid, gid = (NOBODY, NOBODY) if nobody_can_run_python() else (None, None)
    workdir = definition.get("workingDirectory") or config.get("WorkingDir") or "/"
    cwd = root / workdir.lstrip("/")
    if not _inside(root, cwd):
        raise PlanError(f"CannotStartContainerError: working directory {workdir} is outside the image")
    cwd.mkdir(parents=True, exist_ok=True)  # Docker creates a missing working directory too
    env = env_list(config.get("Env"))
    image_path = env.pop("PATH", "")
    env.update(env_list(definition.get("environment")))
    env.update(secrets)
    paths = [str(bin_dir)] + [str(root / p.lstrip("/")) for p in image_path.split(":") if p.startswith("/")
                               and (root / p.lstrip("/")).is_dir()]
    env["PATH"] = ":".join(paths + [os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")])
    python_path = [in_root(root, p) for p in env.get("PYTHONPATH", "").split(":") if p]
    python_path += [str(p) for pattern in ("usr/local/lib/python3*/site-packages", "usr/lib/python3/dist-packages")
                    for p in sorted(root.glob(pattern))]
    python_path += list(task_python()[1])
    if shim_dir is not None and host_ports:
        python_path.insert(0, str(shim_dir))
        env["LABKIT_PORT_MAP"] = ",".join(f"{inner}={outer}" for inner, outer in host_ports.items())
    if python_path:
        env["PYTHONPATH"] = ":".join(python_path)
    env.setdefault("HOME", in_root(root, home))
    env.setdefault("HOSTNAME", task_id[:12])
    env.update(extra_env)
    env.setdefault("AWS_REGION", region)
    env.setdefault("AWS_DEFAULT_REGION", region)
    ports = [int(m["containerPort"]) for m in definition.get("portMappings") or []
             if m.get("containerPort") and (m.get("protocol") or "tcp") == "tcp"]
    log_target = None
    logging = definition.get("logConfiguration") or {}
    if logging.get("logDriver") == "awslogs":
        options = logging.get("options") or {}
        prefix = options.get("awslogs-stream-prefix")
        stream = f"{prefix}/{definition['name']}/{task_id}" if prefix else task_id
        log_target = LogTarget(options.get("awslogs-group", ""), options.get("awslogs-region") or region, stream,
                               str(options.get("awslogs-create-group", "")).lower() == "true")
    memory = definition.get("memory") or task_memory
    return ContainerPlan(
        name=definition["name"], argv=argv, env=env, cwd=cwd, essential=definition.get("essential", True),
        uid=uid, gid=gid, port_mappings=ports, host_ports=dict(host_ports),
        memory_mb=int(memory) if memory else None,
        health=health(definition, config, root, port_rewriter(host_ports)), log=log_target,
        stop_timeout=float(definition.get("stopTimeout") or 30), image=definition.get("image", ""),
        image_digest=image_digest)
