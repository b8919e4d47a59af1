"""``brain2text adapt RUN RECORDING --day D``: teach a trained decoder a new recording day.

The new day gets an input layer of its own, started from the nearest earlier training day's
(what :class:`~brain2text.inference.decoder.Decoder` borrows for an unknown day), and only that
layer is fitted, with Adam and the CTC loss on the day's labelled sentences, every other weight
frozen and dropout off (the run file's ``adapt`` section: steps, lr, batch size). The last
``adapt.held_out_fraction`` of the day's trials are not fitted: the PER on them before and
after is the figure the command reports. The result is a new run folder whose checkpoint knows
the day (``Decoder.load`` and ``decode`` use it), with ``adapt.json`` holding the figures.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from brain2text.atomic import atomic_write_text
from brain2text.config import RunConfig, load_run, to_yaml
from brain2text.errors import ConfigError, DataError
from brain2text.evaluation.metrics import edit_distance
from brain2text.inference.decoder import Decoder, NewDayWarning, pad_bins
from brain2text.inference.raw import RawTrial, read_recording
from brain2text.model.ctc import ctc_losses
from brain2text.model.gru import GRUDecoder
from brain2text.phonemes import clean_text, phonemize, to_ids
from brain2text.runs.checkpoint import save_checkpoint
from brain2text.runs.folder import prepare_run_dir, stamp, write_run_record


@dataclass(frozen=True)
class Adapted:
    day: str
    started_from: str  # the training day whose layer the new one started as
    n_fitted: int
    n_held_out: int
    per_before: float
    per_after: float
    steps: int
    final_loss: float


def _labelled(trials: list[RawTrial], day: str) -> list[tuple[RawTrial, list[int]]]:
    out = []
    for t in trials:
        if not t.sentence:
            continue
        try:
            out.append((t, to_ids(phonemize(clean_text(t.sentence)))))
        except KeyError as exc:
            raise DataError(
                f"{t.source} trial {t.trial}: words not in the CMU dictionary "
                f"({exc}); adapt needs every sentence of day {day} phonemised"
            )
    return out


def _per(decoder: Decoder, trials: list[tuple[RawTrial, list[int]]], day: str) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NewDayWarning)
        outs = decoder.decode_batch([(t.features, day) for t, _ in trials])
    edits = sum(edit_distance(ids, list(o.phoneme_ids)) for (_, ids), o in zip(trials, outs, strict=False))
    return edits / max(sum(len(ids) for _, ids in trials), 1)


def _with_new_day(decoder: Decoder, start: int) -> GRUDecoder:
    old = decoder.model
    model = GRUDecoder(
        decoder.config.model, n_days=len(decoder.days) + 1, n_features=old.n_features
    ).to(decoder.device)
    state = old.state_dict()
    state["day_weights"] = torch.cat(
        [state["day_weights"], state["day_weights"][start : start + 1]]
    )
    state["day_biases"] = torch.cat([state["day_biases"], state["day_biases"][start : start + 1]])
    model.load_state_dict(state)
    return model.eval()


def _fit(
    model: GRUDecoder,
    trials: list[tuple[RawTrial, list[int]]],
    day: int,
    config: RunConfig,
    seed: int,
) -> float:
    ac = config.adapt
    for p in model.parameters():
        p.requires_grad_(False)
    params = [model.day_weights, model.day_biases]
    mask = torch.zeros(model.n_days, 1, 1, device=model.day_weights.device)
    mask[day] = 1.0  # gradients of the other days' layers are zeroed: only day ``day`` moves
    for p in params:
        p.requires_grad_(True)
        p.register_hook(lambda g: g * mask)
    optimizer = torch.optim.Adam(params, lr=ac.lr)
    rng = np.random.default_rng(seed)
    loss = math.nan
    for _ in range(ac.steps):
        pick = rng.choice(len(trials), size=min(ac.batch_size, len(trials)), replace=False)
        batch = [trials[k] for k in pick]
        x, n_bins = pad_bins([t.features for t, _ in batch], model.n_features)
        targets = torch.zeros(len(batch), max(len(ids) for _, ids in batch), dtype=torch.long)
        for row, (_, ids) in enumerate(batch):
            targets[row, : len(ids)] = torch.tensor(ids)
        days = torch.full((len(batch),), day)
        logits = model(x.to(mask.device), days.to(mask.device), n_bins.to(mask.device))
        value = ctc_losses(
            logits,
            model.ctc_input_lengths(n_bins).to(mask.device),
            targets.to(mask.device),
            torch.tensor([len(ids) for _, ids in batch], device=mask.device),
        ).mean()
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        loss = value.item()
    return loss


def adapt(
    run_dir: Path,
    recording: Path,
    day: str,
    out_dir: Path,
    *,
    overrides: list[str] | None = None,
    overwrite: bool = False,
    checkpoint: str = "best",
) -> Adapted:
    decoder = Decoder.load(run_dir, checkpoint=checkpoint)
    if day in decoder.days:
        raise ConfigError(
            f"--day {day}: already a training day of {run_dir}; adapt teaches it a new one"
        )
    config = load_run(Path(run_dir) / "config.yaml", overrides or [])
    trials = _labelled(read_recording(recording, decoder.feature_spec), day)  # all day ``day``
    n_held = max(1, int(round(config.adapt.held_out_fraction * len(trials))))
    if len(trials) - n_held < 1:
        raise DataError(
            f"{recording}: {len(trials)} labelled trial(s) of day {day}: too few "
            "to fit on some and measure on others"
        )
    fit, held = trials[:-n_held], trials[-n_held:]
    for t, _ in trials:
        decoder.check_features(t.features, f"{t.source} trial {t.trial}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NewDayWarning)
        start = decoder.day_index(day)
    before = _per(decoder, held, day)
    model = _with_new_day(decoder, start)
    loss = _fit(model, fit, len(decoder.days), config, config.train.seed)
    adapted = Decoder(
        model.eval(), config, [*decoder.days, day], decoder.feature_spec, decoder.device
    )
    after = _per(adapted, held, day)
    result = Adapted(
        day, decoder.days[start], len(fit), len(held), before, after, config.adapt.steps, loss
    )
    _write(out_dir, overwrite, run_dir, recording, config, adapted, result)
    return result


def _write(
    out_dir: Path,
    overwrite: bool,
    run_dir: Path,
    recording: Path,
    config: RunConfig,
    adapted: Decoder,
    result: Adapted,
) -> None:
    out_dir = Path(out_dir)
    prepare_run_dir(out_dir, overwrite)
    named = config.model_copy(update={"name": f"{config.name}+{result.day}", "parent": config.name})
    atomic_write_text(out_dir / "config.yaml", to_yaml(named))
    save_checkpoint(
        out_dir / "checkpoints" / "best.pt",
        adapted.model,
        {"config": named.to_dict(), "days": adapted.days, "features": adapted.feature_spec},
        result.steps,
    )
    figures = {**asdict(result), "run": str(run_dir), "recording": str(recording)}
    atomic_write_text(out_dir / "adapt.json", json.dumps(figures, indent=2) + "\n")
    write_run_record(
        out_dir,
        {
            "name": named.name,
            "parent": config.name,
            "adapted_from": str(run_dir),
            "started": stamp(),
        },
        "finished",
        {"adapt": figures},
    )
