"""The encoders and training tricks at the CPU demo's size: test PER and WER (the demo's 3-gram
LM) with 95% intervals over seeds, training samples/s and the training time each recipe takes to
reach the GRU child's best validation PER.

Every recipe is a packaged ``_cpu`` run file (or one with a change spelled out below) trained
for ``--batches`` batches on the demo's data, ``--seeds`` seeds each (``train.seed`` 0, 1, ...):

- ``gru``: run13_cpu_demo, the Run #13 child; ``gru + time masks``: run13_timemask_cpu;
  ``gru, no day layer``: run13_cpu_demo with ``model.day_layers=none``;
- ``transformer (causal)``: b2t24_transformer_cpu; ``(bidirectional)``: the same, attending
  both ways; ``+ per-day layers``; the paper's ablations ``no time masks`` and ``sinusoidal
  positions``; ``transformer, tuned``: transformer_cpu_demo, the Transformer whose patches,
  day layers, masks and dropout were chosen at this size on the validation split;
- ``diphones``: the encoder with the best mean validation PER with ``model.targets=diphone``;
- ``+ TTA``: that best encoder's checkpoints evaluated with test-time adaptation.

Finished runs in the workspace are reused, so the benchmark can be stopped and started again.

    python benchmarks/encoder_quality.py [--batches 400] [--seeds 3] [--only NAME ...]

Prints one markdown table (for BENCHMARKS.md) and whether the best new recipe's mean test PER
is at least 10% below the GRU child's.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from _common import WORKSPACE, command_line, default_data, machine_line, markdown_table
from brain2text.config import load_run
from brain2text.data.dataset import open_prepared
from brain2text.decoding.lm import build_lm, split_sentences
from brain2text.demo import write_lm_corpus
from brain2text.evaluation.evaluate import evaluate_run
from brain2text.evaluation.word_eval import evaluate_with_lm
from brain2text.model.factory import new_model
from brain2text.model.gru import count_parameters, describe_size
from brain2text.runs.folder import read_record
from brain2text.runs.runlog import read_metrics
from brain2text.training.loop import train

THREADS = 2
LM_EXTRA_SENTENCES = 20_000  # the demo's LM corpus size beside the training transcripts
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}  # Student t, 95% two-sided


@dataclass(frozen=True)
class Recipe:
    name: str
    run_file: str
    overrides: tuple[str, ...] = ()
    encoder: bool = True  # a candidate for the best encoder (diphones and TTA build on it)


BIDIRECTIONAL = (
    "model.bidirectional=true",
    "model.left_context_s=null",
    "model.left_context_train_s=null",
    "model.causal_smoothing=false",
)
RECIPES = (  # the main comparison first, then the ablations
    Recipe("gru", "run13_cpu_demo"),
    Recipe("transformer (causal)", "b2t24_transformer_cpu"),
    Recipe("gru + time masks", "run13_timemask_cpu"),
    Recipe("transformer (bidirectional)", "b2t24_transformer_cpu", BIDIRECTIONAL),
    Recipe(
        "transformer + per-day layers",
        "b2t24_transformer_cpu",
        ("model.day_layers=per_day",),
        encoder=False,
    ),
    Recipe("gru, no day layer", "run13_cpu_demo", ("model.day_layers=none",), encoder=False),
    Recipe("transformer, tuned (transformer_cpu_demo)", "transformer_cpu_demo"),
    Recipe(
        "transformer, no time masks",
        "b2t24_transformer_cpu",
        ("augment.time_masks=null",),
        encoder=False,
    ),
    Recipe(
        "transformer, sinusoidal positions",
        "b2t24_transformer_cpu",
        ("model.position=sinusoidal",),
        encoder=False,
    ),
)


def folder_name(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def trained(recipe: Recipe, common: list[str], seed: int, ws: Path) -> Path:
    folder = ws / f"{folder_name(recipe.name)}-seed{seed}"
    if (read_record(folder) or {}).get("status") != "finished":
        print(f"training {folder.name} ...", file=sys.stderr, flush=True)
        config = load_run(recipe.run_file, [*recipe.overrides, *common, f"train.seed={seed}"])
        train(config, folder, overwrite=True, quiet=True)
        status = (read_record(folder) or {}).get("status")
        if status != "finished":  # interrupted (SIGTERM): stop here, the next start goes on
            raise SystemExit(f"{folder}: {status}; start the benchmark again to go on")
    return folder


def interval(values: list[float]) -> str:
    """Mean and the 95% t-interval of the mean over seeds."""
    mean = statistics.mean(values)
    if len(values) < 2:
        return f"{mean:.3f}"
    half = T_975.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))
    return f"{mean:.3f} ({mean - half:.3f}-{mean + half:.3f})"


def best_val_per(run_dir: Path) -> float:
    return min(r["val/per"] for r in read_metrics(run_dir) if "val/per" in r)


def seconds_to(run_dir: Path, per: float) -> float | None:
    """Training seconds (the batches' own time, not the evaluations') until a validation PER
    at or below ``per``; None if the run never got there."""
    spent = 0.0
    for row in read_metrics(run_dir):
        spent += row.get("time_per_batch", 0.0)
        if row.get("val/per", math.inf) <= per:
            return spent
    return None


def samples_per_s(run_dir: Path) -> float:
    rates = [r["samples_per_s"] for r in read_metrics(run_dir) if "samples_per_s" in r]
    return statistics.median(rates)


def parameters(run_dir: Path, n_days: int, n_features: int) -> str:
    config = load_run(run_dir / "config.yaml")
    return describe_size(count_parameters(new_model(config, n_days, n_features)))


def the_lm(run_dir: Path, data: Path, ws: Path, n_extra: int) -> Path:
    """The demo's 3-gram LM (training transcripts + generated training-side sentences, without
    the validation transcripts), built once."""
    lm_dir = ws / "lm"
    if not (lm_dir / "lm.json").is_file():
        val = split_sentences(run_dir, "val")
        corpus = ws / "lm_corpus.txt"
        write_lm_corpus(data, corpus, n_extra, exclude=val)
        build_lm(corpus, lm_dir, overwrite=True, exclude=val)
    return lm_dir


def scores(run_dir: Path, lm_dir: Path, tta: bool = False) -> tuple[float, float]:
    """Test PER (greedy) and WER (the LM's beam search) of a run's best checkpoint."""
    per = evaluate_run(run_dir, split_name="test", tta=tta or None).per
    wer = evaluate_with_lm(run_dir, lm_dir, split_name="test", tta=tta or None).wer
    assert wer is not None
    return per, wer


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=400, help="batches of every run")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of every recipe")
    parser.add_argument("--workspace", type=Path, default=WORKSPACE / "encoders")
    parser.add_argument("--data", type=Path, default=None, help="default: the demo's data")
    parser.add_argument("--only", nargs="*", default=None, help="recipe names to run")
    parser.add_argument("--no-tta", action="store_true", help="leave out the TTA row")
    parser.add_argument(
        "--lm-sentences",
        type=int,
        default=LM_EXTRA_SENTENCES,
        help="generated sentences in the LM corpus beside the training transcripts",
    )
    parser.add_argument("--no-diphones", action="store_true", help="leave out the diphone row")
    parser.add_argument(
        "--extra", nargs="*", default=[], metavar="KEY=VALUE", help="overrides of every run"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(THREADS)
    data = args.data or default_data()
    ws: Path = args.workspace
    started = time.perf_counter()
    common = [
        f"data.path={data}",
        f"train.n_batch={args.batches}",
        f"train.eval_every={max(1, args.batches // 4)}",
        f"train.threads={THREADS}",
        *args.extra,
    ]
    seeds = range(args.seeds)
    recipes = [r for r in RECIPES if args.only is None or r.name in args.only]
    runs = {r.name: [trained(r, common, s, ws) for s in seeds] for r in recipes}
    candidates = [r.name for r in recipes if r.encoder]
    best = min(candidates, key=lambda n: statistics.mean(best_val_per(f) for f in runs[n]))
    base = next(r for r in recipes if r.name == best)
    if not args.no_diphones:
        diphone = Recipe(
            f"{best} + diphones", base.run_file, (*base.overrides, "model.targets=diphone")
        )
        runs[diphone.name] = [trained(diphone, common, s, ws) for s in seeds]

    first = next(iter(runs.values()))[0]
    lm_dir = the_lm(first, data, ws, args.lm_sentences)
    dataset = open_prepared(data)
    n_days, n_features = dataset.n_days, dataset.n_features
    gru_best = statistics.mean(best_val_per(f) for f in runs["gru"]) if "gru" in runs else None

    results: dict[str, dict] = {}
    rows = []
    table = [(name, folders, False) for name, folders in runs.items()]
    if not args.no_tta:
        table.append((f"{best} + TTA", runs[best], True))
    for name, folders, tta in table:
        pers, wers = zip(*(scores(f, lm_dir, tta) for f in folders), strict=True)
        times = [seconds_to(f, gru_best) for f in folders] if gru_best is not None else []
        reached = [t for t in times if t is not None]
        results[name] = {"test_per": list(pers), "test_wer": list(wers), "seconds_to_gru": times}
        rows.append(
            [
                name + (" (best encoder)" if name == best else ""),
                parameters(folders[0], n_days, n_features),
                interval([best_val_per(f) for f in folders]),
                interval(list(pers)),
                interval(list(wers)),
                f"{statistics.mean(samples_per_s(f) for f in folders):.0f}",
                f"{statistics.mean(reached):.0f} ({len(reached)}/{len(times)})" if reached else "-",
            ]
        )
    print(f"machine: {machine_line(THREADS, torch.device('cpu'))}")
    print(f"command: {command_line()}")
    headers = [
        "recipe",
        "parameters",
        "best val PER",
        "test PER (95% CI over seeds)",
        "test WER, 3-gram",
        "samples/s",
        "s to the GRU's best val PER (runs that got there)",
    ]
    print(markdown_table(headers, rows))
    if "gru" in results:
        gru = statistics.mean(results["gru"]["test_per"])
        new = {n: statistics.mean(r["test_per"]) for n, r in results.items() if n != "gru"}
        if new:
            winner = min(new, key=new.__getitem__)
            gain = 1 - new[winner] / gru
            verdict = "meets" if gain >= 0.10 else "misses"
            print(
                f"\nbest new recipe: {winner}, mean test PER {new[winner]:.4f} against the GRU "
                f"child's {gru:.4f}: {abs(gain):.1%} {'lower' if gain >= 0 else 'higher'} "
                f"({verdict} the 10% target)"
            )
    print(f"total {time.perf_counter() - started:.0f} s")
    ws.mkdir(parents=True, exist_ok=True)
    (ws / "encoder_quality.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
