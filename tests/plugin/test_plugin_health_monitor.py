"""The plugin's health watch: a change of the chips or of the lost devices is published once;
a chip host that does not answer keeps the last state."""

from __future__ import annotations

from darwin_dra.chiphost.client import ChipHostUnavailable
from darwin_dra.engine import Engine
from darwin_dra.hardware.model import ChipEntry, ChipProfile
from darwin_dra.kubelet.health_service import Health, HealthHub
from darwin_dra.plugin.health import HealthMonitor, Snapshot
from darwin_dra.resources.chips import ChipView


def test_changes_are_seen_once_and_an_absent_chip_host_keeps_the_last_state(
    darwin3: ChipProfile,
) -> None:
    with Engine() as eng:
        eng.add_chip(darwin3, ChipEntry(model="darwin3", serial="H-0", fabric="f"))
        views = {c.id: ChipView.from_info(c, darwin3) for c in eng.chips()}
    answers: list[Snapshot | Exception] = [
        (views, frozenset()),
        (views, frozenset()),
        ChipHostUnavailable("chip host unavailable: restarting"),
        (views, frozenset({"chip-0-domain-2"})),
    ]

    def snapshot() -> Snapshot:
        got = answers.pop(0)
        if isinstance(got, Exception):
            raise got
        return got

    hub = HealthHub()
    monitor = HealthMonitor("n", snapshot, hub, lambda: None)
    assert monitor.poll_once() is True
    assert monitor.poll_once() is False
    assert monitor.poll_once() is False  # unreadable: nothing changes
    assert monitor.last == (views, frozenset())
    assert monitor.poll_once() is True  # the chip came back reset
    monitor.publish(force=True)
    unhealthy = [s.device for s in hub.snapshot() if s.health is Health.UNHEALTHY]
    assert unhealthy == ["chip-0-domain-2"]
