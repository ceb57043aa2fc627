"""PrivateLink: an interface endpoint to a service that requires acceptance waits in pendingAcceptance until
the service's owner accepts or rejects it; an unknown service, or a caller its allowed principals do not
name, is InvalidServiceName; connection notifications reach SNS only when the topic lets vpce.amazonaws.com
publish; a private DNS name is verified through a public Route 53 TXT record, and private DNS on an endpoint
needs the VPC's DNS support and hostnames (moto connects at once and verifies instantly).

- states: ``pendingAcceptance`` -> ``available`` (accepted) or ``rejected``; an accepted connection can be
  rejected and a rejected one accepted; a deleted endpoint stays listed as ``deleted``;
- the owner's calls: DescribeVpcEndpointConnections, Accept/RejectVpcEndpointConnections (items that
  cannot move in ``Unsuccessful``), Create/Describe/Modify/DeleteVpcEndpointConnectionNotification(s),
  StartVpcEndpointServicePrivateDnsVerification, all missing from moto;
- the TXT record is ``<Name>.<domain>`` = ``<Value>`` for the private DNS name or a parent domain of it;
- ``service_of(endpoint)`` and ``private_dns_verified(service)`` tell the network fabric what an endpoint
  reaches and whether the service's private DNS name may resolve.

All of it lives on moto's objects (an endpoint's ``state``, attributes on the service and the backend),
set by the requests themselves, so a journal replay or a checkpoint rebuilds it.
"""
from __future__ import annotations

import json

EVENTS = ("Accept", "Connect", "Delete", "Reject")
VPCE = "vpce.amazonaws.com"  # the service principal AWS publishes notifications as
PENDING, AVAILABLE, REJECTED, DELETED = "pendingAcceptance", "available", "rejected", "deleted"
# Which states each owner's answer moves an endpoint from (AWS lets a rejected request be accepted
# later, and an accepted one be rejected, which disconnects it).
ACCEPTS_FROM, REJECTS_FROM = (PENDING, REJECTED), (PENDING, AVAILABLE)
CONNECTING = ("interface", "gatewayloadbalancer")  # endpoint types that ask a service's owner to connect


# -- what other code reads (no writes) -------------------------------------------------

def service_of(endpoint):
    """The endpoint service (moto's ``VPCServiceConfiguration``) an interface endpoint connects to,
    in any account of its region; None for an AWS service or a service that no longer exists."""
    return find_service(endpoint.service_name, endpoint.ec2_backend.region_name)


def private_dns_verified(service) -> bool:
    """Whether a service's private DNS name may be used: it has one and its TXT record was verified."""
    return bool(service.private_dns_name) and _dns(service)["state"] == "verified"


def find_service(name: str | None, region: str):
    """The endpoint service named ``name`` (``com.amazonaws.vpce.<region>.vpce-svc-...``), or None."""
    prefix = f"com.amazonaws.vpce.{region}."
    if not name or not name.startswith(prefix):
        return None
    service_id = name[len(prefix):]
    for backend in _regional(region):
        config = backend.configurations.get(service_id)
        if config is not None and config.service_name == name:
            return config
    return None


def connections(service) -> list:
    """Every interface endpoint (any account) that asked to connect to ``service``, deleted ones too."""
    return [e for backend in _regional(service.ec2_backend.region_name) for e in backend.vpc_end_points.values()
            if e.service_name == service.service_name]


def _regional(region: str):
    from moto.ec2.models import ec2_backends

    for account in list(ec2_backends):
        regions = ec2_backends[account]
        if region in dict.keys(regions):  # only backends that exist: never create one per account
            yield dict.__getitem__(regions, region)


def _dns(service) -> dict:
    """The service's private DNS verification record: state, TXT name and value (set when named)."""
    return getattr(service, "labkit_private_dns", None) or {"state": "pendingVerification", "name": "", "value": ""}


def _true(value) -> bool:
    return str(value).lower() == "true"


# -- the patches -------------------------------------------------------------------------

