"""No module of the package is over 400 lines (generated code aside): one responsibility a file,
kept by a test rather than by memory (tests/engine/test_c_function_length.py does the C side)."""

from __future__ import annotations

from pathlib import Path

import darwin_dra

LIMIT = 400
PACKAGE = Path(darwin_dra.__file__).parent


def test_no_module_is_over_400_lines() -> None:
    sizes = {
        str(p.relative_to(PACKAGE)): len(p.read_text().splitlines())
        for p in PACKAGE.rglob("*.py")
        if "proto_gen" not in p.parts
    }
    assert len(sizes) > 100
    over = {name: n for name, n in sizes.items() if n > LIMIT}
    assert over == {}, f"modules over {LIMIT} lines: {over}"
