"""Tiny competitionData-like files, written the way the real ones are laid out.

v5 files go through ``scipy.io.savemat``; v7.3 files are written by hand with h5py the way
MATLAB writes them: a 512-byte user block starting with the 'MATLAB 7.3 MAT-file' header,
``MATLAB_class`` attributes, cell arrays as object references into ``#refs#``, and every matrix
stored transposed (a T x 256 MATLAB matrix is a 256 x T HDF5 dataset).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import scipy.io

SENTENCES = (
    "Hello world.",
    "The cat sat on the mat",
    "I think so",
    "What time is it?",
    "We can go there today",
    "It's a good day",
)


@dataclass
class Day:
    """The variables of one file, in MATLAB orientation."""

    sentences: list[str]
    tx1: list[np.ndarray]
    spike_pow: list[np.ndarray]
    blocks: list[int]
    omit: set[str] = field(default_factory=set)

    def variables(self) -> dict[str, object]:
        width = max([len(s) for s in self.sentences] + [1])
        out = {
            "sentenceText": np.array([s.ljust(width) for s in self.sentences]),  # S x C char
            "tx1": _cell(self.tx1),
            "tx2": _cell([np.minimum(x, 1.0) for x in self.tx1]),
            "spikePow": _cell(self.spike_pow),
            "blockIdx": np.array(self.blocks, dtype=np.float64).reshape(-1, 1),  # S x 1
        }
        return {k: v for k, v in out.items() if k not in self.omit}


def _cell(matrices: Sequence[np.ndarray]) -> np.ndarray:
    cell = np.empty((1, len(matrices)), dtype=object)  # 1 x S cell array
    for i, m in enumerate(matrices):
        cell[0, i] = m
    return cell


def make_day(
    seed: int = 0,
    blocks: Sequence[int] = (1, 1, 2, 2, 2),
    lengths: Sequence[int] | None = None,
    sentences: Sequence[str] | None = None,
) -> Day:
    """Random features whose mean and scale differ per block, as real blocks drift."""
    rng = np.random.default_rng(seed)
    n = len(blocks)
    lengths = list(lengths) if lengths is not None else list(rng.integers(6, 15, n))
    sentences = (
        list(sentences)
        if sentences is not None
        else [SENTENCES[i % len(SENTENCES)] for i in range(n)]
    )
    tx1, spike_pow = [], []
    for t, b in zip(lengths, blocks, strict=False):
        tx1.append(rng.poisson(0.5 + b, (t, 256)).astype(np.float64))
        spike_pow.append(rng.gamma(2.0, 100.0 * b, (t, 256)))
    return Day(sentences, tx1, spike_pow, list(blocks))


def write_v5(path: Path, day: Day) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, day.variables(), do_compression=True)
    return path


def write_v73(path: Path, day: Day) -> Path:
    """A MATLAB 7.3 file (HDF5 with MATLAB's header user block) holding ``day``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        for name, value in day.variables().items():
            _h5_write(f, refs, name, value)
    header = (
        b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Thu Apr 28 10:00:00 2022 "
        b"HDF5 schema 1.00 ."
    ).ljust(116, b" ")
    header += b"\x00" * 8 + b"\x00\x02" + b"IM"  # subsystem offset, version 0x0200, endianness
    with open(path, "r+b") as fh:
        fh.write(header)
    return path


def _h5_write(parent: h5py.Group, refs: h5py.Group, name: str, value: np.ndarray) -> None:
    value = np.asarray(value)
    if value.dtype == object:  # cell: references, transposed
        ref_array = np.empty(value.shape, dtype=h5py.ref_dtype)
        for index, element in np.ndenumerate(value):
            key = f"r{len(refs)}"
            _h5_write(refs, refs, key, element)
            ref_array[index] = refs[key].ref
        ds = parent.create_dataset(name, data=ref_array.T)
        ds.attrs["MATLAB_class"] = np.bytes_(b"cell")
    elif value.dtype.kind == "U":  # char matrix: S strings -> S x C uint16 -> C x S
        codes = np.array([[ord(c) for c in s] for s in value.ravel()], dtype=np.uint16)
        ds = parent.create_dataset(name, data=codes.T)
        ds.attrs["MATLAB_class"] = np.bytes_(b"char")
        ds.attrs["MATLAB_int_decode"] = np.int32(2)
    elif value.size == 0:  # MATLAB stores an empty matrix as its dimensions
        ds = parent.create_dataset(name, data=np.array(value.shape, dtype=np.uint64))
        ds.attrs["MATLAB_class"] = np.bytes_(b"double")
        ds.attrs["MATLAB_empty"] = np.uint8(1)
    else:
        ds = parent.create_dataset(name, data=np.asarray(value, dtype=np.float64).T)
        ds.attrs["MATLAB_class"] = np.bytes_(b"double")


def make_raw(
    root: Path,
    *,
    days: Sequence[str] = ("t12.2022.04.28", "t12.2022.05.05"),
    test: bool = True,
    holdout: bool = True,
    edit: Callable[[str, str, Day], None] | None = None,
) -> Path:
    """A competitionData folder: train/ (blocks 1-2), test/ (block 3), competitionHoldOut/."""
    for k, name in enumerate(days):
        parts = [("train", make_day(10 * k, blocks=(1, 1, 2, 2, 2)))]
        if test:
            parts.append(("test", make_day(10 * k + 1, blocks=(3, 3))))
        if holdout and k == len(days) - 1:
            parts.append(
                ("competitionHoldOut", make_day(10 * k + 2, blocks=(1, 1, 1), sentences=[""] * 3))
            )
        for folder, day in parts:
            if edit is not None:
                edit(folder, name, day)
            write_v5(root / folder / f"{name}.mat", day)
    return root


@pytest.fixture
def tiny_raw(tmp_path: Path) -> Path:
    """Function-scoped (tests change it): 2 days; train blocks 1-2, test block 3, hold-out."""
    return make_raw(tmp_path / "raw")


@pytest.fixture
def mk() -> SimpleNamespace:
    """The builders above: mk.day(...), mk.v5(path, day), mk.v73(path, day), mk.raw(root)."""
    return SimpleNamespace(day=make_day, v5=write_v5, v73=write_v73, raw=make_raw)
