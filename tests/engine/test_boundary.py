"""The cffi boundary takes its numbers from the C header: every error code of enum dk_error is
its own exception, and the Python enums hold the header's values. The header text is read here
on its own, so a code or a kind added to it without its Python side fails these tests."""

from __future__ import annotations

import re
from enum import IntEnum
from pathlib import Path

import pytest
from darwin_dra.engine import Direction, FaultKind, Model, Reset, Routing, errors, native

HEADER = Path(__file__).resolve().parents[2] / "native" / "include" / "darwin_engine.h"


def header_enum(name: str) -> dict[str, int]:
    """The members of `enum <name> { ... }` in the header, name to value."""
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    match = re.search(rf"enum {name} \{{(.*?)\}};", text, re.S)
    assert match, f"enum {name} not found in {HEADER}"
    members = re.findall(r"(\w+)\s*=\s*(-?\d+)", match.group(1))
    return {member: int(value) for member, value in members}


def header_constants(prefix: str) -> dict[str, int]:
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    return {k: int(v) for k, v in re.findall(rf"\b({prefix}\w+)\s*=\s*(-?\d+)", text)}


ERROR_CODES = {k: v for k, v in header_enum("dk_error").items() if v < 0}


def test_the_header_has_error_codes() -> None:
    assert len(ERROR_CODES) >= 8
    assert header_enum("dk_error")["DK_OK"] == 0


@pytest.mark.parametrize(("name", "code"), sorted(ERROR_CODES.items()))
def test_every_error_code_raises_its_own_exception(name: str, code: int) -> None:
    cls = errors.BY_CODE[code]
    assert errors.BY_NAME[name] is cls
    assert cls.code == code
    assert issubclass(cls, errors.EngineError)
    with pytest.raises(errors.EngineError) as raised:
        native.check(code)
    assert type(raised.value) is cls


def test_the_error_exceptions_are_distinct() -> None:
    classes = [errors.BY_CODE[code] for code in ERROR_CODES.values()]
    assert len(set(classes)) == len(classes) == len(errors.BY_CODE)


def test_success_raises_nothing() -> None:
    native.check(0)


def test_a_code_without_an_exception_is_refused() -> None:
    codes = {**header_enum("dk_error"), "DK_E_NEW": -99}
    with pytest.raises(RuntimeError, match="DK_E_NEW"):
        errors.bind_codes(codes)
    assert -99 not in errors.BY_CODE  # the refusal changed nothing
    assert errors.BY_CODE[ERROR_CODES["DK_E_INVALID"]] is errors.InvalidArgument


@pytest.mark.parametrize(
    ("enum_cls", "prefix", "values"),
    [
        (FaultKind, "DK_FAULT_", header_enum("dk_fault_kind")),
        (Direction, "DK_DIR_", header_enum("dk_direction")),
        (Routing, "DK_ROUTE_", header_constants("DK_ROUTE_")),
        (Model, "DK_MODEL_", header_constants("DK_MODEL_")),
        (Reset, "DK_RESET_", header_constants("DK_RESET_")),
    ],
    ids=["FaultKind", "Direction", "Routing", "Model", "Reset"],
)
def test_python_enums_hold_the_headers_values(
    enum_cls: type[IntEnum], prefix: str, values: dict[str, int]
) -> None:
    assert len(values) >= 2
    assert {prefix + m.name: int(m) for m in enum_cls} == values


def test_the_limits_are_the_headers() -> None:
    limits = header_constants("DK_MAX_")
    assert limits["DK_MAX_GROUPS"] == native.MAX_GROUPS
    assert limits["DK_MAX_DELAY"] == native.MAX_DELAY
    assert header_constants("DK_EVENTS_")["DK_EVENTS_PER_KEPS"] == native.EVENTS_PER_KEPS
