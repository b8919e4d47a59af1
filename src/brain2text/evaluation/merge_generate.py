"""``--merge generate``: a causal LM writes each trial's sentence from the members' candidates.

The model reads the start token and :func:`~brain2text.evaluation.merge_scores.correction_prompt`
(the members' top sentences and greedy phonemes, then the cue) and writes greedily, one token
at a time, constrained to the LM folder's words: a trie of the tokens of every word's ``" "
+ word`` spelling (words whose spelling holds the tokenizer's unknown token cannot be written)
decides which tokens may follow; after a whole word come the next word's first tokens or the
end token. A sentence has at most ``max_words`` words (default: the members' longest top
sentence plus 5). A model fine-tuned with ``lm finetune --task correct`` learned the format; a
base model runs too, but writes poor sentences (it never saw the prompt).

The sentence is then scored like a pooled candidate (:func:`~brain2text.evaluation.merge_scores.
merge_nbest`): the members' mean CTC log-likelihood of its lexicon spelling (each word's first
spelling, SIL after every word), its n-gram score and the model's own sentence score.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from brain2text.decoding.arpa import read_arpa
from brain2text.decoding.beam import WordHypothesis
from brain2text.decoding.lm import LanguageModel
from brain2text.errors import ConfigError, DataError
from brain2text.evaluation.members import MemberWords
from brain2text.evaluation.merge_scores import MergeWeights, correction_prompt, mean_acoustic
from brain2text.evaluation.search import DecodedWords
from brain2text.phonemes import SIL, to_ids

LN10 = math.log(10.0)
EXTRA_WORDS = 5  # the bound on a sentence's length: the longest candidate plus this


@dataclass
class TokenTrie:
    """Token sequences of words: ``children`` by token id, ``word`` where one ends."""

    children: dict[int, TokenTrie] = field(default_factory=dict)
    word: str | None = None


def lexicon_trie(tokenizer: Any, words: Iterable[str]) -> TokenTrie:
    """The trie of the ``" " + word`` token spellings of ``words`` (sorted; the first word
    keeps a token sequence two words share)."""
    root = TokenTrie()
    unknown = tokenizer.unk_token_id
    ordered = sorted(words)
    spelled = tokenizer([" " + w for w in ordered], add_special_tokens=False)["input_ids"]
    for word, token_ids in zip(ordered, spelled, strict=True):
        ids = [int(i) for i in token_ids]
        if not ids or (unknown is not None and unknown in ids):
            continue
        node = root
        for token in ids:
            node = node.children.setdefault(token, TokenTrie())
        if node.word is None:
            node.word = word
    if not root.children:
        raise DataError("the LLM's tokenizer can spell none of the LM folder's words")
    return root


def generate_sentence(lm: Any, prompt: str, trie: TokenTrie, max_words: int) -> tuple[str, ...]:
    """Greedy constrained continuation of ``prompt`` by ``lm`` (a CausalLM): its words."""
    import torch

    from brain2text.decoding.llm import start_token_id

    tokenizer, model = lm.tokenizer, lm.model
    end = tokenizer.eos_token_id
    if end is None:
        raise ConfigError(f"--llm {lm.name}: its tokenizer has no end (EOS) token to stop on")
    prompt_ids = [int(i) for i in tokenizer(prompt, add_special_tokens=False)["input_ids"]]
    ids = torch.tensor([[start_token_id(tokenizer), *prompt_ids]], device=lm.device)
    depth = max(_depth(trie), 1)
    words: list[str] = []
    node = trie
    cache_key = "cache" if "cache" in inspect.signature(model.forward).parameters else None
    with torch.inference_mode():
        out = model(input_ids=ids, use_cache=True)
        for _ in range(max_words * depth + 1):
            allowed = set(node.children)
            if node.word is not None:  # a whole word: the next word or the end
                allowed = {int(end)} if len(words) + 1 >= max_words else allowed | {int(end)}
                if len(words) + 1 < max_words:
                    allowed |= set(trie.children)
            if not allowed:
                break
            logits = out.logits[0, -1].float()
            index = torch.tensor(sorted(allowed), device=logits.device)
            token = int(index[int(torch.argmax(logits[index]))])
            if token in node.children:
                node = node.children[token]
            elif token == end:
                break
            else:
                words.append(str(node.word))
                node = trie.children[token]
            step = torch.tensor([[token]], device=lm.device)
            if cache_key == "cache":  # transformers 5.2x; ``past_key_values`` before
                out = model(input_ids=step, use_cache=True, cache=out.cache)
            else:
                out = model(input_ids=step, use_cache=True, past_key_values=out.past_key_values)
    if node.word is not None:
        words.append(node.word)
    return tuple(words)


def _depth(trie: TokenTrie) -> int:
    return 0 if not trie.children else 1 + max(_depth(c) for c in trie.children.values())


def lexicon_spelling(words: Sequence[str], lm: LanguageModel) -> tuple[int, ...]:
    """Phoneme ids of ``words``: each word's first lexicon spelling, SIL after every word."""
    symbols: list[str] = []
    for word in words:
        symbols += [*lm.spellings[word][0], SIL]
    return tuple(to_ids(symbols))


def generated_words(
    members: Sequence[MemberWords],
    causal_lm: Any,
    word_lm: LanguageModel,
    weights: MergeWeights,
    scorer: Any,
    max_words: int | None = None,
) -> DecodedWords:
    """Per trial, the one sentence ``causal_lm`` writes from the members' top sentences, scored
    (``am``: members' mean CTC log-likelihood of its lexicon spelling; ``ngram``; ``llm``:
    ``scorer``'s score; ``total``)."""
    trie = lexicon_trie(causal_lm.tokenizer, word_lm.spellings)
    arpa = read_arpa(word_lm.arpa)
    written, seconds = [], []
    for k in range(len(members[0].words.nbests)):
        start = time.perf_counter()
        tops = [m.words.sentences[k] for m in members]
        bound = max_words or max(len(t.split()) for t in tops) + EXTRA_WORDS
        prompt = correction_prompt(tops, [m.greedy_phonemes(k) for m in members])
        written.append(generate_sentence(causal_lm, prompt, trie, bound))
        searched = sum(m.words.seconds[k] for m in members)
        seconds.append(searched + time.perf_counter() - start)
    llm = scorer.score([" ".join(w) for w in written])
    nbests = []
    for k, words in enumerate(written):
        spelling = lexicon_spelling(words, word_lm)
        am = mean_acoustic([m.emissions[k] for m in members], [spelling])
        ngram = np.array([arpa.log10_sentence(words) * LN10])
        total = weights.totals(am, ngram, llm[k : k + 1], [len(words)])
        hyp = WordHypothesis(
            words,
            spelling,
            float(total[0]),
            am=float(am[0]),
            ngram=float(ngram[0]),
            llm=float(llm[k]),
            total=float(total[0]),
        )
        nbests.append([hyp])
    return DecodedWords(nbests, seconds)
