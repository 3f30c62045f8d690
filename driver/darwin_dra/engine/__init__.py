"""The engine: simulated Darwin chips and the spike router, behind a typed Python API."""

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
    Direction,
    Engine,
    FaultKind,
    PartitionConfig,
    PartitionInfo,
    Routing,
    Telemetry,
)
from darwin_dra.engine.network import Model, Network, NeuronGroup, Reset, synapses

__all__ = [
    "CapacityExceeded",
    "Conflict",
    "Direction",
    "Engine",
    "EngineError",
    "FaultKind",
    "InternalError",
    "InvalidArgument",
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
    "synapses",
]
