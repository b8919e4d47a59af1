"""``brain2text evaluate``: rebuild the model from a checkpoint alone and leave evidence.

Writes ``RUN_DIR/eval/<split>/``:

* ``summary.json``: PER (total edits / total phonemes), mean per-sentence PER, edit distance,
  counts, per-day PER, loss, checkpoint and step;
* ``hypotheses.jsonl``: one row per sentence (session, trial, text, reference and hypothesis
  phonemes, edit distance);
* ``errors.txt``: the most frequent confusions and aligned ``(REF->HYP)`` examples, worst first.

For unlabelled hold-out data it writes ``decoded.txt`` (one sentence per line, phoneme symbols
separated by spaces) and ``decoded.jsonl``; with ``answers`` (a JSON file mapping session name to
its sentences in trial order, as ``brain2text synth`` writes) the hold-out is scored as well.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from brain2text.atomic import atomic_write_text
from brain2text.config import RunConfig, validate
from brain2text.data.dataset import PreparedDataset, PreparedSplit, open_prepared
from brain2text.data.splits import train_and_validation
from brain2text.distributed import pick_device
from brain2text.errors import DataError
from brain2text.evaluation.metrics import (
    align,
    confusions,
    edit_distance,
    format_alignment,
)
from brain2text.evaluation.scoring import Decoded, decode_split, references, score
from brain2text.g2p import make_phonemizer
from brain2text.model.gru import GRUDecoder
from brain2text.phonemes import N_CLASSES, to_ids, to_symbols
from brain2text.runs.checkpoint import load_checkpoint

SPLITS = {"test": "test", "competition": "competition", "val": "train"}
N_TOP_CONFUSIONS = 30
N_EXAMPLES = 40


WEIGHTS = ("raw", "ema")


def load_model(
    checkpoint: Path, device: torch.device, weights: str = "raw"
) -> tuple[GRUDecoder, RunConfig, dict]:
    """The model of ``checkpoint`` with its raw weights or their EMA (``train.ema_decay``)."""
    if weights not in WEIGHTS:
        raise DataError(f"--weights {weights}: choose one of {', '.join(WEIGHTS)}")
    payload = load_checkpoint(checkpoint, map_location=device)
    if weights == "ema" and "ema" not in payload:
        raise DataError(
            f"{checkpoint}: no EMA weights (the run did not set train.ema_decay); use --weights raw"
        )
    config = validate(payload["config"], origin=f"{checkpoint} (stored config)")
    state = payload["ema" if weights == "ema" else "model"]
    classes = state["readout.weight"].shape[0] if "readout.weight" in state else None
    if classes != N_CLASSES:
        raise DataError(
            f"{checkpoint}: the model emits {classes} classes, this brain2text "
            f"decodes {N_CLASSES} (CTC blank + 39 phonemes + SIL)"
        )
    n_features = state["day_weights"].shape[-1] if "day_weights" in state else None
    if n_features is None:
        raise DataError(f"{checkpoint}: no day_weights in its weights (not a brain2text GRU)")
    model = GRUDecoder(config.model, n_days=len(payload["days"]), n_features=n_features).to(device)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        reason = " ".join(str(exc).split())[:200]
        raise DataError(
            f"{checkpoint}: its weights do not fit the model its config describes ({reason})"
        ) from None
    model.eval()
    return model, config, payload


def answer_sentences(split: PreparedSplit, answers: Path, indices: np.ndarray) -> list[str]:
    """The sentences of trials ``indices`` from an answers file (session -> sentences in trial
    order, as ``brain2text synth`` writes ``holdout_answers.json``)."""
    try:
        table = json.loads(answers.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{answers}: cannot read answers ({exc})") from None
    sentences = []
    for i in map(int, indices):
        session, trial = split.session_of(i), int(split.trial[i])
        try:
            sentences.append(str(table[session][trial]))
        except (KeyError, IndexError, TypeError):
            raise DataError(f"{answers}: no answer for {split.describe(i)}") from None
    return sentences


def label_answer(labeller, sentence: str, answers: Path, where: str) -> list[int]:
    """Phoneme ids of an answer sentence, labelled as the dataset was."""
    try:
        return to_ids(labeller(sentence))
    except KeyError as exc:
        raise DataError(
            f"{answers}: {where}: words the dataset's phonemizer cannot pronounce: "
            f"{', '.join(exc.args[0])}"
        ) from None


def reference_ids(target: EvalTarget, answers: Path | None) -> list[list[int]] | None:
    """The reference phoneme ids of the target's trials: the split's labels, or the answers
    file's sentences labelled as the dataset was; None for an unlabelled split without one."""
    split, indices = target.split, target.indices
    if split.labelled:
        return references(split, indices)
    if answers is None:
        return None
    labeller = dataset_labeller(target.data)
    return [
        label_answer(labeller, s, answers, split.describe(int(i)))
        for i, s in zip(indices, answer_sentences(split, answers, indices), strict=False)
    ]


