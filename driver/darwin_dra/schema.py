"""The JSON schemas of api/ at run time: a document's first problem, named by its field path.

Each rule of a user-written document (PartitionConfig, the inventory, chip profiles, the fault
file) is written once, in its schema under api/; the package ships the same files (symlinks in
darwin_dra/api_schemas/). ``first_problem`` validates with jsonschema and words the first
problem from the schema itself (``describe``), so the plugin, the file loaders and the
admission policy generated from a schema (deploy/helm/generate_opaque_config_policy.py) say the
same thing. "First" is a fixed order that the generated policy follows too: a wrong type of the
object itself, then unknown fields by name (a typo is named as such, not as the field it
misses), then its required fields in the schema's order, then the other fields in the schema's
order, depth first.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jsonschema

Schema = Mapping[str, Any]

_ARTICLE = {"integer": "an integer", "number": "a number", "string": "a string"}
_NOT_BLANK = "\\S"
_KIND = {"object": "an object", "array": "a list", "boolean": "a boolean (true or false)"}


@dataclass(frozen=True)
class Problem:
    """One problem of a document: ``field`` is the path (``nodes[0].serial``; "" for the whole
    document), ``rule`` what the schema demands, ``found`` what the document has instead."""

    field: str
    rule: str
    found: str = ""

    @property
    def reason(self) -> str:
        return f"{self.rule}, got {self.found}" if self.found else self.rule


@functools.cache
def load(name: str) -> Schema:
    """A schema the package ships, by file name (``partitionconfig.schema.json``)."""
    text = (resources.files("darwin_dra") / "api_schemas" / name).read_text()
    schema: Schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


@functools.cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load(name))


def removed_fields(schema: Schema) -> dict[str, str]:
    """Fields the schema lists as removed (``deprecated`` and never valid), with the reason."""
    return {
        key: f"was removed: {sub.get('description', '')}"
        for key, sub in schema.get("properties", {}).items()
        if sub.get("deprecated") and sub.get("not") == {}
    }


def known_fields(schema: Schema) -> list[str]:
    removed = removed_fields(schema)
    return sorted(k for k in schema.get("properties", {}) if k not in removed)


def describe(schema: Schema) -> str:
    """What a value must be, in words, from its schema (one sentence without the subject)."""
    if "const" in schema:
        return f"must be {schema['const']!r}"
    if "enum" in schema:
        return f"must be one of {', '.join(map(repr, schema['enum']))}"
    kind = schema.get("type")
    if kind in ("integer", "number"):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        what = f"must be {_ARTICLE[kind]}"
        if lo is not None and hi is not None:
            return f"{what} between {_num(lo)} and {_num(hi)}"
        if lo is not None:
            return f"{what} >= {_num(lo)}"
        return what
    if kind == "string":
        what = (
            "must be a non-empty string" if schema.get("minLength", 0) >= 1 else "must be a string"
        )
        if schema.get("pattern", _NOT_BLANK) != _NOT_BLANK:  # not blank: "non-empty" says it
            what += f" matching {schema['pattern']}"
        if "maxLength" in schema:
            what += f" of at most {schema['maxLength']} characters"
        return what
    if kind == "array":
        items = schema.get("items", {})
        what = "must be a list"
        if items.get("type") == "string":
            what = "must be a list of strings"
        if schema.get("minItems"):
            n = schema["minItems"]
            what += f" of at least {n} {'entry' if n == 1 else 'entries'}"
        return what
    if kind in _KIND:
        return f"must be {_KIND[kind]}"
    raise ValueError(f"describe: no wording for the schema {dict(schema)!r}")


def _num(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def json_type(value: Any) -> str:
    """The JSON name of a value's type (what a user wrote, not Python's name for it)."""
    match value:
        case None:
            return "null"
        case bool():
            return "boolean"
        case int() | float():
            return "number"
        case str():
            return "string"
        case list() | tuple():
            return "array"
        case Mapping():
            return "object"
    return type(value).__name__


def _shown(value: Any) -> str:
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "...'"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _num(value)
    return json_type(value)


def _not_json(
    doc: Any, at: tuple[str | int, ...] = ()
) -> tuple[tuple[str | int, ...], Problem] | None:
    """A value JSON cannot hold (YAML can): NaN or infinity, a key that is not a string."""
    if isinstance(doc, float) and not math.isfinite(doc):
        return at, Problem("", "must be a finite number", str(doc))
    if isinstance(doc, Mapping):
        for key, value in doc.items():
            if not isinstance(key, str):
                return (*at, str(key)), Problem("", "field names must be strings")
            found = _not_json(value, (*at, key))
            if found:
                return found
    if isinstance(doc, list):
        for i, value in enumerate(doc):
            found = _not_json(value, (*at, i))
            if found:
                return found
    return None


def field_path(parts: Sequence[str | int], prefix: str = "") -> str:
    out = prefix
    for part in parts:
        out = f"{out}[{part}]" if isinstance(part, int) else (f"{out}.{part}" if out else part)
    return out


def _rank(schema: Schema, key: str | int) -> tuple[int, Any]:
    if isinstance(key, int):
        return (0, key)
    required = list(schema.get("required", []))
    properties = list(schema.get("properties", {}))
    if key not in properties:
        return (0, key)
    if key in required:
        return (1, required.index(key))
    return (2, properties.index(key))


def _child(schema: Schema, key: str | int) -> Schema:
    if isinstance(key, int):
        items: Schema = schema.get("items", {})
        return items
    child: Schema = schema.get("properties", {}).get(key, {})
    return child


def _problem(error: jsonschema.ValidationError) -> tuple[tuple[str | int, ...], Problem]:
    at: tuple[str | int, ...] = tuple(error.absolute_path)
    sub = error.schema if isinstance(error.schema, Mapping) else {}
    instance: Any = error.instance
    if error.validator == "required":
        required: list[str] = list(sub.get("required", []))
        missing = next(k for k in required if k not in instance)
        what = sub.get("properties", {}).get(missing, {})
        rule = f"is required ({describe(what)})" if what else "is required"
        return (*at, missing), Problem("", rule)
    if error.validator == "additionalProperties":
        allowed = set(sub.get("properties", {}))
        extra = min(str(k) for k in instance if k not in allowed)
        known = ", ".join(known_fields(sub))
        return (*at, extra), Problem("", f"unknown field (known: {known})")
    if error.validator == "not" and sub.get("deprecated"):
        return at, Problem("", f"was removed: {sub.get('description', '')}")
    numeric = isinstance(instance, int | float) and not isinstance(instance, bool)
    if error.validator == "minItems":
        found = f"{len(instance)} entries"
    elif error.validator == "type" and not numeric:
        found = json_type(instance)
    else:
        found = _shown(instance)
    return at, Problem("", describe(sub), found)


def first_problem(name: str, doc: Any, prefix: str = "") -> Problem | None:
    """The first problem of ``doc`` against the shipped schema ``name``; None when it is valid.
    ``prefix`` is put before field paths (``parameters`` gives ``parameters.timestepUs``)."""
    bad = _not_json(doc)
    if bad:
        return Problem(field_path(bad[0], prefix), bad[1].rule, bad[1].found)
    schema = load(name)
    errors = list(_validator(name).iter_errors(doc))
    if not errors:
        return None
    ranked = []
    for error in errors:
        at, problem = _problem(error)
        key: list[tuple[int, Any]] = []
        node: Schema = schema
        for part in at:
            key.append(_rank(node, part))
            node = _child(node, part)
        ranked.append((key, str(error.validator), at, problem))
    key, _, at, problem = min(ranked, key=lambda r: (r[0], r[1]))
    return Problem(field_path(at, prefix), problem.rule, problem.found)


def integral(doc: Any) -> Any:
    """``doc`` with integral floats (24.0) as ints: JSON Schema counts them as integers, so a
    document that passed its schema may hold them where the code takes an int."""
    if isinstance(doc, float) and doc.is_integer():
        return int(doc)
    if isinstance(doc, Mapping):
        return {k: integral(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [integral(v) for v in doc]
    return doc
