"""``brain2text demo``: synthetic data -> prepare -> train the CPU child of Run #13 -> evaluate
-> words (an n-gram LM from training-side text, tuned on validation) -> report.

Everything lands in one work folder (default ``demo_workspace/``)::

    raw/         synthetic recordings in the competitionData layout (+ holdout_answers.json),
                 compact classes (uint8 counts, single spikePow) to keep the folder ~1.4 GB
    prepared/    the prepared, memory-mappable dataset
    runs/run13_cpu_demo/   config, logs, metrics, checkpoints, eval/, report/index.html
    lm/          the demo's LM folder; lm_corpus.txt its text (training transcripts and more
                 sentences from the training side of the generator: never a test sentence)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from brain2text.config import load_run
from brain2text.data.dataset import open_prepared
from brain2text.data.prepare import prepare
from brain2text.decoding.lm import build_lm
from brain2text.evaluation.evaluate import evaluate_run
from brain2text.evaluation.tuning import tune_lm
from brain2text.evaluation.word_eval import evaluate_with_lm
from brain2text.reports.report import write_report
from brain2text.synth import generate
from brain2text.synth.sentences import sample_sentences
from brain2text.training.loop import train

DEFAULT_RUN = "run13_cpu_demo"  # a packaged run file
DEMO_DAYS = 8
DEMO_TRAIN_PER_DAY = 250  # 7 blocks a day: 6 train, the last one validation
DEMO_TEST_PER_DAY = 20
DEMO_HOLDOUT_PER_DAY = 20
DEMO_SEED = 0
LM_EXTRA_SENTENCES = 20_000  # training-side sentences of the generator beside the transcripts
TUNE_LM_WEIGHTS = (1.0, 1.5, 2.0, 3.0)
TUNE_WORD_SCORES = (-1.0, 0.0, 1.0, 2.0)
N_SHOWN = 4  # test sentences printed at the end


def _step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


def write_lm_corpus(prepared: Path, out: Path, seed: int = DEMO_SEED) -> int:
    """The demo's LM text: the training transcripts and more training-side sentences of the
    generator (its test and hold-out sentences lie in a disjoint part of the sentence space)."""
    train_split = open_prepared(prepared).split("train")
    texts = [train_split.text(i) for i in range(len(train_split))]
    texts += sample_sentences(np.random.default_rng(seed), LM_EXTRA_SENTENCES, evaluation=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(text + "\n" for text in texts))
    return len(texts)


def show_sentences(run_dir: Path, n: int = N_SHOWN) -> None:
    """A few test sentences: reference, greedy phonemes, decoded words."""
    greedy = [
        json.loads(line)
        for line in (run_dir / "eval" / "test" / "hypotheses.jsonl").read_text().splitlines()
    ]
    words = {
        (r["session"], r["trial"]): r
        for r in map(
            json.loads, (run_dir / "eval" / "test-lm" / "hypotheses.jsonl").read_text().splitlines()
        )
    }
    for row in greedy[:: max(len(greedy) // n, 1)][:n]:
        decoded = words[(row["session"], row["trial"])]
        print(f"  reference  {row['text']}")
        print(f"  phonemes   {row['hyp']}")
        print(f"  words      {decoded['hyp']}\n")


def run_demo(
    workdir: Path,
    run_file: Path | None = None,
    overrides: list[str] | None = None,
    fresh: bool = False,
) -> dict:
    workdir = Path(workdir)
    raw, prepared, lm_dir = workdir / "raw", workdir / "prepared", workdir / "lm"
    timings: dict[str, float] = {}
    start = time.perf_counter()

    t = _step(f"1/5 synthesise {DEMO_DAYS} days of recordings -> {raw}")
    if fresh or not (raw / "train").is_dir():
        generate(
            raw,
            days=DEMO_DAYS,
            train_per_day=DEMO_TRAIN_PER_DAY,
            test_per_day=DEMO_TEST_PER_DAY,
            holdout_per_day=DEMO_HOLDOUT_PER_DAY,
            seed=DEMO_SEED,
            overwrite=True,
            compact=True,
        )
    else:
        print(f"reusing {raw} (pass --fresh to regenerate)")
    timings["synth"] = time.perf_counter() - t

    t = _step(f"2/5 prepare -> {prepared}")
    prepare(raw, prepared, overwrite=True)
    timings["prepare"] = time.perf_counter() - t

    config_path = run_file or DEFAULT_RUN
    config = load_run(config_path, [f"data.path={prepared}", *(overrides or [])])
    run_dir = workdir / "runs" / config.name
    t = _step(f"3/5 train {config.name} ({config.train.n_batch} batches) -> {run_dir}")
    best = train(config, run_dir, overwrite=True).best
    timings["train"] = time.perf_counter() - t

    t = _step("4/5 evaluate the best checkpoint on test and on the hold-out (greedy phonemes)")
    test = evaluate_run(run_dir, split_name="test")
    answers = raw / "holdout_answers.json"
    answers = answers if answers.is_file() else None
    holdout = evaluate_run(run_dir, split_name="competition", answers=answers)
    timings["evaluate"] = time.perf_counter() - t

    t = _step(f"5/5 words: a 3-gram LM -> {lm_dir}, tuned on validation, then test and hold-out")
    n_text = write_lm_corpus(prepared, workdir / "lm_corpus.txt")
    info = build_lm(workdir / "lm_corpus.txt", lm_dir, overwrite=True)
    print(f"LM from {n_text} sentences: {info['vocabulary_size']} words")
    tuned = tune_lm(run_dir, lm_dir, lm_weights=TUNE_LM_WEIGHTS, word_scores=TUNE_WORD_SCORES)
    print(
        f"tuned on validation: lm_weight {tuned.best.lm_weight:g}, word_score "
        f"{tuned.best.word_score:g} (val WER {tuned.best.wer:.3f})"
    )
    test_words = evaluate_with_lm(run_dir, lm_dir, split_name="test")
    holdout_words = evaluate_with_lm(run_dir, lm_dir, split_name="competition", answers=answers)
    report = write_report(run_dir)  # again, now with the evaluation files
    timings["words"] = time.perf_counter() - t
    total = time.perf_counter() - start

    print(
        "\n== demo finished in "
        + f"{total / 60:.1f} min ("
        + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items())
        + ")"
    )
    show_sentences(run_dir)
    ci = lambda s, k: f"(95% CI {s[k + '_ci95'][0]:.3f}-{s[k + '_ci95'][1]:.3f})"  # noqa: E731
    print(f"best validation PER  {best.per:.3f} (batch {best.step})")
    print(
        f"test PER             {test['per']:.3f} greedy, {test_words['per']:.3f} with the LM "
        f"over {test['n_sentences']} sentences"
    )
    print(
        f"test WER             {test_words['wer']:.3f} {ci(test_words, 'wer')}, "
        f"{test_words['decode_ms_per_sentence']:.1f} ms per sentence"
    )
    if "per" in holdout:
        print(
            f"hold-out PER         {holdout['per']:.3f} greedy over {holdout['n_sentences']} "
            "sentences"
        )
    if "wer" in holdout_words:
        print(f"hold-out WER         {holdout_words['wer']:.3f} {ci(holdout_words, 'wer')}")
    words_dir = run_dir / "eval" / "competition-lm"
    print(f"run folder           {run_dir}")
    print(f"  metrics            {run_dir / 'metrics.jsonl'}")
    print(f"  log                {run_dir / 'train.log'}")
    print(f"  checkpoints        {run_dir / 'checkpoints'}")
    print(f"  test evaluation    {run_dir / 'eval' / 'test'} (words: {run_dir / 'eval'}/test-lm)")
    print(f"  hold-out decoding  {run_dir / 'eval' / 'competition'} (words: {words_dir})")
    print(f"  submission         {words_dir / 'submission.txt'}")
    print(f"  report             {report}")
    return {
        "best": best,
        "test": test,
        "holdout": holdout,
        "test_words": test_words,
        "holdout_words": holdout_words,
        "timings": timings,
    }
