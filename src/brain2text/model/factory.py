"""The encoder a run config names (``model.kind``), built fresh for training or to take a
checkpoint's weights."""

from __future__ import annotations

from brain2text.config import RunConfig
from brain2text.model.gru import GRUDecoder
from brain2text.model.transformer import TransformerDecoder

SpeechModel = GRUDecoder | TransformerDecoder
"""Any of the encoders: what training, evaluation, decoding and export take."""


def has_mask_token(config: RunConfig) -> bool:
    """Whether the run's model learns a mask token (``augment.time_masks.fill: learned``)."""
    masks = config.augment.time_masks
    return masks is not None and masks.fill == "learned"


def new_model(config: RunConfig, n_days: int, n_features: int) -> SpeechModel:
    """A freshly initialised encoder of ``config.model.kind`` (on the CPU, in train mode)."""
    kind = TransformerDecoder if config.model.kind == "transformer" else GRUDecoder
    return kind(config.model, n_days, n_features, mask_token=has_mask_token(config))
