"""A link fault on a calibrated real node: the real `darwin-dra kubelet-plugin` and a chip host
with `--calibrate` on a real node (kubelet, containerd, runc), registered with its kubelet.
A failed link inside one domain lowers the chip's measured capacity: the plugin republishes the
chip's `keps` and `maxMeps` lower to the real API server (the other chip's stay), and clearing
the fault publishes the healthy figures again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from darwin_dra.cluster.launcher import LocalCluster
from host_plugin import Plugin, running_plugin
from k8s_helpers import wait_for

from tests.integration.test_plugin_calibrated import _published
from tests.integration.test_real_nodes import _link_inside

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def calibrated_real(
    real_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Plugin]:
    assert real_cluster.state is not None
    node = real_cluster.state.nodes[-1]
    assert node.kind == "real"
    work = tmp_path_factory.mktemp("calibrated-real")
    with running_plugin(
        real_cluster, node, work, calibrate=True, chip_host_timeout_s=240, ready_timeout_s=60
    ) as plugin:
        wait_for(
            "the kubelet's registration of the plugin",
            lambda: "registered with the kubelet" in plugin.log.read_text(errors="replace"),
            timeout=60,
        )
        yield plugin


def test_a_link_fault_lowers_max_meps_on_a_calibrated_real_node_until_cleared(
    calibrated_real: Plugin,
) -> None:
    plugin = calibrated_real

    healthy = wait_for("both chips published", lambda: _published(plugin) or None)
    assert set(healthy) == {"chip-0", "chip-1"}
    assert healthy["chip-1"][2] == "measured"
    assert healthy["chip-0"] == healthy["chip-1"]
    plugin.fault("inject", *_link_inside(1, 5))
    degraded = wait_for(
        "chip-1's lower maxMeps published",
        lambda: (p := _published(plugin)) and p["chip-1"][1] < healthy["chip-1"][1] and p,
        timeout=60,
    )
    print(f"\nmaxMeps of chip-1 on {plugin.node}: {healthy['chip-1'][1]} healthy, "
          f"{degraded['chip-1'][1]} with a failed link in domain 5 (keps {healthy['chip-1'][0]} "
          f"-> {degraded['chip-1'][0]}); chip-0 {degraded['chip-0'][1]}")  # fmt: skip
    assert degraded["chip-0"] == healthy["chip-0"]  # the other chip's figure stays
    assert 0 < degraded["chip-1"][0] < healthy["chip-1"][0]
    assert degraded["chip-1"][2] == "measured"
    plugin.fault("clear", "--all", "--chip", "1")
    wait_for("the healthy capacity again", lambda: _published(plugin) == healthy, timeout=60)
