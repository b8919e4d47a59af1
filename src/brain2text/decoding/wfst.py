"""Word decoding with a Kaldi decoding graph: the official Brain-to-Text '24 language model.

The B2T'24 n-gram LM is released as a Kaldi/WeNet CTC graph, not as an ARPA file: ``TLG.fst``
(T: the CTC token topology, L: the lexicon, G: the n-gram grammar, composed) and ``words.txt``
(word id -> word). ``WfstDecoder`` searches it with Kaldi's FasterDecoder (``kaldi-decoder``),
reading the graph with ``kaldifst``; both are PyPI wheels (the ``lm`` extra).

Column order. The graph's input labels are the token ids of its ``tokens.txt``: ``<eps>`` 0,
``<blk>`` 1, ``SIL`` 2, ``AA``..``ZH`` 3..41, then disambiguation symbols (which the graph no
longer reads). Kaldi's DecodableCtc scores input label ``i`` with emission column ``i - 1``, so
the graph reads columns ``[blank, SIL, AA..ZH]``. The model emits ``[blank, AA..ZH, SIL]``
(``brain2text.phonemes``): ``decode`` reorders the columns (``TO_GRAPH_ORDER``) first. When the
graph directory also holds ``tokens.txt`` its order is checked against this; the released
graphs come without one, and a graph over other tokens cannot be detected then.

Scores (natural log, higher is better): every frame's emissions are changed as the B2T'24
baseline does, ``acoustic_scale * (log p - blank_penalty on the blank column)``, and a path
scores the sum of those along it plus the graph's log-weights (the LM in natural log, plus the
lexicon's optional-silence log-probabilities): ``score = acoustic_scale * am - graph_cost``.

FasterDecoder keeps no lattice, so ``decode`` returns the best path only (a list of one, the
same type as ``WordDecoder.decode``); the baseline's n-best lists and its rescoring with
``G_no_prune.fst`` need a lattice decoder and are not done here.

Memory: the graph is read whole into memory. Per the B2T'24 release the 3-gram graph needs about
60 GB of RAM and the 5-gram about 300 GB; loading takes minutes.

kaldifst and kaldi-decoder are imported when a decoder is built (``require_kaldi``), never at
module import.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from brain2text.decoding.beam import (
    WordHypothesis,
    _quiet_stderr,
    as_emissions,
    decode_per_trial,
)
from brain2text.decoding.checks import check_integer, check_number, read_utf8
from brain2text.decoding.greedy import collapse
from brain2text.errors import ConfigError, DataError
from brain2text.phonemes import BLANK, N_CLASSES, PHONEME_TO_ID, PHONEMES, SIL

GRAPH_FILE = "TLG.fst"
WORDS_FILE = "words.txt"
TOKENS_FILE = "tokens.txt"  # optional: checked when present

# the graph's emission columns: blank, SIL, then AA..ZH
GRAPH_TOKENS: tuple[str, ...] = ("<blk>", SIL, *PHONEMES[:-1])
# model column -> graph column: graph_emissions = emissions[:, TO_GRAPH_ORDER]
TO_GRAPH_ORDER = np.array([BLANK, PHONEME_TO_ID[SIL], *range(1, len(PHONEMES))], dtype=np.int64)
# graph input label i (1..N_CLASSES) reads graph column i - 1, which is model id LABEL_TO_ID[i]
LABEL_TO_ID = np.concatenate([[-1], TO_GRAPH_ORDER])

# the B2T'24 baseline's settings (its build_lm_decoder and lm_decode calls)
DEFAULT_BEAM = 18.0
DEFAULT_MAX_ACTIVE = 7000
DEFAULT_MIN_ACTIVE = 200
DEFAULT_ACOUSTIC_SCALE = 0.5
DEFAULT_BLANK_PENALTY = math.log(7)

MISSING_KALDI = (
    "decoding with a Kaldi graph needs kaldifst and kaldi-decoder: pip install 'brain2text[lm]'"
)


class Kaldi(NamedTuple):
    """The modules the decoder uses."""

    kaldifst: Any
    kaldi_decoder: Any


def require_kaldi() -> Kaldi:
    """Import kaldifst and kaldi-decoder, or raise a one-line ConfigError saying how to install
    them."""
    try:
        import kaldi_decoder
        import kaldifst
    except ImportError:
        raise ConfigError(MISSING_KALDI) from None
    return Kaldi(kaldifst, kaldi_decoder)


@dataclass(frozen=True)
class WfstOptions:
    """FasterDecoder settings and the emission scaling (defaults: the B2T'24 baseline's).

    ``beam``: paths further than this (in cost, natural log) below the best are pruned;
    ``max_active`` / ``min_active``: most / fewest graph states kept per frame;
    ``acoustic_scale``: multiplies the emissions against the graph's weights;
    ``blank_penalty``: subtracted from the blank's log-probability before scaling.
    """

    beam: float = DEFAULT_BEAM
    max_active: int = DEFAULT_MAX_ACTIVE
    min_active: int = DEFAULT_MIN_ACTIVE
    acoustic_scale: float = DEFAULT_ACOUSTIC_SCALE
    blank_penalty: float = DEFAULT_BLANK_PENALTY

    def __post_init__(self) -> None:
        check_number(self, "beam", positive=True)
        check_integer(self, "max_active", 1)
        check_integer(self, "min_active", 0)
        if self.min_active > self.max_active:
            raise ConfigError(
                f"min_active: must be <= max_active ({self.max_active}), got {self.min_active!r}"
            )
        check_number(self, "acoustic_scale", positive=True)
        check_number(self, "blank_penalty", positive=False)


def _read_symbols(path: Path, what: str) -> dict[int, str]:
    """A Kaldi symbol table (``symbol id`` lines) -> id -> symbol; one-line DataErrors."""
    lines = read_utf8(path, what)[1].splitlines()
    table: dict[int, str] = {}
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[1].isdigit():
            raise DataError(f"{path} line {number}: expected 'SYMBOL ID', got {line.strip()!r}")
        symbol, key = fields[0], int(fields[1])
        if key in table:
            raise DataError(f"{path} line {number}: id {key} is already {table[key]!r}")
        table[key] = symbol
    if not table:
        raise DataError(f"{path}: empty {what}")
    return table


def _check_tokens(path: Path) -> None:
    tokens = _read_symbols(path, "token table")
    expected = {0: "<eps>", **{i + 1: t for i, t in enumerate(GRAPH_TOKENS)}}
    for key, symbol in expected.items():
        found = tokens.get(key)
        if found != symbol and not (key == 1 and found in ("<blank>", "<blk>")):
            raise DataError(
                f"{path}: token {key} is {found!r}, expected {symbol!r}: the graph "
                "must read columns [blank, SIL, AA..ZH] (ids 1..41)"
            )
    extra = [s for k, s in tokens.items() if k > N_CLASSES and not s.startswith("#")]
    if extra:
        raise DataError(f"{path}: token {extra[0]!r} beyond the {N_CLASSES} emission columns")


def _read_graph(kaldifst: Any, path: Path) -> Any:
    if not path.is_file():
        raise DataError(f"{path}: no such decoding graph file")
    try:
        with _quiet_stderr():  # OpenFst prints its reason to stderr and returns None
            graph = kaldifst.StdFst.read(str(path))
    except MemoryError:
        raise DataError(
            f"{path}: not enough memory to load the graph (the B2T'24 3-gram "
            "graph needs ~60 GB of RAM, the 5-gram ~300 GB)"
        ) from None
    if graph is None:
        raise DataError(f"{path}: not an OpenFst graph with standard (tropical) arcs, or truncated")
    if graph.start < 0:
        raise DataError(f"{path}: the graph has no start state")
    return graph


class WfstDecoder:
    """CTC decoding over a Kaldi ``TLG.fst`` with ``words.txt`` (the B2T'24 LM's format).

    ``graph_dir`` holds ``TLG.fst`` (an OpenFst vector or const FST with standard arcs) and
    ``words.txt`` (and optionally ``tokens.txt``, whose order is then checked). Each
    hypothesis's ``phonemes`` are the best path's input labels, one per frame, mapped back to
    the model's ids (1..40) and CTC-collapsed: SIL appears only where the path reads one (the
    graph's silence between words is optional). They are the empty tuple when the path does not
    hold one label per frame in 1..41 (not seen with a CTC graph).
    """

    def __init__(self, graph_dir: Path | str, options: WfstOptions = WfstOptions()) -> None:
        self._kaldi = require_kaldi()
        graph_dir = Path(graph_dir)
        if not graph_dir.is_dir():
            raise DataError(
                f"{graph_dir}: no such graph directory (expected {GRAPH_FILE} and "
                f"{WORDS_FILE} in it)"
            )
        self.graph_dir = graph_dir
        self.words = _read_symbols(graph_dir / WORDS_FILE, "word table")
        if (graph_dir / TOKENS_FILE).exists():
            _check_tokens(graph_dir / TOKENS_FILE)
        # FasterDecoder keeps a reference to the graph, not the graph: it must stay alive here
        self._graph = _read_graph(self._kaldi.kaldifst, graph_dir / GRAPH_FILE)
        self.options = options
        self._decoder = self._search(options)

    def _search(self, options: WfstOptions) -> Any:
        kd = self._kaldi.kaldi_decoder
        config = kd.FasterDecoderOptions(
            beam=float(options.beam), max_active=options.max_active, min_active=options.min_active
        )
        return kd.FasterDecoder(self._graph, config)

    def with_options(self, options: WfstOptions) -> WfstDecoder:
        """The same graph searched with other options (no reload: what a grid needs)."""
        other = copy.copy(self)
        other.options = options
        other._decoder = other._search(options)
        return other

    def graph_emissions(self, log_probs: np.ndarray) -> np.ndarray:
        """(T, N_CLASSES) model-order log-softmax emissions -> what the graph reads: columns
        reordered to [blank, SIL, AA..ZH], the blank penalised, everything scaled."""
        emissions = as_emissions(log_probs)[:, TO_GRAPH_ORDER]  # a copy
        emissions[:, 0] -= self.options.blank_penalty
        emissions *= self.options.acoustic_scale
        return np.ascontiguousarray(emissions, dtype=np.float32)

    def decode(self, log_probs: np.ndarray) -> list[WordHypothesis]:
        """(T, N_CLASSES) log-softmax emissions of one trial, model column order -> the best
        path's sentence (a list of one; empty when no path survives, e.g. all -inf)."""
        kaldifst, kd = self._kaldi
        emissions = self.graph_emissions(log_probs)
        n_frames = emissions.shape[0]
        decodable = kd.DecodableCtc(emissions)  # input label i reads column i - 1
        self._decoder.decode(decodable)
        found, path = self._decoder.get_best_path()
        if not found:
            return []
        linear, labels, word_ids, weight = kaldifst.get_linear_symbol_sequence(path)
        if not linear:  # a best path is linear; kept as a guard
            return []
        unknown = [w for w in word_ids if w not in self.words]
        if unknown:
            raise DataError(
                f"{self.graph_dir / WORDS_FILE}: no word with id {unknown[0]}, which "
                f"{GRAPH_FILE} outputs: the two files do not belong together"
            )
        words = tuple(self.words[w] for w in word_ids)
        labels = np.asarray(labels, dtype=np.int64)
        phonemes: tuple[int, ...] = ()
        if labels.size == n_frames and ((labels >= 1) & (labels <= N_CLASSES)).all():
            phonemes = tuple(collapse(LABEL_TO_ID[labels]).tolist())
        score = -(float(weight.value1) + float(weight.value2))  # graph cost + acoustic cost
        return [WordHypothesis(words, phonemes, score)]

    def decode_batch(self, log_probs: Sequence[np.ndarray]) -> list[list[WordHypothesis]]:
        """One ``decode`` per trial, in order (each array already cut to its output length)."""
        return [decode_per_trial(self.decode, i, x) for i, x in enumerate(log_probs)]
