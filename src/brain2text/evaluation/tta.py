"""Test-time adaptation without labels: DietCORP's step, trial by trial (``evaluate --tta``,
``Decoder.load(..., tta=...)``; the settings are the run config's ``tta`` section,
:class:`~brain2text.sections.TtaConfig`).

For each trial, as the public code of Feghhi et al. (2025) does it:

1. the un-masked trial through the model (eval mode) gives a pseudo-label, its greedy CTC path
   (:func:`pseudo_labels`);
2. ``copies`` copies of the trial, each with white noise, a constant offset per feature and
   ``mask_count`` heavy time masks (:func:`masked_copies`, the masks of
   :func:`brain2text.model.masking.time_mask_spans`; masked bins are zero, or the learned mask
   token of a model trained with one), go through the model in train mode (its dropout on);
3. ``steps`` AdamW steps (``lr``, ``weight_decay``, the run's ``optim.betas``, gradients
   clipped to ``grad_clip_norm``) on their mean CTC loss against the pseudo-label, with only the
   chosen parameters trainable (:func:`chosen_parameters`); a step whose loss or gradient is
   not finite is skipped;
4. the trial is decoded with the adapted weights (eval mode, the run's autocast, as the plain
   evaluation), and every chosen parameter is then restored bit for bit, with the model's
   train/eval mode and ``requires_grad`` flags.

Where this differs from the public code: its pseudo-label is the n-gram LM's decoding of the
un-masked output, phonemised (greedy needs no LM, so any evaluation can adapt); it carries the
adapted weights and the optimiser from trial to trial and emits each trial's decoding before
that trial's own step, where here every trial starts from the checkpoint's weights with a fresh
optimiser and is decoded after its step (its decoding does not depend on the other trials or
their order). The step runs in float32.

Each trial is decoded alone (a batch of one), so its logits can differ from those of a batched
plain evaluation by float rounding (~1e-6); with ``lr: 0`` they equal a plain evaluation's at
batch size 1 exactly (tested).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from brain2text.config import RunConfig, TtaConfig, apply_overrides, validate
from brain2text.data.batches import eval_batches
from brain2text.data.dataset import PreparedSplit
from brain2text.decoding.greedy import greedy_decode
from brain2text.errors import ConfigError
from brain2text.evaluation.scoring import Decoded, log_probs_of, network_logits
from brain2text.model.ctc import ctc_losses
from brain2text.model.factory import SpeechModel
from brain2text.model.masking import noise_and_offset, time_mask_spans

PATCH_EMBEDDING = ("patch_norm.", "patch_embedding.", "embedding_norm.")
"""The Transformer's patch embedding: LayerNorm -> Linear -> LayerNorm (the parameters the
public code adapts, its ``to_patch_embedding``)."""
DAY_LAYER = ("day_weights", "day_biases")
_USE_INSTEAD = {
    "gru": "day_layer or gru_input",
    "transformer": "patch_embedding (or day_layer with model.day_layers per_day or shared)",
}


def _gru_input_names(model: nn.Module) -> tuple[str, ...]:
    return tuple(
        f"gru.{kind}_ih_l0{suffix}"
        for suffix in ("", "_reverse")
        for kind in ("weight", "bias")
        if hasattr(getattr(model, "gru", None), f"{kind}_ih_l0{suffix}")
    )


def chosen_parameters(model: SpeechModel, choice: str) -> dict[str, nn.Parameter]:
    """The parameters ``tta.parameters`` names in ``model`` (``auto``: the patch embedding of a
    Transformer, the day layer of a GRU, else its first layer's input weights), by name, or a
    one-line ConfigError naming the key and the model's kind when it has none of them."""
    kind = model.config.kind
    named = dict(model.named_parameters())
    if choice == "auto":
        if kind == "transformer":
            choice = "patch_embedding"
        else:
            choice = "day_layer" if all(n in named for n in DAY_LAYER) else "gru_input"
    if choice == "patch_embedding":
        names = tuple(n for n in named if n.startswith(PATCH_EMBEDDING))
        what = "no patch embedding"
    elif choice == "day_layer":
        names = tuple(n for n in DAY_LAYER if n in named)
        what = f"no day layer (model.day_layers: {model.config.day_layers})"
    elif choice == "gru_input":
        names = _gru_input_names(model)
        what = "no GRU layer"
    else:
        raise ConfigError(
            f"tta.parameters={choice}: choose auto, patch_embedding, day_layer or gru_input"
        )
    if not names:
        raise ConfigError(
            f"tta.parameters={choice}: a {kind} model has {what}; choose {_USE_INSTEAD[kind]}"
        )
    return {n: named[n] for n in names}


def masked_copies(
    features: torch.Tensor,
    n_bins: int,
    config: TtaConfig,
    generator: torch.Generator | None = None,
    zero_masked: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``config.copies`` copies of one trial's (1, T, C) features, each with white noise, a
    constant offset per feature and ``mask_count`` time masks inside its ``n_bins`` real bins;
    returns them (N, T, C) and the (N, T) masks. ``zero_masked``: masked bins become 0 (else
    they are left for the model's learned mask token)."""
    n = config.copies
    x = features.expand(n, -1, -1)
    _, n_time, n_features = x.shape
    device = features.device
    x = noise_and_offset(x, config.white_noise_sd, config.constant_offset_sd, generator)
    lengths = torch.full((n,), n_bins, device=device)
    masks = time_mask_spans(lengths, n_time, config.mask_count, config.mask_max_fraction, generator)
    if zero_masked:
        x = x.masked_fill(masks[:, :, None], 0.0)
    return x.contiguous(), masks


def pseudo_labels(logits: torch.Tensor, n_frames: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The greedy CTC path of one trial's (1, T', classes) outputs: (1, L) ids, and L."""
    path = greedy_decode(logits, n_frames)[0]
    return torch.as_tensor(path, dtype=torch.long, device=logits.device)[None], len(path)


def snapshot(params: dict[str, nn.Parameter]) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in params.items()}


@torch.no_grad()
def restore(params: dict[str, nn.Parameter], saved: dict[str, torch.Tensor]) -> None:
    for n, p in params.items():
        p.copy_(saved[n])


def trial_seed(seed: int, trial: int) -> int:
    """The seed of one trial's masks, noise and dropout, from ``tta.seed`` and the trial."""
    return int(np.random.SeedSequence((seed, trial)).generate_state(1)[0])


def resolve_tta(
    run_config: RunConfig, tta: TtaConfig | Sequence[str] | bool | None
) -> TtaConfig | None:
    """The settings asked for: None or False, no adaptation; True, the run's ``tta`` section;
    a TtaConfig as given; ``KEY=VALUE`` strings (``lr=0`` or ``tta.lr=0``), the run's section
    with those changes (a bad key or value: a one-line ConfigError naming it)."""
    if tta is None or tta is False:
        return None
    if tta is True:
        return run_config.tta
    if isinstance(tta, TtaConfig):
        return tta
    overrides = []
    for text in tta:
        full = text if text.startswith("tta.") else f"tta.{text}"
        if "." in full.partition("=")[0][len("tta.") :]:
            raise ConfigError(f"--tta-set {text}: give a key of the tta section, e.g. lr=1e-4")
        overrides.append(full)
    data = apply_overrides({"name": run_config.name, "tta": run_config.tta.model_dump()}, overrides)
    return validate(data, "--tta-set").tta


def describe(config: TtaConfig, names: Sequence[str]) -> dict[str, Any]:
    """What an evaluation's summary says of its adaptation: the settings and the parameters."""
    return {**config.model_dump(mode="json"), "parameter_names": list(names)}


@dataclass(frozen=True)
class TrialAdaptation:
    """One trial's steps: the loss of each (NaN for a step skipped as not finite)."""

    losses: tuple[float, ...]


class TrialAdapter:
    """DietCORP for one model (see the module docstring): :meth:`adapted` holds a trial's
    adapted weights for the length of a ``with`` block, :meth:`logits` decodes a trial with
    them."""

    def __init__(
        self,
        model: SpeechModel,
        config: TtaConfig,
        betas: tuple[float, float] = (0.9, 0.999),
    ) -> None:
        self.model, self.config, self.betas = model, config, betas
        self.params = chosen_parameters(model, config.parameters)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(self.params)

    def describe(self) -> dict[str, Any]:
        return describe(self.config, self.parameter_names)

    @contextlib.contextmanager
    def adapted(
        self, features: torch.Tensor, day_index: torch.Tensor, n_bins: torch.Tensor, seed: int
    ) -> Iterator[TrialAdaptation]:
        """Within the block the model holds the weights adapted to this one trial ((1, T, C)
        features, (1,) day index and bins on the model's device), in eval mode; on leaving it
        every chosen parameter is restored bit for bit, with the mode and the flags."""
        model = self.model
        saved = snapshot(self.params)
        flags = {n: p.requires_grad for n, p in model.named_parameters()}
        was_training = model.training
        devices = [features.device] if features.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):  # dropout's draws, then given back
                torch.manual_seed(seed)
                losses = self._steps(features, day_index, n_bins, seed)
            model.eval()
            yield TrialAdaptation(losses)
        finally:
            restore(self.params, saved)
            for n, p in model.named_parameters():
                p.requires_grad_(flags[n])
            model.train(was_training)

    def _steps(
        self, features: torch.Tensor, day_index: torch.Tensor, n_bins: torch.Tensor, seed: int
    ) -> tuple[float, ...]:
        model, config = self.model, self.config
        model.eval()
        logits, n_frames = network_logits(model, features, day_index, n_bins)
        labels, n_labels = pseudo_labels(logits, n_frames)
        generator = torch.Generator(device=features.device).manual_seed(seed)
        learned = model.mask_token is not None
        for p in model.parameters():
            p.requires_grad_(False)
        params = list(self.params.values())
        for p in params:
            p.requires_grad_(True)
        optimizer = torch.optim.AdamW(
            params, lr=config.lr, betas=self.betas, weight_decay=config.weight_decay
        )
        n = config.copies
        frames = model.ctc_input_lengths(n_bins).expand(n)
        targets = labels.expand(n, -1)
        target_lengths = torch.full((n,), n_labels, device=features.device)
        model.train()
        losses = []
        for _ in range(config.steps):
            x, masks = masked_copies(features, int(n_bins[0]), config, generator, not learned)
            out = model(
                x,
                day_index.expand(n),
                n_bins.expand(n),
                time_mask=masks if learned else None,
            )
            assert isinstance(out, torch.Tensor)  # without diphones=True: the 41 columns
            loss = ctc_losses(out, frames, targets, target_lengths).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            clip = config.grad_clip_norm if config.grad_clip_norm is not None else math.inf
            norm = float(torch.nn.utils.clip_grad_norm_(params, clip))
            value = float(loss.detach())
            if math.isfinite(value) and math.isfinite(norm):
                optimizer.step()
                losses.append(value)
            else:
                losses.append(math.nan)
        optimizer.zero_grad(set_to_none=True)
        return tuple(losses)

    def logits(
        self,
        features: torch.Tensor,
        day_index: torch.Tensor,
        n_bins: torch.Tensor,
        seed: int,
        use_amp: bool = False,
        amp_dtype: str = "bf16",
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One trial's (1, T', 41) logits and (1,) frames, decoded with the weights adapted to
        it (which are restored before this returns)."""
        with self.adapted(features, day_index, n_bins, seed):
            return network_logits(self.model, features, day_index, n_bins, use_amp, amp_dtype)


def tta_decode_split(
    adapter: TrialAdapter,
    split: PreparedSplit,
    indices: np.ndarray,
    device: torch.device,
    use_amp: bool = False,
    amp_dtype: str = "bf16",
    keep_log_probs: bool = False,
) -> Decoded:
    """:func:`~brain2text.evaluation.scoring.decode_split` with each trial adapted first: its
    greedy hypothesis, CTC loss against its label (labelled splits) and, when kept, its
    log-probabilities, all from the weights adapted to it; in the order of ``indices``."""
    model = adapter.model
    hyps: dict[int, np.ndarray] = {}
    losses: dict[int, float] = {}
    emissions: dict[int, np.ndarray] = {}
    for batch in eval_batches(split, indices, 1):
        batch = batch.to(device)
        trial = int(batch.trial_ids[0])
        logits, n_frames = adapter.logits(
            batch.features,
            batch.day_index,
            batch.n_bins,
            trial_seed(adapter.config.seed, trial),
            use_amp,
            amp_dtype,
        )
        hyps[trial] = greedy_decode(logits, n_frames)[0]
        if keep_log_probs:
            emissions[trial] = log_probs_of(logits, n_frames)[0]
        if split.labelled:
            lengths = model.ctc_input_lengths(batch.n_bins)
            loss = ctc_losses(logits, lengths, batch.phonemes, batch.n_phones)
            losses[trial] = float(loss[0])
    order = [int(i) for i in indices]
    return Decoded(
        trial_ids=np.asarray(order, dtype=np.int64),
        hypotheses=[hyps[i] for i in order],
        losses=np.asarray([losses.get(i, float("nan")) for i in order]),
        log_probs=[emissions[i] for i in order] if keep_log_probs else None,
    )
