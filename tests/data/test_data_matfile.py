from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from brain2text.data.matfile import read_session, trial_problem
from brain2text.errors import DataError


def raises_for(path: Path, trial: int | None = None, **kwargs) -> str:
    """Read ``path``; expect a one-line DataError naming the file (and trial); return it."""
    with pytest.raises(DataError) as info:
        read_session(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert path.name in message
    if trial is not None:
        assert f"trial {trial}" in message
    return message


@pytest.mark.parametrize("writer", ["v5", "v73"])
def test_reads_the_fields_of_both_formats(tmp_path, mk, writer):
    day = mk.day(lengths=[7, 1, 12, 9, 8])
    path = getattr(mk, writer)(tmp_path / "t12.2022.04.28.mat", day)

    session = read_session(path)

    assert session.name == "t12.2022.04.28" and session.path == path
    assert session.sentences == [s.strip() for s in day.sentences]
    assert session.n_trials == 5
    for got, want in zip(session.tx1 + session.spike_pow, day.tx1 + day.spike_pow, strict=True):
        assert got.shape == want.shape  # (T, 256) even for a 1-bin trial
        np.testing.assert_array_equal(got, want)
    assert session.block_idx.dtype == np.int64
    assert session.block_idx.tolist() == [1, 1, 2, 2, 2]


@pytest.mark.parametrize("writer", ["v5", "v73"])
def test_unlabelled_file_may_lack_sentences(tmp_path, mk, writer):
    day = mk.day(blocks=(1, 1))
    day.omit.add("sentenceText")
    path = getattr(mk, writer)(tmp_path / "t12.2022.05.05.mat", day)

    session = read_session(path, labelled=False)

    assert session.sentences == ["", ""] and not session.labelled
    assert "sentenceText" in raises_for(path)  # a labelled file needs it


def test_missing_file(tmp_path):
    raises_for(tmp_path / "t12.2022.04.28.mat")


@pytest.mark.parametrize("writer", ["v5", "v73"])
def test_truncated_file(tmp_path, mk, writer):
    path = getattr(mk, writer)(tmp_path / "t12.2022.04.28.mat", mk.day())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "truncated" in raises_for(path)


def test_not_a_mat_file(tmp_path):
    path = tmp_path / "t12.2022.04.28.mat"
    path.write_bytes(b"this is not a MATLAB file at all" * 20)
    raises_for(path)


@pytest.mark.parametrize("writer", ["v5", "v73"])
def test_missing_field(tmp_path, mk, writer):
    day = mk.day()
    day.omit.add("spikePow")
    path = getattr(mk, writer)(tmp_path / "t12.2022.04.28.mat", day)
    assert "spikePow" in raises_for(path)


@pytest.mark.parametrize("writer", ["v5", "v73"])
def test_wrong_width(tmp_path, mk, writer):
    day = mk.day()
    day.tx1[2] = day.tx1[2][:, :128]
    path = getattr(mk, writer)(tmp_path / "t12.2022.04.28.mat", day)
    message = raises_for(path, trial=2)
    assert "tx1" in message and "128" in message
    raises_for(path, trial=2, check_trials=False)  # a shape error is never skippable


def test_lengths_differ_within_a_trial(tmp_path, mk):
    day = mk.day()
    day.spike_pow[1] = day.spike_pow[1][:-1]
    path = mk.v5(tmp_path / "t12.2022.04.28.mat", day)
    assert "spikePow" in raises_for(path, trial=1)


def test_trial_counts_differ_between_fields(tmp_path, mk):
    day = mk.day()
    day.blocks = day.blocks[:-1]
    path = mk.v5(tmp_path / "t12.2022.04.28.mat", day)
    message = raises_for(path)
    assert "blockIdx 4" in message and "tx1 5" in message


@pytest.mark.parametrize("field, value", [("tx1", np.nan), ("spike_pow", np.inf)])
@pytest.mark.parametrize("writer", ["v5", "v73"])
def test_non_finite_features(tmp_path, mk, writer, field, value):
    day = mk.day()
    getattr(day, field)[3][4, 100] = value
    path = getattr(mk, writer)(tmp_path / "t12.2022.04.28.mat", day)
    assert "NaN/Inf" in raises_for(path, trial=3)


def test_empty_sentence_in_labelled_file(tmp_path, mk):
    day = mk.day()
    day.sentences[2] = "   "
    path = mk.v5(tmp_path / "t12.2022.04.28.mat", day)
    assert "empty sentenceText" in raises_for(path, trial=2)
    assert read_session(path, labelled=False).n_trials == 5  # fine when unlabelled


@pytest.mark.parametrize("shape", [(0, 256), (0, 0)])
@pytest.mark.parametrize("writer", ["v5", "v73"])
def test_trial_without_bins(tmp_path, mk, writer, shape):
    day = mk.day()
    day.tx1[4] = np.zeros(shape)
    day.spike_pow[4] = np.zeros(shape)
    path = getattr(mk, writer)(tmp_path / "t12.2022.04.28.mat", day)
    assert "no time bins" in raises_for(path, trial=4)


def test_unchecked_read_reports_trial_problems(tmp_path, mk):
    day = mk.day()
    day.tx1[0][0, 0] = np.nan
    day.sentences[3] = ""
    path = mk.v5(tmp_path / "t12.2022.04.28.mat", day)

    session = read_session(path, check_trials=False)

    problems = [trial_problem(session, i) for i in range(session.n_trials)]
    assert [p is not None for p in problems] == [True, False, False, True, False]
