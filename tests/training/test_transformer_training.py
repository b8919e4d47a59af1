"""A Transformer trains and evaluates from the CLI unchanged, on both data layouts: the 2023
.mat release and Brain-to-Text '25 HDF5 sessions, greedy and with an n-gram LM; its
checkpoint rebuilds the Transformer it was trained as."""

from __future__ import annotations

import json

import pytest
import torch

from brain2text.cli import main
from brain2text.data.dataset import open_prepared
from brain2text.evaluation.summary import read_summary
from brain2text.model.loading import checkpoint_path, load_model
from brain2text.model.transformer import TransformerDecoder

TINY = [
    "model.d_model=16",
    "model.n_heads=2",
    "model.n_layers=1",
    "train.batch_size=4",
    "train.n_batch=20",
    "train.eval_every=10",
    "train.threads=1",
    "train.length_bucket_pool=null",
]


@pytest.fixture(scope="module")
def b2t25_prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("b2t25_transformer")
    synth = ["synth", str(root / "raw"), "--layout", "b2t25", "--days", "2"]
    counts = ["--train-per-day", "10", "--test-per-day", "3", "--holdout-per-day", "2"]
    assert main([*synth, *counts, "--quiet"]) == 0
    assert main(["prepare", str(root / "raw"), str(root / "prep"), "--quiet"]) == 0
    return root / "prep"


def train_tiny(run_file: str, data, out, *extra: str) -> None:
    args = ["train", run_file, f"data.path={data}", *TINY, *extra, "--out", str(out), "--quiet"]
    assert main(args) == 0


def assert_a_transformer_was_trained(run, n_features: int) -> None:
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [m["train/loss"] for m in metrics if "train/loss" in m]
    assert len(losses) == 20 and all(torch.isfinite(torch.tensor(losses)))
    assert sum(1 for m in metrics if "val/per" in m) == 2
    loaded = load_model(checkpoint_path(run), torch.device("cpu"))
    assert isinstance(loaded.model, TransformerDecoder) and not loaded.model.training
    assert loaded.model.n_features == n_features and loaded.model.day_weights is None
    assert loaded.model.mask_token is not None  # time_masks.fill: learned


@pytest.mark.slow
def test_a_transformer_on_the_2023_layout_trains_and_evaluates(prepared_dir, tmp_path):
    run = tmp_path / "run"
    train_tiny("b2t24_transformer_cpu", prepared_dir, run)
    assert_a_transformer_was_trained(run, 256)
    assert main(["evaluate", str(run)]) == 0
    summary = read_summary(run / "eval" / "test")
    assert summary.n_sentences == len(open_prepared(prepared_dir).split("test"))
    assert summary.per is not None and 0.0 < summary.per < 1.5  # 20 batches: far from 0
    test = open_prepared(prepared_dir)
    assert set(summary.per_day or {}) == {test.days[d] for d in test.split("test").day_index}


@pytest.mark.slow
def test_a_bidirectional_transformer_with_day_layers_trains(prepared_dir, tmp_path):
    run = tmp_path / "run"
    extra = ["model.bidirectional=true", "model.left_context_s=null"]
    extra += ["model.left_context_train_s=null", "model.day_layers=per_day"]
    extra += ["model.position=sinusoidal"]
    train_tiny("b2t24_transformer_cpu", prepared_dir, run, *extra)
    loaded = load_model(checkpoint_path(run), torch.device("cpu"))
    assert loaded.model.config.bidirectional and loaded.model.day_weights is not None
    assert main(["evaluate", str(run), "--split", "val"]) == 0


@pytest.mark.slow
def test_a_transformer_on_b2t25_sessions_trains_and_evaluates(b2t25_prepared, tmp_path):
    run = tmp_path / "run"
    train_tiny("b2t25_transformer_cpu", b2t25_prepared, run)
    assert_a_transformer_was_trained(run, 512)
    assert main(["evaluate", str(run), "--split", "val"]) == 0
    summary = read_summary(run / "eval" / "val")
    assert summary.n_sentences == len(open_prepared(b2t25_prepared).split("val"))


@pytest.mark.slow
def test_a_transformer_decodes_words_with_an_lm(prepared_dir, tmp_path):
    pytest.importorskip("flashlight.lib.text.decoder", reason="the lm extra is not installed")
    from brain2text.decoding.lm import build_lm

    run = tmp_path / "run"
    train_tiny("b2t25_transformer_cpu", prepared_dir, run)
    train = open_prepared(prepared_dir).split("train")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(train.text(i) + "\n" for i in range(len(train))))
    build_lm(corpus, tmp_path / "lm")
    assert main(["evaluate", str(run), "--lm", str(tmp_path / "lm"), "--beam", "8"]) == 0
    summary = read_summary(run / "eval" / "test-lm")
    assert summary.wer is not None and summary.n_sentences == 15
