"""The TLS material of a pipeline's stage connections: one CA per pipeline, one certificate
per stage (CN and DNS SAN = the stage name), both usages (a stage is a server to its upstream
and a client of its downstream). The Secret holds ``ca.crt`` and ``<stage>.crt``/``<stage>.key``;
each pod mounts only its own key.

The CA's key is not kept: nothing signs for the pipeline after the Secret is made. A new stage
set (a new split) gets a new CA and new certificates, so a stage of an old split cannot talk to
a stage of the new one.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from darwin_dra.pipeline import objects

VALID_DAYS = 365


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "darwin.snn.io pipeline"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def stage_material(
    pipeline: str, stages: Sequence[str], now: datetime.datetime
) -> dict[str, bytes]:
    """``ca.crt`` and each stage's certificate and key, PEM."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"{pipeline} stages CA")
    start = now - datetime.timedelta(minutes=5)
    end = now + datetime.timedelta(days=VALID_DAYS)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
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
        .sign(ca_key, hashes.SHA256())
    )
    out = {"ca.crt": ca.public_bytes(serialization.Encoding.PEM)}
    for stage in stages:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(stage))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(stage)]), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        out[f"{stage}.crt"] = cert.public_bytes(serialization.Encoding.PEM)
        out[f"{stage}.key"] = _pem_key(key)
    return out


def stages_hash(stages: Sequence[str]) -> str:
    return objects.digest(sorted(stages))


def secret_body(
    pipeline: Mapping[str, Any], stages: Sequence[str], material: Mapping[str, bytes]
) -> dict[str, Any]:
    meta = pipeline["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": objects.tls_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": {
                objects.PIPELINE_LABEL: meta["name"],
                objects.HASH_LABEL: stages_hash(stages),
            },
            "ownerReferences": [objects.owner_reference(pipeline)],
        },
        "data": {k: base64.b64encode(v).decode() for k, v in sorted(material.items())},
    }
