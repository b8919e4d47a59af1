"""Read one recording day (a ``competitionData`` ``.mat`` file) into plain numpy arrays.

The released files are MATLAB v5 and are read with scipy, asking only for the variables we use.
MATLAB v7.3 files are HDF5 inside (scipy raises ``NotImplementedError`` on them) and are read
with h5py, undoing MATLAB's column-major storage: every matrix is stored transposed, a cell
array is a dataset of object references into ``#refs#``, a char matrix is uint16 code points.

Every problem is a :class:`DataError` with a one-line message naming the file (and the trial).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from brain2text.errors import DataError

# electrodes of one ``--arrays`` area (6v or 44), each recorded by two 64-electrode arrays
ELECTRODES_PER_ARRAY = 128
N_CHANNELS = 2 * ELECTRODES_PER_ARRAY  # columns of tx1..tx4 and spikePow: area 6v, then 44
TEXT_FIELD = "sentenceText"
FEATURE_FIELDS = ("tx1", "tx2", "tx3", "tx4", "spikePow")  # tx1..tx4: -3.5 .. -6.5 RMS
DEFAULT_FIELDS = ("tx1", "spikePow")  # the standard preparation's
BLOCK_FIELD = "blockIdx"
_LAYOUT_HINT = "a competitionData file holds sentenceText, tx1..tx4, spikePow and blockIdx"


@dataclass(frozen=True, eq=False)
class RawSession:
    """One day as stored in its file, trials in file order (S trials)."""

    name: str  # file stem, e.g. "t12.2022.04.28"
    path: Path
    sentences: list[str]  # (S,) stripped; "" when unlabelled
    features: dict[str, list[np.ndarray]]  # field read (tx1..tx4, spikePow) -> (S,) of (T_i, 256)
    block_idx: np.ndarray  # (S,) int64 block number of each trial
    labelled: bool = True

    @property
    def n_trials(self) -> int:
        return len(self.block_idx)

    @property
    def tx1(self) -> list[np.ndarray]:
        return self.features["tx1"]

    @property
    def spike_pow(self) -> list[np.ndarray]:
        return self.features["spikePow"]

    def where(self, trial: int | None = None) -> str:
        """``path`` or ``path trial i``: the prefix of every message about this file."""
        return str(self.path) if trial is None else f"{self.path} trial {trial}"


def read_session(
    path: Path,
    *,
    labelled: bool = True,
    check_trials: bool = True,
    fields: tuple[str, ...] = DEFAULT_FIELDS,
) -> RawSession:
    """Read the feature ``fields`` (``tx1`` and ``spikePow`` by default; any of tx1..tx4,
    spikePow), ``blockIdx`` (and ``sentenceText`` when labelled) of one file.

    File-level problems (missing file or field, unreadable file, a matrix that is not T x 256,
    fields disagreeing on the number of trials) always raise. Per-trial problems (see
    :func:`trial_problem`) raise too unless ``check_trials=False``, which lets
    :func:`brain2text.data.prepare.prepare` skip such trials instead.
    In an unlabelled file (``competitionHoldOut``) ``sentenceText`` is not read at all.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a file (expected one .mat file per recording day)")
    names = ((TEXT_FIELD,) if labelled else ()) + tuple(fields) + (BLOCK_FIELD,)
    loaded = _load_fields(path, names)
    missing = [n for n in names if n not in loaded]
    if missing:
        raise DataError(f"{path}: no field {', '.join(missing)} ({_LAYOUT_HINT})")

    features = {name: _trial_matrices(path, name, loaded[name]) for name in fields}
    block_idx = _block_numbers(path, loaded[BLOCK_FIELD])
    counts = {name: len(m) for name, m in features.items()} | {BLOCK_FIELD: len(block_idx)}
    if labelled:
        sentences = _sentences(path, loaded[TEXT_FIELD])
        counts[TEXT_FIELD] = len(sentences)
    else:
        sentences = [""] * len(block_idx)
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{k} {v}" for k, v in counts.items())
        raise DataError(f"{path}: the fields disagree on the number of trials ({listed})")

    session = RawSession(
        name=path.stem,
        path=path,
        sentences=sentences,
        features=features,
        block_idx=block_idx,
        labelled=labelled,
    )
    if check_trials:
        for i in range(session.n_trials):
            problem = trial_problem(session, i)
            if problem is not None:
                raise DataError(f"{session.where(i)}: {problem}")
    return session


def trial_problem(session: RawSession, i: int) -> str | None:
    """Why trial ``i`` is unusable (lengths differ, no bins, NaN/Inf, empty sentence), or None."""
    if (reason := feature_problem(session, i)) is not None:
        return reason
    if session.labelled and not session.sentences[i]:
        return "empty sentenceText in a labelled file"
    return None


def feature_problem(session: RawSession, i: int) -> str | None:
    """The part of :func:`trial_problem` about the neural features only."""
    matrices = {name: m[i] for name, m in session.features.items()}
    (first, x), *others = matrices.items()
    for name, other in others:
        if other.shape[0] != x.shape[0]:
            return f"{first} has {x.shape[0]} time bins but {name} has {other.shape[0]}"
    if x.shape[0] == 0:
        return "the trial has no time bins"
    for field, matrix in matrices.items():
        n_bad = matrix.size - int(np.count_nonzero(np.isfinite(matrix)))
        if n_bad:
            return f"{field} holds {n_bad} NaN/Inf value{'s' if n_bad > 1 else ''}"
    return None


