"""Generate a synthetic release, one day at a time.

Each day draws from its own random streams, seeded by (seed, day index, purpose), on top of
the cross-day world built from the seed alone, so any day can be regenerated alone and equal
arguments give identical arrays. Splits are written as soon as their blocks are simulated:
peak memory is one split of one day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from brain2text import __version__
from brain2text.errors import ConfigError
from brain2text.phonemes import phonemize, to_ids

from .neural import TrialRecording, block_offsets, simulate_block
from .params import DEFAULT_PARAMS, SynthParams
from .schedule import DEFAULT_DAYS, holdout_days_among, plan_day
from .sentences import sample_sentences
from .session import World, build_world
from .text_source import check_enough, day_sentences, read_sentence_file
from .timeline import trial_latent
from .writer import (
    ANSWERS_FILE,
    MANIFEST_FILE,
    mat_fields,
    prepare_out_dir,
    write_day_file,
    write_json,
)

PLAN_STREAM, TRAIN_TEXT_STREAM, EVAL_TEXT_STREAM, NEURAL_STREAM = 1, 2, 3, 4
HOLDOUT = "competitionHoldOut"


@dataclass(frozen=True)
class DaySplit:
    """The trials of one split of one day, in recording order."""

    split: str
    day: str
    texts: list[str]
    blocks: list[int]
    recordings: list[TrialRecording]
    labels: list[np.ndarray]  # (T,) intended phoneme id per bin (0 = rest), not written


def day_rng(seed: int, day_index: int, stream: int) -> np.random.Generator:
    """Independent random stream for one purpose of one day."""
    return np.random.default_rng([seed, day_index, stream])


def simulate_day(
    world: World, day_index: int, n_train: int, n_test: int, n_holdout: int, seed: int,
    params: SynthParams, day_texts: tuple[list[str], list[str]] | None = None,
) -> Iterator[DaySplit]:  # fmt: skip
    """Yield the day's splits in recording order (hold-out, train, test), skipping empty ones.
    ``day_texts``: the day's (training, evaluation) sentences; None: drawn from the grammar."""
    day = world.days[day_index]
    blocks = plan_day(n_train, n_test, n_holdout, day_rng(seed, day_index, PLAN_STREAM))
    if day_texts is None:
        seen: set[str] = set()
        train_texts = sample_sentences(
            day_rng(seed, day_index, TRAIN_TEXT_STREAM), n_train, evaluation=False, exclude=seen
        )
        eval_texts = sample_sentences(
            day_rng(seed, day_index, EVAL_TEXT_STREAM), n_holdout + n_test, evaluation=True,
            exclude=seen,
        )  # fmt: skip
    else:
        train_texts, eval_texts = list(day_texts[0]), list(day_texts[1])
    queues = {"train": train_texts, HOLDOUT: eval_texts[:n_holdout], "test": eval_texts[n_holdout:]}
    rng = day_rng(seed, day_index, NEURAL_STREAM)
    rate_offsets, floor_offsets = block_offsets(len(blocks), params, rng)

    current: DaySplit | None = None
    for b, block in enumerate(blocks):
        if current is not None and current.split != block.split:
            yield current
            current = None
        if current is None:
            current = DaySplit(block.split, day.name, [], [], [], [])
        texts = [queues[block.split].pop(0) for _ in range(block.n_sentences)]
        latents = [
            trial_latent(
                np.array(to_ids(phonemize(t))), world.embeddings, world.neighbours, params, rng
            )  # fmt: skip
            for t in texts
        ]
        recordings = simulate_block(latents, day, rate_offsets[b], floor_offsets[b], params, rng)
        current.texts.extend(texts)
        current.blocks.extend([block.number] * len(texts))
        current.recordings.extend(recordings)
        current.labels.extend(lat.labels for lat in latents)
    if current is not None:
        yield current


