"""The one shape for a Kubernetes object as the driver reads and writes it: its JSON mapping.

The driver works on API objects as the server sends them (camelCase keys, nested mappings), not
on the client's generated model classes, so every module names that shape the same way.
"""

from collections.abc import Mapping
from typing import Any

Obj = dict[str, Any]
"""An API object (or a part of one) as JSON: built, patched and sent."""

ReadOnlyObj = Mapping[str, Any]
"""An API object only read: a list or watch result passed to a pure decision."""
