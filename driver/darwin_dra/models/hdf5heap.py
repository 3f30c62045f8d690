"""A check of an HDF5 file's global heap collections before the HDF5 library reads them.

Variable-length strings (a NIR node's ``type``) live in global heap collections ("GCOL"). The
libhdf5 that h5py ships walks a collection's objects by their recorded sizes, and a free-space
object of size 0 stops the walk from advancing: a corrupted size sends the reader into an
endless loop in C (found by tests/models/test_nirfile.py's corrupted-file test: one byte of an
object's size changed from 5 to 255). No timeout can interrupt it, so a file whose collections
do not walk to their end is refused here, with the offset, before h5py opens it."""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

from darwin_dra.models.errors import MalformedFile

SIGNATURE = b"\x89HDF\r\n\x1a\n"
GCOL = b"GCOL"
LENGTH_SIZE = 8  # what h5py writes; files with other sizes are left to the library
OBJECT_HEADER = 8 + LENGTH_SIZE  # index (2), references (2), reserved (4), size


def length_size(data: bytes | mmap.mmap) -> int | None:
    """The superblock's "size of lengths" (versions 0 to 3), None when there is none at 0."""
    if data[: len(SIGNATURE)] != SIGNATURE or len(data) < 16:
        return None
    version = data[8]
    at = 14 if version in (0, 1) else 10
    return int(data[at])


def is_collection(data: bytes | mmap.mmap, at: int) -> bool:
    """ "GCOL", version 1 and three zero bytes: a collection's header, not four bytes of data
    that happen to spell it (a chance of about 2**-64 a position, not 2**-32)."""
    return bytes(data[at + 4 : at + 8]) == b"\x01\x00\x00\x00"


def heap_problem(data: bytes | mmap.mmap, start: int) -> str | None:
    """Why the collection at ``start`` cannot be walked to its end, or None (pure)."""
    end_of_file = len(data)
    if start + 16 > end_of_file:
        return "its header runs past the end of the file"
    (size,) = struct.unpack_from("<Q", data, start + 8)
    end = start + size
    if size < 16 or end > end_of_file:
        return f"its size {size} does not fit the file"
    p = start + 16
    while p + OBJECT_HEADER <= end:
        index, _refs, _reserved, obj_size = struct.unpack_from("<HHIQ", data, p)
        need = OBJECT_HEADER + -(-obj_size // 8) * 8 if index > 0 else obj_size
        if need < OBJECT_HEADER or p + need > end:
            return f"object {index} at byte {p} has size {obj_size}, which does not fit it"
        p += need
    return None


def check_global_heaps(path: Path) -> None:
    """Raises MalformedFile naming the first global heap collection that does not walk."""
    with path.open("rb") as f:
        if path.stat().st_size == 0:
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if length_size(data) != LENGTH_SIZE:
                return
            at = data.find(GCOL)
            while at != -1:
                if is_collection(data, at) and (problem := heap_problem(data, at)) is not None:
                    raise MalformedFile(
                        f"{path}: the HDF5 global heap at byte {at} is corrupt: {problem}"
                    )
                at = data.find(GCOL, at + 1)
