"""Synthetic recordings in the Brain-to-Text '25 layout, from the 2023 generator's simulation.

    <out_dir>/hdf5_data_final/t15.YYYY.MM.DD/data_train.hdf5, data_val.hdf5, data_test.hdf5
    <out_dir>/test_answers.json    session -> true sentences of its data_test file, in order

Sessions take the first N of the 45 real dates (t15.2023.08.11 ... t15.2025.04.13); the four
real train-only sessions (t15.2023.08.11, 2024.03.03, 2024.04.25, 2024.04.28) get no val or
test file. The simulated world (tuning drift, baselines, dead electrodes) is built over all 45
dates from the seed, so session k is the same whatever N is asked for. A simulated day's
splits map as train -> data_train, test -> data_val (labelled) and competitionHoldOut ->
data_test (unlabelled); blocks keep the 2023 numbering (test blocks first, then train, val last).

Each file holds groups ``trial_0000``, ``trial_0001``, ... in recording order, each with
- ``input_features``: (T, 512) float32, 20 ms bins. Columns 0-255 are threshold crossings at
  -4.5 x RMS (the simulation's tx2), 256-511 spike-band power. Each half is four arrays of 64
  electrodes in the order ventral 6v, area 4, 55b, dorsal 6v, filled from the simulated arrays
  6v ventral, 44 superior, 44 inferior and 6v dorsal: the nearly untuned area-44 arrays stand
  in for area 4 and 55b, so those columns carry less speech than the real ones. Within an
  array, electrodes run row-major over its 8 x 8 grid (``ELECTRODE_ORDER`` holds the 2023
  columns). Features ship normalised: z-scored per block and column (eps 1e-8).
- ``seq_class_ids``: (500,) int32 phoneme ids (blank 0, AA..ZH 1-39, SIL 40), 0-padded.
- ``transcription``: (500,) int32 character codes of the sentence, 0-terminated, 0-padded.
- attributes ``n_time_steps``, ``seq_len``, ``sentence_label``, ``session``, ``block_num`` and
  ``trial_num`` (0-based within its block).
Test files keep only ``input_features`` and the attributes n_time_steps, session, block_num
and trial_num. Each file is written under a hidden temporary name and renamed into place.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from brain2text.errors import ConfigError, DataError
from brain2text.phonemes import phonemize, to_ids

from .electrodes import DORSAL_6V, INFERIOR_44, SUPERIOR_44, VENTRAL_6V, layout
from .generate import HOLDOUT, DaySplit, simulate_day
from .params import DEFAULT_PARAMS, SynthParams
from .session import World, build_world
from .writer import write_json

B2T25_SESSIONS: tuple[str, ...] = tuple(
    f"t15.{d}"
    for d in (
        "2023.08.11", "2023.08.13", "2023.08.18", "2023.08.20", "2023.08.25", "2023.08.27",
        "2023.09.01", "2023.09.03", "2023.09.24", "2023.09.29", "2023.10.01", "2023.10.06",
        "2023.10.08", "2023.10.13", "2023.10.15", "2023.10.20", "2023.10.22", "2023.11.03",
        "2023.11.04", "2023.11.17", "2023.11.19", "2023.11.26", "2023.12.03", "2023.12.08",
        "2023.12.10", "2023.12.17", "2023.12.29", "2024.02.25", "2024.03.03", "2024.03.08",
        "2024.03.15", "2024.03.17", "2024.04.25", "2024.04.28", "2024.05.10", "2024.06.14",
        "2024.07.19", "2024.07.21", "2024.07.28", "2025.01.10", "2025.01.12", "2025.03.14",
        "2025.03.16", "2025.03.30", "2025.04.13",
    )
)  # fmt: skip
TRAIN_ONLY_SESSIONS: tuple[str, ...] = (
    "t15.2023.08.11", "t15.2024.03.03", "t15.2024.04.25", "t15.2024.04.28",
)  # fmt: skip
DATA_FOLDER = "hdf5_data_final"
ANSWERS_FILE = "test_answers.json"
SPLIT_FILES: dict[str, str] = {
    "train": "data_train.hdf5", "test": "data_val.hdf5", HOLDOUT: "data_test.hdf5",
}  # fmt: skip
ARRAY_ORDER: tuple[int, ...] = (VENTRAL_6V, SUPERIOR_44, INFERIOR_44, DORSAL_6V)
B2T25_ARRAY_NAMES: tuple[str, ...] = ("6v ventral", "4", "55b", "6v dorsal")
THRESHOLD_INDEX = 1  # tx2 of the simulation: crossings of -4.5 x RMS
N_FEATURES = 512
PAD_LENGTH = 500  # length of seq_class_ids and transcription
ZSCORE_EPS = 1e-8


def electrode_order() -> np.ndarray:
    """(256,) 2023 column of each B2T'25 electrode: arrays in ``ARRAY_ORDER``, grids row-major."""
    array, row, col = layout()
    rank = np.array([ARRAY_ORDER.index(a) for a in array])
    return np.lexsort((col, row, rank))


ELECTRODE_ORDER = electrode_order()


def build_b2t25_world(seed: int, params: SynthParams) -> World:
    """The simulated world over the 45 B2T'25 dates (none of them mouthed): drift follows the
    real gaps between sessions."""
    return build_world(seed, params, names=B2T25_SESSIONS, mouthed_days=())


