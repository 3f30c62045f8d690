"""plugin/plan.py: allocation results to partition intents and status entries."""

from __future__ import annotations

from pathlib import Path

import pytest
from darwin_dra.engine import Engine
from darwin_dra.hardware.model import ChipProfile
from darwin_dra.plugin.cdi import build_spec
from darwin_dra.plugin.plan import ClaimError, plan_claim, status_entries, with_status
from darwin_dra.plugin.records import ClaimPlan, Prepared
from darwin_dra.resources.chips import ChipView

from tests.plugin.claims import claim, opaque, result

NODE = "node-a"


@pytest.fixture
def views(engine: Engine, darwin3: ChipProfile) -> dict[int, ChipView]:
    return {c.id: ChipView.from_info(c, darwin3) for c in engine.chips()}


def _plan(views: dict[int, ChipView], *results: dict, config: list | None = None) -> ClaimPlan:
    return plan_claim(claim("u1", list(results), config), "u1", NODE, views)


@pytest.mark.parametrize(
    ("device", "chip", "domains", "shared"),
    [
        ("chip-1", 1, tuple(range(36)), False),
        ("chip-0-half-1", 0, tuple(range(18, 36)), False),
        ("chip-0-quad-4", 0, (14, 15, 20, 21), False),
        ("chip-1-domain-35", 1, (35,), False),
        ("chip-0-shared-0", 0, tuple(range(18)), True),
    ],
)
def test_device_names_map_to_the_published_domains(
    views: dict[int, ChipView], device: str, chip: int, domains: tuple[int, ...], shared: bool
) -> None:
    extra = {"consumedCapacity": {"keps": "250"}, "shareID": "s1"} if shared else {}
    [intent] = _plan(views, result(device, NODE, **extra)).devices
    assert (intent.chip, intent.domains, intent.shared) == (chip, domains, shared)


def test_exclusive_keps_is_the_partitions_share_and_shared_keps_the_grant(
    views: dict[int, ChipView],
) -> None:
    plan = _plan(
        views,
        result("chip-0-domain-1", NODE, "a"),
        result("chip-1-shared-1", NODE, "b", consumedCapacity={"keps": "1500"}, shareID="x"),
    )
    domain, shared = plan.devices
    assert domain.keps == views[0].keps * 16 // 575
    assert (shared.keps, shared.share_id) == (1500, "x")


def test_other_drivers_pools_are_ignored(views: dict[int, ChipView]) -> None:
    other = {**result("gpu-0", NODE), "driver": "gpu.example.com"}
    plan = _plan(views, other, result("chip-0", "node-b"), result("chip-0-domain-2", NODE))
    assert [d.device for d in plan.devices] == ["chip-0-domain-2"]


def test_claim_config_wins_over_class_config_field_by_field(views: dict[int, ChipView]) -> None:
    params = {"apiVersion": "darwin.snn.io/v1alpha1", "kind": "PartitionConfig"}
    config = [
        opaque("FromClaim", {**params, "timestepUs": 50}),
        opaque("FromClass", {**params, "timestepUs": 1000, "routingMode": "multicast-tree"}),
    ]
    [intent] = _plan(views, result("chip-0-domain-2", NODE), config=config).devices
    assert (intent.config.timestep_us, intent.config.routing_mode) == (50, "multicast-tree")


@pytest.mark.parametrize(
    ("results", "config", "message"),
    [
        ([result("chip-9", NODE)], None, "publishes no device 'chip-9'"),
        (
            [result("chip-0-shared-0", NODE, shareID="s")],
            None,
            "needs consumedCapacity.keps",
        ),
        (
            [result("chip-0-shared-0", NODE, shareID="s", consumedCapacity={"keps": "0"})],
            None,
            "must be positive",
        ),
        ([result("chip-0", NODE, adminAccess=True)], None, "adminAccess is not supported"),
        (
            [result("chip-0", NODE)],
            [
                opaque(
                    "FromClaim",
                    {
                        "apiVersion": "darwin.snn.io/v1alpha1",
                        "kind": "PartitionConfig",
                        "timestepUs": 1,
                    },
                )
            ],
            "timestepUs: must be an integer between",
        ),
        ([result("chip-0", NODE), result("chip-0", NODE, "s")], None, "allocated twice"),
    ],
)
def test_bad_allocations_give_actionable_errors(
    views: dict[int, ChipView], results: list, config: list | None, message: str
) -> None:
    with pytest.raises(ClaimError, match=message):
        _plan(views, *results, config=config)


def test_learning_needs_a_chip_with_on_chip_learning(views: dict[int, ChipView]) -> None:
    from dataclasses import replace

    no_learning = {i: replace(v, on_chip_learning=False) for i, v in views.items()}
    config = [
        opaque(
            "FromClaim",
            {"apiVersion": "darwin.snn.io/v1alpha1", "kind": "PartitionConfig", "learning": True},
        )
    ]
    with pytest.raises(ClaimError, match="no on-chip learning"):
        _plan(no_learning, result("chip-0", NODE), config=config)
    assert _plan(views, result("chip-0", NODE), config=config).devices[0].config.learning


