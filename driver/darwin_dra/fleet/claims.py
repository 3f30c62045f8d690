"""A job as Kubernetes asks for it, in the two resource models the fleet bench compares.

Pure: pod, ResourceClaimTemplate and DeviceClass bodies. Each job becomes one or more units
(a unit is one pod with one claim from a template):

- black box: every unit asks for whole chips from a class that sees one counted device per
  chip (``plain_slices``), as a device plugin's ``darwin.snn.io/chip: N`` would. A pipeline is
  one pod per stage with one chip each: a device plugin cannot express "these stages
  together", so the scheduler places each stage on its own.
- Darwin: one unit per job with the claim the resource model was built for (domains with a
  ``matchAttribute`` on chip, a KEPS share, a CEL selector on ``maxMeps``, whole chips, and a
  pipeline's three stages under one ``matchAttribute`` on fabric).
- capacity: Darwin with the plugin's ``--partitions capacity`` layout (one device a chip,
  allocated many times): one unit per job asking a number of domains and a KEPS budget of one
  chip (the plugin places them); whole chips as all of a chip's domains, one subrequest per
  chip model (prioritized list), the weaker router first.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from darwin_dra import DRIVER_NAME
from darwin_dra.engine.keps import KEPS_PER_MEPS
from darwin_dra.fleet.trace import Job

API = "resource.k8s.io/v1"
BLACKBOX_CLASS = "darwin-blackbox.snn.io"
MODELS = ("blackbox", "darwin", "capacity")
CAPACITY_CLASS = "darwin-capacity.snn.io"
PIPELINE_STAGES = ("encoder", "reservoir", "readout")
JOB_LABEL = "darwin.snn.io/job"
UNIT_LABEL = "darwin.snn.io/unit"
NOMINAL_DOMAIN_CORES = 16  # cores of a domain (domain 0 of a chip holds 15)
SIM_IMAGE = "registry.invalid/darwin-dra/simulated-job:0"  # never pulled: no kubelet runs it


@dataclass(frozen=True)
class Unit:
    """One pod of a job and the claim spec its template holds."""

    job: Job
    index: int  # stage for black-box pipelines, else 0
    claim_spec: dict[str, Any]

    @property
    def pod_name(self) -> str:
        return f"{self.job.name}-{self.index}"

    @property
    def template_name(self) -> str:
        return template_name(self.claim_spec)


def blackbox_class() -> dict[str, Any]:
    """The black-box class: any device of the driver, i.e. a counted chip."""
    return {
        "apiVersion": API,
        "kind": "DeviceClass",
        "metadata": {"name": BLACKBOX_CLASS},
        "spec": {"selectors": [{"cel": {"expression": f'device.driver == "{DRIVER_NAME}"'}}]},
    }


def _exactly(name: str, device_class: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "exactly": {"deviceClassName": device_class, **extra}}


def _attr(name: str) -> str:
    return f'device.attributes["{DRIVER_NAME}"].{name}'


def _spec(requests: list[dict[str, Any]], constraints: list[dict[str, Any]] | None = None) -> Any:
    devices: dict[str, Any] = {"requests": requests}
    if constraints:
        devices["constraints"] = constraints
    return {"devices": devices}


def blackbox_units(job: Job) -> list[Unit]:
    if job.kind == "pipeline":
        one = _spec([_exactly("chips", BLACKBOX_CLASS, count=1)])
        return [Unit(job, i, one) for i in range(len(PIPELINE_STAGES))]
    chips = job.chips if job.kind == "train" else 1
    return [Unit(job, 0, _spec([_exactly("chips", BLACKBOX_CLASS, count=chips)]))]


def darwin_units(job: Job, neurons_per_core: int = 4096) -> list[Unit]:
    same_chip = f"{DRIVER_NAME}/chip"
    if job.kind == "infer":
        req = _exactly("domains", "darwin-domain.snn.io", count=job.domains)
        cons = [{"requests": ["domains"], "matchAttribute": same_chip}] if job.domains > 1 else []
        spec = _spec([req], cons)
    elif job.kind == "share":
        capacity = {
            "requests": {"keps": str(job.keps), "neurons": str(job.cores * neurons_per_core)}
        }
        spec = _spec([_exactly("share", "darwin-shared.snn.io", capacity=capacity)])
    elif job.kind == "spike":
        cel = f"{_attr('maxMeps')} >= {job.rate_meps} && {_attr('cores')} >= {job.cores}"
        spec = _spec([_exactly("router", DRIVER_NAME, selectors=[{"cel": {"expression": cel}}])])
    elif job.kind == "train":
        spec = _spec([_exactly("chips", "darwin-chip.snn.io", count=job.chips)])
    elif job.kind == "pipeline":
        quad = [{"cel": {"expression": f'{_attr("partition")} == "quad"'}}]
        spec = _spec(
            [
                _exactly("encoder", "darwin-domain.snn.io"),
                _exactly("reservoir", DRIVER_NAME, selectors=quad),
                _exactly("readout", "darwin-domain.snn.io"),
            ],
            [{"requests": list(PIPELINE_STAGES), "matchAttribute": f"{DRIVER_NAME}/fabric"}],
        )
    else:
        raise ValueError(f"job {job.id}: unknown kind {job.kind!r}")
    return [Unit(job, 0, spec)]


def _grant(domains: int, keps: int, **extra: Any) -> dict[str, Any]:
    """What a capacity request asks of one chip's device: domains and a KEPS budget."""
    return {"capacity": {"requests": {"domains": str(domains), "keps": str(keps)}}, **extra}