def zscored_features(part: DaySplit) -> list[np.ndarray]:
    """(T, 512) float32 features of each trial, z-scored per block and column."""
    raw = [
        np.concatenate([r.tx[THRESHOLD_INDEX][:, ELECTRODE_ORDER],
                        r.spike_pow[:, ELECTRODE_ORDER]], axis=1).astype(np.float64)
        for r in part.recordings
    ]  # fmt: skip
    out: list[np.ndarray] = [np.empty(0)] * len(raw)
    blocks = np.array(part.blocks)
    for block in np.unique(blocks):
        members = np.flatnonzero(blocks == block)
        stacked = np.concatenate([raw[i] for i in members])  # (N, 512)
        mean, std = stacked.mean(axis=0), stacked.std(axis=0)
        for i in members:
            out[i] = ((raw[i] - mean) / (std + ZSCORE_EPS)).astype(np.float32)
    return out


def padded(values: Sequence[int], what: str) -> np.ndarray:
    """(500,) int32: ``values`` then zeros (a sentence too long for the layout is a DataError)."""
    if len(values) >= PAD_LENGTH:
        raise DataError(f"{what} has {len(values)} symbols; the layout holds {PAD_LENGTH - 1}")
    out = np.zeros(PAD_LENGTH, dtype=np.int32)
    out[: len(values)] = values
    return out


def fill_file(f: h5py.File, part: DaySplit, labelled: bool) -> None:
    """Write the trial groups of one split of one session into an open file."""
    features = zscored_features(part)
    trial_in_block: dict[int, int] = {}
    for i, (x, text, block) in enumerate(zip(features, part.texts, part.blocks, strict=True)):
        g = f.create_group(f"trial_{i:04d}")
        g.create_dataset("input_features", data=x)
        g.attrs["n_time_steps"] = x.shape[0]
        g.attrs["session"] = part.day
        g.attrs["block_num"] = block
        g.attrs["trial_num"] = trial_in_block.get(block, 0)
        trial_in_block[block] = trial_in_block.get(block, 0) + 1
        if labelled:
            ids = to_ids(phonemize(text))
            g.create_dataset("seq_class_ids", data=padded(ids, f"{part.day} trial {i}"))
            g.create_dataset(
                "transcription", data=padded([ord(c) for c in text], f"{part.day} trial {i}")
            )
            g.attrs["seq_len"] = len(ids)
            g.attrs["sentence_label"] = text


def write_split_file(path: Path, part: DaySplit, labelled: bool) -> None:
    """Write one HDF5 file under a hidden temporary name, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            fill_file(f, part, labelled)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_b2t25_arguments(sessions: int, counts: dict[str, int], seed: int) -> None:
    """One-line ConfigError for an impossible request."""
    n = len(B2T25_SESSIONS)
    if not isinstance(sessions, int) or not 1 <= sessions <= n:
        raise ConfigError(f"sessions must be an integer from 1 to {n}, got {sessions!r}")
    for name, value in counts.items():
        if not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")


def prepare_data_folder(out_dir: Path, overwrite: bool) -> Path:
    """Create ``out_dir/hdf5_data_final``; refuse one holding .hdf5 files unless ``overwrite``.

    With ``overwrite`` its .hdf5 files, the session folders they leave empty and the answers
    file are removed first, so no stale session of an earlier set survives.
    """
    root = out_dir / DATA_FOLDER
    found = sorted(root.rglob("*.hdf5")) if root.exists() else []
    if found and not overwrite:
        raise DataError(
            f"{root} already holds {len(found)} .hdf5 file(s); choose an empty "
            "folder or pass overwrite=True"
        )
    for old in found:
        old.unlink()
    for folder in sorted(root.glob("t15.*")):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    if overwrite:
        (out_dir / ANSWERS_FILE).unlink(missing_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    return root


def generate_b2t25(
    out_dir: Path,
    *,
    sessions: int = 6,
    train_per_session: int = 40,
    val_per_session: int = 10,
    test_per_session: int = 10,
    seed: int = 0,
    progress: bool = True,
    overwrite: bool = False,
    params: SynthParams | None = None,
) -> Path:
    """Write a synthetic B2T'25 release under ``out_dir``; return its ``hdf5_data_final``.

    Train-only sessions get neither val nor test trials. The true sentences of the test files
    go to ``out_dir/test_answers.json``. Raises ConfigError for impossible arguments and
    DataError when ``hdf5_data_final`` already holds .hdf5 files and ``overwrite`` is false.
    """
    counts = {"train_per_session": train_per_session, "val_per_session": val_per_session,
              "test_per_session": test_per_session}  # fmt: skip
    check_b2t25_arguments(sessions, counts, seed)
    params = params or DEFAULT_PARAMS
    out_dir = Path(out_dir)
    root = prepare_data_folder(out_dir, overwrite)
    world = build_b2t25_world(seed, params)
    answers: dict[str, list[str]] = {}
    chosen = B2T25_SESSIONS[:sessions]
    for index, name in enumerate(tqdm(chosen, desc="synth b2t25", unit="session",
                                      disable=not progress)):  # fmt: skip
        train_only = name in TRAIN_ONLY_SESSIONS
        n_val, n_test = (0, 0) if train_only else (val_per_session, test_per_session)
        for part in simulate_day(world, index, train_per_session, n_val, n_test, seed, params):
            labelled = part.split != HOLDOUT
            write_split_file(root / name / SPLIT_FILES[part.split], part, labelled)
            if not labelled:
                answers[name] = part.texts
                write_json(out_dir / ANSWERS_FILE, answers)
    if not answers:
        write_json(out_dir / ANSWERS_FILE, answers)
    return root
