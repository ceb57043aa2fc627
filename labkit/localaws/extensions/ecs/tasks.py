"""The ECS extension: tasks that moto only records are run, and DescribeTasks says what really happens.

moto keeps clusters, task definitions, services and task records (RunTask is a journaled
write answered by moto). This extension hears those writes and:

- starts each new task (``runner.py``) from the image its definition names, found in the
  local ECR (``imagestore.py``), with the definition's command, environment, ports, working
  directory, user and memory (``plan.py``);
- fetches its ``secrets`` from Secrets Manager or SSM with the execution role's credentials,
  and writes its logs with them; gives the task role's credentials to the task through the
  container credentials endpoint (``credentials.py``), so IAM holds the task to its role;
- gives an awsvpc task an address from its subnet, and its own network namespace where the
  machine allows (``netns``), else a loopback port per containerPort (``status`` says which);
- runs a bridge or host task of the EC2 launch type in its container instance's namespace, at the
  instance's address (``instances.py``); RunTask places on instances as ECS does (``ec2launch.py``);
- keeps each service's desired count and runs its deployments (``services.py``);
- writes each task's real lastStatus, health, exit codes and reasons onto moto's records
  whenever they are read, so DescribeTasks and ListTasks answer with them.

Task processes are not state: after a restart or a restore the journal brings back the
records, a task that was running is reported STOPPED (its host went away, as ECS says when
an instance is lost), and services start new ones.
"""
from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
import logging
import shutil
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from .. import Extension
from ..sessions import Clients, assume_role
from . import ec2launch, imagestore, plan as planning
from .bridge import Bridge
from .credentials import Endpoint
from .runner import Runner, TaskPlan, TaskRun

try:
    from ... import netns  # network namespaces, where the machine allows them
except ImportError:
    netns = None

log = logging.getLogger("labkit.ecs")
TARGET = "AmazonEC2ContainerServiceV20141113."
IMAGE_DIR_PREFIX = "labkit-images-"
OWNER_FILE = ".state-folder"  # which local AWS a cache belongs to, so a dead one's can be swept
SHIM = Path(__file__).with_name("shim")
LOST = "Task stopped because the local AWS that ran it stopped"
INSTANCE_ACTIONS = ("RegisterContainerInstance", "DeregisterContainerInstance", "UpdateContainerInstancesState",
                    "DeleteCluster")
ON_INSTANCE = ("bridge", "host")  # network modes whose tasks share their container instance's network


