"""A throwaway PKI for one local cluster: CA, serving and client certificates, kubeconfigs.

Everything is generated fresh in the cluster directory and trusted by nothing else, so keys are
kept short-lived (one day) and unencrypted.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from darwin_dra import x509build

_VALIDITY = datetime.timedelta(days=1)
_SERVER_NAMES = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc")
_SERVER_IPS = ("127.0.0.1", "10.0.0.1")


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


def _name(common_name: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(x509build.pem_key(key))
    path.chmod(0o600)


def _now() -> datetime.datetime:
    # Backdated a little so that clocks of freshly started processes agree.
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)


class CertificateAuthority:
    """A CA whose key stays in memory; issued certificates are written next to it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._key = x509build.new_key()
        self._cert = x509build.ca_certificate(
            self._key, _name("darwin-dra-local-ca"), _now(), _now() + _VALIDITY, path_length=None
        )
        self.cert_path = directory / "ca.crt"
        self.cert_path.write_bytes(self.cert_pem)

    @property
    def cert_pem(self) -> bytes:
        return x509build.pem(self._cert)

    def issue(
        self,
        name: str,
        common_name: str,
        *,
        org: str | None = None,
        server: bool = False,
        ips: tuple[str, ...] = (),
    ) -> KeyPair:
        """A key and certificate `name`.crt/.key; server certificates carry the loopback SANs."""
        key = x509build.new_key()
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        sans: list[x509.GeneralName] = []
        if server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
            sans += [x509.DNSName(n) for n in (common_name, *_SERVER_NAMES)]
            sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in (*_SERVER_IPS, *ips)]
        cert = x509build.leaf_certificate(
            self._key,
            self._cert.subject,
            key,
            _name(common_name, org),
            _now(),
            _now() + _VALIDITY,
            usages,
            sans,
        )
        pair = KeyPair(self.directory / f"{name}.crt", self.directory / f"{name}.key")
        pair.cert.write_bytes(x509build.pem(cert))
        _write_key(pair.key, key)
        return pair


def service_account_keys(directory: Path) -> KeyPair:
    """The key pair the API server signs service-account tokens with (cert holds the public key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pair = KeyPair(directory / "sa.pub", directory / "sa.key")
    pair.cert.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    _write_key(pair.key, key)
    return pair


def write_kubeconfig(
    path: Path, *, server: str, ca: CertificateAuthority, client: KeyPair, user: str
) -> Path:
    """A self-contained kubeconfig (certificates embedded) so it can be copied anywhere."""

    def b64(p: Path | bytes) -> str:
        data = p if isinstance(p, bytes) else p.read_bytes()
        return base64.b64encode(data).decode()

    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "darwin-local",
                "cluster": {"server": server, "certificate-authority-data": b64(ca.cert_pem)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(client.cert),
                    "client-key-data": b64(client.key),
                },
            }
        ],
        "contexts": [
            {"name": "darwin-local", "context": {"cluster": "darwin-local", "user": user}}
        ],
        "current-context": "darwin-local",
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)
    return path
