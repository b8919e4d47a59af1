"""Observation model: latent trajectories of one block -> tx1..tx4 counts and spikePow.

Per channel c and bin t:
    log-rate = log_base_c + block_offset_c + tuning_c . state_t + speak_c * envelope_t
               + loading_c . OU_t + private noise
    tx1 ~ min(Poisson(rate), max_count); tx2, tx3, tx4 by nested binomial thinning
    spikePow = floor_c * block_floor_c * chi2(k)/k
               + spike_power_c * (tx1 + mua * rate_c + neighbour * mean neighbour rate)
               + broadband artefacts
Trials of a block are simulated as one concatenated stretch (one vectorised pass) and split
back; the shared OU noise therefore runs on across trial boundaries, as in a recording.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from .electrodes import N_CHANNELS, neighbour_matrix
from .params import SynthParams
from .session import DayState
from .timeline import TrialLatent

N_THRESHOLDS = 4  # tx1..tx4: -3.5, -4.5, -5.5, -6.5 x RMS
BURST_COUPLING = (0.7, 1.0)  # per-channel share of a broadband artefact's amplitude


@dataclass(frozen=True)
class TrialRecording:
    """Observed features of one trial."""

    tx: np.ndarray  # (4, T, 256) uint8 threshold crossings, tx1 >= tx2 >= tx3 >= tx4
    spike_pow: np.ndarray  # (T, 256) float64 spike-band power (uV^2)


def block_offsets(
    n_blocks: int, params: SynthParams, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """AR(1) per-channel offsets across the blocks of a day: log-rate and log-floor, each
    (n_blocks, 256)."""
    out = np.zeros((2, max(n_blocks, 1), N_CHANNELS))
    sd = np.array([params.block_offset_sd, params.block_floor_sd])[:, None]
    out[:, 0] = rng.normal(0.0, 1.0, (2, N_CHANNELS)) * sd
    innovation = np.sqrt(1.0 - params.block_ar**2)
    for b in range(1, n_blocks):
        out[:, b] = params.block_ar * out[:, b - 1] + innovation * sd * rng.normal(
            0.0, 1.0, (2, N_CHANNELS)
        )
    return out[0, :n_blocks], out[1, :n_blocks]


def ou_noise(n_bins: int, dim: int, tau: float, rng: np.random.Generator) -> np.ndarray:
    """(n_bins, dim) stationary unit-variance Ornstein-Uhlenbeck process (time constant tau)."""
    rho = np.exp(-1.0 / tau)
    white = rng.standard_normal((n_bins, dim))
    start = rng.standard_normal(dim)
    out, _ = lfilter([np.sqrt(1.0 - rho**2)], [1.0, -rho], white, axis=0, zi=rho * start[None, :])
    return out


def artefacts(
    n_bins: int, params: SynthParams, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Rare broadband bursts: (n_bins,) amplitude (uV^2, 0 outside bursts) and (256,) coupling."""
    amp = np.zeros(n_bins)
    starts = np.flatnonzero(rng.random(n_bins) < params.burst_rate)
    for s in starts:
        length = int(rng.integers(params.burst_bins[0], params.burst_bins[1] + 1))
        amp[s : s + length] = np.maximum(amp[s : s + length], rng.uniform(*params.burst_amp))
    coupling = rng.uniform(*BURST_COUPLING, N_CHANNELS)
    return amp, coupling


def thin(counts: np.ndarray, p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Binomial thinning of (N, 256) counts with per-channel probabilities (256,)."""
    out = np.zeros_like(counts)
    rows, cols = np.nonzero(counts)  # most bins are empty: draw only where there is a spike
    out[rows, cols] = rng.binomial(counts[rows, cols], p[cols])
    return out


def simulate_block(
    latents: list[TrialLatent],
    day: DayState,
    block_offset: np.ndarray,
    block_floor: np.ndarray,
    params: SynthParams,
    rng: np.random.Generator,
) -> list[TrialRecording]:
    """Observed features of the trials of one block, in order."""
    lengths = [lat.state.shape[0] for lat in latents]
    state = np.concatenate([lat.state for lat in latents])  # (N, D)
    envelope = np.concatenate([lat.envelope for lat in latents])  # (N,)
    n_bins = state.shape[0]
    live = ~day.dead

    log_rate = state @ day.tuning.T  # (N, D) @ (D, 256) -> (N, 256)
    log_rate += day.log_base + block_offset
    log_rate += envelope[:, None] * day.speak_weight
    log_rate += ou_noise(n_bins, params.ou_dim, params.ou_tau_bins, rng) @ day.ou_loading.T
    log_rate += rng.normal(0.0, params.private_sd, log_rate.shape)
    rate = np.minimum(np.exp(log_rate), params.max_rate) * live

    burst, coupling = artefacts(n_bins, params, rng)
    spiking_rate = rate + params.burst_rate_boost * (burst > 0)[:, None] * coupling * live
    tx = np.empty((N_THRESHOLDS, n_bins, N_CHANNELS), dtype=np.uint8)
    tx[0] = np.minimum(rng.poisson(spiking_rate), params.max_count)
    for k in range(1, N_THRESHOLDS):
        tx[k] = thin(tx[k - 1], day.thin[k - 1], rng)

    floor = day.floor * np.exp(block_floor)
    dof = params.floor_dof
    spike_pow = rng.gamma(dof / 2.0, 2.0 / dof, (n_bins, N_CHANNELS)) * floor
    neighbours = rate @ neighbour_matrix().T  # mean rate of grid neighbours, (N, 256)
    multi_unit = tx[0] + params.mua_factor * rate + params.neighbour_factor * neighbours
    spike_pow += day.spike_power * live * multi_unit
    spike_pow += burst[:, None] * coupling

    cuts = np.cumsum(lengths)[:-1]
    return [
        TrialRecording(tx=t, spike_pow=s)
        for t, s in zip(np.split(tx, cuts, axis=1), np.split(spike_pow, cuts), strict=True)
    ]
