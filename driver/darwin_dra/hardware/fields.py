"""Reading a hardware description file: YAML in, checked against its schema in api/, so every
error names the file, the field and the reason."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from darwin_dra import schema
from darwin_dra.hardware.errors import HardwareFileError


def load_yaml(path: Path, schema_file: str) -> Mapping[str, Any]:
    """Reads a YAML document and checks it against the shipped schema ``schema_file``
    (darwin_dra.schema); what the schema cannot say (rules across entries) is the caller's."""
    kind = schema.load(schema_file).get("title", schema_file)
    try:
        text = path.read_text()
    except OSError as exc:
        raise HardwareFileError(str(path), "", f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise HardwareFileError(
            str(path), "", f"not UTF-8 text (byte {exc.start}): is this the right file?"
        ) from exc
    try:
        doc = yaml.safe_load(text)
        problem = schema.first_problem(schema_file, doc)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem_text = getattr(exc, "problem", None) or str(exc)
        raise HardwareFileError(str(path), "", f"not valid YAML{at}: {problem_text}") from exc
    except RecursionError:
        raise HardwareFileError(
            str(path), "", f"nested too deeply to be a file of kind {kind}"
        ) from None
    if problem is not None:
        raise HardwareFileError(str(path), problem.field, problem.reason)
    checked: Mapping[str, Any] = schema.integral(doc)  # an object: the schema demands one
    return checked
