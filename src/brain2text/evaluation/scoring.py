"""One decoding pass over a split: greedy hypotheses, CTC loss and PER, overall and per day."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from brain2text.data.batches import eval_batches
from brain2text.data.dataset import PreparedSplit
from brain2text.decoding.greedy import greedy_decode
from brain2text.distributed import Dist
from brain2text.evaluation.metrics import error_rate, rates_by_day
from brain2text.model.ctc import ctc_losses
from brain2text.model.factory import SpeechModel
from brain2text.model.precision import autocast_context


@dataclass(frozen=True)
class Decoded:
    trial_ids: np.ndarray  # (N,) indices into the split, in the order given
    hypotheses: list[np.ndarray]  # phoneme ids per trial
    losses: np.ndarray  # (N,) CTC loss per trial divided by its target length (NaN unlabelled)
    log_probs: list[np.ndarray] | None = None  # (T'_i, 41) float32 log-softmax per trial, if kept

    @property
    def emissions(self) -> list[np.ndarray]:
        """The kept log-probabilities (a decoding made with ``keep_log_probs``)."""
        if self.log_probs is None:
            raise ValueError("these trials were decoded without keep_log_probs")
        return self.log_probs


@torch.no_grad()
def network_logits(
    model: SpeechModel,
    features: torch.Tensor,
    day_index: torch.Tensor,
    n_bins: torch.Tensor,
    use_amp: bool = False,
    amp_dtype: str = "bf16",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits stage: (B, T', 41) logits of a zero-padded batch on the model's device, read
    as packed sequences, under the run's autocast, and each trial's number of frames T'_i."""
    with autocast_context(features.device, use_amp, amp_dtype):
        logits = model(features, day_index, n_bins)
    return logits, model.output_lengths(n_bins)


def log_probs_of(logits: torch.Tensor, lengths: torch.Tensor) -> list[np.ndarray]:
    """Each trial's (T'_i, 41) float32 log-softmax emissions, for a word search."""
    log_probs = logits.float().log_softmax(-1).cpu().numpy()
    return [
        np.ascontiguousarray(row[:n]) for row, n in zip(log_probs, lengths.tolist(), strict=True)
    ]


@torch.no_grad()
def decode_split(
    model: SpeechModel,
    split: PreparedSplit,
    indices: np.ndarray,
    device: torch.device,
    batch_size: int,
    use_amp: bool = False,
    amp_dtype: str = "bf16",
    ranks: Dist | None = None,
    keep_log_probs: bool = False,
) -> Decoded:
    """Greedy hypotheses and CTC losses of trials ``indices``, returned in that order (with
    ``keep_log_probs``, each trial's log-softmax emissions too, for a beam search). With
    several ``ranks`` each decodes its turn of the length-sorted batches and all receive the
    whole result."""
    ranks = ranks or Dist()
    was_training = model.training
    model.eval()
    hyps: dict[int, np.ndarray] = {}
    losses: dict[int, float] = {}
    emissions: dict[int, np.ndarray] = {}
    for batch in eval_batches(split, indices, batch_size, ranks.rank, ranks.world_size):
        batch = batch.to(device)
        logits, out_lengths = network_logits(
            model, batch.features, batch.day_index, batch.n_bins, use_amp, amp_dtype
        )
        ids = batch.trial_ids.tolist()
        for i, hyp in zip(ids, greedy_decode(logits, out_lengths), strict=True):
            hyps[i] = hyp
        if keep_log_probs:
            emissions.update(zip(ids, log_probs_of(logits, out_lengths), strict=True))
        if split.labelled:
            batch_losses = ctc_losses(
                logits, model.ctc_input_lengths(batch.n_bins), batch.phonemes, batch.n_phones
            )
            losses.update(zip(ids, batch_losses.tolist(), strict=False))
    model.train(was_training)
    if ranks.enabled:
        for rank_hyps, rank_losses, rank_emissions in ranks.gather((hyps, losses, emissions)):
            hyps.update(rank_hyps)
            losses.update(rank_losses)
            emissions.update(rank_emissions)
    order = [int(i) for i in indices]
    return Decoded(
        trial_ids=np.asarray(order, dtype=np.int64),
        hypotheses=[hyps[i] for i in order],
        losses=np.asarray([losses.get(i, float("nan")) for i in order]),
        log_probs=[emissions[i] for i in order] if keep_log_probs else None,
    )


def references(split: PreparedSplit, trial_ids: np.ndarray) -> list[list[int]]:
    return [split.phonemes(int(i)).tolist() for i in trial_ids]


@dataclass(frozen=True)
class Score:
    """A decoding pass scored against references."""

    loss: float  # mean per-trial CTC loss (NaN when unlabelled)
    per: float  # total edits / total reference phonemes
    per_mean_sentence: float
    edit_distance: int
    n_phonemes: int
    n_sentences: int
    per_day: dict[str, float]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Score:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def score(refs: list[list[int]], decoded: Decoded, day_of: np.ndarray, days: list[str]) -> Score:
    """Loss, PER (total edits / total phonemes), edit counts and per-day PER of ``decoded``.
    ``day_of`` gives the day index of each decoded trial."""
    hyps = [h.tolist() for h in decoded.hypotheses]
    overall = error_rate(refs, hyps)
    per_day = rates_by_day(refs, hyps, day_of, days)
    labelled_losses = decoded.losses[~np.isnan(decoded.losses)]
    return Score(
        loss=float(labelled_losses.mean()) if len(labelled_losses) else float("nan"),
        per=overall.rate,
        per_mean_sentence=overall.mean_sentence_rate,
        edit_distance=overall.edit_distance,
        n_phonemes=overall.n_reference,
        n_sentences=overall.n_sentences,
        per_day=per_day,
    )