def network_mode() -> str:
    """"namespaces" when awsvpc tasks get a namespace of their own, else "loopback"."""
    try:
        return netns.mode() if netns is not None else "loopback"
    except Exception:
        return "loopback"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EcsRuntime(Extension):
    name = "ecs"
    services = ("ecs", "ec2")  # EC2: an instance that stops or terminates takes its container instance's tasks

    def __init__(self, host):
        super().__init__(host)
        self.clients = Clients(host.endpoint)
        self.credentials = Endpoint()
        self.runner = Runner(self.clients, on_change=self._task_changed)
        # Image roots live outside the private state folder: a container runs unprivileged and must
        # read its image, never the install's secret or the journal.
        tag = hashlib.sha256(str(host.state_dir.resolve()).encode()).hexdigest()[:12]
        self.image_dir = Path(tempfile.gettempdir()) / f"{IMAGE_DIR_PREFIX}{tag}"
        _sweep_image_dirs()
        self.image_dir.mkdir(mode=0o755, exist_ok=True)
        (self.image_dir / OWNER_FILE).write_text(str(host.state_dir.resolve()))
        self.bin_dir = planning.python_wrapper(self.image_dir / "bin")
        self.infos: dict[str, dict] = {}  # task ARN -> what it was started from
        self.lost: set[str] = set()  # task ARNs the journal names but no process runs
        from .instances import Hosts
        from .services import Scheduler

        self.scheduler = Scheduler(self)
        self.hosts = Hosts(self)
        _install(self)
        ec2launch.install()

    # -- hearing writes ---------------------------------------------------------------
    def written(self, service, request) -> None:
        action = (request.header("X-Amz-Target") or "").rpartition(".")[2]
        if self.host.replaying:
            return  # what ran before is not running now: restored() says so
        if service == "ec2" or action in INSTANCE_ACTIONS:
            self.hosts.sync()
        if not action:
            return
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            body = {}
        region = request.scope[0] or "us-east-1"
        if action in ("RunTask", "StartTask"):
            self.adopt_new(region)
        elif action == "StopTask":
            run = self._find(body.get("task", ""))
            if run is not None:
                # out of its target groups, drained, and only then stopped
                self.scheduler.stop_after_draining(run.arn, body.get("reason") or "Task stopped by user", "UserInitiated")
        if action in ("CreateService", "UpdateService", "DeleteService", "DeleteCluster"):
            self.scheduler.wake()

    def _find(self, ref: str) -> TaskRun | None:
        if not ref:
            return None
        return next((r for r in self.runner.all() if r.arn == ref or r.arn.endswith("/" + ref)), None)

    def adopt_new(self, region: str, started_by: str | None = None) -> list[str]:
        """Start every task moto records that nothing runs yet (called with the host's lock held)."""
        backend = _backend(region)
        started = []
        for cluster_tasks in backend.tasks.values():
            for arn, task in list(cluster_tasks.items()):
                if arn in self.infos or arn in self.lost or task.desired_status != "RUNNING":
                    continue
                self.adopt(backend, task)
                started.append(arn)
        return started

    def adopt(self, backend, task, on_stop=None) -> TaskRun:
        """Start ``task`` (a moto Task); the host's lock is held, so only reading happens here."""
        _freeze(task)
        task.last_status = "PROVISIONING"
        definition = backend.describe_task_definition(task.task_definition_arn)
        overrides = task.overrides or {}
        info = {
            "arn": task.task_arn, "id": task.id, "region": task.region_name, "account": backend.account_id,
            "cluster": task.cluster_name, "group": task.group,
            "containers": copy.deepcopy(definition.container_definitions),
            "overrides": {o.get("name"): o for o in copy.deepcopy(overrides.get("containerOverrides") or [])},
            "task_role": overrides.get("taskRoleArn") or getattr(definition, "task_role_arn", None),
            "execution_role": overrides.get("executionRoleArn") or getattr(definition, "execution_role_arn", None),
            "memory": _int(overrides.get("memory") or definition.memory),
            "network_mode": definition.network_mode or "bridge",
            "private_ip": None,
            "instance": task.container_instance_arn,
            "launch_type": task.launch_type or ("EC2" if task.container_instance_arn else "FARGATE"),
            "bindings": {},  # container name -> {containerPort: host port}, for a task on its instance's network
        }
        if definition.network_mode == "awsvpc":
            info["private_ip"] = _readdress(task)
            info["eni"] = _detail(task, "networkInterfaceId")
        elif info["network_mode"] in ON_INSTANCE and task.container_instance_arn:
            self.hosts.sync()
            host = self.hosts.get(task.container_instance_arn)
            info["private_ip"] = host.address if host is not None else None
        self.infos[task.task_arn] = info
        plan = TaskPlan(task.task_arn, [], private_ip=info["private_ip"])
        return self.runner.start(plan, prepare=lambda p: self._prepare(info, p, on_stop))

    # -- preparing a task (its start thread, outside the host's lock) --------------------
    def _prepare(self, info: dict, plan: TaskPlan, on_stop) -> None:
        region, account = info["region"], info["account"]
        exec_creds = None
        if info["execution_role"]:
            try:
                exec_creds = assume_role(self.host, account, region, info["execution_role"], info["id"])
            except Exception as exc:
                plan.failure = ("TaskFailedToStart", "ResourceInitializationError: unable to assume the execution "
                                f"role {info['execution_role']}: {exc}")
                return
        plan.log_creds = exec_creds
        extra = {"AWS_ENDPOINT_URL": self.host.endpoint, "AWS_CONFIG_FILE": "/dev/null",
                 "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true",
                 "ECS_CONTAINER_METADATA_URI_V4": "",
                 "AWS_EXECUTION_ENV": "AWS_ECS_EC2" if info["launch_type"] == "EC2" else "AWS_ECS_FARGATE"}
        extra = {k: v for k, v in extra.items() if v}
        cleanups = []
        if info["task_role"]:
            role = info["task_role"]
            grant = self.credentials.grant(role, self._role_session(account, region, role, info["id"]))
            extra.update(grant)
            cleanups.append(lambda: self.credentials.revoke(grant))
        namespace = None
        host = self.hosts.get(info["instance"]) if info["network_mode"] in ON_INSTANCE else None
        if info["network_mode"] in ON_INSTANCE and info["instance"] and host is None:
            plan.failure = ("TaskFailedToStart", f"Host EC2 (container instance {info['instance'].rsplit('/', 1)[-1]}) "
                            "is no longer registered.")
            return
        if host is not None:
            namespace = host.namespace if host.namespace is not None and host.namespace.real else None
        elif info["private_ip"] and network_mode() == "namespaces":
            try:
                namespace = netns.create(info["id"][:12], [info["private_ip"]])
                cleanups.append(namespace.delete)
                # The local AWS and the credentials endpoint, at the same loopback URLs inside.
                ports = [urlparse(self.host.endpoint).port]
                if "AWS_CONTAINER_CREDENTIALS_FULL_URI" in extra:
                    ports.append(urlparse(extra["AWS_CONTAINER_CREDENTIALS_FULL_URI"]).port)
                bridge = Bridge(netns, namespace, [p for p in ports if p])
                cleanups.append(bridge.close)
            except Exception as exc:
                log.warning("no namespace for task %s (%s): it runs on loopback ports", info["id"], exc)
                if namespace is not None:
                    namespace.delete()
                    cleanups.pop()
                namespace = None
        containers = []
        for definition in info["containers"]:
            override = info["overrides"].get(definition["name"]) or {}
            definition = _overridden(definition, override)
            try:
                image = imagestore.resolve(self.host, definition.get("image", ""))
                root = imagestore.unpack(image, self.image_dir)
            except imagestore.ImageError as exc:
                plan.failure = ("TaskFailedToStart", f"CannotPullContainerError: {exc}")
                break
            secrets = self._secrets(definition, exec_creds, region, plan)
            if plan.failure:
                break
            ports = [int(m["containerPort"]) for m in definition.get("portMappings") or [] if m.get("containerPort")]
            host_ports = {} if namespace is not None else {p: free_port() for p in ports}
            bound = {}
            if host is not None:
                try:
                    bound = self.hosts.bind(host, info["network_mode"], definition.get("portMappings") or [])
                except ValueError as exc:
                    plan.failure = ("TaskFailedToStart", "CannotStartContainerError: Error response from daemon: driver "
                                    f"failed programming external connectivity on endpoint {definition['name']}: {exc}")
                    break
                cleanups.append(lambda h=host, taken=list(bound.values()): self.hosts.unbind(h, taken))
                info["bindings"][definition["name"]] = bound
                if namespace is not None:  # bridge: the container's port is served at its host port
                    host_ports = {inner: outer for inner, outer in bound.items() if inner != outer}
                    extra = {**extra, "LABKIT_PORT_ANY_HOST": "1"}
            try:
                container = planning.container(
                    definition, image.config, root, task_id=info["id"], task_memory=info["memory"],
                    extra_env=extra, secrets=secrets, bin_dir=self.bin_dir, shim_dir=SHIM, host_ports=host_ports,
                    region=region, image_digest=image.digest)
            except planning.PlanError as exc:
                plan.failure = ("TaskFailedToStart", str(exc))
                break
            if namespace is not None:
                container.exec_prefix = namespace.exec_prefix()
            elif info["private_ip"] and netns is not None:
                for inner, outer in host_ports.items():
                    seen = bound.get(inner, inner)  # a task on its instance is reached at the host port
                    try:
                        netns.publish(info["private_ip"], seen, outer)
                        cleanups.append(lambda ip=info["private_ip"], port=seen: netns.unpublish(ip, port))
                    except Exception as exc:
                        log.warning("%s:%d not published: %s", info["private_ip"], inner, exc)
            containers.append(container)
        plan.containers = containers

        def stopped():
            for cleanup in reversed(cleanups):
                try:
                    cleanup()
                except Exception:
                    log.exception("task %s: clean-up failed", info["id"])
            if info.get("eni"):
                self.host.read_backend(lambda: _release(info["account"], region, info["eni"]))
            if on_stop is not None:
                on_stop()

        plan.on_stop = stopped

    def _role_session(self, account: str, region: str, role: str, session: str):
        cached: dict = {}

        def credentials() -> dict:
            if not cached:
                cached.update(assume_role(self.host, account, region, role, session))
            return cached

        return credentials

    def _secrets(self, definition: dict, creds: dict | None, region: str, plan: TaskPlan) -> dict:
        """The container's ``secrets``, fetched as ECS does, with the execution role."""
        wanted = definition.get("secrets") or []
        if not wanted:
            return {}
        prefix = "ResourceInitializationError: unable to pull secrets or registry auth: "
        if creds is None:
            plan.failure = ("TaskFailedToStart", prefix + "execution resource retrieval failed: the task definition "
                            "has no execution role to retrieve secrets with")
            return {}
        out = {}
        for item in wanted:
            name, source = item.get("name"), item.get("valueFrom", "")
            try:
                if source.startswith("arn:") and ":secretsmanager:" in source:
                    out[name] = self._secret_value(source, creds, region)
                else:
                    out[name] = self._parameter(source, creds, region)
            except Exception as exc:
                error = getattr(exc, "response", {}).get("Error", {})
                detail = f"{error.get('Code', type(exc).__name__)}: {error.get('Message', exc)}"
                if ":secretsmanager:" in source:
                    plan.failure = ("TaskFailedToStart", prefix + "execution resource retrieval failed: unable to "
                                    "retrieve secret from asm: service call has been retried 1 time(s): failed to "
                                    f"fetch secret {source} from secrets manager: {detail}")
                else:
                    plan.failure = ("TaskFailedToStart", prefix + "execution resource retrieval failed: unable to "
                                    f"retrieve secrets from ssm: service call has been retried 1 time(s): {detail}")
                return {}
        return out

    def _secret_value(self, source: str, creds: dict, region: str) -> str:
        parts = source.split(":")
        arn, key, stage, version = ":".join(parts[:7]), *(parts[7:10] + ["", "", ""])[:3]
        client = self.clients.get("secretsmanager", parts[3] or region, creds)
        kwargs = {"SecretId": arn}
        if version:
            kwargs["VersionId"] = version
        elif stage:
            kwargs["VersionStage"] = stage
        value = client.get_secret_value(**kwargs).get("SecretString", "")
        if key:
            try:
                return str(json.loads(value)[key])
            except (ValueError, KeyError, TypeError):
                raise LookupError(f"retrieved secret from Secrets Manager did not contain json key {key}") from None
        return value

    def _parameter(self, source: str, creds: dict, region: str) -> str:
        where = source.split(":")[3] if source.startswith("arn:") else region
        name = source.split(":parameter", 1)[1] if source.startswith("arn:") else source
        client = self.clients.get("ssm", where or region, creds)
        found = client.get_parameters(Names=[name], WithDecryption=True)
        if found.get("InvalidParameters"):
            raise LookupError(f"invalid parameters: {', '.join(found['InvalidParameters'])}")
        return found["Parameters"][0]["Value"]

    # -- what the runner tells ---------------------------------------------------------
    def _task_changed(self, run: TaskRun) -> None:
        self.scheduler.task_changed(run)

    # -- moto's records, brought up to date when read ---------------------------------------
    def sync(self, task) -> None:
        """Write what really happens to ``task`` onto moto's record (host lock held)."""
        _freeze(task)
        run = self.runner.get(task.task_arn)
        if run is None:
            if task.task_arn in self.lost or task.task_arn in self.infos:
                _lost(task)
            return
        info = self.infos.get(task.task_arn, {})
        task.last_status, task.desired_status = run.last_status, run.desired_status
        task.stopped_reason, task.stop_code = run.stopped_reason or "", run.stop_code
        task.health_status = run.health_status
        task.created_at, task.started_at = run.created_at, run.started_at
        task.stopping_at, task.stopped_at = run.stopping_at, run.stopped_at
        task.connectivity = "CONNECTED" if run.last_status in ("RUNNING", "STOPPING") else None
        task.memory = str(info["memory"]) if info.get("memory") else None
        views = []
        by_name = {c.plan.name: c for c in run.containers}
        for definition in info.get("containers", []):
            c = by_name.get(definition["name"])
            view = _View(
                container_arn=f"arn:aws:ecs:{task.region_name}:{info['account']}:container/{task.cluster_name}/"
                              f"{task.id}/{hashlib.sha256((task.id + definition['name']).encode()).hexdigest()[:36]}",
                task_arn=task.task_arn, name=definition["name"], image=definition.get("image"),
                last_status=c.last_status if c else ("STOPPED" if run.last_status == "STOPPED" else "PENDING"),
                health_status=(c.health_status if c and c.plan.health else None),
                exit_code=c.exit_code if c else None, reason=c.reason if c else None,
                image_digest=c.plan.image_digest if c else None,
                cpu=str(definition.get("cpu", 0)), memory=str(definition["memory"]) if definition.get("memory") else None,
                network_interfaces=[{"attachmentId": task.attachments[0]["id"], "privateIpv4Address": info["private_ip"]}]
                if info.get("private_ip") and task.attachments else [],
                network_bindings=_bindings(info, definition["name"], c),
                runtime_id=(f"{task.id}-{c.proc.pid}" if c and c.proc else None))
            views.append(view)
        task.containers = views

    # -- the target a load balancer reaches -------------------------------------------------
    def target(self, task_arn: str, container_port: int) -> tuple[str, int] | None:
        """Where ``container_port`` of a running task answers: (private IP, port) in namespace mode or when
        published; ("127.0.0.1", loopback port) otherwise. None if it is not running."""
        run = self.runner.get(task_arn)
        if run is None or run.last_status != "RUNNING":
            return None
        info = self.infos.get(task_arn, {})
        for c in run.containers:
            bound = info.get("bindings", {}).get(c.plan.name)
            if bound and container_port in bound:
                return run.plan.private_ip, bound[container_port]
            if container_port in c.plan.port_mappings:
                if run.plan.private_ip and (network_mode() == "namespaces" or netns is not None):
                    return run.plan.private_ip, container_port
                return "127.0.0.1", c.plan.host_ports.get(container_port, container_port)
        return None

    # -- lifecycle ---------------------------------------------------------------------------
    def reset(self) -> None:
        self.scheduler.clear()
        self.runner.clear()
        self.hosts.clear()
        self.credentials.clear()
        self.infos.clear()
        self.lost.clear()

    def restored(self) -> None:
        """The journal named tasks that ran: none runs now; services start theirs again."""
        def look():
            for backend in _backends():
                for cluster_tasks in backend.tasks.values():
                    for arn, task in cluster_tasks.items():
                        if arn not in self.infos and task.desired_status == "RUNNING":
                            self.lost.add(arn)
                            _lost(task)

        self.host.read_backend(look)
        self.host.read_backend(self.hosts.sync)
        self.scheduler.wake()

    def close(self) -> None:
        self.scheduler.close()
        self.runner.close()
        self.hosts.clear()
        self.credentials.close()
        shutil.rmtree(self.image_dir, ignore_errors=True)  # a cache: unpacked again from the registry

    def status(self) -> dict:
        runs = self.runner.all()
        return {"network": network_mode(), "tasks_running": sum(r.last_status == "RUNNING" for r in runs),
                "tasks": len(runs), "processes": len(self.runner.pids()), "container_instances": len(self.hosts.hosts)}


