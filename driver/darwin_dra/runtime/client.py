"""A typed asyncio client of the SpikePort: numpy arrays in, numpy arrays out, one call per
batch."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import grpc
import numpy as np
import numpy.typing as npt

from darwin_dra.engine import Network
from darwin_dra.kubelet.proto_gen.runtime_v1alpha1 import spikeport_pb2 as pb
from darwin_dra.kubelet.proto_gen.runtime_v1alpha1 import spikeport_pb2_grpc as pb_grpc
from darwin_dra.runtime import wire
from darwin_dra.runtime.address import parse_endpoint
from darwin_dra.runtime.spikeport import MESSAGE_OPTIONS
from darwin_dra.unixsock import grpc_target


@dataclass(frozen=True)
class Loaded:
    neurons: int
    cores_used: int
    synapse_bytes: int
    quant_error_mv: float


@dataclass(frozen=True)
class Counters:
    """Cumulative since Load."""

    steps: int
    spikes: int
    input_spikes: int
    events: int
    dropped_queue: int
    dropped_fault: int
    dropped_budget: int
    dropped_input: int
    dropped_output: int
    keps: float

    @classmethod
    def from_pb(cls, t: pb.StepTelemetry) -> Counters:
        return cls(**{name: getattr(t, name) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Stepped:
    steps: wire.U64
    ids: wire.U32
    counters: Counters
    # steps x readout neurons: their potentials after each step (Load's ``readout``)
    readout: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, 0), np.float32))


def load_request(
    net: Network,
    export: Iterable[int] = (),
    export_capacity: int = 0,
    input_capacity: int = 0,
    readout: Iterable[int] = (),
) -> pb.LoadRequest:
    return pb.LoadRequest(
        name=net.name,
        # the proto's NeuronGroup fields are named as the dataclass's
        groups=[pb.NeuronGroup(**dataclasses.asdict(g)) for g in net.groups],
        src=wire.pack(net.src, "u4"),
        dst=wire.pack(net.dst, "u4"),
        weight=wire.pack(net.weight, "f4"),
        delay=wire.pack(net.delay, "u2"),
        n_inputs=net.n_inputs,
        dt_ms=net.dt_ms,
        seed=net.seed,
        bias=b"" if net.bias is None else wire.pack(net.bias, "f4"),
        export_neurons=wire.pack(np.fromiter(export, dtype=np.int64), "u4"),
        export_capacity=export_capacity,
        input_capacity=input_capacity,
        readout_neurons=wire.pack(np.fromiter(readout, dtype=np.int64), "u4"),
    )


class SpikePortClient:
    """``async with SpikePortClient(endpoint) as port: ...``; gRPC errors surface as
    grpc.aio.AioRpcError with the server's status code and the engine's message."""

    def __init__(self, endpoint: str | Path, timeout_s: float = 60.0) -> None:
        path = endpoint if isinstance(endpoint, Path) else parse_endpoint(endpoint)
        self.timeout_s = timeout_s
        self._exit = contextlib.ExitStack()
        # The target may name a directory fd: it must stay open while the channel reconnects.
        target = self._exit.enter_context(grpc_target(path))
        self._channel = grpc.aio.insecure_channel(target, options=MESSAGE_OPTIONS)
        self._stub = pb_grpc.SpikePortStub(self._channel)
        self._readout = 0  # readout neurons of the loaded network

    async def __aenter__(self) -> SpikePortClient:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close(None)
        self._exit.close()

    async def load(
        self,
        net: Network,
        export: Iterable[int] = (),
        export_capacity: int = 0,
        input_capacity: int = 0,
        readout: Iterable[int] = (),
    ) -> Loaded:
        """Loads ``net``; Step then returns the spikes of ``export`` and the potentials of
        ``readout`` (neuron ids) after every step."""
        ro = [int(i) for i in readout]
        self._readout = len(ro)
        req = load_request(net, export, export_capacity, input_capacity, ro)
        r = await self._stub.Load(req, timeout=self.timeout_s)
        return Loaded(r.neurons, r.cores_used, r.synapse_bytes, r.quant_error_mv)

    async def step(
        self,
        steps: int,
        input_steps: npt.ArrayLike = (),
        input_ids: npt.ArrayLike = (),
        reset: bool = False,
    ) -> Stepped:
        """Injects (timestep, input) spikes, runs ``steps`` steps, returns the exported spikes
        (and the readout); ``reset`` first loads the network afresh (StepRequest.reset)."""
        s = np.asarray(input_steps)
        i = np.asarray(input_ids)
        if s.shape != i.shape or s.ndim != 1:
            raise ValueError("input_steps and input_ids must be 1-D arrays of equal length")
        if s.size and (s.min() < 0 or i.min() < 0 or i.max() >= 2**32):
            raise ValueError("input steps must be >= 0 and input ids in [0, 2^32)")
        req = pb.StepRequest(
            inputs=pb.Spikes(steps=wire.pack(s, "u8"), ids=wire.pack(i, "u4")),
            steps=steps,
            reset=reset,
        )
        r = await self._stub.Step(req, timeout=self.timeout_s)
        out_s, out_i = wire.spikes(r.exported.steps, r.exported.ids)
        ro = wire.column(r.readout, "f4", "readout").astype(np.float32)
        if ro.size != steps * self._readout:
            raise wire.WireError(
                f"readout: {ro.size} potentials for {steps} steps x {self._readout} neurons"
            )
        rows = ro.reshape(steps, self._readout)
        return Stepped(out_s, out_i, Counters.from_pb(r.telemetry), rows)

    async def telemetry(self) -> pb.TelemetryResponse:
        return await self._stub.Telemetry(pb.TelemetryRequest(), timeout=self.timeout_s)

    async def unload(self) -> None:
        await self._stub.Unload(pb.UnloadRequest(), timeout=self.timeout_s)
