"""Random spans of time bins (or feature columns) to mask, drawn for a padded batch.

Two ways of choosing the spans, both placing each span inside a trial's real length (never in
its padding) and both allowed to overlap:

* :func:`span_masks` (SpecAugment, the run notes' ``prob`` / ``width`` / ``max_masks``): up to
  ``max_masks`` spans a trial, each present with probability ``prob``, of a width uniform in
  1..``width``.
* :func:`time_mask_spans` (heavy time masking, the time-masked Transformer's recipe):
  ``count`` spans a trial, each of a width uniform in 1..max(1, floor(``max_fraction`` x the
  trial's length)), so that the masked share is the same for long and short trials.

Both are pure functions of their arguments and ``generator``: training draws them in
augmentation, and test-time adaptation can draw the masked copies of a trial the same way.
Everything is drawn on ``lengths``' device (the generator must live there). So is the noise
both add first (:func:`noise_and_offset`).
"""

from __future__ import annotations

import torch


def noise_and_offset(
    x: torch.Tensor,
    white_noise_sd: float,
    constant_offset_sd: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(B, T, C) features plus ``N(0, white_noise_sd)`` in every value and ``N(0,
    constant_offset_sd)`` per trial and feature, the same for all bins (drawn in that order;
    an SD of 0 draws nothing)."""
    batch, _, n_features = x.shape
    if white_noise_sd > 0:
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x = x + noise * white_noise_sd
    if constant_offset_sd > 0:
        offset = torch.randn(
            batch, 1, n_features, generator=generator, device=x.device, dtype=x.dtype
        )
        x = x + offset * constant_offset_sd
    return x


def _place_spans(
    lengths: torch.Tensor,
    size: int,
    widths: torch.Tensor,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """(B, size) True inside any of the (B, M) spans of ``widths`` bins, each started uniformly
    at 0..lengths[b] - width; widths of 0 (absent spans) and empty trials mask nothing.
    ``lengths`` must already be at most ``size`` and each width at most its trial's length."""
    room = (lengths[:, None] - widths + 1).clamp(min=1)  # valid start positions
    starts = (torch.rand(widths.shape, generator=generator, device=widths.device) * room).long()
    positions = torch.arange(size, device=widths.device)
    inside = (positions[None, None, :] >= starts[..., None]) & (
        positions[None, None, :] < (starts + widths)[..., None]
    )  # (B, M, size)
    return inside.any(dim=1)


def span_masks(
    lengths: torch.Tensor,
    size: int,
    prob: float,
    width: int,
    max_masks: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Boolean masks (B, size), True where masked.

    Row b gets up to ``max_masks`` spans, each present with probability ``prob``, of a width
    uniform in 1..min(width, lengths[b]), placed uniformly inside ``[0, lengths[b])``.
    """
    batch, device = lengths.shape[0], lengths.device
    if prob <= 0 or width <= 0 or max_masks <= 0:
        return torch.zeros(batch, size, dtype=torch.bool, device=device)
    lengths = lengths.clamp(max=size)
    draw = lambda: torch.rand(batch, max_masks, generator=generator, device=device)  # noqa: E731
    present = draw() < prob
    limit = lengths.clamp(min=1, max=width)  # (B,)
    widths = torch.minimum(1 + (draw() * limit[:, None]).long(), limit[:, None])
    widths = widths * (present & (lengths[:, None] > 0))  # absent spans: width 0
    return _place_spans(lengths, size, widths, generator)


def max_span_width(lengths: torch.Tensor, max_fraction: float) -> torch.Tensor:
    """The widest span of heavy time masking for trials of ``lengths`` bins:
    max(1, floor(max_fraction x length)) (the product in float64, so that 0.05 x 60 is 3, not
    2.9999...), and never wider than the trial (0 for an empty one)."""
    share = torch.floor(lengths.to(torch.float64) * max_fraction + 1e-9).long()
    return torch.minimum(share.clamp(min=1), lengths)


def time_mask_spans(
    lengths: torch.Tensor,
    size: int,
    count: int,
    max_fraction: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Boolean masks (B, size), True where masked: ``count`` spans a trial, each of a width
    uniform in 1..:func:`max_span_width` (``max_fraction`` of the trial's length, at least one
    bin), placed uniformly inside ``[0, lengths[b])``.

    Spans may overlap, so a trial of L bins has at most ``count`` x max(1, floor(max_fraction x
    L)) masked bins; the expected masked share is 1 - the mean over bins of each bin's chance
    of escaping all ``count`` spans."""
    batch, device = lengths.shape[0], lengths.device
    if count <= 0:
        return torch.zeros(batch, size, dtype=torch.bool, device=device)
    lengths = lengths.long().clamp(min=0, max=size)
    limit = max_span_width(lengths, max_fraction)  # (B,)
    draw = torch.rand(batch, count, generator=generator, device=device)
    widths = torch.minimum(1 + (draw * limit[:, None]).long(), limit[:, None])  # 0 if empty
    return _place_spans(lengths, size, widths, generator)