def _sweep_image_dirs() -> None:
    """Remove the image caches of local AWSs whose state folder is gone (a killed server's cache
    stays behind; a learner's state folder stays, so theirs is reused, never swept)."""
    for folder in Path(tempfile.gettempdir()).glob(IMAGE_DIR_PREFIX + "*"):
        try:
            owner = Path((folder / OWNER_FILE).read_text().strip())
        except OSError:
            continue  # not one that says whose it is: left alone
        if not owner.is_dir():
            shutil.rmtree(folder, ignore_errors=True)


class _View:
    """One container of DescribeTasks (moto's serializer reads these attributes)."""

    def __init__(self, **values):
        self.__dict__.update({k: v for k, v in values.items() if v is not None})


def _bindings(info: dict, name: str, c) -> list[dict]:
    """A container's networkBindings: on its instance, the host port ECS reports; else, in loopback mode,
    the loopback port that stands for its containerPort."""
    bound = info.get("bindings", {}).get(name)
    if bound is not None:
        return [{"bindIP": "0.0.0.0", "containerPort": inner, "hostPort": outer, "protocol": "tcp"}
                for inner, outer in bound.items()]
    return [{"bindIP": "127.0.0.1", "containerPort": inner, "hostPort": outer, "protocol": "tcp"}
            for inner, outer in (c.plan.host_ports.items() if c else [])]


