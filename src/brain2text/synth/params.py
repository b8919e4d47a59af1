"""Every tunable of the synthetic recording generator, in one frozen dataclass.

Units: bins are 20 ms; log-rates are natural logs of counts per bin; powers are uV^2. The
defaults and what each field means are documented field by field in docs/synthetic-data.md.
Difficulty knobs (``gain``, ``jitter``, ``slip_*``) start on the hard side of the calibration
and are meant to be re-tuned by training a decoder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from brain2text.errors import ConfigError


@dataclass(frozen=True)
class SynthParams:
    """Parameters of the generative model (see docs/synthetic-data.md for the full story)."""

    # --- timeline of a trial (bins of 20 ms) ---
    rest_before_bins: tuple[int, int] = (20, 50)  # U(lo, hi) rest before speech
    rest_after_bins: tuple[int, int] = (25, 75)  # U(lo, hi) rest after speech
    prep_bins: tuple[int, int] = (5, 15)  # last bins of the pre-speech rest that ramp up
    prep_scale: float = 0.3  # preparatory state = ramp x this x first phoneme embedding
    vowel_mean_bins: float = 11.0  # Gamma(shape) mean duration of a vowel
    consonant_mean_bins: float = 7.5  # Gamma(shape) mean duration of a consonant
    duration_shape: float = 4.0  # Gamma shape of phoneme durations
    sil_shape: float = 2.0  # SIL between words: Gamma(sil_shape, sil_scale) bins
    sil_scale: float = 2.5
    pause_prob: float = 0.08  # chance that a word boundary holds a hesitation pause
    pause_mean_bins: float = 25.0  # Gamma(2) mean extra length of such a pause
    rate_sd: float = 0.15  # per-trial speaking-rate factor LogNormal(0, rate_sd)

    # --- articulatory latent state ---
    latent_dim: int = 32  # D, size of the phoneme embeddings
    random_part: float = 0.35  # norm of the random (non-articulatory) part before normalising
    vowel_norm: float = 1.1  # embedding norm of vowels (consonants 1.0)
    sil_norm: float = 0.6  # embedding norm of SIL (a closed, neutral posture)
    coartic_tau_bins: float = 3.0  # first-order lag (60 ms) applied to the state
    coartic_sigma_bins: float = 1.5  # then a Gaussian smoothing of this SD
    envelope_sigma_bins: float = 4.0  # smoothing of the condition-invariant speaking envelope
    jitter: float = 0.75  # per-token jitter norm (jitter / sqrt(D) per dimension)
    slip_substitute: float = 0.06  # chance a token is produced as a nearby phoneme
    slip_near_delete: float = 0.04  # chance a token is nearly deleted (short and weak)
    near_delete_duration: float = 0.3  # duration factor of a nearly deleted token
    near_delete_scale: float = 0.3  # embedding factor of a nearly deleted token

    # --- observation model: counts ---
    gain: float = 0.9  # global tuning gain on the log-rate
    tuned_fraction_ventral: float = 0.7  # fraction of ventral-6v electrodes that are tuned
    tuned_fraction_dorsal: float = 0.5  # fraction of dorsal-6v electrodes that are tuned
    dorsal_scale: float = 0.8  # tuning scale of the dorsal 6v array (ventral = 1)
    untuned_scale: float = 0.1  # residual tuning of "untuned" 6v electrodes
    area44_scale: float = 0.05  # tuning scale of the area-44 arrays (near chance)
    spatial_smoothing: float = 0.3  # share of a channel's tuning taken from its grid neighbours
    speaking_weight_mean: float = 0.25  # 6v weight of the speaking envelope on the log-rate
    speaking_weight_sd: float = 0.2
    area44_speaking_scale: float = 0.2  # area-44 speaking weights are this fraction of 6v's
    mean_rate: float = 0.52  # mean over electrodes of the channel rates (counts/bin); with the
    # speaking lift, caps and dead electrodes the realised mean tx1 is ~0.57
    rate_spread_sd: float = 0.5  # log-SD of channel mean rates across electrodes
    ou_dim: int = 8  # shared Ornstein-Uhlenbeck latent noise dimensions
    ou_tau_bins: float = 10.0  # its time constant (200 ms)
    ou_sd: float = 0.3  # SD of the shared noise on a channel's log-rate
    private_sd: float = 0.1  # SD of the per-bin private log-rate noise
    max_rate: float = 6.0  # cap on the Poisson rate per bin
    max_count: int = 12  # cap on tx1 per bin
    thin_probs: tuple[float, float, float] = (0.544, 0.710, 0.455)  # tx2|tx1, tx3|tx2, tx4|tx3
    thin_spread_sd: float = 0.3  # logit-SD of these probabilities across channels

    # --- observation model: spike-band power ---
    floor_median: float = 420.0  # median noise floor (uV^2); resting spikePow adds ~60 of MUA
    floor_sd: float = 0.4  # log-SD of the floors across channels
    floor_range: tuple[float, float] = (110.0, 800.0)  # floors clipped to this range
    floor_dof: float = 60.0  # chi-square degrees of freedom of the per-bin floor noise
    spike_power: tuple[float, float] = (25.0, 60.0)  # uV^2 per spike, U(lo, hi) per channel
    mua_factor: float = 1.5  # sub-threshold multi-unit power, in units of the channel's rate
    neighbour_factor: float = 0.5  # power from grid neighbours' spiking, in units of their rate
    burst_rate: float = 0.0005  # chance per bin that a broadband artefact starts
    burst_amp: tuple[float, float] = (1500.0, 3000.0)  # its amplitude, U(lo, hi) uV^2
    burst_bins: tuple[int, int] = (1, 3)  # its length, integer U[lo, hi] bins
    burst_rate_boost: float = 1.0  # extra Poisson rate on all channels during an artefact
    dead_floor_range: tuple[float, float] = (20.0, 80.0)  # floors of dead electrodes

    # --- nonstationarity across and within days ---
    drift_slow_tau_days: float = 150.0  # slow tuning drift component
    drift_slow_weight: float = 0.6
    drift_fast_tau_days: float = 20.0  # fast tuning drift component
    drift_fast_weight: float = 0.35  # the rest (1 - slow - fast) is fresh every session
    break_after_day: int = 1  # an extra tuning "break" after this day index (0-based)
    break_strength: float = 0.25  # share of the slow component replaced at the break
    baseline_walk_sd: float = 0.06  # log-baseline random walk SD per sqrt(day)
    floor_walk_sd: float = 0.03  # log-floor random walk SD per sqrt(day)
    day_offset_sd: float = 0.1  # AR(1) global log-rate offset across sessions
    day_gain_sd: float = 0.15  # AR(1) per-channel log tuning gain across sessions
    day_ar: float = 0.7  # AR(1) coefficient of the two above, session to session
    block_offset_sd: float = 0.2  # AR(1) per-channel log-rate offset of each block
    block_floor_sd: float = 0.2  # AR(1) per-channel log-floor offset of each block
    block_ar: float = 0.6  # AR(1) coefficient of block offsets within a day
    dead_initial: float = 0.03  # fraction of dead electrodes on the first day
    dead_per_session: float = 0.002  # fraction of live electrodes lost at each later session
    mouthed_gain: float = 0.6  # tuning gain factor on mouthed (not vocalised) days

    def __post_init__(self) -> None:
        """Reject values the model cannot use, naming the field."""
        probabilities = ("prep_scale", "pause_prob", "slip_substitute", "slip_near_delete",
                         "spatial_smoothing", "drift_slow_weight", "drift_fast_weight",
                         "break_strength", "day_ar", "block_ar", "dead_initial",
                         "dead_per_session")  # fmt: skip
        for name in probabilities:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"synth parameter {name} must lie in [0, 1]")
        if self.drift_slow_weight + self.drift_fast_weight > 1.0:
            raise ConfigError("synth parameters drift_slow_weight + drift_fast_weight exceed 1")
        if self.slip_substitute + self.slip_near_delete > 1.0:
            raise ConfigError("synth parameters slip_substitute + slip_near_delete exceed 1")
        if not all(0.0 < p < 1.0 for p in self.thin_probs):
            raise ConfigError("synth parameter thin_probs must lie strictly between 0 and 1")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple) and len(value) == 2 and value[0] > value[1]:
                raise ConfigError(f"synth parameter {f.name} must be (low, high) with low <= high")
        if self.latent_dim < 1 or self.ou_dim < 1:
            raise ConfigError("synth parameters latent_dim and ou_dim must be positive")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SynthParams:
        """Inverse of ``to_dict``; unknown keys raise ConfigError naming them."""
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"unknown synth parameters: {', '.join(unknown)}")
        fixed: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**fixed)


DEFAULT_PARAMS = SynthParams()
