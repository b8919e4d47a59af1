"""CTC beam search with flashlight-text: words from a lexicon and a KenLM n-gram (phonemes
without a lexicon: :mod:`brain2text.decoding.phoneme_beam`).

Both decoders read one trial's ``(T, N_CLASSES)`` log-softmax emissions, columns in the model's
order: 0 is the CTC blank, 1..39 the phonemes AA..ZH, 40 is SIL.

``WordDecoder`` is flashlight's LexiconDecoder (the one torchaudio wraps) with KenLM. Every word
is spelled as its phonemes followed by SIL, so SIL plays the part of wav2letter's ``|``: a word
is emitted when the SIL that closes it is read, the search returns to the trie's root, and more
SIL frames there are word gaps. Where the emissions have no SIL between two words (or after the
last one) the search spends a frame on SIL at that frame's SIL log-probability.

Scores add up as ``am + lm_weight * lm + word_score * n_words + sil_score * n_sil_frames``:
``am`` is the sum of the emissions along the best path (natural log) and ``lm`` is KenLM's
log10 probability of the sentence, ``</s>`` included. KenLM's unit is log10 and the emissions'
is ln: ``lm_weight`` absorbs the factor, so ``lm_weight = 2.0`` weighs the LM as
``2 / ln 10 = 0.87`` times its natural-log probability.

flashlight's LM states are per word history (not per n-gram context), so hypotheses merge only
when they hold the same words, and the n-best are different sentences.

flashlight is imported when a decoder is built (``require_flashlight``), never at module import:
the ``lm`` extra has wheels for CPython 3.9-3.12 only.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from brain2text.decoding.checks import check_integer, check_number
from brain2text.decoding.greedy import collapse
from brain2text.errors import ConfigError, DataError
from brain2text.phonemes import BLANK, N_CLASSES, PHONEME_TO_ID, PHONEMES, SIL

DEFAULT_BEAM_SIZE = 50
DEFAULT_BEAM_SIZE_TOKEN = None  # every class is tried at every frame
# the grid `brain2text lm tune` searches by default
DEFAULT_LM_WEIGHTS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
DEFAULT_WORD_SCORES = (-2.0, -1.0, 0.0, 1.0, 2.0)
DEFAULT_BEAM_THRESHOLD = 25.0
DEFAULT_LM_WEIGHT = 2.0
DEFAULT_WORD_SCORE = 0.0
DEFAULT_SIL_SCORE = 0.0
DEFAULT_UNK_SCORE = -math.inf  # no out-of-lexicon words
DEFAULT_NBEST = 1

LN10 = math.log(10.0)  # KenLM's log10 scores -> natural log
SIL_ID = PHONEME_TO_ID[SIL]  # 40: closes every word, root of the trie
UNK = "<unk>"
TRIE_MAX_LABELS = 6  # flashlight's kTrieMaxLabel: Trie.insert drops (and prints about) a 7th word
_SPELLABLE = frozenset(PHONEMES[:-1])  # SIL is added after every spelling, never written in one
_RESERVED = frozenset({UNK, "<s>", "</s>"})

MISSING_FLASHLIGHT = (
    "word decoding needs flashlight-text: pip install 'brain2text[lm]' "
    "(wheels for CPython 3.9-3.12)"
)


class Flashlight(NamedTuple):
    """The flashlight-text modules the decoders use."""

    decoder: Any  # flashlight.lib.text.decoder
    dictionary: Any  # flashlight.lib.text.dictionary
    KenLM: Any  # flashlight.lib.text.decoder.kenlm.KenLM


def require_flashlight() -> Flashlight:
    """Import flashlight-text, or raise a one-line ConfigError saying how to install it."""
    try:
        from flashlight.lib.text import decoder, dictionary
        from flashlight.lib.text.decoder.kenlm import KenLM
    except ImportError:
        raise ConfigError(MISSING_FLASHLIGHT) from None
    return Flashlight(decoder, dictionary, KenLM)


@dataclass(frozen=True)
class BeamOptions:
    """Beam-search settings (flashlight's names; scores in the units of the module docstring).

    ``beam_size``: hypotheses kept per frame; ``beam_size_token``: classes tried per frame (None:
    all); ``beam_threshold``: hypotheses further than this below the best are pruned;
    ``lm_weight``: multiplies KenLM's log10 scores; ``word_score``: added per word;
    ``sil_score``: added per SIL frame; ``unk_score``: added per out-of-lexicon word (-inf: none);
    ``nbest``: hypotheses returned; ``log_add``: merge equal hypotheses by summing their
    probabilities instead of keeping the better one.
    """

    beam_size: int = DEFAULT_BEAM_SIZE
    beam_size_token: int | None = DEFAULT_BEAM_SIZE_TOKEN
    beam_threshold: float = DEFAULT_BEAM_THRESHOLD
    lm_weight: float = DEFAULT_LM_WEIGHT
    word_score: float = DEFAULT_WORD_SCORE
    sil_score: float = DEFAULT_SIL_SCORE
    unk_score: float = DEFAULT_UNK_SCORE
    nbest: int = DEFAULT_NBEST
    log_add: bool = False

    def __post_init__(self) -> None:
        check_integer(self, "beam_size", 1)
        if self.beam_size_token is not None:
            check_integer(self, "beam_size_token", 1, N_CLASSES)
        check_number(self, "beam_threshold", positive=True)
        check_number(self, "lm_weight")
        if self.lm_weight < 0:
            raise ConfigError(f"lm_weight: must be >= 0, got {self.lm_weight!r}")
        check_number(self, "word_score")
        check_number(self, "sil_score")
        check_number(self, "unk_score", allow_minus_inf=True)
        check_integer(self, "nbest", 1, self.beam_size)
        if not isinstance(self.log_add, bool):
            raise ConfigError(f"log_add: must be true or false, got {self.log_add!r}")

    @property
    def tokens_per_frame(self) -> int:
        return N_CLASSES if self.beam_size_token is None else self.beam_size_token


# Without path merging (log_add=False) a lexicon-free search with no LM scores each labelling by
# its best path, whose best is the frame-wise argmax: greedy decoding, slower. Summing paths is
# CTC prefix beam search, what a phoneme beam search is for.
PHONEME_BEAM_OPTIONS = BeamOptions(log_add=True)


@dataclass(frozen=True)
class WordHypothesis:
    """One decoded sentence.

    ``phonemes``: ids 1..40 (as in PHONEMES) of the best path's frames, CTC-collapsed without
    blanks: SIL after every word, plus the SILs the path reads before the first word and in
    gaps (``SIL - SIL`` is two SILs, as in any CTC collapse).
    ``score``: the decoder's total score (see the module docstring).
    ``am``: the emissions' sum along the best path (natural log); ``ngram``: the n-gram LM's
    log-probability of the sentence, ``</s>`` included, in natural log (KenLM's log10 times
    ln 10); NaN where the decoder does not report them (a Kaldi graph).
    ``llm``, ``total``: a neural LM's natural-log score and the rescored total, once an n-best
    rescoring stage has set them (:mod:`brain2text.evaluation.rescoring`).
    """

    words: tuple[str, ...]
    phonemes: tuple[int, ...]
    score: float
    am: float = math.nan
    ngram: float = math.nan
    llm: float | None = None
    total: float | None = None

    @property
    def ranking_score(self) -> float:
        """What the n-best list is ordered by: the rescored total, else the decoder's score."""
        return self.score if self.total is None else self.total


def as_emissions(log_probs: np.ndarray) -> np.ndarray:
    """(T, N_CLASSES) log-probabilities -> the C-contiguous float32 array flashlight reads.

    flashlight's ``decode`` takes a raw pointer and reads ``T * N_CLASSES`` floats row by row, so
    a float64, Fortran-ordered or strided array must be copied first, and the caller keeps the
    returned array in a variable during the call (``decode(as_emissions(x).ctypes.data, ...)``
    lets the copy be freed first, and flashlight then reads freed memory).
    """
    emissions = np.ascontiguousarray(log_probs, dtype=np.float32)
    if emissions.ndim != 2 or emissions.shape[1] != N_CLASSES:
        raise DataError(
            f"emissions of shape {tuple(emissions.shape)}: expected (T, {N_CLASSES}) "
            "log-probabilities of one trial, cut to its output length"
        )
    if np.isnan(emissions).any() or np.isposinf(emissions).any():
        raise DataError("emissions hold NaN or +inf: expected log-softmax outputs")
    return emissions


def frame_path(tokens: Sequence[int], n_frames: int) -> np.ndarray:
    # flashlight's token path is (T + 2,): the start state's token, one per frame, and the token
    # its end-of-sentence step adds; only the frames' part is a CTC path
    return np.asarray(tokens[1 : n_frames + 1], dtype=np.int64)


def _check_spellings(
    spellings: Mapping[str, Sequence[Sequence[str]]],
) -> dict[str, list[tuple[str, ...]]]:
    if not spellings:
        raise DataError("the lexicon has no words")
    checked: dict[str, list[tuple[str, ...]]] = {}
    for word, prons in spellings.items():
        if not isinstance(word, str) or not word or word != word.strip() or len(word.split()) != 1:
            raise DataError(f"lexicon word {word!r}: a word is one token without spaces")
        if word in _RESERVED:
            raise DataError(
                f"lexicon word {word!r}: reserved by the LM ({', '.join(sorted(_RESERVED))})"
            )
        if isinstance(prons, str) or not prons:
            raise DataError(f"lexicon word {word!r}: give a list of spellings (tuples of phonemes)")
        unique = list(dict.fromkeys(tuple(p) for p in prons))
        for pron in unique:
            bad = [s for s in pron if s not in _SPELLABLE]
            if not pron or bad:
                what = f"{bad[0]!r} is not a phoneme" if pron else "an empty spelling"
                if bad and bad[0] == SIL:
                    what = "SIL is added after every spelling, never written in one"
                raise DataError(
                    f"lexicon word {word!r}: {what} "
                    f"(ARPAbet without stress: {' '.join(PHONEMES[:-1])})"
                )
        checked[word] = unique
    return checked


@contextlib.contextmanager
def _quiet_stderr():
    """Silence what C++ code writes to file descriptor 2 (its errors still arrive as
    exceptions)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class WordDecoder:
    """Lexicon-constrained CTC beam search with a KenLM n-gram (ARPA or KenLM binary).

    ``spellings``: word -> its spellings, each a tuple of stress-free ARPAbet phonemes without
    SIL. The trie scores each spelling by its word's unigram log10 probability (KenLM's null
    context), smeared by max, as flashlight's look-ahead. flashlight keeps at most
    ``TRIE_MAX_LABELS`` words per trie node; for a spelling shared by more words the most
    probable ones are kept and the others listed in ``dropped_homophones``.

    KenLM reads ARPA models of order 2 and up (a unigram-only ARPA fails to load) and prints its
    loading progress to stderr; words missing from the LM score KenLM's ``<unk>`` (log10 -100
    when the ARPA has none), so with any LM weight they practically never win.
    """

    def __init__(
        self,
        arpa: Path | str,
        spellings: Mapping[str, Sequence[Sequence[str]]],
        options: BeamOptions = BeamOptions(),
    ) -> None:
        fl = require_flashlight()
        lexicon = _check_spellings(spellings)
        arpa = Path(arpa)
        if not arpa.is_file():
            raise DataError(f"{arpa}: no such language model file")
        self.options = options

        # A Dictionary built entry by entry, <unk> last and the default for any other word: the
        # same mapping as load_words + create_word_dict without writing a lexicon file.
        self._word_dict = fl.dictionary.Dictionary()
        for word in sorted(lexicon):
            self._word_dict.add_entry(word)
        self._word_dict.add_entry(UNK)
        unk_index = self._word_dict.get_index(UNK)
        self._word_dict.set_default_index(unk_index)
        try:
            with _quiet_stderr():  # KenLM draws a loading bar on the terminal for every load
                self._lm = fl.KenLM(str(arpa), self._word_dict)
        except RuntimeError as exc:  # KenLM's message: a source location, then the reason
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise DataError(f"{arpa}: KenLM cannot load it: {reason}") from None

        null_context = self._lm.start(True)
        self.unigram: dict[str, float] = {
            w: self._lm.score(null_context, self._word_dict.get_index(w))[1] for w in lexicon
        }

        homophones: dict[tuple[str, ...], list[str]] = {}
        for word, prons in lexicon.items():
            for pron in prons:
                homophones.setdefault(pron, []).append(word)
        self.dropped_homophones: dict[str, list[str]] = {}
        self._trie = fl.decoder.Trie(N_CLASSES, SIL_ID)
        for pron, words in homophones.items():
            ranked = sorted(words, key=lambda w: (-self.unigram[w], w))
            if len(ranked) > TRIE_MAX_LABELS:
                self.dropped_homophones[" ".join(pron)] = ranked[TRIE_MAX_LABELS:]
            path = [PHONEME_TO_ID[p] for p in pron] + [SIL_ID]
            for word in ranked[:TRIE_MAX_LABELS]:
                self._trie.insert(path, self._word_dict.get_index(word), self.unigram[word])
        self._trie.smear(fl.decoder.SmearingMode.MAX)
        self.n_words = len(lexicon)
        self.n_spellings = len(homophones)

        self._decoder = self._search(options)

    def _search(self, options: BeamOptions, lm: Any = None):
        """flashlight's LexiconDecoder over this trie; ``lm``: another flashlight ``LM`` to
        search with (None: this decoder's KenLM)."""
        fl = require_flashlight()
        flashlight_options = fl.decoder.LexiconDecoderOptions(
            beam_size=options.beam_size,
            beam_size_token=options.tokens_per_frame,
            beam_threshold=options.beam_threshold,
            lm_weight=options.lm_weight,
            word_score=options.word_score,
            unk_score=options.unk_score,
            sil_score=options.sil_score,
            log_add=options.log_add,
            criterion_type=fl.decoder.CriterionType.CTC,
        )
        return fl.decoder.LexiconDecoder(
            flashlight_options,
            self._trie,
            self._lm if lm is None else lm,
            SIL_ID,
            BLANK,
            self._word_dict.get_index(UNK),
            [],
            False,
        )

    def with_options(self, options: BeamOptions) -> WordDecoder:
        """The same lexicon, trie and LM searched with other options (no rebuild: what a grid
        over LM weights and word scores needs)."""
        other = copy.copy(self)
        other.options = options
        other._decoder = other._search(options)
        return other

    @property
    def homophone_summary(self) -> str:
        """One line on what the trie's per-spelling limit dropped."""
        if not self.dropped_homophones:
            return (
                f"lexicon: {self.n_words} words, {self.n_spellings} spellings; no spelling "
                f"has more than {TRIE_MAX_LABELS} words, none dropped"
            )
        n_dropped = sum(len(w) for w in self.dropped_homophones.values())
        spelling, words = next(iter(self.dropped_homophones.items()))
        return (
            f"lexicon: {self.n_words} words, {self.n_spellings} spellings; flashlight keeps "
            f"{TRIE_MAX_LABELS} words per spelling: dropped {n_dropped} less probable "
            f"homophones of {len(self.dropped_homophones)} spellings "
            f"(e.g. {spelling}: {', '.join(words)})"
        )

    def decode(self, log_probs: np.ndarray) -> list[WordHypothesis]:
        """(T, N_CLASSES) log-softmax emissions of one trial -> up to ``nbest`` sentences, best
        first, each a different word sequence."""
        emissions = as_emissions(log_probs)  # (T, C) float32, C-contiguous; alive until return
        n_frames = emissions.shape[0]
        results = self._decoder.decode(emissions.ctypes.data, n_frames, N_CLASSES)
        return self._nbest(results, n_frames)

    def _hypothesis(self, result, n_frames: int) -> WordHypothesis:
        words = tuple(self._word_dict.get_entry(i) for i in result.words if i >= 0)
        phonemes = collapse(frame_path(result.tokens, n_frames))
        return WordHypothesis(
            words,
            tuple(phonemes.tolist()),
            float(result.score),
            am=float(result.emittingModelScore),
            ngram=float(result.lmScore) * LN10,
        )

    def _nbest(self, results, n_frames: int) -> list[WordHypothesis]:
        out: list[WordHypothesis] = []
        seen: set[tuple[str, ...]] = set()
        for result in sorted(results, key=lambda r: -r.score):  # already sorted; made sure
            hypothesis = self._hypothesis(result, n_frames)
            if hypothesis.words in seen:  # a safety net: flashlight merges equal sequences
                continue
            seen.add(hypothesis.words)
            out.append(hypothesis)
            if len(out) == self.options.nbest:
                break
        return out

    def stream(self) -> WordStream:
        """An incremental search of one trial (flashlight's decode_begin / decode_step /
        decode_end): frames in chunks, the best partial sentence after each."""
        return WordStream(self)

    def decode_batch(self, log_probs: Sequence[np.ndarray]) -> list[list[WordHypothesis]]:
        """One ``decode`` per trial, in order (each array already cut to its output length)."""
        return [decode_per_trial(self.decode, i, x) for i, x in enumerate(log_probs)]


class WordStream:
    """One trial's beam search fed chunk by chunk; its final n-best equals ``decode`` of the
    whole trial (the same begin / step / end flashlight's ``decode`` runs)."""

    def __init__(self, words: WordDecoder) -> None:
        self._words = words
        self._search = words._search(words.options)  # a search state of its own
        self._search.decode_begin()
        self.n_frames = 0
        self._finished: list[WordHypothesis] | None = None

    def step(self, log_probs: np.ndarray) -> WordHypothesis:
        """Read the next frames' (n, N_CLASSES) log-probabilities; the best partial sentence."""
        if self._finished is not None:
            raise DataError("this word stream is finished; start another one")
        emissions = as_emissions(log_probs)  # alive until decode_step returns
        if len(emissions):
            self._search.decode_step(emissions.ctypes.data, len(emissions), N_CLASSES)
            self.n_frames += len(emissions)
        return self.partial()

    def partial(self) -> WordHypothesis:
        if self.n_frames == 0:
            return WordHypothesis((), (), 0.0)
        return self._words._hypothesis(self._search.get_best_hypothesis(), self.n_frames)

    def finish(self) -> list[WordHypothesis]:
        """End the sentence (the LM's end-of-sentence score); the n-best, best first."""
        if self._finished is None:
            self._search.decode_end()
            self._finished = self._words._nbest(
                self._search.get_all_final_hypothesis(), self.n_frames
            )
        return self._finished


def decode_per_trial(decode, index: int, log_probs: np.ndarray):
    """``decode(log_probs)``, its one-line error naming trial ``index``."""
    try:
        return decode(log_probs)
    except DataError as exc:
        raise DataError(f"trial {index}: {exc}") from None
