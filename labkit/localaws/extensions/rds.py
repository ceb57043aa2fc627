"""RDS for PostgreSQL, for real: each DB instance moto records is a PostgreSQL the local AWS runs.

moto keeps the configuration (and gives every instance a fake endpoint and a
secret that always holds the same fake password). This extension hears RDS and
Secrets Manager writes and makes them true:

- CreateDBInstance (engine ``postgres``): a new cluster (``postgres.Cluster``)
  on a loopback port that ``describe_db_instances`` then reports as the
  endpoint; the master user gets the password given, or with
  ``ManageMasterUserPassword`` a real random one that goes into the secret RDS
  created. A Multi-AZ instance also runs a standby streaming from it.
- CreateDBInstanceReadReplica: a streaming replica of the source (read-only,
  as PostgreSQL makes a hot standby); PromoteReadReplica makes it writable.
- RebootDBInstance with ForceFailover on Multi-AZ: the primary stops, the
  standby is promoted and takes over the instance's endpoint, and a new
  standby is built from it. Without ForceFailover: a restart.
- ModifyDBInstance: a new MasterUserPassword, a rotation of the managed one
  (``RotateMasterUserPassword``, or RotateSecret on the secret), Multi-AZ on
  or off.
- DeleteDBInstance: the engine stops and its data goes (moto has already
  refused it under deletion protection). CreateDBSnapshot copies the data;
  RestoreDBInstanceFromDBSnapshot starts a new instance on that copy.

The engines' data (``engines/rds/``) is part of the learner's state (see
``engines.py``): kept across down/up, saved with snapshots and start states.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from pathlib import Path
from urllib.parse import parse_qs

from .. import engines, postgres
from . import Extension

log = logging.getLogger("labkit.localaws.rds")
ADDRESS = "127.0.0.1"
SNAPSHOTS = "_snapshots"  # beside the instances' folders: engine data kept by CreateDBSnapshot
TEMPLATE = "postgres-template"  # in engines/, beside rds/: the initdb every new instance copies


def _patch_endpoint() -> None:
    """describe_db_instances reports the engine's real address for instances that run one."""
    from moto.rds.models import DBInstance

    if getattr(DBInstance, "_labkit_endpoint", False):
        return
    fake = DBInstance.address

    def address(self) -> str:
        return getattr(self, "labkit_address", None) or fake.fget(self)

    DBInstance.address = property(address)
    DBInstance._labkit_endpoint = True


