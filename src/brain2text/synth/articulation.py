"""Articulatory phoneme embeddings: the latent "posture" each phoneme asks of the vocal tract.

Each phoneme is a vector of articulatory features (place, manner, voicing, vowel height,
backness, rounding, ...). Embeddings are a fixed random projection of the weighted features to
D dimensions plus a smaller random part, so phonemes that share a place of articulation ({P, B,
M}, {T, D, N}, {K, G}, ...) lie close together and get confused the way real decoders confuse
them. Row 0 of the embedding matrix is the rest posture (all zeros); row ``PHONEME_TO_ID[p]``
is phoneme ``p`` (ids 1..40, SIL included), matching the label ids.
"""

from __future__ import annotations

import numpy as np

from brain2text.phonemes import PHONEME_TO_ID, PHONEMES, SIL

from .params import SynthParams

VOWELS: frozenset[str] = frozenset(
    {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}
)
REST = 0  # row of the rest posture in the embedding matrix (the CTC blank id is never a token)

PLACE = ("bilabial", "labiodental", "dental", "alveolar", "postalveolar", "palatal", "velar",
         "glottal")  # fmt: skip
MANNER = ("stop", "fricative", "affricate", "nasal", "lateral", "rhotic", "approximant")
VOWEL_QUALITY = ("high", "mid", "low", "front", "central", "back", "round", "diphthong")
FEATURES: tuple[str, ...] = ("vowel", "silence", *PLACE, *MANNER, "voiced", *VOWEL_QUALITY)
# Place dominates, so confusions follow place of articulation; voicing is the weakest cue.
FEATURE_WEIGHT: dict[str, float] = {
    "vowel": 1.0, "silence": 1.5, "voiced": 0.45,
    **{f: 1.0 for f in PLACE}, **{f: 0.7 for f in MANNER}, **{f: 1.0 for f in VOWEL_QUALITY},
}  # fmt: skip
N_NEIGHBOURS = 3  # a substitution slip picks one of the 3 nearest phonemes
NEIGHBOUR_WEIGHTS = np.array([0.5, 0.3, 0.2])

_V = {"vowel": 1.0, "voiced": 1.0}
ARTICULATION: dict[str, dict[str, float]] = {
    "AA": {**_V, "low": 1, "back": 1},
    "AE": {**_V, "low": 1, "front": 1},
    "AH": {**_V, "mid": 1, "central": 1},
    "AO": {**_V, "mid": 0.5, "low": 0.5, "back": 1, "round": 1},
    "AW": {
        **_V,
        "low": 0.5,
        "high": 0.5,
        "central": 0.5,
        "back": 0.5,
        "round": 0.5,
        "diphthong": 1,
    },
    "AY": {**_V, "low": 0.5, "high": 0.5, "central": 0.5, "front": 0.5, "diphthong": 1},
    "EH": {**_V, "mid": 1, "front": 1},
    "ER": {**_V, "mid": 1, "central": 1, "rhotic": 1, "round": 0.3},
    "EY": {**_V, "mid": 0.5, "high": 0.5, "front": 1, "diphthong": 1},
    "IH": {**_V, "high": 0.7, "mid": 0.3, "front": 1},
    "IY": {**_V, "high": 1, "front": 1},
    "OW": {**_V, "mid": 0.7, "high": 0.3, "back": 1, "round": 1, "diphthong": 0.5},
    "OY": {**_V, "mid": 0.5, "high": 0.5, "back": 0.5, "front": 0.5, "round": 0.5, "diphthong": 1},
    "UH": {**_V, "high": 0.7, "mid": 0.3, "back": 1, "round": 0.6},
    "UW": {**_V, "high": 1, "back": 1, "round": 1},
    "P": {"bilabial": 1, "stop": 1},
    "B": {"bilabial": 1, "stop": 1, "voiced": 1},
    "M": {"bilabial": 1, "nasal": 1, "voiced": 1},
    "F": {"labiodental": 1, "fricative": 1},
    "V": {"labiodental": 1, "fricative": 1, "voiced": 1},
    "TH": {"dental": 1, "fricative": 1},
    "DH": {"dental": 1, "fricative": 1, "voiced": 1},
    "T": {"alveolar": 1, "stop": 1},
    "D": {"alveolar": 1, "stop": 1, "voiced": 1},
    "N": {"alveolar": 1, "nasal": 1, "voiced": 1},
    "S": {"alveolar": 1, "fricative": 1},
    "Z": {"alveolar": 1, "fricative": 1, "voiced": 1},
    "L": {"alveolar": 1, "lateral": 1, "voiced": 1},
    "R": {
        "postalveolar": 0.5,
        "alveolar": 0.3,
        "rhotic": 1,
        "approximant": 1,
        "round": 0.5,
        "voiced": 1,
    },
    "SH": {"postalveolar": 1, "fricative": 1},
    "ZH": {"postalveolar": 1, "fricative": 1, "voiced": 1},
    "CH": {"postalveolar": 1, "affricate": 1},
    "JH": {"postalveolar": 1, "affricate": 1, "voiced": 1},
    "Y": {"palatal": 1, "approximant": 1, "voiced": 1, "high": 0.5, "front": 0.5},
    "W": {"bilabial": 0.5, "velar": 0.5, "approximant": 1, "voiced": 1, "round": 1},
    "K": {"velar": 1, "stop": 1},
    "G": {"velar": 1, "stop": 1, "voiced": 1},
    "NG": {"velar": 1, "nasal": 1, "voiced": 1},
    "HH": {"glottal": 1, "fricative": 1},
    SIL: {"silence": 1},
}


