"""VPCs that isolate: a probe from inside a VPC reaches only what AWS's network would let it reach.

``POST /_vpc/probe`` (``labkit.vpc.probe``) sends one HTTP request from inside a VPC, from an address of
one of its subnets carrying the security groups the caller names, and says what happened. The VPC is a
network namespace of its own (``netns``), made on the first probe into it: its loopback holds the probe's
source addresses and the addresses of its interface endpoints, and it has no other interface and no route.
So in the kernel nothing else can be reached from it, another VPC's load balancer and the host included.

An interface endpoint is a listener on its addresses, inside the namespace, for each TCP port of its
service's network load balancers. A connection it accepts goes on to the load balancer (``elb.forward``)
only while the endpoint is ``available`` and only when one of the endpoint's security groups admits the
source on that port; otherwise it is reset. S3 and DynamoDB are reached through gateway endpoints
(``vpcgateway``). Where namespaces cannot be made (loopback mode) the same rules are applied here and the
endpoint's connection is a socket pair; every answer says which ``mode`` produced it.

Writes only mark the fabric stale (O(1)): a VPC's view is read again, and its namespace rebuilt when its
addresses or ports changed, on the first probe after a change.
"""
from __future__ import annotations

import errno
import hashlib
import http.client
import ipaddress
import json
import logging
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

from .. import netns
from ..http import Request, Response, json_response
from . import Claim, Extension, vpcgateway, vpcview
from .elbstream import reset as reset_connection

log = logging.getLogger("labkit.vpcnet")
PATH = "/_vpc/probe"
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE")
BODY_LIMIT = 65536
MAX_TIMEOUT = 30.0
UNREACHABLE = (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL)


class ProbeError(ValueError):
    """The probe asked for cannot be sent (one sentence why): a 400."""


class Fabric:
    """One VPC's namespace and its endpoints' listeners (namespace mode), for one view of the VPC."""

    def __init__(self, owner: "VpcNetwork", view: vpcview.View):
        self.owner, self.view = owner, view
        self.groups: dict[str, set] = {}  # a probe's source address -> the security groups it carries now
        self.refusals: dict[str, str] = {}  # a probe's source address -> why the endpoint reset its connection
        self.listeners: list[socket.socket] = []
        self.namespace = None
        self.lock = threading.Lock()  # one probe at a time per VPC: a source's groups are the probe's own
        if netns.available():
            addresses = [vpcview.source_address(c) for c in view.subnets.values()]
            addresses += [a for i in view.interfaces for a in i.addresses.values()]
            self.namespace = netns.create(owner.namespace_name(view.vpc_id), list(dict.fromkeys(addresses)))
            try:
                for interface in view.interfaces:
                    for address in interface.addresses.values():
                        for port in interface.ports:
                            self._listen(interface.id, address, port)
            except BaseException:
                self.close()
                raise

    def _listen(self, endpoint_id: str, address: str, port: int) -> None:
        sock = netns.listen(self.namespace, address, port)
        self.listeners.append(sock)
        threading.Thread(target=self._accept, args=(sock, endpoint_id, port), daemon=True,
                         name=f"vpce-{address}:{port}").start()

    def _accept(self, sock: socket.socket, endpoint_id: str, port: int) -> None:
        while True:
            try:
                client, peer = sock.accept()
            except OSError:
                return  # closed
            interface = next((i for i in self.view.interfaces if i.id == endpoint_id), None)
            self.admit(interface, port, peer[0], client, peer)

    def admit(self, interface, port: int, source: str, client: socket.socket, peer: tuple) -> None:
        """Hand ``client`` to the endpoint's load balancer, or reset it (and keep why)."""
        why = self.owner.refusal(self.view, interface, port, source, self.groups.get(source, set()))
        if why is None:
            for arn in interface.balancers:
                if self.owner.host.extension("elb").forward(arn, port, client, peer, as_balancer=True):
                    return
            why = (f"the endpoint service's load balancer has no TCP listener served on port {port}"
                   if interface.balancers else "the endpoint's service has no network load balancer")
        self.refusals[source] = why  # probes into a VPC go one at a time: the source names the probe
        reset_connection(client)

    def close(self) -> None:
        for sock in self.listeners:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
            except OSError:
                pass
            sock.close()
        self.listeners = []
        if self.namespace is not None:
            self.namespace.delete()
            self.namespace = None


