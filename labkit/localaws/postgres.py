"""One PostgreSQL cluster the local AWS runs for RDS: a data folder, a port, an admin login.

The cluster's bootstrap superuser (``labkit_admin``, a random password kept
beside the data, never in moto) is the local AWS's own: it sets the master
user's password, promotes a standby, takes a base backup. The learner's
master user is, as on RDS, not a superuser (RDS gives it ``rds_superuser``):
it creates databases and roles and owns its database, and cannot read the
server's files.
"""
from __future__ import annotations

import json
import secrets
import signal
from pathlib import Path

from . import engines

ADMIN = "labkit_admin"
# Small: a learner runs a few instances on a laptop, each with a standby, and every snapshot copies their
# folders, so WAL comes in 1 MB segments (initdb) and little of it is kept.
SETTINGS = {"shared_buffers": "16MB", "max_connections": "40", "wal_level": "replica", "max_wal_senders": "10",
            "hot_standby": "on", "unix_socket_directories": "", "listen_addresses": "127.0.0.1",
            "min_wal_size": "4MB", "max_wal_size": "48MB", "wal_keep_size": "16MB", "fsync": "on"}


class Cluster:
    """A PostgreSQL data folder under ``root`` (``data/``, ``postgres.log``) served on ``port``."""

    def __init__(self, root: Path, port: int, admin_password: str):
        self.root = Path(root)
        self.port = port
        self.admin_password = admin_password
        self.process: engines.Process | None = None

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    @property
    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.alive

    def _bin(self, name: str) -> str:
        return str(engines.binaries("postgres") / name)

    # -- lifecycle ------------------------------------------------------------------
    def init(self) -> None:
        """A new, empty cluster (initdb), the admin's password set, TCP on loopback only."""
        engines.remove_data(self.data)
        engines.run([self._bin("initdb"), "-D", str(self.data), "-U", ADMIN, "--auth=scram-sha-256",
                     "--pwfile=/dev/stdin", "-E", "UTF8", "--locale=C", "--wal-segsize=1", "--no-sync", "--no-instructions"],
                    data_dir=self.data, log_file=self.log, stdin=f"{self.admin_password}\n".encode(), timeout=120)

    def base_backup(self, source: "Cluster") -> None:
        """This cluster as a streaming standby of ``source`` (running): a base backup, then replication."""
        engines.remove_data(self.data)
        engines.run([self._bin("pg_basebackup"), "-D", str(self.data), "-h", "127.0.0.1", "-p", str(source.port),
                     "-U", ADMIN, "-X", "stream", "--no-sync", "-c", "fast"],
                    data_dir=self.data, log_file=self.log, env={"PGPASSWORD": source.admin_password}, timeout=120)
        self.follow(source)

    def follow(self, source: "Cluster") -> None:
        """Make this (stopped) cluster a standby streaming from ``source``."""
        conninfo = (f"host=127.0.0.1 port={source.port} user={ADMIN} password={source.admin_password} "
                    "application_name=labkit")
        (self.data / "standby.signal").write_text("")
        with open(self.data / "postgresql.auto.conf", "a") as conf:  # where pg_basebackup -R writes it too
            conf.write(f"primary_conninfo = '{conninfo}'\n")
        engines.own_data(self.data)

    def init_from(self, template: "Cluster") -> None:
        """A new cluster as a copy of ``template`` (initialised once, stopped): a copy takes a fraction of
        initdb's seconds. It keeps the template's admin password until ``take_admin_password``."""
        if not template.initialised:
            template.init()
        engines.remove_data(self.data)
        engines.copy_data(template.data, self.data)

    def take_admin_password(self, password: str) -> None:
        """Give the (running) admin its own password: no two clusters share one."""
        self.set_password(ADMIN, password)
        self.admin_password = password

    def start(self, timeout: float = 60.0) -> None:
        if self.running:
            return
        argv = [self._bin("postgres"), "-D", str(self.data), "-p", str(self.port)]
        for key, value in SETTINGS.items():
            argv += ["-c", f"{key}={value}"]
        self.process = engines.Process(f"postgres on port {self.port}", argv, data_dir=self.data, log_file=self.log)
        self.process.start(self._ready, timeout=timeout)

    def _ready(self) -> bool:
        if not engines.listening(self.port):
            return False
        with self.admin(timeout=2):
            return True

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(sig=signal.SIGINT)  # fast shutdown: open sessions do not hold it up
            self.process = None

    def remove(self) -> None:
        self.stop()
        engines.remove_data(self.root)

    # -- SQL as the admin ----------------------------------------------------------------
    def admin(self, dbname: str = "postgres", timeout: float = 5):
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user=ADMIN, password=self.admin_password,
                               dbname=dbname, connect_timeout=max(int(timeout), 1), autocommit=True)

    def in_recovery(self) -> bool:
        with self.admin() as conn:
            return bool(conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])

    def set_master(self, user: str, password: str, dbname: str | None) -> None:
        """Create or update the master user (RDS-like: not a superuser) and its database."""
        from psycopg import sql

        with self.admin() as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(sql.SQL(verb + " ROLE {} LOGIN CREATEDB CREATEROLE PASSWORD {}").format(
                sql.Identifier(user), sql.Literal(password)))
            if not exists:
                conn.execute(sql.SQL("GRANT pg_monitor, pg_signal_backend TO {}").format(sql.Identifier(user)))
                conn.execute(sql.SQL("ALTER DATABASE postgres OWNER TO {}").format(sql.Identifier(user)))
                if dbname and dbname != "postgres":
                    conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(dbname),
                                                                              sql.Identifier(user)))

    def set_password(self, user: str, password: str) -> None:
        from psycopg import sql

        with self.admin() as conn:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(user), sql.Literal(password)))

    def promote(self) -> None:
        with self.admin() as conn:
            conn.execute("SELECT pg_promote(true, 30)")
            conn.execute("ALTER SYSTEM RESET primary_conninfo")

    def lag_bytes(self) -> int | None:
        """How far this standby's replay is behind what it received (None on a primary)."""
        with self.admin() as conn:
            row = conn.execute("SELECT pg_is_in_recovery(), "
                               "pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())").fetchone()
        return int(row[1] or 0) if row[0] else None

    def wal_position(self) -> str:
        with self.admin() as conn:
            return conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]

    def replayed(self, position: str) -> bool:
        with self.admin() as conn:
            return bool(conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (position,)).fetchone()[0])


def new_password(length: int = 32) -> str:
    """A random password of the characters RDS allows (no '/', '"', '@' or space)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%^&*()-_=+[]{}:,.?~"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def read_meta(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
        return value if isinstance(value, dict) else {}
    except (OSError, ValueError):
        return {}
