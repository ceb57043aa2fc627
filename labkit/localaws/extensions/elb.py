"""Load balancers that answer: one loopback port per HTTP or HTTPS listener of an ALB (ALB's rules)
and per TCP listener of an NLB (the byte stream to a target), with real health checks.

moto stores load balancers, listeners, rules and target groups, and says every registered target is
healthy. Here each HTTP listener of an application load balancer listens on its own port of
127.0.0.1 (kept across restarts in ``load-balancers.json`` in the state folder, which
``python -m labkit lb`` reads), and a request to it goes as it would on AWS:

1. the listener's rules by priority (``elbrules.py``), the default action last;
2. fixed-response and redirect are answered here; forward draws a target group by weight, then a
   target round robin among the healthy ones (``elbhealth.py`` probes them for real);
3. the request goes to the target through ``netns.connect`` (inside the target's namespace, never
   from the host's own to a VPC address), with X-Forwarded-For/-Proto/-Port added;
4. ALB's own answers where it has no target answer to give: 503 when the group has no registered
   target (or none has passed a check yet), 502 when the target refuses the connection or answers
   with something that is not HTTP, 504 when it does not answer within the load balancer's idle timeout.

When every target failed its checks ALB fails open and sends requests to all of them; so does this.
An HTTPS listener serves TLS with its certificate from the local ACM and its SslPolicy's lowest
TLS version (``elbtls.py``), then the same rules; its URL in ``labkit lb`` is ``https://``.

A network load balancer's TCP listener (``elbstream.py``) takes connections on its loopback port
and hands each, as a byte stream, to one target of its default action's target group: round robin
among the healthy ones, all of them when none is healthy (NLB fails open), none while all are still
in their first checks (the connection is reset). Its target groups are checked as configured (TCP:
the connection opens; HTTP/HTTPS: the path answers within the matcher, 200-399 by default) with
NLB's defaults (every 30 s, 5 passes to be healthy, 2 failures to be unhealthy, 10 s timeout).
Targets of type ``instance`` are reached at the instance's private address. TLS and UDP listeners
are accepted and stored, not served.

For the rest of the local AWS (lab 06's PrivateLink endpoint services), with ``ext`` this extension
(``host.extension("elb")``):

- ``ext.forward(load_balancer_arn, port, client, source)`` serves an accepted socket ``client``
  as a connection to the NLB's listener on ``port``, from ``source`` (an (ip, port) pair, as
  ``accept`` returns); it returns at once (True) and a thread of its own carries the flow and
  closes ``client``; False (``client`` closed) when no TCP listener of that NLB is on that port;
  with ``as_balancer=True`` the target sees the NLB's own address as the peer, as behind PrivateLink;
- ``ext.local_port(listener_arn)``: the loopback port a listener answers on, or None;
- ``ext.addresses(load_balancer_arn)``: {subnet id: private address} of an NLB (its interfaces).
``describe_target_health`` answers with what the probes saw. A rule or target change is read on the
next write to Elastic Load Balancing (and about once a second, for targets registered from inside
the local AWS), so it takes effect without a restart; reset and close stop every listener and probe.
"""
from __future__ import annotations

import copy
import http.client
import json
import logging
import queue
import random
import socket
import threading
import time
import uuid
import weakref
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .. import netns
from ..journal import write_atomically
from . import Extension
from .elbhealth import REGISTERING, Checker, Group, check_from
from . import elbtls
from .elbstream import StreamServer, connect_to, pipe, reset
from .elbrules import (Incoming, alb_error_body, final_action, forward_choices, matching_rule, pick_group,
                       redirect_location, redirect_status)

log = logging.getLogger("labkit.elb")
RECORD = "load-balancers.json"
BIND = "127.0.0.1"
MAX_CONCURRENT = 64     # requests in flight per listener; more wait to be accepted
MAX_BODY = 10 * 1024 * 1024
CLIENT_IDLE_S = 120.0   # a client that sends nothing for this long is closed
# Connections to targets are kept alive where a delayed ACK can be asked away (Linux), else closed.
KEEP_ALIVE = hasattr(socket, "TCP_QUICKACK")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "content-length"}


@dataclass(frozen=True)
class Rule:
    priority: object  # int, or "default"
    conditions: list
    actions: list