def apply() -> None:
    from moto.ec2.exceptions import EC2ClientError, InvalidServiceName
    from moto.ec2.models.vpc_service_configuration import VPCServiceConfiguration, VPCServiceConfigurationBackend
    from moto.ec2.models.vpcs import VPCBackend
    from moto.ec2.responses import EC2Response
    from moto.ec2.responses.vpc_service_configuration import VPCEndpointServiceConfiguration
    from moto.ec2.responses.vpcs import VPCs

    from ..journal import REPLAYING

    def invalid(message: str) -> EC2ClientError:
        return EC2ClientError("InvalidParameter", message)

    def no_service(service_id: str) -> EC2ClientError:
        return EC2ClientError("InvalidVpcEndpointServiceId.NotFound",
                              f"The VpcEndpointService Id '{service_id}' does not exist")

    # -- services: a private DNS name waits for its TXT record ---------------------------
    create_config = VPCServiceConfigurationBackend.create_vpc_endpoint_service_configuration

    def create_vpc_endpoint_service_configuration(self, *args, **kwargs):
        config = create_config(self, *args, **kwargs)
        config.acceptance_required = _true(config.acceptance_required)  # moto keeps the query string's "false"
        _name_dns(config)
        return config

    modify_config = VPCServiceConfigurationBackend.modify_vpc_endpoint_service_configuration

    def modify_vpc_endpoint_service_configuration(self, service_id, *args, **kwargs):
        config = self.describe_vpc_endpoint_service_configurations([service_id])[0]
        before = config.private_dns_name
        modify_config(self, service_id, *args, **kwargs)
        if config.private_dns_name != before:  # a new name must be verified afresh
            _name_dns(config)

    handle_modify = VPCEndpointServiceConfiguration.modify_vpc_endpoint_service_configuration

    def modify_vpc_endpoint_service_configuration_request(self):
        answer = handle_modify(self)
        if _true(self._get_param("RemovePrivateDnsName")):  # moto ignores it
            config = self.ec2_backend.configurations[self._get_param("ServiceId")]
            config.private_dns_name = None
            _name_dns(config)
        return answer

    def private_dns_name_configuration(self) -> dict:
        if not self.private_dns_name:
            return {}
        dns = _dns(self)
        return {"State": dns["state"], "Type": "TXT", "Value": dns["value"], "Name": dns["name"]}

    to_dict = VPCServiceConfiguration.to_dict

    def service_details(self) -> dict:
        details = to_dict(self)
        if self.private_dns_name:
            details["PrivateDnsNameVerificationState"] = _dns(self)["state"]
        else:
            details.pop("PrivateDnsNames", None)
        return details

    VPCServiceConfigurationBackend.create_vpc_endpoint_service_configuration = \
        create_vpc_endpoint_service_configuration
    VPCServiceConfigurationBackend.modify_vpc_endpoint_service_configuration = \
        modify_vpc_endpoint_service_configuration
    VPCEndpointServiceConfiguration.modify_vpc_endpoint_service_configuration = \
        modify_vpc_endpoint_service_configuration_request
    VPCServiceConfiguration.private_dns_name_configuration = property(private_dns_name_configuration)
    VPCServiceConfiguration.to_dict = service_details

    # -- endpoints: the connection request -----------------------------------------------
    create_endpoint = VPCBackend.create_vpc_endpoint

    def create_vpc_endpoint(self, *args, **kwargs):
        service_name = kwargs.get("service_name")
        interface = (kwargs.get("endpoint_type") or "").lower() in CONNECTING
        config = find_service(service_name, self.region_name)
        if config is None and service_name not in _aws_services(self):
            raise InvalidServiceName(service_name)
        if config is not None and not config.private_dns_name:
            kwargs["private_dns_enabled"] = False  # nothing to enable (moto says True whenever it is not asked)
        endpoint = create_endpoint(self, *args, **kwargs)
        if config is not None and interface:
            endpoint.state = PENDING if config.acceptance_required else AVAILABLE
            notify(config, endpoint, "Connect")
        return endpoint

    handle_create = VPCs.create_vpc_endpoint

    def create_vpc_endpoint_request(self):
        name = self._get_param("ServiceName")
        config = find_service(name, self.region)
        if config is not None and not REPLAYING.is_set() and not _allowed(self, config):
            raise InvalidServiceName(name)  # AWS answers a stranger as if the service did not exist
        if (self._get_param("VpcEndpointType") or "").lower() == "interface":  # only these have private DNS
            _check_private_dns(self, name, config, invalid)
        return handle_create(self)

    handle_services = VPCs.describe_vpc_endpoint_services

    def describe_vpc_endpoint_services_request(self):
        # moto lists only the caller's own account's services; AWS also lists those that allow the caller.
        own = self.ec2_backend.configurations
        foreign = {c.id: c for backend in _regional(self.region) if backend is not self.ec2_backend
                   for c in backend.configurations.values() if _allowed(self, c)}
        if not foreign:
            return handle_services(self)
        saved = dict(own)
        own.update(foreign)  # for this answer only: requests are served one at a time
        try:
            return handle_services(self)
        finally:
            own.clear()
            own.update(saved)

    delete_endpoints = VPCBackend.delete_vpc_endpoints

    def delete_vpc_endpoints(self, vpce_ids=None):
        before = {i: self.vpc_end_points[i].state for i in vpce_ids or () if i in self.vpc_end_points}
        delete_endpoints(self, vpce_ids)
        for endpoint_id, state in before.items():
            endpoint = self.vpc_end_points[endpoint_id]
            config = service_of(endpoint) if state != DELETED else None
            if config is not None:
                notify(config, endpoint, "Delete")

    VPCBackend.create_vpc_endpoint = create_vpc_endpoint
    VPCBackend.delete_vpc_endpoints = delete_vpc_endpoints
    VPCs.create_vpc_endpoint = create_vpc_endpoint_request
    VPCs.describe_vpc_endpoint_services = describe_vpc_endpoint_services_request

    # -- the owner's side: connections ---------------------------------------------------
    def owned(self, service_id):
        config = self.ec2_backend.configurations.get(service_id) if service_id else None
        if config is None:
            raise no_service(service_id)
        return config

    def describe_vpc_endpoint_connections(self):
        from moto.core.responses import ActionResult

        wanted = self._filters_from_querystring()
        found = []
        for config in self.ec2_backend.configurations.values():
            for endpoint in connections(config):
                row = _connection(config, endpoint)
                values = {"service-id": row["ServiceId"], "vpc-endpoint-id": row["VpcEndpointId"],
                          "vpc-endpoint-owner": row["VpcEndpointOwner"],
                          "vpc-endpoint-state": row["VpcEndpointState"]}
                if all(values.get(name) in allowed for name, allowed in wanted.items() if name in values):
                    found.append(row)
        return ActionResult({"VpcEndpointConnections": found})

    def answer(self, event: str, moves_from: tuple, to: str):
        from moto.core.responses import ActionResult

        config = owned(self, self._get_param("ServiceId"))
        mine = {e.id: e for e in connections(config)}
        failed = []
        for endpoint_id in self._get_param("VpcEndpointIds", []):
            endpoint = mine.get(endpoint_id)
            if endpoint is None:
                failed.append(_failure(endpoint_id, "InvalidVpcEndpointId.NotFound",
                                       f"The Vpc Endpoint Id '{endpoint_id}' does not exist"))
            elif endpoint.state not in moves_from:
                failed.append(_failure(endpoint_id, "InvalidStateTransition",
                                       f"The Vpc Endpoint '{endpoint_id}' is {endpoint.state}; it cannot be "
                                       f"{'accepted' if event == 'Accept' else 'rejected'}."))
            else:
                endpoint.state = to
                notify(config, endpoint, event)
        return ActionResult({"Unsuccessful": failed})

    def accept_vpc_endpoint_connections(self):
        return answer(self, "Accept", ACCEPTS_FROM, AVAILABLE)

    def reject_vpc_endpoint_connections(self):
        return answer(self, "Reject", REJECTS_FROM, REJECTED)

    # -- private DNS name verification ---------------------------------------------------
    def start_vpc_endpoint_service_private_dns_verification(self):
        from moto.core.responses import ActionResult

        config = owned(self, self._get_param("ServiceId"))
        if not config.private_dns_name:
            raise invalid(f"Endpoint service {config.id} has no private DNS name to verify.")
        dns = dict(_dns(config))
        dns["state"] = "verified" if _txt_published(config, dns) else "failed"
        config.labkit_private_dns = dns
        return ActionResult({"ReturnValue": True})

    # -- connection notifications ----------------------------------------------------------
    def create_vpc_endpoint_connection_notification(self):
        from moto.core.responses import ActionResult
        from moto.moto_api._internal import mock_random

        service_id, endpoint_id = self._get_param("ServiceId"), self._get_param("VpcEndpointId")
        if bool(service_id) == bool(endpoint_id):
            raise invalid("Specify exactly one of ServiceId or VpcEndpointId.")
        if service_id:
            owned(self, service_id)
        elif endpoint_id not in self.ec2_backend.vpc_end_points:
            raise EC2ClientError("InvalidVpcEndpointId.NotFound", f"The Vpc Endpoint Id '{endpoint_id}' does not exist")
        topic, events = self._get_param("ConnectionNotificationArn"), self._get_param("ConnectionEvents", [])
        _check_notification(topic, events, invalid)
        notification = {"ConnectionNotificationId": f"vpce-nfn-{mock_random.get_random_hex(17)}",
                        "ConnectionNotificationType": "Topic", "ConnectionNotificationArn": topic,
                        "ConnectionEvents": list(events), "ConnectionNotificationState": "Enabled"}
        notification.update({"ServiceId": service_id} if service_id else {"VpcEndpointId": endpoint_id})
        _notifications(self.ec2_backend)[notification["ConnectionNotificationId"]] = notification
        return ActionResult({"ConnectionNotification": notification, "ClientToken": self._get_param("ClientToken")})

    def find_notification(self, notification_id):
        notification = _notifications(self.ec2_backend).get(notification_id)
        if notification is None:
            raise EC2ClientError("InvalidConnectionNotification",
                                 f"The connection notification '{notification_id}' does not exist")
        return notification

    def describe_vpc_endpoint_connection_notifications(self):
        from moto.core.responses import ActionResult

        wanted_id = self._get_param("ConnectionNotificationId")
        found = [find_notification(self, wanted_id)] if wanted_id else list(_notifications(self.ec2_backend).values())
        keys = {"connection-notification-arn": "ConnectionNotificationArn",
                "connection-notification-id": "ConnectionNotificationId",
                "connection-notification-state": "ConnectionNotificationState",
                "connection-notification-type": "ConnectionNotificationType",
                "service-id": "ServiceId", "vpc-endpoint-id": "VpcEndpointId"}
        for name, allowed in self._filters_from_querystring().items():
            if name in keys:
                found = [n for n in found if n.get(keys[name]) in allowed]
        return ActionResult({"ConnectionNotificationSet": found})

    def modify_vpc_endpoint_connection_notification(self):
        from moto.core.responses import ActionResult

        notification = find_notification(self, self._get_param("ConnectionNotificationId"))
        topic = self._get_param("ConnectionNotificationArn") or notification["ConnectionNotificationArn"]
        events = self._get_param("ConnectionEvents", []) or notification["ConnectionEvents"]
        _check_notification(topic, events, invalid)
        notification.update(ConnectionNotificationArn=topic, ConnectionEvents=list(events))
        return ActionResult({"ReturnValue": True})

    def delete_vpc_endpoint_connection_notifications(self):
        from moto.core.responses import ActionResult

        held = _notifications(self.ec2_backend)
        failed = []
        for notification_id in self._get_param("ConnectionNotificationIds", []):
            if held.pop(notification_id, None) is None:
                failed.append(_failure(notification_id, "InvalidConnectionNotification",
                                       f"The connection notification '{notification_id}' does not exist"))
        return ActionResult({"Unsuccessful": failed})

    for handler in (describe_vpc_endpoint_connections, accept_vpc_endpoint_connections,
                    reject_vpc_endpoint_connections, start_vpc_endpoint_service_private_dns_verification,
                    create_vpc_endpoint_connection_notification, describe_vpc_endpoint_connection_notifications,
                    modify_vpc_endpoint_connection_notification, delete_vpc_endpoint_connection_notifications):
        setattr(EC2Response, handler.__name__, handler)


