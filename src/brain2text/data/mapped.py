"""A read-only memory-mapped ``.npy`` file whose pages can be handed back after a copy.

``np.load(mmap_mode="r")`` maps a file, but every page a process has read stays counted in its
resident memory (``RssFile``) until the mapping is closed: a training run that reads every
trial ends up holding the whole dataset, so its peak RSS grows with the number of days.
Mapping the file ourselves keeps the ``mmap`` object at hand, so after copying rows out we can
``madvise(MADV_DONTNEED)`` their byte range. For a read-only shared file mapping that only
drops the pages from this process; they stay in the kernel's page cache (a re-read costs a
page fault, not a disk read) and the data cannot change, so nothing is lost.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

_HEADER_READERS = {
    (1, 0): npy_format.read_array_header_1_0,
    (2, 0): npy_format.read_array_header_2_0,
}
# Where the platform has no MADV_DONTNEED, pages are simply kept (the np.load behaviour).
_DONTNEED = getattr(mmap, "MADV_DONTNEED", None)
# A page fault maps more than the page it hit: neighbouring cached pages (fault-around) or a
# whole large folio, never beyond the aligned 2 MiB block (x86-64 PMD) around it. Releasing
# whole aligned 2 MiB blocks drops those neighbours too; releasing only the rows' own pages
# left them behind (about 80 KiB per trial read during evaluation, growing without bound).
RELEASE_BLOCK = max(2 * 1024 * 1024, mmap.PAGESIZE)


@dataclass(frozen=True, eq=False)
class MappedNpy:
    """One ``.npy`` file mapped read-only: ``array`` is a view of the mapping (no copy)."""

    array: np.ndarray  # (n, ...) read-only, C order
    _map: mmap.mmap
    _data_offset: int  # bytes before row 0: the .npy header

    def copy_rows(self, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``start:stop`` copied into ``out`` (or a new array), then their pages released."""
        rows = self.array[start:stop]
        if out is None:
            out = rows.copy()
        else:
            out[...] = rows
        self.release(start, stop)
        return out

    def release(self, start: int, stop: int) -> None:
        """Drop the pages around rows ``start:stop`` (the aligned RELEASE_BLOCKs holding them)
        from this process; the page cache keeps them. Rows of other trials in those blocks are
        released too: harmless, a later read maps them again from the cache."""
        if _DONTNEED is None or stop <= start:
            return
        row_bytes = self.array.strides[0]
        first = self._data_offset + start * row_bytes
        first -= first % RELEASE_BLOCK  # page-aligned, as madvise wants
        end = self._data_offset + stop * row_bytes
        end = min(end + (-end) % RELEASE_BLOCK, len(self._map))
        self._map.madvise(_DONTNEED, first, end - first)


def map_npy(file: Path) -> MappedNpy:
    """Map ``file`` read-only. ValueError for a file that is not a C-order ``.npy`` of plain
    numbers or is shorter than its header says; OSError when it cannot be read."""
    with open(file, "rb") as f:
        version = npy_format.read_magic(f)
        if version not in _HEADER_READERS:
            raise ValueError(f".npy format version {version} is not supported")
        shape, fortran_order, dtype = _HEADER_READERS[version](f)
        offset = f.tell()
        if fortran_order or dtype.hasobject:
            raise ValueError("not a C-order array of plain numbers")
        count = int(np.prod(shape, dtype=np.int64))
        size = f.seek(0, 2)
        if size < offset + count * dtype.itemsize:
            raise ValueError(f"{size - offset} bytes of data, {count * dtype.itemsize} expected")
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)  # keeps its own descriptor
    array = np.frombuffer(mapped, dtype=dtype, count=count, offset=offset).reshape(shape)
    return MappedNpy(array, mapped, offset)