@dataclass(frozen=True)
class Listener:
    arn: str
    load_balancer: str
    name: str
    dns_name: str
    port: int
    protocol: str
    rules: tuple
    idle_timeout: float
    kind: str = "application"  # the load balancer's type: application | network
    certificate: str | None = None  # an HTTPS listener's default certificate (ACM ARN)
    ssl_policy: str | None = None

    @property
    def served(self) -> bool:
        """Whether the local AWS answers on it: an ALB's HTTP or HTTPS listener, an NLB's TCP listener."""
        return (self.kind, self.protocol) in (("application", "HTTP"), ("application", "HTTPS"), ("network", "TCP"))

    @property
    def scheme(self) -> str:
        return {"HTTP": "http", "HTTPS": "https"}.get(self.protocol, "tcp")


@dataclass
class Answer:
    status: int
    headers: list
    body: bytes


def read_models() -> tuple[dict, dict]:
    """(listener ARN -> Listener, target group ARN -> Group) of every application and network load balancer in moto."""
    from moto.elbv2.models import elbv2_backends

    listeners, groups = {}, {}
    for _account, regions in elbv2_backends.items():
        for _region, backend in regions.items():
            used = set()
            for lb in backend.load_balancers.values():
                if lb.type not in ("application", "network"):
                    continue
                try:
                    idle = float(lb.attrs.get("idle_timeout.timeout_seconds") or 60)
                except ValueError:
                    idle = 60.0
                for model in lb.listeners.values():
                    ordered = sorted(model.rules.values(),
                                     key=lambda r: (r.is_default, 0 if r.is_default else int(r.priority)))
                    rules = tuple(Rule(r.priority, copy.deepcopy(list(r.conditions or [])),
                                       [copy.deepcopy(a.data) for a in r.actions]) for r in ordered)
                    for rule in rules:
                        for action in rule.actions:
                            if action.get("Type") == "forward":
                                used.update(arn for arn, _ in forward_choices(action))
                    listeners[model.arn] = Listener(model.arn, lb.arn, lb.name, lb.dns_name, int(model.port),
                                                    model.protocol, rules, idle, lb.type,
                                                    getattr(model, "certificate", None), getattr(model, "ssl_policy", None))
            for tg in backend.target_groups.values():
                try:
                    delay = float(tg.attributes.get("deregistration_delay.timeout_seconds", 300))
                except ValueError:
                    delay = 300.0
                targets = tuple((t["Id"], int(t["Port"])) for t in tg.targets.values())
                addresses = {}
                if tg.target_type == "instance":
                    for target_id, _ in targets:
                        try:
                            addresses[target_id] = backend.ec2_backend.get_instance(target_id).private_ip
                        except Exception:  # a terminated or unknown instance: unreachable, checks fail
                            pass
                groups[tg.arn] = Group(tg.arn, tg.name, check_from(tg), targets, tg.arn in used, delay, addresses)
    return listeners, groups


