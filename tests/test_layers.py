"""The one house rule import-linter cannot see: its import graph holds Python sources only, so
the compiled cffi module is checked here (the other layers: [tool.importlinter] in
pyproject.toml, run by `make lint`)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "driver" / "darwin_dra"


def importers(prefix: str) -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == prefix or n.startswith(prefix + ".") for n in names):
                found.add(str(path.relative_to(PACKAGE)))
    return found


def test_only_engine_native_imports_the_compiled_cffi_module() -> None:
    assert importers("darwin_dra.engine._engine_cffi") == {"engine/native.py"}
    assert importers("cffi") == set()


def test_the_import_contracts_hold() -> None:
    # Also in `make lint`; here so that a plain pytest run cannot miss a broken layer.
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout
