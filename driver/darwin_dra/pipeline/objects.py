"""The objects a SpikingPipeline owns, as plain bodies (pure): the plan ConfigMap, one
ResourceClaim per group of stages, one pod per stage. The TLS Secret's body is in certs.py.

Every object carries the pipeline's label and a controller owner reference, so the garbage
collector deletes them all with the pipeline, and the controller finds them by label.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from darwin_dra import DRIVER_NAME
from darwin_dra.kubetypes import Obj
from darwin_dra.pipeline.chiproutes import ROUTES_ANNOTATION, RouteEntry, routes_annotation
from darwin_dra.pipeline.placement import Group, Host, Placement, placement_json
from darwin_dra.pipeline.plan import PlanView
from darwin_dra.pipeline.spec import API_VERSION, KIND, PipelineSpec

PIPELINE_LABEL = "darwin.snn.io/pipeline"
STAGE_LABEL = "darwin.snn.io/stage"
HASH_LABEL = "darwin.snn.io/spec-hash"  # what an object was made from; changed: replace it
DOWNSTREAM_ANNOTATION = "darwin.snn.io/downstream"
ROLE_LABEL = "darwin.snn.io/role"  # "split" on the pod that splits a model on a volume
SHARED_CLASS = "darwin-shared.snn.io"
FABRIC_CLASS = "darwin-fabric.snn.io"
FABRIC_REQUEST = "fabric-link"
ROUTER_CLASS = "darwin-router.snn.io"
ROUTER_REQUEST = "chip-router"  # no stage is named so (stages: input, output, s0, s1, ...)
MOUNT = "/var/run/darwin-pipeline"
PLAN_KEY = "plan.json"
PLACEMENT_KEY = "placement.json"
LOOKAHEAD_WINDOWS = 4  # a stage's --lookahead; its on-chip routes' lookahead is this many windows


@dataclass(frozen=True)
class StageSettings:
    """How the controller makes stage pods (chart values)."""

    image: str
    pull_policy: str = "IfNotPresent"
    port: int = 7700
    metrics_port: int = 9400


def digest(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def owner_reference(pipeline: Mapping[str, Any]) -> Obj:
    meta = pipeline["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def object_meta(pipeline: Mapping[str, Any], name: str, labels: Mapping[str, str]) -> Obj:
    meta = pipeline["metadata"]
    return {
        "name": name,
        "namespace": meta["namespace"],
        "labels": {PIPELINE_LABEL: meta["name"], **labels},
        "ownerReferences": [owner_reference(pipeline)],
    }


def plan_name(pipeline: str) -> str:
    return f"{pipeline}-plan"


def tls_name(pipeline: str) -> str:
    return f"{pipeline}-tls"


def claim_name(pipeline: str, group: Group) -> str:
    """The claim of the group's stages: its own, or the one it joined (Group.claim)."""
    return f"{pipeline}-{group.claim_id}"


def pod_name(pipeline: str, stage: str) -> str:
    return f"{pipeline}-{stage}"


