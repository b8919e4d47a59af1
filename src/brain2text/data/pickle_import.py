"""Convert a reference ``ptDecoder_ctc`` pickle into a prepared dataset, without running its code.

A pickle can call any importable function while it loads, so :class:`ArrayUnpickler` resolves
only the few globals that rebuild plain numpy arrays and refuses every other one before it can
run. The pickle's features are already z-scored (by the reference notebook) and are stored as-is.

Session names. The pickle holds none. The reference notebook (formatCompetitionData.ipynb)
loops over the 24 sorted session names, appending train[k] and test[k] for day k and a
competition entry only for days that have a hold-out file; its printed list of those days and
the reference ``eval_competition.py`` give their day indices as
``REFERENCE_COMPETITION_DAY_INDICES``. So with 24 train days, train/test days take the real dates
and the 15 competition days take the dates at those indices; with other counts, days are named
``day00``.. and competition days ``competition00``.. with no day index, unless
``competition_days`` names their sessions.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from brain2text.data.feature_spec import N_FEATURES, STANDARD_2023
from brain2text.data.features import DEFAULT_ARRAYS, DEFAULT_FEATURES, feature_names, pack
from brain2text.data.manifest import UNKNOWN_BLOCK, Manifest, SplitEntry
from brain2text.data.writer import (
    SessionArrays,
    check_output_dir,
    finish,
    split_entry,
    staging_dir,
    trial_table,
    write_session,
)
from brain2text.errors import DataError
from brain2text.phonemes import PHONEMES, clean_text

REAL_DAYS = tuple(f"t12.2022.{d}" for d in (
    "04.28", "05.05", "05.17", "05.19", "05.24", "05.26", "06.02", "06.07", "06.14", "06.16",
    "06.21", "06.23", "06.28", "07.05", "07.14", "07.21", "07.27", "07.29", "08.02", "08.11",
    "08.13", "08.18", "08.23", "08.25",
))  # fmt: skip
# Day indices of the 15 competitionHoldOut sessions, in the order the notebook appended them.
REFERENCE_COMPETITION_DAY_INDICES = (4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 18, 19, 20)
DAY_KEYS = ("sentenceDat", "phonemes", "phoneLens", "timeSeriesLens", "transcriptions")
FEATURES_DESCRIPTION = (
    "as stored in the ptDecoder_ctc pickle (the reference notebook's "
    "tx1[:, 0:128] + spikePow[:, 0:128], z-scored per block)"
)


def _numpy_globals() -> dict[tuple[str, str], Any]:
    try:  # numpy >= 2 (numpy 1.26 has the same names under numpy._core too)
        from numpy._core import multiarray, numeric
    except ImportError:  # pragma: no cover - older numpy
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,  # bytes in protocol-2 pickles
    }
    for core in ("numpy.core", "numpy._core"):  # as named by the numpy that wrote the pickle
        allowed[(f"{core}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = multiarray.scalar  # numpy scalars
        # protocol 5; a private function numpy's stubs do not declare
        allowed[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer  # type: ignore[attr-defined]
    return allowed


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """What protocol-2 pickles call to rebuild bytes; no other codec (a codec name imports)."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refused codec {encoding!r}")
    return text.encode("latin1")


class ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays; refuses any other global."""

    def __init__(self, file: io.BufferedIOBase, name: str) -> None:
        super().__init__(file)
        self._name = name
        self._allowed = _numpy_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise DataError(
                f"{self._name}: refused to load: the pickle asks for {module}.{name}, which "
                "plain numpy arrays never need (loading a pickle can run code)"
            ) from None


def load_pickle(pkl: Path) -> Any:
    """Load a pickle that may hold only dicts, lists, str, numbers and numpy arrays."""
    pkl = Path(pkl)
    if not pkl.is_file():
        raise DataError(f"{pkl}: no such file")
    try:
        with open(pkl, "rb") as fh:
            return ArrayUnpickler(fh, str(pkl)).load()
    except DataError:
        raise
    except MemoryError:
        raise
    except Exception as exc:
        raise DataError(
            f"{pkl}: not a readable pickle ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())}); it may be truncated"
        ) from exc


def import_pickle(
    pkl: Path,
    out_dir: Path,
    *,
    overwrite: bool = False,
    competition_days: list[str] | None = None,
    progress: bool = True,
) -> Manifest:
    """Write the pickle's train/test/competition days as a prepared dataset; return the manifest."""
    from tqdm.auto import tqdm

    pkl, out_dir = Path(pkl), Path(out_dir)
    check_output_dir(out_dir, overwrite=overwrite)  # before the (long) load
    data = load_pickle(pkl)
    if not isinstance(data, dict) or not isinstance(data.get("train"), list) or not data["train"]:
        raise DataError(
            f"{pkl}: expected a dict with a non-empty 'train' list of day dicts "
            "(a ptDecoder_ctc pickle)"
        )
    parts = {split: data.get(split) or [] for split in ("train", "test", "competition")}
    for split, days_ in parts.items():
        if not isinstance(days_, list):
            raise DataError(f"{pkl}: '{split}' is a {type(days_).__name__}, expected a list")
    names = _session_names(pkl, {k: len(v) for k, v in parts.items()}, competition_days)
    days = names["train"]

    splits: dict[str, SplitEntry] = {}
    with (
        staging_dir(out_dir, overwrite=overwrite) as tmp,
        tqdm(
            total=sum(map(len, parts.values())), desc="import", unit="day", disable=not progress
        ) as bar,
    ):
        for split, day_dicts in parts.items():
            if not day_dicts:
                continue
            labelled = split != "competition"
            sessions = {}
            for k, day in enumerate(day_dicts):
                source = f"{pkl.name}:{split}[{k}]"
                arrays = _day_arrays(f"{pkl}: {split}[{k}]", day, labelled)
                name = names[split][k]
                day_index = days.index(name) if name in days else None
                sessions[name] = write_session(tmp / split / name, arrays, source, day_index)
                bar.update()
            splits[split] = split_entry(labelled, sessions)
        return finish(
            tmp,
            days,
            splits,
            replace(
                STANDARD_2023, feature_names=tuple(feature_names(DEFAULT_FEATURES, DEFAULT_ARRAYS))
            ),
            description=FEATURES_DESCRIPTION,
            source=str(pkl.resolve()),
            imported_from="ptDecoder_ctc pickle",
        )


