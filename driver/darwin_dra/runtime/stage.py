"""One stage of a split model: a network on one partition, spikes in from the stage before,
spikes out to the stage after.

A stage loads its network into its partition's SpikePort, then repeats: take the AER frames
its upstream has finished (wire.Frame), map each upstream neuron to the input it feeds, step
the partition one window, and send what its exported neurons fired downstream as one frame.
A stage never runs a step its upstream has not finished, so an imported spike for step s is
always queued before step s runs: the cut is exact, and the synapse delay from an input is the
delay of the cut. Stages agree on time by starting at step 0 together; every frame carries the
window it covers, so a stage with nothing to say still advances its neighbour's horizon.

Without --listen a stage is a source (its drive is its Poisson groups) and runs --steps steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import structlog

from darwin_dra.engine import Model, Network, NeuronGroup, synapses
from darwin_dra.runtime import wire
from darwin_dra.runtime.address import parse_address
from darwin_dra.runtime.client import Counters, SpikePortClient
from darwin_dra.unixsock import remove_stale_socket

log = structlog.get_logger(__name__)

# NeuronGroup's fields in the order of the .npz "groups" columns.
GROUP_FIELDS = (
    "count",
    "tau_m",
    "v_th",
    "v_reset",
    "e_l",
    "i_e",
    "t_ref",
    "v_init",
    "poisson_rate_hz",
    "poisson_weight",
)


@dataclass(frozen=True)
class StageNetwork:
    """A stage's network, the neurons it exports, and which upstream neuron feeds each input."""

    network: Network
    export: wire.U32
    inputs_from: wire.U32

    def __post_init__(self) -> None:
        if self.inputs_from.size != self.network.n_inputs:
            raise ValueError(
                f"inputs_from names {self.inputs_from.size} upstream neurons "
                f"but the network has {self.network.n_inputs} inputs"
            )
        if np.unique(self.inputs_from).size != self.inputs_from.size:
            raise ValueError("an upstream neuron feeds at most one input; fan out with synapses")


def save_stage(
    path: Path | str,
    net: Network,
    export: npt.ArrayLike = (),
    inputs_from: npt.ArrayLike | None = None,
) -> None:
    for i, g in enumerate(net.groups):
        if g.model is not Model.IAF_PSC_DELTA or net.bias is not None:
            raise ValueError(
                f"group {i}: the .npz stage format holds iaf_psc_delta groups without bias; "
                f"{g.model.name} models travel as .nir files (darwin_dra.models)"
            )
    groups = np.array([[getattr(g, f) for f in GROUP_FIELDS] for g in net.groups], np.float64)
    np.savez(
        path,
        groups=groups.reshape(-1, len(GROUP_FIELDS)),
        src=net.src,
        dst=net.dst,
        weight=net.weight,
        delay=net.delay,
        n_inputs=net.n_inputs,
        dt_ms=net.dt_ms,
        seed=net.seed,
        export=np.asarray(export, dtype=np.uint32),
        inputs_from=np.arange(net.n_inputs) if inputs_from is None else np.asarray(inputs_from),
    )


def _group(row: npt.NDArray[np.float64]) -> NeuronGroup:
    """An iaf_psc_delta group from one row of the .npz "groups" columns (GROUP_FIELDS)."""
    v = [float(x) for x in row[1:]]
    return NeuronGroup(
        int(row[0]),
        tau_m=v[0],
        v_th=v[1],
        v_reset=v[2],
        e_l=v[3],
        i_e=v[4],
        t_ref=v[5],
        v_init=v[6],
        poisson_rate_hz=v[7],
        poisson_weight=v[8],
    )