# -- helpers the patches share -------------------------------------------------------------

def _name_dns(config) -> None:
    """A fresh TXT record for the service's private DNS name to be verified with (moto's seeded random,
    so a replay gives the same record)."""
    from moto.moto_api._internal import mock_random

    if config.private_dns_name:
        config.labkit_private_dns = {"state": "pendingVerification", "name": f"_{mock_random.get_random_hex(20)}",
                                     "value": f"vpce:{mock_random.get_random_hex(20)}"}
    else:
        config.labkit_private_dns = None


_AWS_SERVICES: dict[str, frozenset] = {}  # per region: a constant of moto's, not state


def _aws_services(backend) -> frozenset:
    """The names of the AWS services (S3, DynamoDB, ...) moto offers endpoints to in a region."""
    region = backend.region_name
    if region not in _AWS_SERVICES:
        _AWS_SERVICES[region] = frozenset(s["ServiceName"] for s in backend._collect_default_endpoint_services(
            backend.account_id, region))
    return _AWS_SERVICES[region]


def _caller_arn(response) -> str | None:
    """The ARN of whoever signed the request (an assumed role's session or an IAM user), None when the
    access key is neither (the learner's own keys: the account itself)."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends
    from moto.utilities.utils import get_partition

    key, account, partition = response.get_access_key(), response.current_account, get_partition(response.region)
    role = sts_backends[account][partition].get_assumed_role_from_access_key(key)
    if role is not None:
        return role.arn
    user = iam_backends[account][partition].get_user_from_access_key_id(key)
    return user.arn if user is not None else None


def _allowed(response, config) -> bool:
    """AWS's rule: the service's own account may always connect; others only when an allowed principal
    (``*``, their account's root, their role or user) names them."""
    from ...policyeval import Principal, principal_match

    account = response.current_account
    if account == config.ec2_backend.account_id:
        return True
    who = Principal.aws(_caller_arn(response) or account)
    return bool(config.principals) and principal_match({"AWS": list(config.principals)}, who)


def _check_private_dns(response, name, config, invalid) -> None:
    asked = response._get_param("PrivateDnsEnabled")
    if asked is not None and not _true(asked):
        return
    offers = bool(config.private_dns_name) if config is not None else True  # AWS services have private DNS
    if not offers:
        if asked is not None:
            raise invalid(f"Private DNS can't be enabled because the service {name} does not provide a private "
                          "DNS name.")
        return
    vpc_id = response._get_param("VpcId")
    vpc = response.ec2_backend.vpcs.get(vpc_id)
    if vpc is not None and not (_true(vpc.enable_dns_support) and _true(vpc.enable_dns_hostnames)):
        raise invalid("Enabling private DNS requires both enableDnsSupport and enableDnsHostnames VPC attributes "
                      f"set to true for {vpc_id}")


def _check_notification(topic, events, invalid) -> None:
    parts = (topic or "").split(":")
    if len(parts) != 6 or parts[2] != "sns":
        raise invalid(f"ConnectionNotificationArn {topic!r} is not an SNS topic ARN.")
    if not events or any(e not in EVENTS for e in events):
        raise invalid(f"ConnectionEvents must be some of {', '.join(EVENTS)}.")


def _txt_published(config, dns) -> bool:
    """Whether a public Route 53 zone holds TXT ``<name>.<domain>`` = the value, for the private DNS
    name's domain or a parent of it (AWS verifies a domain, and its subdomains with it)."""
    from moto.route53.models import route53_backends

    labels = config.private_dns_name.rstrip(".").lower().removeprefix("*.").split(".")
    wanted = {f"{dns['name']}.{'.'.join(labels[i:])}" for i in range(len(labels) - 1)}
    account = config.ec2_backend.account_id
    if account not in route53_backends:
        return False
    for zone in route53_backends[account]["aws"].zones.values():
        if zone.private_zone:
            continue
        for record in zone.rrsets:
            if record.type == "TXT" and record.name.rstrip(".").lower() in wanted:
                values = [r.get("Value", "") if isinstance(r, dict) else str(r) for r in record.records]
                if any(v.strip('"') == dns["value"] for v in values):
                    return True
    return False


def _connection(config, endpoint) -> dict:
    """One row of DescribeVpcEndpointConnections, as AWS shapes it."""
    return {"ServiceId": config.id, "VpcEndpointId": endpoint.id, "VpcEndpointOwner": endpoint.owner_id,
            "VpcEndpointState": endpoint.state, "CreationTimestamp": endpoint.creation_timestamp,
            "DnsEntries": [{"DnsName": d.get("dns_name"), "HostedZoneId": d.get("hosted_zone_id")}
                           for d in endpoint.dns_entries or []],
            "NetworkLoadBalancerArns": list(config.network_load_balancer_arns),
            "GatewayLoadBalancerArns": list(config.gateway_load_balancer_arns), "IpAddressType": "ipv4",
            "VpcEndpointConnectionId": f"vpce-con-{endpoint.id.removeprefix('vpce-')}",
            "VpcEndpointRegion": endpoint.ec2_backend.region_name}


def _failure(resource_id: str, code: str, message: str) -> dict:
    return {"ResourceId": resource_id, "Error": {"Code": code, "Message": message}}


def _notifications(backend) -> dict:
    """A backend's connection notifications (moto's backend has none, so added on first use)."""
    held = getattr(backend, "labkit_connection_notifications", None)
    if held is None:
        held = backend.labkit_connection_notifications = {}
    return held


def notify(config, endpoint, event: str) -> None:
    """Publish ``event`` to the notifications that ask for it: the service's (its owner's) and the
    endpoint's own (its owner's), through SNS as ``vpce.amazonaws.com``."""
    chosen = [n for n in _notifications(config.ec2_backend).values() if n.get("ServiceId") == config.id]
    chosen += [n for n in _notifications(endpoint.ec2_backend).values() if n.get("VpcEndpointId") == endpoint.id]
    for notification in chosen:
        if notification["ConnectionNotificationState"] == "Enabled" and event in notification["ConnectionEvents"]:
            _publish(notification, config, endpoint, event)


def _publish(notification, config, endpoint, event) -> None:
    from moto.core.utils import utcnow
    from moto.sns.models import sns_backends

    from ...policyeval import Principal, evaluate

    arn = notification["ConnectionNotificationArn"]
    _, _, _, region, account, _ = arn.split(":")
    if account not in sns_backends or region not in dict.keys(sns_backends[account]):
        return
    backend = sns_backends[account][region]
    topic = backend.topics.get(arn)
    if topic is None:  # a deleted topic: AWS drops the notification too
        return
    # The request context AWS sends, so a policy guarding against the confused deputy (the documented one) allows it.
    owner = config.ec2_backend.account_id
    context = {"aws:SourceAccount": owner, "aws:SourceArn": f"arn:aws:ec2:{region}:{owner}:vpc-endpoint-service/{config.id}"}
    if not evaluate([json.loads(topic.policy)], action="sns:Publish", resource=arn,
                    principal=Principal.service(VPCE), context=context).allowed:
        return  # AWS cannot publish to a topic whose policy does not let it
    message = {"connectionNotificationId": notification["ConnectionNotificationId"], "eventType": event,
               "serviceId": config.id, "vpcEndpointId": endpoint.id, "vpcEndpointOwner": endpoint.owner_id,
               "vpcEndpointState": endpoint.state, "timestamp": utcnow().strftime("%Y-%m-%dT%H:%M:%S.000Z")}
    backend.publish(json.dumps(message), arn=arn, subject="VPC Endpoint Connection Notification")
