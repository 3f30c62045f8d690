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
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from darwin_dra import x509build
from darwin_dra.pipeline import objects

VALID_DAYS = 365


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "darwin.snn.io pipeline"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def stage_material(
    pipeline: str, stages: Sequence[str], now: datetime.datetime
) -> dict[str, bytes]:
    """``ca.crt`` and each stage's certificate and key, PEM."""
    ca_key = x509build.new_key()
    ca_name = _name(f"{pipeline} stages CA")
    start = now - datetime.timedelta(minutes=5)
    end = now + datetime.timedelta(days=VALID_DAYS)
    ca = x509build.ca_certificate(ca_key, ca_name, start, end, path_length=0)
    out = {"ca.crt": x509build.pem(ca)}
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    for stage in stages:
        key = x509build.new_key()
        cert = x509build.leaf_certificate(
            ca_key, ca_name, key, _name(stage), start, end, usages, [x509.DNSName(stage)]
        )
        out[f"{stage}.crt"] = x509build.pem(cert)
        out[f"{stage}.key"] = x509build.pem_key(key)
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