def _session_names(
    pkl: Path, counts: dict[str, int], competition_days: Sequence[str] | None
) -> dict[str, list[str]]:
    n_train = counts["train"]
    if n_train == len(REAL_DAYS):
        train = list(REAL_DAYS)
    else:
        train = [f"day{k:02d}" for k in range(n_train)]
    if counts["test"] not in (0, n_train):
        raise DataError(
            f"{pkl}: {counts['test']} test days for {n_train} train days; the "
            "reference pickle pairs test[k] with train[k], so they must match"
        )
    n_comp = counts["competition"]
    if competition_days is not None:
        competition = list(competition_days)
        unknown = [d for d in competition if d not in train]
        if len(competition) != n_comp or unknown or len(set(competition)) != n_comp:
            raise DataError(
                f"{pkl}: --competition-days must name {n_comp} distinct train "
                f"sessions ({', '.join(train[:2])}, ...), one per competition day"
                + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            )
    elif n_train == len(REAL_DAYS) and n_comp == len(REFERENCE_COMPETITION_DAY_INDICES):
        competition = [REAL_DAYS[k] for k in REFERENCE_COMPETITION_DAY_INDICES]
    else:
        competition = [f"competition{k:02d}" for k in range(n_comp)]
    return {"train": train, "test": train[: counts["test"]], "competition": competition}


def _day_arrays(where: str, day: Any, labelled: bool) -> SessionArrays:
    """A day dict -> features (sum T, 256) float32, trials (n, 6), phonemes uint8, texts."""
    if not isinstance(day, dict):
        raise DataError(f"{where}: a {type(day).__name__}, expected a day dict")
    needed = DAY_KEYS if labelled else ("sentenceDat", "timeSeriesLens")
    missing = [k for k in needed if k not in day]
    if missing:
        raise DataError(
            f"{where}: no {', '.join(missing)} (a day dict holds {', '.join(DAY_KEYS)})"
        )
    for key in needed:
        if not isinstance(day[key], (list, tuple, np.ndarray)):
            raise DataError(f"{where}: {key} is a {type(day[key]).__name__}, expected a list")
    matrices = list(day["sentenceDat"])
    n = len(matrices)
    for key in needed[1:]:
        if len(day[key]) != n:
            raise DataError(f"{where}: {key} has {len(day[key])} entries for {n} trials")

    lengths = np.zeros(n, np.int64)
    phone_lengths = np.zeros(n, np.int64)
    phonemes: list[np.ndarray] = []
    texts: list[str] = []
    for i, x in enumerate(matrices):
        x = np.asarray(x)
        if x.ndim != 2 or x.dtype.kind not in "biuf" or x.shape[1] != N_FEATURES:
            raise DataError(
                f"{where} trial {i}: sentenceDat is a {x.dtype} array of shape "
                f"{x.shape}, expected T x {N_FEATURES} numbers"
            )
        if x.shape[0] == 0 or int(day["timeSeriesLens"][i]) != x.shape[0]:
            raise DataError(
                f"{where} trial {i}: {x.shape[0]} time bins but timeSeriesLens "
                f"says {day['timeSeriesLens'][i]}"
            )
        if not np.all(np.isfinite(x)):
            raise DataError(f"{where} trial {i}: sentenceDat holds NaN/Inf values")
        lengths[i] = x.shape[0]
        if labelled:
            ids = np.asarray(day["phonemes"][i]).ravel()[: int(day["phoneLens"][i])]
            if (
                not 0 < len(ids) == int(day["phoneLens"][i])
                or ids.min() < 1
                or (ids.max() > len(PHONEMES))
            ):
                raise DataError(
                    f"{where} trial {i}: phonemes/phoneLens do not hold "
                    f"{int(day['phoneLens'][i])} ids in 1..{len(PHONEMES)}"
                )
            phonemes.append(ids.astype(np.uint8))
            phone_lengths[i] = len(ids)
            texts.append(clean_text(str(day["transcriptions"][i])))
        else:
            texts.append("")

    features = pack(matrices, int(lengths.sum()), N_FEATURES)  # (sum T, 256)
    trials = trial_table(
        lengths, phone_lengths, np.full(n, UNKNOWN_BLOCK, np.int64), np.arange(n, dtype=np.int64)
    )
    flat = np.concatenate(phonemes) if phonemes else np.zeros(0, np.uint8)
    return SessionArrays(features, trials, flat, texts)
