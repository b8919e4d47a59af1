from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from brain2text.data.b2t25 import (
    N_FEATURES_B2T25,
    SPLIT_FILES,
    b2t25_sessions,
    detect_layout,
    read_b2t25_file,
)
from brain2text.errors import DataError

SESSION = "t15.2023.08.11"


def trial(
    t: int = 20,
    ids: tuple[int, ...] = (5, 12, 40),
    sentence: Any = "hello world",
    block: int = 1,
    number: int = 0,
    labelled: bool = True,
    **changes: Any,
) -> dict:
    """One trial group's content; ``changes`` replace entries, a value None removes one."""
    rng = np.random.default_rng(t + number)
    out: dict[str, Any] = {
        "input_features": rng.random((t, N_FEATURES_B2T25), dtype=np.float32),
        "n_time_steps": t,
        "session": SESSION,
        "block_num": block,
        "trial_num": number,
    }
    if labelled:
        padded = np.zeros(500, dtype=np.int32)
        padded[: len(ids)] = ids
        text = "hello world"
        out.update(
            seq_class_ids=padded,
            seq_len=len(ids),
            sentence_label=sentence,
            transcription=np.array([ord(c) for c in text] + [0] * 5, dtype=np.int32),
        )
    out.update(changes)
    return {k: v for k, v in out.items() if v is not None}