def check_arguments(days: int, counts: dict[str, int], seed: int) -> None:
    """One-line ConfigError for an impossible request."""
    if not isinstance(days, int) or not 1 <= days <= len(DEFAULT_DAYS):
        raise ConfigError(f"days must be an integer from 1 to {len(DEFAULT_DAYS)}, got {days!r}")
    for name, value in counts.items():
        if not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")


def generate(
    out_dir: Path,
    *,
    days: int = 24,
    train_per_day: int = 40,
    test_per_day: int = 10,
    holdout_per_day: int = 20,
    seed: int = 0,
    progress: bool = True,
    params: SynthParams | None = None,
    overwrite: bool = False,
    compress: bool = False,
    compact: bool = False,
    sentences: Path | None = None,
) -> None:
    """Write a synthetic ``competitionData``-layout release into ``out_dir``.

    ``days`` takes the first N of the 24 real dates. Hold-out blocks are recorded only on the
    real hold-out days among them (at least one day when ``holdout_per_day`` > 0); their true
    sentences go to ``holdout_answers.json``. Raises DataError when ``out_dir`` already holds
    ``.mat`` files and ``overwrite`` is false, ConfigError for impossible arguments.
    ``compress`` zlib-compresses the variables as MATLAB's default save does: the counts
    shrink about 12x, spikePow hardly at all, and writing takes about twice as long.
    ``compact`` stores counts as uint8 and spikePow as single instead of doubles: files about
    five times smaller, written as fast (readers that accept any numeric class read them).
    ``sentences``: a text file whose sentences are spoken instead of the grammar's
    (:mod:`brain2text.synth.text_source`).
    """
    counts = {"train_per_day": train_per_day, "test_per_day": test_per_day,
              "holdout_per_day": holdout_per_day}  # fmt: skip
    check_arguments(days, counts, seed)
    params = params or DEFAULT_PARAMS
    source = read_sentence_file(Path(sentences)) if sentences is not None else None
    eval_per_day = test_per_day + holdout_per_day
    if source is not None:
        check_enough(source, days, train_per_day, eval_per_day)
    out_dir = Path(out_dir)
    prepare_out_dir(out_dir, overwrite)
    chosen = DEFAULT_DAYS[:days]
    holdout_days = holdout_days_among(chosen, holdout_per_day)
    manifest = {
        "generator": "brain2text.synth", "brain2text_version": __version__, "seed": seed,
        "days": list(chosen), "holdout_days": list(holdout_days), **counts, "compact": compact,
        "params": params.to_dict(), "complete": False,
        "sentences": source.record() if source is not None else "grammar",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }  # fmt: skip
    write_json(out_dir / MANIFEST_FILE, manifest)

    world = build_world(seed, params)
    answers: dict[str, list[str]] = {}
    for slot, day_name in enumerate(tqdm(chosen, desc="synth", unit="day", disable=not progress)):
        index = DEFAULT_DAYS.index(day_name)
        n_holdout = holdout_per_day if day_name in holdout_days else 0
        day_texts = None
        if source is not None:
            evaluation = day_sentences(source, seed, slot, eval_per_day, evaluation=True)
            day_texts = (
                day_sentences(source, seed, slot, train_per_day, evaluation=False),
                evaluation[: n_holdout + test_per_day],
            )
        for part in simulate_day(world, index, train_per_day, test_per_day, n_holdout, seed,
                                 params, day_texts):  # fmt: skip
            redact = part.split == HOLDOUT
            fields = mat_fields(
                part.texts, part.blocks, part.recordings, redact=redact, compact=compact
            )
            write_day_file(out_dir / part.split / f"{day_name}.mat", fields, compress)
            if redact:
                answers[day_name] = part.texts
                write_json(out_dir / ANSWERS_FILE, answers)
    if not answers:
        write_json(out_dir / ANSWERS_FILE, answers)
    write_json(out_dir / MANIFEST_FILE, {**manifest, "complete": True})
