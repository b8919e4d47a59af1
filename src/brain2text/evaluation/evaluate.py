"""``brain2text evaluate``: rebuild the model from a checkpoint alone and leave evidence.

Writes ``RUN_DIR/eval/<split>/`` (``<split>-ema/`` for the EMA weights; ``<split>-tta/`` with
test-time adaptation, :mod:`brain2text.evaluation.tta`), replaced whole:

* ``summary.json``: PER (total edits / total phonemes), mean per-sentence PER, edit distance,
  counts, per-day PER, loss, checkpoint and step (:class:`~brain2text.evaluation.summary.
  EvalSummary`);
* ``hypotheses.jsonl``: one row per sentence (session, trial, text, reference and hypothesis
  phonemes, edit distance, PER);
* ``errors.txt``: the most frequent confusions and aligned ``(REF->HYP)`` examples, worst first.

For unlabelled hold-out data it writes ``decoded.txt`` (one sentence per line, phoneme symbols
separated by spaces) and ``decoded.jsonl``; with ``answers`` (a JSON file mapping session name to
its sentences in trial order, as ``brain2text synth`` writes) the hold-out is scored as well,
its sentences labelled as the dataset was. With an LM folder or a decoding graph the same trials
are decoded to words (:mod:`brain2text.evaluation.word_eval`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from brain2text.config import RunConfig, TtaConfig
from brain2text.data.dataset import PreparedDataset, PreparedSplit, open_prepared
from brain2text.data.splits import train_and_validation
from brain2text.distributed import pick_device
from brain2text.errors import DataError
from brain2text.evaluation.labels import split_references
from brain2text.evaluation.pipeline import Trials, phoneme_evaluation
from brain2text.evaluation.scoring import Decoded, decode_split
from brain2text.evaluation.summary import EvalSummary
from brain2text.evaluation.tta import TrialAdapter, resolve_tta, tta_decode_split
from brain2text.model.factory import SpeechModel
from brain2text.model.loading import LoadedModel, checkpoint_path, load_model
from brain2text.model.precision import denormals_flushed

# evaluation split -> prepared split; "train" and "val" are the two parts training carved
# from the training files ("train": what the model learned from, e.g. examples for the LLM merge)
SPLITS = {"test": "test", "competition": "competition", "val": "train", "train": "train"}


@dataclass(frozen=True)
class EvalTarget:
    """A run's checkpoint rebuilt, and the trials of the split it is evaluated on."""

    loaded: LoadedModel
    data: PreparedDataset
    split: PreparedSplit
    indices: np.ndarray  # trials of ``split`` evaluated, in order
    device: torch.device

    @property
    def model(self) -> SpeechModel:
        return self.loaded.model

    @property
    def config(self) -> RunConfig:
        return self.loaded.config

    @property
    def checkpoint(self) -> Path:
        return self.loaded.path

    def header(self, split_name: str, adapter: TrialAdapter | None = None) -> EvalSummary:
        """The summary's part naming what is evaluated (the figures are filled in later);
        with ``adapter``, the test-time adaptation's settings."""
        return EvalSummary(
            checkpoint=str(self.loaded.path),
            checkpoint_step=self.loaded.checkpoint.step,
            weights=self.loaded.weights,
            split=split_name,
            data=str(self.data.path),
            n_sentences=len(self.indices),
            labelled=False,
            tta=adapter.describe() if adapter is not None else None,
        )

    def adapter(self, tta: TtaConfig | Sequence[str] | bool | None) -> TrialAdapter | None:
        """The test-time adaptation ``tta`` asks for (:func:`~brain2text.evaluation.tta.
        resolve_tta`) on this model, or None; a model without the chosen parameters: a
        one-line ConfigError."""
        config = resolve_tta(self.config, tta)
        if config is None:
            return None
        return TrialAdapter(self.model, config, self.config.optim.betas)

    def trials(self, answers: Path | None) -> Trials:
        """The trials with their references (the dataset's labels, or the answers labelled as
        the dataset was)."""
        refs = split_references(self.data, self.split, self.indices, answers)
        return Trials(self.data, self.split, self.indices, refs)


