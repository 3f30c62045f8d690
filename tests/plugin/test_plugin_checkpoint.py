"""Checkpoint: atomic replace under injected crashes, the two-phase state machine, boot ids,
corruption handling and the node-wide lock."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from darwin_dra.atomicfile import FileOps, atomic_write
from darwin_dra.plugin.checkpoint import (
    Checkpoint,
    CheckpointError,
    CheckpointStore,
    Phase,
    decode,
    encode,
)
from darwin_dra.plugin.config import PartitionConfig
from darwin_dra.plugin.nodelock import LockTimeoutError, NodeLock
from darwin_dra.plugin.records import ClaimPlan, DeviceIntent, Prepared
from hypothesis import given, settings
from hypothesis import strategies as st

BOOT = "2b1f7c9e-aaaa-bbbb-cccc-000000000001"
DOMAIN = DeviceIntent("snn", "chip-0-domain-3", 0, (3,), False, 700, None, PartitionConfig(100))
SHARE = DeviceIntent(
    "snn", "chip-0-shared-0", 0, tuple(range(18)), True, 100, "share-1", PartitionConfig()
)
PLAN = ClaimPlan("u1", "ns", "c1", "node-a", (DOMAIN, SHARE))
DEVICES = (
    Prepared(DOMAIN, 7, (8, 9, 10), ("darwin.snn.io/partition=u1-snn-chip-0-domain-3",)),
    Prepared(SHARE, 8, tuple(range(100)), ("darwin.snn.io/partition=x",)),
)


def plan(
    uid: str = "u1", name: str = "c1", devices: tuple[DeviceIntent, ...] = PLAN.devices
) -> ClaimPlan:
    return ClaimPlan(uid, "ns", name, "node-a", devices)


class CrashError(Exception):
    """Stands for the process dying at that point."""


class CrashAt(FileOps):
    def __init__(self, step: str) -> None:
        self.step = step

    def _maybe(self, step: str) -> None:
        if step == self.step:
            raise CrashError(step)

    def write(self, fd: int, data: bytes) -> None:
        if self.step == "write-half":
            os.write(fd, data[: len(data) // 2])  # a torn write, then death
            raise CrashError(self.step)
        self._maybe("write")
        super().write(fd, data)

    def fsync(self, fd: int) -> None:
        self._maybe("fsync")
        super().fsync(fd)

    def rename(self, src: Path, dst: Path) -> None:
        self._maybe("rename")
        super().rename(src, dst)

    def fsync_dir(self, directory: Path) -> None:
        self._maybe("fsync-dir")
        super().fsync_dir(directory)


def store(tmp_path: Path, ops: FileOps | None = None, boot: str = BOOT) -> CheckpointStore:
    return CheckpointStore(tmp_path / "checkpoint.json", boot_id=lambda: boot, ops=ops)


STEPS = ["write", "write-half", "fsync", "rename", "fsync-dir"]


@pytest.mark.parametrize("step", STEPS)
def test_crash_at_every_step_of_a_save_leaves_old_or_new(tmp_path: Path, step: str) -> None:
    old = Checkpoint(BOOT).started(PLAN)
    store(tmp_path).save(old)
    new = old.completed("u1", DEVICES)
    with pytest.raises(CrashError):
        store(tmp_path, CrashAt(step)).save(new)
    after = store(tmp_path).load()
    # Up to the rename the old state stands; once renamed, the new one does.
    assert after == (new if step == "fsync-dir" else old)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "checkpoint.json"]
    assert leftovers == []


@pytest.mark.parametrize("step", STEPS)
def test_crash_on_the_very_first_save_leaves_no_file(tmp_path: Path, step: str) -> None:
    with pytest.raises(CrashError):
        store(tmp_path, CrashAt(step)).save(Checkpoint(BOOT).started(PLAN))
    if step == "fsync-dir":
        assert store(tmp_path).load().claims["u1"].phase is Phase.PREPARE_STARTED
    else:
        assert not (tmp_path / "checkpoint.json").exists()
        assert store(tmp_path).load() == Checkpoint(BOOT)


def test_two_phases_and_crash_between_them(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.update(lambda cp: cp.started(PLAN))
    # The plugin dies here, after the intent is on disk but before the engine finished.
    restarted = store(tmp_path).load()
    [half] = restarted.interrupted()
    assert (half.uid, half.namespace, half.name) == ("u1", "ns", "c1")
    assert half.plan == PLAN  # enough to roll the half-done partition back
    # Roll back, then prepare again from scratch.
    s.update(lambda cp: cp.without("u1"))
    s.update(lambda cp: cp.started(PLAN))
    done = s.update(lambda cp: cp.completed("u1", DEVICES))
    assert done.interrupted() == []
    loaded = store(tmp_path).load()
    assert loaded.claims["u1"].phase is Phase.PREPARE_COMPLETED
    assert loaded.claims["u1"].devices == DEVICES
    assert [d.partition_id for d in loaded.claims["u1"].devices] == [7, 8]


def test_illegal_transitions(tmp_path: Path) -> None:
    cp = Checkpoint(BOOT)
    with pytest.raises(ValueError, match="no prepare in progress"):
        cp.completed("u1", DEVICES)
    done = cp.started(PLAN).completed("u1", DEVICES)
    with pytest.raises(ValueError, match="already prepared"):
        done.started(PLAN)
    with pytest.raises(ValueError, match="no prepare in progress"):
        done.completed("u1", DEVICES)
    with pytest.raises(ValueError, match="not those of its plan"):
        cp.started(PLAN).completed("u1", DEVICES[:1])
    # Unprepare of something never prepared is fine and changes nothing.
    assert cp.without("never") == cp


def test_other_boot_discards_state(tmp_path: Path) -> None:
    store(tmp_path).save(Checkpoint(BOOT).started(PLAN).completed("u1", DEVICES))
    after_reboot = store(tmp_path, boot="another-boot").load()
    assert after_reboot == Checkpoint("another-boot")


def test_boot_id_default_reads_the_kernel(tmp_path: Path) -> None:
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    s = CheckpointStore(tmp_path / "cp.json")
    assert s.load() == Checkpoint(boot)


def _rewrite(path: Path, change: dict[str, object]) -> None:
    body = json.loads(path.read_text())
    body.update(change)
    path.write_text(json.dumps(body))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:40]), "not valid JSON"),
        (lambda p: p.write_bytes(b"\xff\xfe"), "not valid JSON"),
        (lambda p: p.write_text("[]"), "not a JSON object"),
        # Found by `make fuzz` (checkpoint): a RecursionError escaped the decoder.
        (lambda p: p.write_text("[" * 100_000 + "]" * 100_000), "nested too deeply"),
        (lambda p: _rewrite(p, {"version": 3}), "version 3; this plugin reads versions 1, 2"),
        (lambda p: _rewrite(p, {"bootId": "tampered"}), "checksum does not match"),
        (lambda p: _rewrite(p, {"checksum": "0" * 64}), "checksum does not match"),
    ],
)
def test_corrupt_or_foreign_checkpoint(tmp_path: Path, damage: object, message: str) -> None:
    s = store(tmp_path)
    s.save(Checkpoint(BOOT).started(PLAN))
    assert callable(damage)
    damage(s.path)
    broken = s.path.read_bytes()
    with pytest.raises(CheckpointError, match=message):
        s.load()
    assert s.path.read_bytes() == broken  # load alone never moves anything
    assert s.load_or_quarantine() == Checkpoint(BOOT)
    [aside] = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert aside.read_bytes() == broken  # kept for forensics
    assert not s.path.exists()


def test_layout_error_is_a_checkpoint_error() -> None:
    body = {"version": 1, "bootId": BOOT, "claims": {"u1": {"namespace": "ns"}}}
    import hashlib

    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    body["checksum"] = hashlib.sha256(canonical).hexdigest()
    with pytest.raises(CheckpointError, match="unexpected layout"):
        decode(json.dumps(body).encode())


def test_encoding_is_canonical_and_round_trips() -> None:
    a = Checkpoint(BOOT).started(plan("u2", "c2")).started(plan(devices=()))
    b = Checkpoint(BOOT).started(plan(devices=())).started(plan("u2", "c2"))
    assert encode(a) == encode(b)
    assert decode(encode(a)) == a


# What the plugin before the typed plan wrote (version 1): the plan as an untyped "intent", and
# per device the request, pool, device and share again beside the partition, without cores.
V1_CLAIMS = {
    "u1": {
        "namespace": "ns",
        "name": "c1",
        "phase": "PrepareCompleted",
        "intent": {"pool": "node-a", "devices": [DOMAIN.to_json(), SHARE.to_json()]},
        "chipBoot": "chip-boot-1",
        "devices": [
            {
                "requestNames": ["snn"],
                "pool": "node-a",
                "device": "chip-0-domain-3",
                "cdiIds": ["darwin.snn.io/partition=u1-snn-chip-0-domain-3"],
                "enginePartition": 7,
                "shareId": None,
            },
            {
                "requestNames": ["snn"],
                "pool": "node-a",
                "device": "chip-0-shared-0",
                "cdiIds": ["darwin.snn.io/partition=x"],
                "enginePartition": 8,
                "shareId": "share-1",
            },
        ],
    },
    "u2": {
        "namespace": "ns",
        "name": "c2",
        "phase": "PrepareStarted",
        "intent": {"pool": "node-a", "devices": [DOMAIN.to_json()]},
        "chipBoot": None,
        "devices": [],
    },
}


def _v1(claims: dict[str, object]) -> bytes:
    import hashlib

    body: dict[str, object] = {"version": 1, "bootId": BOOT, "claims": claims}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    body["checksum"] = hashlib.sha256(canonical).hexdigest()
    return json.dumps(body, sort_keys=True, indent=1).encode()


def test_a_version_1_checkpoint_is_read_and_written_back_as_version_2(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.path.write_bytes(_v1(V1_CLAIMS))
    cp = s.load()
    done, started = cp.claims["u1"], cp.claims["u2"]
    assert done.plan == PLAN
    assert (done.phase, done.chip_boot) == (Phase.PREPARE_COMPLETED, "chip-boot-1")
    # The same devices, but no cores: version 1 did not keep them.
    assert [(d.intent, d.partition_id, d.cdi_ids) for d in done.devices] == [
        (d.intent, d.partition_id, d.cdi_ids) for d in DEVICES
    ]
    assert all(d.cores == () for d in done.devices)
    assert (started.phase, started.plan.devices, started.devices) == (
        Phase.PREPARE_STARTED,
        (DOMAIN,),
        (),
    )
    s.save(cp)
    assert json.loads(s.path.read_text())["version"] == 2
    assert s.load() == cp


def test_a_version_1_device_that_is_not_its_intents_is_refused() -> None:
    claims = json.loads(json.dumps(V1_CLAIMS))
    claims["u1"]["devices"][1]["device"] = "chip-1"
    with pytest.raises(CheckpointError, match="does not match its intent"):
        decode(_v1(claims))


def test_atomic_write_keeps_permissions_private(tmp_path: Path) -> None:
    target = tmp_path / "f"
    atomic_write(target, b"x")
    assert target.stat().st_mode & 0o777 == 0o600


def test_lock_excludes_and_times_out(tmp_path: Path) -> None:
    lock_path = tmp_path / "plugin.lock"
    with NodeLock(lock_path):
        start = time.monotonic()
        with (
            pytest.raises(LockTimeoutError, match=r"within 0\.2 s"),
            NodeLock(lock_path, timeout_s=0.2),
        ):
            pass
        assert time.monotonic() - start >= 0.2
    with NodeLock(lock_path, timeout_s=0.2):
        pass  # free again after release


def test_lock_held_by_another_process(tmp_path: Path) -> None:
    lock_path = tmp_path / "plugin.lock"
    holder = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from darwin_dra.plugin.nodelock import NodeLock
        with NodeLock(Path({str(lock_path)!r})):
            print("held", flush=True)
            time.sleep(0.7)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, env=env) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"held"
        with pytest.raises(LockTimeoutError):
            NodeLock(lock_path, timeout_s=0.1).acquire()
        start = time.monotonic()
        with NodeLock(lock_path, timeout_s=10):
            waited = time.monotonic() - start
        assert waited > 0.1  # we really waited for the other process
        assert proc.wait(timeout=10) == 0


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(obj: object, at: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Every place in a JSON document (keys of objects, indexes of lists)."""
    out = [at]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*at, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*at, i))
    return out


_GOOD = {
    1: {"u1": V1_CLAIMS["u1"]},
    2: json.loads(encode(Checkpoint(BOOT).started(PLAN).completed("u1", DEVICES)))["claims"],
}


@settings(max_examples=400, deadline=None)
@given(version=st.sampled_from([1, 2]), data=st.data(), value=_JSON)
def test_any_checksummed_layout_is_read_or_refused_as_a_checkpoint_error(
    version: int, data: st.DataObject, value: object
) -> None:
    # Past the checksum the plan is parsed now (version 1 kept it as an untyped mapping): any
    # field of a good record replaced by any JSON is read or a CheckpointError, nothing else.
    import hashlib

    claims = json.loads(json.dumps(_GOOD[version]))
    path = data.draw(st.sampled_from(_paths(claims)[1:]))
    target = claims
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    body: dict[str, object] = {"version": version, "bootId": BOOT, "claims": claims}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    body["checksum"] = hashlib.sha256(canonical).hexdigest()
    with contextlib.suppress(CheckpointError):
        decode(json.dumps(body).encode())
