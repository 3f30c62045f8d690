"""House rules as tests: one module owns the Kubernetes client, one owns cffi."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "driver" / "darwin_dra"


def importers(prefix: str) -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        if "proto_gen" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == prefix or n.startswith(prefix + ".") for n in names):
                found.add(str(path.relative_to(PACKAGE)))
    return found


def test_only_kubeapi_imports_the_kubernetes_client() -> None:
    assert importers("kubernetes") == {"kubeapi.py"}


def test_only_engine_native_imports_cffi_bindings() -> None:
    assert importers("darwin_dra.engine._engine_cffi") == {"engine/native.py"}
    assert importers("cffi") == set()


def test_the_runtime_sits_below_the_plugin() -> None:
    # A workload pod runs `darwin-dra stage` without the plugin's Kubernetes side.
    for above in ("darwin_dra.plugin", "darwin_dra.controller", "darwin_dra.kubeapi"):
        assert not {p for p in importers(above) if p.startswith("runtime/")}, above


def test_the_chip_host_sits_below_the_plugin() -> None:
    # The chips are hardware: they know nothing of the driver that manages them. (The fault
    # file's writer uses plugin/atomic.py, a file helper with no plugin state.)
    for above in ("darwin_dra.plugin", "darwin_dra.controller", "darwin_dra.kubeapi"):
        found = {p for p in importers(above) if p.startswith("chiphost/")}
        if above == "darwin_dra.plugin":
            found -= importers("darwin_dra.plugin.atomic") - _other_plugin_importers()
        assert not found, above


def _other_plugin_importers() -> set[str]:
    """Modules importing some darwin_dra.plugin module other than plugin.atomic."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
                if node.module == "darwin_dra.plugin":
                    names = [f"darwin_dra.plugin.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            if any(
                n.startswith("darwin_dra.plugin") and n != "darwin_dra.plugin.atomic" for n in names
            ):
                found.add(str(path.relative_to(PACKAGE)))
    return found