def load_stage(path: Path | str) -> StageNetwork:
    """Reads what save_stage writes; ``export`` and ``inputs_from`` are optional (none, and
    upstream neuron i feeds input i)."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as z:
        groups = z["groups"]
        if groups.ndim != 2 or groups.shape[1] != len(GROUP_FIELDS):
            raise ValueError(f"{path}: groups must be an (n, {len(GROUP_FIELDS)}) array")
        n_inputs = int(z["n_inputs"])
        src, dst, weight, delay = synapses(z["src"], z["dst"], z["weight"], z["delay"])
        net = Network(
            tuple(_group(row) for row in groups),
            src,
            dst,
            weight,
            delay,
            n_inputs=n_inputs,
            dt_ms=float(z["dt_ms"]) if "dt_ms" in z else 0.1,
            seed=int(z["seed"]) if "seed" in z else 1,
            name=path.stem,
        )
        export = z["export"] if "export" in z else np.zeros(0)
        inputs_from = z["inputs_from"] if "inputs_from" in z else np.arange(n_inputs)
    return StageNetwork(net, export.astype(np.uint32), inputs_from.astype(np.uint32))


def route(ids: wire.U32, inputs_from: wire.U32) -> tuple[npt.NDArray[np.bool_], wire.U32]:
    """For upstream neuron ids: which feed an input of this stage, and which input (pure)."""
    order = np.argsort(inputs_from, kind="stable")
    keys = inputs_from[order]
    at = np.searchsorted(keys, ids)
    found = at < keys.size
    found[found] = keys[at[found]] == ids[found]
    return found, order[at[found]].astype(np.uint32)


def next_window(now: int, horizon: int, window: int, final: bool) -> int:
    """Steps to run next: a whole window once the upstream has finished it, the remainder
    when no more input will come (``final``), else 0 (wait)."""
    ready = horizon - now
    if ready >= window:
        return window
    return ready if final and ready > 0 else 0


async def read_frame(reader: asyncio.StreamReader, window: int, ids: int) -> wire.Frame | None:
    """The next frame, or None when the peer closed cleanly between frames. A frame longer than
    ``window`` steps, or of more spikes than ``ids`` upstream neurons fire in its steps, is
    refused from its header (wire.check_frame), before its body is read."""
    try:
        head = await reader.readexactly(wire.HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise wire.WireError("the stream ended inside a frame header") from exc
    count, start, steps = wire.decode_header(head)
    wire.check_frame(count, steps, window, ids)
    try:
        body = await reader.readexactly(12 * count)
    except asyncio.IncompleteReadError as exc:
        raise wire.WireError("the stream ended inside a frame body") from exc
    return wire.decode_body(count, start, steps, body)


async def open_stream(
    address: str, timeout_s: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect, retrying until ``timeout_s``: the next stage may still be starting."""
    kind, where, port = parse_address(address)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if kind == "unix":
                return await asyncio.open_unix_connection(where)
            return await asyncio.open_connection(where, port)
        except OSError:
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(0.05)


@dataclass(frozen=True)
class StageConfig:
    endpoint: str
    network: Path
    window: int = 10
    listen: str | None = None
    downstream: str | None = None
    steps: int | None = None  # stop after this many; required without listen
    connect_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError("the window must be at least 1 step")
        if self.listen is None and self.steps is None:
            raise ValueError("a stage without --listen is a source and needs --steps")
        if self.steps is not None and self.steps < 0:
            raise ValueError("steps must be >= 0")


@dataclass
class StageReport:
    steps: int = 0
    windows: int = 0
    received: int = 0
    unrouted: int = 0  # upstream spikes of neurons that feed no input here
    exported: int = 0
    counters: Counters | None = None
    # What the exported neurons fired, kept when there is no downstream (the last stage).
    spike_steps: list[wire.U64] = field(default_factory=list)
    spike_ids: list[wire.U32] = field(default_factory=list)

    def spikes(self) -> tuple[wire.U64, wire.U32]:
        return (
            np.concatenate([np.zeros(0, np.uint64), *self.spike_steps]),
            np.concatenate([np.zeros(0, np.uint32), *self.spike_ids]),
        )


