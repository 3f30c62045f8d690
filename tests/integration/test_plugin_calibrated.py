"""The real `darwin-dra kubelet-plugin` with a calibrated chip host (`chip-host --calibrate`):
the published capacity (each device's `keps` and `maxMeps`) is the chip model's measured one,
and a fault that lowers it is republished to the real API server (the plugin reads the chip
host's Info at every publish; the fault poll triggers one); clearing the fault restores it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from darwin_dra.cluster.launcher import LocalCluster
from host_plugin import Plugin, running_plugin
from k8s_helpers import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def calibrated(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plugin]:
    assert cluster.state is not None
    work = tmp_path_factory.mktemp("calibrated")
    with running_plugin(
        cluster, cluster.state.nodes[-1], work,
        calibrate=True, chip_host_timeout_s=240, ready_timeout_s=60,
    ) as plugin:  # fmt: skip
        yield plugin


def _published(plugin: Plugin) -> dict[str, tuple[int, int, str]]:
    """Each whole chip's published (keps, maxMeps, kepsSource)."""
    out: dict[str, tuple[int, int, str]] = {}
    for s in plugin.slices():
        for d in s["spec"].get("devices", []):
            if d["name"] in ("chip-0", "chip-1"):
                attrs: dict[str, Any] = d["attributes"]
                keps = int(d["capacity"]["keps"]["value"])
                out[d["name"]] = (keps, attrs["maxMeps"]["int"], attrs["kepsSource"]["string"])
    return out


def test_a_fault_that_lowers_the_calibration_is_republished(calibrated: Plugin) -> None:
    def fault(*args: str) -> None:
        calibrated.fault(*args, "--chip", "1")

    healthy = wait_for("both chips published", lambda: _published(calibrated) or None)
    assert set(healthy) == {"chip-0", "chip-1"}
    assert healthy["chip-0"] == healthy["chip-1"]
    assert healthy["chip-1"][2] == "measured"
    assert healthy["chip-1"][0] > 0

    fault("inject", "--domain", "5")
    degraded = wait_for(
        "chip-1's lower capacity published",
        lambda: (p := _published(calibrated)) and p["chip-1"][0] < healthy["chip-1"][0] and p,
        timeout=60,
    )
    assert degraded["chip-0"] == healthy["chip-0"]  # the other chip's figure stays
    assert 0 < degraded["chip-1"][1] < healthy["chip-1"][1]  # maxMeps went down with it
    fault("clear", "--all")
    wait_for("the healthy capacity again", lambda: _published(calibrated) == healthy, timeout=60)
