"""``brain2text adapt RUN RECORDING --day D``: teach a trained decoder a new recording day.

The new day gets an input layer of its own, started from the nearest earlier training day's
(what :class:`~brain2text.inference.decoder.Decoder` borrows for an unknown day), and only that
layer is fitted, with Adam and the CTC loss on the day's labelled sentences (training's own
step, :func:`~brain2text.training.step.train_step`), every other weight frozen and dropout off
(the run file's ``adapt`` section: steps, lr, batch size). The last ``adapt.held_out_fraction``
of the day's trials are not fitted: the PER on them before and after is the figure the command
reports. The result is a new run folder whose checkpoint knows the day (``Decoder.load`` and
``decode`` use it), with ``adapt.json`` holding the figures. Without labels (``--unlabelled
--lm``) the day's own confident word decodings are the labels
(:mod:`brain2text.training.adapt_unlabelled`).

Only a run with a day layer per day (``model.day_layers: per_day``) has a day's own layer to
fit; another is a one-line ConfigError.
"""

from __future__ import annotations

import contextlib
import json
import math
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from brain2text.atomic import atomic_write_text
from brain2text.config import RunConfig, load_run, to_yaml
from brain2text.data.batches import Batch
from brain2text.data.recording import RawTrial, read_recording
from brain2text.errors import ConfigError, DataError
from brain2text.evaluation.scoring import Decoded, Score, score
from brain2text.inference.decoder import Decoder, NewDayWarning, pad_bins
from brain2text.model.factory import SpeechModel, new_model
from brain2text.model.precision import denormals_flushed
from brain2text.phonemes import clean_text, phonemize, to_ids
from brain2text.runs.checkpoint import Checkpoint, save_checkpoint
from brain2text.runs.folder import prepare_run_dir, stamp, write_run_record
from brain2text.training.state import Evaluation, LatestEval
from brain2text.training.step import CpuMode, Learner, StepOptions, train_step

HELD_OUT = "held-out"  # the split the adapted checkpoint's evaluation scored


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


def labelled_trials(trials: list[RawTrial], day: str) -> list[tuple[RawTrial, list[int]]]:
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
            ) from None
    return out


def score_trials(decoder: Decoder, trials: list[tuple[RawTrial, list[int]]], day: str) -> Score:
    """The PER of ``decoder`` on ``trials`` of ``day`` (no loss: NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NewDayWarning)
        outs = decoder.decode_batch([(t.features, day) for t, _ in trials])
    decoded = Decoded(
        trial_ids=np.arange(len(trials)),
        hypotheses=[np.asarray(o.phoneme_ids, dtype=np.int64) for o in outs],
        losses=np.full(len(trials), np.nan),
    )
    return score([ids for _, ids in trials], decoded, np.zeros(len(trials), np.int64), [day])


def with_new_day(decoder: Decoder, start: int) -> SpeechModel:
    """The decoder's model with one more day layer, a copy of day ``start``'s, in eval mode."""
    old = decoder.model
    model = new_model(decoder.config, len(decoder.days) + 1, old.n_features).to(decoder.device)
    state = old.state_dict()
    state["day_weights"] = torch.cat(
        [state["day_weights"], state["day_weights"][start : start + 1]]
    )
    state["day_biases"] = torch.cat([state["day_biases"], state["day_biases"][start : start + 1]])
    model.load_state_dict(state)
    return model.eval()


def _batch(trials: list[tuple[RawTrial, list[int]]], day: int, n_features: int) -> Batch:
    """Labelled trials of day index ``day`` as a training batch, zero-padded as training's."""
    features, n_bins = pad_bins([t.features for t, _ in trials], n_features)  # (B, T, C), (B,)
    phonemes = torch.zeros(len(trials), max(len(ids) for _, ids in trials), dtype=torch.long)
    for row, (_, ids) in enumerate(trials):
        phonemes[row, : len(ids)] = torch.tensor(ids)
    return Batch(
        features,
        n_bins,
        phonemes,
        torch.tensor([len(ids) for _, ids in trials]),
        torch.full((len(trials),), day),
        torch.tensor([t.trial for t, _ in trials]),
    )


