"""ElastiCache's engines: a real Valkey for every node of what the learner created.

moto keeps the configuration (with ``fidelity/elasticache.py`` adding what it lacks); after
every ElastiCache write, and after a replay, this extension makes the running engines match it:

- one Valkey process per node of a replication group (cluster mode disabled) or of a Valkey/Redis
  cache cluster, the primary replicating to the replicas, each started by ``engines.py`` (loopback
  only, unprivileged, its data under ``<state>/engines/elasticache/``);
- the AUTH token becomes the default user's password; a group's RBAC user group becomes the engine's
  ACL users (passwords and access strings as the API stored them); neither: no password, as on AWS;
- each endpoint the describe calls report (the group's primary and reader endpoints, every member's
  read endpoint, a cluster's cache node) is a front on 127.0.0.1 (``fronts.py``) at a port kept in the
  state, forwarding to the node that holds the role now, with TLS from the course CA when the group
  has in-transit encryption: a test failover moves the primary endpoint as AWS's DNS would;
- an internal admin user (a per-process random password, never in the state) runs replication and
  applies the ACLs; the learner's users cannot see or change it.

Memcached clusters keep their configuration only: no engine is started for them.
"""
from __future__ import annotations

import json
import logging
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import courseca, engines
from . import Extension
from .fronts import Front

log = logging.getLogger("labkit.elasticache")
ENGINES = ("valkey", "redis")  # what a Valkey process serves; memcached has no engine here
ADMIN = "labkit-admin"
LOCAL = "127.0.0.1"


@dataclass
class Node:
    key: str  # account/region/cluster id
    group: str | None  # replication group key, or None for a lone cluster
    role: str  # "primary" | "replica"
    process: engines.Process | None = None
    port: int | None = None  # the engine's own port (never reported: the fronts are)
    started_s: float | None = None


@dataclass
class Spec:
    """What one endpoint group's engines must be, read from moto's models."""

    key: str
    kind: str  # "group" | "cluster"
    model: object = field(repr=False)
    members: list[tuple[str, str]]  # (node key, role)
    tls: bool
    acl: list[tuple[str, list[str]]]  # (user name, ACL SETUSER rules)


