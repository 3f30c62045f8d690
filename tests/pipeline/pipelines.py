"""Builders for the pipeline tests: the slices of a real inventory (the plugin's and the
controller's own builders), SpikingPipeline objects and plans."""

from __future__ import annotations

from typing import Any

from darwin_dra import DRIVER_NAME
from darwin_dra.hardware.model import ChipEntry, Inventory, NodeEntry
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.kubetypes import Obj
from darwin_dra.pipeline.plan import EdgeLoad, PlanView, StageLoad
from darwin_dra.resources.chips import ChipView
from darwin_dra.resources.fabric import FabricSettings, fabric_slices
from darwin_dra.resources.slices import build_slices


def inventory(nodes: int = 2, chips: int = 2, shared_fabric: bool = False) -> Inventory:
    return Inventory(
        tuple(
            NodeEntry(
                f"node-{n}",
                tuple(
                    ChipEntry(
                        "darwin3", f"CH-{n}-{c}", "wafer-0" if shared_fabric else f"wafer-{n}"
                    )
                    for c in range(chips)
                ),
            )
            for n in range(nodes)
        )
    )


def slices(inv: Inventory, fabric_keps: int = 1_000_000) -> list[Obj]:
    profile = load_profiles()["darwin3"]
    out: list[Obj] = []
    for node in inv.nodes:
        views = [ChipView.nominal(i, e, profile) for i, e in enumerate(node.chips)]
        out += build_slices(node.name, views)
    out += fabric_slices(inv, FabricSettings(keps=fabric_keps))
    return out


def nodes(inv: Inventory) -> list[Obj]:
    return [
        {
            "metadata": {
                "name": n.name,
                "labels": {"kubernetes.io/hostname": n.name, "edge": "yes" if i == 0 else "no"},
            }
        }
        for i, n in enumerate(inv.nodes)
    ]


def chain(*keps: int, spikes: tuple[float, ...] | None = None, io: bool = False) -> PlanView:
    """Engine stages s0.. in a chain; ``io``: an input stage before them and an output
    stage after them (10 spikes a step each way), as the split writes them."""
    stages = [StageLoad(f"s{i}", 1000 * (i + 1), 50_000, k) for i, k in enumerate(keps)]
    rates = spikes or tuple(100.0 for _ in keps[1:])
    edges = [EdgeLoad(f"s{i}", f"s{i + 1}", rates[i]) for i in range(len(keps) - 1)]
    if io:
        stages = [
            StageLoad("input", 0, 0, 0, "input"),
            *stages,
            StageLoad("output", 0, 0, 0, "output"),
        ]
        edges = [
            EdgeLoad("input", "s0", 10.0),
            *edges,
            EdgeLoad(f"s{len(keps) - 1}", "output", 10.0),
        ]
    return PlanView(tuple(stages), tuple(edges))


def pipeline_obj(name: str = "digits", **spec: Any) -> Obj:
    body: Obj = {
        "model": {"configMap": {"name": "digits-model", "key": "model.nir"}},
        "input": {"source": "poisson", "poisson": {"rateHz": 200, "seed": 3}},
        "targetRate": 1000,
        "stages": 3,
    }
    body.update(spec)
    return {
        "apiVersion": "darwin.snn.io/v1alpha1",
        "kind": "SpikingPipeline",
        "metadata": {"name": name, "namespace": "ml", "uid": "uid-1", "generation": 1},
        "spec": body,
    }


def result(request: str, pool: str, device: str, **extra: Any) -> Obj:
    """One device of a claim's allocation, as the scheduler writes it."""
    return {"driver": DRIVER_NAME, "request": request, "pool": pool, "device": device, **extra}


def allocation(*results: Obj) -> Obj:
    """A claim status with the scheduler's allocation of ``results``."""
    return {"allocation": {"devices": {"results": list(results)}}}