def plan_config_map(
    pipeline: Mapping[str, Any], plan_text: str, placement: Placement, inputs_hash: str
) -> Obj:
    """The split plan the stages read, and the placement the controller keeps (so it places
    again only when the spec changes or hardware under a stage fails)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(
            pipeline, plan_name(pipeline["metadata"]["name"]), {HASH_LABEL: inputs_hash}
        ),
        "data": {PLAN_KEY: plan_text, PLACEMENT_KEY: placement_json(placement)},
    }


def _fabric_selector(fabric: str) -> Obj:
    return {"cel": {"expression": f'device.attributes["{DRIVER_NAME}"].fabric == "{fabric}"'}}


def _avoid_selector(serials: Sequence[str]) -> Obj:
    listed = ", ".join(json.dumps(s) for s in serials)
    return {"cel": {"expression": f'!(device.attributes["{DRIVER_NAME}"].serial in [{listed}])'}}


def claim_body(
    pipeline: Mapping[str, Any],
    plan: PlanView,
    groups: Sequence[Group],
    placement_hash: str,
    routes: Sequence[RouteEntry] = (),
    avoid: Sequence[str] = (),
) -> Obj:
    """One claim's groups (one, or several joined on one node's fabric: fabricjoin.
    join_on_fabric): one request per stage on a shared half chip, KEPS, neurons and synapses
    asked as consumable capacity, all on the groups' fabric and each group's (several
    stages) on one chip; the fabric bandwidth for the edges that reach the groups from their
    fabric's other chips (one request, their sum); none on the chips of serial ``avoid``
    (Placement.avoid); and the ``routes`` between its stages (pipeline/chiproutes.py), with a
    router on the chip of the group that holds it."""
    if not groups or len({g.claim_id for g in groups}) != 1:
        raise ValueError(f"a claim's groups share one claim, got {[g.name for g in groups]}")
    requests: list[Obj] = []
    constraints: list[Obj] = []
    holder = next((g for g in groups if g.routed), None) if routes else None
    if routes and holder is None:
        raise ValueError(f"claim {groups[0].claim_id} has routes but no group holds a router")
    for group in groups:
        selectors = [_fabric_selector(group.fabric)] + ([_avoid_selector(avoid)] if avoid else [])
        for name in group.stages:
            s = plan.stage(name)
            requests.append(
                {
                    "name": name,
                    "exactly": {
                        "deviceClassName": SHARED_CLASS,
                        "selectors": selectors,
                        "capacity": {
                            "requests": {
                                "keps": str(max(1, s.keps)),
                                "neurons": str(max(1, s.neurons)),
                                "synapses": str(max(1, s.synapses)),
                            }
                        },
                    },
                }
            )
        on_chip = list(group.stages)
        if group is holder:
            # The chip's router, held to the stages' chip: its binding conditions keep the
            # pods from binding until the plugin has programmed the routes (plugin/earlybind.py).
            on_chip.append(ROUTER_REQUEST)
        if len(on_chip) > 1:
            constraints.append({"requests": on_chip, "matchAttribute": f"{DRIVER_NAME}/chip"})
    fabric_keps = sum(g.fabric_keps for g in groups)
    if fabric_keps:
        requests.append(
            {
                "name": FABRIC_REQUEST,
                "exactly": {
                    "deviceClassName": FABRIC_CLASS,
                    "selectors": [_fabric_selector(groups[0].fabric)],
                    "capacity": {"requests": {"keps": str(fabric_keps)}},
                },
            }
        )
    if holder is not None:
        requests.append({"name": ROUTER_REQUEST, "exactly": {"deviceClassName": ROUTER_CLASS}})
    if len(groups) > 1:
        # Joined groups: every stage on one fabric (their selectors say so too), so a route
        # between two of their chips crosses the fabric link.
        stages = [s for g in groups for s in g.stages]
        constraints.append({"requests": stages, "matchAttribute": f"{DRIVER_NAME}/fabric"})
    devices: Obj = {"requests": requests}
    if constraints:
        devices["constraints"] = constraints
    name = claim_name(pipeline["metadata"]["name"], groups[0])
    meta = object_meta(pipeline, name, {HASH_LABEL: placement_hash})
    if routes:
        meta["annotations"] = {ROUTES_ANNOTATION: routes_annotation(routes)}
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": meta,
        "spec": {"devices": devices},
    }


def stage_args(
    spec: PipelineSpec,
    plan: PlanView,
    stage: str,
    downstream: Mapping[str, str],
    settings: StageSettings,
    on_chip: Sequence[str] = (),
) -> list[str]:
    """The ``darwin-dra stage`` command line of one stage (PIPELINE-CONTRACT.md, section 2);
    ``downstream``: stage name -> pod IP of each stage this one sends to over a socket;
    ``on_chip``: the neighbours it exchanges spikes with on its chip's router."""
    args = [
        "darwin-dra",
        "stage",
        "--model",
        f"{MOUNT}/model/model.nir",
        "--plan",
        f"{MOUNT}/plan/{PLAN_KEY}",
        "--stage",
        stage,
        "--tls-ca",
        f"{MOUNT}/tls/ca.crt",
        "--tls-cert",
        f"{MOUNT}/tls/tls.crt",
        "--tls-key",
        f"{MOUNT}/tls/tls.key",
        "--window",
        str(spec.window),
        "--metrics-port",
        str(settings.metrics_port),
    ]
    if on_chip:
        args += ["--lookahead", str(LOOKAHEAD_WINDOWS)]
    if listens(plan, stage, on_chip):
        args += ["--listen", f"tcp://0.0.0.0:{settings.port}"]
    for name, ip in sorted(downstream.items()):
        if name not in on_chip:
            args += ["--downstream", f"{name}=tcp://{ip}:{settings.port}"]
    for name in sorted(on_chip):
        args += ["--on-chip", name]
    if spec.steps is not None:
        args += ["--steps", str(spec.steps)]
    if spec.input.samples is not None:  # every stage alike (pipeline/samples.py)
        args += ["--samples", spec.input.samples]
    if plan.reads_input(stage):
        inp = spec.input
        if inp.source == "poisson":
            args += [
                "--input",
                "poisson",
                "--input-rate-hz",
                f"{inp.rate_hz:g}",
                "--input-seed",
                str(inp.seed),
            ]
        elif inp.source == "file":
            args += ["--input", f"file:{MOUNT}/input/input"]
        else:
            args += ["--input", "socket", "--input-listen", f"tcp://0.0.0.0:{inp.port}"]
        # The stage that reads the input (or each, drawn in place) paces the whole pipeline.
        args += ["--rate", str(spec.target_rate)]
    return args