class VpcNetwork(Extension):
    name = "vpcnet"
    services = ("ec2", "elasticloadbalancing", "route53")

    def __init__(self, host):
        super().__init__(host)
        self.lock = threading.Lock()
        self.version = 0  # bumped by every write: a view older than it is read again
        self.fabrics: dict[str, tuple[int, Fabric]] = {}
        self.tag = hashlib.sha256(str(host.state_dir).encode()).hexdigest()[:6]

    def namespace_name(self, vpc_id: str) -> str:
        return f"vpc-{hashlib.sha256(f'{self.tag}/{vpc_id}'.encode()).hexdigest()[:8]}"

    # -- the extension protocol ---------------------------------------------------
    def claims(self, request: Request) -> Claim | None:
        return Claim.DATA if request.path == PATH and request.method == "POST" else None

    def written(self, service, request) -> None:
        self.version += 1
        if request.action == "DeleteVpc" and self.fabrics:  # `labkit cleanup`: its namespace goes with it
            self._drop_all()

    def restored(self) -> None:
        self.version += 1

    def reset(self) -> None:
        self._drop_all()

    def close(self) -> None:
        self._drop_all()

    def status(self) -> dict:
        return {"vpcs": len(self.fabrics), "network": netns.mode()}

    def _drop_all(self) -> None:
        with self.lock:
            fabrics, self.fabrics = self.fabrics, {}
            self.version += 1
        for _, fabric in fabrics.values():
            fabric.close()

    # -- the probe ------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        try:
            asked = json.loads(request.body or b"{}")
            if not isinstance(asked, dict):
                raise ProbeError("The probe must be a JSON object.")
            return json_response(self.probe(**_arguments(asked)))
        except ValueError as exc:  # ProbeError and bad JSON alike
            message = str(exc) if isinstance(exc, ProbeError) else f"The probe is not valid JSON ({exc})."
            return json_response({"message": message}, 400)

    def probe(self, vpc_id: str, url: str, security_group_ids=(), subnet_id=None, method="GET", timeout=5.0,
              headers=None, body="") -> dict:
        begun = time.perf_counter()
        fabric = self._fabric(vpc_id)
        view = fabric.view
        subnet_id = subnet_id or next(iter(sorted(view.subnets)), None)
        if subnet_id is None:
            raise ProbeError(f"VPC {vpc_id} has no subnet to send a probe from: create one first.")
        if subnet_id not in view.subnets:
            raise ProbeError(f"Subnet {subnet_id} is not a subnet of VPC {vpc_id}.")
        groups = set(security_group_ids)
        strangers = sorted(groups - set(view.rules))
        if strangers:
            raise ProbeError(f"Security group {strangers[0]} is not a security group of VPC {vpc_id}.")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProbeError(f"{url!r} is not an http:// or https:// URL.")
        source = vpcview.source_address(view.subnets[subnet_id])
        answer = {"outcome": "", "status": None, "body": "", "address": None, "source": source,
                  "elapsed_ms": 0.0, "mode": netns.mode(), "detail": ""}
        with fabric.lock:
            fabric.groups[source] = groups
            fabric.refusals.pop(source, None)
            try:
                answer.update(self._send(fabric, subnet_id, source, parts, url, method, timeout, dict(headers or {}),
                                         body or ""))
            finally:
                fabric.groups.pop(source, None)
        answer["elapsed_ms"] = round((time.perf_counter() - begun) * 1000, 2)
        return answer

    def _fabric(self, vpc_id: str) -> Fabric:
        with self.lock:
            version = self.version
            kept = self.fabrics.get(vpc_id)
            if kept is not None and kept[0] == version:
                return kept[1]
            view = self.host.read_backend(lambda: vpcview.read(vpc_id))
            if view is None:
                raise ProbeError(f"VPC {vpc_id} does not exist in the local AWS.")
            if kept is not None and kept[1].view.signature() == view.signature():
                kept[1].view = view  # same addresses and ports: only the rules it reads changed
                self.fabrics[vpc_id] = (version, kept[1])
                return kept[1]
            if kept is not None:
                kept[1].close()
            fabric = Fabric(self, view)
            self.fabrics[vpc_id] = (version, fabric)
            return fabric

    def _send(self, fabric: Fabric, subnet_id: str, source: str, parts, url: str, method: str, timeout: float,
              headers: dict, body: str) -> dict:
        view = fabric.view
        host = parts.hostname.lower().rstrip(".")
        service = vpcgateway.service_of(host)
        if service is not None:
            return self._through_gateway(view, subnet_id, service, url, method, timeout, headers, body)
        address, why = _resolve(view, host, subnet_id)
        if address is None:
            return {"outcome": "unresolved", "detail": why}
        port = parts.port or (443 if parts.scheme == "https" else 80)
        out = {"address": address}
        if ipaddress.ip_address(address).is_loopback:  # the probe's own loopback, never the host's
            return {**out, "outcome": "refused", "detail": f"nothing listens on {address}:{port} inside the VPC"}
        interface = view.interface_at(address)
        try:
            if interface is None:
                sock = self._elsewhere(fabric, address, port, source, timeout)
            elif fabric.namespace is not None:
                sock = netns.connect(address, port, timeout, namespace=fabric.namespace, source=source)
            else:
                sock = self._paired(fabric, interface, port, source)
        except socket.timeout:
            return {**out, "outcome": "timeout", "detail": f"no answer from {address}:{port} in {timeout:g} s"}
        except ConnectionResetError:  # reset so fast that connect() itself saw it
            return {**out, "outcome": "refused", "detail": self._reset_why(fabric, source, address, port, None)}
        except OSError as exc:
            return {**out, **_failed(exc, address, port, view.vpc_id)}
        try:
            status, data = _exchange(sock, parts, host, method, headers, body, timeout)
        except socket.timeout:
            return {**out, "outcome": "timeout", "detail": f"no answer from {address}:{port} in {timeout:g} s"}
        except (OSError, http.client.HTTPException) as exc:
            return {**out, "outcome": "refused", "detail": self._reset_why(fabric, source, address, port, exc)}
        finally:
            sock.close()
        return {**out, "outcome": "answered", "status": status, "body": data,
                "detail": f"{address}:{port} answered {status}" + (f" (interface endpoint {interface.id})"
                                                                   if interface else "")}

    @staticmethod
    def _reset_why(fabric: Fabric, source: str, address: str, port: int, exc) -> str:
        why = fabric.refusals.pop(source, None)
        return f"{address}:{port} reset the connection: {why or exc or 'reset by peer'}"

    def _elsewhere(self, fabric: Fabric, address: str, port: int, source: str, timeout: float) -> socket.socket:
        """A connection to an address no endpoint of this VPC holds: in a namespace, the kernel decides
        (there is no route); in loopback mode nothing is sent to a VPC address from the host, so no route."""
        if fabric.namespace is not None:
            return netns.connect(address, port, timeout, namespace=fabric.namespace, source=source)
        raise OSError(errno.ENETUNREACH, "no route")

    def _paired(self, fabric: Fabric, interface, port: int, source: str) -> socket.socket:
        """Loopback mode: the endpoint's connection is a socket pair, its far end handed to the fabric."""
        if port not in interface.ports:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "nothing listens there")
        near, far = socket.socketpair()
        peer = ("paired", source)
        fabric.admit(interface, port, source, far, peer)
        return near

    def _through_gateway(self, view, subnet_id: str, service: str, url: str, method: str, timeout: float,
                         headers: dict, body: str) -> dict:
        gateway = vpcgateway.route_for(view, subnet_id, service)
        if gateway is None:
            return {"outcome": "unreachable",
                    "detail": f"the route table of {subnet_id} has no route to a {service} gateway endpoint, and the "
                              f"VPC has no other way out: {service} cannot be reached from {view.vpc_id}"}
        call = vpcgateway.call_for(view, url, method, headers, body)
        decision = vpcgateway.decide(view, gateway, call)
        if not decision.allowed:
            text, _ = vpcgateway.denied_body(view, gateway, call)
            why = (f"denied by {decision.denied_by[0].where}" if decision.denied else "no statement allows it")
            return {"outcome": "answered", "status": 403, "body": text,
                    "detail": f"the policy of gateway endpoint {gateway.id} refuses {call.action} on "
                              f"{call.resource}: {why}"}
        if not call.read:
            return {"outcome": "refused",
                    "detail": f"gateway endpoint {gateway.id} allows {call.action}, but a probe only reads "
                              "(GET or HEAD on S3, read actions on DynamoDB)"}
        status, data, _ = vpcgateway.send(self.host.endpoint, view, call, method, headers, body, timeout)
        return {"outcome": "answered", "status": status, "body": data[:BODY_LIMIT].decode("utf-8", "replace"),
                "detail": f"{service} answered {status} through gateway endpoint {gateway.id}"}

    def refusal(self, view: vpcview.View, interface, port: int, source: str, groups: set) -> str | None:
        """Why the endpoint refuses a connection from ``source`` on ``port``, or None when it takes it."""
        if interface is None:
            return "no interface endpoint holds that address"
        if interface.state != "available":
            return f"interface endpoint {interface.id} is {interface.state}, not available"
        if not view.admits(interface, port, source, groups):
            carried = ", ".join(sorted(groups)) or "no security group"
            return (f"no security group of interface endpoint {interface.id} admits {source} ({carried}) "
                    f"on TCP port {port}")
        return None


