"""The course's own certificate authority, for endpoints the local AWS serves with TLS.

On AWS, an ElastiCache or RDS endpoint's certificate chains to a public root the client
already trusts. Locally, one CA per install (made on first use, kept in the state folder)
signs a certificate for 127.0.0.1 and localhost; ``trust.pem`` is the usual public roots
plus this CA, which labkit's clients and the local Lambda sandboxes use as their trust store,
so a client that verifies certificates (as it should) connects without switching checks off.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

FOLDER = "tls"  # inside the state folder


def folder(state_dir: Path) -> Path:
    return Path(state_dir) / FOLDER


def ca_file(state_dir: Path) -> Path:
    """The course CA's certificate (public), made on first use."""
    return ensure(state_dir) / "ca.pem"


def trust_file(state_dir: Path) -> Path:
    """Public roots plus the course CA: the trust store labkit's clients use."""
    return ensure(state_dir) / "trust.pem"


def ensure(state_dir: Path) -> Path:
    where = folder(state_dir)
    if (where / "server.key").exists() and (where / "trust.pem").exists():
        return where
    where.mkdir(mode=0o700, parents=True, exist_ok=True)
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "labkit course CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=825))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    ca_pem = ca.public_bytes(pem)
    try:
        import certifi

        roots = Path(certifi.where()).read_bytes()
    except ImportError:
        roots = b""
    files = {"ca.pem": ca_pem, "server.pem": cert.public_bytes(pem) + ca_pem, "trust.pem": roots + b"\n" + ca_pem,
             "server.key": key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())}
    for name, data in files.items():  # the CA's own key is not kept: nothing else is ever signed with it
        temp = where / f".{name}.tmp"
        temp.write_bytes(data)
        os.chmod(temp, 0o600 if name.endswith(".key") else 0o644)
        os.replace(temp, where / name)
    return where


def server_context(state_dir: Path) -> ssl.SSLContext:
    where = ensure(state_dir)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(where / "server.pem", where / "server.key")
    return context
