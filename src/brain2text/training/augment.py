"""Training-time augmentation of a padded batch of features (B, T, C).

* White noise: ``N(0, white_noise_sd)`` added to every value.
* Constant offset: ``N(0, constant_offset_sd)`` per trial and feature, the same for all bins.
* SpecAugment-style masks, with the run note's meaning of prob / width / max_masks: each trial
  gets ``max_masks`` independent chances, each taken with probability ``prob``, to mask a span
  whose width is drawn uniformly from 1..``width``. A time mask covers consecutive bins inside
  the trial's real length (never the padding, never more bins than the trial has); a feature
  mask covers consecutive feature columns. Masked values are set to 0, the block mean after
  z-scoring. Masks may overlap, so at most ``max_masks * width`` bins (or features) are masked.
* Heavy time masking (``time_masks``): ``count`` spans a trial, each up to ``max_fraction`` of
  its length (:func:`brain2text.model.masking.time_mask_spans`), drawn after the masks above.
  With ``fill: zero`` the masked bins become 0 here; with ``fill: learned`` the features are
  left as they are and the (B, T) mask is returned for the model to put its learned mask token
  there (after its input layers).

* Random cut (``random_cut``): the first k bins of every trial are dropped, k uniform in
  0..random_cut and the same for the batch (the Brain-to-Text '25 baseline), never leaving a
  trial shorter than the model's kernel.

Everything is drawn on the batch's device from ``generator``, which must live on that device
(a GPU run draws its noise on the GPU instead of copying millions of CPU normals every batch).
The streams of a CPU and a GPU generator differ, so a run is reproducible on one kind of device.
"""

from __future__ import annotations

import torch

from brain2text.config import AugmentConfig
from brain2text.model.masking import noise_and_offset, span_masks, time_mask_spans

__all__ = ["augment_batch", "random_cut", "span_masks"]


def random_cut(
    x: torch.Tensor,
    lengths: torch.Tensor,
    max_cut: int,
    min_bins: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, C), (B,) -> the batch without its first k bins and the shortened lengths."""
    if max_cut <= 0:
        return x, lengths
    k = int(torch.randint(0, max_cut + 1, (1,), generator=generator, device=x.device).item())
    k = max(min(k, int(lengths.min()) - min_bins), 0)
    return (x[:, k:], lengths - k) if k else (x, lengths)


def augment_batch(
    x: torch.Tensor,
    lengths: torch.Tensor,
    config: AugmentConfig,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Apply noise, offset and masks to a padded batch (B, T, C); returns a new tensor and
    the (B, T) bins the model's learned mask token is to fill (None: no such masks)."""
    batch, n_bins, n_features = x.shape
    device = x.device
    x = noise_and_offset(x, config.white_noise_sd, config.constant_offset_sd, generator)
    masking = (
        config.time_mask_prob > 0 and config.time_mask_width > 0 and config.time_mask_max_masks > 0
    ) or (
        config.freq_mask_prob > 0 and config.freq_mask_width > 0 and config.freq_mask_max_masks > 0
    )
    if masking:  # decided from the config: testing the masks would be a GPU sync point
        time_mask = span_masks(
            lengths.to(device),
            n_bins,
            config.time_mask_prob,
            config.time_mask_width,
            config.time_mask_max_masks,
            generator,
        )
        feature_mask = span_masks(
            torch.full((batch,), n_features, device=device),
            n_features,
            config.freq_mask_prob,
            config.freq_mask_width,
            config.freq_mask_max_masks,
            generator,
        )
        keep = ~(time_mask[:, :, None] | feature_mask[:, None, :])  # (B, T, C)
        x = x * keep.to(x.dtype)
    heavy = config.time_masks
    if heavy is None or heavy.count == 0:
        return x, None
    spans = time_mask_spans(lengths.to(device), n_bins, heavy.count, heavy.max_fraction, generator)
    if heavy.fill == "learned":
        return x, spans
    return x.masked_fill(spans[:, :, None], 0.0), None
