"""``brain2text demo``: synthetic data -> prepare -> train the CPU child of Run #13 -> evaluate.

Everything lands in one work folder (default ``demo_workspace/``)::

    raw/         synthetic recordings in the competitionData layout (+ holdout_answers.json),
                 compact classes (uint8 counts, single spikePow) to keep the folder ~1.4 GB
    prepared/    the prepared, memory-mappable dataset
    runs/run13_cpu_demo/   config, logs, metrics, checkpoints, eval/, report/index.html
"""

from __future__ import annotations

import time
from pathlib import Path

from brain2text.config import load_run
from brain2text.data.prepare import prepare
from brain2text.evaluation.evaluate import evaluate_run
from brain2text.reports.report import write_report
from brain2text.synth import generate
from brain2text.training.loop import train

DEFAULT_RUN = "run13_cpu_demo"  # a packaged run file
DEMO_DAYS = 8
DEMO_TRAIN_PER_DAY = 250  # 7 blocks a day: 6 train, the last one validation
DEMO_TEST_PER_DAY = 20
DEMO_HOLDOUT_PER_DAY = 20
DEMO_SEED = 0


def _step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


def run_demo(workdir: Path, run_file: Path | None = None, overrides: list[str] | None = None,
             fresh: bool = False) -> dict:
    workdir = Path(workdir)
    raw, prepared = workdir / "raw", workdir / "prepared"
    timings: dict[str, float] = {}
    start = time.perf_counter()

    t = _step(f"1/4 synthesise {DEMO_DAYS} days of recordings -> {raw}")
    if fresh or not (raw / "train").is_dir():
        generate(raw, days=DEMO_DAYS, train_per_day=DEMO_TRAIN_PER_DAY,
                 test_per_day=DEMO_TEST_PER_DAY, holdout_per_day=DEMO_HOLDOUT_PER_DAY,
                 seed=DEMO_SEED, overwrite=True, compact=True)
    else:
        print(f"reusing {raw} (pass --fresh to regenerate)")
    timings["synth"] = time.perf_counter() - t

    t = _step(f"2/4 prepare -> {prepared}")
    prepare(raw, prepared, overwrite=True)
    timings["prepare"] = time.perf_counter() - t

    config_path = run_file or DEFAULT_RUN
    config = load_run(config_path, [f"data.path={prepared}", *(overrides or [])])
    run_dir = workdir / "runs" / config.name
    t = _step(f"3/4 train {config.name} ({config.train.n_batch} batches) -> {run_dir}")
    best = train(config, run_dir, overwrite=True).best
    timings["train"] = time.perf_counter() - t

    t = _step("4/4 evaluate the best checkpoint on test and on the hold-out; run report")
    test = evaluate_run(run_dir, split_name="test")
    answers = raw / "holdout_answers.json"
    holdout = evaluate_run(run_dir, split_name="competition",
                           answers=answers if answers.is_file() else None)
    report = write_report(run_dir)  # again, now with the evaluation files
    timings["evaluate"] = time.perf_counter() - t
    total = time.perf_counter() - start

    print("\n== demo finished in " + f"{total / 60:.1f} min (" +
          ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()) + ")")
    print(f"best validation PER  {best.per:.3f} (batch {best.step})")
    print(f"test PER             {test['per']:.3f} over {test['n_sentences']} sentences")
    if "per" in holdout:
        print(f"hold-out PER         {holdout['per']:.3f} over {holdout['n_sentences']} sentences")
    print(f"run folder           {run_dir}")
    print(f"  metrics            {run_dir / 'metrics.jsonl'}")
    print(f"  log                {run_dir / 'train.log'}")
    print(f"  checkpoints        {run_dir / 'checkpoints'}")
    print(f"  test evaluation    {run_dir / 'eval' / 'test'}")
    print(f"  hold-out decoding  {run_dir / 'eval' / 'competition'}")
    print(f"  report             {report}")
    return {"best": best, "test": test, "holdout": holdout, "timings": timings}
