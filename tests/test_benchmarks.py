"""The throughput benchmarks run both their modes on a tiny config and print a table that parses.
In-process (no subprocess per mode, to stay fast); no timing is asserted."""

import math
import sys

import numpy as np
import pytest

from brain2text.config import load_run
from brain2text.data.dataset import open_prepared
from brain2text.evaluation.metrics import edit_distance
from brain2text.training.rundata import load_run_data
from tests.conftest import REPO, RUNS, tiny_overrides

sys.path.insert(0, str(REPO / "benchmarks"))  # the scripts import their sibling _common
import _common  # noqa: E402
import eval_throughput  # noqa: E402
import train_throughput  # noqa: E402


def table_rows(text: str) -> dict[str, list[str]]:
    """Markdown table rows of the printed report, by first cell (the mode)."""
    rows = [
        [c.strip() for c in line.strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("| mode")
    ]
    return {row[0]: row[1:] for row in rows}


def figure(cell: str) -> float:
    return float(cell.split()[0].rstrip("%"))


def run_both_modes(benchmark, prepared_dir, *options: str) -> dict:
    """Both modes of ``benchmark`` run in this process on a tiny config; their results (the
    report is printed)."""
    args = benchmark.build_parser().parse_args(
        [
            str(RUNS / "run13_cpu_demo.yaml"),
            *tiny_overrides(prepared_dir),
            "--data",
            str(prepared_dir),
            *options,
        ]
    )
    results = {m: benchmark.measure(m, args) for m in benchmark.MODES}
    benchmark.print_report(args, results)
    return results


def test_train_throughput_both_modes(prepared_dir, capsys):
    results = run_both_modes(train_throughput, prepared_dir, "--batches", "2", "--warmup", "1")
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert set(rows) == {"naive", "fast"}
    for cells in rows.values():
        samples_per_s, s_per_batch, data_s, padded_bins, padding, rss = map(figure, cells[:6])
        assert all(math.isfinite(v) and v >= 0 for v in (samples_per_s, padded_bins, rss))
        assert samples_per_s > 0 and 0 <= data_s <= s_per_batch and 0 <= padding < 100
    assert results["naive"]["samples"] == results["fast"]["samples"] == 2 * 4
    assert "machine: " in out and "command: " in out and "fast / naive samples/s: " in out


def test_eval_throughput_both_modes_agree(prepared_dir, capsys):
    results = run_both_modes(eval_throughput, prepared_dir, "--passes", "1", "--warmup", "0")
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert set(rows) == {"naive", "fast"}
    assert rows["fast"][2] == "-"  # the Python loop's time: naive mode only
    for cells in rows.values():
        assert all(math.isfinite(figure(c)) for c in cells if c != "-")
    fast, naive = results["fast"], results["naive"]
    assert fast["sentences"] == naive["sentences"] > 0
    assert set(fast["hypotheses"]) == set(naive["hypotheses"])
    # same weights, same decoding rule, but padding differs (the bidirectional GRU is not
    # length-masked), so the modes' hypotheses may differ: each mode's PER and edit count must
    # be exactly those of its own hypotheses against the references
    config = load_run(RUNS / "run13_cpu_demo.yaml", tiny_overrides(prepared_dir))
    data = load_run_data(config)
    refs = {int(i): data.eval_split.phonemes(int(i)).tolist() for i in data.eval_idx}
    for mode in (fast, naive):
        assert set(mode["hypotheses"]) == set(refs)
        edits = sum(edit_distance(refs[i], h) for i, h in mode["hypotheses"].items())
        assert mode["edits"] == edits
        assert mode["per"] == edits / sum(len(r) for r in refs.values())
    assert "fast / naive sentences/s: " in out and "PER fast - naive: " in out


def test_naive_data_is_the_prepared_data_in_float64(prepared_dir):
    split = open_prepared(prepared_dir).split("train")
    idx = np.arange(len(split))[::-3]
    trials = _common.ReferenceTrials(prepared_dir, split, idx)
    for k, i in enumerate(idx):
        assert trials.features[k].dtype == np.float64
        np.testing.assert_array_equal(trials.features[k], split.features(int(i)))
    batch = _common.pad_to_longest([trials[k] for k in range(3)])
    assert batch.features.shape == (3, max(trials.n_bins[:3]), 256)
    assert batch.phonemes.shape == (3, _common.REFERENCE_PHONEME_PAD)


def test_fast_overrides_apply_to_the_fast_mode_only(prepared_dir):
    args = train_throughput.build_parser().parse_args(
        [
            str(RUNS / "run13_cpu_demo.yaml"),
            "--data",
            str(prepared_dir),
            "--fast",
            "train.use_amp=true",
            "train.length_bucket_pool=4",
        ]
    )
    fast, naive = (_common.load_config(args, mode) for mode in ("fast", "naive"))
    assert fast.train.use_amp and fast.train.length_bucket_pool == 4
    assert not naive.train.use_amp and naive.train.length_bucket_pool == 16
    assert _common.describe_fast_overrides(args) == (
        "fast mode also: train.use_amp=true train.length_bucket_pool=4"
    )


def test_quality_trains_every_recipe_and_its_seeds_and_scores_the_ensemble(
    prepared_dir, tmp_path, capsys
):
    import quality

    result = quality.main(
        [
            "--batches",
            "4",
            "--lrs",
            "0.004,0.006",
            "--data",
            str(prepared_dir),
            "--workspace",
            str(tmp_path / "q"),
            "--extra",
            "model.n_units=16",
            "model.n_layers=1",
            "model.kernel_len=8",
            "train.batch_size=4",
            "train.threads=1",
            "train.length_bucket_pool=1",
        ]
    )
    out = capsys.readouterr().out
    rows = {
        row[0]: row
        for row in (
            [c.strip() for c in line.strip("|").split("|")]
            for line in out.splitlines()
            if line.startswith("| ")
        )
    }
    names = {
        "baseline_cpu",
        "run13_cpu_demo",
        "run13_warmcos",
        "run16_5_ema_warmcos",
        "run13_cpu_demo max_lr=0.004",
        "run13_cpu_demo max_lr=0.006",
    }
    assert names | {result["best"] + " (best)"} >= {
        n for n in rows if "seed" not in n and "ensemble" not in n and n != "run"
    }
    assert sum("seed" in n and "ensemble" not in n for n in rows) == 2
    assert 0 <= result["ensemble"] and len(result["seed_tests"]) == 3
    assert result["spread"] == max(result["seed_tests"]) - min(result["seed_tests"])
    assert "spread (max - min)" in out and "ensemble vs best single seed" in out
    warm = load_run(tmp_path / "q" / "run16_5_ema_warmcos" / "config.yaml")
    assert warm.optim.warmup_batches == 1 and warm.train.ema_decay == 0.5  # scaled to 4 batches


def test_stream_latency_measures_both_runtimes_with_and_without_words(capsys):
    pytest.importorskip("onnxruntime", reason="the export extra is not installed")
    pytest.importorskip("flashlight.lib.text.decoder", reason="the lm extra is not installed")
    import stream_latency

    rows = stream_latency.main(
        [
            "--steps",
            "5",
            "--threads",
            "1",
            "--lm-sentences",
            "50",
            "--override",
            "model.n_units=8",
            "model.n_layers=1",
        ]
    )
    out = capsys.readouterr().out
    assert len(rows) == 2 * 5 and "p99 ms" in out
    assert {(r[1], r[2]) for r in rows if "whole" not in r[1]} == {
        ("torch", "no"),
        ("torch", "yes"),
        ("onnxruntime", "no"),
        ("onnxruntime", "yes"),
    }
    assert all(float(r[3]) > 0 for r in rows)


def test_train_long_run_times_the_first_and_last_quarter_of_each_run(
    prepared_dir, tmp_path, capsys
):
    import train_long_run

    args = train_long_run.build_parser().parse_args(
        [
            str(RUNS / "run16_5_ema_warmcos.yaml"),
            "model.n_units=16",
            "model.n_layers=1",
            "model.kernel_len=8",
            "--batches",
            "8",
            "--threads",
            "1",
            "--data",
            str(prepared_dir),
            "--workspace",
            str(tmp_path),
        ]
    )
    results = {m: train_long_run.measure(m, args) for m in train_long_run.MODES}
    train_long_run.print_report(args, results)
    rows = table_rows(capsys.readouterr().out.replace("| subnormals", "| mode"))
    assert set(rows) == {"flushed", "not flushed"}
    assert rows["flushed"][0] == "yes" and rows["not flushed"][0] == "no"
    for mode, r in results.items():
        assert r["batches"] == 8 and r["first_s"] > 0 and r["last_s"] > 0
        assert r["cpu"]["flush_denormals"] == (mode == "flushed")
        assert figure(rows[mode][4]) == pytest.approx(r["last_s"] / r["first_s"], abs=0.01)
    config = load_run(tmp_path / "flush-true" / "config.yaml")
    assert (config.model.n_units, config.train.batch_size, config.train.use_amp) == (16, 16, False)


def test_encoder_quality_trains_seeds_of_each_encoder_and_scores_them(
    prepared_dir, tmp_path, capsys
):
    import encoder_quality

    result = encoder_quality.main(
        [
            "--batches",
            "4",
            "--seeds",
            "2",
            "--only",
            "gru",
            "transformer (causal)",
            "--lm-sentences",
            "200",
            "--data",
            str(prepared_dir),
            "--workspace",
            str(tmp_path / "enc"),
            "--extra",
            "model.n_units=16",
            "model.n_layers=1",
            "model.kernel_len=8",
            "model.d_model=16",
            "model.n_heads=2",
            "train.batch_size=4",
            "train.threads=1",
            "train.length_bucket_pool=1",
            "tta.copies=2",
        ]
    )
    out = capsys.readouterr().out
    rows = [
        [c.strip() for c in line.strip("|").split("|")]
        for line in out.splitlines()
        if line.startswith("| ") and not line.startswith("| recipe")
    ]
    names = [row[0].removesuffix(" (best encoder)") for row in rows]
    best = next(n for n in ("gru", "transformer (causal)") if f"{n} (best encoder)" in out)
    assert names == ["gru", "transformer (causal)", f"{best} + diphones", f"{best} + TTA"]
    assert set(result) == set(names)
    for name in names:
        pers, wers = result[name]["test_per"], result[name]["test_wer"]
        assert len(pers) == len(wers) == 2  # one figure per seed
        assert all(0 <= v <= 2 for v in (*pers, *wers))
    # every seed trained into its own folder
    assert (tmp_path / "enc" / "gru-seed0").is_dir() and (tmp_path / "enc" / "gru-seed1").is_dir()
    assert "target" in out and (tmp_path / "enc" / "encoder_quality.json").is_file()