# --- loading ------------------------------------------------------------------------------


def _load_fields(path: Path, names: tuple[str, ...]) -> dict[str, Any]:
    import scipy.io

    try:
        return scipy.io.loadmat(path, variable_names=list(names), squeeze_me=False)
    except NotImplementedError:  # MATLAB v7.3: an HDF5 file behind a 512-byte header
        return _load_fields_hdf5(path, names)
    except MemoryError:
        raise
    except Exception as exc:  # scipy raises many types on a cut or damaged file
        raise DataError(
            f"{path}: cannot read it as a MATLAB file ({_one_line(exc)}); "
            "it may be truncated or corrupt: copy it again"
        ) from exc


def _load_fields_hdf5(path: Path, names: tuple[str, ...]) -> dict[str, Any]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return {name: _hdf5_value(path, name, f, f[name]) for name in names if name in f}
    except DataError:
        raise
    except MemoryError:
        raise
    except Exception as exc:
        raise DataError(
            f"{path}: cannot read it as a MATLAB v7.3 (HDF5) file "
            f"({_one_line(exc)}); it may be truncated or corrupt: copy it again"
        ) from exc


def _hdf5_value(path: Path, name: str, f: Any, obj: Any) -> np.ndarray:
    """One MATLAB variable from HDF5, in MATLAB's orientation (as scipy would return it)."""
    import h5py

    if not isinstance(obj, h5py.Dataset):
        raise DataError(f"{path}: field {name} is a MATLAB struct, not a matrix or cell array")
    matlab_class = obj.attrs.get("MATLAB_class", b"double")
    if isinstance(matlab_class, bytes):
        matlab_class = matlab_class.decode("ascii", "replace")
    if obj.attrs.get("MATLAB_empty", 0):
        # An empty matrix is stored as its dimensions; rows come out as 0 either way.
        dims = [int(d) for d in np.ravel(obj[()])]
        return np.zeros((0, max(dims, default=0)))
    data = obj[()]
    if matlab_class == "cell":  # (S, 1) references -> (1, S) object array
        refs = np.asarray(data).T
        out = np.empty(refs.shape, dtype=object)
        for index, ref in np.ndenumerate(refs):
            out[index] = _hdf5_value(path, name, f, f[ref])
        return out
    if matlab_class == "char":  # (C, S) uint16 code points -> S strings
        codes = np.atleast_2d(np.asarray(data, dtype=np.uint16).T)
        return np.array([row.astype("<u2").tobytes().decode("utf-16-le") for row in codes])
    return np.asarray(data).T


# --- checking -----------------------------------------------------------------------------


def _trial_matrices(path: Path, field: str, value: Any) -> list[np.ndarray]:
    """A 1 x S (or S x 1) cell array of T x 256 matrices -> list of S arrays."""
    if not isinstance(value, np.ndarray) or value.dtype != object or 1 not in value.shape:
        raise DataError(
            f"{path}: {field} is not a 1 x S cell array of trials "
            f"(found {_describe(value)}; {_LAYOUT_HINT})"
        )
    out = []
    for i, matrix in enumerate(value.ravel()):
        matrix = np.asarray(matrix)
        if matrix.ndim == 2 and matrix.size == 0 and matrix.dtype.kind in "buif":
            matrix = np.zeros((0, N_CHANNELS))  # MATLAB's [] : a trial without bins (skippable)
        if matrix.ndim != 2 or matrix.dtype.kind not in "buif" or matrix.shape[1] != N_CHANNELS:
            raise DataError(
                f"{path} trial {i}: {field} is {_describe(matrix)}, "
                f"expected a T x {N_CHANNELS} numeric matrix"
            )
        out.append(matrix)
    return out


def _block_numbers(path: Path, value: Any) -> np.ndarray:
    blocks = np.asarray(value)
    if blocks.dtype.kind not in "buif" or (blocks.ndim == 2 and 1 not in blocks.shape):
        raise DataError(f"{path}: {BLOCK_FIELD} is {_describe(blocks)}, expected S x 1 numbers")
    blocks = blocks.ravel()
    if blocks.size and not (np.all(np.isfinite(blocks)) and np.all(blocks == np.round(blocks))):
        raise DataError(f"{path}: {BLOCK_FIELD} holds values that are not whole block numbers")
    return blocks.astype(np.int64)


def _sentences(path: Path, value: Any) -> list[str]:
    """An S x C char matrix (scipy gives S strings) or an S x 1 cell array of strings."""
    text = np.asarray(value)
    if text.dtype.kind == "U":
        return [str(s).strip() for s in text.ravel()]
    if text.dtype == object and (text.ndim < 2 or 1 in text.shape):
        out = []
        for i, cell in enumerate(text.ravel()):
            cell = np.asarray(cell)
            if cell.dtype.kind != "U":
                raise DataError(f"{path} trial {i}: {TEXT_FIELD} holds {_describe(cell)}, not text")
            out.append("".join(str(s) for s in cell.ravel()).strip())
        return out
    raise DataError(f"{path}: {TEXT_FIELD} is {_describe(text)}, expected an S x C char matrix")


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        kind = {"U": "char", "O": "cell"}.get(value.dtype.kind, str(value.dtype))
        return f"a {' x '.join(map(str, value.shape)) or 'scalar'} {kind} array"
    return f"a {type(value).__name__}"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