def fit_day_layer(
    model: SpeechModel,
    trials: list[tuple[RawTrial, list[int]]],
    day: int,
    config: RunConfig,
    seed: int,
) -> float:
    """Fit day ``day``'s input layer alone with training's step: no augmentation, dropout off
    (the model stays in eval mode), no clipping, fp32, each trial read packed as decoding reads
    it. One micro-batch a step: ``train.grad_accum`` cuts ``train.batch_size`` trials, and
    ``adapt.batch_size`` is a handful."""
    ac = config.adapt
    assert model.day_weights is not None and model.day_biases is not None  # check_day_layers
    for p in model.parameters():
        p.requires_grad_(False)
    params = [model.day_weights, model.day_biases]
    device = model.day_weights.device
    mask = torch.zeros(model.n_days, 1, 1, device=device)
    mask[day] = 1.0  # gradients of the other days' layers are zeroed: only day ``day`` moves
    for p in params:
        p.requires_grad_(True)
        p.register_hook(lambda g: g * mask)
    learner = Learner(
        model,
        model,
        torch.optim.Adam(params, lr=ac.lr),
        torch.amp.GradScaler(device.type, enabled=False),
        StepOptions(config.model, packed=True),
        torch.Generator(device=device),  # no augmentation: never drawn from
    )
    rng = np.random.default_rng(seed)
    loss = math.nan
    for _ in range(ac.steps):
        pick = rng.choice(len(trials), size=min(ac.batch_size, len(trials)), replace=False)
        batch = _batch([trials[k] for k in pick], day, model.n_features)
        loss = train_step(learner, batch.to(device)).loss
    return loss


def check_new_day(decoder: Decoder, run_dir: Path, day: str) -> None:
    """A one-line ConfigError unless ``day`` is new to the run and the run has day layers of
    its own to give it one."""
    if decoder.config.model.day_layers != "per_day":
        raise ConfigError(
            f"{run_dir}: model.day_layers is {decoder.config.model.day_layers}, so no day has an "
            "input layer of its own; adapt fits a new day's (per_day runs only)"
        )
    if day in decoder.days:
        raise ConfigError(
            f"--day {day}: already a training day of {run_dir}; adapt teaches it a new one"
        )


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
    with adapting(run_dir, overrides) as (config, cpu):
        return _adapt(run_dir, recording, day, out_dir, config, cpu, overwrite, checkpoint)


@contextlib.contextmanager
def adapting(run_dir: Path, overrides: list[str] | None) -> Iterator[tuple[RunConfig, CpuMode]]:
    """The run's config with the adapt overrides, and the CPU mode the block runs under (the
    float mode set before any tensor work, as training sets it)."""
    config = load_run(Path(run_dir) / "config.yaml", overrides or [])
    with denormals_flushed(config.train.flush_denormals) as flushed:
        yield config, CpuMode(torch.get_num_threads(), config.train.flush_denormals, flushed)


def _adapt(
    run_dir: Path,
    recording: Path,
    day: str,
    out_dir: Path,
    config: RunConfig,
    cpu: CpuMode,
    overwrite: bool,
    checkpoint: str,
) -> Adapted:
    decoder = Decoder.load(run_dir, checkpoint=checkpoint)
    check_new_day(decoder, run_dir, day)
    raw = read_recording(recording, decoder.feature_spec)
    trials = labelled_trials(raw, day)  # all of day ``day``
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
    before = score_trials(decoder, held, day).per
    model = with_new_day(decoder, start)
    loss = fit_day_layer(model, fit, len(decoder.days), config, config.train.seed)
    adapted = Decoder(
        model.eval(), config, [*decoder.days, day], decoder.feature_spec, decoder.device
    )
    after = score_trials(adapted, held, day)
    result = Adapted(
        day, decoder.days[start], len(fit), len(held), before, after.per, config.adapt.steps, loss
    )
    held_out = LatestEval(raw=Evaluation(result.steps, HELD_OUT, "raw", after))
    figures = {**asdict(result), "run": str(run_dir), "recording": str(recording)}
    write_adapted(out_dir, overwrite, run_dir, config, adapted, figures, cpu, held_out)
    return result


def write_adapted(
    out_dir: Path,
    overwrite: bool,
    run_dir: Path,
    config: RunConfig,
    adapted: Decoder,
    figures: dict,
    cpu: CpuMode,
    held_out: LatestEval,
) -> None:
    """The adapted run folder: config, ``checkpoints/best.pt`` (its evaluation: ``held_out``),
    ``adapt.json`` (``figures``: ``day`` and ``steps`` among them) and run.json."""
    out_dir = Path(out_dir)
    prepare_run_dir(out_dir, overwrite)
    day, steps = figures["day"], figures["steps"]
    named = config.model_copy(update={"name": f"{config.name}+{day}", "parent": config.name})
    atomic_write_text(out_dir / "config.yaml", to_yaml(named))
    checkpoint = Checkpoint(
        step=steps,
        model=adapted.model.state_dict(),
        config=named.to_dict(),
        days=list(adapted.days),
        features=adapted.feature_spec.to_dict(),
        evaluations=held_out.checkpoint_entries(),  # the held-out sentences' PER
    )
    save_checkpoint(out_dir / "checkpoints" / "best.pt", checkpoint)
    atomic_write_text(out_dir / "adapt.json", json.dumps(figures, indent=2) + "\n")
    write_run_record(
        out_dir,
        {
            "name": named.name,
            "parent": config.name,
            "adapted_from": str(run_dir),
            "started": stamp(),
            "cpu": cpu.to_dict(),
        },
        "finished",
        {"adapt": figures},
    )
