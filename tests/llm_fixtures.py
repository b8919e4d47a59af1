"""Tiny causal LMs built locally for the tests: a seeded Llama-architecture model and a
word-level tokenizer, saved as a Hugging Face folder (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

BOS, EOS, UNK, PAD = "<s>", "</s>", "<unk>", "<pad>"


def tiny_vocabulary() -> list[str]:
    """The synthetic generator's words (every test sentence is spelled with them)."""
    import numpy as np

    from brain2text.synth.sentences import sample_sentences

    words: set[str] = set()
    for evaluation in (False, True):
        for text in sample_sentences(np.random.default_rng(0), 3000, evaluation=evaluation):
            words.update(text.lower().split())
    return sorted(w for w in words if w.isascii())


def make_tiny_llm(folder: Path, *, seed: int = 0, words: list[str] | None = None) -> Path:
    """A 2-layer Llama with a word-level tokenizer that adds no BOS, in ``folder``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = [BOS, EOS, UNK, PAD, *(words or tiny_vocabulary())]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=BOS, eos_token=EOS, unk_token=UNK, pad_token=PAD
    )
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=3,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    folder = Path(folder)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
