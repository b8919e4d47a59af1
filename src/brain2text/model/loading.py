"""A trained model rebuilt from its checkpoint alone: the config stored in it describes the
network, the training days size its per-day input layers, the weights fill it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from brain2text.config import RunConfig, validate
from brain2text.errors import DataError
from brain2text.model.factory import SpeechModel, new_model
from brain2text.model.inputs import n_outputs
from brain2text.runs.checkpoint import Checkpoint, load_checkpoint


@dataclass(frozen=True)
class LoadedModel:
    """A checkpoint's network in eval mode, its run config and the checkpoint itself."""

    model: SpeechModel
    config: RunConfig
    checkpoint: Checkpoint
    path: Path
    weights: str  # "raw" or "ema"

    @property
    def days(self) -> list[str]:
        return list(self.checkpoint.days)


def checkpoint_path(run_dir: Path, name: str = "best") -> Path:
    """``RUN_DIR/checkpoints/<name>.pt`` (``best`` or ``last``)."""
    return Path(run_dir) / "checkpoints" / f"{name}.pt"


def load_model(path: Path, device: torch.device, weights: str = "raw") -> LoadedModel:
    """The model of the checkpoint at ``path`` with its raw weights or their EMA
    (``train.ema_decay``); a one-line DataError when the file cannot give one."""
    path = Path(path)
    checkpoint = load_checkpoint(path, map_location=device)
    state = checkpoint.weights(weights)
    if state is None:
        raise DataError(
            f"{path}: no EMA weights (the run did not set train.ema_decay); use --weights raw"
        )
    config = validate(checkpoint.config, origin=f"{path} (stored config)")
    return LoadedModel(
        build_model(path, config, checkpoint, state, device), config, checkpoint, path, weights
    )


def feature_count(path: Path, state: dict[str, torch.Tensor], kernel_len: int) -> int:
    """The features per bin a model's weights read: the day layer's width, or the width of the
    encoder's first layer (its patches of ``kernel_len`` bins)."""
    if "day_weights" in state:
        return int(state["day_weights"].shape[-1])
    for key in FIRST_LAYERS:
        if key in state:
            return int(state[key].shape[-1]) // kernel_len
    raise DataError(f"{path}: not a brain2text model (no day layer, no {' / '.join(FIRST_LAYERS)})")


FIRST_LAYERS = ("gru.weight_ih_l0", "patch_embedding.weight")
"""The weights of each encoder's first layer, which read patches of the features."""


def build_model(
    path: Path,
    config: RunConfig,
    checkpoint: Checkpoint,
    state: dict[str, torch.Tensor],
    device: torch.device,
) -> SpeechModel:
    expected = n_outputs(config.model)
    classes = state["readout.weight"].shape[0] if "readout.weight" in state else None
    if classes != expected:
        raise DataError(
            f"{path}: the model emits {classes} classes, its config "
            f"(model.targets={config.model.targets}) needs {expected}"
        )
    n_features = feature_count(path, state, config.model.kernel_len)
    model = new_model(config, len(checkpoint.days), n_features).to(device)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        reason = " ".join(str(exc).split())[:200]
        raise DataError(
            f"{path}: its weights do not fit the model its config describes ({reason})"
        ) from None
    return model.eval()
