"""Files written by the first release still load: its checkpoint, manifest and summary."""

import shutil
from pathlib import Path

import numpy as np
import torch

from brain2text.data.manifest import read_manifest
from brain2text.evaluation.summary import EvalSummary, read_summary, summary_text
from brain2text.inference.decoder import Decoder
from brain2text.model.loading import load_model
from brain2text.runs.checkpoint import load_checkpoint, save_checkpoint
from brain2text.training.state import LatestEval

RELEASE1 = Path(__file__).resolve().parents[1] / "fixtures" / "release1"
DAY = "t12.2022.04.28"


def test_a_release1_checkpoint_loads_with_its_evaluation_and_features(tmp_path):
    checkpoint = load_checkpoint(RELEASE1 / "best.pt")
    assert checkpoint.format_version == 1
    assert checkpoint.step == 19 and checkpoint.days == [DAY]
    assert checkpoint.config["model"]["n_units"] == 8
    assert checkpoint.features["kind"] == "competitionData"
    assert checkpoint.features["n_features"] == 128
    assert checkpoint.ema is None and checkpoint.optimizer is None and checkpoint.resume is None
    latest = LatestEval.from_entries(checkpoint.evaluations)
    assert latest.raw is not None and latest.raw.step == 19 and latest.raw.split == "val"
    assert 0 < latest.raw.score.per < 2 and latest.ema is None
    save_checkpoint(tmp_path / "again.pt", checkpoint)  # written again in today's format
    again = load_checkpoint(tmp_path / "again.pt")
    assert again.format_version == 2
    assert again.evaluations == checkpoint.evaluations and again.features == checkpoint.features
    assert all(torch.equal(again.model[k], v) for k, v in checkpoint.model.items())


def test_a_release1_model_decodes_as_that_release_did(tmp_path):
    loaded = load_model(RELEASE1 / "best.pt", torch.device("cpu"))
    assert loaded.model.n_features == 128 and loaded.model.n_days == 1
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(RELEASE1 / "best.pt", run / "checkpoints" / "best.pt")
    decoder = Decoder.load(run)
    assert decoder.feature_spec.kind == "competitionData" and decoder.feature_spec.fields == (
        "tx1",
    )
    x = np.random.default_rng(0).standard_normal((40, 128)).astype(np.float32)
    out = decoder.decode(x, day=DAY)
    # what the first release's Decoder gave for this input
    assert out.logits.shape == (40, 41) and out.phoneme_ids == (34,)
    expected = np.array(
        [
            [0.275786, -0.029756, 0.074155, -0.354172, -0.122718, 0.032432],
            [1.594024, 0.1454, -0.698073, -1.101104, -0.526397, -0.279043],
            [1.500579, -0.189633, -0.473007, -1.046373, -0.2626, -0.449744],
        ],
        dtype=np.float32,
    )
    np.testing.assert_allclose(out.logits[[0, 20, 39], :6], expected, atol=2e-5)


def test_a_release1_summary_reads_and_writes_back_the_same_figures():
    summary = read_summary(RELEASE1)
    assert isinstance(summary, EvalSummary) and summary.format_version == 1
    assert summary.split == "test" and summary.labelled and summary.n_sentences == 4
    assert summary.checkpoint_step == 19 and summary.edit_distance == 160
    assert summary.n_phonemes == 173 and summary.per == 160 / 173
    assert summary.per_day == {DAY: 160 / 173} and summary.wer is None and not summary.words
    import json

    old = json.loads((RELEASE1 / "summary.json").read_text())
    assert json.loads(summary_text(summary)) == {**old, "format_version": 1}


def test_a_release1_manifest_reads():
    manifest = read_manifest(RELEASE1)
    assert manifest.days == (DAY,) and manifest.kind == "competitionData"
    assert manifest.n_features == 128 and manifest.features.fields == ("tx1",)
    assert manifest.phonemizer is not None and manifest.phonemizer.name == "cmu"
    assert manifest.splits["test"].n_trials == 4 and not manifest.splits["competition"].labelled
