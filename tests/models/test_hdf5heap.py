"""The global heap check that keeps libhdf5 out of an endless loop on a corrupt NIR file."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest
from darwin_dra.models.errors import MalformedFile
from darwin_dra.models.hdf5heap import check_global_heaps, heap_problem
from darwin_dra.models.nirfile import load_model
from hypothesis import given
from hypothesis import strategies as st

DATA = Path(__file__).resolve().parents[1] / "data"
# Found by test_nirfile.py's corrupted-file test: one object's size byte 5 -> 255, so the walk
# lands on zeros (a free-space object of size 0), where libhdf5 loops forever.
CORRUPT = DATA / "corrupt_global_heap.nir"


def _collection(sizes: list[int], total: int) -> bytes:
    """A GCOL of objects 1.. with ``sizes`` and the rest as one free-space object."""
    body = b""
    for i, size in enumerate(sizes, start=1):
        body += struct.pack("<HHIQ", i, 1, 0, size) + bytes(-(-size // 8) * 8)
    free = total - 16 - len(body)
    if free >= 16:
        body += struct.pack("<HHIQ", 0, 0, 0, free) + bytes(free - 16)
    body += bytes(total - 16 - len(body))
    return b"GCOL\x01\x00\x00\x00" + struct.pack("<Q", total) + body


@given(st.lists(st.integers(0, 300), max_size=12))
def test_a_well_formed_collection_walks_to_its_end(sizes: list[int]) -> None:
    assert heap_problem(_collection(sizes, 4096), 0) is None


@given(st.lists(st.integers(1, 300), min_size=1, max_size=12), st.data())
def test_a_size_that_overruns_or_stalls_the_walk_is_named(
    sizes: list[int], data: st.DataObject
) -> None:
    raw = bytearray(_collection(sizes, 4096))
    bad = data.draw(st.sampled_from([0, 1 << 40]))  # a free-space object of 0, or past the end
    index = data.draw(st.integers(0, len(sizes) - 1))
    at = 16 + sum(16 + -(-s // 8) * 8 for s in sizes[:index])
    struct.pack_into("<HHIQ", raw, at, 0 if bad == 0 else index + 1, 0, 0, bad)
    problem = heap_problem(bytes(raw), 0)
    assert problem is not None
    assert f"at byte {at}" in problem


def test_the_corrupt_file_is_refused_by_name_not_read_forever() -> None:
    # In a child with a time limit: should the check regress, this fails instead of hanging.
    code = f"from darwin_dra.models.nirfile import load_model\nload_model({str(CORRUPT)!r})\n"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 1, out.stderr[-2000:]
    assert "the HDF5 global heap at byte 2064 is corrupt" in out.stderr
    with pytest.raises(MalformedFile, match=r"corrupt_global_heap\.nir: the HDF5 global heap"):
        check_global_heaps(CORRUPT)


@pytest.mark.parametrize("name", ["digits_snntorch.nir", "digits_norse.nir"])
def test_real_models_pass_the_check(name: str) -> None:
    check_global_heaps(DATA / name)
    assert load_model(DATA / name).network.n_inputs > 0
