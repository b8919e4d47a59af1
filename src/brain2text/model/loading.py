"""A trained model rebuilt from its checkpoint alone: the config stored in it describes the
network, the training days size its per-day input layers, the weights fill it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from brain2text.config import RunConfig, validate
from brain2text.errors import DataError
from brain2text.model.gru import GRUDecoder
from brain2text.phonemes import N_CLASSES
from brain2text.runs.checkpoint import Checkpoint, load_checkpoint


@dataclass(frozen=True)
class LoadedModel:
    """A checkpoint's network in eval mode, its run config and the checkpoint itself."""

    model: GRUDecoder
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


def build_model(
    path: Path,
    config: RunConfig,
    checkpoint: Checkpoint,
    state: dict[str, torch.Tensor],
    device: torch.device,
) -> GRUDecoder:
    classes = state["readout.weight"].shape[0] if "readout.weight" in state else None
    if classes != N_CLASSES:
        raise DataError(
            f"{path}: the model emits {classes} classes, this brain2text "
            f"decodes {N_CLASSES} (CTC blank + 39 phonemes + SIL)"
        )
    if "day_weights" not in state:
        raise DataError(f"{path}: no day_weights in its weights (not a brain2text GRU)")
    n_features = int(state["day_weights"].shape[-1])
    model = GRUDecoder(config.model, n_days=len(checkpoint.days), n_features=n_features).to(device)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        reason = " ".join(str(exc).split())[:200]
        raise DataError(
            f"{path}: its weights do not fit the model its config describes ({reason})"
        ) from None
    return model.eval()