def write(path: Path, trials: dict[str, dict] | list[dict]) -> Path:
    """An HDF5 file with one group per trial (datasets for arrays, attributes otherwise)."""
    if isinstance(trials, list):
        trials = {f"trial_{i:04d}": t for i, t in enumerate(trials)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for name, content in trials.items():
            group = f.create_group(name)
            for key, value in content.items():
                if key in ("input_features", "seq_class_ids", "transcription"):
                    group.create_dataset(key, data=value)
                else:
                    group.attrs[key] = value
    return path


def session_file(
    root: Path, split: str = "train", session: str = SESSION, trials: dict | list | None = None
) -> Path:
    if trials is None:
        trials = [trial(number=i, labelled=split != "test") for i in range(2)]
    return write(root / session / SPLIT_FILES[split], trials)


def raises_for(path: Path, split: str = "train", group: str | None = None) -> str:
    """Read ``path``; expect a one-line DataError naming the file (and group); return it."""
    with pytest.raises(DataError) as info:
        read_b2t25_file(path, split)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    if group is not None:
        assert f"{path} {group}:" in message
    return message


# --- reading ------------------------------------------------------------------------------


def test_reads_a_labelled_file(tmp_path):
    trials = [
        trial(t=20, ids=(3, 40), number=7, block=2),
        trial(t=13, ids=(1, 39, 40, 2), sentence=b"bytes label ", number=8, block=3),
        trial(t=5, sentence=np.bytes_(b"fixed bytes"), number=9, block=3),
        trial(
            t=6, sentence=np.array(["in an array"], dtype=h5py.string_dtype()), number=10, block=4
        ),
    ]
    path = session_file(tmp_path, "train", trials=trials)

    got = read_b2t25_file(path, "train")

    assert got.session == SESSION and got.split == "train" and got.path == path
    assert got.labelled and got.n_trials == 4
    assert [x.shape for x in got.features] == [(20, 512), (13, 512), (5, 512), (6, 512)]
    assert all(x.dtype == np.float32 for x in got.features)
    np.testing.assert_array_equal(got.features[1], trials[1]["input_features"])
    assert got.phoneme_ids is not None
    assert [p.tolist() for p in got.phoneme_ids] == [
        [3, 40],
        [1, 39, 40, 2],
        [5, 12, 40],
        [5, 12, 40],
    ]
    assert all(p.dtype == np.int64 for p in got.phoneme_ids)
    assert got.sentences == ["hello world", "bytes label", "fixed bytes", "in an array"]
    assert got.block_num.dtype == np.int64 and got.block_num.tolist() == [2, 3, 3, 4]
    assert got.trial_num.dtype == np.int64 and got.trial_num.tolist() == [7, 8, 9, 10]
    assert got.where() == str(path)
    assert got.where(1) == f"{path} trial_0001" == got.where("trial_0001")


def test_reads_a_test_file_unlabelled(tmp_path):
    path = session_file(tmp_path, "test")  # no seq_class_ids, seq_len, sentence_label
    got = read_b2t25_file(path, "test")
    assert not got.labelled and got.phoneme_ids is None
    assert got.sentences == ["", ""] and got.n_trials == 2


def test_a_test_file_with_labels_is_read_unlabelled(tmp_path):
    path = session_file(tmp_path, "test", trials=[trial(), trial(ids=(0, 99))])
    got = read_b2t25_file(path, "test")
    assert got.phoneme_ids is None and got.sentences == ["", ""]


def test_trials_come_in_numeric_order(tmp_path):
    names = [f"trial_{i:04d}" for i in range(12)] + ["trial_10000", "trial_9999"]
    path = write(
        tmp_path / SESSION / "data_val.hdf5",
        {name: trial(number=int(name[6:])) for name in reversed(names)},
    )
    got = read_b2t25_file(path, "val")
    order = got.trial_num.tolist()
    assert order == list(range(12)) + [9999, 10000]
    assert order.index(10) == order.index(9) + 1
    assert got.groups[-2:] == ["trial_9999", "trial_10000"]


def test_n_time_steps_is_optional(tmp_path):
    path = session_file(tmp_path, trials=[trial(n_time_steps=None)])
    assert read_b2t25_file(path, "train").features[0].shape == (20, 512)


def test_unknown_split_is_a_programming_error(tmp_path):
    with pytest.raises(ValueError, match="unknown split"):
        read_b2t25_file(session_file(tmp_path), "holdout")


# --- reading errors -----------------------------------------------------------------------

NAN_FEATURES = np.zeros((20, 512), dtype=np.float32)
NAN_FEATURES[3, 7] = np.nan
NAN_FEATURES[4, 8] = np.inf

TRIAL_ERRORS = {
    "no features": (dict(input_features=None), "no input_features dataset"),
    "features 1-D": (dict(input_features=np.zeros(20, np.float32)), "expected a T x 512"),
    "features 3-D": (dict(input_features=np.zeros((2, 20, 512), np.float32)), "T x 512"),
    "width 256": (dict(input_features=np.zeros((20, 256), np.float32)), "20 x 256"),
    "no bins": (
        dict(input_features=np.zeros((0, 512), np.float32), n_time_steps=0),
        "no time bins",
    ),
    "n_time_steps": (dict(n_time_steps=21), "n_time_steps is 21 but input_features has 20"),
    "non-finite": (dict(input_features=NAN_FEATURES), "holds 2 NaN/Inf values"),
    "no ids": (dict(seq_class_ids=None), "no seq_class_ids dataset in a labelled file"),
    "no seq_len": (dict(seq_len=None), "no seq_len attribute"),
    "no sentence": (dict(sentence_label=None), "no sentence_label attribute"),
    "seq_len long": (dict(seq_len=501), "seq_len is 501 but seq_class_ids has 500"),
    "seq_len 0": (dict(seq_len=0), "seq_len is 0, expected at least 1"),
    "id 41": (dict(ids=(3, 41)), "holds 41, outside 0..40"),
    "id -1": (dict(ids=(3, -1)), "holds -1, outside 0..40"),
    "blank inside": (dict(ids=(3, 0, 5)), "blank (0) at position 1"),
    "ids float": (dict(seq_class_ids=np.ones(500)), "expected 1-D integers"),
    "no block_num": (dict(block_num=None), "no block_num attribute"),
    "trial_num text": (dict(trial_num="x"), "trial_num is a str"),
    "seq_len fraction": (dict(seq_len=1.5), "seq_len is 1.5, not a whole number"),
}


@pytest.mark.parametrize("case", TRIAL_ERRORS)
def test_trial_errors_name_file_and_group(tmp_path, case):
    changes, expected = TRIAL_ERRORS[case]
    path = session_file(tmp_path, trials=[trial(number=i) for i in range(3)] + [trial(**changes)])
    assert expected in raises_for(path, "train", group="trial_0003")


def test_a_test_file_needs_no_labels_but_its_features_are_checked(tmp_path):
    path = session_file(tmp_path, "test", trials=[trial(labelled=False, n_time_steps=3)])
    assert "n_time_steps is 3" in raises_for(path, "test", group="trial_0000")


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "not a readable HDF5 file"),
        (b"this is not hdf5 at all" * 100, "not a readable HDF5 file"),
    ],
)
def test_unreadable_files(tmp_path, content, expected):
    path = tmp_path / SESSION / "data_train.hdf5"
    path.parent.mkdir()
    path.write_bytes(content)
    assert expected in raises_for(path)


