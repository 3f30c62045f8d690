"""Engine benchmark: the Brunel (2000) network on the engine and on peer simulators.

The peers (NEST, Brian2) run in subprocesses (`peers.run_peer`) so that their imports,
output and memory stay out of the caller.
"""

from darwin_dra.bench.brunel import (
    DEFAULT_SEED,
    BenchResult,
    BrunelConfig,
    connectivity,
    initial_v,
    iter_connectivity,
    out_degree,
    synapse_weights_mv,
    synaptic_events,
)
from darwin_dra.bench.peers import PEER_MODULES, PeerUnavailable, run_peer
from darwin_dra.bench.table import render, to_json

__all__ = [
    "DEFAULT_SEED",
    "PEER_MODULES",
    "BenchResult",
    "BrunelConfig",
    "PeerUnavailable",
    "connectivity",
    "initial_v",
    "iter_connectivity",
    "out_degree",
    "render",
    "run_peer",
    "synapse_weights_mv",
    "synaptic_events",
    "to_json",
]
