"""Chip profiles: one YAML file per chip model with its nominal figures and their sources."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from darwin_dra.hardware.errors import HardwareFileError
from darwin_dra.hardware.fields import Fields, load_yaml
from darwin_dra.hardware.model import ChipProfile

_KNOWN = {
    "apiVersion",
    "kind",
    "model",
    "mesh",
    "domain",
    "neuronsPerCore",
    "synapsesPerChip",
    "coreQueueEvents",
    "routerEventsPerSecond",
    "energyPjPerOp",
    "maxFanIn",
    "maxFanOut",
    "onChipLearning",
    "sparseRouting",
    "sources",
}


def load_profile(path: Path) -> ChipProfile:
    """Parses and checks one profile file."""
    f = Fields(str(path), load_yaml(path, "ChipProfile"))
    f.reject_unknown(_KNOWN)
    mesh = f.mapping("mesh")
    ctrl = mesh.mapping("controller")
    domain = f.mapping("domain")
    width = mesh.integer("width", 1, 256)
    height = mesh.integer("height", 1, 256)
    profile = ChipProfile(
        model=f.string("model", max_len=31),
        mesh_w=width,
        mesh_h=height,
        domain_w=domain.integer("width", 1, width),
        domain_h=domain.integer("height", 1, height),
        controller_x=ctrl.integer("x", 0, width - 1),
        controller_y=ctrl.integer("y", 0, height - 1),
        neurons_per_core=f.integer("neuronsPerCore", 1, 65536),
        synapses_per_chip=f.integer("synapsesPerChip", 1, 10**13),
        core_queue_events=f.integer("coreQueueEvents", 1, 2**32 - 1),
        router_events_per_s=f.number("routerEventsPerSecond", 1.0, 1e16),
        energy_pj_per_op=f.number("energyPjPerOp", 0.0, 1e6),
        max_fan_in=f.integer("maxFanIn", 1, 2**31 - 1),
        max_fan_out=f.integer("maxFanOut", 1, 2**31 - 1),
        on_chip_learning=f.boolean("onChipLearning"),
        sparse_routing=f.boolean("sparseRouting"),
        sources=f.strings("sources"),
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
