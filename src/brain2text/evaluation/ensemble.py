"""``brain2text evaluate RUN1 RUN2 ... --ensemble``: several decoders as one.

Every member decodes the split; the ensemble's emissions are the mean of the members'
per-frame log-probabilities, renormalised with a log-softmax, and are decoded greedily (or with
``--lm``/``--wfst``) as one model's would be: log-probabilities, not raw logits, so members of
diphone targets (whose outputs are already the marginal's log-probabilities) and of phoneme
targets mix on one scale. The members must agree on what a frame is and what it emits: the
same phoneme set (41 emitted classes), the same training days (per-day layers),
the same patching (``kernel_len``, ``stride_len``: the same number of output frames) and the
same number of input features. The files land in ``OUT/eval/<split>/`` (``<split>-lm/`` with
words), with every member's PER beside the ensemble's in ``summary.json``; ``OUT`` defaults to
``runs/ensemble-<member>+<member>...``.

``merge`` chooses how the members combine: ``logits`` (the above, the default) or, with words
(``--lm``), ``nbest`` and ``generate``, which decode every member on its own and merge the
sentences (:mod:`brain2text.evaluation.merge`); those write ``<split>-merge-nbest/`` or
``<split>-merge-generate/`` and, from the same command, the logit average's ``<split>-lm/``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brain2text.decoding.greedy import collapse
from brain2text.errors import ConfigError
from brain2text.evaluation.members import decode_members, load_members
from brain2text.evaluation.pipeline import phoneme_evaluation, word_evaluation
from brain2text.evaluation.scoring import Decoded, score
from brain2text.evaluation.search import word_search
from brain2text.evaluation.summary import EvalSummary


def default_out(run_dirs: list[Path]) -> Path:
    return Path("runs") / ("ensemble-" + "+".join(Path(r).name for r in run_dirs))


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
    merge: str = "logits",
    llm: Any = None,
    rescoring: Any = None,
    **word_options: Any,
) -> EvalSummary:
    """Evaluate the ensemble of ``run_dirs`` (see the module docstring). ``llm``: a model
    spec (folder, ``.gguf``, packaged name) or a loaded SentenceScorer: the logit average's
    and the n-best merge's rescoring LLM (``rescoring``: its RescoreOptions), or the writer
    of ``generate``; ``word_options``: beam options."""
    from brain2text.evaluation.merge import MERGES, MergeModels

    if merge not in MERGES:
        raise ConfigError(f"--merge {merge}: choose one of {', '.join(MERGES)}")
    if merge != "logits" and lm_dir is None:
        raise ConfigError(f"--merge {merge} merges the members' words: give --lm LM_DIR")
    if merge == "generate" and llm is None:
        raise ConfigError(
            "--merge generate: give --llm LLM_DIR (a model from 'lm finetune --task correct')"
        )
    words = lm_dir is not None or wfst_dir is not None
    # built before the members decode, so a bad LM folder or graph is refused first
    search = word_search(None, lm_dir, wfst_dir, **word_options) if words else None
    models = MergeModels.of(llm, device_name)
    targets = load_members(run_dirs, split_name, checkpoint, weights, data_path, device_name)
    run_dirs = [Path(r) for r in run_dirs]
    first = targets[0]
    trials = first.trials(answers)
    decoded = decode_members(targets, batch_size)
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
    if search is not None and merge != "logits":
        from brain2text.evaluation.merge import merged_evaluation

        merged = merged_evaluation(
            merge,
            trials,
            [d.emissions for d in decoded],
            emissions,
            header,
            split_name,
            search,
            models,
            rescoring,
        )
        return merged.write(out / "eval", split_name)
    if search is not None:
        search = replace(search, rescorer=models.rescorer(rescoring))
        evaluation = word_evaluation(trials, emissions, search, header, split_name)
        suffix = "-lm" if lm_dir is not None else "-wfst"
        return evaluation.write(out / "eval" / f"{split_name}{suffix}")
    evaluation = phoneme_evaluation(trials, ensemble, header, split_name)
    return evaluation.write(out / "eval" / split_name)
