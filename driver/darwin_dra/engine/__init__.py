"""The engine: simulated Darwin chips and the spike router, behind a typed Python API."""

from darwin_dra.engine.engine import Engine
from darwin_dra.engine.errors import (
    CapacityExceeded,
    Conflict,
    EngineError,
    InternalError,
    InvalidArgument,
    NotFound,
    OutOfMemory,
    QueueOverflow,
    StateError,
)
from darwin_dra.engine.native import (
    DelayStore,
    Direction,
    FaultKind,
    PartitionConfig,
    Routing,
    cap_mmap_threshold,
)
from darwin_dra.engine.network import Kernel, Model, Network, NeuronGroup, Reset, synapses
from darwin_dra.engine.records import LinkStats, PartitionInfo, Telemetry

__all__ = [
    "CapacityExceeded",
    "Conflict",
    "DelayStore",
    "Direction",
    "Engine",
    "EngineError",
    "FaultKind",
    "InternalError",
    "InvalidArgument",
    "Kernel",
    "LinkStats",
    "Model",
    "Network",
    "NeuronGroup",
    "NotFound",
    "OutOfMemory",
    "PartitionConfig",
    "PartitionInfo",
    "QueueOverflow",
    "Reset",
    "Routing",
    "StateError",
    "Telemetry",
    "cap_mmap_threshold",
    "synapses",
]
