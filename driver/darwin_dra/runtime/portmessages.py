"""The SpikePort's messages as engine records and back: the network of a LoadRequest, the
counters of a StepResponse, and the gRPC status an engine error is reported with (pure)."""

from __future__ import annotations

import dataclasses

import grpc
import numpy as np

from darwin_dra.engine import Model, Network, NeuronGroup, Reset, Telemetry, errors
from darwin_dra.kubelet.proto_gen.runtime_v1alpha1 import spikeport_pb2 as pb
from darwin_dra.runtime import wire


def status_code(exc: BaseException) -> grpc.StatusCode:
    """The gRPC status a failed engine call is reported with."""
    if isinstance(exc, errors.QueueOverflow | errors.CapacityExceeded | errors.OutOfMemory):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(exc, errors.StateError):
        return grpc.StatusCode.FAILED_PRECONDITION
    if isinstance(exc, errors.NotFound):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(exc, ValueError):  # InvalidArgument, WireError, the wrappers' own checks
        return grpc.StatusCode.INVALID_ARGUMENT
    return grpc.StatusCode.INTERNAL


def network_from(req: pb.LoadRequest) -> Network:
    # the proto's NeuronGroup fields are named as the dataclass's
    names = [f.name for f in dataclasses.fields(NeuronGroup)]
    groups = []
    for i, g in enumerate(req.groups):
        fields = {n: getattr(g, n) for n in names}
        try:
            fields["model"], fields["reset"] = Model(g.model), Reset(g.reset)
        except ValueError as exc:
            raise wire.WireError(f"groups[{i}]: {exc}") from exc
        groups.append(NeuronGroup(**fields))
    cols = (
        wire.column(req.src, "u4", "src"),
        wire.column(req.dst, "u4", "dst"),
        wire.column(req.weight, "f4", "weight"),
        wire.column(req.delay, "u2", "delay"),
    )
    if len({c.size for c in cols}) != 1:
        raise wire.WireError(
            "src, dst, weight and delay must hold the same number of synapses, got "
            + ", ".join(str(c.size) for c in cols)
        )
    bias = wire.column(req.bias, "f4", "bias") if req.bias else None
    return Network(
        groups=tuple(groups),
        bias=None if bias is None else bias.astype(np.float32),
        src=cols[0].astype(np.uint32),
        dst=cols[1].astype(np.uint32),
        weight=cols[2].astype(np.float32),
        delay=cols[3].astype(np.uint16),
        n_inputs=req.n_inputs,
        dt_ms=req.dt_ms or 0.1,
        seed=req.seed,
        name=req.name or "network",
    )


def step_telemetry(t: Telemetry) -> pb.StepTelemetry:
    return pb.StepTelemetry(
        steps=t.steps,
        spikes=t.spikes,
        input_spikes=t.input_spikes,
        events=t.events,
        dropped_queue=t.dropped_queue,
        dropped_fault=t.dropped_fault,
        dropped_budget=t.dropped_budget,
        dropped_input=t.dropped_input,
        dropped_output=t.dropped_output,
        keps=t.keps,
    )
