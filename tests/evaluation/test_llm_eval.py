"""evaluate --lm --llm: the n-best rescored by a causal LM, every hypothesis's scores in
hypotheses.jsonl, the WER with and without the LLM and the n-best oracle in summary.json, and
one-line errors that write nothing."""

import json

import pytest

from brain2text.cli import main
from brain2text.config import load_run
from brain2text.data.dataset import open_prepared
from brain2text.decoding.lm import build_lm
from brain2text.evaluation.summary import read_summary
from brain2text.training.loop import train
from tests.conftest import RUNS, tiny_overrides

pytest.importorskip("flashlight.lib.text.decoder", reason="the lm extra is not installed")


@pytest.fixture(scope="module")
def run_and_lm(prepared_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("llm-words")
    config = load_run(RUNS / "run13_cpu_demo.yaml", tiny_overrides(prepared_dir))
    train(config, root / "run", quiet=True)
    train_split = open_prepared(prepared_dir).split("train")
    corpus = root / "corpus.txt"
    corpus.write_text("".join(train_split.text(i) + "\n" for i in range(len(train_split))))
    build_lm(corpus, root / "lm")
    return root / "run", root / "lm"


def test_evaluate_with_an_llm_keeps_every_score(run_and_lm, tiny_llm, capsys):
    run, lm = run_and_lm
    argv = ["evaluate", str(run), "--lm", str(lm), "--llm", str(tiny_llm), "--beam", "8"]
    assert main([*argv, "--nbest", "5", "--alpha", "0.7", "--acoustic-scale", "0.4"]) == 0
    out = capsys.readouterr().out
    assert "without (n-gram only)" in out and "n-best oracle WER" in out
    folder = run / "eval" / "test-llm"
    summary = read_summary(folder)
    assert summary.rescoring is not None and summary.rescoring["alpha"] == 0.7
    assert summary.rescoring["nbest"] == 5 and summary.rescoring["from"] == "command line"
    assert summary.llm is not None and summary.wer_first_pass is not None
    assert summary.nbest_oracle_wer <= min(summary.wer, summary.wer_first_pass)
    assert summary.wer_change == pytest.approx(summary.wer - summary.wer_first_pass)
    low, high = summary.wer_change_ci95
    assert low <= summary.wer_change <= high and "change of WER with the LLM" in out
    rows = [json.loads(line) for line in (folder / "hypotheses.jsonl").read_text().splitlines()]
    assert len(rows) == summary.n_sentences
    for row in rows:
        if not row["nbest"]:
            continue
        totals = [0.4 * h["am"] + 0.3 * h["ngram"] + 0.7 * h["llm"] for h in row["nbest"]]
        assert [h["total"] for h in row["nbest"]] == pytest.approx(totals)
        assert row["hyp"] == row["nbest"][max(range(len(totals)), key=totals.__getitem__)]["text"]
        assert len({h["text"] for h in row["nbest"]}) == len(row["nbest"])  # merged


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--llm", "x"], "give --lm LM_DIR"),
        (["--alpha", "0.5"], "give --lm LM_DIR"),
    ],
)
def test_llm_options_without_lm_are_refused(run_and_lm, extra, message, capsys):
    run, _ = run_and_lm
    assert main(["evaluate", str(run), *extra]) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0


def test_bad_alpha_and_bad_model_write_nothing(run_and_lm, tmp_path, capsys):
    run, lm = run_and_lm
    base = ["evaluate", str(run), "--split", "val", "--lm", str(lm), "--beam", "4"]
    assert main([*base, "--llm", str(tmp_path / "missing"), "--alpha", "1.5"]) != 0
    assert "--alpha 1.5" in capsys.readouterr().err
    assert main([*base, "--llm", str(tmp_path / "missing")]) != 0
    err = capsys.readouterr().err.strip()
    assert str(tmp_path / "missing") in err and err.count("\n") == 0
    assert main([*base, "--alpha", "0.5"]) != 0
    assert "give --llm MODEL" in capsys.readouterr().err
    assert not (run / "eval" / "val-llm").exists()