class LoadBalancers(Extension):
    name = "elb"
    services = ("elasticloadbalancing",)

    def __init__(self, host):
        super().__init__(host)
        self.lock = threading.RLock()
        self.listeners: dict[str, Listener] = {}
        self.groups: dict[str, Group] = {}
        self.servers: dict[str, "ListenerServer | StreamServer"] = {}
        self.counts: Counter = Counter()  # (target group ARN, id, port) -> requests sent there
        self.flows: Counter = Counter()   # (target group ARN, id, port) -> NLB connections sent there
        self.turn: Counter = Counter()    # round robin position per target group
        self.rng = random.Random()        # never moto's seeded generator: ids must stay deterministic
        self.idle = Idle()
        self.refused: set = set()  # HTTPS listeners not served for want of a certificate
        self.checker: Checker | None = None
        self.record_path = host.state_dir / RECORD
        self.ports: dict[str, int] = self._recorded_ports()
        self.recorded: bytes | None = None
        self.closed = False
        install_health_answers(self)

    # -- the extension protocol ---------------------------------------------------
    def written(self, service, request) -> None:
        if not self.host.replaying:  # a replay is read once, at its end
            self.refresh()

    def restored(self) -> None:
        self.refresh()

    def reset(self) -> None:
        self.stop_all()
        with self.lock:
            self.counts.clear()
            self.flows.clear()
            self.turn.clear()

    def close(self) -> None:
        self.closed = True
        self.stop_all()
        uninstall_health_answers(self)

    def status(self) -> dict:
        with self.lock:
            return {"listeners": len(self.servers), "target_groups": len(self.groups),
                    "requests": sum(self.counts.values()), "connections": sum(self.flows.values()), "network": netns.mode()}

    # -- reading the configuration -------------------------------------------------
    def refresh(self, by: Checker | None = None) -> None:
        """Read load balancers and target groups from moto and make what runs match them
        (``by``: the checker whose tick asks; a stopped one's reading is dropped)."""
        if self.closed or (by is not None and by.stopping.is_set()):
            return
        listeners, groups = self.host.read_backend(read_models)
        with self.lock:
            if self.closed or (by is not None and by is not self.checker):
                return
            self.listeners, self.groups = listeners, groups
            if groups and self.checker is None:
                self.checker = Checker(on_tick=self._tick)
                self.checker.start()
            if self.checker is not None:
                self.checker.update(groups)
            served = {arn for arn, l in listeners.items() if l.served}
            for arn in list(self.servers):
                if arn not in served:
                    self.servers.pop(arn).stop()
            for arn in served - set(self.servers):
                server = self._serve(arn)
                if server is not None:  # an HTTPS listener without a usable certificate is not
                    self.servers[arn] = server
            self._write_record()

    def _tick(self, checker: Checker) -> None:
        self.refresh(by=checker)

    def stop_all(self) -> None:
        with self.lock:
            servers, self.servers = self.servers, {}
            checker, self.checker = self.checker, None
            self.listeners, self.groups = {}, {}
        for server in servers.values():
            server.stop()
        self.idle.clear()
        if checker is not None:
            checker.stop()
        with self.lock:
            self._write_record()

    def _serve(self, arn: str) -> "ListenerServer | StreamServer | None":
        wanted = self.ports.get(arn, 0)
        if self.listeners[arn].kind == "network":
            def make(port):
                return StreamServer(lambda client, source: self._flow(arn, client, source), port, arn)
        else:
            context = None
            if self.listeners[arn].protocol == "HTTPS":
                context = self.host.read_backend(lambda: elbtls.context_for(self.listeners[arn], arn not in self.refused))
                if context is None:
                    self.refused.add(arn)  # said once in the log; tried again on every reading
                    return None
                self.refused.discard(arn)

            def make(port):
                return ListenerServer(self, arn, port, context)
        try:
            server = make(wanted)
        except OSError:  # the port it had is taken now: another one, recorded
            server = make(0)
        self.ports[arn] = server.port
        server.start()
        return server

    def _recorded_ports(self) -> dict[str, int]:
        try:
            return {k: int(v) for k, v in json.loads(self.record_path.read_text()).get("ports", {}).items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def _write_record(self) -> None:
        rows = []
        for arn, server in self.servers.items():
            listener = self.listeners.get(arn)
            if listener is not None:
                rows.append({"name": listener.name, "dns_name": listener.dns_name, "load_balancer_arn": listener.load_balancer,
                             "listener_arn": arn, "listener_port": listener.port, "type": listener.kind,
                             "url": f"{listener.scheme}://{BIND}:{server.port}"})
        rows.sort(key=lambda r: (r["name"], r["listener_port"]))
        data = json.dumps({"ports": self.ports, "serving": rows}, indent=1).encode()
        if data == self.recorded:
            return  # read again every second: written only when it changed
        try:
            write_atomically(self.record_path, data)
            self.recorded = data
        except OSError:
            log.exception("the load balancer ports could not be recorded")

    # -- serving a request ----------------------------------------------------------
    def answer(self, arn: str, r: Incoming, headers: list, body: bytes, target: str) -> Answer:
        listener = self.listeners.get(arn)
        if listener is None:
            return alb_error(503, "the listener was deleted")
        rule = matching_rule(list(listener.rules), r)
        action = final_action(rule.actions) if rule is not None else None
        if action is None:
            return alb_error(503, "no rule and no default action matched")
        kind = action.get("Type")
        if kind == "fixed-response":
            config = action.get("FixedResponseConfig") or {}
            return Answer(int(config.get("StatusCode") or 200),
                          [("Content-Type", config.get("ContentType") or "text/plain"), ("Server", "awselb/2.0")],
                          (config.get("MessageBody") or "").encode())
        if kind == "redirect":
            config = action.get("RedirectConfig") or {}
            return Answer(redirect_status(config), [("Location", redirect_location(config, r)), ("Server", "awselb/2.0"),
                                                    ("Content-Type", "text/html")], alb_error_body(redirect_status(config)))
        group_arn = pick_group(forward_choices(action), self.rng)
        picked = self._pick_target(group_arn)
        if picked is None:
            group = self.groups.get(group_arn or "")
            why = "has no registered targets" if group is None or not group.targets else "has no target that passed a health check yet"
            return alb_error(503, f"target group {group.name if group else group_arn} {why}")
        with self.lock:
            self.counts[(group_arn, *picked)] += 1
        return forward(self._where(group_arn, picked), r, headers, body, target, listener, self.idle)

    def _pick_target(self, group_arn: str | None):
        """(id, port) of the next target of the group to send to, or None."""
        checker = self.checker
        if group_arn is None or checker is None:
            return None
        choices = checker.routable(group_arn)
        if not choices:
            return None
        with self.lock:
            self.turn[group_arn] += 1
            return choices[self.turn[group_arn] % len(choices)]

    def _where(self, group_arn: str, key: tuple) -> tuple:
        """(address, port) where target (id, port) of a group is reached (an instance: its private address)."""
        group = self.groups.get(group_arn)
        return (group.address(key[0]) if group is not None else key[0]), key[1]

    # -- network load balancers ---------------------------------------------------------
    def forward(self, load_balancer_arn: str, port: int, client, source=None, as_balancer: bool = False) -> bool:
        """Serve accepted socket ``client`` as a connection to the NLB's TCP listener on ``port``
        (from ``source``, an (ip, port) pair); returns at once, a thread carries the flow. ``as_balancer``:
        the target sees the load balancer's own address as the source (PrivateLink's rule), not the client's."""
        listener = next((l for l in self.listeners.values() if l.load_balancer == load_balancer_arn
                         and l.port == int(port) and l.served and l.kind == "network"), None)
        if listener is None:
            reset(client)
            return False
        own = next(iter(self.addresses(load_balancer_arn).values()), None) if as_balancer else None
        threading.Thread(target=self._flow, args=(listener.arn, client, source, own), daemon=True,
                         name=f"elb-{listener.port}-flow").start()
        return True

    def local_port(self, listener_arn: str) -> int | None:
        """The loopback port listener ``listener_arn`` answers on, or None when it is not served."""
        with self.lock:
            server = self.servers.get(listener_arn)
            return server.port if server is not None else None

    def addresses(self, load_balancer_arn: str) -> dict[str, str]:
        """{subnet id: private address} of a network load balancer, one per subnet mapping."""
        from moto.elbv2.models import elbv2_backends

        def read():
            for _account, regions in elbv2_backends.items():
                for _region, backend in regions.items():
                    lb = backend.load_balancers.get(load_balancer_arn)
                    if lb is not None:
                        return {s: found[1] for s, found in (getattr(lb, "_labkit_addresses", None) or {}).items()}
            return {}

        return self.host.read_backend(read)

    def _flow(self, listener_arn: str, client, source, own: str | None = None) -> None:
        listener = self.listeners.get(listener_arn)
        rule = listener.rules[-1] if listener is not None and listener.rules else None  # an NLB's: the default
        action = final_action(rule.actions) if rule is not None else None
        group_arn = pick_group(forward_choices(action), self.rng) if action and action.get("Type") == "forward" else None
        picked = self._pick_target(group_arn)
        target = connect_to(self._where(group_arn, picked), own) if picked is not None else None
        if target is None:
            reset(client)
            return
        with self.lock:
            self.flows[(group_arn, *picked)] += 1
        log.debug("flow from %s to %s:%s", source, *picked)
        pipe(client, target)

    def request_counts(self, group_arn: str | None = None) -> dict:
        """Requests sent to each target, (target group ARN, id, port) -> count (for request-count scaling)."""
        with self.lock:
            return {k: v for k, v in self.counts.items() if group_arn is None or k[0] == group_arn}

    # -- describe_target_health -------------------------------------------------------
    def health_of(self, group_arn: str, asked: list, statuses: list) -> list:
        """moto's answer to describe_target_health, with the states the probes saw instead of "healthy"."""
        from moto.elbv2.models import FakeHealthStatus

        self.refresh()  # a target registered from inside the local AWS a moment ago is known now
        checker = self.checker
        seen = checker.describe(group_arn) if checker is not None else {}
        group = self.groups.get(group_arn)
        check = group.check if group is not None else None

        def status(target_id, port, triple):
            health_port = str(check.port_for(port)) if check is not None else str(port)
            return FakeHealthStatus(target_id, port, health_port, *triple)

        out = []
        registered = set(group.targets) if group is not None else set()
        for found in statuses:
            key = (found.instance_id, int(found.port))
            if key in registered:
                out.append(status(*key, seen.get(key, REGISTERING)))
            elif key in seen:  # draining: moto forgot it at once
                out.append(status(*key, seen[key]))
            else:
                out.append(found)
        if not asked:
            out.extend(status(*key, triple) for key, triple in seen.items() if key not in registered)
        return out


def alb_error(status: int, reason: str) -> Answer:
    return Answer(status, [("Content-Type", "text/html"), ("Server", "awselb/2.0"), ("X-Labkit-Reason", reason)],
                  alb_error_body(status))


class Idle:
    """Kept-alive connections to targets, as ALB keeps them: a request reuses one when it can."""

    PER_TARGET = 8

    def __init__(self):
        self.lock = threading.Lock()
        self.free: dict[tuple, list] = {}

    def take(self, key: tuple):
        with self.lock:
            found = self.free.get(key)
            return found.pop() if found else None

    def give(self, key: tuple, conn) -> None:
        with self.lock:
            found = self.free.setdefault(key, [])
            if len(found) < self.PER_TARGET:
                found.append(conn)
                return
        conn.close()

    def clear(self) -> None:
        with self.lock:
            kept, self.free = self.free, {}
        for conns in kept.values():
            for conn in conns:
                conn.close()


def _headers_for_target(r: Incoming, headers: list) -> list:
    sent = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP
            and k.lower() not in ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-port")]
    earlier = ", ".join(v for k, v in headers if k.lower() == "x-forwarded-for")
    sent += [("X-Forwarded-For", f"{earlier}, {r.client_ip}" if earlier else r.client_ip),
             ("X-Forwarded-Proto", r.protocol), ("X-Forwarded-Port", str(r.listener_port))]
    if not KEEP_ALIVE:
        sent.append(("Connection", "close"))
    if not any(k.lower() == "x-amzn-trace-id" for k, _ in sent):
        sent.append(("X-Amzn-Trace-Id", f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"))
    return sent


def _ack_at_once(sock) -> None:
    # A target that writes its headers and its body separately (Python's http.server does) would
    # otherwise wait for our delayed ACK of the first write on a kept-alive connection: 40 ms each time.
    try:
        if KEEP_ALIVE:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
    except OSError:
        pass


def forward(picked: tuple, r: Incoming, headers: list, body: bytes, target: str, listener: Listener,
            idle: Idle | None = None) -> Answer:
    """Send the request to a target (id, port) and return its answer, or ALB's 502/504."""
    address, port = picked
    where = f"{address}:{port}"
    sent = _headers_for_target(r, headers)
    idle = idle or Idle()
    reused = idle.take(picked)
    while True:
        conn = reused
        # only a kept-alive connection the target had closed is tried again, once, on a new one
        stale = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) if reused else ()
        if conn is None:
            try:
                sock = netns.connect(address, port, min(10.0, listener.idle_timeout))
            except socket.timeout:
                return alb_error(504, f"target {where} did not accept the connection in time")
            except OSError as exc:
                return alb_error(502, f"target {where} refused the connection ({exc.strerror or exc})")
            conn = http.client.HTTPConnection(address, port, timeout=listener.idle_timeout)
            conn.sock = sock
        try:
            conn.sock.settimeout(listener.idle_timeout)
            conn.putrequest(r.method, target, skip_host=True, skip_accept_encoding=True)
            for k, v in sent:
                conn.putheader(k, v)
            if body or r.method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            _ack_at_once(conn.sock)
            response = conn.getresponse()
            data = response.read() if r.method != "HEAD" else b""
        except stale:
            conn.close()
            reused = None
            continue
        except socket.timeout:
            conn.close()
            return alb_error(504, f"target {where} did not answer within the idle timeout of {listener.idle_timeout:g} s")
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            return alb_error(502, f"target {where} did not answer with HTTP ({type(exc).__name__})")
        out = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
        if r.method == "HEAD" and response.getheader("Content-Length"):
            out.append(("Content-Length", response.getheader("Content-Length")))
        if response.will_close or not KEEP_ALIVE:
            conn.close()
        else:
            idle.give(picked, conn)
        return Answer(response.status, out, data)


# -- the listener's HTTP server --------------------------------------------------------

class ListenerServer(ThreadingHTTPServer):
    """One listener's port. Connections are served by reused daemon threads, at most MAX_CONCURRENT
    at once (a thread per connection would cost a start per request; more than that many wait)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, ext: LoadBalancers, arn: str, port: int, context=None):
        self.ext, self.arn, self.context = ext, arn, context
        self.slots = threading.BoundedSemaphore(MAX_CONCURRENT)
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.spare = 0  # workers waiting for a connection and not promised one yet
        self.workers = 0
        self.count_lock = threading.Lock()
        super().__init__((BIND, port), Handler)
        self.port = self.server_address[1]
        self.thread: threading.Thread | None = None
        if context is not None:  # the handshake runs on the connection's worker, never on the accepting thread
            self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def start(self) -> None:
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                                       name=f"elb-{self.port}", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        with self.count_lock:
            for _ in range(self.workers):
                self.jobs.put(None)

    def process_request(self, request, client_address):
        self.slots.acquire()
        with self.count_lock:
            if self.spare > 0:
                self.spare -= 1  # that worker is this connection's
            else:
                self.workers += 1
                threading.Thread(target=self._work, name=f"elb-{self.port}-worker", daemon=True).start()
        self.jobs.put((request, client_address))

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            try:
                if self.context is not None and not elbtls.handshake(job[0]):
                    continue
                self.process_request_thread(*job)  # handles, then closes the connection
            finally:
                self.slots.release()
                with self.count_lock:
                    self.spare += 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "awselb/2.0"
    sys_version = ""
    timeout = CLIENT_IDLE_S

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)

    def __getattr__(self, name):
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _serve(self) -> None:
        try:
            body = self._body()
        except ValueError as exc:
            self._send(alb_error(400, str(exc)))
            self.close_connection = True
            return
        path, _, query = self.path.partition("?")
        headers = list(self.headers.items())
        first = {}
        for k, v in headers:
            first.setdefault(k.lower(), v)
        listener = self.server.ext.listeners.get(self.server.arn)
        r = Incoming(self.command, path or "/", query, first, self.client_address[0],
                     listener.port if listener else self.server.port,
                     "https" if self.server.context is not None else "http")
        try:
            answer = self.server.ext.answer(self.server.arn, r, headers, body, self.path)
        except Exception:  # a bug here must look like ALB's 500, and be logged
            log.exception("the local load balancer failed")
            answer = alb_error(500, "the local load balancer failed; see the local AWS log")
        self._send(answer)

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
                if sum(map(len, chunks)) > MAX_BODY:
                    raise ValueError("the request body is too large")
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        if not length.isdigit() or int(length) > MAX_BODY:
            raise ValueError("the Content-Length is not usable")
        return self.rfile.read(int(length))

    def _send(self, answer: Answer) -> None:
        self.send_response_only(answer.status, http.client.responses.get(answer.status, ""))
        has_length = False
        for k, v in answer.headers:
            has_length = has_length or k.lower() == "content-length"
            self.send_header(k, v)
        if not any(k.lower() == "date" for k, _ in answer.headers):
            self.send_header("Date", self.date_time_string())
        if not has_length and answer.status not in (204, 304):
            self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD" and answer.body:
            self.wfile.write(answer.body)


# -- describe_target_health answers with the probes' findings ---------------------------

_active: list = []   # weak references to the running extension (one per local AWS process)
_original = None


def _current():
    live = [ref() for ref in _active if ref() is not None]
    return live[-1] if live else None


def install_health_answers(ext: LoadBalancers) -> None:
    global _original
    from moto.elbv2.models import ELBv2Backend

    if _original is None:
        _original = ELBv2Backend.describe_target_health

        def describe_target_health(backend, target_group_arn, targets):
            statuses = _original(backend, target_group_arn, targets)
            ext = _current()  # none (moto in-process, or the local AWS closed): moto's own answer
            return statuses if ext is None else ext.health_of(target_group_arn, targets, statuses)

        ELBv2Backend.describe_target_health = describe_target_health
    _active.append(weakref.ref(ext))


def uninstall_health_answers(ext: LoadBalancers) -> None:
    _active[:] = [ref for ref in _active if ref() is not None and ref() is not ext]


EXTENSION = LoadBalancers