def dataset_labeller(data: PreparedDataset):
    """The phonemiser (and user lexicon) the prepared folder's labels were made with, so that
    hold-out answers are labelled the same way."""
    entry = data.manifest.get("phonemizer") or {}
    lexicon = (entry.get("lexicon") or {}).get("path")
    if lexicon is not None and not Path(lexicon).is_file():
        raise DataError(
            f"{data.path}: its labels used the lexicon {lexicon}, which is gone; "
            "the hold-out answers cannot be labelled the same way"
        )
    return make_phonemizer(entry.get("name", "cmu"), lexicon)


def _error_report(rows: list[dict]) -> str:
    pairs = [align(r["ref"].split(), r["hyp"].split()) for r in rows]
    counts = confusions(pairs)
    lines = ["# most frequent errors (REF -> HYP; * = nothing)", ""]
    lines += [f"{n:6d}  {r} -> {h}" for (r, h), n in counts.most_common(N_TOP_CONFUSIONS)]
    lines += [
        "",
        "# aligned sentences, worst first: correct phonemes as-is, errors as (REF->HYP)",
        "",
    ]
    worst = sorted(range(len(rows)), key=lambda k: -rows[k]["per"])[:N_EXAMPLES]
    for k in worst:
        r = rows[k]
        lines.append(f'{r["session"]} trial {r["trial"]}  PER {r["per"]:.3f}  "{r["text"]}"')
        lines.append("  " + format_alignment(pairs[k]))
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class EvalTarget:
    """A run's checkpoint rebuilt, and the trials of the split it is evaluated on."""

    model: GRUDecoder
    config: RunConfig
    payload: dict
    checkpoint: Path
    data: PreparedDataset
    split: PreparedSplit
    indices: np.ndarray  # trials of ``split`` evaluated, in order
    device: torch.device

    def info(self, split_name: str, weights: str) -> dict:
        return {
            "checkpoint": str(self.checkpoint),
            "checkpoint_step": self.payload["step"],
            "weights": weights,
            "split": split_name,
            "data": str(self.data.path),
        }


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
    ckpt_path = run_dir / "checkpoints" / f"{checkpoint}.pt"
    model, config, payload = load_model(ckpt_path, device, weights)
    data = open_prepared(data_path or Path(config.data.path))
    if model.n_features != data.n_features:
        raise DataError(
            f"{data.path}: holds {data.n_features} features a bin, the model of "
            f"{ckpt_path} reads {model.n_features} (it was trained on another "
            "feature set)"
        )
    if data.days != payload["days"]:
        raise DataError(
            f"{data.path}: its days differ from those the checkpoint was trained on "
            f"({len(data.days)} vs {len(payload['days'])} train sessions)"
        )
    if split_name == "val":
        chosen = train_and_validation(
            data, config.data.val_blocks_per_day, config.data.val_fraction_when_no_blocks
        )
        split, indices = chosen.val_split, chosen.val
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
    return EvalTarget(model, config, payload, ckpt_path, data, split, indices, device)


