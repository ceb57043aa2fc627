"""ElastiCache: what moto lacks or answers differently from AWS, where lab 07 can see it.

- ``NumCacheClusters`` gives that many members (moto makes one unless replicas are asked per node group);
- user groups (RBAC) exist: create, describe, modify, delete, in AWS's error shapes;
- ``TestFailover`` promotes a replica of a group with automatic failover, as AWS does;
- a deleted replication group is gone from describe calls (moto keeps it, "deleting", forever).

The engines behind these resources are the ``elasticache`` extension's; these patches only keep the
configuration the extension reads.
"""
from __future__ import annotations

from moto.utilities.utils import get_partition

# What AWS picks when EngineVersion is left out (the newest of each engine; 8.1 is also the local engine).
DEFAULT_VERSION = {"valkey": "8.1", "redis": "7.1", "memcached": "1.6.22"}
DEFAULT_USER = "default"  # ElastiCache's rule: every user group holds a user named "default"


class UserGroup:
    def __init__(self, account: str, region: str, group_id: str, engine: str, user_ids: list[str]):
        self.user_group_id = group_id
        self.status = "active"
        self.engine = engine
        self.user_ids = list(user_ids)
        self.minimum_engine_version = "6.0"
        self.pending_changes = None
        self.replication_groups: list[str] = []
        self.serverless_caches: list[str] = []
        self.arn = f"arn:{get_partition(region)}:elasticache:{region}:{account}:usergroup:{group_id}"