class Instance:
    """One DB instance's engine: its primary cluster, its standby when Multi-AZ, and what they need."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.meta = postgres.read_meta(folder / "meta.json")

    def save(self) -> None:
        from ...config import write_private

        write_private(self.folder / "meta.json", json.dumps(self.meta, indent=1) + "\n")

    def cluster(self, role: str) -> postgres.Cluster:
        ports = {"primary": self.meta["port"], "standby": self.meta.get("standby_port") or 0}
        return postgres.Cluster(self.folder / role, ports[role], self.meta["admin"])


class RDS(Extension):
    name = "rds"
    services = ("rds", "secretsmanager")

    def __init__(self, host):
        super().__init__(host)
        _patch_endpoint()
        self.running: dict[tuple[str, str], postgres.Cluster] = {}  # (key, role) -> running cluster
        self.lock = threading.RLock()

    @property
    def root(self) -> Path:
        from ...config import private_dir

        return private_dir(engines.data_root(self.host.state_dir) / "rds")

    # -- moto's side -----------------------------------------------------------------
    def _databases(self) -> dict[str, object]:
        """Every PostgreSQL DB instance moto holds, by folder key (account.region.identifier)."""
        from moto.rds.models import rds_backends

        found = {}
        for account, regions in rds_backends.items():
            for region, backend in regions.items():
                for identifier, db in backend.databases.items():
                    if str(getattr(db, "engine", "")).startswith("postgres"):
                        found[f"{account}.{region}.{identifier}"] = db
        return found

    def _key_of(self, identifier: str, region: str | None) -> str | None:
        for key, db in self._databases().items():
            if db.db_instance_identifier == identifier and (region is None or db.region == region):
                return key
        return None

    # -- the protocol ----------------------------------------------------------------------
    def written(self, service, request) -> None:
        if self.host.replaying:
            return  # restored() starts what the replayed state names, on its data
        action = request.action or ""
        params = _params(request)
        region, _ = request.scope
        with self.lock:
            try:
                self._apply(action, params, region)
            except engines.EngineError as exc:
                log.error("%s: %s", action, exc)
                self._mark_failed(params.get("DBInstanceIdentifier"), region)
            except Exception:  # moto applied the write: the answer stands, the instance shows it failed
                log.exception("%s: the engine could not follow", action)
                self._mark_failed(params.get("DBInstanceIdentifier"), region)

    def _apply(self, action: str, params: dict, region: str | None) -> None:
        ident = params.get("DBInstanceIdentifier", "")
        if action == "RebootDBInstance":
            key = self._key_of(ident, region)
            if key:
                self._reboot(key, params.get("ForceFailover", "").lower() == "true")
                self._show(self._databases()[key], Instance(self.root / key))
            return
        if action == "PromoteReadReplica":
            key = self._key_of(ident, region)
            if key:
                self._promote(key)
        if action == "CreateDBSnapshot":
            key = self._key_of(ident, region)
            if key:
                self._snapshot(key, params.get("DBSnapshotIdentifier", ""))
        if action == "DeleteDBSnapshot":
            shutil.rmtree(self._snapshot_folder(params.get("DBSnapshotIdentifier", "")), ignore_errors=True)
        if action == "ModifyDBInstance":
            key = self._key_of(ident, region)
            if key and key in self._known():
                self._modify(key, params)
        if action == "RotateSecret":
            self._rotate_secret(params.get("SecretId", ""))
        source = params.get("DBSnapshotIdentifier") if action == "RestoreDBInstanceFromDBSnapshot" else None
        self._sync(restore_from=source and self._snapshot_folder(source), new=ident)

    def reset(self) -> None:
        with self.lock:
            self._stop_all()
            shutil.rmtree(engines.data_root(self.host.state_dir) / "rds", ignore_errors=True)

    def restored(self) -> None:
        with self.lock:
            try:
                self._sync()
            except Exception:  # a start must go on: the instances that could not start show it
                log.exception("after a restore, an engine could not start")

    def load_data(self, folder: Path | None) -> None:
        with self.lock:
            self._stop_all()
            target = engines.data_root(self.host.state_dir) / "rds"
            shutil.rmtree(target, ignore_errors=True)
            if folder is not None:
                engines.copy_data(folder, target)

    def save_data(self, folder: Path) -> None:
        """A consistent copy: each running cluster stops for the copy (a fast shutdown) and starts again."""
        with self.lock:
            source = engines.data_root(self.host.state_dir) / "rds"
            if not source.is_dir() or not any(source.iterdir()):
                return
            if self.host.emptying:  # about to be wiped: the data moves into the kept state, nothing restarts
                self._stop_all()
                folder.rmdir()
                os.replace(source, folder)
                return
            was = dict(self.running)
            for cluster in was.values():
                cluster.stop()
            try:
                shutil.rmtree(folder)
                engines.copy_data(source, folder)
            finally:
                for cluster in was.values():
                    try:
                        cluster.start()
                    except engines.EngineError as exc:
                        log.error("after saving its data: %s", exc)

    def close(self) -> None:
        with self.lock:
            self._stop_all()

    def status(self) -> dict:
        return {f"{key}/{role}": {"port": c.port, "pid": c.process.pid if c.process else None, "running": c.running}
                for (key, role), c in self.running.items()}

    # -- keeping engines in step with moto -------------------------------------------------
    def _known(self) -> set[str]:
        root = engines.data_root(self.host.state_dir) / "rds"  # not made here: a state without RDS keeps none
        return {p.name for p in root.iterdir() if p.is_dir() and p.name != SNAPSHOTS} if root.is_dir() else set()

    def _sync(self, restore_from: Path | None = None, new: str = "") -> None:
        """Start an engine for every PostgreSQL instance moto holds (on its data, or new) and remove the
        engines of instances that are gone. Replicas after their sources."""
        databases = self._databases()
        if not databases and not self._known():
            return
        for key in self._known() - set(databases):
            self._remove(key)
        order = sorted(databases, key=lambda k: bool(getattr(databases[k], "is_replica", False)))
        problem = None
        for key in order:
            db = databases[key]
            from_snapshot = restore_from if restore_from and db.db_instance_identifier == new else None
            try:
                self._ensure(key, db, from_snapshot)
            except Exception as exc:  # one instance that cannot start must not keep the others down
                log.error("DB instance %s: %s", db.db_instance_identifier, exc)
                db.status = "failed"
                problem = problem or exc
        if problem is not None:
            raise problem

    def _ensure(self, key: str, db, from_snapshot: Path | None = None) -> None:
        instance = Instance(self.root / key)
        fresh = not instance.meta
        if fresh:
            self._create(instance, db, from_snapshot)
        primary = instance.cluster("primary")
        if not primary.initialised:  # data lost or never saved: begin again, empty
            instance.meta = {}
            self._create(instance, db, None)
            primary = instance.cluster("primary")
        self._start(key, "primary", primary)
        if bool(getattr(db, "multi_az", False)) and not getattr(db, "is_replica", False):
            self._ensure_standby(key, instance)
        elif instance.meta.get("standby_port"):
            self._drop_standby(key, instance)
        self._show(db, instance)
        self._apply_secret(db, instance)

    def _create(self, instance: Instance, db, from_snapshot: Path | None) -> None:
        instance.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        source_id = getattr(db, "source_db_instance_identifier", None) if getattr(db, "is_replica", False) else None
        managed = bool(getattr(db, "manage_master_user_password", False))
        if source_id:
            source_key = f"{db.account_id}.{db.region}.{source_id}"
            source = Instance(self.root / source_key)
            if not source.meta:
                raise engines.EngineError(f"The source instance {source_id} of replica {db.db_instance_identifier} "
                                          "runs no engine.")
            instance.meta = {"port": self._port(), "admin": source.meta["admin"], "user": source.meta.get("user"),
                             "password": source.meta.get("password"), "replica_of": source_key,
                             "managed": source.meta.get("managed")}
            instance.save()
            replica = instance.cluster("primary")
            replica.base_backup(self._running(source_key))
            return
        if from_snapshot is not None and (from_snapshot / "meta.json").exists():
            taken = postgres.read_meta(from_snapshot / "meta.json")
            instance.meta = {"port": self._port(), "admin": taken["admin"], "user": taken.get("user"),
                             "password": taken.get("password"), "managed": taken.get("managed")}
            engines.copy_data(from_snapshot / "data", instance.folder / "primary" / "data")
            instance.save()
            return
        password = postgres.new_password() if managed else (getattr(db, "_master_user_password", None) or "")
        template = self._template()
        instance.meta = {"port": self._port(), "admin": template.admin_password, "user": db.master_username,
                         "password": password, "managed": managed}
        instance.save()
        cluster = instance.cluster("primary")
        cluster.init_from(template)
        cluster.start()
        self.running[(instance.folder.name, "primary")] = cluster
        cluster.take_admin_password(postgres.new_password())
        instance.meta["admin"] = cluster.admin_password
        instance.save()
        cluster.set_master(db.master_username, password, getattr(db, "db_name", None))

    def _template(self) -> postgres.Cluster:
        """The one initdb every new instance copies (beside the instances, not part of the learner's state:
        reset and snapshots leave it alone)."""
        from ...config import write_private

        folder = engines.data_root(self.host.state_dir) / TEMPLATE
        meta = postgres.read_meta(folder / "meta.json")
        template = postgres.Cluster(folder, 0, meta.get("admin") or postgres.new_password())
        if not meta or not template.initialised:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            template.init()
            write_private(folder / "meta.json", json.dumps({"admin": template.admin_password}) + "\n")
        return template

    def _port(self) -> int:
        taken = {Instance(self.root / k).meta.get(p) for k in self._known() for p in ("port", "standby_port")}
        while True:
            port = engines.free_port()
            if port not in taken:
                return port

    def _start(self, key: str, role: str, cluster: postgres.Cluster) -> None:
        current = self.running.get((key, role))
        if current is not None and current.running:
            return
        if not engines.port_free(cluster.port):  # the port it had is someone else's now: a new one
            instance = Instance(self.root / key)
            instance.meta["port" if role == "primary" else "standby_port"] = self._port()
            instance.save()
            cluster = instance.cluster(role)
        cluster.start()
        self.running[(key, role)] = cluster

    def _running(self, key: str) -> postgres.Cluster:
        cluster = self.running.get((key, "primary"))
        if cluster is None or not cluster.running:
            cluster = Instance(self.root / key).cluster("primary")
            self._start(key, "primary", cluster)
            cluster = self.running[(key, "primary")]
        return cluster

    def _ensure_standby(self, key: str, instance: Instance) -> None:
        if not instance.meta.get("standby_port"):
            instance.meta["standby_port"] = self._port()
            instance.save()
        standby = instance.cluster("standby")
        if not standby.initialised:
            standby.base_backup(self._running(key))
        self._start(key, "standby", standby)

    def _drop_standby(self, key: str, instance: Instance) -> None:
        standby = self.running.pop((key, "standby"), None)
        if standby is not None:
            standby.stop()
        engines.remove_data(instance.folder / "standby")
        instance.meta.pop("standby_port", None)
        instance.save()

    def _show(self, db, instance: Instance) -> None:
        db.labkit_address = ADDRESS
        db.port = instance.meta["port"]

    def _mark_failed(self, identifier: str | None, region: str | None) -> None:
        key = self._key_of(identifier or "", region)
        db = self._databases().get(key) if key else None
        if db is not None:
            db.status = "failed"

    def _remove(self, key: str) -> None:
        for role in ("primary", "standby"):
            cluster = self.running.pop((key, role), None)
            if cluster is not None:
                cluster.stop()
        engines.remove_data(self.root / key)

    def _stop_all(self) -> None:
        for cluster in self.running.values():
            try:
                cluster.stop()
            except Exception:  # stopping goes on for the others
                log.exception("an engine did not stop cleanly")
        self.running.clear()

    # -- operations ---------------------------------------------------------------------
    def _reboot(self, key: str, failover: bool) -> None:
        instance = Instance(self.root / key)
        db = self._databases()[key]
        if failover and bool(getattr(db, "multi_az", False)) and instance.meta.get("standby_port"):
            self._failover(key, instance)
            return
        primary = self.running.pop((key, "primary"), None) or instance.cluster("primary")
        primary.stop()
        self._start(key, "primary", instance.cluster("primary"))

    def _failover(self, key: str, instance: Instance) -> None:
        """The standby becomes the primary at the instance's endpoint; a new standby is built from it."""
        self._ensure_standby(key, instance)
        old = self.running.pop((key, "primary"), None) or instance.cluster("primary")
        standby = self.running.pop((key, "standby"))
        old.stop()  # the failed zone
        standby.promote()
        standby.stop()
        aside = instance.folder / "failed-primary"
        engines.remove_data(aside)
        os.replace(instance.folder / "primary", aside)
        os.replace(instance.folder / "standby", instance.folder / "primary")
        engines.remove_data(aside)
        self._start(key, "primary", instance.cluster("primary"))  # on the instance's own port
        self._ensure_standby(key, instance)

    def _promote(self, key: str) -> None:
        instance = Instance(self.root / key)
        cluster = self._running(key)
        if cluster.in_recovery():
            cluster.promote()
        instance.meta.pop("replica_of", None)
        instance.save()

    def _modify(self, key: str, params: dict) -> None:
        instance = Instance(self.root / key)
        db = self._databases()[key]
        if params.get("MasterUserPassword"):
            instance.meta.update(password=params["MasterUserPassword"], managed=False)
        managed = params.get("ManageMasterUserPassword", "").lower()
        if managed == "true" or params.get("RotateMasterUserPassword", "").lower() == "true":
            instance.meta.update(password=postgres.new_password(), managed=True)
        elif managed == "false":
            instance.meta["managed"] = False
        instance.save()
        self._apply_password(key, instance)
        self._apply_secret(db, instance)

    def _rotate_secret(self, secret_id: str) -> None:
        for key, db in self._databases().items():
            secret = getattr(getattr(db, "master_user_secret", None), "secret", None)
            if secret is not None and secret_id in (secret.arn, secret.name):
                instance = Instance(self.root / key)
                instance.meta.update(password=postgres.new_password(), managed=True)
                instance.save()
                self._apply_password(key, instance)
                self._apply_secret(db, instance)

    def _apply_password(self, key: str, instance: Instance) -> None:
        if instance.meta.get("replica_of"):
            return  # a replica has its source's roles
        self._running(key).set_password(instance.meta["user"], instance.meta["password"])
        for other in self._known():  # replicas follow their source's password
            replica = Instance(self.root / other)
            if replica.meta.get("replica_of") == key:
                replica.meta["password"] = instance.meta["password"]
                replica.save()

    def _apply_secret(self, db, instance: Instance) -> None:
        """The managed secret holds the password the engine has (moto's holds a fake one)."""
        secret = getattr(getattr(db, "master_user_secret", None), "secret", None)
        if secret is None or not instance.meta.get("managed") or getattr(db, "is_replica", False):
            return
        value = json.dumps({"username": instance.meta["user"], "password": instance.meta["password"]})
        secret.secret_string = value
        for version in secret.versions.values():
            if "AWSCURRENT" in version.get("version_stages", []):
                version["secret_string"] = value

    def _snapshot_folder(self, name: str) -> Path:
        return self.root / SNAPSHOTS / name.replace("/", "_").replace(":", "_")

    def _snapshot(self, key: str, name: str) -> None:
        """The instance's data as it is now (a base backup of the running primary)."""
        instance = Instance(self.root / key)
        target = self._snapshot_folder(name)
        engines.remove_data(target)
        target.mkdir(mode=0o700, parents=True)
        copy = postgres.Cluster(target, 0, instance.meta["admin"])
        copy.base_backup(self._running(key))
        (copy.data / "standby.signal").unlink(missing_ok=True)  # restored as a primary of its own
        from ...config import write_private

        write_private(target / "meta.json", json.dumps({k: v for k, v in instance.meta.items()
                                                        if k in ("admin", "user", "password", "managed")}))


def _params(request) -> dict:
    text = request.body.decode("utf-8", "replace") if request.body else ""
    if request.header("X-Amz-Target") and text.startswith("{"):
        try:
            body = json.loads(text)
            return {k: str(v) for k, v in body.items()} if isinstance(body, dict) else {}
        except ValueError:
            return {}
    found = parse_qs(text) or parse_qs(request.query)
    return {k: v[0] for k, v in found.items()}


EXTENSION = RDS
