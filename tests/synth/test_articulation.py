import numpy as np

from brain2text.phonemes import PHONEME_TO_ID, PHONEMES
from brain2text.synth.articulation import (
    ARTICULATION,
    nearest_phonemes,
    phoneme_embeddings,
)
from brain2text.synth.params import SynthParams


def _world():
    params = SynthParams()
    emb = phoneme_embeddings(params, np.random.default_rng(0))
    return params, emb, nearest_phonemes(emb)


def test_every_phoneme_has_features():
    assert set(ARTICULATION) == set(PHONEMES)


def test_embeddings_shape_and_norms():
    params, emb, _ = _world()
    assert emb.shape == (len(PHONEMES) + 1, params.latent_dim)
    assert not emb[0].any()  # rest
    norms = np.linalg.norm(emb[1:], axis=1)
    assert np.isclose(norms[PHONEME_TO_ID["IY"] - 1], params.vowel_norm)
    assert np.isclose(norms[PHONEME_TO_ID["T"] - 1], 1.0)
    assert np.isclose(norms[PHONEME_TO_ID["SIL"] - 1], params.sil_norm)


def test_nearest_phonemes_share_place_of_articulation():
    _, _, nb = _world()

    def near(p):
        return {PHONEMES[i - 1] for i in nb[PHONEME_TO_ID[p]]}

    assert {"B", "M"} <= near("P")
    assert {"T", "N"} & near("D")
    assert "G" in near("K") and "Z" in near("S") and "V" in near("F")
    assert {"CH", "JH", "ZH"} & near("SH")
    sil = PHONEME_TO_ID["SIL"]
    assert (nb[sil] == sil).all() and (nb[0] == 0).all()
    speech = [i for i in range(1, len(PHONEMES) + 1) if i != sil]
    assert set(nb[speech].ravel()) <= set(speech)
