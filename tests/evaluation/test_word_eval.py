"""Words out of a trained run: lm tune on validation, evaluate --lm with WER and intervals,
the hold-out's submission.txt, and one-line errors that leave nothing half-written."""

import json
import shutil

import pytest
import torch

from brain2text.cli import main
from brain2text.config import load_run
from brain2text.data.dataset import open_prepared
from brain2text.decoding.lm import build_lm
from brain2text.evaluation.summary import read_summary
from brain2text.evaluation.words import normalize_words, rate_with_interval
from brain2text.reports.criteria import judge
from brain2text.reports.report import write_report
from brain2text.runs.runlog import read_metrics
from brain2text.training.loop import train
from tests.conftest import RUNS, tiny_overrides

pytest.importorskip("flashlight.lib.text.decoder", reason="the lm extra is not installed")


@pytest.fixture(scope="module")
def run_and_lm(prepared_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("words")
    config = load_run(RUNS / "run13_cpu_demo.yaml", tiny_overrides(prepared_dir))
    train(config, root / "run", quiet=True)
    train_split = open_prepared(prepared_dir).split("train")
    corpus = root / "corpus.txt"
    corpus.write_text("".join(train_split.text(i) + "\n" for i in range(len(train_split))))
    build_lm(corpus, root / "lm")
    return root / "run", root / "lm"


def test_tune_then_evaluate_with_words(run_and_lm, prepared_dir, capsys):
    run, lm = run_and_lm
    assert (
        main(
            [
                "lm",
                "tune",
                str(run),
                "--lm",
                str(lm),
                "--lm-weights",
                "0.5,2",
                "--word-scores=-1,1",
                "--beam",
                "8",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    warning, rest = out.split("\n", 1)  # its LM's corpus holds the validation transcripts
    assert warning.startswith("warning: ") and "validation sentences are in" in warning
    table, report_line = rest.rsplit("\n", 2)[:2]
    assert table.count("\n") == 1 + 4 and "<- best" in table
    assert report_line == f"report: {run / 'report' / 'index.html'}"  # lm tune redraws it
    tuning = json.loads((run / "lm_tuning.json").read_text())
    assert tuning["split"] == "val" and len(tuning["table"]) == 4
    assert tuning["best"] == min(tuning["table"], key=lambda p: (p["wer"], p["per"]))

    assert main(["evaluate", str(run), "--lm", str(lm), "--nbest", "3"]) == 0
    out = run / "eval" / "test-lm"
    assert sorted(p.name for p in out.iterdir()) == [
        "decoded.txt",
        "errors.txt",
        "hypotheses.jsonl",
        "summary.json",
    ]
    summary = read_summary(out)
    assert "lm_tuning.json" in summary.options_from and "nbest=3" in summary.options_from
    assert summary.options["lm_weight"] == tuning["best"]["lm_weight"]
    rows = [json.loads(line) for line in (out / "hypotheses.jsonl").read_text().splitlines()]
    assert len(rows) == summary.n_sentences == 15
    again = rate_with_interval(
        [normalize_words(r["text"]) for r in rows], [normalize_words(r["hyp"]) for r in rows]
    )
    assert summary.wer == again.rate and summary.wer_edits == again.edits
    assert summary.wer_ci95[0] <= summary.wer <= summary.wer_ci95[1]
    assert summary.per_ci95[0] <= summary.per <= summary.per_ci95[1]
    test_days = {
        open_prepared(prepared_dir).days[d]
        for d in open_prepared(prepared_dir).split("test").day_index
    }
    assert set(summary.wer_per_day) == test_days
    assert all(1 <= len(r["nbest"]) <= 3 and r["nbest"][0]["text"] == r["hyp"] for r in rows)
    assert all(
        a["score"] >= b["score"]
        for r in rows
        for a, b in zip(r["nbest"], r["nbest"][1:], strict=False)
    )
    assert (out / "decoded.txt").read_text().splitlines() == [r["hyp"] for r in rows]
    page = (run / "report" / "index.html").read_text()  # evaluate redrew the report
    assert f"WER <b>{summary.wer:.4f}</b>" in page and "most frequent word errors" in page
    assert page == write_report(run).read_text()


def test_the_hold_out_gets_a_submission(run_and_lm, prepared_dir, capsys):
    run, lm = run_and_lm
    assert main(["evaluate", str(run), "--lm", str(lm), "--split", "competition"]) == 0
    out = run / "eval" / "competition-lm"
    lines = (out / "submission.txt").read_text().splitlines()
    assert len(lines) == len(open_prepared(prepared_dir).split("competition"))
    assert lines == (out / "decoded.txt").read_text().splitlines()
    assert read_summary(out).labelled is False
    assert "submission:" in capsys.readouterr().out


def test_bad_word_decoding_input_is_one_line_and_writes_nothing(run_and_lm, tmp_path, capsys):
    run, lm = run_and_lm
    cases = [
        (["evaluate", str(run), "--lm", str(tmp_path / "nolm"), "--split", "val"], "nolm"),
        (["evaluate", str(run), "--lm-weight", "2", "--split", "val"], "give an LM folder"),
        (["evaluate", str(run), "--lm", str(lm), "--beam", "0", "--split", "val"], "beam_size"),
        (["lm", "tune", str(run), "--lm", str(lm), "--lm-weights", "a,b"], "--lm-weights"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (run / "eval" / "val-lm").exists()

    other = tmp_path / "other"  # a model of another phoneme set: 42 classes
    shutil.copytree(run, other, ignore=shutil.ignore_patterns("eval"))
    payload = torch.load(other / "checkpoints" / "best.pt", weights_only=True)
    for key in ("readout.weight", "readout.bias"):
        payload["model"][key] = torch.cat([payload["model"][key], payload["model"][key][:1]])
    torch.save(payload, other / "checkpoints" / "best.pt")
    assert main(["evaluate", str(other), "--lm", str(lm)]) == 2
    assert "emits 42 classes" in capsys.readouterr().err
    assert not (other / "eval" / "test-lm").exists()


def test_training_logs_val_wer_and_can_select_on_it(run_and_lm, prepared_dir, tmp_path):
    _, lm = run_and_lm
    config = load_run(
        RUNS / "run13_cpu_demo.yaml",
        tiny_overrides(
            prepared_dir,
            **{
                "train.n_batch": 8,
                "train.eval_every": 2,
                "train.select_on": "wer",
                "eval.word_decoding": f"{{lm: {lm}, every: 2, beam_size: 8}}",
                "criteria.target_wer": 0.99,
            },
        ),
    )
    outcome = train(config, tmp_path / "run", quiet=True)
    evals = [r for r in read_metrics(tmp_path / "run") if "val/per" in r]
    assert [r["step"] for r in evals] == [1, 3, 5, 7]
    # every 2nd evaluation decodes words (and the last one always)
    assert [("val/wer" in r) for r in evals] == [False, True, False, True]
    with_wer = [r for r in evals if "val/wer" in r]
    best = min(with_wer, key=lambda r: r["val/wer"])
    assert outcome.best.metric == "wer" and outcome.best.step == best["step"]
    assert outcome.best.evaluation.wer == best["val/wer"]
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["best"]["selected_on"] == "wer" and record["best"]["wer"] == best["val/wer"]
    assert f"WER {best['val/wer']:.4f}" in (tmp_path / "run" / "train.log").read_text()
    verdicts = {v.name: v for v in judge(config, read_metrics(tmp_path / "run"))}
    assert (
        f"best val WER {best['val/wer']:.4f} at batch {best['step']}"
        in verdicts["target_wer"].figure
    )


def test_select_on_wer_needs_an_lm():
    from brain2text.errors import ConfigError

    with pytest.raises(ConfigError, match="train.select_on=wer needs eval.word_decoding"):
        load_run(RUNS / "run13_cpu_demo.yaml", ["train.select_on=wer"])


def test_evaluate_with_a_kaldi_graph(run_and_lm, tmp_path, capsys):
    pytest.importorskip("kaldilm", reason="the test extra builds the graph with kaldilm")
    from brain2text.decoding.lm import open_lm
    from tests.decoding.test_wfst import build_tlg

    run, lm_dir = run_and_lm
    lm = open_lm(lm_dir)
    lexicon = {w: spellings[0] for w, spellings in lm.spellings.items()}  # one spelling a word
    build_tlg(tmp_path / "graph", lexicon, lm.arpa.read_text())
    assert main(["evaluate", str(run), "--wfst", str(tmp_path / "graph")]) == 0
    out = run / "eval" / "test-wfst"
    summary = read_summary(out)
    assert summary.wfst == str(tmp_path / "graph") and summary.wer is not None
    rows = [json.loads(line) for line in (out / "hypotheses.jsonl").read_text().splitlines()]
    assert all(set(r["hyp"].split()) <= set(lm.spellings) for r in rows)
    assert f"test WER {summary.wer:.4f}" in capsys.readouterr().out
    assert main(["evaluate", str(run), "--wfst", str(tmp_path / "graph"), "--lm", str(lm_dir)]) == 2
    assert main(["evaluate", str(run), "--wfst", str(tmp_path / "graph"), "--beam", "5"]) == 2


def test_an_ensemble_decodes_words_too(run_and_lm, tmp_path):
    run, lm = run_and_lm
    options = ["--lm", str(lm), "--lm-weight", "2", "--word-score", "0", "--beam", "8"]
    assert main(["evaluate", str(run), *options]) == 0
    single = read_summary(run / "eval" / "test-lm")
    assert (
        main(
            ["evaluate", str(run), str(run), "--ensemble", "--out", str(tmp_path / "ens"), *options]
        )
        == 0
    )
    both = read_summary(tmp_path / "ens" / "eval" / "test-lm")
    assert both.ensemble == [str(run), str(run)] and both.options == single.options
    assert both.wer == single.wer  # a run with itself: the same emissions