def _resolve(view: vpcview.View, host: str, subnet_id: str) -> tuple[str | None, str]:
    """The address ``host`` resolves to inside the VPC (the endpoint's address in the probe's own subnet
    first), or None and why."""
    try:
        ipaddress.ip_address(host)
        return host, ""
    except ValueError:
        pass
    for interface in view.interfaces:
        if host in interface.names:
            here = interface.addresses.get(subnet_id)
            return (here or next(iter(interface.addresses.values()), None)), "its interface endpoint has no address yet"
    found = view.balancers.get(host)
    if found and found[1]:
        return found[1][0], ""
    return None, f"{host} does not resolve inside {view.vpc_id}"


def _failed(exc: OSError, address: str, port: int, vpc_id: str) -> dict:
    if exc.errno in UNREACHABLE:
        return {"outcome": "unreachable", "detail": f"no route from {vpc_id} to {address}:{port}"}
    if isinstance(exc, ConnectionRefusedError):
        return {"outcome": "refused", "detail": f"{address}:{port} refused the connection"}
    return {"outcome": "refused", "detail": f"{address}:{port}: {exc.strerror or exc}"}


def _exchange(sock: socket.socket, parts, host: str, method: str, headers: dict, body: str, timeout: float):
    sock.settimeout(timeout)
    if parts.scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the course's own certificates
        sock = context.wrap_socket(sock, server_hostname=host)
    connection = http.client.HTTPConnection(host, timeout=timeout)
    connection.sock = sock
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection.request(method, path, body=body.encode() if body else None,
                       headers={"Connection": "close", **headers})
    answer = connection.getresponse()
    data = answer.read(BODY_LIMIT)
    return answer.status, data.decode("utf-8", "replace")


