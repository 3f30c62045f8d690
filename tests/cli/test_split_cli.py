"""`darwin-dra split` as the controller's split pod runs it: the plan of a NIR model, read back
from the output the way the controller reads the pod's log; a bad file is one clear line."""

from __future__ import annotations

from pathlib import Path

from darwin_dra.pipeline.plan import from_split_json
from darwin_dra.pipeline.split import SplitPlan
from darwin_dra.pipeline.splitter import ModelError, maps_from_log, plan_from_log
from darwin_dra.testing.cli import Ran, run_cli

MODEL = Path(__file__).resolve().parents[1] / "data" / "digits_snntorch.nir"


def _cli(*args: str) -> Ran:
    return run_cli("split", *args)


def test_split_prints_the_plan_the_controller_reads() -> None:
    out = _cli("--model", str(MODEL), "--stages", "3", "--input-rate-hz", "200")
    assert out.returncode == 0, out.stderr
    text = plan_from_log("some log line\n" + out.stdout + "\nanother\n")
    assert text is not None
    plan = from_split_json(text)
    assert [s.name for s in plan.stages] == ["input", "s0", "s1", "s2", "output"]
    assert [s.kind for s in plan.stages] == ["input", "engine", "engine", "engine", "output"]


def test_split_prints_the_route_maps_the_controller_would_compute() -> None:
    """A model on a volume: the controller cannot read it, so the split pod prints the neuron
    maps of the edges between engine stages, the same the controller makes of a ConfigMap's."""
    import pytest
    from darwin_dra.controller.plansource import model_route_maps

    out = _cli("--model", str(MODEL), "--stages", "3", "--input-rate-hz", "200", "--route-maps")
    assert out.returncode == 0, out.stderr
    log = "noise\n" + out.stdout
    text = plan_from_log(log)
    assert text is not None
    maps = maps_from_log(log)
    assert maps == model_route_maps(MODEL, text)
    engine = {st.name for st in SplitPlan.from_json(text).engine_stages()}
    edges = {(e.src, e.dst) for e in SplitPlan.from_json(text).edges}
    assert set(maps) == {(a, b) for a, b in edges if a in engine and b in engine}
    assert maps
    assert maps_from_log(_cli("--model", str(MODEL), "--stages", "3").stdout) == {}
    with pytest.raises(ModelError, match="'s0s1': expected SRC->DST"):
        maps_from_log('darwin-dra split routes: {"s0s1": "0:0:1"}')
    with pytest.raises(ModelError, match="not JSON"):
        maps_from_log("darwin-dra split routes: {")


def test_split_of_a_bad_file_or_count_says_which() -> None:
    out = _cli("--model", "/nonexistent/model.nir")
    assert out.returncode == 1
    assert "splitting model.nir" in out.stderr
    assert plan_from_log(out.stdout) is None
    bad = _cli("--model", str(MODEL), "--stages", "lots")
    assert bad.returncode == 2
    assert "'lots': a number from 1 to 64, or auto" in bad.stderr


def test_split_by_layers_makes_the_training_cut(tmp_path: Path) -> None:
    """The split-learning model split where training cut it (as a SpikingPipeline's
    stageLayers asks its split pod to): s0 holds the edge's layer alone."""
    from darwin_dra.models.nirfile import write_graph
    from darwin_dra.splitlearn.nirexport import split_graph
    from darwin_dra.splitlearn.parts import Config, EdgePart, ServerPart

    cfg = Config()
    nir_file = tmp_path / "split.nir"
    write_graph(nir_file, split_graph(EdgePart(cfg, 0), ServerPart(cfg, 0)))
    out = _cli("--model", str(nir_file), "--layers", "edge;server,readout")
    assert out.returncode == 0, out.stderr
    text = plan_from_log(out.stdout)
    assert text is not None
    assert [s.name for s in from_split_json(text).stages] == ["input", "s0", "s1"]
    plan = SplitPlan.from_json(text)
    cut = next(e for e in plan.edges if (e.src, e.dst) == ("s0", "s1"))
    assert cut.neurons == cfg.hidden
    for args, says in [
        (["--layers", "edge;nope"], "no neuron layer 'nope'"),
        (["--layers", "edge;;server"], "expected LAYER[,LAYER...] per stage"),
        (["--layers", "edge;server,readout", "--stages", "3"], "--layers names 2 stages"),
    ]:
        bad = _cli("--model", str(nir_file), *args)
        assert bad.returncode == 1, bad.stdout
        assert says in bad.stderr