def apply() -> None:
    from moto.core.exceptions import ServiceException
    from moto.core.responses import ActionResult
    from moto.elasticache import models
    from moto.elasticache.exceptions import (ElastiCacheException, InvalidParameterValueException,
                                             ReplicationGroupNotFound, UserNotFound)
    from moto.elasticache.models import ElastiCacheBackend, ReplicationGroup
    from moto.elasticache.responses import ElastiCacheResponse

    class Fault(ElastiCacheException):
        def __init__(self, code: str, message: str):
            self.code = code
            ServiceException.__init__(self, message)

    # -- NumCacheClusters ---------------------------------------------------
    members = ReplicationGroup._set_node_members_clusters_disabled

    def set_members(self, *args, **kwargs):
        clusters = kwargs.get("num_cache_clusters") or 1
        if not kwargs.get("replicas_per_node_group") and clusters > 1:
            kwargs["replicas_per_node_group"] = clusters - 1
        members(self, *args, **kwargs)
        self.primary_cluster_id = self.primary_cluster_id or self.member_clusters[0]

    ReplicationGroup._set_node_members_clusters_disabled = set_members

    # -- deleted groups leave -------------------------------------------------
    delete_group = ElastiCacheBackend.delete_replication_group

    def delete_replication_group(self, replication_group_id, retain_primary_cluster):
        group = delete_group(self, replication_group_id, retain_primary_cluster)
        self.replication_groups.pop(replication_group_id, None)
        for cluster_id, cluster in list(self.cache_clusters.items()):
            if getattr(cluster, "replication_group_id", None) == replication_group_id:
                del self.cache_clusters[cluster_id]
        for user_group in _user_groups(self).values():
            if replication_group_id in user_group.replication_groups:
                user_group.replication_groups.remove(replication_group_id)
        return group

    ElastiCacheBackend.delete_replication_group = delete_replication_group

    create_group = ElastiCacheBackend.create_replication_group

    def create_replication_group(self, *args, **kwargs):
        wanted = kwargs.get("user_group_ids") or []
        for group_id in wanted:
            if group_id not in _user_groups(self):
                raise Fault("UserGroupNotFound", f"User group {group_id} not found.")
        group = create_group(self, *args, **kwargs)
        group.labkit_auth_token = kwargs.get("auth_token")  # the engine's password: AWS keeps it, moto drops it
        group.engine_version = kwargs.get("engine_version") or DEFAULT_VERSION.get(group.engine)
        for member in group.node_groups[0]["node_group_members"] if group.cluster_mode != "enabled" else ():
            self.cache_clusters[member["cache_cluster_id"]] = _member(self, group, member, kwargs)
        for group_id in wanted:
            _user_groups(self)[group_id].replication_groups.append(group.replication_group_id)
        return group

    ElastiCacheBackend.create_replication_group = create_replication_group

    create_cluster = ElastiCacheBackend.create_cache_cluster

    def create_cache_cluster(self, *args, **kwargs):
        cluster = create_cluster(self, *args, **kwargs)
        cluster.engine_version = cluster.engine_version or DEFAULT_VERSION.get(cluster.engine)
        cluster.security_groups = [{"security_group_id": sg, "status": "active"}
                                   for sg in kwargs.get("security_group_ids") or []]
        return cluster

    ElastiCacheBackend.create_cache_cluster = create_cache_cluster

    list_tags = ElastiCacheBackend.list_tags_for_resource

    def list_tags_for_resource(self, arn):
        if ":usergroup:" in arn:  # moto's ARN pattern predates user groups
            return self.tagging_service.list_tags_for_resource(arn)
        return list_tags(self, arn)

    ElastiCacheBackend.list_tags_for_resource = list_tags_for_resource

    delete_user = ElastiCacheBackend.delete_user

    def delete_user_now(self, user_id):
        user = delete_user(self, user_id)
        for group in _user_groups(self).values():
            if user_id in group.user_ids:
                user.status = "active"
                raise Fault("InvalidUserState", f"User {user_id} belongs to user group {group.user_group_id}; "
                                                "remove it from the group first.")
        self.users.pop(user_id, None)  # moto keeps it "deleting" until it is described by id
        return user

    ElastiCacheBackend.delete_user = delete_user_now

    delete_cluster = ElastiCacheBackend.delete_cache_cluster

    def delete_cache_cluster(self, cache_cluster_id):
        cluster = delete_cluster(self, cache_cluster_id)
        if getattr(cluster, "replication_group_id", None) in self.replication_groups:
            cluster.cache_cluster_status = "available"
            raise InvalidParameterValueException(f"Cache cluster {cache_cluster_id} is a member of replication group "
                                                 f"{cluster.replication_group_id}; delete the group instead.")
        del self.cache_clusters[cache_cluster_id]  # gone from describe calls, as on AWS once deleted
        return cluster

    ElastiCacheBackend.delete_cache_cluster = delete_cache_cluster

    def delete_cache_subnet_group(self):
        backend = self.elasticache_backend
        name = self._get_param("CacheSubnetGroupName")
        if name not in backend.cache_subnet_groups:
            from moto.elasticache.exceptions import CacheSubnetGroupNotFound

            raise CacheSubnetGroupNotFound(name)
        users = [g.replication_group_id for g in backend.replication_groups.values()
                 if g.cache_subnet_group_name == name]
        users += [c.cache_cluster_id for c in backend.cache_clusters.values()
                  if c.cache_subnet_group_name == name and not getattr(c, "replication_group_id", None)]
        if users:
            raise Fault("CacheSubnetGroupInUse", f"Cache subnet group {name} is used by {', '.join(users)}.")
        del backend.cache_subnet_groups[name]
        return ActionResult({})

    # -- user groups ------------------------------------------------------------
    def _check_users(backend, user_ids):
        for user_id in user_ids:
            if user_id is not None and user_id not in backend.users:
                raise UserNotFound(user_id)
        if DEFAULT_USER not in {backend.users[u].name for u in user_ids if u}:
            raise Fault("DefaultUserRequired", "User group needs to contain a user with the user name default.")

    def create_user_group(self):
        backend = self.elasticache_backend
        group_id = self._get_param("UserGroupId")
        engine = (self._get_param("Engine") or "").lower()
        user_ids = self._get_param("UserIds") or []
        if engine not in ("redis", "valkey"):
            raise InvalidParameterValueException("Engine must be valkey or redis.")
        if group_id in _user_groups(backend):
            raise Fault("UserGroupAlreadyExists", f"User group {group_id} already exists.")
        _check_users(backend, user_ids or [None])
        group = UserGroup(self.current_account, self.region, group_id, engine, user_ids)
        _user_groups(backend)[group_id] = group
        tags = self._get_param("Tags") or []
        if tags:
            backend.tagging_service.tag_resource(group.arn, tags)
        for user_id in user_ids:
            backend.users[user_id].user_group_ids.append(group_id)
        return ActionResult(group)

    def _find(backend, group_id):
        group = _user_groups(backend).get(group_id)
        if group is None:
            raise Fault("UserGroupNotFound", f"User group {group_id} not found.")
        return group

    def describe_user_groups(self):
        backend = self.elasticache_backend
        group_id = self._get_param("UserGroupId")
        groups = [_find(backend, group_id)] if group_id else list(_user_groups(backend).values())
        return ActionResult({"UserGroups": groups})

    def modify_user_group(self):
        backend = self.elasticache_backend
        group = _find(backend, self._get_param("UserGroupId"))
        add = self._get_param("UserIdsToAdd") or []
        remove = self._get_param("UserIdsToRemove") or []
        for user_id in add + remove:
            if user_id not in backend.users:
                raise UserNotFound(user_id)
        users = [u for u in group.user_ids if u not in remove] + [u for u in add if u not in group.user_ids]
        _check_users(backend, users)
        group.user_ids = users
        return ActionResult(group)

    def delete_user_group(self):
        backend = self.elasticache_backend
        group = _find(backend, self._get_param("UserGroupId"))
        if group.replication_groups:
            raise Fault("InvalidUserGroupState",
                        f"User group {group.user_group_id} is associated with replication group(s) "
                        f"{', '.join(group.replication_groups)}.")
        del _user_groups(backend)[group.user_group_id]
        group.status = "deleting"
        return ActionResult(group)

    # -- failover ---------------------------------------------------------------
    def test_failover(self):
        backend = self.elasticache_backend
        group_id = self._get_param("ReplicationGroupId")
        node_group_id = self._get_param("NodeGroupId")
        group = backend.replication_groups.get(group_id)
        if group is None:
            raise ReplicationGroupNotFound(group_id)
        node_group = next((g for g in group.node_groups if g["node_group_id"] == node_group_id), None)
        if node_group is None:
            raise Fault("NodeGroupNotFoundFault", f"Node group {node_group_id} not found in {group_id}.")
        if group.automatic_failover != "enabled":
            raise Fault("InvalidReplicationGroupState",
                        f"Replication group {group_id} does not have automatic failover enabled.")
        nodes = node_group["node_group_members"]
        replicas = [n for n in nodes if n.get("current_role") == "replica"]
        if not replicas:
            raise Fault("InvalidReplicationGroupState", f"Replication group {group_id} has no replica to promote.")
        for node in nodes:
            if node.get("current_role") == "primary":
                node["current_role"] = "replica"
        replicas[0]["current_role"] = "primary"
        group.primary_cluster_id = replicas[0]["cache_cluster_id"]
        return ActionResult({"ReplicationGroup": group})

    for handler in (create_user_group, describe_user_groups, modify_user_group, delete_user_group, test_failover,
                    delete_cache_subnet_group):
        setattr(ElastiCacheResponse, handler.__name__, handler)
    models.UserGroup = UserGroup


