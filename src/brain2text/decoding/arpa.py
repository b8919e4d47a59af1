"""Back-off n-gram models in ARPA form: Kneser-Ney estimation, cutoffs, pruning, and the file.

Estimation is interpolated modified Kneser-Ney (Chen & Goodman 1998, as KenLM's lmplz) written
in back-off form. The unigrams are interpolated with a uniform distribution over the words plus
``</s>`` and ``<unk>``, so ``<unk>`` is always a unigram with a real probability (KenLM would
otherwise substitute log10 p = -100 and warn) and every history's probabilities sum to 1.
Discounts the counts cannot give (too few n-grams seen 1-4 times) fall back to KenLM's 0.5, 1,
1.5. Count cutoffs (:func:`apply_min_count`) and entropy pruning (:func:`entropy_prune`) cut
2-grams and longer, keep probabilities estimated on the full counts, and recompute the back-off
weights of the histories that lost n-grams, so the model stays normalised.

kaldingram 0.1.2 is not used: its trainer's count cutoffs give seen n-grams log10 p = -99, a
history it saw followed by every word keeps discounted mass that goes nowhere (its sums fall
below 1), and its pruning announces in the header n-grams it has removed
(tests/decoding/test_lm.py shows each).

File layout written and checked: anything before the ``\\data\\`` line is ignored; then one
``ngram N=COUNT`` line per order N = 1, 2, ...; then for each order a ``\\N-grams:`` section of
exactly COUNT entries ``LOG10_P  W1 ... WN  [LOG10_BACKOFF]``; then ``\\end\\``. Every problem
is a one-line DataError naming the file and the line.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from brain2text.errors import DataError

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
ZERO_LOG10_P = -99.0  # what ARPA files give <s>, which is only ever a history
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)  # KenLM's --discount_fallback, for too few counts

_COUNT = re.compile(r"ngram (\d+)\s*=\s*(\d+)")
_SECTION = re.compile(r"\\(\d+)-grams:")
_ENTRY_FORMAT = "'LOG10_P W1 ... WN [LOG10_BACKOFF]'"

Entry = Callable[[tuple[str, ...], float, float | None], None]  # (ngram, log10 p, log10 bow)


# --- estimation --------------------------------------------------------------------------


def count_ngrams(sentences: Iterable[Sequence[str]], order: int) -> list[Counter]:
    """Raw counts of 1..order-grams of ``<s> words </s>``; index k holds the (k+1)-grams."""
    counts: list[Counter[tuple[str, ...]]] = [Counter() for _ in range(order)]
    for words in sentences:
        padded = (BOS, *words, EOS)
        for k, table in enumerate(counts):
            table.update(zip(*(padded[i:] for i in range(k + 1)), strict=False))
    return counts


def _discounts(adjusted: dict) -> tuple[tuple[float, float, float], bool]:
    """Modified Kneser-Ney D1, D2, D3+ from counts of counts, and whether the fallback was used."""
    t = Counter(c for c in adjusted.values() if c <= 4)
    try:
        y = t[1] / (t[1] + 2 * t[2])
        d = (1 - 2 * y * t[2] / t[1], 2 - 3 * y * t[3] / t[2], 3 - 4 * y * t[4] / t[3])
    except ZeroDivisionError:
        return FALLBACK_DISCOUNTS, True
    return (d, False) if min(d) > 0 else (FALLBACK_DISCOUNTS, True)


def kneser_ney(raw: list[Counter]) -> tuple[list[dict], list[dict], list[dict]]:
    """Interpolated modified Kneser-Ney in back-off form.

    Returns (probabilities: index k maps (k+1)-grams to p, back-off weights: index k maps the
    (k+1)-grams that are histories to their weight, per-order discount records).
    """
    order = len(raw)
    adjusted = [dict(c) for c in raw]  # highest order, and n-grams starting with <s>: raw counts
    for k in range(order - 2, -1, -1):  # lower orders: distinct words seen to the left
        left = Counter(ngram[1:] for ngram in raw[k + 1])
        adjusted[k] = {g: c if g[0] == BOS else left[g] for g, c in raw[k].items()}
    del adjusted[0][(BOS,)]
    n_words = len(adjusted[0]) + ((UNK,) not in adjusted[0])  # the uniform share's vocabulary
    probs: list[dict] = []
    bows: list[dict] = []
    records = []
    for k, counts in enumerate(adjusted):
        d, fallback = _discounts(counts)
        records.append({"D1": d[0], "D2": d[1], "D3+": d[2], "fallback": fallback})
        total: defaultdict = defaultdict(float)
        mass: defaultdict = defaultdict(float)  # discounted count, given to the lower order
        for ngram, c in counts.items():
            total[ngram[:-1]] += c
            mass[ngram[:-1]] += d[min(c, 3) - 1]
        gamma = {h: mass[h] / total[h] for h in total}
        if k == 0:
            share = gamma[()] / n_words
            p = {g: (c - d[min(c, 3) - 1]) / total[()] + share for g, c in counts.items()}
            p = {(BOS,): 0.0, **p}  # <s> is a history only: written as log10 p = -99
            p.setdefault((UNK,), share)
        else:
            lower = probs[-1]
            p = {
                g: (c - d[min(c, 3) - 1]) / total[g[:-1]] + gamma[g[:-1]] * lower[g[1:]]
                for g, c in counts.items()
            }
            bows.append(gamma)
        probs.append(p)
    return probs, bows, records


def _renormalise(probs: list[dict], bows: list[dict], k: int, histories: set) -> None:
    """Back-off weights that make each of ``histories`` (of the (k+1)-grams) sum to 1 again.

    Needs the suffix of every kept (k+1)-gram among the k-grams, as both cuts below keep them.
    """
    seen: defaultdict[tuple[str, ...], float] = defaultdict(float)
    seen_lower: defaultdict[tuple[str, ...], float] = defaultdict(float)
    for g, p in probs[k].items():
        if g[:-1] in histories:
            seen[g[:-1]] += p
            seen_lower[g[:-1]] += probs[k - 1][g[1:]]
    for h in histories:
        bows[k - 1][h] = (1.0 - seen[h]) / (1.0 - seen_lower[h])


def apply_min_count(
    probs: list[dict], bows: list[dict], raw: list[Counter], min_count: int
) -> None:
    """Drop 2-grams and longer seen fewer than ``min_count`` times (in place).

    An n-gram is seen at least as often as any n-gram containing it, so a kept n-gram keeps its
    prefix (the history holding its back-off weight) and its suffix (where it backs off to).
    """
    for k in range(1, len(probs)):
        before = probs[k]
        probs[k] = {g: p for g, p in before.items() if raw[k][g] >= min_count}
        _renormalise(probs, bows, k, {g[:-1] for g in before if g not in probs[k]})


def entropy_prune(probs: list[dict], bows: list[dict], threshold: float) -> None:
    """Relative-entropy pruning of 2-grams and longer (Stolcke 1998, as SRILM), in place.

    Highest order first, an n-gram goes when dropping it alone (its history's back-off weight
    adjusted) raises the perplexity by a relative amount below ``threshold``; P(history) is the
    model's own, with P(<s>) = P(</s>) as in SRILM. N-grams that a kept longer n-gram needs as
    its history or its suffix stay.
    """

    def prob(history: tuple, word: str) -> float:  # the back-off rule on the current tables
        weight = 1.0
        while (p := probs[len(history)].get((*history, word))) is None:
            weight *= bows[len(history) - 1].get(history, 1.0)
            history = history[1:]
        return weight * p

    def marginal(history: tuple) -> float:
        p = 1.0
        for i, word in enumerate(history):
            p *= probs[0][(EOS,)] if i == 0 and word == BOS else prob(history[:i], word)
        return p

    needed: set = set()
    for k in range(len(probs) - 1, 0, -1):
        table = probs[k]
        by_history = defaultdict(list)
        for g in table:
            by_history[g[:-1]].append(g[-1])
        dropped = set()
        for h, words in by_history.items():
            bow, p_h = bows[k - 1][h], marginal(h)
            lower = [prob(h[1:], w) for w in words]
            left = 1.0 - sum(table[(*h, w)] for w in words)  # back-off mass now
            left_lower = 1.0 - sum(lower)
            for w, q in zip(words, lower, strict=False):
                if (g := (*h, w)) in needed:
                    continue
                p = table[g]
                new_bow = (left + p) / (left_lower + q)
                delta = -p_h * (p * math.log(q * new_bow / p) + left * math.log(new_bow / bow))
                if math.expm1(delta) < threshold:
                    dropped.add(g)
        probs[k] = {g: p for g, p in table.items() if g not in dropped}
        needed = {g[:-1] for g in probs[k]} | {g[1:] for g in probs[k]}
        _renormalise(probs, bows, k, {g[:-1] for g in dropped})


# --- the file ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ArpaSummary:
    """What validation learns about an ARPA file without keeping its probabilities."""

    path: Path
    counts: tuple[int, ...]  # entries per order, 1-grams first
    unigrams: frozenset[str]

    @property
    def order(self) -> int:
        return len(self.counts)


@dataclass(frozen=True)
class ArpaModel:
    """An ARPA model held in memory (fine for test-sized and decoder-sized models)."""

    counts: tuple[int, ...]
    log10_p: dict[tuple[str, ...], float] = field(repr=False)
    log10_backoff: dict[tuple[str, ...], float] = field(repr=False)

    @property
    def order(self) -> int:
        return len(self.counts)

    def vocabulary(self) -> list[str]:
        """Every word the model predicts: its unigrams but ``<s>``."""
        return [ngram[0] for ngram in self.log10_p if len(ngram) == 1 and ngram[0] != BOS]

    def log10_prob(self, context: Sequence[str], word: str) -> float:
        """log10 P(word | context) by the back-off rule; KeyError for a word with no unigram."""
        context = tuple(context)[-(self.order - 1) :] if self.order > 1 else ()
        backoff = 0.0
        while (log10_p := self.log10_p.get((*context, word))) is None:
            if not context:
                raise KeyError(word)
            backoff += self.log10_backoff.get(context, 0.0)
            context = context[1:]
        return backoff + log10_p

    def log10_sentence(self, words: Iterable[str]) -> float:
        """log10 P(<s> words </s>), the score KenLM gives the same sentence."""
        history, total = [BOS], 0.0
        for word in (*words, EOS):
            total += self.log10_prob(history, word)
            history.append(word)
        return total


def check_arpa(path: Path | str, on_entry: Entry | None = None) -> ArpaSummary:
    """Validate an ARPA file's structure line by line, calling ``on_entry`` for each entry."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as lines:
            return _scan(path, lines, on_entry)
    except FileNotFoundError:
        raise DataError(f"{path}: no such ARPA file") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason}); expected an ARPA file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read the ARPA file ({exc.strerror})") from None


