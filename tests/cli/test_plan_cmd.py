"""`darwin-dra plan` and `darwin-dra bench placement` run the way a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from darwin_dra.engine import Network, NeuronGroup, synapses
from darwin_dra.runtime.stage import save_stage
from darwin_dra.testing.cli import Ran, run_cli

TOPOLOGY = """\
apiVersion: darwin.snn.io/v1alpha1
kind: Topology
nodes:
  - name: node-0
    fabrics:
      - id: board-0
        chips:
          - {model: darwin3, serial: A}
          - {model: darwin3, serial: B, allocatedDomains: [0, 1, 2]}
  - name: node-1
    fabrics:
      - id: board-0
        chips:
          - {model: darwin3, serial: C}
"""


def darwin_dra(*args: str) -> Ran:
    return run_cli(*args)


def _topology(tmp_path: Path, text: str = TOPOLOGY) -> str:
    path = tmp_path / "topology.yaml"
    path.write_text(text)
    return str(path)


def test_plan_json_places_every_group_and_compares_the_baselines(tmp_path: Path) -> None:
    out = darwin_dra("plan", "--generate", "layered", "--topology", _topology(tmp_path), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert len(doc["placement"]) == 32
    assert {p["node"] for p in doc["placement"]} <= {"node-0", "node-1"}
    methods = [r["method"] for r in doc["comparison"]]
    assert methods[1:] == ["naive", "random"]
    planner = doc["comparison"][0]
    assert planner["spikes_per_s_across_nodes"] == 0.0
    assert sum(len(s["groups"]) for s in doc["stages"]) == 32


def test_plan_table_of_an_engine_network(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    src = np.repeat(np.arange(400), 10)
    s, d, w, dl = synapses(src, rng.integers(0, 400, src.size), np.full(src.size, 0.2),
                           np.ones(src.size, dtype=np.int64))  # fmt: skip
    net = Network((NeuronGroup(400, poisson_rate_hz=8000.0, poisson_weight=0.15),), s, d, w, dl)
    path = tmp_path / "net.npz"
    save_stage(path, net)
    out = darwin_dra(
        "plan", "--network", str(path), "--topology", _topology(tmp_path), "--tile", "50",
        "--probe-steps", "500",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "model net: 8 groups, 400 neurons, 4,000 synapses" in out.stdout
    assert "across nodes/s" in out.stdout
    for method in ("naive", "random"):
        assert f"net    {method}" in out.stdout


def test_plan_a_model_bigger_than_the_cluster_says_what_is_missing(tmp_path: Path) -> None:
    out = darwin_dra("plan", "--generate", "conv-unet", "--topology", _topology(tmp_path))
    assert out.returncode == 1
    assert "model 'conv-unet' (2304 groups) does not fit the free cluster" in out.stderr
    assert "synapses: needs 903M, the free cluster has 292M, 611M missing" in out.stderr
    assert "(node-0: 192M, node-1: 100M)" in out.stderr


def test_plan_refuses_a_bad_topology_file_naming_the_field(tmp_path: Path) -> None:
    bad = _topology(tmp_path, TOPOLOGY.replace("[0, 1, 2]", "[99]"))
    out = darwin_dra("plan", "--generate", "layered", "--topology", bad)
    assert out.returncode == 2
    assert "nodes[0].fabrics[0].chips[1].allocatedDomains: must be a list of domain" in out.stderr


def test_bench_placement_prints_the_planner_and_the_baselines() -> None:
    out = darwin_dra(
        "bench", "placement", "--models", "layered", "--methods", "pymetis,greedy,naive,random"
    )
    assert out.returncode == 0, out.stderr
    lines = [line.split()[:2] for line in out.stdout.splitlines() if line.startswith("layered ")]
    assert [m for _, m in lines] == ["pymetis", "greedy", "naive", "random"]
    assert "topology: 4 nodes x 4 darwin3 chips on 2 fabrics" in out.stdout


def test_plan_without_a_reachable_cluster_says_so(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
    )
    out = darwin_dra("plan", "--generate", "layered", "--kubeconfig", str(config))
    assert out.returncode == 2
    assert f"darwin-dra plan: --kubeconfig {config}: API server unreachable" in out.stderr


DATA = Path(__file__).resolve().parents[1] / "data"


def test_plan_places_a_nir_model_exported_by_snntorch(tmp_path: Path) -> None:
    model = DATA / "digits_snntorch.nir"
    out = darwin_dra(
        "plan", "--model", str(model), "--topology", _topology(tmp_path), "--tile", "16", "--json"
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    groups = {p["group"] for p in doc["placement"]}
    assert len(groups) > 1, "the model's layers should be tiled into several groups"
    assert [r["method"] for r in doc["comparison"]][1:] == ["naive", "random"]


def test_plan_names_a_broken_nir_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.nir"
    bad.write_bytes(b"not hdf5")
    out = darwin_dra("plan", "--model", str(bad), "--topology", _topology(tmp_path))
    assert out.returncode != 0
    assert "broken.nir" in out.stderr
