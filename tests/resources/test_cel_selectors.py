"""A DeviceClass CEL selector on ``maxMeps`` chooses between chips that differ: the calibrated
capacity (where the chip model's links saturate, engine/keps.py) is lower on a degraded chip and
on a chip model with a weaker router, the slices publish it, and the shipped darwin-fast class's
selectors, evaluated as CEL (cel-python) on the published devices, pick accordingly."""

from __future__ import annotations

from typing import Any

import celpy
from celpy.adapter import json_to_cel
from darwin_dra import DRIVER_NAME
from darwin_dra.controller.deviceclasses import ClassSettings, device_classes
from darwin_dra.engine import Engine, FaultKind
from darwin_dra.engine import keps as kepsdef
from darwin_dra.hardware.model import ChipEntry
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.resources.chips import ChipView
from darwin_dra.resources.slices import build_slices


def cel_device(device: dict[str, Any]) -> Any:
    """A published device as the scheduler's CEL sees it: device.driver, device.attributes."""
    attrs = {name: next(iter(v.values())) for name, v in device["attributes"].items()}
    return json_to_cel({"driver": DRIVER_NAME, "attributes": {DRIVER_NAME: attrs}})


def selected(engine: Engine, min_meps: int) -> set[str]:
    """The devices of the engine's chips, published with their calibrated KEPS, that every
    selector of darwin-fast.snn.io (fastMinMeps = `min_meps`) accepts."""
    profiles = load_profiles()
    views = [ChipView.from_info(c, profiles[c.model]) for c in engine.chips()]
    measured = {c.id: kepsdef.chip_capacity(engine, c.id) for c in engine.chips()}
    devices = [
        d
        for s in build_slices("n", views, measured_keps=measured)
        for d in s["spec"].get("devices", [])
    ]
    (fast,) = [
        c
        for c in device_classes(ClassSettings(min_meps))
        if c["metadata"]["name"] == "darwin-fast.snn.io"
    ]
    env = celpy.Environment()
    programs = [env.program(env.compile(s["cel"]["expression"])) for s in fast["spec"]["selectors"]]
    return {
        d["name"]
        for d in devices
        if all(bool(p.evaluate({"device": cel_device(d)})) for p in programs)
    }


def meps_of(engine: Engine, chip: int) -> int:
    return kepsdef.meps(kepsdef.chip_capacity(engine, chip))


def test_a_selector_on_max_meps_prefers_the_healthy_chip() -> None:
    profile = load_profiles()["darwin3"]
    with Engine() as eng:
        for i in range(2):
            eng.add_chip(profile, ChipEntry(model="darwin3", serial=f"S-{i}", fabric="f"))
        for domain in (0, 7, 14, 21):
            eng.inject_fault(1, FaultKind.DOMAIN, domain)
        healthy, degraded = meps_of(eng, 0), meps_of(eng, 1)
        assert healthy > degraded > 0
        assert selected(eng, (healthy + degraded) // 2) == {"chip-0"}
        assert selected(eng, degraded) == {"chip-0", "chip-1"}
        assert selected(eng, healthy + 1) == set()


def test_a_selector_on_max_meps_prefers_the_stronger_router() -> None:
    profiles = load_profiles()
    with Engine() as eng:
        for model in ("darwin3", "darwin3-fastroute"):
            eng.add_chip(profiles[model], ChipEntry(model=model, serial=model, fabric="f"))
        weak, strong = meps_of(eng, 0), meps_of(eng, 1)
        assert strong > weak
        assert selected(eng, (weak + strong) // 2) == {"chip-1"}
