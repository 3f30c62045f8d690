"""What a chip reset does to the published devices and the health stream (pure)."""

from __future__ import annotations

from darwin_dra.engine import Engine
from darwin_dra.hardware.model import ChipEntry, ChipProfile
from darwin_dra.kubelet.health_service import Health
from darwin_dra.plugin.health import device_states
from darwin_dra.resources.chips import ChipView
from darwin_dra.resources.partitions import with_reset_taints
from darwin_dra.resources.slices import build_slices


def _views(darwin3: ChipProfile) -> dict[int, ChipView]:
    with Engine() as eng:
        eng.add_chip(darwin3, ChipEntry(model="darwin3", serial="R-0", fabric="f"))
        eng.add_chip(darwin3, ChipEntry(model="darwin3", serial="R-1", fabric="f"))
        return {c.id: ChipView.from_info(c, darwin3) for c in eng.chips()}


def test_lost_devices_get_a_noexecute_reset_taint_and_nothing_else_changes(
    darwin3: ChipProfile,
) -> None:
    slices = build_slices("n", list(_views(darwin3).values()))
    lost = frozenset({"chip-1-domain-4", "chip-0"})
    marked = with_reset_taints(slices, lost)
    assert with_reset_taints(slices, frozenset()) == slices
    before = {d["name"]: d for s in slices for d in s["spec"].get("devices", [])}
    after = {d["name"]: d for s in marked for d in s["spec"].get("devices", [])}
    assert set(after) == set(before)
    for name, dev in after.items():
        if name in lost:
            assert dev["taints"] == [
                {"key": "darwin.snn.io/unhealthy", "value": "reset", "effect": "NoExecute"}
            ]
            assert {k: v for k, v in dev.items() if k != "taints"} == before[name]
        else:
            assert dev == before[name]
    assert [s["metadata"]["name"] for s in marked] == [s["metadata"]["name"] for s in slices]


def test_lost_devices_are_unhealthy_on_the_health_stream(darwin3: ChipProfile) -> None:
    states = device_states("n", _views(darwin3), now=1, lost=frozenset({"chip-1-domain-4"}))
    bad = {s.device: s for s in states if s.health is Health.UNHEALTHY}
    assert list(bad) == ["chip-1-domain-4"]
    assert bad["chip-1-domain-4"].message.startswith("chip reset")
