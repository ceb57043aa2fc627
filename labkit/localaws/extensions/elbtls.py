"""TLS for an ALB's HTTPS listener: the listener's certificate from the local ACM, its SslPolicy's versions.

The certificate and its private key are ACM's (``import_certificate`` keeps both; moto makes a key
for ``request_certificate`` too), read when the listener starts. The security policy sets the
lowest TLS version the listener accepts: TLS 1.3 only for the ``TLS13-1-3`` policies, otherwise
TLS 1.2 (the local machine's OpenSSL refuses the older versions AWS's legacy policies still allow).
A listener whose certificate the local ACM does not hold (an IAM certificate, a deleted one) is
not served, and the local AWS log says why.
"""
from __future__ import annotations

import logging
import os
import socket
import ssl
import tempfile

log = logging.getLogger("labkit.elb")
HANDSHAKE_S = 10.0


def minimum_version(policy: str | None) -> ssl.TLSVersion:
    return ssl.TLSVersion.TLSv1_3 if "TLS13-1-3" in (policy or "") else ssl.TLSVersion.TLSv1_2


def certificate_pem(arn: str | None) -> tuple[bytes, bytes, bytes] | None:
    """(certificate, private key, chain) PEM of an ACM certificate, or None (call under the host's lock)."""
    if not arn or ":acm:" not in arn:
        return None
    from moto.acm.models import acm_backends

    account, region = arn.split(":")[4], arn.split(":")[3]
    try:
        bundle = acm_backends[account][region].get_certificate(arn)
    except Exception:
        return None
    to_bytes = (lambda v: v if isinstance(v, bytes) else (v or "").encode())
    return to_bytes(bundle.cert), to_bytes(bundle.key), to_bytes(getattr(bundle, "chain", None) or b"")


def context_for(listener, say: bool = True) -> ssl.SSLContext | None:
    """A server context for an HTTPS listener, or None when its certificate cannot be had (logged if ``say``)."""
    pem = certificate_pem(listener.certificate)
    if pem is None or not pem[1]:
        (log.warning if say else log.debug)("HTTPS listener %s is not served: the local ACM holds no certificate and key for %s",
                    listener.arn, listener.certificate)
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = minimum_version(listener.ssl_policy)
    # load_cert_chain reads files only: a private temporary file, removed at once
    with tempfile.TemporaryDirectory() as folder:
        cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        with open(os.open(cert, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as fh:
            fh.write(pem[0].rstrip() + b"\n" + pem[2])
        with open(os.open(key, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as fh:
            fh.write(pem[1])
        context.load_cert_chain(cert, key)
    return context


def handshake(conn) -> bool:
    """Complete the server side of a handshake; a client that fails it is closed (False)."""
    try:
        conn.settimeout(HANDSHAKE_S)
        conn.do_handshake()
        conn.settimeout(None)
        return True
    except (OSError, ssl.SSLError, socket.timeout) as exc:
        log.debug("TLS handshake failed: %s", exc)
        try:
            conn.close()
        except OSError:
            pass
        return False