def read_arpa(path: Path | str) -> ArpaModel:
    """Validate and load a whole ARPA file."""
    log10_p: dict[tuple[str, ...], float] = {}
    log10_backoff: dict[tuple[str, ...], float] = {}

    def keep(ngram: tuple[str, ...], p: float, bow: float | None) -> None:
        log10_p[ngram] = p
        if bow is not None:
            log10_backoff[ngram] = bow

    summary = check_arpa(path, keep)
    return ArpaModel(summary.counts, log10_p, log10_backoff)


def write_arpa(
    file: TextIO,
    probs: Sequence[Mapping[tuple[str, ...], float]],
    backoffs: Sequence[Mapping[tuple[str, ...], float]],
) -> None:
    """Write a back-off model: ``probs[k]`` maps (k+1)-grams to probabilities (0 for ``<s>``),
    ``backoffs[k]`` maps those that are histories to their back-off weights (linear)."""
    file.write("\\data\\\n")
    file.writelines(f"ngram {k + 1}={len(table)}\n" for k, table in enumerate(probs))
    for k, table in enumerate(probs):
        weights = backoffs[k] if k < len(backoffs) else {}
        file.write(f"\n\\{k + 1}-grams:\n")
        for ngram, p in table.items():
            log10_p = math.log10(p) if p > 0 else ZERO_LOG10_P
            bow = weights.get(ngram)
            tail = "" if bow is None else f"\t{math.log10(bow):.7f}"
            file.write(f"{log10_p:.7f}\t{' '.join(ngram)}{tail}\n")
    file.write("\n\\end\\\n")


