"""Word-level shallow fusion: a causal LLM inside the lexicon beam search.

flashlight's search asks its LM for the score of each word given the hypothesis's word
history. :class:`FusionLM` answers with the KenLM score of the word (the decoder's own KenLM
object, its state kept per history) plus the LLM's:

    fused(word | history) = log10 p_ngram(word | history) + llm_weight * log10 p_llm(word | history)

flashlight multiplies that by ``lm_weight``, so a sentence's LM part of the total is
``lm_weight / ln 10 * (ngram + llm_weight * llm)`` with ``ngram`` and ``llm`` natural-log
sentence scores: ``llm_weight`` is the LLM's weight relative to the n-gram's (0: today's search
exactly). ``p_llm(word | history)`` is the product of the word's tokens' probabilities given the
start token and the history's tokens (words joined by spaces, as the sentence scorer reads
them); the sentence's end adds KenLM's ``</s>`` only (no LLM end-of-sentence term, as in n-best
rescoring).

The histories form a trie (``LMState.child`` returns the same state for the same word): each
distinct history is run through the LLM once, and that one forward gives both the word's
log-probability and the next-token distribution its children's first tokens are read from.
The caches live for one trial (:meth:`FusedDecoder.decode` starts a fresh LM).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from brain2text.decoding.beam import LN10, WordDecoder, WordHypothesis, as_emissions
from brain2text.decoding.checks import check_number
from brain2text.decoding.llm import CausalLM, SentenceScorer, require_llm, start_token_id
from brain2text.errors import ConfigError
from brain2text.phonemes import N_CLASSES

DEFAULT_FUSION_WEIGHT = 1.0


@dataclass(frozen=True)
class FusionOptions:
    """``llm_weight``: the LLM's log-probability's weight relative to the n-gram's (>= 0)."""

    llm_weight: float = DEFAULT_FUSION_WEIGHT

    def __post_init__(self) -> None:
        check_number(self, "llm_weight")
        if self.llm_weight < 0:
            raise ConfigError(f"--fusion-weight: must be >= 0, got {self.llm_weight!r}")


@dataclass
class _Node:
    kenlm_state: Any
    words: tuple[int, ...]
    tokens: tuple[int, ...]  # start token + the history's tokens
    ngram: float  # log10, the history's n-gram score
    llm: float  # ln, the history's LLM score
    next_log_probs: Any = None  # torch (vocab,) ln p(next token | tokens); None until run


