"""LoRA fine-tuning of a causal LM (``lm finetune``) on the tiny seeded Llama."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

pytest.importorskip("peft", reason="the llm extra is not installed")

from brain2text.cli import main  # noqa: E402
from brain2text.decoding.llm_examples import (  # noqa: E402
    IGNORE,
    TextExample,
    batch_nll,
    collate,
    corpus_examples,
    encode_example,
    split_examples,
)
from brain2text.decoding.llm_finetune import FinetuneOptions, finetune_llm  # noqa: E402
from brain2text.errors import ConfigError, DataError  # noqa: E402

SUBJECTS = ["the girls", "anna", "the boys", "my friend"]
VERBS = ["paint", "see", "like", "visit"]
OBJECTS = ["the garden", "a city", "the bank", "the house"]
SENTENCES = [f"{s} {v} {o}" for s, v, o in itertools.product(SUBJECTS, VERBS, OBJECTS)]
QUICK = FinetuneOptions(max_steps=20, lr=3e-2, batch_size=16, rank=4)


def write_corpus(folder: Path) -> Path:
    corpus = folder / "corpus.txt"
    corpus.write_text("".join(f"{s.capitalize()}.\n" for s in SENTENCES), encoding="utf-8")
    return corpus


@pytest.fixture(scope="module")
def finetuned(tiny_llm, tmp_path_factory):
    """The tiny LLM fine-tuned for 20 steps on the corpus, with its result."""
    folder = tmp_path_factory.mktemp("finetuned")
    examples, corpus = corpus_examples(write_corpus(folder))
    data = {"task": "sentences", "corpus": corpus}
    result = finetune_llm(
        tiny_llm, examples, folder / "llm", options=QUICK, data=data, progress=False
    )
    return result, examples


def test_corpus_examples_are_cleaned_sentences_without_prompt(tmp_path):
    examples, corpus = corpus_examples(write_corpus(tmp_path))
    assert examples[0] == TextExample("", "the girls paint the garden")
    assert len(examples) == len(SENTENCES) and len(corpus["sha256"]) == 64
    assert "excluded" not in corpus


def test_excluded_sentences_are_dropped_in_their_cleaned_form(tmp_path):
    path = write_corpus(tmp_path)
    gone = ["The girls PAINT the garden!", "anna sees a city", "not in the corpus"]
    examples, corpus = corpus_examples(path, gone, {"split": "val", "run": "r"})
    assert len(examples) == len(SENTENCES) - 1
    assert TextExample("", "the girls paint the garden") not in examples
    assert corpus["excluded"] == {
        "split": "val", "run": "r", "n_sentences": 3, "n_corpus_lines_dropped": 1
    }  # fmt: skip
    with pytest.raises(DataError, match="every sentence is excluded"):
        corpus_examples(path, SENTENCES)


def test_cli_leaves_a_runs_validation_sentences_out(tiny_llm, prepared_dir, tmp_path):
    import yaml

    from brain2text.config import load_run
    from brain2text.data.dataset import open_prepared
    from brain2text.decoding.lm import split_sentences
    from tests.conftest import RUNS, tiny_overrides

    run = tmp_path / "run"
    run.mkdir()
    config = load_run(RUNS / "run13_cpu_demo.yaml", tiny_overrides(prepared_dir))
    (run / "config.yaml").write_text(yaml.safe_dump(config.to_dict()))
    train = open_prepared(prepared_dir).split("train")
    corpus = tmp_path / "transcripts.txt"
    corpus.write_text("".join(train.text(i) + "\n" for i in range(len(train))))
    out = tmp_path / "llm"
    argv = ["lm", "finetune", "--llm", str(tiny_llm), "--corpus", str(corpus), "--out", str(out)]
    assert main([*argv, "--exclude-split", "val", "--run", str(run), "--max-steps", "1"]) == 0
    excluded = json.loads((out / "finetune.json").read_text())["data"]["corpus"]["excluded"]
    val = split_sentences(run, "val")
    assert excluded["split"] == "val" and excluded["n_sentences"] == len(set(val)) > 0
    assert excluded["n_corpus_lines_dropped"] >= excluded["n_sentences"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--exclude-split", "val"], "--exclude-split and --run go together"),
        (["--run", "r"], "--exclude-split and --run go together"),
    ],
)
def test_cli_exclusion_needs_both_flags(tiny_llm, tmp_path, capsys, extra, message):
    corpus, out = write_corpus(tmp_path), tmp_path / "llm"
    argv = ["lm", "finetune", "--llm", str(tiny_llm), "--corpus", str(corpus), "--out", str(out)]
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not out.exists()


def test_validation_is_held_out_by_sentence_whatever_the_prompt():
    examples = [TextExample(p, s) for s in SENTENCES for p in ("", "candidates: x")]
    train, val = split_examples(examples, 0.2)
    assert val and train
    assert not {e.target for e in train} & {e.target for e in val}
    assert split_examples(list(reversed(examples)), 0.2)[1] == list(reversed(val))
    assert split_examples(examples[:2], 0.2)[1] == []  # one sentence: nothing to hold out
    assert split_examples(examples, 0.0) == (examples, [])


def test_options_are_checked():
    with pytest.raises(ConfigError, match="--rank"):
        FinetuneOptions(rank=0)
    with pytest.raises(ConfigError, match="--val-fraction"):
        FinetuneOptions(val_fraction=0.9)
    with pytest.raises(ConfigError, match="--target-modules"):
        FinetuneOptions(target_modules=())


def test_only_the_target_tokens_carry_loss(tiny_llm):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llm, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(tiny_llm, local_files_only=True).eval()
    example = TextExample("the boys see", "a city")
    ids, labels = encode_example(tokenizer, example)
    prompt = tokenizer("the boys see", add_special_tokens=False)["input_ids"]
    target = tokenizer("a city", add_special_tokens=False)["input_ids"]
    assert ids == [tokenizer.bos_token_id, *prompt, *target]
    assert labels == [IGNORE] * (1 + len(prompt)) + target
    with torch.no_grad():
        nll, n = batch_nll(model, collate([(ids, labels)], 3, "cpu"))
        log_probs = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
    first = 1 + len(prompt)
    manual = -sum(log_probs[first - 1 + i, t] for i, t in enumerate(target))
    assert n == len(target)
    assert float(nll) == pytest.approx(float(manual), rel=1e-5)
    # padding next to a longer example changes nothing
    other = encode_example(tokenizer, TextExample("", " ".join(SENTENCES[:3])))
    with torch.no_grad():
        both, n_both = batch_nll(model, collate([(ids, labels), other], 3, "cpu"))
        alone, n_other = batch_nll(model, collate([other], 3, "cpu"))
    assert n_both == n + n_other
    assert float(both) == pytest.approx(float(nll) + float(alone), rel=1e-5)
    # the end token, when asked, is a target token
    ids_end, labels_end = encode_example(tokenizer, example, end="eos")
    assert ids_end[-1] == labels_end[-1] == tokenizer.eos_token_id
    dot = tokenizer(".", add_special_tokens=False)["input_ids"]
    ids_dot, labels_dot = encode_example(tokenizer, example, end=".")
    assert ids_dot == ids + dot and labels_dot == labels + dot


def test_the_loss_of_a_sentence_is_minus_its_scorer_score(tiny_llm):
    import torch

    from brain2text.decoding.llm import load_causal_lm, load_scorer

    lm = load_causal_lm(tiny_llm, device="cpu")
    sentence = SENTENCES[5]
    with torch.no_grad():
        nll, _ = batch_nll(
            lm.model, collate([encode_example(lm.tokenizer, TextExample("", sentence))], 3, "cpu")
        )
    score = load_scorer(tiny_llm, device="cpu").score([sentence])[0]
    assert -float(nll) == pytest.approx(score, rel=1e-5)


def test_finetuning_lowers_val_perplexity_and_records_it(finetuned):
    result, examples = finetuned
    assert result.val_perplexity_after < 0.85 * result.val_perplexity_before
    assert result.n_train + result.n_val == len(examples) and result.n_val > 0
    info = json.loads((result.out_dir / "finetune.json").read_text())
    assert info["val_perplexity_before"] == pytest.approx(result.val_perplexity_before)
    assert info["val_perplexity_after"] == pytest.approx(result.val_perplexity_after)
    assert info["steps"] == 20 and info["options"]["rank"] == 4
    assert info["data"]["task"] == "sentences" and len(info["data"]["corpus"]["sha256"]) == 64
    assert info["base"]["source"] and "peft" in info["versions"]
    names = {p.name for p in result.out_dir.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "finetune.json"} <= names
    assert not [p for p in result.out_dir.parent.iterdir() if p.name.startswith(".")]


def test_the_finetuned_folder_scores_the_corpus_higher(tiny_llm, finetuned):
    from brain2text.decoding.llm import load_scorer

    result, _ = finetuned
    sentences = SENTENCES[:8]
    before = load_scorer(tiny_llm, device="cpu").score(sentences)
    after = load_scorer(result.out_dir, device="cpu").score(sentences)
    assert (after > before).all()


def test_resume_gives_the_weights_of_an_uninterrupted_run(tiny_llm, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    examples = [TextExample("", s) for s in SENTENCES]
    options = FinetuneOptions(batch_size=8, rank=2, lr=1e-2, dropout=0.1, save_every=3)
    straight = finetune_llm(
        tiny_llm,
        examples,
        tmp_path / "straight",
        options=FinetuneOptions(**{**options.__dict__, "max_steps": 7}),
        progress=False,
    )
    finetune_llm(
        tiny_llm,
        examples,
        tmp_path / "resumed",
        options=FinetuneOptions(**{**options.__dict__, "max_steps": 4}),
        progress=False,
    )
    saved = json.loads((tmp_path / "resumed.partial" / "resume.json").read_text())
    assert saved["step"] == 4
    resumed = finetune_llm(
        tiny_llm,
        examples,
        tmp_path / "resumed",
        options=FinetuneOptions(**{**options.__dict__, "max_steps": 7}),
        resume=True,
        progress=False,
    )
    assert resumed.steps == straight.steps == 7
    assert resumed.val_perplexity_before == straight.val_perplexity_before
    a = load_file(str(straight.out_dir / "model.safetensors"))
    b = load_file(str(resumed.out_dir / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all((a[k] == b[k]).all() for k in a)
    # an interruption (Ctrl-C) during step 6: the state saved after step 3 is resumed
    import brain2text.decoding.llm_finetune as finetune_module

    calls = []

    def interrupted(model, batch):
        calls.append(model.training)
        if sum(calls) == 6:
            raise KeyboardInterrupt
        return batch_nll(model, batch)

    monkeypatch.setattr(finetune_module, "batch_nll", interrupted)
    with pytest.raises(KeyboardInterrupt):
        finetune_llm(
            tiny_llm,
            examples,
            tmp_path / "stopped",
            options=FinetuneOptions(**{**options.__dict__, "max_steps": 7}),
            progress=False,
        )
    monkeypatch.undo()
    assert not (tmp_path / "stopped").exists()
    assert json.loads((tmp_path / "stopped.partial" / "resume.json").read_text())["step"] == 3
    stopped = finetune_llm(
        tiny_llm,
        examples,
        tmp_path / "stopped",
        options=FinetuneOptions(**{**options.__dict__, "max_steps": 7}),
        resume=True,
        progress=False,
    )
    c = load_file(str(stopped.out_dir / "model.safetensors"))
    assert all((a[k] == c[k]).all() for k in a)
    base = load_file(str(Path(tiny_llm) / "model.safetensors"))
    assert any(not (a[k] == base[k]).all() for k in a if k in base)  # it did learn something
    with pytest.raises(ConfigError, match="--resume: option rank"):
        finetune_llm(
            tiny_llm,
            examples,
            tmp_path / "resumed",
            options=FinetuneOptions(**{**options.__dict__, "max_steps": 9, "rank": 3}),
            resume=True,
            progress=False,
        )


def test_cli_finetunes_and_refuses_to_overwrite(tiny_llm, tmp_path, capsys):
    corpus, out = write_corpus(tmp_path), tmp_path / "llm"
    argv = ["lm", "finetune", "--llm", str(tiny_llm), "--corpus", str(corpus), "--out", str(out)]
    assert main([*argv, "--max-steps", "2", "--rank", "2"]) == 0
    line = capsys.readouterr().out.strip()
    assert "for 2 steps" in line and "->" in line and str(out) in line
    assert json.loads((out / "finetune.json").read_text())["steps"] == 2
    assert main([*argv, "--max-steps", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "--overwrite" in err and "\n" not in err
    assert main([*argv, "--max-steps", "3", "--rank", "2", "--resume"]) == 0
    assert json.loads((out / "finetune.json").read_text())["steps"] == 3


def test_cli_task_correct_trains_an_end_token(tiny_llm, tmp_path, monkeypatch, capsys):
    import brain2text.evaluation.merge as merge

    calls = []

    def fake_examples(run_dirs, lm_dir, splits=("train", "val"), **kwargs):
        calls.append((list(run_dirs), lm_dir, tuple(splits)))
        return [TextExample(f"candidates: {s}", s) for s in SENTENCES]

    monkeypatch.setattr(merge, "correction_examples", fake_examples)
    out = tmp_path / "corrector"
    argv = ["lm", "finetune", "--llm", str(tiny_llm), "--task", "correct", "--out", str(out)]
    assert main([*argv, "--runs", "r1", "r2", "--lm", "lmdir", "--max-steps", "2"]) == 0
    assert calls == [([Path("r1"), Path("r2")], Path("lmdir"), ("train", "val"))]
    info = json.loads((out / "finetune.json").read_text())
    assert info["data"]["task"] == "correct" and info["options"]["end"] == "eos"
    capsys.readouterr()
    assert main([*argv, "--runs", "r1", "--max-steps", "2", "--overwrite"]) == 2
    assert "--lm" in capsys.readouterr().err


@pytest.mark.parametrize(
    "case", ["missing corpus", "empty corpus", "not an LLM", "foreign out", "nothing to resume"]
)
def test_bad_input_is_one_line_and_writes_nothing(tiny_llm, tmp_path, capsys, case):
    corpus, out, base = write_corpus(tmp_path), tmp_path / "llm", str(tiny_llm)
    extra = []
    if case == "missing corpus":
        corpus = tmp_path / "nowhere.txt"
    elif case == "empty corpus":
        corpus.write_text("\n - \n", encoding="utf-8")
    elif case == "not an LLM":
        (tmp_path / "notes").mkdir()
        (tmp_path / "notes" / "readme.txt").write_text("hello")
        base = str(tmp_path / "notes")
    elif case == "foreign out":
        out.mkdir()
        (out / "mine.txt").write_text("keep me")
        extra = ["--overwrite"]
    else:
        extra = ["--resume"]
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = ["lm", "finetune", "--llm", base, "--corpus", str(corpus), "--out", str(out)]
    assert main([*argv, "--max-steps", "1", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if case == "foreign out":
        assert (out / "mine.txt").read_text() == "keep me"
