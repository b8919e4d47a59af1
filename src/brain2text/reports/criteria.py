"""A run's success criteria (``criteria`` section of the run file) judged from its metrics rows.

Pure: :func:`judge` takes the resolved config and the rows of ``metrics.jsonl`` (and, for
``faster_than``, the other run's rows, or None when that run cannot be read) and returns one
:class:`Verdict` per criterion that is set. "Batch N" in the figures is the ``step`` of the
metrics rows, as in the training log.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

from brain2text.config import RunConfig
from brain2text.runs import metric_keys as mk

Status = Literal["met", "not met", "not measurable"]
MET: Final = "met"
NOT_MET: Final = "not met"
NOT_MEASURABLE: Final = "not measurable"


@dataclass(frozen=True)
class Verdict:
    name: str
    status: Status
    figure: str
    """The number behind the status, e.g. "best val PER 0.371 at batch 399 vs target < 0.25"."""


def as_float(value: Any) -> float:
    """A metrics value as a float; "nan"/"inf" strings (how non-finite floats are stored) too."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def batch_rows(rows: list[dict]) -> list[dict]:
    return [r for r in rows if mk.TRAIN_LOSS in r]


def eval_split_of(rows: list[dict], preferred: str | None = None) -> str | None:
    """The split whose ``<split>/per`` the rows hold: ``preferred`` when present."""
    present = [s for s in mk.EVAL_SPLITS if any(mk.per(s) in r for r in rows)]
    if preferred in present:
        return preferred
    return present[0] if present else None


def eval_points(
    rows: list[dict], split: str | None, metric: Callable[[str], str] = mk.per
) -> list[tuple[int, float]]:
    """(step, PER) (or another metric: ``metric=metric_keys.wer``) of every evaluation holding
    it, in order."""
    if split is None:
        return []
    key = metric(split)
    return [(int(r[mk.STEP]), as_float(r[key])) for r in rows if key in r]


def first_reaching(points: list[tuple[int, float]], per: float) -> int | None:
    return next((step for step, value in points if value <= per), None)


def _target_per(target: float, points: list[tuple[int, float]], split: str) -> Verdict:
    finite = [(v, s) for s, v in points if math.isfinite(v)]
    if not finite:
        return Verdict(
            "target_per", NOT_MEASURABLE, f"no finite {split} PER vs target < {target:g}"
        )
    value, step = min(finite)
    return Verdict(
        "target_per",
        MET if value < target else NOT_MET,
        f"best {split} PER {value:.4f} at batch {step} vs target < {target:g}",
    )


def _target_wer(target: float, points: list[tuple[int, float]], split: str) -> Verdict:
    finite = [(v, s) for s, v in points if math.isfinite(v)]
    if not finite:
        return Verdict(
            "target_wer",
            NOT_MEASURABLE,
            f"no {split} WER in the metrics (eval.word_decoding) vs target < {target:g}",
        )
    value, step = min(finite)
    return Verdict(
        "target_wer",
        MET if value < target else NOT_MET,
        f"best {split} WER {value:.4f} at batch {step} vs target < {target:g}",
    )


def _final_per(limit: float, points: list[tuple[int, float]], split: str) -> Verdict:
    step, value = points[-1]
    return Verdict(
        "final_per",
        MET if value <= limit else NOT_MET,  # NaN compares False
        f"last {split} PER {value:.4f} at batch {step} vs <= {limit:g}",
    )


def _max_grad_norm(ceiling: float, batches: list[dict]) -> Verdict:
    norms = [(as_float(r.get(mk.GRAD_NORM)), int(r[mk.STEP])) for r in batches]
    finite = [(n, s) for n, s in norms if math.isfinite(n)]
    if not finite:
        return Verdict(
            "max_grad_norm",
            NOT_MEASURABLE,
            f"no finite pre-clip gradient norm vs ceiling < {ceiling:g}",
        )
    peak, step = max(finite)
    over = sum(n >= ceiling for n, _ in finite)
    figure = f"max pre-clip grad norm {peak:.3g} at batch {step} vs ceiling < {ceiling:g}"
    if over:
        figure += f" ({over} of {len(finite)} batches at or above it)"
    if len(finite) < len(norms):
        figure += f"; {len(norms) - len(finite)} non-finite norms not counted (see no_nonfinite)"
    return Verdict("max_grad_norm", MET if peak < ceiling else NOT_MET, figure)


def _no_nonfinite(batches: list[dict]) -> Verdict:
    if not batches:
        return Verdict("no_nonfinite", NOT_MEASURABLE, "no training batch logged")
    counts = [int(as_float(r.get(mk.SKIPPED_STEPS, 0))) for r in batches]
    if counts[-1] == 0:
        return Verdict("no_nonfinite", MET, f"0 steps skipped in {len(batches)} batches")
    first = next(int(r[mk.STEP]) for r, n in zip(batches, counts, strict=True) if n > 0)
    return Verdict(
        "no_nonfinite",
        NOT_MET,
        f"{counts[-1]} steps skipped for a non-finite loss or gradient in "
        f"{len(batches)} batches, the first at batch {first}",
    )


def _when(step: int | None) -> str:
    return "never" if step is None else f"at batch {step}"


def _faster_than(
    run: str,
    per: float,
    points: list[tuple[int, float]],
    split: str,
    reference_rows: list[dict] | None,
) -> Verdict:
    if not reference_rows:
        return Verdict("faster_than", NOT_MEASURABLE, f"{run}: no metrics.jsonl to compare with")
    ref_split = eval_split_of(reference_rows, split)
    ours = first_reaching(points, per)
    theirs = first_reaching(eval_points(reference_rows, ref_split), per)
    figure = f"{split} PER <= {per:g} {_when(ours)} vs {run} {_when(theirs)}"
    if ours is None and theirs is None:
        return Verdict("faster_than", NOT_MEASURABLE, figure)
    met = ours is not None and (theirs is None or ours < theirs)
    return Verdict("faster_than", MET if met else NOT_MET, figure)


def judge(
    config: RunConfig, metrics_rows: list[dict], reference_rows: list[dict] | None = None
) -> list[Verdict]:
    """One verdict per criterion set in ``config.criteria``, in the order of the section.
    ``reference_rows``: the metrics rows of ``criteria.faster_than.run`` (None if unreadable)."""
    c = config.criteria
    found = eval_split_of(metrics_rows, config.data.eval_split)
    split = found or config.data.eval_split  # without evaluation rows, the points are empty
    points = eval_points(metrics_rows, found)
    batches = batch_rows(metrics_rows)
    no_eval = f"no {config.data.eval_split} evaluation in the metrics"
    verdicts = []
    if c.target_per is not None:
        verdicts.append(
            _target_per(c.target_per, points, split)
            if points
            else Verdict("target_per", NOT_MEASURABLE, no_eval)
        )
    if c.final_per is not None:
        verdicts.append(
            _final_per(c.final_per, points, split)
            if points
            else Verdict("final_per", NOT_MEASURABLE, no_eval)
        )
    if c.target_wer is not None:
        verdicts.append(_target_wer(c.target_wer, eval_points(metrics_rows, found, mk.wer), split))
    if c.max_grad_norm is not None:
        verdicts.append(_max_grad_norm(c.max_grad_norm, batches))
    if c.no_nonfinite:
        verdicts.append(_no_nonfinite(batches))
    if c.faster_than is not None:
        ft = c.faster_than
        verdicts.append(
            _faster_than(ft.run, ft.per, points, split, reference_rows)
            if points
            else Verdict("faster_than", NOT_MEASURABLE, no_eval)
        )
    return verdicts
