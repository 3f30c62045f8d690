"""The demo's pure parts: what a claim's allocation means on the chips' meshes, the share size
that fills a shared device, the manifests, and the report drawn from a record."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from darwin_dra.demo import explain, manifests, report
from darwin_dra.demo.record import Chip, Event, Record, Scenario
from darwin_dra.hardware.profiles import load_profiles

PROFILES = load_profiles()


def _slice(node: str, devices: list[dict[str, Any]]) -> dict[str, Any]:
    return {"spec": {"driver": "darwin.snn.io", "nodeName": node, "pool": {"name": node},
                     "devices": devices}}  # fmt: skip


def _device(
    name: str, kind: str, model: str, chip: int, x: int, y: int, keps: str
) -> dict[str, Any]:
    attrs = {"partition": {"string": kind}, "model": {"string": model}, "chip": {"int": chip},
             "meshX": {"int": x}, "meshY": {"int": y},
             "maxMeps": {"int": int(keps) // 1000}}  # fmt: skip
    return {"name": name, "attributes": attrs, "capacity": {"keps": {"value": keps}}}


SLICES = [
    _slice("n0", [
        _device("chip-1-domain-7", "domain", "darwin3", 1, 4, 4, "27826087"),
        _device("chip-1-shared-0", "shared", "darwin3", 1, 0, 0, "499130434"),
        _device("chip-1-shared-1", "shared", "darwin3", 1, 0, 12, "499130434"),
    ]),
    _slice("n2", [_device("chip-0-domain-1", "domain", "darwin3-fastroute", 0, 4, 0, "125490196")]),
    {"spec": {"driver": "other.example.com", "pool": {"name": "x"}, "devices": [{"name": "d"}]}},
]  # fmt: skip


def _claim(*results: tuple[str, str, str | None]) -> dict[str, Any]:
    out = []
    for pool, device, keps in results:
        r: dict[str, Any] = {"driver": "darwin.snn.io", "pool": pool, "device": device,
                             "request": "r"}  # fmt: skip
        if keps:
            r["consumedCapacity"] = {"keps": keps}
        out.append(r)
    return {"metadata": {"name": "c"}, "status": {"allocation": {"devices": {"results": out}}}}


def test_devices_read_only_the_drivers_slices_with_plain_attribute_values() -> None:
    known = explain.devices(SLICES)
    assert set(known) == {("n0", "chip-1-domain-7"), ("n0", "chip-1-shared-0"),
                          ("n0", "chip-1-shared-1"), ("n2", "chip-0-domain-1")}  # fmt: skip
    dev = known[("n0", "chip-1-domain-7")]
    assert (dev.node, dev.attr("chip"), dev.attr("model"), dev.capacity["keps"]) == (
        "n0", 1, "darwin3", "27826087")  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "model", "size"),
    [("domain", "darwin3", (4, 4)), ("quad", "darwin3", (8, 8)), ("half", "darwin3", (24, 12)),
     ("shared", "darwin3-fastroute", (16, 8)), ("chip", "darwin3-fastroute", (16, 16))],
)  # fmt: skip
def test_extent_is_the_tiles_the_slice_builder_cuts(
    kind: str, model: str, size: tuple[int, int]
) -> None:
    assert explain.extent(kind, PROFILES[model]) == size


def test_extent_of_an_unknown_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="fabric"):
        explain.extent("fabric", PROFILES["darwin3"])


def test_placements_name_the_chip_tiles_and_the_consumed_share() -> None:
    known = explain.devices(SLICES)
    claim = _claim(("n0", "chip-1-domain-7", None), ("n0", "chip-1-shared-1", "200000000"))
    got = explain.placements("s", "pod", claim, known, PROFILES)
    assert [(p.device, p.chip, p.x, p.y, p.width, p.height, p.keps) for p in got] == [
        ("chip-1-domain-7", 1, 4, 4, 4, 4, "27826087"),
        ("chip-1-shared-1", 1, 0, 12, 24, 12, "200000000"),
    ]
    assert explain.describe(got) == "n0: chip-1-domain-7, chip-1-shared-1 (darwin3 chip 1)"
    assert explain.describe([]) == "(nothing allocated)"


def test_a_shared_device_is_ruled_out_by_a_partition_on_its_half_only() -> None:
    known = explain.devices(SLICES)
    held = explain.placements("s", "two", _claim(("n0", "chip-1-domain-7", None)), known, PROFILES)
    assert explain.overlapping(known[("n0", "chip-1-shared-0")], held, PROFILES) == held
    assert explain.overlapping(known[("n0", "chip-1-shared-1")], held, PROFILES) == []


def test_keps_reads_the_quantities_the_api_server_writes() -> None:
    assert [explain.keps(q) for q in ("250", "1M", "1G", "")] == [250, 10**6, 10**9, 0]


def test_meps_by_model_and_pending_reason() -> None:
    known = explain.devices(SLICES)
    assert explain.meps_by_model(known, "domain") == {"darwin3": 27826, "darwin3-fastroute": 125490}
    pod = {"status": {"conditions": [{"type": "PodScheduled", "status": "False",
                                      "message": "0/3 nodes are available"}]}}  # fmt: skip
    assert explain.pending_reason(pod) == "0/3 nodes are available"
    assert explain.pending_reason({"status": {"conditions": [
        {"type": "PodScheduled", "status": "True"}]}}) == ""  # fmt: skip


def test_claim_of_finds_named_template_and_extended_resource_claims() -> None:
    claims = [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]
    named = {"spec": {"resourceClaims": [{"name": "s1", "resourceClaimName": "b"}]}}
    assert explain.claim_of(named, claims) == claims[1]
    by_template = {"status": {"resourceClaimStatuses": [{"name": "x", "resourceClaimName": "b"}]}}
    by_limits = {"status": {"extendedResourceClaimStatus": {"resourceClaimName": "a"}}}
    assert explain.claim_of(by_template, claims) == claims[1]
    assert explain.claim_of(by_limits, claims) == claims[0]
    assert explain.claim_of({"status": {}}, claims) is None


@pytest.mark.parametrize("capacity", [996_078_431, 499_130_434, 1000, 50])
@pytest.mark.parametrize("per_device", [1, 2, 3])
def test_share_keps_fits_per_device_and_not_one_more(capacity: int, per_device: int) -> None:
    if capacity < 10 * (2 * per_device + 1):
        with pytest.raises(ValueError, match="cannot split"):
            manifests.share_keps(capacity, per_device)
        return
    keps = manifests.share_keps(capacity, per_device)
    assert keps % 10 == 0
    assert keps * per_device <= capacity < keps * (per_device + 1)


def test_inventory_and_values() -> None:
    inv = manifests.inventory(["a", "b", "c"], manifests.FULL)
    assert [[c["model"] for f in n["fabrics"] for c in f["chips"]] for n in inv["nodes"]] == [
        ["darwin3", "darwin3"], ["darwin3", "darwin3"], ["darwin3-fastroute"]]  # fmt: skip
    serials = [c["serial"] for n in inv["nodes"] for f in n["fabrics"] for c in f["chips"]]
    assert len(set(serials)) == 5
    with pytest.raises(ValueError, match="2 nodes for 3"):
        manifests.inventory(["a", "b"], manifests.FULL)
    values = manifests.helm_values("reg.local/darwin-dra:abc", "10.0.0.1", 6443, inv)
    assert values["image"] == {"repository": "reg.local/darwin-dra", "tag": "abc",
                               "pullPolicy": "Never"}  # fmt: skip
    assert values["apiServer"] == {"host": "10.0.0.1", "port": "6443"}


def test_workloads_run_the_network_from_the_configmap() -> None:
    pod = manifests.claim_pod("p", "img:1", "tmpl", "c")
    [container] = pod["spec"]["containers"]
    assert f"darwin-dra run --network {manifests.NETWORK_PATH}" in container["command"][2]
    assert pod["spec"]["resourceClaims"] == [{"name": "c", "resourceClaimTemplateName": "tmpl"}]
    legacy = manifests.legacy_pod("l", "img:1", {"darwin.snn.io/domain": "2"})
    assert "resourceClaims" not in legacy["spec"]
    assert manifests.example("two-domains-one-chip.yaml", "ResourceClaimTemplate")["metadata"][
        "name"] == "two-domains"  # fmt: skip


def test_report_writes_a_page_with_its_pictures(tmp_path: Path) -> None:
    chips = [
        Chip("n0", 1, "darwin3", 24, 24, 4, 4),
        Chip("n2", 0, "darwin3-fastroute", 16, 16, 4, 4),
    ]
    known = explain.devices(SLICES)
    placed = explain.placements(
        "fault", "w", _claim(("n0", "chip-1-domain-7", None)), known, PROFILES
    )
    record = Record(
        setup=[("cluster", 12.5)], chips=chips, placements=placed, evicted=placed,
        failed_chip=("n0", 1), timeline=[Event(0.0, "fails"), Event(2.5, "evicted <w>")],
        scenarios=[Scenario("fault", "A chip fails", asked="a", given="g", why="w",
                            logs=["run: recurrent"])],
    )  # fmt: skip
    page = report.write(record, tmp_path / "r")
    text = page.read_text()
    assert (tmp_path / "r" / "placement.png").stat().st_size > 10_000
    assert (tmp_path / "r" / "fault-timeline.png").stat().st_size > 5_000
    assert re.search(r"<img id='placement' src='placement.png'", text)
    assert "<img id='timeline' src='fault-timeline.png'" in text
    assert "<dd>g</dd>" in text
    assert "run: recurrent" in text


def test_reasons_read_constraints_subrequests_shares_and_binding_conditions() -> None:
    known = explain.devices(SLICES)
    claim = _claim(("n0", "chip-1-domain-7", None), ("n0", "chip-1-shared-1", "250"))
    claim["status"]["allocation"]["devices"]["results"][0]["request"] = "block/domains"
    claim["spec"] = {"devices": {
        "requests": [{"name": "block", "firstAvailable": [{"name": "quad"}, {"name": "domains"}]},
                     {"name": "r"}],
        "constraints": [{"matchAttribute": "darwin.snn.io/chip"}],
    }}  # fmt: skip
    claim["status"]["allocation"]["devices"]["results"][1]["bindingConditions"] = [
        "RoutesProgrammed"
    ]
    claim["status"]["devices"] = [{"pool": "n0", "device": "chip-1-shared-1", "conditions": [
        {"type": "Ready", "status": "True", "reason": "PartitionPrepared"},
        {"type": "RoutesProgrammed", "status": "True", "reason": "Programmed"}]}]  # fmt: skip
    assert explain.reasons(claim, known) == [
        "all 2 devices publish darwin.snn.io/chip=1: matchAttribute holds",
        "firstAvailable ['quad', 'domains']: took domains (not quad)",
        "chip-1-shared-1 shares 250 of its 499,130,434 KEPS with other claims",
        "chip-1-shared-1: RoutesProgrammed (Programmed) before the pod bound",
    ]
    apart = _claim(("n0", "chip-1-domain-7", None), ("n2", "chip-0-domain-1", None))
    constraint = {"matchAttribute": "darwin.snn.io/chip"}
    apart["spec"] = {"devices": {"requests": [{"name": "r"}], "constraints": [constraint]}}
    assert explain.reasons(apart, known) == [
        "the devices publish darwin.snn.io/chip values ['0', '1']"
    ]


def test_every_example_pod_becomes_a_workload_keeping_its_claims_and_limits() -> None:
    for file in manifests.EXAMPLE_FILES:
        for doc in manifests.example_docs(file):
            if doc["kind"] != "Pod":
                continue
            pod = manifests.as_workload(doc, "img:1")
            [c] = pod["spec"]["containers"]
            assert c["image"] == "img:1"
            assert c["resources"] == doc["spec"]["containers"][0]["resources"]
            assert pod["spec"].get("resourceClaims") == doc["spec"].get("resourceClaims")
            assert pod["metadata"]["labels"][manifests.DEMO_LABEL] == doc["metadata"]["name"]


def test_image_name_reads_an_oci_tar_and_names_a_bad_one(tmp_path: Path) -> None:
    import io
    import json
    import tarfile

    from darwin_dra.demo.bringup import image_name

    good = tmp_path / "img.tar"
    index = {"manifests": [{"annotations": {"io.containerd.image.name": "reg.local/x:1"}}]}
    body = json.dumps(index).encode()
    with tarfile.open(good, "w") as t:
        info = tarfile.TarInfo("index.json")
        info.size = len(body)
        t.addfile(info, io.BytesIO(body))
    assert image_name(good) == "reg.local/x:1"
    bad = tmp_path / "bad.tar"
    bad.write_text("not a tar")
    with pytest.raises(ValueError, match=r"--image .*bad.tar: not an OCI image tar"):
        image_name(bad)
