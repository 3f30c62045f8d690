"""`darwin-dra inventory` run the way a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from darwin_dra.testing.cli import Ran, run_cli

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "inventory.yaml"


def darwin_dra(*args: str) -> Ran:
    return run_cli(*args)


def test_inventory_json_on_the_example() -> None:
    out = darwin_dra("inventory", "--inventory", str(EXAMPLE), "--json")
    assert out.returncode == 0, out.stderr
    nodes = json.loads(out.stdout)
    assert [n["node"] for n in nodes] == ["node-a", "node-b"]
    chip = nodes[0]["chips"][0]
    assert (chip["serial"], chip["n_cores"], len(chip["domains"])) == ("D3-0001", 575, 36)
    assert chip["pcie_root"] == "pci0000:00"


def test_inventory_table_for_one_node_with_cores() -> None:
    out = darwin_dra("inventory", "--inventory", str(EXAMPLE), "--node", "node-b", "--cores")
    assert out.returncode == 0, out.stderr
    assert "node node-b: 2 chip(s)" in out.stdout
    assert "fabric board-7" in out.stdout
    assert "core 574 at (23,23) domain 35 ok" in out.stdout


@pytest.mark.slow  # runs the CLI in subprocesses, tens of seconds on a loaded machine
def test_inventory_errors_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "inv.yaml"
    bad.write_text("apiVersion: darwin.snn.io/v1alpha1\nkind: Inventory\nnodes: 3\n")
    out = darwin_dra("inventory", "--inventory", str(bad))
    assert out.returncode == 1
    assert f"{bad}: nodes: must be a list" in out.stderr
    out = darwin_dra("inventory", "--inventory", str(EXAMPLE), "--node", "nope")
    assert out.returncode == 1
    assert "node 'nope' is not in the inventory" in out.stderr
