"""``brain2text evaluate RUN1 RUN2 ... --ensemble``: several decoders as one.

Every member decodes the split; the ensemble's emissions are the mean of the members'
per-frame log-probabilities, renormalised with a log-softmax, and are decoded greedily (or with
``--lm``/``--wfst``) as one model's would be. The members must agree on what a frame is and
what it emits: the same phoneme set (read-out size), the same training days (per-day layers),
the same patching (``kernel_len``, ``stride_len``: the same number of output frames) and the
same number of input features. The files land in ``OUT/eval/<split>/`` (``<split>-lm/`` with
words), with every member's PER beside the ensemble's in ``summary.json``; ``OUT`` defaults to
``runs/ensemble-<member>+<member>...``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from brain2text.decoding.greedy import collapse
from brain2text.errors import DataError
from brain2text.evaluation.evaluate import EvalTarget, decode_target, load_target
from brain2text.evaluation.pipeline import phoneme_evaluation, word_evaluation
from brain2text.evaluation.scoring import Decoded, score
from brain2text.evaluation.search import word_search
from brain2text.evaluation.summary import EvalSummary


def default_out(run_dirs: list[Path]) -> Path:
    return Path("runs") / ("ensemble-" + "+".join(Path(r).name for r in run_dirs))


def _facts(t: EvalTarget) -> dict[str, object]:
    """What the members of an ensemble must agree on."""
    return {
        "phoneme set (read-out classes)": t.model.readout.out_features,
        "training days": tuple(t.loaded.days),
        "patching (kernel_len, stride_len)": (t.config.model.kernel_len, t.config.model.stride_len),
        "input features": t.model.n_features,
    }


def check_members(targets: list[EvalTarget], run_dirs: list[Path]) -> None:
    """One-line DataError naming the first member that differs from the first one."""
    first = targets[0]
    reference = _facts(first)
    for run_dir, target in zip(run_dirs[1:], targets[1:], strict=False):
        for what, value in _facts(target).items():
            if value != reference[what]:
                raise DataError(
                    f"{run_dir}: its {what} differs from {run_dirs[0]}'s "
                    f"({_short(value)} vs {_short(reference[what])}); an ensemble's "
                    "members must agree on it"
                )
    if any(not np.array_equal(t.indices, first.indices) for t in targets[1:]):
        raise DataError(f"{run_dirs[0]}: the members evaluate different trials of the split")


def _short(value) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def mean_emissions(members: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Per trial: the log-softmax of the mean of the members' (T', C) log-probabilities."""
    out = []
    for per_trial in zip(*members, strict=False):
        mean = torch.from_numpy(np.mean(np.stack(per_trial), axis=0))
        out.append(mean.log_softmax(-1).numpy())
    return out


def evaluate_ensemble(
    run_dirs: list[Path],
    *,
    split_name: str = "test",
    checkpoint: str = "best",
    weights: str = "raw",
    data_path: Path | None = None,
    answers: Path | None = None,
    device_name: str = "auto",
    batch_size: int | None = None,
    out: Path | None = None,
    lm_dir: Path | None = None,
    wfst_dir: Path | None = None,
    **word_options,
) -> EvalSummary:
    run_dirs = [Path(r) for r in run_dirs]
    if len(run_dirs) < 2:
        raise DataError("--ensemble needs at least two run folders")
    words = lm_dir is not None or wfst_dir is not None
    search = word_search(None, lm_dir, wfst_dir, **word_options) if words else None
    targets = [load_target(run_dirs[0], split_name, checkpoint, weights, data_path, device_name)]
    data_path = data_path or targets[0].data.path  # every member reads the same trials
    targets += [
        load_target(r, split_name, checkpoint, weights, data_path, device_name)
        for r in run_dirs[1:]
    ]
    check_members(targets, run_dirs)
    first = targets[0]
    trials = first.trials(answers)
    decoded = [decode_target(t, batch_size, keep_log_probs=True) for t in targets]
    emissions = mean_emissions([d.emissions for d in decoded])
    ensemble = Decoded(
        trial_ids=decoded[0].trial_ids,
        hypotheses=[collapse(e.argmax(axis=1)) for e in emissions],
        losses=np.full(len(first.indices), np.nan),
        log_probs=emissions,
    )
    out = Path(out) if out is not None else default_out(run_dirs)
    header = EvalSummary(
        ensemble=[str(r) for r in run_dirs],
        weights=weights,
        split=split_name,
        checkpoint=checkpoint,
        data=str(first.data.path),
        combination="mean of the members' per-frame log-probabilities, log-softmaxed",
        n_sentences=len(first.indices),
        labelled=False,
    )
    if trials.references is not None:
        members = {
            str(r): score(trials.references.ids, d, trials.day_of, first.data.days).per
            for r, d in zip(run_dirs, decoded, strict=True)
        }
        header = replace(header, members=members)
    if search is not None:
        evaluation = word_evaluation(trials, emissions, search, header, split_name)
        suffix = "-lm" if lm_dir is not None else "-wfst"
        return evaluation.write(out / "eval" / f"{split_name}{suffix}")
    evaluation = phoneme_evaluation(trials, ensemble, header, split_name)
    return evaluation.write(out / "eval" / split_name)