def load_target(
    run_dir: Path,
    split_name: str,
    checkpoint: str = "best",
    weights: str = "raw",
    data_path: Path | None = None,
    device_name: str = "auto",
) -> EvalTarget:
    if split_name not in SPLITS:
        raise DataError(f"--split {split_name}: choose one of {', '.join(SPLITS)}")
    device = pick_device(device_name)
    ckpt_path = checkpoint_path(run_dir, checkpoint)
    loaded = load_model(ckpt_path, device, weights)
    config, model = loaded.config, loaded.model
    data = open_prepared(data_path or Path(config.data.path))
    if model.n_features != data.n_features:
        raise DataError(
            f"{data.path}: holds {data.n_features} features a bin, the model of "
            f"{ckpt_path} reads {model.n_features} (it was trained on another "
            "feature set)"
        )
    if data.days != loaded.days:
        raise DataError(
            f"{data.path}: its days differ from those the checkpoint was trained on "
            f"({len(data.days)} vs {len(loaded.days)} train sessions)"
        )
    if split_name in ("val", "train"):
        chosen = train_and_validation(
            data, config.data.val_blocks_per_day, config.data.val_fraction_when_no_blocks
        )
        if split_name == "val":
            split, indices = chosen.val_split, chosen.val
        else:
            split, indices = chosen.train_split, chosen.train
    else:
        split = data.split(SPLITS[split_name])
        indices = np.arange(len(split), dtype=np.int64)
    unknown = [int(i) for i in indices if split.day_index[i] < 0]
    if unknown:
        raise DataError(
            f"{split.describe(unknown[0])}: its day is unknown, so no per-day input "
            "layer applies (import the pickle with --competition-days)"
        )
    too_short = [int(i) for i in indices if split.n_bins[i] < config.model.kernel_len]
    if too_short:
        raise DataError(
            f"{split.describe(too_short[0])}: shorter than model.kernel_len="
            f"{config.model.kernel_len} ({len(too_short)} such trials)"
        )
    return EvalTarget(loaded, data, split, indices, device)


def decode_target(
    target: EvalTarget,
    batch_size: int | None = None,
    keep_log_probs: bool = False,
    adapter: TrialAdapter | None = None,
) -> Decoded:
    """The logits stage over the target's trials: greedy hypotheses, losses (and emissions);
    with ``adapter``, each trial adapted first and decoded alone."""
    tc = target.config.train
    with denormals_flushed(tc.flush_denormals):  # subnormals cost a slow path on the CPU
        if adapter is not None:
            return tta_decode_split(
                adapter,
                target.split,
                target.indices,
                target.device,
                tc.use_amp,
                tc.amp_dtype,
                keep_log_probs=keep_log_probs,
            )
        return decode_split(
            target.model,
            target.split,
            target.indices,
            target.device,
            batch_size or tc.eval_batch_size,
            tc.use_amp,
            tc.amp_dtype,
            keep_log_probs=keep_log_probs,
        )


TTA_SUFFIX = "-tta"  # an evaluation with test-time adaptation: eval/<split>[-ema]-tta[-lm]/


def eval_folder(run_dir: Path, split_name: str, weights: str, suffix: str = "") -> Path:
    """``eval/<split>[-ema][-tta][-lm|-wfst]/``: each kind of evaluation keeps its own folder."""
    return run_dir / "eval" / (split_name + ("" if weights == "raw" else f"-{weights}") + suffix)


def evaluate_run(
    run_dir: Path,
    *,
    split_name: str = "test",
    checkpoint: str = "best",
    data_path: Path | None = None,
    answers: Path | None = None,
    device_name: str = "auto",
    batch_size: int | None = None,
    weights: str = "raw",
    tta: TtaConfig | Sequence[str] | bool | None = None,
) -> EvalSummary:
    """Evaluate ``run_dir``'s checkpoint on a split and write the evaluation folder (under
    ``eval/<split>-ema/`` for the EMA weights, so both evaluations are kept). ``tta``: adapt
    each trial first (:mod:`brain2text.evaluation.tta`; True: the run's ``tta`` section,
    ``KEY=VALUE`` strings: it with changes), files in ``eval/<split>[-ema]-tta/``."""
    run_dir = Path(run_dir)
    target = load_target(run_dir, split_name, checkpoint, weights, data_path, device_name)
    adapter = target.adapter(tta)
    trials = target.trials(answers)
    decoded = decode_target(target, batch_size, adapter=adapter)
    header = target.header(split_name, adapter)
    evaluation = phoneme_evaluation(trials, decoded, header, split_name)
    suffix = TTA_SUFFIX if adapter is not None else ""
    return evaluation.write(eval_folder(run_dir, split_name, weights, suffix))