def test_truncated_file(tmp_path):
    path = session_file(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    message = raises_for(path)
    assert "HDF5" in message or "truncated" in message


def test_corrupt_data_inside_a_readable_file(tmp_path):
    path = tmp_path / SESSION / "data_train.hdf5"
    write(path, [trial()])
    with h5py.File(path, "a") as f:  # one gzip-compressed trial, then damage its bytes
        f.create_group("trial_0001").attrs.update(dict(block_num=1, trial_num=1))
        f["trial_0001"].create_dataset(
            "input_features", data=trial()["input_features"], compression="gzip", chunks=(20, 512)
        )
    with h5py.File(path, "r") as f:
        offset = f["trial_0001/input_features"].id.get_chunk_info(0).byte_offset
    data = bytearray(path.read_bytes())
    data[offset + 10 : offset + 200] = b"\xff" * 190
    path.write_bytes(bytes(data))
    assert "cannot read it" in raises_for(path, "test", group="trial_0001")


def test_missing_file(tmp_path):
    assert "no such file" in raises_for(tmp_path / SESSION / "data_train.hdf5")


@pytest.mark.parametrize(
    "groups, expected, group",
    [
        ({}, "no trial groups", None),
        ({"trial_0000": trial(), "extra": trial()}, "unexpected entry 'extra'", None),
        ({"trial_0000": trial(), "trial_0x": trial()}, "unexpected entry 'trial_0x'", None),
        ({"trial_0001": trial(), "trial_1": trial()}, "same trial number", "trial_1"),
    ],
)
def test_file_level_errors(tmp_path, groups, expected, group):
    path = write(tmp_path / SESSION / "data_train.hdf5", groups)
    assert expected in raises_for(path, group=group)


def test_a_trial_that_is_a_dataset(tmp_path):
    path = write(tmp_path / SESSION / "data_train.hdf5", [trial()])
    with h5py.File(path, "a") as f:
        f.create_dataset("trial_0001", data=np.zeros(3))
    assert "not a group" in raises_for(path, group="trial_0001")


# --- layout -------------------------------------------------------------------------------


def competition(raw: Path) -> Path:
    (raw / "train").mkdir(parents=True)
    (raw / "train" / "t12.2022.04.28.mat").write_bytes(b"")
    return raw


def b2t25(raw: Path) -> Path:
    root = raw / "hdf5_data_final"
    for split in ("train", "val", "test"):
        session_file(root, split, "t15.2023.08.13")
    session_file(root, "train", "t15.2023.08.11")
    return raw


def layout_error(raw: Path) -> str:
    with pytest.raises(DataError) as info:
        detect_layout(raw)
    message = str(info.value)
    assert "\n" not in message and str(raw) in message
    return message


def test_detects_competition_data(tmp_path):
    assert detect_layout(competition(tmp_path / "raw")) == "competitionData"


def test_detects_b2t25_from_the_parent_and_the_root(tmp_path):
    raw = b2t25(tmp_path / "raw")
    assert detect_layout(raw) == "b2t25"
    assert detect_layout(raw / "hdf5_data_final") == "b2t25"


def test_lists_sessions_in_date_order(tmp_path):
    raw = b2t25(tmp_path / "raw")
    (raw / "hdf5_data_final" / "t15.2023.08.13" / "notes.txt").write_text("ignored")
    root = raw / "hdf5_data_final"
    want = [
        ("t15.2023.08.11", {"train": root / "t15.2023.08.11" / "data_train.hdf5"}),
        (
            "t15.2023.08.13",
            {s: root / "t15.2023.08.13" / SPLIT_FILES[s] for s in ("train", "val", "test")},
        ),
    ]
    assert b2t25_sessions(raw) == want
    assert b2t25_sessions(root) == want
    assert list(b2t25_sessions(raw)[1][1]) == ["train", "val", "test"]


def test_sessions_of_a_competition_folder(tmp_path):
    raw = competition(tmp_path / "raw")
    with pytest.raises(DataError, match="competitionData layout, not B2T'25"):
        b2t25_sessions(raw)


def test_unknown_hdf5_in_a_session(tmp_path):
    raw = b2t25(tmp_path / "raw")
    odd = raw / "hdf5_data_final" / "t15.2023.08.11" / "data_holdout.hdf5"
    odd.write_bytes(b"")
    with pytest.raises(DataError) as info:
        b2t25_sessions(raw)
    assert str(odd) in str(info.value) and "unexpected HDF5 file" in str(info.value)


def test_no_such_folder(tmp_path):
    assert "no such folder" in layout_error(tmp_path / "missing")


@pytest.mark.parametrize("make", ["empty", "empty root", "other files"])
def test_neither_layout(tmp_path, make):
    raw = tmp_path / "raw"
    raw.mkdir()
    if make == "empty root":
        (raw / "hdf5_data_final").mkdir()
    if make == "other files":
        (raw / "train").mkdir()
        (raw / "train" / "readme.txt").write_text("x")
    message = layout_error(raw)
    assert "neither raw layout" in message
    assert "competitionData" in message and "B2T'25" in message and "t15." in message


def test_mixed_layouts(tmp_path):
    raw = b2t25(competition(tmp_path / "raw"))
    assert "mixed layouts" in layout_error(raw)


def test_mixed_layouts_without_the_root_folder(tmp_path):
    raw = competition(tmp_path / "raw")
    session_file(raw, "train")
    assert "mixed layouts" in layout_error(raw)


def test_empty_session_folder(tmp_path):
    raw = b2t25(tmp_path / "raw")
    empty = raw / "hdf5_data_final" / "t15.2023.09.01"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    message = layout_error(raw)
    assert f"{empty}:" in message and "no data_*.hdf5 files" in message