def test_uid_mismatch_and_missing_allocation(views: dict[int, ChipView]) -> None:
    body = claim("u1", [result("chip-0", NODE)])
    with pytest.raises(ClaimError, match="recreated"):
        plan_claim(body, "u2", NODE, views)
    del body["status"]["allocation"]
    with pytest.raises(ClaimError, match="not allocated"):
        plan_claim(body, "u1", NODE, views)


@pytest.mark.parametrize("uid", ["", "-a", "a b", "../x"])
def test_a_uid_that_cannot_name_files_is_refused_before_anything_is_made(
    views: dict[int, ChipView], uid: str
) -> None:
    # Found by the dra fuzz target: an empty UID got its spike socket directory made, then the
    # CDI writer refused the name and the rollback left the directory behind.
    with pytest.raises(ClaimError, match="cannot name the claim's CDI spec"):
        plan_claim(claim(uid, [result("chip-0", NODE)]), uid, NODE, views)


@pytest.mark.parametrize("share_id", [7, "", ["s"]])
def test_a_share_id_that_is_no_string_is_refused(
    views: dict[int, ChipView], share_id: object
) -> None:
    # Found by the dra fuzz target: an int shareID reached the gRPC answer, whose building
    # raised, so the kubelet got no answer for any claim of the call.
    with pytest.raises(ClaimError, match="shareID must be a non-empty string"):
        _plan(
            views,
            result("chip-1-shared-0", NODE, consumedCapacity={"keps": "2k"}, shareID=share_id),
        )


def test_intent_round_trips_through_json(views: dict[int, ChipView]) -> None:
    plan = _plan(
        views,
        result("chip-0-quad-0", NODE, "a"),
        result("chip-1-shared-0", NODE, "b", consumedCapacity={"keps": "2k"}, shareID="z"),
    )
    again = ClaimPlan.from_intent(plan.uid, plan.namespace, plan.name, plan.intent())
    assert again == plan
    assert again.devices[1].keps == 2000


def test_status_entries_and_merge_keep_other_drivers(
    views: dict[int, ChipView], tmp_path: Path
) -> None:
    plan = _plan(views, result("chip-0-domain-1", NODE))
    cores = tuple(range(15, 31))
    prepared = [Prepared(plan.devices[0], 7, cores)]
    [entry] = status_entries(plan, prepared, views, "2026-01-01T00:00:00Z")
    assert entry["data"]["cores"] == 16
    assert entry["data"]["coreList"] == "15-30"
    assert entry["data"]["spikeEndpoint"].startswith(
        "unix:///var/run/darwin/partitions/u1-r-chip-0-domain-1"
    )
    assert entry["conditions"][0]["type"] == "Ready"
    assert entry["conditions"][0]["status"] == "True"

    body = claim("u1", [result("chip-0-domain-1", NODE)])
    foreign = {"driver": "gpu.example.com", "pool": NODE, "device": "gpu-0"}
    body["status"]["devices"] = [foreign]
    updated = with_status(body, NODE, [entry])
    assert updated is not None
    assert updated["status"]["devices"] == [foreign, entry]
    later = {
        **entry,
        "conditions": [{**entry["conditions"][0], "lastTransitionTime": "2027-01-01T00:00:00Z"}],
    }
    assert with_status(updated, NODE, [later]) is None

    # The CDI spec is written from the same record: its socket dir, partition and cores.
    [cdi_dev] = build_spec(plan.uid, prepared, tmp_path)["devices"]
    [mount] = cdi_dev["containerEdits"]["mounts"]
    assert mount["hostPath"] == str(tmp_path / "u1-r-chip-0-domain-1")
    env = dict(e.split("=", 1) for e in cdi_dev["containerEdits"]["env"])
    assert (env["DARWIN_PARTITION"], env["DARWIN_CORES"]) == ("7", "15-30")


@pytest.mark.parametrize(
    ("field", "message"),
    [
        # Found by `make fuzz` (claim): each gave an AttributeError inside plan_claim.
        (lambda c: c.update(status="allocated"), "status must be an object, got str"),
        (lambda c: c.update(metadata=["u1"]), "metadata must be an object, got list"),
        (
            lambda c: c["status"]["allocation"].update(devices=[]),
            "status.allocation.devices must be an object, got list",
        ),
        (
            lambda c: c["status"]["allocation"]["devices"].update(results={"a": 1}),
            r"devices.results must be a list, got dict",
        ),
        (
            lambda c: c["status"]["allocation"]["devices"].update(results=["chip-0"]),
            r"devices.results\[0\] must be an object, got str",
        ),
        (
            lambda c: c["status"]["allocation"]["devices"].update(config=[7]),
            r"devices.config\[0\] must be an object, got int",
        ),
        (
            lambda c: c["status"]["allocation"]["devices"].update(config=[None]),
            r"devices.config\[0\] must be an object, got NoneType",
        ),
    ],
)
def test_a_claim_of_the_wrong_shape_is_refused_naming_the_field(
    views: dict[int, ChipView], field: object, message: str
) -> None:
    bad = claim("u1", [result("chip-0-domain-2", NODE)])
    assert callable(field)
    field(bad)
    with pytest.raises(ClaimError, match=message):
        plan_claim(bad, "u1", NODE, views)
