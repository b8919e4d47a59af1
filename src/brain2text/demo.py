"""``brain2text demo``: synthetic data -> prepare -> train the CPU child of Run #13 -> evaluate
-> words (an n-gram LM from training-side text, tuned on validation) -> report.

Everything lands in one work folder (default ``demo_workspace/``)::

    raw/         synthetic recordings in the competitionData layout (+ holdout_answers.json),
                 compact classes (uint8 counts, single spikePow) to keep the folder ~1.4 GB
    synth.json   the sizes and seed ``raw/`` was made with (reused only when they match)
    prepared/    the prepared, memory-mappable dataset
    runs/run13_cpu_demo/   config, logs, metrics, checkpoints, eval/, report/index.html
    lm/          the demo's LM folder; lm_corpus.txt its text (training transcripts and more
                 sentences from the training side of the generator: never a test sentence)

The data's and the words' sizes are the fields of ``DemoSizes`` (``brain2text demo --days``,
...); the model's and the training's come from the run file and its ``key=value`` overrides.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from brain2text.config import load_run
from brain2text.data.dataset import open_prepared
from brain2text.data.prepare import prepare
from brain2text.decoding.beam import DEFAULT_BEAM_SIZE
from brain2text.decoding.lm import build_lm
from brain2text.errors import ConfigError
from brain2text.evaluation.evaluate import evaluate_run
from brain2text.evaluation.summary import EvalSummary
from brain2text.evaluation.tuning import tune_lm
from brain2text.evaluation.word_eval import evaluate_with_lm
from brain2text.reports.report import write_report
from brain2text.synth import generate
from brain2text.synth.schedule import DEFAULT_MIN_TRAIN_FOR_TWO_BLOCKS as MIN_TRAIN_FOR_TWO_BLOCKS
from brain2text.synth.sentences import sample_sentences
from brain2text.training.loop import train

DEFAULT_RUN = "run13_cpu_demo"  # a packaged run file
SYNTH_RECORD = "synth.json"  # in the work folder: what raw/ was generated with
# the default sizes (``make demo``; the benchmarks build the same data set)
DEMO_DAYS = 8
DEMO_TRAIN_PER_DAY = 250  # 7 blocks a day: 6 train, the last one validation
DEMO_TEST_PER_DAY = 20
DEMO_HOLDOUT_PER_DAY = 20
DEMO_SEED = 0


@dataclass(frozen=True)
class DemoSizes:
    """What the demo synthesises and how hard it searches for words.

    ``lm_sentences`` training-side sentences of the generator join the training
    transcripts in the LM's corpus; ``lm_weights`` x ``word_scores`` is the tuning grid;
    ``shown`` test sentences are printed at the end.
    """

    days: int = DEMO_DAYS
    train_per_day: int = DEMO_TRAIN_PER_DAY
    test_per_day: int = DEMO_TEST_PER_DAY
    holdout_per_day: int = DEMO_HOLDOUT_PER_DAY
    seed: int = DEMO_SEED
    lm_sentences: int = 20_000
    lm_weights: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0)
    word_scores: tuple[float, ...] = (-1.0, 0.0, 1.0, 2.0)
    beam_size: int = DEFAULT_BEAM_SIZE
    shown: int = 4

    def __post_init__(self) -> None:
        if self.train_per_day < MIN_TRAIN_FOR_TWO_BLOCKS:
            raise ConfigError(
                f"demo: --train-per-day must be at least {MIN_TRAIN_FOR_TWO_BLOCKS} (two blocks "
                f"a day, the last one validates), got {self.train_per_day}"
            )
        for name in ("test_per_day", "holdout_per_day"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"demo: --{name.replace('_', '-')} must be at least 1 (the demo scores "
                    f"the test split and the hold-out), got {getattr(self, name)}"
                )
        for name in ("lm_sentences", "shown"):
            if getattr(self, name) < 0:
                raise ConfigError(f"demo: --{name.replace('_', '-')} must be >= 0")
        if self.beam_size < 1:
            raise ConfigError(f"demo: --beam must be at least 1, got {self.beam_size}")
        if not self.lm_weights or not self.word_scores:
            raise ConfigError("demo: --lm-weights and --word-scores need at least one value each")

    def synth_record(self) -> dict[str, int]:
        """The fields that decide the synthetic recordings."""
        fields = ("days", "train_per_day", "test_per_day", "holdout_per_day", "seed")
        return {name: value for name, value in asdict(self).items() if name in fields}


@dataclass(frozen=True)
class DemoResult:
    """What one demo produced: the best validation PER and its batch, the four evaluation
    summaries (greedy and words, on test and on the hold-out), the step timings (seconds), the
    run folder and its report page."""

    best_per: float
    best_step: int | None
    test: EvalSummary
    holdout: EvalSummary
    test_words: EvalSummary
    holdout_words: EvalSummary
    timings: dict[str, float]
    run_dir: Path
    report: Path


def _step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


def _wer(summary: EvalSummary) -> str:
    """The WER with its 95% interval (an undefined bound shows as nan)."""
    low, high = (math.nan if v is None else v for v in summary.wer_ci95 or (None, None))
    return f"{summary.wer:.3f} (95% CI {low:.3f}-{high:.3f})"


def write_lm_corpus(prepared: Path, out: Path, n_extra: int, seed: int = DEMO_SEED) -> int:
    """The demo's LM text: the training transcripts and ``n_extra`` more training-side
    sentences of the generator (its test and hold-out sentences lie in a disjoint part of the
    sentence space)."""
    train_split = open_prepared(prepared).split("train")
    texts = [train_split.text(i) for i in range(len(train_split))]
    texts += sample_sentences(np.random.default_rng(seed), n_extra, evaluation=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(text + "\n" for text in texts))
    return len(texts)


def synthesise(workdir: Path, sizes: DemoSizes, fresh: bool) -> Path:
    """``workdir/raw``, generated unless it is there with the same sizes and seed."""
    raw, record = workdir / "raw", workdir / SYNTH_RECORD
    wanted = sizes.synth_record()
    try:
        previous = json.loads(record.read_text())
    except (OSError, ValueError):
        previous = None
    if not fresh and previous == wanted and (raw / "train").is_dir():
        print(f"reusing {raw} (pass --fresh to regenerate)")
        return raw
    record.unlink(missing_ok=True)
    generate(
        raw,
        days=sizes.days,
        train_per_day=sizes.train_per_day,
        test_per_day=sizes.test_per_day,
        holdout_per_day=sizes.holdout_per_day,
        seed=sizes.seed,
        overwrite=True,
        compact=True,
    )
    record.write_text(json.dumps(wanted, indent=2) + "\n")
    return raw


def show_sentences(run_dir: Path, n: int) -> None:
    """A few test sentences: reference, greedy phonemes, decoded words."""
    if n == 0:
        return
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


def print_summary(result: DemoResult) -> None:
    """The figures and where the files are."""
    run_dir, test, test_words = result.run_dir, result.test, result.test_words
    holdout, holdout_words = result.holdout, result.holdout_words
    print(f"best validation PER  {result.best_per:.3f} (batch {result.best_step})")
    print(
        f"test PER             {test.per:.3f} greedy, {test_words.per:.3f} with the LM "
        f"over {test.n_sentences} sentences"
    )
    print(
        f"test WER             {_wer(test_words)}, "
        f"{test_words.decode_ms_per_sentence:.1f} ms per sentence"
    )
    if holdout.per is not None:
        print(f"hold-out PER         {holdout.per:.3f} greedy over {holdout.n_sentences} sentences")
    if holdout_words.wer is not None:
        print(f"hold-out WER         {_wer(holdout_words)}")
    words_dir = run_dir / "eval" / "competition-lm"
    print(f"run folder           {run_dir}")
    print(f"  metrics            {run_dir / 'metrics.jsonl'}")
    print(f"  log                {run_dir / 'train.log'}")
    print(f"  checkpoints        {run_dir / 'checkpoints'}")
    print(f"  test evaluation    {run_dir / 'eval' / 'test'} (words: {run_dir / 'eval'}/test-lm)")
    print(f"  hold-out decoding  {run_dir / 'eval' / 'competition'} (words: {words_dir})")
    print(f"  submission         {words_dir / 'submission.txt'}")
    print(f"  report             {result.report}")


def run_demo(
    workdir: Path,
    run_file: Path | None = None,
    overrides: list[str] | None = None,
    fresh: bool = False,
    sizes: DemoSizes | None = None,
) -> DemoResult:
    sizes = sizes or DemoSizes()
    workdir = Path(workdir)
    prepared, lm_dir = workdir / "prepared", workdir / "lm"
    # the run is resolved first, so a bad run file or override stops before any work
    config = load_run(run_file or DEFAULT_RUN, [f"data.path={prepared}", *(overrides or [])])
    run_dir = workdir / "runs" / config.name
    timings: dict[str, float] = {}
    start = time.perf_counter()

    t = _step(f"1/5 synthesise {sizes.days} days of recordings -> {workdir / 'raw'}")
    raw = synthesise(workdir, sizes, fresh)
    timings["synth"] = time.perf_counter() - t

    t = _step(f"2/5 prepare -> {prepared}")
    prepare(raw, prepared, overwrite=True)
    timings["prepare"] = time.perf_counter() - t

    t = _step(f"3/5 train {config.name} ({config.train.n_batch} batches) -> {run_dir}")
    best = train(config, run_dir, overwrite=True).best
    timings["train"] = time.perf_counter() - t

    t = _step("4/5 evaluate the best checkpoint on test and on the hold-out (greedy phonemes)")
    test = evaluate_run(run_dir, split_name="test")
    answers = raw / "holdout_answers.json" if (raw / "holdout_answers.json").is_file() else None
    holdout = evaluate_run(run_dir, split_name="competition", answers=answers)
    timings["evaluate"] = time.perf_counter() - t

    t = _step(f"5/5 words: a 3-gram LM -> {lm_dir}, tuned on validation, then test and hold-out")
    n_text = write_lm_corpus(prepared, workdir / "lm_corpus.txt", sizes.lm_sentences, sizes.seed)
    info = build_lm(workdir / "lm_corpus.txt", lm_dir, overwrite=True)
    print(f"LM from {n_text} sentences: {info['vocabulary_size']} words")
    tuned = tune_lm(
        run_dir,
        lm_dir,
        lm_weights=sizes.lm_weights,
        word_scores=sizes.word_scores,
        beam_size=sizes.beam_size,
    )
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
    show_sentences(run_dir, sizes.shown)
    result = DemoResult(
        best.per, best.step, test, holdout, test_words, holdout_words, timings, run_dir, report
    )
    print_summary(result)
    return result