def _member(backend, group, member: dict, asked: dict):
    """The cache cluster AWS lists for one member of a replication group (moto lists none)."""
    import inspect

    from moto.elasticache.models import CacheCluster

    names = [n for n in inspect.signature(CacheCluster.__init__).parameters if n not in ("self", "account_id",
                                                                                          "region_name")]
    values = {n: asked.get(n) for n in names}
    values.update(cache_cluster_id=member["cache_cluster_id"], replication_group_id=group.replication_group_id,
                  engine=group.engine, engine_version=group.engine_version, cache_node_type=group.cache_node_type,
                  preferred_availability_zone=member.get("preferred_availability_zone"), num_cache_nodes=1,
                  port=group.port, log_delivery_configurations=asked.get("log_delivery_configurations") or [])
    cluster = CacheCluster(backend.account_id, backend.region_name, **values)
    cluster.num_cache_nodes = 1
    cluster.replication_group_id = group.replication_group_id
    cluster.at_rest_encryption_enabled = group.at_rest_encryption_enabled
    cluster.cache_subnet_group_name = asked.get("cache_subnet_group_name")
    cluster.security_groups = [{"security_group_id": sg, "status": "active"}
                               for sg in asked.get("security_group_ids") or []]
    return cluster


def _user_groups(backend) -> dict:
    """The backend's user groups (an attribute moto's backend does not have, so added on first use)."""
    groups = getattr(backend, "user_groups", None)
    if groups is None:
        groups = backend.user_groups = {}
    return groups
