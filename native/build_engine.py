"""cffi out-of-line API build of the Darwin engine (native/) into darwin_dra.engine._engine_cffi.

The declarations cffi sees are the part of native/include/darwin_engine.h between the CDEF
markers, so the header stays the single source of truth for the C API.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cffi import FFI

NATIVE = Path(__file__).resolve().parent
HEADER = NATIVE / "include" / "darwin_engine.h"
# setuptools wants paths relative to the project root, where it runs.
SOURCES = sorted(os.path.relpath(p) for p in (NATIVE / "src").glob("*.c"))


def cdef_text() -> str:
    text = HEADER.read_text()
    match = re.search(r"/\* CDEF BEGIN \*/(.*)/\* CDEF END \*/", text, re.S)
    if match is None:
        raise RuntimeError(f"{HEADER}: CDEF markers not found")
    body = re.sub(r"/\*.*?\*/", "", match.group(1), flags=re.S)  # cffi does not want comments
    return body


def compile_args() -> list[str]:
    args = [
        "-std=c11",
        "-O3",
        "-D_GNU_SOURCE",
        "-pthread",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-Wno-unused-parameter",
        "-Wno-missing-field-initializers",
        # Same float results as the numpy reference: no fused multiply-add contraction.
        "-ffp-contract=off",
        "-fno-math-errno",
        "-fno-trapping-math",
    ]
    # No -march=native: a wheel or an image built here runs on any x86-64 node. The hot loops
    # are multi-versioned (target_clones in native/src/internal.h) and the CPU picks the widest
    # at load time; dk_simd_path() reports which. DARWIN_MARCH=<arch> builds for one CPU only.
    march = os.environ.get("DARWIN_MARCH")
    if march:
        args.append(f"-march={march}")
    return args


# Beside the engine, the process's allocator: the chip host caps glibc's mmap threshold
# (engine/native.py, cap_mmap_threshold) so that large messages' buffers go back to the system.
ALLOCATOR_CDEF = """
#define M_MMAP_THRESHOLD ...
int mallopt(int param, int value);
"""

ffibuilder = FFI()
ffibuilder.cdef(cdef_text() + ALLOCATOR_CDEF)
ffibuilder.set_source(
    "darwin_dra.engine._engine_cffi",
    '#include "darwin_engine.h"\n#include <malloc.h>',
    sources=SOURCES,
    include_dirs=[str(NATIVE / "include"), str(NATIVE / "src")],
    extra_compile_args=compile_args(),
    extra_link_args=["-pthread", "-lm"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