def feature_matrix() -> np.ndarray:
    """(41, n_features) weighted articulatory features; row 0 (rest) is all zeros."""
    out = np.zeros((len(PHONEMES) + 1, len(FEATURES)))
    for phoneme, feats in ARTICULATION.items():
        for name, value in feats.items():
            out[PHONEME_TO_ID[phoneme], FEATURES.index(name)] = value * FEATURE_WEIGHT[name]
    return out


def is_vowel_id() -> np.ndarray:
    """(41,) bool: which ids are vowels."""
    out = np.zeros(len(PHONEMES) + 1, dtype=bool)
    out[[PHONEME_TO_ID[v] for v in VOWELS]] = True
    return out


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def phoneme_embeddings(params: SynthParams, rng: np.random.Generator) -> np.ndarray:
    """(41, D) embeddings: rest (row 0, zeros) then ids 1..40.

    unit(features @ projection) + random_part x unit(noise), renormalised to the vowel,
    consonant or SIL norm.
    """
    feats = feature_matrix()[1:]  # (40, F)
    projection = rng.standard_normal((feats.shape[1], params.latent_dim))
    articulatory = _unit_rows(feats @ projection)
    private = _unit_rows(rng.standard_normal((feats.shape[0], params.latent_dim)))
    emb = _unit_rows(articulatory + params.random_part * private)
    norms = np.where(is_vowel_id()[1:], params.vowel_norm, 1.0)
    norms[PHONEME_TO_ID[SIL] - 1] = params.sil_norm
    return np.vstack([np.zeros(params.latent_dim), emb * norms[:, None]])


def nearest_phonemes(embeddings: np.ndarray) -> np.ndarray:
    """(41, N_NEIGHBOURS) ids of the nearest other speech phonemes (SIL and rest excluded).

    Rows of rest and SIL point to themselves: they never slip.
    """
    n = embeddings.shape[0]
    dist = np.linalg.norm(embeddings[:, None, :] - embeddings[None, :, :], axis=-1)
    excluded = [REST, PHONEME_TO_ID[SIL]]
    dist[:, excluded] = np.inf
    np.fill_diagonal(dist, np.inf)
    out = np.argsort(dist, axis=1, kind="stable")[:, :N_NEIGHBOURS]
    out[excluded] = np.array(excluded)[:, None]
    assert out.shape == (n, N_NEIGHBOURS)
    return out