def decode_target(
    target: EvalTarget, batch_size: int | None = None, keep_log_probs: bool = False
) -> Decoded:
    tc = target.config.train
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


def eval_folder(run_dir: Path, split_name: str, weights: str, suffix: str = "") -> Path:
    """``eval/<split>[-ema][-lm]/``: each kind of evaluation keeps its own folder."""
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
) -> dict:
    """Evaluate ``run_dir``'s checkpoint on a split and write the evaluation files (under
    ``eval/<split>-ema/`` for the EMA weights, so both evaluations are kept)."""
    target = load_target(run_dir, split_name, checkpoint, weights, data_path, device_name)
    split, indices, data = target.split, target.indices, target.data
    decoded = decode_target(target, batch_size)
    out = eval_folder(run_dir, split_name, weights)
    out.mkdir(parents=True, exist_ok=True)
    info = target.info(split_name, weights)
    refs = reference_ids(target, answers)
    submission = is_submission(data, split_name)
    if refs is None:
        return write_decoded(out, split, decoded, info, submission)
    summary = score(refs, decoded, split.day_index[indices], data.days)
    return write_scored(out, split, decoded, refs, {**info, **summary.to_dict()})


SUBMISSION_FILE = "submission.csv"


def is_submission(data: PreparedDataset, split_name: str) -> bool:
    """Brain-to-Text '25's test split: its decoding is also written as ``submission.csv``."""
    return data.manifest.get("kind") == "b2t25" and split_name == "test"


def submission_csv(texts: list[str]) -> str:
    """The Brain-to-Text '25 submission: ``id,text``, ids 0..N-1 in the split's order
    (sessions by date, trials in file order)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "text"])
    writer.writerows(enumerate(texts))
    return buffer.getvalue()


def write_decoded(
    out: Path, split: PreparedSplit, decoded: Decoded, info: dict, submission: bool = False
) -> dict:
    rows = [
        {
            "session": split.session_of(int(i)),
            "trial": int(split.trial[i]),
            "hyp": " ".join(to_symbols(h.tolist())),
        }
        for i, h in zip(decoded.trial_ids, decoded.hypotheses, strict=False)
    ]
    atomic_write_text(out / "decoded.txt", "".join(r["hyp"] + "\n" for r in rows))
    if submission:
        atomic_write_text(out / SUBMISSION_FILE, submission_csv([r["hyp"] for r in rows]))
    atomic_write_text(out / "decoded.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    summary = {**info, "n_sentences": len(rows), "labelled": False}
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def write_scored(
    out: Path,
    split: PreparedSplit,
    decoded: Decoded,
    refs: list[list[int]],
    summary: dict,
    submission: bool = False,
) -> dict:
    summary = {**summary, "labelled": True}
    rows = []
    for k, i in enumerate(decoded.trial_ids):
        ref, hyp = to_symbols(refs[k]), to_symbols(decoded.hypotheses[k].tolist())
        distance = edit_distance(ref, hyp)
        rows.append(
            {
                "session": split.session_of(int(i)),
                "trial": int(split.trial[i]),
                "text": split.text(int(i)),
                "ref": " ".join(ref),
                "hyp": " ".join(hyp),
                "edit_distance": distance,
                "per": distance / max(len(ref), 1),
            }
        )
    atomic_write_text(out / "hypotheses.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    atomic_write_text(out / "errors.txt", _error_report(rows))
    if submission:
        atomic_write_text(out / SUBMISSION_FILE, submission_csv([r["hyp"] for r in rows]))
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=_jsonable) + "\n")
    return summary


def _jsonable(value):
    return None if isinstance(value, float) and math.isnan(value) else str(value)
