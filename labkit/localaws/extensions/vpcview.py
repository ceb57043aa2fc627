"""One VPC as the network fabric needs it, read from moto at one moment: a frozen snapshot.

The fabric never keeps moto's objects: it reads a ``View`` under the app's lock (``read``) when a probe
finds the VPC changed since the last one, and decides everything from that copy.
"""
from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field

from ..fidelity import privatelink

GATEWAY_SERVICES = ("s3", "dynamodb")  # the two services a gateway endpoint serves


@dataclass(frozen=True)
class Rule:
    """One ingress rule of a security group."""
    protocol: str  # "tcp", "udp", "icmp" or "-1" (all)
    from_port: int | None
    to_port: int | None
    cidrs: tuple[str, ...]
    groups: tuple[str, ...]

    def admits(self, port: int, address: str, groups: set[str]) -> bool:
        if self.protocol not in ("-1", "tcp", "6"):
            return False
        if self.protocol != "-1" and self.from_port is not None and not self.from_port <= port <= (self.to_port or port):
            return False
        if groups & set(self.groups):
            return True
        ip = ipaddress.ip_address(address)
        return any(ip in ipaddress.ip_network(c, strict=False) for c in self.cidrs)


@dataclass(frozen=True)
class Interface:
    """An interface endpoint of this VPC and what its service's load balancers listen on."""
    id: str
    state: str
    service_name: str
    addresses: dict  # subnet id -> the endpoint's address there
    groups: tuple[str, ...]
    names: tuple[str, ...]  # the names that resolve to it inside the VPC
    balancers: tuple[str, ...]  # the service's network load balancer ARNs
    ports: tuple[int, ...]  # their TCP listeners' ports


@dataclass(frozen=True)
class Gateway:
    id: str
    state: str
    service: str  # "s3" or "dynamodb"
    tables: tuple[str, ...]  # route tables holding a route to it
    policy: dict


@dataclass(frozen=True)
class View:
    vpc_id: str
    account: str
    region: str
    cidrs: tuple[str, ...]
    subnets: dict  # subnet id -> CIDR
    tables: dict   # subnet id -> its route table id (explicit association, else the main table)
    interfaces: tuple[Interface, ...] = ()
    gateways: tuple[Gateway, ...] = ()
    rules: dict = field(default_factory=dict)  # security group id (of this VPC) -> its ingress rules
    balancers: dict = field(default_factory=dict)  # load balancer DNS name -> (its VPC, its addresses)

    def signature(self) -> tuple:
        """What the namespace itself depends on: its addresses and what listens on them."""
        return tuple(sorted((i.id, tuple(sorted(i.addresses.values())), i.ports) for i in self.interfaces))

    def interface_at(self, address: str) -> Interface | None:
        return next((i for i in self.interfaces if address in i.addresses.values()), None)

    def admits(self, interface: Interface, port: int, address: str, groups: set[str]) -> bool:
        return any(rule.admits(port, address, groups) for g in interface.groups for rule in self.rules.get(g, ()))


def source_address(cidr: str) -> str:
    """The address a probe comes from in a subnet: its last usable one (AWS keeps the very last)."""
    network = ipaddress.ip_network(cidr, strict=False)
    return str(network.network_address + network.num_addresses - 2)


def read(vpc_id: str) -> View | None:
    """The view of ``vpc_id`` (call under the app's lock), or None when no region holds it."""
    from moto.ec2.models import ec2_backends

    for account, regions in ec2_backends.items():
        for region, backend in regions.items():
            vpc = backend.vpcs.get(vpc_id)
            if vpc is not None:
                return _view(backend, vpc, account, region)
    return None