def listens(plan: PlanView, stage: str, on_chip: Sequence[str] = ()) -> bool:
    """Whether the stage has an upstream over a socket (and so a port to listen on)."""
    return any(u not in on_chip for u in plan.upstream(stage))


def pod_body(
    pipeline: Mapping[str, Any],
    spec: PipelineSpec,
    plan: PlanView,
    placement: Placement,
    stage: str,
    downstream: Mapping[str, str],
    settings: StageSettings,
    placement_hash: str,
    on_chip: Sequence[str] = (),
) -> Obj:
    pname = pipeline["metadata"]["name"]
    group = placement.group_of(stage)
    host: Host | None = placement.hosts.get(stage)
    args = stage_args(spec, plan, stage, downstream, settings, on_chip)
    model = spec.model
    volumes: list[Obj] = [
        {
            "name": "plan",
            "configMap": {"name": plan_name(pname), "items": [{"key": PLAN_KEY, "path": PLAN_KEY}]},
        },
        {
            "name": "tls",
            "secret": {
                "secretName": tls_name(pname),
                "defaultMode": 0o440,
                "items": [
                    {"key": "ca.crt", "path": "ca.crt"},
                    {"key": f"{stage}.crt", "path": "tls.crt"},
                    {"key": f"{stage}.key", "path": "tls.key"},
                ],
            },
        },
    ]
    volumes.append({"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}})
    mounts: list[Obj] = [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "plan", "mountPath": f"{MOUNT}/plan", "readOnly": True},
        {"name": "tls", "mountPath": f"{MOUNT}/tls", "readOnly": True},
        {"name": "model", "mountPath": f"{MOUNT}/model", "readOnly": True},
    ]
    if model.config_map is not None:
        cm = model.config_map
        volumes.append(
            {
                "name": "model",
                "configMap": {"name": cm.name, "items": [{"key": cm.key, "path": "model.nir"}]},
            }
        )
    else:
        assert model.claim_name is not None
        assert model.path is not None
        volumes.append(
            {
                "name": "model",
                "persistentVolumeClaim": {"claimName": model.claim_name, "readOnly": True},
            }
        )
        i = args.index("--model")
        args[i + 1] = f"{MOUNT}/model/{model.path.lstrip('/')}"
    is_input = plan.stage(stage).kind == "input"
    if spec.input.file is not None and plan.reads_input(stage):
        f = spec.input.file
        volumes.append(
            {
                "name": "input",
                "configMap": {"name": f.name, "items": [{"key": f.key, "path": "input"}]},
            }
        )
        mounts.append({"name": "input", "mountPath": f"{MOUNT}/input", "readOnly": True})
    ports: list[Obj] = [{"name": "metrics", "containerPort": settings.metrics_port}]
    if listens(plan, stage, on_chip):
        ports.append({"name": "spikes", "containerPort": settings.port})
    if is_input and spec.input.source == "socket":
        ports.append({"name": "input", "containerPort": spec.input.port})
    body_hash = digest(placement_hash, args)
    meta = object_meta(
        pipeline, pod_name(pname, stage), {STAGE_LABEL: stage, HASH_LABEL: body_hash}
    )
    meta["annotations"] = {DOWNSTREAM_ANNOTATION: json.dumps(dict(sorted(downstream.items())))}
    pod_spec: Obj = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 5,
        "containers": [
            {
                "name": "stage",
                "image": settings.image,
                "imagePullPolicy": settings.pull_policy,
                "command": args,
                "ports": ports,
                "volumeMounts": mounts,
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
        "volumes": volumes,
    }
    if group is not None:
        pod_spec["containers"][0]["resources"] = {"claims": [{"name": "snn", "request": stage}]}
        pod_spec["resourceClaims"] = [
            {"name": "snn", "resourceClaimName": claim_name(pname, group)}
        ]
        if group.node_selector:
            pod_spec["nodeSelector"] = dict(group.node_selector)
    elif host is not None:
        pod_spec["nodeSelector"] = dict(host.node_selector)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod_spec}


def claim_names(pipeline: str, groups: Sequence[Group]) -> list[str]:
    return sorted({claim_name(pipeline, g) for g in groups})
