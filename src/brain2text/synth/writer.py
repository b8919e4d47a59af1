"""Writing the release layout: one MATLAB v5 file per day and split, atomically.

``out_dir/{train,test,competitionHoldOut}/t12.YYYY.MM.DD.mat`` with the fields of the real
release (FACTS §1): ``sentenceText`` (S x C char matrix), ``tx1``..``tx4`` and ``spikePow``
(1 x S cells of T_i x 256 doubles), ``blockIdx`` (S x 1 doubles). Each file is written to a
hidden temporary name in its folder and renamed into place, so an interrupted run never leaves
a truncated ``.mat`` that looks complete.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from brain2text.atomic import atomic_write_bytes
from brain2text.errors import DataError

from .neural import N_THRESHOLDS, TrialRecording
from .schedule import SPLITS

ANSWERS_FILE = "holdout_answers.json"
MANIFEST_FILE = "synth_manifest.json"
REDACTED_WIDTH = 1  # hold-out rows are blank: one space each, whatever the hidden sentence


def char_matrix(texts: Sequence[str], width: int | None = None) -> np.ndarray:
    """(S,) fixed-width unicode array, rows right-padded with spaces: savemat writes S x C."""
    width = max([1, *(len(t) for t in texts)]) if width is None else width
    return np.array([t.ljust(width) for t in texts], dtype=f"<U{width}")


def cell_row(arrays: Sequence[np.ndarray], dtype: type = np.float64) -> np.ndarray:
    """1 x S object array (a MATLAB cell row) holding ``arrays`` as ``dtype`` matrices."""
    out = np.empty((1, len(arrays)), dtype=object)
    for i, a in enumerate(arrays):
        out[0, i] = np.asarray(a, dtype=dtype)
    return out


def mat_fields(
    texts: Sequence[str], blocks: Sequence[int], recordings: Sequence[TrialRecording],
    redact: bool, compact: bool = False,
) -> Iterator[tuple[str, Any]]:  # fmt: skip
    """The variables of one day file, one at a time (only one float64 copy is alive at once).

    ``compact`` stores the counts as uint8 and spikePow as single instead of doubles (MATLAB
    classes uint8 and single): the same layout in about a fifth of the disk space.
    """
    count_type, power_type = (np.uint8, np.float32) if compact else (np.float64, np.float64)
    yield (
        "sentenceText",
        (char_matrix([""] * len(texts), REDACTED_WIDTH) if redact else char_matrix(texts)),
    )
    for k in range(N_THRESHOLDS):
        yield f"tx{k + 1}", cell_row([r.tx[k] for r in recordings], count_type)
    yield "spikePow", cell_row([r.spike_pow for r in recordings], power_type)
    yield "blockIdx", np.asarray(blocks, dtype=np.float64).reshape(-1, 1)


def write_day_file(path: Path, fields: Iterable[tuple[str, Any]], compress: bool = False) -> None:
    """Write one MATLAB v5 file atomically (zlib-compressed variables if ``compress``).

    savemat writes the file header only at offset 0, so successive calls on one open file
    append variables: each is converted to float64 only while it is being written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(f) -> None:
        for name, value in fields:
            scipy.io.savemat(f, {name: value}, do_compression=compress)

    atomic_write_bytes(path, write)


def write_json(path: Path, data: Any) -> None:
    """Write pretty JSON atomically."""
    atomic_write_bytes(path, lambda f: f.write((json.dumps(data, indent=1) + "\n").encode()))


def existing_recordings(out_dir: Path) -> list[Path]:
    """``.mat`` files already under ``out_dir`` (any depth)."""
    return sorted(out_dir.rglob("*.mat")) if out_dir.exists() else []


def prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    """Create ``out_dir``; refuse one holding ``.mat`` files unless ``overwrite``.

    With ``overwrite``, the day files of the three split folders and the answers and manifest
    files are removed first, so no stale day of an earlier set survives.
    """
    found = existing_recordings(out_dir)
    if found and not overwrite:
        raise DataError(
            f"{out_dir} already holds {len(found)} .mat file(s); choose an empty folder or "
            "pass overwrite=True (--overwrite)"
        )
    if overwrite:
        for split in SPLITS:
            for old in (out_dir / split).glob("t12.*.mat"):
                old.unlink()
        for name in (ANSWERS_FILE, MANIFEST_FILE):
            (out_dir / name).unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
