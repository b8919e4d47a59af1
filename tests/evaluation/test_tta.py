"""Test-time adaptation (DietCORP's step per trial): only the chosen parameters move, every
weight comes back bit for bit after each trial, lr 0 decodes as the plain evaluation, a model
without the chosen parameters is a one-line error, and ``evaluate --tta`` from the CLI."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from brain2text import Decoder
from brain2text.cli import main
from brain2text.config import RunConfig, TtaConfig, load_run
from brain2text.errors import ConfigError
from brain2text.evaluation.evaluate import decode_target, load_target
from brain2text.evaluation.scoring import decode_split
from brain2text.evaluation.summary import read_summary
from brain2text.evaluation.tta import (
    TrialAdapter,
    chosen_parameters,
    masked_copies,
    pseudo_labels,
    resolve_tta,
    trial_seed,
)
from brain2text.model.factory import new_model
from brain2text.training.loop import train
from tests.conftest import RUNS, tiny_overrides

TINY_TRANSFORMER = {"kind": "transformer", "d_model": 16, "n_heads": 2, "n_layers": 1}
TINY = TtaConfig(copies=4, lr=0.05, mask_count=3, mask_max_fraction=0.1)


def _model(day_layers="per_day", mask_token=False, **model):
    config = RunConfig.model_validate(
        {
            "name": "t",
            "model": {
                "n_units": 8,
                "n_layers": 1,
                "kernel_len": 4,
                "stride_len": 4,
                "day_layers": day_layers,
                **model,
            },
            "augment": {"time_masks": {"fill": "learned"}} if mask_token else {},
        }
    )
    torch.manual_seed(0)
    return new_model(config, n_days=2, n_features=8).eval()


def _trial(n_bins=48, day=1):
    x = torch.randn(1, n_bins, 8, generator=torch.Generator().manual_seed(1))
    return x, torch.tensor([day]), torch.tensor([n_bins])


@pytest.mark.parametrize(
    ("model_options", "choice", "expected"),
    [
        ({}, "auto", {"day_weights", "day_biases"}),
        ({}, "gru_input", {"gru.weight_ih_l0", "gru.bias_ih_l0"}),
        ({"day_layers": "none"}, "auto", {"gru.weight_ih_l0", "gru.bias_ih_l0"}),
        (
            {"bidirectional": True},
            "gru_input",
            {
                "gru.weight_ih_l0",
                "gru.bias_ih_l0",
                "gru.weight_ih_l0_reverse",
                "gru.bias_ih_l0_reverse",
            },
        ),
        ({"mask_token": True}, "day_layer", {"day_weights", "day_biases"}),
        (
            TINY_TRANSFORMER | {"day_layers": "none"},
            "auto",
            {
                f"{m}.{w}"
                for m in ("patch_norm", "patch_embedding", "embedding_norm")
                for w in ("weight", "bias")
            },
        ),
        (TINY_TRANSFORMER | {"day_layers": "shared"}, "day_layer", {"day_weights", "day_biases"}),
    ],
)
def test_only_the_chosen_parameters_move_and_all_come_back_bit_for_bit(
    model_options, choice, expected
):
    model = _model(**model_options)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    adapter = TrialAdapter(model, TINY.model_copy(update={"parameters": choice}))
    assert set(adapter.parameter_names) == expected
    features, day, n_bins = _trial()
    with adapter.adapted(features, day, n_bins, seed=3) as step:
        assert not model.training and len(step.losses) == 1 and np.isfinite(step.losses[0])
        changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
        assert changed and changed <= expected, changed
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]), n  # bit for bit
        assert p.requires_grad == flags[n]
    assert not model.training
    model.train()  # the mode it was in comes back too
    with adapter.adapted(features, day, n_bins, seed=3):
        assert not model.training
    assert model.training


def test_restored_even_when_the_decoding_fails():
    model = _model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    adapter = TrialAdapter(model, TINY)
    with pytest.raises(RuntimeError, match="boom"), adapter.adapted(*_trial(), seed=0):
        raise RuntimeError("boom")
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


@pytest.mark.parametrize(
    ("model_options", "choice", "message"),
    [
        (
            {},
            "patch_embedding",
            "tta.parameters=patch_embedding: a gru model has no patch "
            "embedding; choose day_layer or gru_input",
        ),
        (
            TINY_TRANSFORMER | {"day_layers": "none"},
            "day_layer",
            "tta.parameters=day_layer: a transformer model has no day layer (model.day_layers: "
            "none); choose patch_embedding",
        ),
        (
            TINY_TRANSFORMER,
            "gru_input",
            "tta.parameters=gru_input: a transformer model has no GRU layer",
        ),
        (
            {"day_layers": "none"},
            "day_layer",
            "tta.parameters=day_layer: a gru model has no day "
            "layer (model.day_layers: none); choose day_layer or gru_input",
        ),
    ],
)
def test_a_model_without_the_chosen_parameters_is_a_one_line_error(model_options, choice, message):
    model = _model(**model_options)
    with pytest.raises(ConfigError) as caught:
        chosen_parameters(model, choice)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_masked_copies_mask_inside_the_trial_and_differ():
    x = torch.ones(1, 60, 3)
    config = TtaConfig(copies=5, mask_count=4, mask_max_fraction=0.05)
    copies, masks = masked_copies(x, 50, config, torch.Generator().manual_seed(0))
    assert copies.shape == (5, 60, 3) and masks.shape == (5, 60)
    assert not masks[:, 50:].any() and masks.any(dim=1).all()
    assert masks.sum(dim=1).max() <= 4 * 2  # 4 spans of at most floor(0.05 * 50) = 2 bins
    assert (copies[masks] == 0).all() and not (copies[~masks] == 0).any()
    assert not torch.equal(copies[0], copies[1])  # each copy its own noise
    quiet = config.model_copy(update={"white_noise_sd": 0.0, "constant_offset_sd": 0.0})
    kept, masks = masked_copies(x, 50, quiet, torch.Generator().manual_seed(0), zero_masked=False)
    assert torch.equal(kept, x.expand(5, -1, -1)) and masks.any()  # for the learned token
    none = config.model_copy(update={"mask_count": 0})
    assert not masked_copies(x, 50, none, torch.Generator().manual_seed(0))[1].any()
    a = masked_copies(x, 50, config, torch.Generator().manual_seed(trial_seed(0, 7)))[0]
    b = masked_copies(x, 50, config, torch.Generator().manual_seed(trial_seed(0, 7)))[0]
    assert torch.equal(a, b) and trial_seed(0, 7) != trial_seed(0, 8)


def test_the_pseudo_label_is_the_greedy_path():
    logits = torch.full((1, 6, 41), -5.0)
    for t, k in enumerate([0, 3, 3, 0, 3, 40]):
        logits[0, t, k] = 5.0
    labels, n = pseudo_labels(logits, torch.tensor([6]))
    assert labels.tolist() == [[3, 3, 40]] and n == 3
    labels, n = pseudo_labels(logits, torch.tensor([1]))  # all blank: an empty label
    assert labels.shape == (1, 0) and n == 0
    model = _model()  # an empty label still gives a finite step
    with TrialAdapter(model, TINY).adapted(*_trial(n_bins=8), seed=0) as step:
        assert np.isfinite(step.losses).all()


def test_settings_come_from_the_run_with_changes():
    run = RunConfig.model_validate({"name": "r", "tta": {"copies": 8}})
    assert resolve_tta(run, None) is None and resolve_tta(run, False) is None
    assert resolve_tta(run, True) == run.tta
    changed = resolve_tta(run, ["lr=0", "tta.steps=2"])
    assert changed is not None and (changed.copies, changed.lr, changed.steps) == (8, 0.0, 2)
    for bad, message in [
        (["lr=-1"], "tta.lr"),
        (["nope=1"], "tta.nope: unknown key"),
        (["parameters=everything"], "tta.parameters"),
        (["train.n_batch=3"], "--tta-set train.n_batch=3: give a key of the tta section"),
    ]:
        with pytest.raises(ConfigError, match=message):
            resolve_tta(run, bad)


@pytest.fixture(scope="module")
def tiny_run(prepared_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("tta")
    config = load_run(RUNS / "run13_cpu_demo.yaml", tiny_overrides(prepared_dir))
    train(config, root / "run", quiet=True)
    return root / "run"


def test_lr_0_decodes_exactly_as_the_plain_evaluation(tiny_run):
    target = load_target(tiny_run, "test", device_name="cpu")
    target = replace(target, indices=target.indices[:6])
    plain = decode_split(
        target.model, target.split, target.indices, target.device, 1, keep_log_probs=True
    )
    adapter = target.adapter(["lr=0", "copies=4"])
    adapted = decode_target(target, keep_log_probs=True, adapter=adapter)
    assert all(
        np.array_equal(a, b) for a, b in zip(adapted.log_probs, plain.log_probs, strict=True)
    )
    assert all(
        np.array_equal(a, b) for a, b in zip(adapted.hypotheses, plain.hypotheses, strict=True)
    )
    assert np.array_equal(adapted.losses, plain.losses)
    moved = decode_target(
        target, keep_log_probs=True, adapter=target.adapter(["copies=4", "lr=0.05"])
    )
    assert not all(
        np.array_equal(a, b) for a, b in zip(moved.log_probs, plain.log_probs, strict=True)
    )


def test_the_decoder_adapts_each_trial_and_keeps_its_weights(tiny_run, prepared_dir):
    from brain2text.data.dataset import open_prepared

    split = open_prepared(prepared_dir).split("test")
    trials = [(split.features(i), split.session_of(i)) for i in range(3)]
    plain = Decoder.load(tiny_run)
    still = Decoder.load(tiny_run, tta=["lr=0", "copies=4"])
    moving = Decoder.load(tiny_run, tta=TtaConfig(copies=4, lr=0.05))
    before = {n: p.detach().clone() for n, p in moving.model.named_parameters()}
    for k, trial in enumerate(trials):
        alone = plain.decode_batch([trial])[0]
        assert np.array_equal(still.decode_batch([trial])[0].logits, alone.logits)
        assert not np.array_equal(moving.decode_batch(trials)[k].logits, alone.logits)
    assert all(torch.equal(p, before[n]) for n, p in moving.model.named_parameters())
    with pytest.raises(ConfigError, match="tta.parameters=patch_embedding: a gru model"):
        Decoder.load(tiny_run, tta=["parameters=patch_embedding"])


@pytest.mark.slow
def test_evaluate_tta_from_the_command_line(tiny_run, capsys):
    run = str(tiny_run)
    assert main(["evaluate", run, "--split", "val"]) == 0
    assert (
        main(
            [
                "evaluate",
                run,
                "--split",
                "val",
                "--tta",
                "--tta-set",
                "lr=0",
                "--tta-set",
                "copies=4",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "test-time adaptation: 4 masked copies, 1 step(s) at lr 0 on day_weights" in printed
    plain, adapted = tiny_run / "eval" / "val", tiny_run / "eval" / "val-tta"
    assert f"files in {adapted}" in printed
    summary = read_summary(adapted)
    assert summary.tta is not None and summary.tta["copies"] == 4 and summary.tta["lr"] == 0
    assert summary.tta["parameter_names"] == ["day_weights", "day_biases"]
    assert read_summary(plain).tta is None and summary.per == read_summary(plain).per
    rows = [json.loads(line) for line in (adapted / "hypotheses.jsonl").read_text().splitlines()]
    assert rows == [
        json.loads(line) for line in (plain / "hypotheses.jsonl").read_text().splitlines()
    ]

    assert main(["evaluate", run, "--split", "val", "--tta", "--tta-set", "copies=4"]) == 0
    assert read_summary(adapted).tta["lr"] == TtaConfig().lr  # the run's section: defaults
    for argv, message in [
        (["--tta-set", "lr=0"], "--tta-set changes a setting of --tta: add --tta"),
        (["--tta", "--ensemble"], "--tta adapts one run's weights"),
        (
            ["--tta", "--tta-set", "parameters=patch_embedding"],
            "tta.parameters=patch_embedding: a gru model has no patch embedding",
        ),
        (["--tta", "--tta-set", "copies=0"], "tta.copies"),
    ]:
        assert main(["evaluate", run, "--split", "test", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (tiny_run / "eval" / "test-tta").exists()


@pytest.mark.slow
def test_evaluate_tta_with_words(tiny_run, prepared_dir, tmp_path, capsys):
    pytest.importorskip("flashlight.lib.text.decoder", reason="the lm extra is not installed")
    from brain2text.data.dataset import open_prepared
    from brain2text.decoding.lm import build_lm

    train_split = open_prepared(prepared_dir).split("train")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(train_split.text(i) + "\n" for i in range(len(train_split))))
    build_lm(corpus, tmp_path / "lm")
    argv = ["evaluate", str(tiny_run), "--lm", str(tmp_path / "lm"), "--split", "val"]
    assert main([*argv, "--tta", "--tta-set", "copies=4"]) == 0
    assert f"files in {tiny_run / 'eval' / 'val-tta-lm'}" in capsys.readouterr().out
    summary = read_summary(tiny_run / "eval" / "val-tta-lm")
    assert summary.tta is not None and summary.wer is not None and summary.lm is not None


@pytest.mark.slow
def test_a_transformer_adapts_its_patch_embedding(prepared_dir, tmp_path, capsys):
    options = {
        "model.kind": "transformer",
        "model.d_model": 16,
        "model.n_heads": 2,
        "model.day_layers": "none",
        "model.kernel_len": 4,
        "model.stride_len": 4,
    }
    config = load_run(RUNS / "run13_cpu_demo.yaml", tiny_overrides(prepared_dir, **options))
    train(config, tmp_path / "run", quiet=True)
    assert main(["evaluate", str(tmp_path / "run"), "--tta", "--tta-set", "copies=4"]) == 0
    assert "on patch_norm.weight, patch_norm.bias, patch_embedding.weight" in (
        capsys.readouterr().out
    )
    tta = read_summary(tmp_path / "run" / "eval" / "test-tta").tta
    assert tta is not None and tta["parameters"] == "auto" and len(tta["parameter_names"]) == 6
