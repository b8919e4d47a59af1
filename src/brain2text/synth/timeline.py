"""One trial's latent articulatory trajectory: durations, slips, jitter, co-articulation.

rest -> (preparatory ramp) -> phonemes with SIL after every word -> rest. Each token holds its
(jittered, possibly slipped) embedding for its duration; the piecewise-constant sequence is
smoothed by a first-order lag and a Gaussian (co-articulation). Labels are the intended
phonemes, whatever was produced.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import lfilter

from brain2text.phonemes import PHONEME_TO_ID, SIL

from .articulation import NEIGHBOUR_WEIGHTS, REST, is_vowel_id
from .params import SynthParams

SIL_ID = PHONEME_TO_ID[SIL]
_IS_VOWEL = is_vowel_id()


@dataclass(frozen=True)
class TrialLatent:
    """Latent trajectory of one trial (T bins)."""

    state: np.ndarray  # (T, D) smoothed articulatory state
    envelope: np.ndarray  # (T,) condition-invariant speaking envelope in [0, 1]
    labels: np.ndarray  # (T,) intended token id per bin (0 = rest), for tests and stats
    onset: int  # first bin of speech
    offset: int  # first bin of the closing rest


def token_durations(ids: np.ndarray, params: SynthParams, rng: np.random.Generator) -> np.ndarray:
    """(n,) float durations in bins, before slips: Gamma per token x one rate factor."""
    is_sil = ids == SIL_ID
    mean = np.where(_IS_VOWEL[ids], params.vowel_mean_bins, params.consonant_mean_bins)
    speech = rng.gamma(params.duration_shape, mean / params.duration_shape)
    sil = rng.gamma(params.sil_shape, params.sil_scale, size=ids.shape)
    pause = rng.gamma(2.0, params.pause_mean_bins / 2.0, size=ids.shape)
    pause *= rng.random(ids.shape) < params.pause_prob
    pause[-1] = 0.0  # the closing SIL merges into the final rest
    rate = np.exp(rng.normal(0.0, params.rate_sd))
    return np.where(is_sil, sil + pause, speech) * rate


def produced_tokens(
    ids: np.ndarray,
    embeddings: np.ndarray,
    neighbours: np.ndarray,
    params: SynthParams,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """(n, D) produced embeddings and (n,) duration factors after slips and jitter.

    A substitution slip produces one of the nearest phonemes; a near-deletion makes the token
    short and weak. SIL never slips. Jitter ~ N(0, jitter^2 / D) per dimension on every token.
    """
    n, dim = ids.shape[0], embeddings.shape[1]
    u = rng.random(n)
    speech = ids != SIL_ID
    substitute = speech & (u < params.slip_substitute)
    near_delete = speech & (u >= params.slip_substitute)
    near_delete &= u < params.slip_substitute + params.slip_near_delete
    choice = rng.choice(len(NEIGHBOUR_WEIGHTS), size=n, p=NEIGHBOUR_WEIGHTS)
    produced = np.where(substitute, neighbours[ids, choice], ids)
    emb = embeddings[produced] * np.where(near_delete, params.near_delete_scale, 1.0)[:, None]
    emb = emb + rng.normal(0.0, params.jitter / np.sqrt(dim), size=(n, dim))
    factor = np.where(near_delete, params.near_delete_duration, 1.0)
    return emb, factor


def smooth_state(state: np.ndarray, params: SynthParams) -> np.ndarray:
    """Co-articulation: first-order lag (tau) then Gaussian smoothing along time, (T, D)."""
    a = np.exp(-1.0 / params.coartic_tau_bins)
    lagged = lfilter([1.0 - a], [1.0, -a], state, axis=0)
    return gaussian_filter1d(lagged, params.coartic_sigma_bins, axis=0, mode="nearest")


def trial_latent(
    ids: np.ndarray,
    embeddings: np.ndarray,
    neighbours: np.ndarray,
    params: SynthParams,
    rng: np.random.Generator,
) -> TrialLatent:
    """Latent trajectory for the phoneme ids of one sentence (SIL after every word)."""
    ids = np.asarray(ids, dtype=np.int64)
    emb, factor = produced_tokens(ids, embeddings, neighbours, params, rng)
    durations = np.maximum(1, np.rint(token_durations(ids, params, rng) * factor)).astype(int)
    before = int(rng.integers(params.rest_before_bins[0], params.rest_before_bins[1] + 1))
    after = int(rng.integers(params.rest_after_bins[0], params.rest_after_bins[1] + 1))
    prep = min(before, int(rng.integers(params.prep_bins[0], params.prep_bins[1] + 1)))
    speech_bins = int(durations.sum())
    n_bins = before + speech_bins + after

    state = np.zeros((n_bins, embeddings.shape[1]))
    state[before : before + speech_bins] = np.repeat(emb, durations, axis=0)
    ramp = np.arange(1, prep + 1) / prep * params.prep_scale
    state[before - prep : before] = ramp[:, None] * emb[0]  # preparatory activity
    labels = np.full(n_bins, REST, dtype=np.int64)
    labels[before : before + speech_bins] = np.repeat(ids, durations)
    envelope = np.zeros(n_bins)
    envelope[before : before + speech_bins] = 1.0
    envelope = gaussian_filter1d(envelope, params.envelope_sigma_bins, mode="constant")
    return TrialLatent(
        state=smooth_state(state, params),
        envelope=envelope,
        labels=labels,
        onset=before,
        offset=before + speech_bins,
    )
