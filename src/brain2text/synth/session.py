"""The recorded "world" across all 24 sessions: electrodes, tuning drift, baselines, dead channels.

Everything here is drawn from the dataset seed alone, for the 24 real dates whatever subset is
generated, so day k is the same whether 3 or 24 days are asked for, and any day can be rebuilt
without the others. It is small (24 x 256 x D numbers), unlike the recordings themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .articulation import nearest_phonemes, phoneme_embeddings
from .electrodes import DORSAL_6V, N_CHANNELS, VENTRAL_6V, array_of, neighbour_matrix
from .params import SynthParams
from .schedule import DEFAULT_DAYS, MOUTHED_DAYS, day_numbers

SESSION_STREAM = 7_919  # seed-sequence tag of the world's random stream
# Mean squared norm of the smoothed latent state over the bins of a trial (measured on the
# default timeline); used to centre log-rates so that tuning strength does not move the mean.
DEFAULT_STATE_POWER = 0.75


@dataclass(frozen=True)
class DayState:
    """What the observation model needs for one session."""

    name: str
    index: int
    mouthed: bool
    tuning: np.ndarray  # (256, D) effective log-rate tuning (gains included)
    log_base: np.ndarray  # (256,) log mean rate per bin, centred for the modulations
    speak_weight: np.ndarray  # (256,) weight of the speaking envelope on the log-rate
    ou_loading: np.ndarray  # (256, ou_dim) loading of the shared OU noise
    thin: np.ndarray  # (3, 256) binomial thinning tx1->tx2, tx2->tx3, tx3->tx4
    floor: np.ndarray  # (256,) spike-band power noise floor (uV^2)
    spike_power: np.ndarray  # (256,) uV^2 per spike
    dead: np.ndarray  # (256,) bool


@dataclass(frozen=True)
class World:
    """Phoneme embeddings plus the 24 day states."""

    embeddings: np.ndarray  # (41, D), row 0 rest
    neighbours: np.ndarray  # (41, 3) nearest phonemes for substitution slips
    channel_scale: np.ndarray  # (256,) tuning scale (area, array, tuned or not)
    days: tuple[DayState, ...]


def ou_walk(gaps: np.ndarray, tau: float, shape: tuple[int, ...], rng: np.random.Generator):
    """Unit-variance Ornstein-Uhlenbeck samples at irregular times, (n_days, *shape).

    Correlation between two sessions ``g`` days apart is exp(-g / tau).
    """
    out = np.empty((len(gaps) + 1, *shape))
    out[0] = rng.standard_normal(shape)
    for i, gap in enumerate(gaps):
        rho = np.exp(-gap / tau)
        out[i + 1] = rho * out[i] + np.sqrt(1.0 - rho**2) * rng.standard_normal(shape)
    return out


def ar1_sessions(n: int, ar: float, sd: float, shape: tuple[int, ...], rng: np.random.Generator):
    """Stationary AR(1) across sessions, (n, *shape), marginal SD ``sd``."""
    out = np.empty((n, *shape))
    out[0] = rng.normal(0.0, sd, shape)
    for i in range(1, n):
        out[i] = ar * out[i - 1] + np.sqrt(1.0 - ar**2) * rng.normal(0.0, sd, shape)
    return out


def tuning_patterns(
    params: SynthParams, rng: np.random.Generator, names: tuple[str, ...] = DEFAULT_DAYS
) -> np.ndarray:
    """(days, 256, D) unit-variance tuning directions drifting across the dates ``names``.

    slow OU + fast OU + a fresh part each session, one extra break after ``break_after_day``,
    then spatial smoothing over grid neighbours (renormalised to unit variance).
    """
    shape = (N_CHANNELS, params.latent_dim)
    gaps = np.diff(day_numbers(names))
    slow = ou_walk(gaps, params.drift_slow_tau_days, shape, rng)
    b = params.break_after_day + 1
    if 0 < b < len(names):
        kick = rng.standard_normal(shape)
        # the break replaces part of the slow component from day b on, keeping unit variance
        slow[b:] = (
            np.sqrt(1 - params.break_strength) * slow[b:] + np.sqrt(params.break_strength) * kick
        )
    fast = ou_walk(gaps, params.drift_fast_tau_days, shape, rng)
    fresh = rng.standard_normal((len(names), *shape))
    w_fresh = max(0.0, 1.0 - params.drift_slow_weight - params.drift_fast_weight)
    raw = (
        np.sqrt(params.drift_slow_weight) * slow
        + np.sqrt(params.drift_fast_weight) * fast
        + np.sqrt(w_fresh) * fresh
    )
    nb = neighbour_matrix()
    s = params.spatial_smoothing
    smoothed = (1.0 - s) * raw + s * np.einsum("ij,djk->dik", nb, raw)
    variance = (1.0 - s) ** 2 + s**2 * (nb**2).sum(axis=1)  # neighbours are independent
    return smoothed / np.sqrt(variance)[None, :, None]


def channel_scales(params: SynthParams, rng: np.random.Generator) -> np.ndarray:
    """(256,) tuning scale: ventral 6v > dorsal 6v > area 44; untuned electrodes weak.

    Exactly round(fraction x 64) electrodes of each 6v array are tuned, chosen at random.
    """
    arrays = array_of()
    scale = np.full(N_CHANNELS, params.area44_scale)
    for array, fraction, array_scale in (
        (VENTRAL_6V, params.tuned_fraction_ventral, 1.0),
        (DORSAL_6V, params.tuned_fraction_dorsal, params.dorsal_scale),
    ):
        members = rng.permutation(np.flatnonzero(arrays == array))
        n_tuned = round(fraction * len(members))
        scale[members] = array_scale * params.untuned_scale
        scale[members[:n_tuned]] = array_scale
    return scale


def dead_masks(params: SynthParams, rng: np.random.Generator, n_days: int) -> np.ndarray:
    """(days, 256) bool: dead electrodes, an initial set plus a small loss at each session."""
    dead = np.zeros((n_days, N_CHANNELS), dtype=bool)
    dead[0] = rng.random(N_CHANNELS) < params.dead_initial
    for i in range(1, n_days):
        dead[i] = dead[i - 1] | (rng.random(N_CHANNELS) < params.dead_per_session)
    return dead


def build_world(
    seed: int,
    params: SynthParams,
    names: tuple[str, ...] = DEFAULT_DAYS,
    mouthed_days: tuple[str, ...] = MOUTHED_DAYS,
) -> World:
    """All session states for the dates ``names`` (the 2023 release's 24 by default), from
    the dataset seed; ``mouthed_days`` are sessions of mouthed, not vocalised, speech."""
    rng = np.random.default_rng([seed, SESSION_STREAM])
    embeddings = phoneme_embeddings(params, rng)
    neighbours = nearest_phonemes(embeddings)
    n_days, n = len(names), N_CHANNELS
    is_6v = np.isin(array_of(), (VENTRAL_6V, DORSAL_6V))
    scale = channel_scales(params, rng)
    patterns = tuning_patterns(params, rng, names)
    day_gain = np.exp(ar1_sessions(n_days, params.day_ar, params.day_gain_sd, (n,), rng))
    day_offset = ar1_sessions(n_days, params.day_ar, params.day_offset_sd, (1,), rng)
    day_offset -= day_offset.mean()  # day-to-day changes, not a shift of the whole release

    spread = np.exp(params.rate_spread_sd * rng.standard_normal(n))
    log_mean = np.log(params.mean_rate * spread / spread.mean())  # channel mean is exact
    days_since = day_numbers(names)
    steps = np.sqrt(np.diff(days_since, prepend=0.0))[:, None] * rng.standard_normal((n_days, n))
    walk = params.baseline_walk_sd * np.cumsum(steps, axis=0)
    walk -= 0.5 * params.baseline_walk_sd**2 * days_since[:, None]  # keep E[exp(walk)] = 1
    speak = rng.normal(params.speaking_weight_mean, params.speaking_weight_sd, n)
    speak[~is_6v] *= params.area44_speaking_scale
    ou_loading = rng.normal(0.0, params.ou_sd / np.sqrt(params.ou_dim), (n, params.ou_dim))
    logit = np.log(np.array(params.thin_probs) / (1 - np.array(params.thin_probs)))
    thin = 1 / (1 + np.exp(-(logit[:, None] + params.thin_spread_sd * rng.standard_normal((3, n)))))
    floor0 = np.exp(np.log(params.floor_median) + params.floor_sd * rng.standard_normal(n))
    fsteps = np.sqrt(np.diff(days_since, prepend=0.0))[:, None] * rng.standard_normal((n_days, n))
    floors = np.clip(floor0 * np.exp(params.floor_walk_sd * np.cumsum(fsteps, axis=0)),
                     *params.floor_range)  # fmt: skip
    dead_floor = rng.uniform(*params.dead_floor_range, n)
    spike_power = rng.uniform(*params.spike_power, n)
    dead = dead_masks(params, rng, n_days)

    days = []
    for i, name in enumerate(names):
        mouthed = name in mouthed_days
        gain = params.gain * scale * day_gain[i] * (params.mouthed_gain if mouthed else 1.0)
        # centre the log-rate: E[exp(x)] = exp(E[x] + Var[x] / 2) for the zero-mean parts
        variance = (
            (gain**2) * DEFAULT_STATE_POWER
            + params.ou_sd**2 + params.private_sd**2 + params.block_offset_sd**2
            + params.day_offset_sd**2
        )  # fmt: skip
        days.append(
            DayState(
                name=name,
                index=i,
                mouthed=mouthed,
                tuning=gain[:, None] * patterns[i],
                log_base=log_mean + walk[i] + day_offset[i] - variance / 2,
                speak_weight=speak,
                ou_loading=ou_loading,
                thin=thin,
                floor=np.where(dead[i], dead_floor, floors[i]),
                spike_power=spike_power,
                dead=dead[i],
            )
        )
    return World(embeddings=embeddings, neighbours=neighbours, channel_scale=scale,
                 days=tuple(days))  # fmt: skip


def tuning_correlation(world: World) -> np.ndarray:
    """(24, 24) correlation of the flattened area-6v tuning matrices between sessions."""
    is_6v = np.isin(array_of(), (VENTRAL_6V, DORSAL_6V))
    flat = np.stack([d.tuning[is_6v].ravel() for d in world.days])
    return np.corrcoef(flat)


def correlation_by_gap(corr: np.ndarray, windows: tuple[tuple[float, float], ...]) -> list[float]:
    """Mean off-diagonal correlation of session pairs whose gap (days) falls in each window."""
    days = day_numbers(DEFAULT_DAYS)
    gap = np.abs(days[:, None] - days[None, :])
    return [float(corr[(gap >= lo) & (gap <= hi)].mean()) if ((gap >= lo) & (gap <= hi)).any()
            else float("nan") for lo, hi in windows]  # fmt: skip