def _overridden(definition: dict, override: dict) -> dict:
    out = dict(definition)
    for key in ("command", "cpu", "memory", "memoryReservation"):
        if override.get(key) is not None:
            out[key] = override[key]
    if override.get("environment"):
        merged = {e["name"]: e for e in out.get("environment") or []}
        merged.update({e["name"]: e for e in override["environment"]})
        out["environment"] = list(merged.values())
    return out


def _int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _freeze(task) -> None:
    # moto walks a task through its states a step per describe; here the runner alone moves it.
    task._transitions = [(None, None)]


def _lost(task) -> None:
    _freeze(task)
    if task.last_status != "STOPPED":
        task.last_status, task.desired_status = "STOPPED", "STOPPED"
        task.stopped_reason, task.stop_code = LOST, "TaskFailedToStart"
        for container in task.containers:
            if hasattr(container, "last_status"):
                container.last_status = "STOPPED"


def _readdress(task) -> str | None:
    """Give the task's network interface an address from its subnet (moto picks any 10.x address), from the
    top of the subnet down: moto hands EC2 instances theirs from the bottom up without looking at interfaces,
    so an instance launched after a task would otherwise get the task's address (and a namespace holding it)."""
    from moto.ec2.models import ec2_backends

    try:
        details = {d["name"]: d for d in task.attachments[0]["details"]}
        ec2 = ec2_backends[task._account_id][task.region_name]
        eni = ec2.get_network_interface(details["networkInterfaceId"]["value"])
        subnet = ec2.get_subnet(details["subnetId"]["value"])
        network = ipaddress.ip_network(subnet.cidr_block)
        used = {e.private_ip_address for e in ec2.enis.values() if e is not eni and getattr(e.subnet, "id", None) == subnet.id}
        used |= set(getattr(subnet, "_subnet_ips", {}))  # instances' addresses
        hosts = list(network.hosts())
        for candidate in reversed(hosts[3:]):  # AWS keeps the first four addresses of a subnet, and the last
            if str(candidate) not in used:
                eni.private_ip_address = str(candidate)
                eni.private_ip_addresses = [{"Primary": True, "PrivateIpAddress": str(candidate)}]
                details["privateIPv4Address"]["value"] = str(candidate)
                return str(candidate)
    except Exception as exc:
        log.warning("task %s keeps moto's address: %s", task.id, exc)
    try:
        return next(d["value"] for d in task.attachments[0]["details"] if d["name"] == "privateIPv4Address")
    except (IndexError, KeyError, StopIteration):
        return None