def test_rescoring_options_come_from_lm_tuning_for_the_same_lm_and_llm(tmp_path):
    from types import SimpleNamespace

    from brain2text.evaluation.rescoring import RescoreOptions
    from brain2text.evaluation.search import ChosenRescoring, choose_rescoring

    lm = SimpleNamespace(folder=tmp_path / "lm")
    entry = {"llm": "tiny", "alpha": 0.3, "acoustic_scale": 0.2, "gate": -4.0, "nbest": 7}
    record = {"lm": str(lm.folder.resolve()), "rescoring": entry}
    (tmp_path / "lm_tuning.json").write_text(json.dumps(record))
    chosen = choose_rescoring(tmp_path, lm, "tiny", None)
    assert chosen.options == RescoreOptions(0.3, 0.2, -4.0) and chosen.nbest == 7
    assert chosen.source == str(tmp_path / "lm_tuning.json") and chosen.first_pass == {}
    defaults = ChosenRescoring(RescoreOptions(), None, {}, "defaults")
    assert choose_rescoring(tmp_path, lm, "other", None) == defaults
    given = RescoreOptions(alpha=1.0)
    assert choose_rescoring(tmp_path, lm, "tiny", given).source == "command line"
    other_lm = SimpleNamespace(folder=tmp_path / "lm2")
    assert choose_rescoring(tmp_path, other_lm, "tiny", None).source == "defaults"
    entry |= {"lm_weight": 0.5, "word_score": -1.0}  # a first pass tuned for the LLM
    (tmp_path / "lm_tuning.json").write_text(json.dumps(record))
    chosen = choose_rescoring(tmp_path, lm, "tiny", None)
    assert chosen.first_pass == {"lm_weight": 0.5, "word_score": -1.0}


def test_llm_fusion_from_the_cli(run_and_lm, tiny_llm, capsys):
    run, lm = run_and_lm
    base = ["evaluate", str(run), "--split", "val", "--lm", str(lm), "--beam", "4"]
    assert main([*base, "--llm", str(tiny_llm), "--llm-fusion", "--fusion-weight", "0"]) == 0
    fused = read_summary(run / "eval" / "val-fusion")
    assert fused.llm is not None and fused.options["llm_fusion_weight"] == 0
    assert main([*base]) == 0  # weight 0: the n-gram search itself
    plain = read_summary(run / "eval" / "val-lm")
    fused_rows = (run / "eval" / "val-fusion" / "decoded.txt").read_text()
    assert fused_rows == (run / "eval" / "val-lm" / "decoded.txt").read_text()
    assert fused.wer == plain.wer
    capsys.readouterr()
    for extra, message in [
        (["--llm-fusion"], "give --lm LM_DIR --llm MODEL"),
        (["--llm", str(tiny_llm), "--fusion-weight", "1"], "add --llm-fusion"),
        (["--llm", str(tiny_llm), "--llm-fusion", "--alpha", "0.5"], "no n-best rescoring"),
    ]:
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and err.count("\n") == 0


def test_an_end_tuned_and_evaluated_from_the_cli(run_and_lm, tiny_llm, capsys):
    run, lm = run_and_lm
    small = ["--beam", "4", "--nbest", "3", "--alphas", "0,1", "--acoustic-scales", "1"]
    tune = ["lm", "tune", str(run), "--lm", str(lm), "--lm-weights", "1", "--word-scores", "0"]
    assert main([*tune, *small, "--llm", str(tiny_llm), "--llm-end", "."]) == 0
    entry = json.loads((run / "lm_tuning.json").read_text())["rescoring"]
    assert entry["llm"] == f"{tiny_llm} + end '.'"
    base = ["evaluate", str(run), "--split", "val", "--lm", str(lm), "--llm", str(tiny_llm)]
    capsys.readouterr()
    assert main([*base, "--llm-end", "."]) == 0
    summary = read_summary(run / "eval" / "val-llm")
    assert summary.llm["end"] == "." and summary.rescoring["from"].endswith("lm_tuning.json")
    assert summary.rescoring["nbest"] == 3 and "warning" not in capsys.readouterr().err
    assert main(base) == 0  # the same model without the end: not what was tuned
    assert "tuned for" in capsys.readouterr().err
    assert read_summary(run / "eval" / "val-llm").rescoring["from"] == "defaults"
    for extra, message in [
        (["--llm-end", "."], "give --llm MODEL"),
        (["--llm-dtype", "bf16"], "give --llm MODEL"),
    ]:
        assert main(["evaluate", str(run), "--lm", str(lm), *extra]) != 0
        err = capsys.readouterr().err.strip()
        assert message in err and err.count("\n") == 0
    fusion = [*base, "--llm-fusion", "--llm-end", "."]
    assert main(fusion) != 0 and "--llm-fusion" in capsys.readouterr().err