class ElastiCacheEngines(Extension):
    name = "elasticache"
    services = ("elasticache",)

    def __init__(self, host):
        super().__init__(host)
        self.lock = threading.RLock()
        self.nodes: dict[str, Node] = {}
        self.fronts: dict[str, Front] = {}
        self.ports: dict[str, int] | None = None  # endpoint key -> front port, kept in the state
        self.admin_password = secrets.token_hex(24)
        self.error: str | None = None  # why no engine could start, for status and describe

    # -- where things are --------------------------------------------------------
    @property
    def root(self) -> Path:
        return engines.data_root(self.host.state_dir) / self.name

    def _ports(self) -> dict[str, int]:
        if self.ports is None:
            try:
                self.ports = json.loads((self.root / "ports.json").read_text())
            except (OSError, ValueError):
                self.ports = {}
        return self.ports

    def _keep_ports(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        temp = self.root / ".ports.json.tmp"
        temp.write_text(json.dumps(self.ports or {}, sort_keys=True))
        temp.replace(self.root / "ports.json")

    # -- hooks -------------------------------------------------------------------
    def written(self, service, request) -> None:
        if not self.host.replaying:
            self.sync()

    def restored(self) -> None:
        self.sync()

    def reset(self) -> None:
        with self.lock:
            self._stop_all()
            shutil.rmtree(self.root, ignore_errors=True)
            self.ports = None

    def close(self) -> None:
        with self.lock:
            self._stop_all()

    def status(self) -> dict:
        with self.lock:
            return {"nodes": {k: {"pid": n.process.pid if n.process else None, "role": n.role,
                                  "alive": bool(n.process and n.process.alive), "started_s": n.started_s}
                              for k, n in self.nodes.items()},
                    **({"error": self.error} if self.error else {})}

    def save_data(self, folder: Path) -> None:
        """Every node's data as of now (each engine saves first), and the endpoints' ports."""
        with self.lock:
            for node in self.nodes.values():
                client = self._client(node)
                if client is not None:
                    try:
                        _save_now(client)
                    except Exception as exc:  # the last save on disk is what is copied
                        log.warning("node %s did not save: %s", node.key, exc)
            if self.root.exists():
                shutil.copytree(self.root, folder, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("*.log", "labkit.conf", "temp-*"))

    def load_data(self, folder: Path | None) -> None:
        with self.lock:
            self._stop_all()
            shutil.rmtree(self.root, ignore_errors=True)
            self.ports = None
            if folder is not None and Path(folder).is_dir():
                shutil.copytree(folder, self.root)

    # -- making the engines match the models --------------------------------------
    def sync(self) -> None:
        with self.lock:
            try:
                specs = self.host.read_backend(self._specs)
            except Exception:
                log.exception("ElastiCache models could not be read")
                return
            wanted = {key for spec in specs for key, _ in spec.members}
            for key in [k for k in self.nodes if k not in wanted]:
                self._remove(key)
            for key in [k for k in self.fronts if k.rsplit("#", 1)[0] not in {s.key for s in specs} | wanted]:
                self.fronts.pop(key).stop()
            changed = False
            for spec in specs:
                try:
                    changed |= self._apply(spec)
                except engines.EngineError as exc:
                    self.error = str(exc)
                    log.error("%s", exc)
            forgotten = set(self._ports()) - set(self.fronts)
            for key in forgotten:
                del self.ports[key]
            if changed or forgotten:
                self._keep_ports()

    def _specs(self) -> list[Spec]:
        from moto.elasticache.models import elasticache_backends

        from ..fidelity.elasticache import _user_groups

        specs = []
        for account, regions in elasticache_backends.items():
            for region, backend in regions.items():
                base = f"{account}/{region}"
                for group in list(backend.replication_groups.values()):
                    if group.engine not in ENGINES or group.cluster_mode == "enabled" or group.status == "deleting":
                        continue
                    members = [(f"{base}/{m['cache_cluster_id']}", m.get("current_role") or "replica")
                               for m in group.node_groups[0]["node_group_members"]]
                    acl = _acl(backend, _user_groups(backend), group.user_group_ids,
                               getattr(group, "labkit_auth_token", None))
                    specs.append(Spec(f"{base}/{group.replication_group_id}", "group", group, members,
                                      bool(group.transit_encryption_enabled), acl))
                for cluster in list(backend.cache_clusters.values()):
                    if cluster.engine not in ENGINES or getattr(cluster, "replication_group_id", None):
                        continue
                    acl = _acl(backend, {}, [], cluster.auth_token)
                    specs.append(Spec(f"{base}/{cluster.cache_cluster_id}", "cluster", cluster,
                                      [(f"{base}/{cluster.cache_cluster_id}", "primary")],
                                      bool(cluster.transit_encryption_enabled), acl))
        return specs

    def _apply(self, spec: Spec) -> bool:
        """Start what is missing, set roles and ACLs, open the fronts; True when a port was added."""
        primary = next((key for key, role in spec.members if role == "primary"), spec.members[0][0])
        for key, role in spec.members:
            node = self.nodes.get(key)
            if node is None:
                node = self.nodes[key] = Node(key, spec.key if spec.kind == "group" else None, role)
            node.role = "primary" if key == primary else "replica"
            if node.process is None or not node.process.alive:
                self._start(node)
        moved = False
        for key, _ in spec.members:  # a failover: the old primary hands its last writes over first
            if key != primary:
                client = self._client(self.nodes[key])
                info = client.info("replication")
                replicas = int(info.get("connected_slaves") or 0)
                if info.get("role") == "master" and replicas:  # (a node just started has none to wait for)
                    client.execute_command("WAIT", replicas, 1000)
        for key, _ in sorted(spec.members, key=lambda member: member[0] != primary):  # the primary first
            node = self.nodes[key]
            client = self._client(node)
            for user, rules in spec.acl:
                client.execute_command("ACL", "SETUSER", user, *rules)
            for user in client.execute_command("ACL", "USERS"):
                user = user.decode() if isinstance(user, bytes) else user
                if user not in {u for u, _ in spec.acl} | {ADMIN}:
                    client.execute_command("ACL", "DELUSER", user)
            info = client.info("replication")
            if key == primary:
                if info.get("role") != "master":
                    client.execute_command("REPLICAOF", "NO", "ONE")
                    moved = True
            else:
                source = self.nodes[primary].port
                if info.get("role") != "slave" or int(info.get("master_port") or 0) != source:
                    client.execute_command("REPLICAOF", LOCAL, str(source))
        tls = courseca.server_context(self.host.state_dir) if spec.tls else None
        added = False
        endpoints = {f"{key}#node": (lambda key=key: self._port_of(key)) for key, _ in spec.members}
        if spec.kind == "group":
            endpoints[f"{spec.key}#primary"] = lambda primary=primary: self._port_of(primary)
            replicas = [key for key, _ in spec.members if key != primary]
            reader = replicas[0] if replicas else primary
            endpoints[f"{spec.key}#reader"] = lambda reader=reader: self._port_of(reader)
        for name, target in endpoints.items():
            front = self.fronts.get(name)
            if front is not None and (front.tls is None) != (tls is None):
                front.stop()
                front = None
            if front is None:
                front, new = self._open_front(name, target, tls)
                added |= new
            else:
                front.target = target
            if moved and name.endswith(("#primary", "#reader")):
                front.drop_connections()  # as AWS's failover does: clients reconnect to the new primary
        self._publish(spec)
        return added

    def _open_front(self, name: str, target, tls) -> tuple[Front, bool]:
        ports = self._ports()
        port, new = ports.get(name), False
        for _ in range(20):
            if port is None:
                port, new = engines.free_port(), True
            front = Front(name, port, target, tls)
            try:
                front.start()
            except OSError:  # the kept port is taken now: the endpoint moves, as a replaced node's would
                port = None
                continue
            ports[name] = port
            self.fronts[name] = front
            return front, new
        raise engines.EngineError(f"No free loopback port could be found for {name}.")

    def _port_of(self, key: str) -> int | None:
        node = self.nodes.get(key)
        return node.port if node and node.process and node.process.alive else None

    def _publish(self, spec: Spec) -> None:
        """Write the fronts' addresses where moto's describe calls read them."""
        def endpoint(name):
            return {"address": LOCAL, "port": self.fronts[name].port}

        model = spec.model
        if spec.kind == "group":
            node_group = model.node_groups[0]
            node_group["primary_endpoint"] = endpoint(f"{spec.key}#primary")
            node_group["primary_endpoint_address"] = LOCAL
            node_group["reader_endpoint"] = endpoint(f"{spec.key}#reader")
            node_group["reader_endpoint_address"] = LOCAL
            node_group["port"] = self.fronts[f"{spec.key}#primary"].port
            base = spec.key.rsplit("/", 1)[0]
            for member in node_group["node_group_members"]:
                member["read_endpoint"] = endpoint(f"{base}/{member['cache_cluster_id']}#node")
            clusters = self._clusters(base)
            for member in node_group["node_group_members"]:
                cluster = clusters.get(member["cache_cluster_id"])
                if cluster is not None:
                    cluster.cache_nodes = [_cache_node(endpoint(f"{base}/{member['cache_cluster_id']}#node"),
                                                       cluster)]
        else:
            model.cache_nodes = [_cache_node(endpoint(f"{spec.key}#node"), model)]

    def _clusters(self, base: str) -> dict:
        from moto.elasticache.models import elasticache_backends

        account, region = base.split("/")
        return elasticache_backends[account][region].cache_clusters

    # -- one engine -----------------------------------------------------------------
    def _start(self, node: Node) -> None:
        server = engines.server_path("valkey")
        data = self.root / node.key
        data.mkdir(parents=True, exist_ok=True)
        node.port = engines.free_port()
        # The admin's password stays off the command line (every user can read that): the configuration is
        # a file the engine reads on its standard input.
        conf = data / "labkit.conf"
        conf.write_text("\n".join([
            f"port {node.port}", f"bind {LOCAL}", "dir ./", "dbfilename dump.rdb", "save 5 1",
            "appendonly no", 'logfile ""', "repl-diskless-sync-delay 0", "protected-mode yes", "replica-read-only yes",
            f"user {ADMIN} on >{self.admin_password} ~* &* +@all", "user default off resetpass",
            f"masteruser {ADMIN}", f"masterauth {self.admin_password}", "shutdown-on-sigterm save", ""]))
        conf.chmod(0o600)
        node.process = engines.Process(f"ElastiCache node {node.key.rsplit('/', 1)[-1]}", [str(server), "-"],
                                       data_dir=data, log_file=data.with_name(data.name + ".log"), stdin=conf)
        begun = time.perf_counter()
        node.process.start(lambda: self._client(node, check=True) is not None)
        node.started_s = time.perf_counter() - begun
        self.error = None
        log.info("engine %s started on %s:%d in %.3f s", node.key, LOCAL, node.port, node.started_s)

    def _client(self, node: Node, check: bool = False):
        import valkey

        if node.port is None:
            return None
        client = valkey.Valkey(host=LOCAL, port=node.port, username=ADMIN, password=self.admin_password,
                               socket_timeout=5, socket_connect_timeout=2, retry_on_timeout=False)
        if check:
            client.ping()
        return client

    def _remove(self, key: str) -> None:
        node = self.nodes.pop(key)
        if node.process is not None:
            node.process.stop()
        for name in [n for n in self.fronts if n.startswith(key + "#")]:
            self.fronts.pop(name).stop()
        data = self.root / key
        shutil.rmtree(data, ignore_errors=True)  # a deleted node's data goes with it
        data.with_name(data.name + ".log").unlink(missing_ok=True)

    def _stop_all(self) -> None:
        for front in self.fronts.values():
            front.stop()
        self.fronts.clear()
        for node in self.nodes.values():
            if node.process is not None:
                node.process.stop()  # SIGTERM: the engine saves its data and exits
        self.nodes.clear()

    def start_times(self) -> dict[str, float]:
        """Seconds each running engine took from spawn to its first answer (for the benchmarks)."""
        with self.lock:
            return {k: n.started_s for k, n in self.nodes.items() if n.started_s is not None}


def _acl(backend, user_groups: dict, group_ids: list[str], token: str | None) -> list[tuple[str, list[str]]]:
    """The engine's ACL users for what the API stored: RBAC users, else the AUTH token, else no password."""
    users = []
    for group_id in group_ids or []:
        group = user_groups.get(group_id)
        for user_id in group.user_ids if group else []:
            user = backend.users.get(user_id)
            if user is None:
                continue
            rules = ["reset", *user.access_string.split()]
            rules += ["nopass"] if user.no_password_required else [f">{p}" for p in user.passwords]
            users.append((user.name, rules))
    if group_ids:
        return users if any(name == "default" for name, _ in users) else users + [("default", ["reset", "off"])]
    if token:
        return [("default", ["reset", "on", f">{token}", "~*", "&*", "+@all"])]
    return [("default", ["reset", "on", "nopass", "~*", "&*", "+@all"])]


def _cache_node(endpoint: dict, cluster) -> dict:
    return {"cache_node_id": "0001", "cache_node_status": "available", "endpoint": endpoint,
            "cache_node_create_time": cluster.cache_cluster_create_time,
            "customer_availability_zone": cluster.preferred_availability_zone}


EXTENSION = ElastiCacheEngines


def _save_now(client, wait_s: float = 10.0) -> None:
    """SAVE, as of now. The engine's own background save may be under way (it refuses SAVE then): wait
    for it to end and save again, or that older save, without the latest writes, is what gets copied."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            client.save()
            return
        except Exception as exc:
            if "in progress" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.05)