def _scan(path: Path, lines: Iterable[str], on_entry: Entry | None) -> ArpaSummary:
    numbered = enumerate(lines, start=1)
    for _, line in numbered:
        if line.strip() == "\\data\\":
            break
    else:
        raise DataError(f"{path}: not an ARPA file (no \\data\\ line)")
    counts: list[int] = []
    unigrams: set[str] = set()
    order = seen = number = 0  # the section being read (0: the header), its entries so far
    for number, line in numbered:
        line = line.strip()
        where = f"{path} line {number}"
        if not line:
            continue
        if line.startswith("\\"):
            if order and seen != counts[order - 1]:
                raise DataError(
                    f"{where}: \\{order}-grams: has {seen} entries, but "
                    f"'ngram {order}={counts[order - 1]}' was announced"
                )
            if counts and order == len(counts):
                if line == "\\end\\":
                    return ArpaSummary(path, tuple(counts), frozenset(unigrams))
                raise DataError(
                    f"{where}: expected \\end\\ after the {order} announced "
                    f"sections, found {line[:40]!r}"
                )
            if not counts:
                raise DataError(f"{where}: no 'ngram N=COUNT' lines after \\data\\")
            section = _SECTION.fullmatch(line)
            if section is None or int(section.group(1)) != order + 1:
                raise DataError(
                    f"{where}: expected \\{order + 1}-grams: (announced in the "
                    f"header), found {line[:40]!r}"
                )
            order, seen = order + 1, 0
            continue
        if order == 0:
            announced = _COUNT.fullmatch(line)
            if announced is None or int(announced.group(1)) != len(counts) + 1:
                raise DataError(
                    f"{where}: expected 'ngram {len(counts) + 1}=COUNT' in the "
                    f"\\data\\ header, found {line[:40]!r}"
                )
            counts.append(int(announced.group(2)))
            continue
        fields = line.split()
        try:
            if len(fields) not in (order + 1, order + 2):
                raise ValueError
            log10_p = float(fields[0])
            bow = float(fields[order + 1]) if len(fields) == order + 2 else None
            if not log10_p <= 0.0 or (bow is not None and not math.isfinite(bow)):
                raise ValueError
        except ValueError:
            raise DataError(
                f"{where}: not a {order}-gram entry {_ENTRY_FORMAT}: {line[:60]!r}"
            ) from None
        seen += 1
        if seen > counts[order - 1]:
            raise DataError(
                f"{where}: \\{order}-grams: has more than the {counts[order - 1]} entries announced"
            )
        ngram = tuple(fields[1 : order + 1])
        if order == 1:
            unigrams.add(ngram[0])
        if on_entry is not None:
            on_entry(ngram, log10_p, bow)
    state = (
        "in the \\data\\ header"
        if order == 0
        else f"in \\{order}-grams: after {seen} of {counts[order - 1]} entries"
    )
    raise DataError(f"{path} line {number}: truncated ARPA file: it ends {state}, without \\end\\")
