"""``brain2text demo``: its sizes as arguments, and a 2-day demo end to end."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from brain2text.cli import build_parser, main
from brain2text.decoding.lm import clean_words, split_sentences
from brain2text.demo import SYNTH_RECORD, DemoSizes, synthesise
from brain2text.evaluation.summary import read_summary

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
TINY_SIZES = [
    "--days", "2", "--train-per-day", "16", "--test-per-day", "4", "--holdout-per-day", "4",
    "--seed", "3", "--lm-sentences", "200", "--lm-weights", "1,2", "--word-scores=-1,0",
    "--beam", "8", "--show", "2",
]  # fmt: skip
TINY_RUN = [
    "model.n_units=16", "model.n_layers=1", "model.kernel_len=8", "train.batch_size=4",
    "train.n_batch=6", "train.eval_every=3", "train.threads=1",
]  # fmt: skip


def test_parser_defaults_are_the_demo_sizes():
    args = build_parser().parse_args(["demo"])
    defaults = DemoSizes()
    flags = {"beam_size": "beam", "shown": "show"}
    for field in dataclasses.fields(DemoSizes):
        given = getattr(args, flags.get(field.name, field.name))
        expected = getattr(defaults, field.name)
        if isinstance(expected, tuple):
            given = tuple(float(v) for v in given.split(","))
        assert given == expected, field.name


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--train-per-day", "5"], "--train-per-day must be at least 8"),
        (["--holdout-per-day", "0"], "--holdout-per-day must be at least 1"),
        (["--beam", "0"], "--beam must be at least 1"),
        (["--llm-nbest", "0"], "--llm-nbest must be at least 1"),
        (["--lm-weights", "1,x"], "--lm-weights 1,x: give comma-separated numbers"),
    ],
)
def test_bad_sizes_are_one_line_before_any_work(tmp_path, capsys, argv, message):
    work = tmp_path / "work"
    assert main(["demo", "--workdir", str(work), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not work.exists()


def test_raw_data_is_reused_only_for_the_same_sizes(tmp_path, capsys):
    sizes = DemoSizes(days=1, train_per_day=8, test_per_day=1, holdout_per_day=1, seed=1)
    raw = synthesise(tmp_path, sizes, fresh=False)
    record = json.loads((tmp_path / SYNTH_RECORD).read_text())
    assert record == {"days": 1, "train_per_day": 8, "test_per_day": 1, "holdout_per_day": 1,
                      "seed": 1}  # fmt: skip
    stamp = (raw / "train").stat().st_mtime_ns
    capsys.readouterr()
    assert synthesise(tmp_path, sizes, fresh=False) == raw
    assert "reusing" in capsys.readouterr().out
    assert (raw / "train").stat().st_mtime_ns == stamp
    synthesise(tmp_path, dataclasses.replace(sizes, seed=2), fresh=False)
    assert "reusing" not in capsys.readouterr().out
    assert json.loads((tmp_path / SYNTH_RECORD).read_text())["seed"] == 2


@pytest.mark.slow
def test_two_day_demo_end_to_end(tmp_path, tiny_llm):
    work = tmp_path / "work"
    result = subprocess.run(
        [sys.executable, "-m", "brain2text", "demo", "--workdir", str(work), *TINY_SIZES,
         "--llm", str(tiny_llm), "--llm-nbest", "3", *TINY_RUN],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "== demo finished" in out and "validation sentences are in" not in out
    for figure in ("greedy PER", "n-gram WER", "+ LLM WER", "oracle WER"):
        assert f"test {figure}" in out and f"hold-out {figure}" in out, figure
    assert out.count("  reference  ") == out.count("  n-gram     ") == 2
    assert out.count("  + LLM      ") == 2 and "LLM rescoring tuned on validation" in out

    assert sorted(p.name for p in (work / "raw" / "train").iterdir()) == [
        "t12.2022.04.28.mat",
        "t12.2022.05.05.mat",
    ]
    run = work / "runs" / "run13_cpu_demo"
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    evals = run / "eval"
    test = read_summary(evals / "test")
    assert test.n_sentences == 8 and test.per is not None and 0 <= test.per
    words = read_summary(evals / "test-llm")
    assert words.n_sentences == 8 and words.wer is not None and 0 <= words.wer
    assert words.wer_ci95 is not None and len(words.wer_ci95) == 2
    assert read_summary(evals / "competition-llm").wer is not None  # scored with the answers
    assert len((evals / "competition-llm" / "submission.txt").read_text().splitlines()) == 8
    tuning = json.loads((run / "lm_tuning.json").read_text())
    assert len(tuning["table"]) == 4 and tuning["options"]["beam_size"] == 8
    assert tuning["rescoring"]["nbest"] == 3 and tuning["leak_check"]["n_in_corpus"] == 0
    corpus = (work / "lm_corpus.txt").read_text().splitlines()
    assert len(corpus) > 200  # training transcripts + the 200 generated sentences
    val = {" ".join(clean_words(t)) for t in split_sentences(run, "val")}
    assert val and not val & {" ".join(clean_words(t)) for t in corpus}
    assert json.loads((work / "lm" / "lm.json").read_text())["corpus"]["excluded"]["split"] == (
        "val"
    )

    report = (run / "report" / "index.html").read_text()
    assert str(run / "report" / "index.html") in out
    assert "test-llm" in report and "no evaluation files yet" not in report