class Stage:
    """``await stage.listen()`` (returns the bound address), then ``await stage.run()``."""

    def __init__(self, config: StageConfig) -> None:
        self.config = config
        self.spec = load_stage(config.network)
        self._server: asyncio.Server | None = None
        self._upstream: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
        self._upstream = asyncio.get_running_loop().create_future()

    async def listen(self) -> str | None:
        if self.config.listen is None:
            return None
        kind, where, port = parse_address(self.config.listen)
        if kind == "unix":
            remove_stale_socket(Path(where))
            self._server = await asyncio.start_unix_server(self._accept, where)
            return self.config.listen
        self._server = await asyncio.start_server(self._accept, where, port)
        bound = self._server.sockets[0].getsockname()
        return f"tcp://{where}:{bound[1]}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._upstream.done():
            log.warning("refused a second upstream connection")
            writer.close()
            return
        self._upstream.set_result((reader, writer))

    async def run(self) -> StageReport:
        cfg = self.config
        if cfg.listen is not None and self._server is None:
            await self.listen()
        report = StageReport()
        down: asyncio.StreamWriter | None = None
        up: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            async with SpikePortClient(cfg.endpoint) as port:
                await port.load(self.spec.network, export=self.spec.export.tolist())
                if cfg.downstream is not None:
                    _, down = await open_stream(cfg.downstream, cfg.connect_timeout_s)
                if self._server is not None:
                    up = await self._upstream
                await self._loop(port, up[0] if up else None, down, report)
        finally:
            for w in (down, up[1] if up else None):
                if w is not None:
                    w.close()
                    with contextlib.suppress(OSError):
                        await w.wait_closed()
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
                if cfg.listen is not None and parse_address(cfg.listen)[0] == "unix":
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(parse_address(cfg.listen)[1])
        log.info(
            "stage finished",
            steps=report.steps,
            received=report.received,
            unrouted=report.unrouted,
            exported=report.exported,
        )
        return report

    async def _loop(
        self,
        port: SpikePortClient,
        up: asyncio.StreamReader | None,
        down: asyncio.StreamWriter | None,
        report: StageReport,
    ) -> None:
        limit = self.config.steps
        window = self.config.window
        now = 0
        # Steps the upstream has finished; a source has no upstream and may run to its limit.
        horizon = 0 if up is not None or limit is None else limit
        pend_steps: list[wire.U64] = []
        pend_ids: list[wire.U32] = []
        while True:
            end = horizon if limit is None else min(horizon, limit)
            # No more input matters once the upstream closed or covered every step we run.
            final = up is None or (limit is not None and horizon >= limit)
            n = next_window(now, end, window, final)
            if n == 0 and final:
                return
            if n == 0:
                assert up is not None
                # The upstream neurons this stage routes bound a frame's spikes: a spike of
                # a neuron it does not route counts as unrouted, and against the bound too.
                frame = await read_frame(up, window, self.spec.inputs_from.size)
                if frame is None:
                    up = None
                    continue
                if frame.window_start != horizon:
                    raise wire.WireError(
                        f"upstream frame starts at step {frame.window_start}, expected {horizon}"
                    )
                horizon = frame.window_end
                found, inputs = route(frame.ids, self.spec.inputs_from)
                report.received += int(frame.ids.size)
                report.unrouted += int(frame.ids.size - inputs.size)
                pend_steps.append(frame.steps[found])
                pend_ids.append(inputs)
                continue
            steps = np.concatenate([np.zeros(0, np.uint64), *pend_steps])
            ids = np.concatenate([np.zeros(0, np.uint32), *pend_ids])
            pend_steps.clear()
            pend_ids.clear()
            out = await port.step(n, steps, ids)
            report.counters = out.counters
            report.exported += int(out.ids.size)
            if down is not None:
                down.write(wire.encode_frame(wire.Frame(now, n, out.steps, out.ids)))
                await down.drain()
            else:
                report.spike_steps.append(out.steps)
                report.spike_ids.append(out.ids)
            now += n
            report.steps = now
            report.windows += 1


async def run_stage(config: StageConfig) -> StageReport:
    stage = Stage(config)
    await stage.listen()
    return await stage.run()
