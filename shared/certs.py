"""Dev certificate authority for a federation: one CA, one certificate per node, one for the NATS server.

A node certificate names its agency twice: subject CN=<agency> and the SAN URI
`lianfang://agency/<agency>`. The URI is the identity that counts — gRPC servers authorise a call by it
(`agency_of`), so a certificate without it (the NATS server's, say) can never act as an agency. Every
certificate also carries DNS `localhost` and IP `127.0.0.1`, because the demo and the tests run on
loopback; node certificates serve both ends of mutual TLS (serverAuth + clientAuth).

    python -m shared.certs --out var/certs                # CA + the demo federation's nodes + NATS server
    python -m shared.certs --out certs --agency 510104-xfj --agency 510104-rsj --host nats.example.org

An existing CA in --out is reused, so certificates for new nodes can be added later. Keys are ECDSA
P-256, written with mode 0600. For production, issue the same shapes from the federation's real CA."""
from __future__ import annotations

import argparse
import datetime as dt
import functools
import ipaddress
import os
import re
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shared.config import AGENCY_PATTERN, TlsConfig

AGENCY_URI_PREFIX = "lianfang://agency/"
AGENCY_ID = re.compile(AGENCY_PATTERN)
LOOPBACK_HOSTS = ("localhost", "127.0.0.1")
NATS_SERVER = "nats-server"
_ORG = "Lianfang federation"


def agency_uri(agency: str) -> str:
    return AGENCY_URI_PREFIX + agency


def agency_of(cert: x509.Certificate) -> str | None:
    """The agency a certificate speaks for: its SAN URI lianfang://agency/<id>, and only that."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    agencies = [u[len(AGENCY_URI_PREFIX):] for u in san.get_values_for_type(x509.UniformResourceIdentifier)
                if u.startswith(AGENCY_URI_PREFIX)]
    return agencies[0] if len(agencies) == 1 and agencies[0] else None  # two identities in one cert: none


@functools.lru_cache(maxsize=256)
def agency_of_pem(pem: bytes) -> str | None:
    return agency_of(x509.load_pem_x509_certificate(pem))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def _san(hosts: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    return names


class DevCA:
    """The federation's certificate authority, kept as ca.crt / ca.key in one folder."""

    def __init__(self, folder: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey):
        self.folder, self.cert, self.key = folder, cert, key

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.crt"

    @classmethod
    def load_or_create(cls, folder: Path, name: str = "Lianfang federation dev CA") -> "DevCA":
        folder.mkdir(parents=True, exist_ok=True)
        crt, key_path = folder / "ca.crt", folder / "ca.key"
        if crt.exists() and key_path.exists():
            return cls(folder, x509.load_pem_x509_certificate(crt.read_bytes()),
                       serialization.load_pem_private_key(key_path.read_bytes(), password=None))
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
                             x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                             crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        _write_key(key_path, key)
        crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(folder, cert, key)

    def _issue(self, stem: str, common_name: str, san: list[x509.GeneralName], usages: list,
               days: int = 825) -> TlsConfig:
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
                                         x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
                .issuer_name(self.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                             crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
                .add_extension(x509.SubjectAlternativeName(san), critical=False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                               critical=False)
                .sign(self.key, hashes.SHA256()))
        cert_path, key_path = self.folder / f"{stem}.crt", self.folder / f"{stem}.key"
        _write_key(key_path, key)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return TlsConfig(ca=self.ca_file, cert=cert_path, key=key_path)

    def issue_node(self, agency: str, hosts: Iterable[str] = LOOPBACK_HOSTS) -> TlsConfig:
        """The node's identity for mutual TLS (gRPC both ways, and as a NATS client)."""
        if not AGENCY_ID.fullmatch(agency):
            raise ValueError(f"not an agency id: {agency!r}")
        return self._issue(agency, agency, [x509.UniformResourceIdentifier(agency_uri(agency)), *_san(hosts)],
                           [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])

    def issue_server(self, name: str = NATS_SERVER, hosts: Iterable[str] = LOOPBACK_HOSTS) -> TlsConfig:
        """A server certificate without an agency identity (the NATS server; clientAuth for cluster routes)."""
        return self._issue(name, name, _san(hosts), [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])


def main(argv: list[str] | None = None) -> None:
    from shared.federation import DEMO_NODES

    p = argparse.ArgumentParser(prog="python -m shared.certs", description="dev CA and node certificates")
    p.add_argument("--out", type=Path, required=True, help="folder for ca.crt/ca.key and the certificates")
    p.add_argument("--agency", action="append", default=[],
                   help="agency id to issue a node certificate for (repeatable; default: the demo federation)")
    p.add_argument("--host", action="append", default=[],
                   help="extra DNS name or IP for every certificate (besides localhost and 127.0.0.1)")
    args = p.parse_args(argv)
    hosts = [*LOOPBACK_HOSTS, *args.host]
    ca = DevCA.load_or_create(args.out)
    for agency in args.agency or [a for a, *_ in DEMO_NODES]:
        tls = ca.issue_node(agency, hosts)
        print(f"{agency:<14} {tls.cert}")
    print(f"{NATS_SERVER:<14} {ca.issue_server(NATS_SERVER, hosts).cert}")
    print(f"{'CA':<14} {ca.ca_file}")


if __name__ == "__main__":
    main()
