"""The trace generator and the two claim builders (pure)."""

from __future__ import annotations

import collections

import pytest
from darwin_dra.fleet import claims
from darwin_dra.fleet.trace import KINDS, TraceConfig, generate, parse_mix


def test_trace_is_seeded_and_follows_its_parameters() -> None:
    cfg = TraceConfig(length_s=4 * 3600, arrivals_per_hour=600)
    jobs = generate(cfg)
    assert jobs == generate(cfg)
    assert jobs != generate(TraceConfig(seed=12, length_s=4 * 3600, arrivals_per_hour=600))
    assert 2000 < len(jobs) < 2800  # Poisson, 2400 expected
    assert all(0 <= j.arrival < cfg.length_s and j.duration > 0 for j in jobs)
    assert [j.arrival for j in jobs] == sorted(j.arrival for j in jobs)
    share = collections.Counter(j.kind for j in jobs)
    for kind in KINDS:
        assert share[kind] / len(jobs) == pytest.approx(cfg.mix[kind], abs=0.03)
    spikes = [j for j in jobs if j.kind == "spike"]
    assert all(1_000_000 < j.rate_meps <= 1_800_000 for j in spikes)
    infer = [j for j in jobs if j.kind == "infer"]
    mean = sum(j.duration for j in infer) / len(infer)
    assert mean == pytest.approx(cfg.mean_duration_s["infer"], rel=0.1)


def test_bad_trace_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="add up to 1"):
        TraceConfig(mix={"infer": 0.5, "train": 0.2})
    with pytest.raises(ValueError, match="unknown job kinds"):
        TraceConfig(mix={"infer": 0.5, "gpu": 0.5})


def by_kind() -> dict[str, claims.Job]:
    jobs = generate(TraceConfig(length_s=3600, arrivals_per_hour=400))
    out = {}
    for j in jobs:
        out.setdefault(j.kind, j)
    assert set(out) == set(KINDS)
    return out


def test_blackbox_units_take_whole_chips_and_split_pipelines() -> None:
    jobs = by_kind()
    for kind, job in jobs.items():
        units = claims.units(job, "blackbox")
        for u in units:
            (req,) = u.claim_spec["devices"]["requests"]
            assert req["exactly"]["deviceClassName"] == claims.BLACKBOX_CLASS
            assert "constraints" not in u.claim_spec["devices"]
        if kind == "pipeline":
            assert [u.index for u in units] == [0, 1, 2]
        elif kind == "train":
            assert units[0].claim_spec["devices"]["requests"][0]["exactly"]["count"] == job.chips
        else:
            assert len(units) == 1


def test_darwin_units_use_the_resource_model() -> None:
    jobs = by_kind()
    spec = {k: claims.units(j, "darwin")[0].claim_spec["devices"] for k, j in jobs.items()}
    assert all(len(claims.units(j, "darwin")) == 1 for j in jobs.values())
    infer = spec["infer"]["requests"][0]["exactly"]
    assert infer["deviceClassName"] == "darwin-domain.snn.io"
    assert infer["count"] == jobs["infer"].domains
    share = spec["share"]["requests"][0]["exactly"]
    assert share["capacity"]["requests"]["keps"] == str(jobs["share"].keps)
    assert share["capacity"]["requests"]["neurons"] == str(jobs["share"].cores * 4096)
    cel = spec["spike"]["requests"][0]["exactly"]["selectors"][0]["cel"]["expression"]
    assert f".maxMeps >= {jobs['spike'].rate_meps}" in cel
    assert spec["train"]["requests"][0]["exactly"]["deviceClassName"] == "darwin-chip.snn.io"
    pipe = spec["pipeline"]
    assert [r["name"] for r in pipe["requests"]] == list(claims.PIPELINE_STAGES)
    assert pipe["constraints"] == [
        {"requests": list(claims.PIPELINE_STAGES), "matchAttribute": "darwin.snn.io/fabric"}
    ]


def test_pods_and_templates() -> None:
    job = by_kind()["infer"]
    (unit,) = claims.units(job, "darwin")
    pod = claims.pod(unit)
    assert pod["spec"]["resourceClaims"] == [
        {"name": "devices", "resourceClaimTemplateName": unit.template_name}
    ]
    assert pod["spec"]["containers"][0]["resources"]["claims"] == [{"name": "devices"}]
    template = claims.claim_template(unit.claim_spec)
    assert template["metadata"]["name"] == unit.template_name
    assert template["spec"]["spec"] == unit.claim_spec
    # Equal needs, equal template; different needs, different template.
    again = claims.units(job, "darwin")[0]
    assert again.template_name == unit.template_name
    assert claims.units(by_kind()["train"], "darwin")[0].template_name != unit.template_name
    with pytest.raises(ValueError, match="unknown resource model"):
        claims.units(job, "gpu")


WHOLE = {"darwin3": 36, "darwin3-fastroute": 16}


def test_capacity_units_ask_domains_and_keps_of_one_chip() -> None:
    jobs = by_kind()
    req = {
        k: claims.units(j, "capacity", WHOLE)[0].claim_spec["devices"]["requests"][0]
        for k, j in jobs.items()
    }
    infer = req["infer"]["exactly"]
    assert infer["deviceClassName"] == claims.CAPACITY_CLASS
    assert infer["capacity"]["requests"] == {
        "domains": str(jobs["infer"].domains),
        "keps": str(jobs["infer"].rate_meps * 1000),
    }
    assert req["share"]["exactly"]["capacity"]["requests"]["domains"] == "1"
    spike = req["spike"]["exactly"]
    assert f">= {jobs['spike'].rate_meps}" in spike["selectors"][0]["cel"]["expression"]
    assert spike["capacity"]["requests"]["domains"] == str(-(-jobs["spike"].cores // 16))
    assert req["pipeline"]["exactly"]["capacity"]["requests"]["domains"] == "6"
    # Training: a whole chip of either model, darwin3 (the weaker router) first.
    subs = req["train"]["firstAvailable"]
    assert [s["capacity"]["requests"]["domains"] for s in subs] == ["36", "16"]
    assert all(s["count"] == jobs["train"].chips for s in subs)
    assert '== "darwin3"' in subs[0]["selectors"][0]["cel"]["expression"]
    with pytest.raises(ValueError, match="domains of a whole chip"):
        claims.units(jobs["infer"], "capacity")


def test_a_mix_is_parsed_by_kind_and_checked() -> None:
    mix = parse_mix("infer=0.3, share=0.1,spike=0.1,train=0.2,pipeline=0.3")
    assert mix == {"infer": 0.3, "share": 0.1, "spike": 0.1, "train": 0.2, "pipeline": 0.3}
    jobs = generate(TraceConfig(mix=parse_mix("train=0.5,spike=0.5"), length_s=3600.0))
    assert {j.kind for j in jobs} == {"train", "spike"}
    for bad in ("infer", "infer=x", ""):
        with pytest.raises(ValueError, match="mix: "):
            parse_mix(bad)
    with pytest.raises(ValueError, match="unknown job kinds"):
        TraceConfig(mix=parse_mix("infer=0.5,gpu=0.5"))
