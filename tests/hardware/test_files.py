"""Broken profile and inventory files are refused with the file, the field and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from darwin_dra.hardware.errors import HardwareFileError
from darwin_dra.hardware.inventory import load_inventory
from darwin_dra.hardware.model import ChipProfile
from darwin_dra.hardware.profiles import builtin_profile_dir, load_profile, load_profiles

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "inventory.yaml"

INVENTORY = """\
apiVersion: darwin.snn.io/v1alpha1
kind: Inventory
nodes:
  - name: n1
    fabrics:
      - id: w0
        chips:
          - {model: darwin3, serial: A}
"""


def write(tmp_path: Path, text: str, name: str = "f.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_profile_holds_the_published_figures(darwin3: ChipProfile) -> None:
    assert (darwin3.mesh_w, darwin3.mesh_h, darwin3.n_cores, darwin3.n_domains) == (24, 24, 575, 36)
    assert darwin3.neurons_per_core == 4096
    assert darwin3.energy_pj_per_op == pytest.approx(4.9)
    assert any("nwae102" in s for s in darwin3.sources)


def test_example_inventory_loads(darwin3: ChipProfile) -> None:
    inv = load_inventory(EXAMPLE, {"darwin3": darwin3})
    assert [n.name for n in inv.nodes] == ["node-a", "node-b"]
    assert {c.fabric for c in inv.node("node-b").chips} == {"wafer-0", "board-7"}
    with pytest.raises(KeyError, match="node 'zz' is not in the inventory"):
        inv.node("zz")


@pytest.mark.parametrize(
    ("edit", "field", "reason"),
    [
        (
            lambda t: t.replace("serial: A", "serial: 7"),
            "nodes[0].fabrics[0].chips[0].serial",
            "must be a non-empty string",
        ),
        (
            lambda t: t.replace("model: darwin3", "model: loihi9"),
            "nodes[0].fabrics[0].chips[0].model",
            "no chip profile for 'loihi9'",
        ),
        (lambda t: t.replace("kind: Inventory", "kind: Pod"), "kind", "must be 'Inventory'"),
        (
            lambda t: t.replace("      - id: w0\n", "      - idd: w0\n"),
            "nodes[0].fabrics[0].idd",
            "unknown field (known: chips, id)",
        ),
        (
            lambda t: (
                t + "  - name: n1\n    fabrics: [{id: w1, chips: [{model: darwin3, serial: B}]}]\n"
            ),
            "nodes[1].name",
            "listed twice",
        ),
        (
            lambda t: t.replace(
                "{model: darwin3, serial: A}", "{model: darwin3, serial: A, numaNode: -1}"
            ),
            "nodes[0].fabrics[0].chips[0].numaNode",
            "between 0 and 1023",
        ),
        (
            lambda t: t.replace(
                "          - {model: darwin3, serial: A}\n",
                "          - {model: darwin3, serial: A}\n"
                "          - {model: darwin3, serial: A}\n",
            ),
            "nodes[0].fabrics[0].chips[1].serial",
            "already used at nodes[0].fabrics[0].chips[0]",
        ),
    ],
)
def test_broken_inventory_names_field_and_reason(
    tmp_path: Path, darwin3: ChipProfile, edit: object, field: str, reason: str
) -> None:
    path = write(tmp_path, edit(INVENTORY))  # type: ignore[operator]
    with pytest.raises(HardwareFileError) as info:
        load_inventory(path, {"darwin3": darwin3})
    assert info.value.path == str(path)
    assert info.value.field == field
    assert reason in info.value.reason
    assert str(path) in str(info.value)


def test_unreadable_and_invalid_yaml(tmp_path: Path, darwin3: ChipProfile) -> None:
    with pytest.raises(HardwareFileError, match="cannot read"):
        load_inventory(tmp_path / "missing.yaml", {"darwin3": darwin3})
    with pytest.raises(HardwareFileError, match=r"not valid YAML at line 2, column \d+"):
        load_inventory(write(tmp_path, "a: 1\n b: [\n"), {"darwin3": darwin3})
    with pytest.raises(HardwareFileError, match="must be an object, got array"):
        load_inventory(write(tmp_path, "- 1\n"), {"darwin3": darwin3})


def test_broken_profiles(tmp_path: Path) -> None:
    text = (builtin_profile_dir() / "darwin3.yaml").read_text()
    cases = {
        "width: 4 ": ("width: 5 ", "domain", "must tile the 24x24 mesh"),
        "neuronsPerCore: 4096": ("neuronsPerCore: 0", "neuronsPerCore", "between 1 and 65536"),
        "controller: {x: 0, y: 0}": (
            "controller: {x: 30, y: 0}",
            "mesh.controller.x",
            "between 0 and 23",
        ),
        "energyPjPerOp: 4.9": ("energyPjPerOp: fast", "energyPjPerOp", "must be a number"),
        "onChipLearning: true": ("onChipLearning: yes please", "onChipLearning", "true or false"),
    }
    for old, (new, field, reason) in cases.items():
        assert old in text, old
        path = write(tmp_path, text.replace(old, new, 1), "darwin3.yaml")
        with pytest.raises(HardwareFileError) as info:
            load_profile(path)
        assert (info.value.field, reason in info.value.reason) == (field, True), info.value
    (tmp_path / "darwin3.yaml").unlink()
    with pytest.raises(HardwareFileError, match="holds no"):
        load_profiles(tmp_path)
    write(tmp_path, text, "a.yaml")
    write(tmp_path, text, "b.yaml")
    with pytest.raises(HardwareFileError, match="defined twice"):
        load_profiles(tmp_path)


def test_count_lists_identical_chips_and_models_mix(tmp_path: Path) -> None:
    text = INVENTORY.replace(
        "          - {model: darwin3, serial: A}\n",
        "          - {model: darwin3, serial: A, count: 3}\n"
        "          - {model: darwin3-fastroute, serial: F}\n",
    )
    inv = load_inventory(write(tmp_path, text), load_profiles())
    chips = inv.nodes[0].chips
    assert [(c.model, c.serial) for c in chips] == [
        ("darwin3", "A-0"),
        ("darwin3", "A-1"),
        ("darwin3", "A-2"),
        ("darwin3-fastroute", "F"),
    ]
    clash = text.replace("serial: F}", "serial: A-1}")
    with pytest.raises(HardwareFileError, match=r"chips\[1\]\.serial: A-1 is already used"):
        load_inventory(write(tmp_path, clash), load_profiles())
    with pytest.raises(
        HardwareFileError, match=r"count: must be an integer between 1 and 64, got 0"
    ):
        load_inventory(write(tmp_path, text.replace("count: 3", "count: 0")), load_profiles())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # Found by `make fuzz` (inventory, profile): both gave bare Python exceptions.
        (b"\x9e\x01kind: Inventory", "not UTF-8 text"),
        (b"[" * 3000 + b"]" * 3000, "nested too deeply"),
    ],
)
def test_files_that_are_not_yaml_documents_are_refused_with_the_reason(
    tmp_path: Path, data: bytes, message: str
) -> None:
    path = tmp_path / "f.yaml"
    path.write_bytes(data)
    with pytest.raises(HardwareFileError, match=message):
        load_inventory(path, load_profiles())
    with pytest.raises(HardwareFileError, match=message):
        load_profile(path)
