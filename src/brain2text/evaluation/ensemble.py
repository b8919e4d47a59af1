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

from pathlib import Path

import numpy as np
import torch

from brain2text.atomic import atomic_write_folder
from brain2text.decoding.greedy import collapse
from brain2text.errors import DataError
from brain2text.evaluation.evaluate import (
    EvalTarget,
    decode_target,
    is_submission,
    load_target,
    reference_ids,
    write_decoded,
    write_scored,
)
from brain2text.evaluation.scoring import Decoded, score
from brain2text.evaluation.word_eval import word_files, word_search


def default_out(run_dirs: list[Path]) -> Path:
    return Path("runs") / ("ensemble-" + "+".join(Path(r).name for r in run_dirs))


def check_members(targets: list[EvalTarget], run_dirs: list[Path]) -> None:
    """One-line DataError naming the first member that differs from the first one."""
    first = targets[0]
    facts = lambda t: {  # noqa: E731
        "phoneme set (read-out classes)": t.payload["model"]["readout.weight"].shape[0],
        "training days": tuple(t.payload["days"]),
        "patching (kernel_len, stride_len)": (t.config.model.kernel_len, t.config.model.stride_len),
        "input features": t.model.n_features,
    }
    reference = facts(first)
    for run_dir, target in zip(run_dirs[1:], targets[1:], strict=False):
        for what, value in facts(target).items():
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
) -> dict:
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
    decoded = [decode_target(t, batch_size, keep_log_probs=True) for t in targets]
    first = targets[0]
    split, indices = first.split, first.indices
    emissions = mean_emissions([d.log_probs for d in decoded])
    ensemble = Decoded(
        trial_ids=decoded[0].trial_ids,
        hypotheses=[collapse(e.argmax(axis=1)) for e in emissions],
        losses=np.full(len(indices), np.nan),
        log_probs=emissions,
    )
    out = Path(out) if out is not None else default_out(run_dirs)
    info = {
        "ensemble": [str(r) for r in run_dirs],
        "weights": weights,
        "split": split_name,
        "checkpoint": checkpoint,
        "data": str(first.data.path),
        "combination": "mean of the members' per-frame log-probabilities, log-softmaxed",
    }
    refs = reference_ids(first, answers)
    if refs is not None:
        day_of, days = split.day_index[indices], first.data.days
        info["members"] = {
            str(r): score(refs, d, day_of, days).per for r, d in zip(run_dirs, decoded, strict=False)
        }
    if words:
        decoder, header = search
        summary, files = word_files(
            first, emissions, decoder, split_name, answers, {**info, **header}
        )
        suffix = "-lm" if lm_dir is not None else "-wfst"
        atomic_write_folder(out / "eval" / f"{split_name}{suffix}", files)
        return summary
    folder = out / "eval" / split_name
    folder.mkdir(parents=True, exist_ok=True)
    submission = is_submission(first.data, split_name)
    if refs is None:
        return write_decoded(folder, split, ensemble, info, submission)
    summary = score(refs, ensemble, split.day_index[indices], first.data.days)
    return write_scored(folder, split, ensemble, refs, {**info, **summary.to_dict()}, submission)
