"""What a node holds when no claim is prepared: nothing. Checked after storms and fuzz inputs."""

from __future__ import annotations

from darwin_dra.engine import Engine
from darwin_dra.plugin.driver import Driver
from darwin_dra.plugin.node import DriverConfig


def assert_nothing_held(driver: Driver, engine: Engine, cfg: DriverConfig) -> None:
    """No partition, checkpoint entry, CDI spec or spike socket directory left."""
    assert engine.partitions() == [], engine.partitions()
    assert driver.store.load().claims == {}
    for directory in (cfg.cdi_dir, cfg.socket_root):  # CDI specs, spike socket directories
        assert not directory.exists() or list(directory.iterdir()) == [], directory