def capacity_units(job: Job, whole_chip: Mapping[str, int]) -> list[Unit]:
    """The job as capacity-layout claims. ``whole_chip``: chip model -> its domains (what a
    whole-chip request asks), in the order training prefers them."""
    keps = job.rate_meps * KEPS_PER_MEPS
    if job.kind == "infer":
        req = _exactly("domains", CAPACITY_CLASS, **_grant(job.domains, keps))
    elif job.kind == "share":
        # The layout has no domain-less share: the smallest grant is one domain.
        req = _exactly("share", CAPACITY_CLASS, **_grant(1, job.keps))
    elif job.kind == "spike":
        cel = f"{_attr('maxMeps')} >= {job.rate_meps}"
        domains = -(-job.cores // NOMINAL_DOMAIN_CORES)
        sel = [{"cel": {"expression": cel}}]
        req = _exactly("router", CAPACITY_CLASS, selectors=sel, **_grant(domains, keps))
    elif job.kind == "train":
        per_chip = keps // max(job.chips, 1)
        subs = [
            {
                "name": model.replace(".", "-"),
                "deviceClassName": CAPACITY_CLASS,
                "count": job.chips,
                "selectors": [{"cel": {"expression": f'{_attr("model")} == "{model}"'}}],
                **_grant(domains, per_chip),
            }
            for model, domains in whole_chip.items()
        ]
        req = {"name": "chips", "firstAvailable": subs}
    elif job.kind == "pipeline":
        # Encoder domain, reservoir quad, readout domain: six domains of one chip, which the
        # plugin places as one compact block.
        req = _exactly("pipeline", CAPACITY_CLASS, **_grant(6, keps))
    else:
        raise ValueError(f"job {job.id}: unknown kind {job.kind!r}")
    return [Unit(job, 0, _spec([req]))]


def units(job: Job, model: str, whole_chip: Mapping[str, int] | None = None) -> list[Unit]:
    if model == "blackbox":
        return blackbox_units(job)
    if model == "darwin":
        return darwin_units(job)
    if model == "capacity":
        if not whole_chip:
            raise ValueError("the capacity model needs the domains of a whole chip by model")
        return capacity_units(job, whole_chip)
    raise ValueError(f"unknown resource model {model!r} (known: {', '.join(MODELS)})")


def template_name(claim_spec: dict[str, Any]) -> str:
    """Jobs with equal needs share a template: the name is a digest of the spec."""
    digest = hashlib.sha1(json.dumps(claim_spec, sort_keys=True).encode()).hexdigest()
    return f"t-{digest[:12]}"


def claim_template(claim_spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": template_name(claim_spec)},
        "spec": {"spec": claim_spec},
    }


def pod(unit: Unit) -> dict[str, Any]:
    """A pod that only needs to be scheduled: no kubelet runs it (it is deleted, grace 0)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": unit.pod_name,
            "labels": {JOB_LABEL: str(unit.job.id), UNIT_LABEL: str(unit.index)},
        },
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {"name": "job", "image": SIM_IMAGE, "resources": {"claims": [{"name": "devices"}]}}
            ],
            "resourceClaims": [
                {"name": "devices", "resourceClaimTemplateName": unit.template_name}
            ],
        },
    }