def _detail(task, name: str) -> str | None:
    try:
        return next(d["value"] for d in task.attachments[0]["details"] if d["name"] == name)
    except (IndexError, KeyError, StopIteration):
        return None


def _release(account: str, region: str, eni_id: str) -> None:
    """A stopped task's interface goes, as on AWS: its address is free for the next task."""
    from moto.ec2.models import ec2_backends

    ec2_backends[account][region].enis.pop(eni_id, None)


def _backend(region: str):
    from moto.ecs.models import ecs_backends

    from ....config import LOCAL_ACCOUNT_ID

    return ecs_backends[LOCAL_ACCOUNT_ID][region]


def _backends():
    from moto.ecs.models import ecs_backends

    for account in list(ecs_backends.keys()):
        for region in list(ecs_backends[account].keys()):
            yield ecs_backends[account][region]


_ACTIVE: list[EcsRuntime] = []


def _install(runtime: EcsRuntime) -> None:
    """moto's DescribeTasks and ListTasks read the runner's truth first (once per process)."""
    from moto.ecs.models import EC2ContainerServiceBackend as Backend

    _ACTIVE[:] = [runtime]
    if getattr(Backend, "_labkit_tasks", False):
        return
    Backend._labkit_tasks = True
    describe, listing = Backend.describe_tasks, Backend.list_tasks

    def describe_tasks(self, cluster_str, tasks):
        found = describe(self, cluster_str, tasks)
        for task in found:
            for active in _ACTIVE:
                active.sync(task)
        return found

    def list_tasks(self, cluster_str=None, container_instance=None, family=None, started_by=None,
                   service_name=None, desiredStatus=None):  # noqa: N803 (moto's name)
        for cluster_tasks in self.tasks.values():
            for task in cluster_tasks.values():
                for active in _ACTIVE:
                    active.sync(task)
        found = listing(self, cluster_str, container_instance, family, started_by, None, desiredStatus)
        if cluster_str:  # moto matches a cluster by substring: shop would list shop-ec2's tasks too
            cluster = self._get_cluster(cluster_str).name
            found = [t for t in found if t.cluster_name == cluster]
        if service_name:  # moto ignores it: a service's tasks are in its group
            name = service_name.split("/")[-1]
            found = [t for t in found if t.group == f"service:{name}"]
        return found

    Backend.describe_tasks, Backend.list_tasks = describe_tasks, list_tasks
    resources = Backend._calculate_task_resource_requirements

    def calculate(task_definition):
        # moto adds up container memory and fails on a Fargate definition that sizes only the task, which
        # is the usual one: count such a container as its share of the task's memory.
        memory = _int(getattr(task_definition, "memory", None)) or 0
        defined = task_definition.container_definitions
        share = memory // max(len(defined), 1)
        patched = []
        for definition in defined:
            if not any(definition.get(k) for k in ("memory", "memoryReservation", "Memory", "MemoryReservation")):
                patched.append(definition)
                definition["memoryReservation"] = share
        try:
            return resources(task_definition)
        finally:
            for definition in patched:
                definition.pop("memoryReservation", None)

    Backend._calculate_task_resource_requirements = staticmethod(calculate)

    from moto.ec2.models.elastic_network_interfaces import NetworkInterface

    if not hasattr(NetworkInterface, "private_dns_name"):
        # moto names an interface only in a VPC with DNS hostnames, and RunTask reads the name
        # always; AWS gives every interface its private DNS name.
        def private_dns_name(self):
            region = self.ec2_backend.region_name
            suffix = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
            return f"ip-{str(self.private_ip_address).replace('.', '-')}.{suffix}"

        NetworkInterface.private_dns_name = property(private_dns_name, lambda self, value: self.__dict__.update(
            private_dns_name=value))
