"""The fault file: the simulated hardware health monitor's findings.

``darwin-dra fault inject|clear`` edits ``<state-dir>/faults.yaml``; the chip host polls it and
applies the difference to the engine (``FaultApplier``). A file stands in for the monitor so
that a test, an operator or a chaos script can break a chip without talking to any process.
The faults are the hardware's: a restarted chip host (a chip reset) reads them again, a
restarted plugin finds them in place.
"""

from __future__ import annotations

import enum
import fcntl
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog
import yaml

from darwin_dra import schema
from darwin_dra.atomicfile import atomic_write
from darwin_dra.engine import EngineError, FaultKind

log = structlog.get_logger(__name__)

FILE_NAME = "faults.yaml"
SCHEMA_FILE = "faultlist.schema.json"
_SCHEMA = schema.load(SCHEMA_FILE)
API_VERSION: str = _SCHEMA["properties"]["apiVersion"]["const"]
KIND: str = _SCHEMA["properties"]["kind"]["const"]


class FaultFileError(ValueError):
    pass


class Kind(enum.StrEnum):
    """The schema's fault kinds (tests/chiphost checks they agree), as the engine names them."""

    CORE = "core"
    DOMAIN = "domain"
    LINK = "link"
    CHIP = "chip"
    FABRIC = "fabric"  # the fabric link from `chip` to chip `index` (neighbours of one fabric)

    @property
    def engine(self) -> FaultKind:
        return FaultKind[self.name]


@dataclass(frozen=True, order=True)
class Fault:
    chip: int
    kind: Kind
    index: int = 0  # core, domain or link index; 0 for a whole chip; the far chip of a fabric link

    def to_json(self) -> dict[str, Any]:
        return {"chip": self.chip, "kind": self.kind.value, "index": self.index}


def fault_path(state_dir: Path) -> Path:
    return state_dir / FILE_NAME


def parse(data: Any, source: str) -> frozenset[Fault]:
    """The faults of a parsed fault file; the rules are its schema's
    (api/chiphost/v1alpha1/faultlist.schema.json). An empty file lists none."""
    if data is None:
        return frozenset()
    problem = schema.first_problem(SCHEMA_FILE, data)
    if problem is not None:
        where = f"{source}: {problem.field}" if problem.field else source
        raise FaultFileError(f"{where}: {problem.reason}")
    out = set()
    for item in schema.integral(data).get("faults", []):
        kind = Kind(item["kind"])
        out.add(Fault(item["chip"], kind, 0 if kind is Kind.CHIP else item.get("index", 0)))
    return frozenset(out)


def load(path: Path) -> frozenset[Fault]:
    """The faults the file lists; none when it does not exist."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return frozenset()
    except OSError as exc:
        raise FaultFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise FaultFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        return parse(yaml.safe_load(text), str(path))
    except yaml.YAMLError as exc:
        raise FaultFileError(f"{path}: not YAML: {exc}") from None
    except RecursionError:
        raise FaultFileError(f"{path}: nested too deeply to be a {KIND}") from None


def dump(faults: Iterable[Fault]) -> bytes:
    body = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "faults": [f.to_json() for f in sorted(faults)],
    }
    return yaml.safe_dump(body, sort_keys=False).encode()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Two CLI calls at once must not lose each other's edit.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def edit(path: Path, add: Iterable[Fault] = (), remove: Iterable[Fault] = ()) -> frozenset[Fault]:
    """Add and remove faults in the file; returns what it lists afterwards."""
    with _locked(path):
        faults = (load(path) | frozenset(add)) - frozenset(remove)
        atomic_write(path, dump(faults), mode=0o644)
        return faults


def diff(applied: frozenset[Fault], wanted: frozenset[Fault]) -> tuple[list[Fault], list[Fault]]:
    """(to inject, to clear), each sorted, to move the engine from ``applied`` to ``wanted``."""
    return sorted(wanted - applied), sorted(applied - wanted)


class FaultTarget(Protocol):
    def inject_fault(self, chip: int, kind: FaultKind, index: int = 0) -> None: ...

    def clear_fault(self, chip: int, kind: FaultKind, index: int = 0) -> None: ...


class FaultApplier:
    """Keeps the engine's faults equal to what the fault file lists (the chip host polls it)."""

    def __init__(self, engine: FaultTarget, fault_file: Path) -> None:
        self.engine = engine
        self.fault_file = fault_file
        self.applied: frozenset[Fault] = frozenset()
        self._rejected: frozenset[Fault] = frozenset()
        self._last_text: str | None = None
        self._log = log.bind(fault_file=str(fault_file))

    def poll_once(self) -> bool:
        """Apply the file's faults to the engine; True when the engine's health changed."""
        try:
            wanted = load(self.fault_file)
        except FaultFileError as exc:
            text = str(exc)
            if text != self._last_text:
                self._log.error("fault file unreadable; keeping the current faults", error=text)
                self._last_text = text
            return False
        self._last_text = None
        inject, clear = diff(self.applied, wanted - self._rejected)
        self._rejected &= wanted  # a removed bad entry may come back fixed
        changed = False
        for fault in clear:
            try:
                self.engine.clear_fault(fault.chip, fault.kind.engine, fault.index)
            except EngineError as exc:
                self._log.error("clearing a fault failed", fault=fault.to_json(), error=str(exc))
            self.applied -= {fault}
            changed = True
            self._log.info("fault cleared", fault=fault.to_json())
        for fault in inject:
            try:
                self.engine.inject_fault(fault.chip, fault.kind.engine, fault.index)
            except EngineError as exc:
                self._log.error(
                    "fault rejected by the engine", fault=fault.to_json(), error=str(exc)
                )
                self._rejected |= {fault}
                continue
            self.applied |= {fault}
            changed = True
            self._log.warning("fault injected", fault=fault.to_json())
        return changed
