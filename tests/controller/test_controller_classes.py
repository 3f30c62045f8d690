from __future__ import annotations

import re

from darwin_dra import DRIVER_NAME
from darwin_dra.controller.deviceclasses import (
    EXCLUSIVE_PARTITIONS,
    ClassSettings,
    device_classes,
)
from darwin_dra.hardware.model import ChipProfile
from darwin_dra.resources.chips import ChipView, DomainView
from darwin_dra.resources.partitions import ALL_KINDS, partitions


def _by_name() -> dict[str, dict]:  # type: ignore[type-arg]
    return {c["metadata"]["name"]: c for c in device_classes()}


def _chip(profile: ChipProfile) -> ChipView:
    return ChipView(
        chip=0,
        model="darwin3",
        serial="S",
        fabric="f",
        domains=tuple(DomainView(d, 16) for d in range(profile.n_domains)),
        domains_x=profile.domains_x,
        domains_y=profile.domains_y,
        domain_w=4,
        domain_h=4,
        neurons_per_core=4096,
        synapses_per_chip=10**8,
        keps=10**9,
        max_fan_in=1,
        max_fan_out=1,
        sparse_routing=True,
        on_chip_learning=True,
    )


def test_the_classes_and_their_extended_resource_names() -> None:
    classes = _by_name()
    assert sorted(classes) == [
        "darwin-capacity.snn.io",
        "darwin-chip.snn.io",
        "darwin-domain.snn.io",
        "darwin-fabric.snn.io",
        "darwin-fast.snn.io",
        "darwin-router.snn.io",
        "darwin-shared.snn.io",
        "darwin.snn.io",
    ]
    extended = {n: c["spec"].get("extendedResourceName") for n, c in classes.items()}
    assert extended == {
        "darwin-capacity.snn.io": None,
        "darwin-chip.snn.io": "darwin.snn.io/chip",
        "darwin-domain.snn.io": "darwin.snn.io/domain",
        "darwin-fabric.snn.io": None,
        "darwin-fast.snn.io": None,
        "darwin-router.snn.io": None,
        "darwin-shared.snn.io": None,
        "darwin.snn.io": None,
    }


def test_every_class_checks_the_driver_before_reading_its_attributes() -> None:
    # Another driver's device has no darwin.snn.io attributes: reading them first would be a
    # CEL runtime error for that device instead of a plain "does not match" (the driver check
    # leads the one expression and `&&` stops at its false).
    for cls in device_classes():
        [selector] = cls["spec"]["selectors"]  # one selector: one evaluation a device
        first, *rest = selector["cel"]["expression"].split(" && ")
        assert first == f'device.driver == "{DRIVER_NAME}"'
        assert rest, cls["metadata"]["name"]


def test_partition_names_in_selectors_are_the_ones_the_slice_builder_publishes(
    darwin3: ChipProfile,
) -> None:
    published = {p.kind for p in partitions(_chip(darwin3), ALL_KINDS)} | {"fabric", "router"}
    named: set[str] = set()
    for cls in device_classes():
        for sel in cls["spec"]["selectors"]:
            named |= set(re.findall(r'"([a-z]+)"', sel["cel"]["expression"].split("partition")[-1]))
    named.discard(DRIVER_NAME)
    assert named <= published
    assert set(EXCLUSIVE_PARTITIONS) == published - {"shared", "fabric", "capacity", "router"}


def test_any_partition_class_excludes_shared_and_fabric_devices() -> None:
    spec = _by_name()["darwin.snn.io"]["spec"]
    expression = spec["selectors"][0]["cel"]["expression"]
    assert "shared" not in expression
    assert "fabric" not in expression
    assert '"domain"' in expression


def test_fast_class_threshold_comes_from_settings() -> None:
    fast = {c["metadata"]["name"]: c for c in device_classes(ClassSettings(fast_min_meps=7))}
    exprs = [s["cel"]["expression"] for s in fast["darwin-fast.snn.io"]["spec"]["selectors"]]
    assert exprs[-1].endswith(' && device.attributes["darwin.snn.io"].maxMeps >= 7')


def test_classes_are_labelled_as_owned_by_the_controller() -> None:
    for cls in device_classes():
        assert cls["metadata"]["labels"] == {
            "app.kubernetes.io/managed-by": "darwin-dra-controller"
        }
