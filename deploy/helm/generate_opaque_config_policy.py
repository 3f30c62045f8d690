"""Writes templates/vap-opaque-config.yaml of the chart: the ValidatingAdmissionPolicy that
refuses a bad darwin.snn.io PartitionConfig at admission, its CEL generated from the JSON schema
(api/config/v1alpha1/partitionconfig.schema.json), so the API server, the plugin and the schema
never disagree (tests/deploy checks the file is current).

    .venv/bin/python deploy/helm/generate_opaque_config_policy.py

The CEL reports the first problem of each entry in the order darwin_dra.schema.first_problem
uses (the object's type, unknown fields by name, required fields in order, the other fields
in order), each worded by darwin_dra.schema.describe: the message a user sees at admission is the
one the plugin would give, without the ", got ..." part. A schema keyword this generator does
not translate is an error, never skipped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from darwin_dra import DRIVER_NAME, schema
from darwin_dra.plugin.config import SCHEMA_FILE

TEMPLATE = Path(__file__).resolve().parent / "darwin-dra" / "templates" / "vap-opaque-config.yaml"

_ROOT_KEYWORDS = {
    "$schema", "$id", "title", "description", "type", "additionalProperties", "required",
    "properties",
}  # fmt: skip
_NOTES = {"description", "default", "deprecated"}


def cel_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a CEL string literal


def _number(value: Any, as_double: bool) -> str:
    return repr(float(value)) if as_double else str(int(value))


def value_check(sub: Mapping[str, Any], x: str) -> str:
    """A CEL expression that is true when the value ``x`` satisfies the property schema ``sub``."""
    rules = {k: v for k, v in sub.items() if k not in _NOTES}
    if "const" in rules and set(rules) == {"const"} and isinstance(rules["const"], str):
        return f"type({x}) == string && {x} == {cel_string(rules['const'])}"
    if set(rules) == {"enum"} and all(isinstance(v, str) for v in rules["enum"]):
        choices = ", ".join(cel_string(v) for v in rules["enum"])
        return f"type({x}) == string && {x} in [{choices}]"
    kind = rules.get("type")
    if kind == "boolean" and set(rules) == {"type"}:
        return f"type({x}) == bool"
    if kind in ("integer", "number") and set(rules) <= {"type", "minimum", "maximum"}:
        lo, hi = rules.get("minimum"), rules.get("maximum")

        def bounds(as_double: bool) -> str:
            parts = []
            if lo is not None:
                parts.append(f" && {x} >= {_number(lo, as_double)}")
            if hi is not None:
                parts.append(f" && {x} <= {_number(hi, as_double)}")
            return "".join(parts)

        # An integral double (100.0) is an integer to JSON Schema; the bounds come first so
        # int() never sees a double it cannot convert.
        whole = f" && double(int({x})) == {x}" if kind == "integer" else ""
        as_int = f"type({x}) == int{bounds(False)}"
        as_double = f"type({x}) == double{bounds(True)}{whole}"
        return f"({as_int}) || ({as_double})"
    raise ValueError(f"no CEL for the schema keywords {sorted(rules)} of {dict(sub)!r}")


def problems_expression(root: Mapping[str, Any]) -> str:
    """The CEL list of each entry's first problem ('' when it has none)."""
    unknown = set(root) - _ROOT_KEYWORDS
    if unknown or root.get("type") != "object" or root.get("additionalProperties") is not False:
        raise ValueError(f"the root must be a closed object; unsupported keywords {unknown}")
    props: Mapping[str, Mapping[str, Any]] = root["properties"]
    required: list[str] = list(root.get("required", []))
    removed = schema.removed_fields(root)

    def fail(field: str, rule: str) -> str:
        at = f".{field}: " if field else ": "
        return f"e.at + {cel_string(at + rule)}"

    known = ", ".join(schema.known_fields(root))
    arms = [
        f"type(e.p) != map ? {fail('', schema.describe(root))}",
        "e.p.exists(k, !(k in variables.known)) ? "
        "e.at + '.' + e.p.filter(k, !(k in variables.known)).min() + "
        f"{cel_string(f': unknown field (known: {known})')}",
    ]
    for key in required:
        arms.append(
            f"!({cel_string(key)} in e.p) ? "
            f"{fail(key, 'is required (' + schema.describe(props[key]) + ')')}"
        )
        arms.append(f"!({value_check(props[key], 'e.p.' + key)}) ? "
                    f"{fail(key, schema.describe(props[key]))}")  # fmt: skip
    for key, sub in props.items():
        if key in required:
            continue
        if key in removed:
            arms.append(f"{cel_string(key)} in e.p ? {fail(key, removed[key])}")
            continue
        arms.append(
            f"{cel_string(key)} in e.p && !({value_check(sub, 'e.p.' + key)}) ? "
            f"{fail(key, schema.describe(sub))}"
        )
    body = " :\n".join(f"          {arm}" for arm in arms)
    return f"        variables.ours.map(e,\n{body} :\n          ''\n        ).filter(m, m != '')"


