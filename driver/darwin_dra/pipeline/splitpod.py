"""The pod that splits a model on a volume (pure body): `darwin-dra split` with the model's
claim mounted read-only; its log carries the plan (controller/plansource.py reads it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from darwin_dra.kubetypes import Obj
from darwin_dra.pipeline.objects import HASH_LABEL, MOUNT, ROLE_LABEL, StageSettings, object_meta
from darwin_dra.pipeline.spec import PipelineSpec
from darwin_dra.pipeline.splitter import layers_flag


def split_pod_name(pipeline: str) -> str:
    return f"{pipeline}-split"


def split_pod_body(
    pipeline: Mapping[str, Any], spec: PipelineSpec, settings: StageSettings, key_hash: str
) -> Obj:
    """The pod that splits a model on a volume (`darwin-dra split`, the claim read-only)."""
    model = spec.model
    assert model.claim_name is not None
    assert model.path is not None
    pname = pipeline["metadata"]["name"]
    meta = object_meta(pipeline, split_pod_name(pname), {ROLE_LABEL: "split", HASH_LABEL: key_hash})
    command = [
        "darwin-dra",
        "split",
        "--model",
        f"{MOUNT}/model/{model.path.lstrip('/')}",
        "--stages",
        "auto" if spec.stages is None else str(spec.stages),
        "--route-maps",  # the controller does not read the model: the pod gives the maps
    ]
    if spec.stage_layers is not None:
        command += ["--layers", layers_flag(spec.stage_layers)]
    if spec.input.source == "poisson":
        command += ["--input-rate-hz", f"{spec.input.rate_hz:g}"]  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "containers": [
                {
                    "name": "split",
                    "image": settings.image,
                    "imagePullPolicy": settings.pull_policy,
                    "command": command,
                    "volumeMounts": [
                        {"name": "model", "mountPath": f"{MOUNT}/model", "readOnly": True},
                        {"name": "tmp", "mountPath": "/tmp"},
                    ],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
            "volumes": [
                {
                    "name": "model",
                    "persistentVolumeClaim": {"claimName": model.claim_name, "readOnly": True},
                },
                {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
            ],
        },
    }