def _arguments(asked: dict) -> dict:
    known = {"vpc_id", "url", "security_group_ids", "subnet_id", "method", "timeout", "headers", "body"}
    unknown = sorted(set(asked) - known)
    if unknown:
        raise ProbeError(f"The probe does not take {unknown[0]!r}; it takes {', '.join(sorted(known))}.")
    for key in ("vpc_id", "url"):
        if not isinstance(asked.get(key), str) or not asked[key]:
            raise ProbeError(f"The probe needs {key} as a string.")
    groups = asked.get("security_group_ids") or []
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise ProbeError("security_group_ids must be a list of security group ids.")
    method = str(asked.get("method") or "GET").upper()
    if method not in METHODS:
        raise ProbeError(f"The probe sends {', '.join(METHODS)}, not {method}.")
    timeout = asked.get("timeout", 5.0)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_TIMEOUT:
        raise ProbeError(f"timeout must be a number of seconds above 0 and at most {MAX_TIMEOUT:g}.")
    headers = asked.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise ProbeError("headers must be an object of strings.")
    body = asked.get("body") or ""
    if not isinstance(body, str):
        raise ProbeError("body must be a string.")
    subnet = asked.get("subnet_id")
    if subnet is not None and not isinstance(subnet, str):
        raise ProbeError("subnet_id must be a subnet id.")
    return {"vpc_id": asked["vpc_id"], "url": asked["url"], "security_group_ids": groups, "subnet_id": subnet,
            "method": method, "timeout": float(timeout), "headers": headers, "body": body}


EXTENSION = VpcNetwork