def _view(backend, vpc, account: str, region: str) -> View:
    subnets = {s.id: s.cidr_block for zone in backend.subnets.values() for s in zone.values() if s.vpc_id == vpc.id}
    tables, main = {}, None
    for table in backend.route_tables.values():
        if table.vpc_id != vpc.id:
            continue
        if table.main_association_id is not None:
            main = table.id
        for target in table._associations.values():
            if target in subnets:
                tables[target] = table.id
    tables = {s: tables.get(s, main) for s in subnets}
    routed: dict[str, set] = {}
    for table in backend.route_tables.values():
        if table.vpc_id == vpc.id:
            for route in table.routes:
                if route.gateway_id and str(route.gateway_id).startswith("vpce-"):
                    routed.setdefault(route.gateway_id, set()).add(table.id)
    interfaces, gateways = [], []
    for endpoint in backend.vpc_end_points.values():
        if endpoint.vpc_id != vpc.id or endpoint.state == "deleted":
            continue
        kind = (endpoint.vpc_endpoint_type or "Gateway").lower()
        if kind == "interface":
            interfaces.append(_interface(backend, endpoint, vpc))
        elif kind == "gateway":
            service = endpoint.service_name.rsplit(".", 1)[-1]
            if service in GATEWAY_SERVICES:
                gateways.append(Gateway(endpoint.id, endpoint.state, service, tuple(sorted(routed.get(endpoint.id, ()))),
                                        _policy(endpoint.policy_document)))
    rules = {g.id: tuple(_rule(r) for r in g.ingress_rules) for g in backend.groups.get(vpc.id, {}).values()}
    cidrs = [vpc.cidr_block] + [a.get("cidr_block") for a in vpc.cidr_block_association_set
                                if isinstance(a, dict) and a.get("cidr_block")]
    return View(vpc.id, account, region, tuple(dict.fromkeys(cidrs)), subnets, tables, tuple(interfaces),
                tuple(gateways), rules, _balancers(account, region))


def _interface(backend, endpoint, vpc) -> Interface:
    addresses = {}
    for eni_id in endpoint.network_interface_ids or []:
        eni = backend.enis.get(eni_id)
        if eni is not None and eni.subnet is not None and eni.private_ip_address:
            addresses[eni.subnet.id] = eni.private_ip_address
    names = [entry.get("dns_name") for entry in endpoint.dns_entries or [] if entry.get("dns_name")]
    service = privatelink.service_of(endpoint)
    balancers, ports = (), ()
    if service is not None:
        balancers = tuple(service.network_load_balancer_arns)
        ports = _ports(balancers)
        if endpoint.private_dns_enabled and privatelink.private_dns_verified(service) \
                and vpc.enable_dns_support and vpc.enable_dns_hostnames:
            names.append(service.private_dns_name)
    return Interface(endpoint.id, endpoint.state, endpoint.service_name, addresses,
                     tuple(endpoint.security_group_ids or ()), tuple(n.lower().rstrip(".") for n in names),
                     balancers, ports)


def _ports(balancers: tuple[str, ...]) -> tuple[int, ...]:
    from moto.elbv2.models import elbv2_backends

    ports = set()
    for _account, regions in elbv2_backends.items():
        for _region, backend in regions.items():
            for arn in balancers:
                lb = backend.load_balancers.get(arn)
                if lb is not None:
                    ports.update(int(l.port) for l in lb.listeners.values() if l.protocol in ("TCP", "TLS", "TCP_UDP"))
    return tuple(sorted(ports))


def _balancers(account: str, region: str) -> dict:
    from moto.elbv2.models import elbv2_backends

    try:
        backend = elbv2_backends[account][region]
    except KeyError:
        return {}
    found = {}
    for lb in backend.load_balancers.values():
        kept = getattr(lb, "_labkit_addresses", None) or {}
        found[lb.dns_name.lower()] = (lb.vpc_id, tuple(ip for _, ip, _ in kept.values()))
    return found


def _rule(rule) -> Rule:
    cidrs = tuple(r.get("CidrIp") for r in ([rule.ip_range] if rule.ip_range else []) if r.get("CidrIp"))
    groups = tuple(g.get("GroupId") for g in ([rule.source_group] if rule.source_group else []) if g.get("GroupId"))
    return Rule(str(rule.ip_protocol or "-1"), rule.from_port, rule.to_port, cidrs, groups)


def _policy(document) -> dict:
    if isinstance(document, dict):
        return document
    try:
        return json.loads(document or "{}")
    except ValueError:
        return {}
