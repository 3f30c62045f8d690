"""The X.509 builders both PKIs use: the local cluster's (cluster/pki.py) and a pipeline's
stage connections (pipeline/certs.py). EC P-256 keys, SHA-256 signatures."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ObjectIdentifier


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    """The private key as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    start: datetime.datetime,
    end: datetime.datetime,
    ca: bool,
    path_length: int | None = None,
) -> x509.CertificateBuilder:
    """What every certificate here has: names, key, a random serial, validity, constraints."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
    )


def ca_certificate(
    key: ec.EllipticCurvePrivateKey,
    subject: x509.Name,
    start: datetime.datetime,
    end: datetime.datetime,
    path_length: int | None,
) -> x509.Certificate:
    """A self-signed CA certificate that may sign certificates and CRLs."""
    return (
        _builder(subject, subject, key, start, end, ca=True, path_length=path_length)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )


def leaf_certificate(
    ca_key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    subject: x509.Name,
    start: datetime.datetime,
    end: datetime.datetime,
    usages: Sequence[ObjectIdentifier],
    sans: Sequence[x509.GeneralName] = (),
) -> x509.Certificate:
    """An end-entity certificate for ``key`` signed by ``ca_key``, with the extended key
    ``usages`` and, when given, the subject alternative names ``sans``."""
    builder = _builder(subject, issuer, key, start, end, ca=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    return builder.sign(ca_key, hashes.SHA256())
