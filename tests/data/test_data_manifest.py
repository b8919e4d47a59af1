"""The manifest and feature spec schema: files written by the first release load, and what is
written reads back the same."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from brain2text.data.feature_spec import STANDARD_2023, DayNorm, FeatureSpec
from brain2text.data.manifest import MANIFEST_FILE, read_manifest, write_manifest
from brain2text.errors import DataError
from tests.conftest import REPO

RELEASE1 = Path(__file__).parent / "fixtures" / "release1"  # written by the first release


def _folder(tmp_path: Path, manifest: Path) -> Path:
    folder = tmp_path / manifest.stem
    folder.mkdir()
    shutil.copy(manifest, folder / MANIFEST_FILE)
    return folder


def test_a_release1_2023_manifest_loads(tmp_path):
    m = read_manifest(REPO / "tests" / "fixtures" / "release1")
    assert m.kind == "competitionData" and m.n_features == 128 and m.format_version == 1
    assert m.features.fields == ("tx1",) and m.features.arrays == ("6v",)
    assert m.features.normalization == "block" and m.features.day_norm == {}
    assert m.days == ("t12.2022.04.28",)
    assert {k: s.n_trials for k, s in m.splits.items()} == {
        "train": 20,
        "test": 4,
        "competition": 2,
    }
    assert not m.splits["competition"].labelled
    assert m.phonemizer is not None and m.phonemizer.name == "cmu"
    assert m.phonemizer.lexicon_path is None and m.label_check is None


def test_a_release1_b2t25_manifest_loads_with_its_label_check(tmp_path):
    m = read_manifest(_folder(tmp_path, RELEASE1 / "b2t25_manifest.json"))
    assert m.kind == "b2t25" and m.n_features == 512
    assert m.features.normalization == "block" and len(m.features.feature_names) == 2
    assert m.features.arrays == ("ventral 6v", "area 4", "55b", "dorsal 6v")
    assert set(m.splits) == {"train", "val", "test"} and not m.splits["test"].labelled
    check = m.label_check
    assert check is not None and check.n_mismatched == 1 and check.n_checked > 1
    assert check.listed[0].trial == 0 and check.listed[0].sentence == "a different sentence"


def test_a_release1_reference_lexicon_manifest_loads(tmp_path):
    m = read_manifest(_folder(tmp_path, RELEASE1 / "reference_lexicon_manifest.json"))
    assert m.features.fields == ("tx1", "tx2") and m.features.arrays == ("6v", "44")
    assert m.n_features == 512
    assert m.phonemizer is not None and m.phonemizer.name == "reference"
    assert m.phonemizer.lexicon_path is not None
    assert m.phonemizer.lexicon_path.endswith("words.dict")
    assert isinstance(m.phonemizer.guessed, dict)


def test_a_release1_pickle_import_holds_the_standard_features(tmp_path):
    """Its manifest predates the feature keys: it describes the standard 2023 preparation."""
    m = read_manifest(_folder(tmp_path, RELEASE1 / "pickle_manifest.json"))
    assert m.imported_from == "ptDecoder_ctc pickle" and m.phonemizer is None
    assert m.features == replace(STANDARD_2023, feature_names=())
    assert m.splits["competition"].sessions["competition00"].day_index is None


@pytest.mark.parametrize(
    "fixture",
    ["b2t25_manifest.json", "reference_lexicon_manifest.json", "pickle_manifest.json"],
)
def test_what_is_read_is_written_back_the_same(tmp_path, fixture):
    m = read_manifest(_folder(tmp_path, RELEASE1 / fixture))
    out = tmp_path / "out"
    out.mkdir()
    write_manifest(out, m)
    assert read_manifest(out) == m
    written = json.loads((out / MANIFEST_FILE).read_text())
    old = json.loads((RELEASE1 / fixture).read_text())
    if m.imported_from is None:  # every key of a prepared manifest is kept as it was
        assert written == old
    else:  # a pickle import gains the feature keys it lacked
        assert {k: v for k, v in written.items() if k in old} == old


def test_the_feature_spec_round_trips_through_a_checkpoint_dict():
    spec = replace(
        STANDARD_2023,
        feature_names=("tx1 of area 6v (128 electrodes)", "spikePow of area 6v (128 electrodes)"),
        day_norm={"t12.2022.04.28": DayNorm(np.arange(256) / 7.0, np.full(256, 0.5))},
    )
    stored = json.loads(json.dumps(spec.to_dict()))  # as a checkpoint holds it
    assert list(stored) == [
        "kind",
        "n_features",
        "fields",
        "arrays",
        "normalization",
        "feature_names",
        "day_norm",
    ]
    again = FeatureSpec.from_dict(stored)
    assert again == spec and again.day_norm["t12.2022.04.28"].mean.dtype == np.float64
    assert again != replace(spec, day_norm={})


def test_an_old_checkpoint_spec_without_newer_keys_is_the_standard_one():
    assert FeatureSpec.from_dict({"kind": "competitionData", "n_features": 256}) == STANDARD_2023


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"kind": "b2t24"}, "'kind' is 'b2t24', expected one of competitionData, b2t25"),
        ({"n_features": 0}, "malformed 'n_features' 0"),
        ({"fields": "tx1"}, "'fields' must be a list of names"),
        ({"day_norm": {"d": {"mean": [0.0]}}}, "'day_norm.d' must hold 'mean' and 'std'"),
    ],
)
def test_a_malformed_feature_spec_is_one_line_naming_it(change, expected):
    with pytest.raises(DataError) as info:
        FeatureSpec.from_dict({**STANDARD_2023.to_dict(), **change}, "run/best.pt: its features")
    assert str(info.value).startswith("run/best.pt: its features: ") and expected in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"normalization": "median"}, "'normalization' is 'median'"),
        ({"splits": {"train": {"labelled": "yes", "sessions": {}}}}, "'splits.train.labelled'"),
        ({"splits": {"dev": {"labelled": True, "sessions": {}}}}, "unknown split 'dev'"),
        ({"label_check": {"n_checked": 3}}, "'label_check.n_mismatched'"),
    ],
)
def test_a_malformed_manifest_is_one_line_naming_the_key(tmp_path, change, expected):
    old = json.loads((RELEASE1 / "b2t25_manifest.json").read_text())
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({**old, **change}))
    with pytest.raises(DataError) as info:
        read_manifest(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / MANIFEST_FILE}: ")
    assert expected in str(info.value) and "\n" not in str(info.value)
