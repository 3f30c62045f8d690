"""The fabric links a chip device publishes (fabricLinks, fabricMeps): the pure grid rule of
resources/chips.py (for nodes simulated without an engine) against what the engine reports for
the same chips, and a fabric fault lowering them."""

from __future__ import annotations

import dataclasses

import pytest
from darwin_dra.engine import Engine, FaultKind
from darwin_dra.hardware.model import ChipEntry, ChipProfile
from darwin_dra.resources.chips import ChipView, fabric_neighbours, nominal_views
from darwin_dra.resources.slices import chip_devices


@pytest.mark.parametrize("grid_w", [0, 1, 2, 3, 8])
def test_the_grid_rule_is_the_engines(darwin3: ChipProfile, grid_w: int) -> None:
    prof = dataclasses.replace(darwin3, fabric_grid_w=grid_w)
    entries = [ChipEntry(model=prof.model, serial=f"S{i}", fabric="w") for i in range(7)]
    entries.append(ChipEntry(model=prof.model, serial="alone", fabric=""))
    with Engine() as eng:
        for e in entries:
            eng.add_chip(prof, e)
        infos = eng.chips()
        for chips in range(1, 8):
            assert [fabric_neighbours(r, chips, grid_w) for r in range(chips)] == [
                sum(1 for b in range(chips) if b != r and _adjacent(r, b, grid_w))
                for r in range(chips)
            ]
        assert [i.fabric_links for i in infos] == [
            fabric_neighbours(r, 7, grid_w) for r in range(7)
        ] + [0]
        views = nominal_views(entries, {prof.model: prof})
        assert views == [ChipView.from_info(i, prof) for i in infos]
        far = next(b for b in range(7) if b != 3 and _adjacent(3, b, grid_w))
        eng.inject_fault(3, FaultKind.FABRIC, far)
        hurt = ChipView.from_info(eng.chip(3), prof)
        assert hurt.fabric_links == views[3].fabric_links - 1
        attrs = chip_devices(hurt, kinds=("chip",))[0]["attributes"]
        assert attrs["fabricLinks"] == {"int": hurt.fabric_links}
        assert attrs["fabricMeps"] == {
            "int": int(hurt.fabric_links * prof.fabric_events_per_s // 1e6)
        }


def _adjacent(a: int, b: int, w: int) -> bool:
    if w == 0:
        return True
    return abs(a % w - b % w) + abs(a // w - b // w) == 1
