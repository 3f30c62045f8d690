"""The house rule for the C engine: no function in native/src longer than MAX_LINES lines (its
signature to its closing brace), so that each one does one thing a reader can hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "native" / "src"
MAX_LINES = 80


def _blank_comments_and_literals(text: str) -> str:
    """The C text with comments, strings and character literals emptied (lines kept)."""

    def keep_lines(m: re.Match[str]) -> str:
        return "\n" * m.group(0).count("\n")

    text = re.sub(r"/\*.*?\*/", keep_lines, text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'"(?:\\.|[^"\\\n])*"', '""', text)
    return re.sub(r"'(?:\\.|[^'\\\n])*'", "''", text)


def function_lengths(text: str) -> list[tuple[str, int, int]]:
    """(name, first line, lines) of every function defined at file scope in C source `text`."""
    lines = _blank_comments_and_literals(text).splitlines()
    found: list[tuple[str, int, int]] = []
    depth = 0
    current: tuple[str, int] | None = None
    for i, line in enumerate(lines):
        for ch in line:
            if ch == "{":
                if depth == 0:
                    current = _function_at(lines, i)
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0 and current is not None:
                    name, first = current
                    found.append((name, first + 1, i - first + 1))
                    current = None
    return found


def _function_at(lines: list[str], i: int) -> tuple[str, int] | None:
    """The function whose body opens on line i (name, first line of its signature), or None
    for a struct, enum, union or initializer."""
    first = i
    while first > 0:
        above = lines[first - 1].rstrip()
        if not above or above.endswith((";", "}", "{")) or above.startswith("#"):
            break
        first -= 1
    signature = " ".join(part.strip() for part in lines[first : i + 1])
    head = signature.split("{", 1)[0]
    if re.match(r"\s*(typedef|struct|enum|union)\b", head) or "=" in head.split("(", 1)[0]:
        return None
    match = re.search(r"(\w+)\s*\([^{]*\)\s*(__attribute__\s*\(\(.*\)\)\s*)?$", head.strip())
    return (match.group(1), first) if match else None


def test_the_counter_sees_functions_and_their_lengths() -> None:
    text = (
        "struct s { int a; };\n"
        "static int table[] = {1, 2};\n"
        "/* a comment { */\n"
        "static int f(int a,\n"
        "             int b) {\n"
        '    const char *s = "}";\n'
        "    if (a) { return b; }\n"
        "    return 0;\n"
        "}\n"
        "void g(void) { }\n"
    )
    assert function_lengths(text) == [("f", 4, 6), ("g", 10, 1)]


@pytest.mark.parametrize("path", sorted(SRC.glob("*.[ch]")), ids=lambda p: p.name)
def test_no_c_function_is_longer_than_the_rule(path: Path) -> None:
    functions = function_lengths(path.read_text())
    assert functions or path.suffix == ".h"
    too_long = [f"{name} (line {line}): {n} lines" for name, line, n in functions if n > MAX_LINES]
    assert not too_long, f"{path.name}: functions over {MAX_LINES} lines: {too_long}"
