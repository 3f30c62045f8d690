from __future__ import annotations

import base64
import ipaddress
import ssl
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID
from darwin_dra.cluster import pki


def test_issued_certificates_chain_to_the_ca_and_carry_identities(tmp_path: Path) -> None:
    ca = pki.CertificateAuthority(tmp_path)
    server = ca.issue("apiserver", "kube-apiserver", server=True)
    node = ca.issue("node", "system:node:n0", org="system:nodes")

    cert = x509.load_pem_x509_certificate(server.cert.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_path.read_bytes())
    cert.verify_directly_issued_by(ca_cert)

    subject = x509.load_pem_x509_certificate(node.cert.read_bytes()).subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:n0"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:nodes"
    assert node.key.stat().st_mode & 0o077 == 0, "private keys must not be group readable"

    # The pair loads as a TLS client identity trusting the CA, as the readiness probes use it.
    ctx = ssl.create_default_context(cafile=str(ca.cert_path))
    ctx.load_cert_chain(str(node.cert), str(node.key))


def test_kubeconfig_embeds_everything(tmp_path: Path) -> None:
    ca = pki.CertificateAuthority(tmp_path)
    admin = ca.issue("admin", "admin", org="system:masters")
    path = pki.write_kubeconfig(
        tmp_path / "kubeconfig", server="https://127.0.0.1:6443", ca=ca, client=admin, user="a"
    )
    doc = yaml.safe_load(path.read_text())
    cluster = doc["clusters"][0]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]) == ca.cert_path.read_bytes()
    user = doc["users"][0]["user"]
    assert base64.b64decode(user["client-certificate-data"]) == admin.cert.read_bytes()
    assert base64.b64decode(user["client-key-data"]) == admin.key.read_bytes()
    assert doc["current-context"] == doc["contexts"][0]["name"]


def test_service_account_keys_are_a_matching_pair(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    pair = pki.service_account_keys(tmp_path)
    private = serialization.load_pem_private_key(pair.key.read_bytes(), password=None)
    public = serialization.load_pem_public_key(pair.cert.read_bytes())
    assert private.public_key().public_numbers() == public.public_numbers()  # type: ignore[union-attr]
