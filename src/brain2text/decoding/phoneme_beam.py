"""CTC beam search over phonemes without a lexicon or LM (flashlight-text's LexiconFreeDecoder),
on the emissions and options of :mod:`brain2text.decoding.beam`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from brain2text.decoding.beam import (
    PHONEME_BEAM_OPTIONS,
    SIL_ID,
    BeamOptions,
    as_emissions,
    decode_per_trial,
    frame_path,
    require_flashlight,
)
from brain2text.decoding.greedy import collapse
from brain2text.phonemes import BLANK, N_CLASSES


class PhonemeBeamDecoder:
    """CTC beam search over phonemes without a lexicon or LM (flashlight's LexiconFreeDecoder
    with its ZeroLM). With ``log_add`` (the default here) it is prefix beam search: a labelling
    scores the sum of its paths, so it can beat greedy decoding; ``sil_score`` is added per SIL
    frame; the word options are unused."""

    def __init__(self, options: BeamOptions = PHONEME_BEAM_OPTIONS) -> None:
        fl = require_flashlight()
        self.options = options
        flashlight_options = fl.decoder.LexiconFreeDecoderOptions(
            beam_size=options.beam_size,
            beam_size_token=options.tokens_per_frame,
            beam_threshold=options.beam_threshold,
            lm_weight=0.0,
            sil_score=0.0,
            log_add=options.log_add,
            criterion_type=fl.decoder.CriterionType.CTC,
        )
        # flashlight starts every hypothesis on its "silence" token: were that SIL, a SIL in the
        # first frame would read as its repeat, and "SIL AA" would merge with "AA" as one
        # labelling. Starting on the blank keeps them apart; sil_score then goes onto the SIL
        # column (decode) rather than onto that token.
        self._decoder = fl.decoder.LexiconFreeDecoder(
            flashlight_options, fl.decoder.ZeroLM(), BLANK, BLANK, []
        )

    def decode(self, log_probs: np.ndarray) -> list[int]:
        """(T, N_CLASSES) log-softmax emissions of one trial -> collapsed phoneme ids (1..40)."""
        emissions = as_emissions(log_probs)  # (T, C) float32, C-contiguous; alive until return
        if self.options.sil_score:
            emissions = emissions.copy()
            emissions[:, SIL_ID] += self.options.sil_score
        n_frames = emissions.shape[0]
        results = self._decoder.decode(emissions.ctypes.data, n_frames, N_CLASSES)
        best = max(results, key=lambda r: r.score)
        return collapse(frame_path(best.tokens, n_frames)).tolist()

    def decode_batch(self, log_probs: Sequence[np.ndarray]) -> list[list[int]]:
        return [decode_per_trial(self.decode, i, x) for i, x in enumerate(log_probs)]
