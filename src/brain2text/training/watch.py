"""The instability watch: warnings raised while a run trains, as soon as a failure starts.

Pure (no torch, no files): the training loop feeds :class:`InstabilityWatch` every batch
(:meth:`~InstabilityWatch.on_batch`) and every evaluation (:meth:`~InstabilityWatch.on_eval`);
each call returns the :class:`WatchWarning` s it raises at once. Three kinds:

``trend`` (Run #13's warm-up overshoot, FACTS section 4): over the window of the last
``trend_evals`` evaluations (this one included),
  * the eval loss rose at every evaluation: ``loss[i] > loss[i-1] * (1 + min_rel_rise)``,
  * the eval PER rose at every evaluation, by the same rule,
  * the LR was rising: never lower than at the evaluation before, and higher at the last one
    than at the first (the LR of an evaluation is the LR of the batch it follows),
  * the mean finite pre-clip gradient norm of the batches since the previous evaluation
    ("interval mean") rose over the window: ``last > first * (1 + min_rel_rise)``.
  All four must hold; the warning is raised again at every evaluation where they still hold,
  and :attr:`~InstabilityWatch.stop_reason` says when ``stop_after`` evaluations in a row did.
  A loss that rises while the LR falls or stays constant is not this pattern and stays quiet.
``grad_norm``: a finite pre-clip gradient norm at or above ``grad_norm_ceiling`` (the same
  "must stay < ceiling" as ``criteria.max_grad_norm``); reported once per evaluation interval,
  at the first batch over it.
``nonfinite``: a batch whose loss or gradient norm is NaN/Inf (the loop skips that step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Literal

Kind = Literal["trend", "grad_norm", "nonfinite"]
TREND: Kind = "trend"
GRAD_NORM: Kind = "grad_norm"
NONFINITE: Kind = "nonfinite"
DEFAULT_TREND_EVALS = 3
DEFAULT_MIN_REL_RISE = 0.01


@dataclass(frozen=True)
class WatchWarning:
    step: int
    lr: float
    kind: Kind
    message: str


@dataclass(frozen=True)
class _EvalPoint:
    step: int
    lr: float
    loss: float
    per: float
    grad_mean: float  # mean finite pre-clip norm of the batches since the previous evaluation


def _rises(values: list[float], min_rel_rise: float) -> bool:
    """Every value above the one before by more than ``min_rel_rise`` (relative)."""
    return all(
        math.isfinite(a) and math.isfinite(b) and b > a * (1.0 + min_rel_rise)
        for a, b in pairwise(values)
    )


@dataclass
class InstabilityWatch:
    trend_evals: int = DEFAULT_TREND_EVALS
    grad_norm_ceiling: float | None = None
    min_rel_rise: float = DEFAULT_MIN_REL_RISE
    stop_after: int | None = None
    warnings: list[WatchWarning] = field(default_factory=list, init=False)
    """Every warning raised so far, in order."""
    trend_streak: int = field(default=0, init=False)
    """Evaluations in a row that raised a ``trend`` warning."""
    _evals: list[_EvalPoint] = field(default_factory=list, init=False)
    _norm_sum: float = field(default=0.0, init=False)
    _norm_count: int = field(default=0, init=False)
    _ceiling_warned: bool = field(default=False, init=False)  # in the current eval interval

    def __post_init__(self) -> None:
        if self.trend_evals < 2:
            raise ValueError(f"trend_evals={self.trend_evals}: a trend needs 2 evaluations or more")

    def _raise(self, step: int, lr: float, kind: Kind, message: str) -> list[WatchWarning]:
        warning = WatchWarning(step, lr, kind, message)
        self.warnings.append(warning)
        return [warning]

    def on_batch(
        self, step: int, lr: float, loss: float, grad_norm: float, skipped: bool = False
    ) -> list[WatchWarning]:
        """One training batch: ``grad_norm`` is the pre-clip norm (NaN when not computed)."""
        if skipped or not math.isfinite(loss) or not math.isfinite(grad_norm):
            what = f"loss {loss}" if not math.isfinite(loss) else f"gradient norm {grad_norm}"
            return self._raise(step, lr, NONFINITE, f"non-finite {what}; step skipped")
        self._norm_sum += grad_norm
        self._norm_count += 1
        ceiling = self.grad_norm_ceiling
        if ceiling is not None and grad_norm >= ceiling and not self._ceiling_warned:
            self._ceiling_warned = True
            return self._raise(
                step,
                lr,
                GRAD_NORM,
                f"pre-clip gradient norm {grad_norm:.3g} >= ceiling {ceiling:g} "
                "(further ones before the next evaluation are not reported)",
            )
        return []

    def on_eval(self, step: int, lr: float, loss: float, per: float) -> list[WatchWarning]:
        """One evaluation, after the batches it follows were fed to :meth:`on_batch`."""
        grad_mean = self._norm_sum / self._norm_count if self._norm_count else math.nan
        self._evals.append(_EvalPoint(step, lr, loss, per, grad_mean))
        self._norm_sum, self._norm_count, self._ceiling_warned = 0.0, 0, False
        window = self._evals[-self.trend_evals :]
        if len(window) < self.trend_evals or not self._trend(window):
            self.trend_streak = 0
            return []
        self.trend_streak += 1
        first, last = window[0], window[-1]
        return self._raise(
            step,
            lr,
            TREND,
            (
                f"eval loss {first.loss:.4g} -> {last.loss:.4g} and PER {first.per:.4g} -> "
                f"{last.per:.4g} rose at every evaluation since step {first.step} while the LR "
                f"rose {first.lr:.3g} -> {last.lr:.3g} and the mean pre-clip grad norm between "
                f"evaluations {first.grad_mean:.3g} -> {last.grad_mean:.3g}; the LR may be too "
                "high"
            ),
        )

    def _trend(self, window: list[_EvalPoint]) -> bool:
        lrs = [p.lr for p in window]
        norms = [window[0].grad_mean, window[-1].grad_mean]
        return (
            _rises([p.loss for p in window], self.min_rel_rise)
            and _rises([p.per for p in window], self.min_rel_rise)
            and all(b >= a for a, b in pairwise(lrs))
            and lrs[-1] > lrs[0]
            and _rises(norms, self.min_rel_rise)
        )

    def state_dict(self) -> dict:
        """The watch's running state as plain lists and numbers (stored in ``last.pt`` so a
        resumed run warns exactly as the uninterrupted one would)."""
        return {
            "warnings": [vars(w).copy() for w in self.warnings],
            "trend_streak": self.trend_streak,
            "evals": [vars(p).copy() for p in self._evals],
            "norm_sum": self._norm_sum,
            "norm_count": self._norm_count,
            "ceiling_warned": self._ceiling_warned,
        }

    def load_state_dict(self, state: dict) -> None:
        self.warnings = [WatchWarning(**w) for w in state["warnings"]]
        self.trend_streak = state["trend_streak"]
        self._evals = [_EvalPoint(**p) for p in state["evals"]]
        self._norm_sum, self._norm_count = state["norm_sum"], state["norm_count"]
        self._ceiling_warned = state["ceiling_warned"]

    @property
    def stop_reason(self) -> str | None:
        """Why the run should stop now (``stop_after`` trend warnings in a row), else None."""
        if self.stop_after is None or self.trend_streak < self.stop_after:
            return None
        n = self.trend_streak
        return (
            f"{n} evaluation{'s' if n != 1 else ''} in a row with a trend warning "
            f"(watch.stop_after={self.stop_after})"
        )
