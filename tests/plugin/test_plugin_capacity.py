"""The capacity layout through the driver (--partitions capacity): the scheduler grants a number
of domains and a KEPS budget of a chip's one device; the plugin picks the domains, with a real
engine, checkpoint and CDI files."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from darwin_dra.engine import Engine
from darwin_dra.hardware.model import ChipEntry, ChipProfile
from darwin_dra.kubelet.preparer import ClaimRef, PrepareResult
from darwin_dra.plugin.driver import Driver
from darwin_dra.plugin.node import DriverConfig

from tests.plugin.claims import ClaimStore, claim, result

NODE = "node-a"


def _grant(domains: int, keps: int, share: str, request: str = "r") -> dict[str, object]:
    return result(
        "chip-0-capacity",
        NODE,
        request,
        shareID=share,
        consumedCapacity={"domains": str(domains), "keps": str(keps)},
    )


def _prepare(driver: Driver, *uids: str) -> dict[str, PrepareResult]:
    return dict(asyncio.run(driver.prepare([ClaimRef("ns", u, f"c-{u}") for u in uids])))


def _unprepare(driver: Driver, *uids: str) -> dict[str, str | None]:
    return dict(asyncio.run(driver.unprepare([ClaimRef("ns", u, f"c-{u}") for u in uids])))


def test_grants_get_disjoint_domains_budgets_and_a_clear_error_when_full(
    tmp_path: Path, darwin3: ChipProfile
) -> None:
    store = ClaimStore(
        claim("a", [_grant(4, 100_000_000, "s-a")]),
        # Two requests of one claim on the same device: two grants, never the same domains.
        claim("b", [_grant(2, 50_000_000, "s-b1", "x"), _grant(2, 50_000_000, "s-b2", "y")]),
        claim("big", [_grant(29, 10_000, "s-big")]),
        claim("late", [_grant(1, 10_000, "s-late")]),
    )
    cfg = DriverConfig(NODE, tmp_path / "state", tmp_path / "cdi", lock_timeout_s=5)
    with Engine() as eng:
        eng.add_chip(darwin3, ChipEntry(model="darwin3", serial="T-0", fabric="f0"))
        driver = Driver(cfg, eng, {"darwin3": darwin3}, store, boot_id=lambda: "boot-1")
        out = _prepare(driver, "a", "b")
        assert out["a"].error is None
        assert out["b"].error is None
        parts = eng.partitions()
        assert len(parts) == 3
        cores = [set(p.cores) for p in parts]
        assert sum(len(c) for c in cores) == len(set().union(*cores))  # never overlapping
        assert sorted(p.keps_budget for p in parts) == [50_000_000, 50_000_000, 100_000_000]
        assert not any(p.shared for p in parts)
        [entry] = store.claims[("ns", "c-a")]["status"]["devices"]
        assert entry["data"]["domains"] == [0, 1, 6, 7]
        assert entry["data"]["placement"] == "block"
        assert entry["shareID"] == "s-a"
        # 36 domains, 8 held: 28 left, so 29 do not fit; the error says what and where.
        big = _prepare(driver, "big")["big"].error or ""
        assert "grants 29 domains of chip 0 (T-0) but only 28 are free" in big
        assert len(eng.partitions()) == 3
        assert "big" not in driver.store.load().claims
        # Released domains are free again.
        assert _unprepare(driver, "a") == {"a": None}
        late = _prepare(driver, "late")["late"]
        assert late.error is None
        [entry] = store.claims[("ns", "c-late")]["status"]["devices"]
        assert entry["data"]["domains"] == [0]
        # A prepare answered again from the checkpoint keeps its domains.
        assert _prepare(driver, "b")["b"] == out["b"]


def test_a_capacity_grant_without_its_domains_is_refused(
    tmp_path: Path, darwin3: ChipProfile
) -> None:
    bare = result("chip-0-capacity", NODE, shareID="s", consumedCapacity={"keps": "10"})
    store = ClaimStore(claim("u", [bare]))
    cfg = DriverConfig(NODE, tmp_path / "state", tmp_path / "cdi", lock_timeout_s=5)
    with Engine() as eng:
        eng.add_chip(darwin3, ChipEntry(model="darwin3", serial="T-0", fabric="f0"))
        driver = Driver(cfg, eng, {"darwin3": darwin3}, store, boot_id=lambda: "boot-1")
        err = _prepare(driver, "u")["u"].error or ""
        assert "needs consumedCapacity.domains" in err
        assert eng.partitions() == []


@pytest.mark.parametrize("text", ["capacity", "capacity,capacity"])
def test_capacity_is_a_layout_of_its_own(text: str) -> None:
    from darwin_dra.resources.partitions import CAPACITY_PARTITIONS, parse_partitions

    assert parse_partitions(text) == CAPACITY_PARTITIONS
    with pytest.raises(ValueError, match="cannot be combined"):
        parse_partitions("capacity,domain")
