"""Chip profiles: one YAML file per chip model with its nominal figures and their sources."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from darwin_dra.hardware.errors import HardwareFileError
from darwin_dra.hardware.fields import load_yaml
from darwin_dra.hardware.model import ChipProfile

SCHEMA_FILE = "chipprofile.schema.json"


def load_profile(path: Path) -> ChipProfile:
    """Parses and checks one profile file: the fields against the schema
    (api/hardware/v1alpha1/chipprofile.schema.json), then the rules that relate them."""
    doc = load_yaml(path, SCHEMA_FILE)
    mesh, ctrl, domain = doc["mesh"], doc["mesh"]["controller"], doc["domain"]
    width, height = mesh["width"], mesh["height"]

    def within(field: str, value: int, hi: int, lo: int = 0) -> int:
        if not lo <= value <= hi:
            raise HardwareFileError(str(path), field, f"must be between {lo} and {hi}, got {value}")
        return value

    profile = ChipProfile(
        model=doc["model"],
        mesh_w=width,
        mesh_h=height,
        domain_w=within("domain.width", domain["width"], width, 1),
        domain_h=within("domain.height", domain["height"], height, 1),
        controller_x=within("mesh.controller.x", ctrl["x"], width - 1),
        controller_y=within("mesh.controller.y", ctrl["y"], height - 1),
        neurons_per_core=doc["neuronsPerCore"],
        synapses_per_chip=doc["synapsesPerChip"],
        core_queue_events=doc["coreQueueEvents"],
        router_events_per_s=float(doc["routerEventsPerSecond"]),
        energy_pj_per_op=float(doc["energyPjPerOp"]),
        fabric_events_per_s=float(doc["fabricEventsPerSecond"]),
        max_fan_in=doc["maxFanIn"],
        max_fan_out=doc["maxFanOut"],
        on_chip_learning=doc["onChipLearning"],
        sparse_routing=doc["sparseRouting"],
        sources=tuple(doc.get("sources", ())),
        fabric_grid_w=doc.get("fabricGridWidth", 0),
    )
    if width % profile.domain_w or height % profile.domain_h:
        raise HardwareFileError(
            str(path),
            "domain",
            f"{profile.domain_w}x{profile.domain_h} domains must tile the "
            f"{width}x{height} mesh exactly",
        )
    if width * height < 2:
        raise HardwareFileError(str(path), "mesh", "needs a controller tile and a neuron core")
    return profile


def builtin_profile_dir() -> Path:
    return Path(str(resources.files("darwin_dra") / "profiles"))


def load_profiles(directory: Path | None = None) -> dict[str, ChipProfile]:
    """All profiles of a directory (default: those shipped with the package), by model."""
    directory = directory or builtin_profile_dir()
    if not directory.is_dir():
        raise HardwareFileError(str(directory), "", "profile directory does not exist")
    profiles: dict[str, ChipProfile] = {}
    for path in sorted(directory.glob("*.yaml")):
        profile = load_profile(path)
        if profile.model in profiles:
            raise HardwareFileError(str(path), "model", f"{profile.model} is defined twice")
        profiles[profile.model] = profile
    if not profiles:
        raise HardwareFileError(str(directory), "", "holds no *.yaml chip profile")
    return profiles
