"""``brain2text demo``: synthetic data -> prepare -> train the CPU child of Run #13 -> evaluate
-> words (an n-gram LM from training-side text without the validation sentences, its n-best lists
rescored by a small LLM, both tuned on validation) -> report.

Everything lands in one work folder (default ``demo_workspace/``)::

    raw/         synthetic recordings in the competitionData layout (+ holdout_answers.json),
                 compact classes (uint8 counts, single spikePow) to keep the folder ~1.4 GB
    synth.json   the sizes and seed ``raw/`` was made with (reused only when they match)
    prepared/    the prepared, memory-mappable dataset
    runs/run13_cpu_demo/   config, logs, metrics, checkpoints, eval/, report/index.html
    lm/          the demo's LM folder; lm_corpus.txt its text (training transcripts and more
                 sentences from the training side of the generator: never a test sentence,
                 and never one of the validation split, so tuning does not see its answers)

The LLM (``DemoSizes.llm``, default the packaged SmolLM2-135M; ``--llm none`` skips it) rescores
``llm_nbest`` hypotheses a sentence: 10 keeps the demo within a few minutes on two CPU cores
(~0.1 s a sentence); a larger n-best lets the LLM reach better sentences (the n-best oracle
printed at the end is the best any rescoring could reach) at a proportional cost.

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
from brain2text.decoding.lm import build_lm, clean_words, sentence_hash, split_sentences
from brain2text.errors import ConfigError
from brain2text.evaluation.evaluate import evaluate_run
from brain2text.evaluation.summary import EvalSummary
from brain2text.evaluation.tuning import tune_lm
from brain2text.evaluation.word_eval import evaluate_with_lm, word_suffix
from brain2text.reports.report import write_report
from brain2text.reports.word_figures import (
    WordFigures,
    first_pass_sentence,
    print_figures,
    read_rows,
    word_figures,
)
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
    ``shown`` test sentences are printed at the end; ``llm`` (None: none) rescores
    ``llm_nbest`` hypotheses a sentence.
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
    llm: str | None = "smollm2-135m"
    llm_nbest: int = 10

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
        if self.llm_nbest < 1:
            raise ConfigError(f"demo: --llm-nbest must be at least 1, got {self.llm_nbest}")
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
    test_figures: WordFigures | None = None
    holdout_figures: WordFigures | None = None


def _step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


def _wer(summary: EvalSummary) -> str:
    """The WER with its 95% interval (an undefined bound shows as nan)."""
    low, high = (math.nan if v is None else v for v in summary.wer_ci95 or (None, None))
    return f"{summary.wer:.3f} (95% CI {low:.3f}-{high:.3f})"


def write_lm_corpus(
    prepared: Path,
    out: Path,
    n_extra: int,
    seed: int = DEMO_SEED,
    exclude: list[str] | None = None,
) -> int:
    """The demo's LM text: the training transcripts and ``n_extra`` more training-side
    sentences of the generator (its test and hold-out sentences lie in a disjoint part of the
    sentence space), without any sentence of ``exclude`` (the validation transcripts: those of
    the training files' last blocks, and a generated sentence that happens to be one)."""
    train_split = open_prepared(prepared).split("train")
    texts = [train_split.text(i) for i in range(len(train_split))]
    texts += sample_sentences(np.random.default_rng(seed), n_extra, evaluation=False)
    banned = {sentence_hash(clean_words(t)) for t in exclude or []}
    texts = [t for t in texts if sentence_hash(clean_words(t)) not in banned]
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


def show_sentences(run_dir: Path, n: int, llm: bool) -> None:
    """A few test sentences: reference, greedy phonemes, the n-gram's sentence and the one
    the LLM chose from its n-best list."""
    if n == 0:
        return
    greedy = read_rows(run_dir / "eval" / "test")
    folder = run_dir / "eval" / f"test{word_suffix(True, llm)}"
    words = {(r["session"], r["trial"]): r for r in read_rows(folder)}
    for row in greedy[:: max(len(greedy) // n, 1)][:n]:
        decoded = words[(row["session"], row["trial"])]
        print(f"  reference  {row['text']}")
        print(f"  phonemes   {row['hyp']}")
        print(f"  n-gram     {first_pass_sentence(decoded)}")
        if llm:
            print(f"  + LLM      {decoded['hyp']}")
        print()


def print_summary(result: DemoResult) -> None:
    """The figures and where the files are."""
    run_dir, test, test_words = result.run_dir, result.test, result.test_words
    holdout, holdout_words = result.holdout, result.holdout_words
    print(f"best validation PER  {result.best_per:.3f} (batch {result.best_step})")
    if result.test_figures is not None:
        print_figures("test", result.test_figures, test.n_sentences)
    else:
        print(f"test PER             {test.per:.3f} greedy over {test.n_sentences} sentences")
        print(f"test WER             {_wer(test_words)}")
    print(
        f"test PER with words  {test_words.per:.3f}, "
        f"{test_words.decode_ms_per_sentence:.1f} ms per sentence"
    )
    if result.holdout_figures is not None:
        print_figures("hold-out", result.holdout_figures, holdout.n_sentences)
    else:
        if holdout.per is not None:
            print(
                f"hold-out PER         {holdout.per:.3f} greedy over {holdout.n_sentences} "
                "sentences"
            )
        if holdout_words.wer is not None:
            print(f"hold-out WER         {_wer(holdout_words)}")
    suffix = word_suffix(True, test_words.llm is not None)
    words_dir = run_dir / "eval" / f"competition{suffix}"
    print(f"run folder           {run_dir}")
    print(f"  metrics            {run_dir / 'metrics.jsonl'}")
    print(f"  log                {run_dir / 'train.log'}")
    print(f"  checkpoints        {run_dir / 'checkpoints'}")
    print(
        f"  test evaluation    {run_dir / 'eval' / 'test'} (words: {run_dir / 'eval'}/test{suffix})"
    )
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

    with_llm = f" rescored by {sizes.llm}" if sizes.llm else ""
    t = _step(
        f"5/5 words: a 3-gram LM -> {lm_dir}{with_llm}, tuned on validation, then test and hold-out"
    )
    val = split_sentences(run_dir, "val")  # the validation transcripts stay out of the LM
    corpus = workdir / "lm_corpus.txt"
    n_text = write_lm_corpus(prepared, corpus, sizes.lm_sentences, sizes.seed, exclude=val)
    info = build_lm(
        corpus,
        lm_dir,
        overwrite=True,
        exclude=val,
        excluded_from={"split": "val", "run": str(run_dir.resolve())},
    )
    print(
        f"LM from {n_text} sentences (the {len(set(val))} validation sentences left out): "
        f"{info['vocabulary_size']} words"
    )
    scorer = None
    if sizes.llm is not None:
        from brain2text.decoding.llm import load_scorer

        loading = time.perf_counter()
        scorer = load_scorer(sizes.llm)
        print(f"LLM {scorer.name} loaded in {time.perf_counter() - loading:.0f} s")
    tuned = tune_lm(
        run_dir,
        lm_dir,
        lm_weights=sizes.lm_weights,
        word_scores=sizes.word_scores,
        beam_size=sizes.beam_size,
        llm=scorer,
        llm_nbest=sizes.llm_nbest,
    )
    print(
        f"tuned on validation: lm_weight {tuned.best.lm_weight:g}, word_score "
        f"{tuned.best.word_score:g} (val WER {tuned.best.wer:.3f})"
    )
    if (rescoring := tuned.rescoring) is not None:
        gate = "none" if rescoring.best.gate is None else f"{rescoring.best.gate:g}"
        print(
            f"LLM rescoring tuned on validation: alpha {rescoring.best.alpha:g}, acoustic_scale "
            f"{rescoring.best.acoustic_scale:g}, gate {gate} (val WER "
            f"{rescoring.wer_first_pass:.3f} -> {rescoring.best.wer:.3f}, n-best "
            f"{rescoring.nbest} oracle {rescoring.oracle_wer:.3f})"
        )
    nbest = sizes.llm_nbest if scorer is not None else None
    test_words = evaluate_with_lm(run_dir, lm_dir, split_name="test", llm=scorer, nbest=nbest)
    holdout_words = evaluate_with_lm(
        run_dir, lm_dir, split_name="competition", answers=answers, llm=scorer, nbest=nbest
    )
    evals = run_dir / "eval"
    suffix = word_suffix(True, scorer is not None)  # -llm: rescored, the n-gram's beside
    test_figures = word_figures(evals / "test", evals / f"test{suffix}", scorer is not None)
    holdout_figures = word_figures(
        evals / "competition", evals / f"competition{suffix}", scorer is not None
    )
    report = write_report(run_dir)  # again, now with the evaluation files
    timings["words"] = time.perf_counter() - t
    total = time.perf_counter() - start

    print(
        "\n== demo finished in "
        + f"{total / 60:.1f} min ("
        + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items())
        + ")"
    )
    show_sentences(run_dir, sizes.shown, scorer is not None)
    result = DemoResult(
        best.per,
        best.step,
        test,
        holdout,
        test_words,
        holdout_words,
        timings,
        run_dir,
        report,
        test_figures,
        holdout_figures,
    )
    print_summary(result)
    return result