def render() -> str:
    root = schema.load(SCHEMA_FILE)
    known = ", ".join(cel_string(k) for k in root["properties"])
    return f"""\
# Generated by deploy/helm/generate_opaque_config_policy.py from
# api/config/v1alpha1/partitionconfig.schema.json: do not edit by hand.
{{{{- if .Values.admission.opaqueConfig }}}}
# Reject a ResourceClaim, ResourceClaimTemplate or DeviceClass whose {DRIVER_NAME} opaque
# config (PartitionConfig) is invalid, at admission, instead of at NodePrepareResources when the
# pod is already on its node. The first problem of each entry is reported with the path of the
# field, in the words the plugin uses (darwin_dra.schema).
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: {{{{ include "darwin-dra.name" . }}}}-opaque-config
  labels:
    {{{{- include "darwin-dra.labels" . | nindent 4 }}}}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: ["resource.k8s.io"]
        apiVersions: ["*"]
        operations: ["CREATE", "UPDATE"]
        resources: ["resourceclaims", "resourceclaimtemplates", "deviceclasses"]
  variables:
    - name: configs
      expression: >-
        request.kind.kind == 'DeviceClass' ? object.spec.?config.orValue([]) :
        request.kind.kind == 'ResourceClaim' ? object.spec.?devices.?config.orValue([]) :
        object.spec.spec.?devices.?config.orValue([])
    - name: at
      expression: >-
        request.kind.kind == 'DeviceClass' ? 'spec.config' :
        request.kind.kind == 'ResourceClaim' ? 'spec.devices.config' :
        'spec.spec.devices.config'
    - name: known
      expression: '[{known}]'
    # This driver's entries as {{at: path of the parameters, p: the parameters}} (the API
    # server's CEL has no cel.bind, so the pair is carried in a map).
    - name: ours
      expression: >-
        variables.configs.transformList(i, c,
          c.?opaque.?driver.orValue('') == {cel_string(DRIVER_NAME)},
          {{'at': dyn(variables.at + '[' + string(i) + '].opaque.parameters'),
           'p': c.opaque.?parameters.orValue(null)}})
    - name: problems
      expression: >-
{problems_expression(root)}
  validations:
    - expression: variables.problems.size() == 0
      messageExpression: "'invalid {DRIVER_NAME} PartitionConfig: ' + variables.problems.join('; ')"
      reason: Invalid
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: {{{{ include "darwin-dra.name" . }}}}-opaque-config
  labels:
    {{{{- include "darwin-dra.labels" . | nindent 4 }}}}
spec:
  policyName: {{{{ include "darwin-dra.name" . }}}}-opaque-config
  validationActions: ["Deny"]
{{{{- end }}}}
"""


if __name__ == "__main__":
    TEMPLATE.write_text(render())
    print(f"wrote {TEMPLATE}")