def _fusion_lm_class() -> type:
    from brain2text.decoding.beam import require_flashlight

    fl = require_flashlight()

    class FusionLM(fl.decoder.LM):  # type: ignore[name-defined]
        """flashlight LM: KenLM plus a weighted causal LLM, cached per word history."""

        def __init__(self, decoder: WordDecoder, lm: CausalLM, llm_weight: float) -> None:
            super().__init__()
            self.kenlm = decoder._lm
            self.word_dict = decoder._word_dict
            self.lm = lm
            self.llm_weight = llm_weight
            self.start_id = start_token_id(lm.tokenizer)
            self.nodes: dict[Any, _Node] = {}
            self.by_words: dict[tuple[int, ...], _Node] = {}
            self.word_tokens: dict[int, tuple[int, ...]] = {}
            self.n_forwards = 0

        def _tokens_of(self, word: int, first: bool) -> tuple[int, ...]:
            key = word if first else -1 - word
            if key not in self.word_tokens:
                text = self.word_dict.get_entry(word)
                ids = self.lm.tokenizer(text if first else " " + text, add_special_tokens=False)
                self.word_tokens[key] = tuple(int(i) for i in ids["input_ids"])
            return self.word_tokens[key]

        def _run(self, node: _Node) -> Any:
            """ln p(token | tokens before it) for every position of ``node.tokens`` (one
            forward); caches the last row as the node's next-token distribution."""
            import torch

            ids = torch.tensor([node.tokens], device=self.lm.device)
            with torch.inference_mode():
                logits = self.lm.model(input_ids=ids).logits[0].float()
            self.n_forwards += 1
            log_probs = torch.log_softmax(logits, dim=-1)
            node.next_log_probs = log_probs[-1]
            return log_probs

        def start(self, start_with_nothing: bool):
            state = fl.decoder.LMState()
            node = _Node(self.kenlm.start(start_with_nothing), (), (self.start_id,), 0.0, 0.0)
            self.nodes[state] = node
            self.by_words[()] = node
            return state

        def score(self, state, word_index: int):
            child = state.child(word_index)
            known = self.nodes.get(child)
            parent = self.nodes[state]
            if known is None:
                kenlm_state, log10 = self.kenlm.score(parent.kenlm_state, word_index)
                tokens = self._tokens_of(word_index, first=not parent.words)
                known = _Node(
                    kenlm_state,
                    (*parent.words, word_index),
                    parent.tokens + tokens,
                    parent.ngram + log10,
                    parent.llm,
                )
                if self.llm_weight > 0:
                    if parent.next_log_probs is None:
                        self._run(parent)
                    if len(tokens) == 1:
                        word_ln = float(parent.next_log_probs[tokens[0]])
                    else:  # the later tokens: read from the child's own forward
                        rows = self._run(known)
                        start = len(parent.tokens)
                        word_ln = float(parent.next_log_probs[tokens[0]]) + sum(
                            float(rows[start + k - 1, tokens[k]]) for k in range(1, len(tokens))
                        )
                    known.llm = parent.llm + word_ln
                self.nodes[child] = known
                self.by_words[known.words] = known
            fused = (known.ngram - parent.ngram) + self.llm_weight * (
                (known.llm - parent.llm) / LN10
            )
            return child, fused

        def finish(self, state):
            node = self.nodes[state]
            kenlm_state, log10 = self.kenlm.finish(node.kenlm_state)
            end = state.child(-1)
            if end not in self.nodes:
                done = _Node(kenlm_state, node.words, node.tokens, node.ngram + log10, node.llm)
                self.nodes[end] = done
                self.by_words[(*node.words, -1)] = done
            return end, log10

    return FusionLM


class FusedDecoder:
    """A :class:`WordDecoder`'s lexicon, trie and KenLM searched with an LLM fused in."""

    def __init__(self, decoder: WordDecoder, lm: CausalLM, options: FusionOptions) -> None:
        require_llm()
        self.words = decoder
        self.lm = lm
        self.fusion = options
        self.options = decoder.options
        self._lm_class = _fusion_lm_class()
        self.last_lm: Any = None  # the last trial's fusion LM (its caches and forward count)

    def decode(self, log_probs: np.ndarray) -> list[WordHypothesis]:
        """(T, N_CLASSES) log-softmax emissions of one trial -> up to ``nbest`` sentences."""
        emissions = as_emissions(log_probs)  # alive until decode returns
        n_frames = emissions.shape[0]
        fusion_lm = self._lm_class(self.words, self.lm, self.fusion.llm_weight)
        search = self.words._search(self.options, fusion_lm)
        results = search.decode(emissions.ctypes.data, n_frames, N_CLASSES)
        self.last_lm = fusion_lm
        out = []
        for hypothesis in self.words._nbest(results, n_frames):
            ids = tuple(self.words._word_dict.get_index(w) for w in hypothesis.words)
            node = fusion_lm.by_words.get((*ids, -1)) or fusion_lm.by_words.get(ids)
            ngram = math.nan if node is None else node.ngram * LN10
            out.append(replace(hypothesis, ngram=ngram, llm=None if node is None else node.llm))
        return out


def fused_decoder(
    decoder: WordDecoder, scorer_or_causal_lm: SentenceScorer | CausalLM, llm_weight: float
) -> FusedDecoder:
    """``decoder``'s search with the causal LM fused in at word level (module docstring)."""
    lm = (
        scorer_or_causal_lm.lm
        if isinstance(scorer_or_causal_lm, SentenceScorer)
        else scorer_or_causal_lm
    )
    return FusedDecoder(decoder, lm, FusionOptions(llm_weight))
