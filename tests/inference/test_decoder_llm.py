"""Decoder.load(..., lm=, llm=): decode() gives the sentence evaluate --llm chose, and a
stream's finish() rescores its n-best the same way (partial sentences stay n-gram only)."""

import json

import pytest

from brain2text import Decoder
from brain2text.cli import main
from brain2text.config import load_run
from brain2text.data.dataset import open_prepared
from brain2text.decoding.lm import build_lm
from brain2text.errors import ConfigError
from brain2text.evaluation.rescoring import RescoreOptions
from brain2text.training.loop import train
from tests.conftest import RUNS, tiny_overrides

pytest.importorskip("flashlight.lib.text.decoder", reason="the lm extra is not installed")

OPTIONS = ["--beam", "8", "--nbest", "5", "--alpha", "0.6", "--acoustic-scale", "0.5"]


@pytest.fixture(scope="module")
def causal_run_and_lm(prepared_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("decoder-llm")
    config = load_run(
        RUNS / "run13_causal.yaml", tiny_overrides(prepared_dir, **{"train.num_workers": 0})
    )
    train(config, root / "run", quiet=True)
    train_split = open_prepared(prepared_dir).split("train")
    corpus = root / "corpus.txt"
    corpus.write_text("".join(train_split.text(i) + "\n" for i in range(len(train_split))))
    build_lm(corpus, root / "lm")
    return root / "run", root / "lm"


def test_decode_and_finish_give_evaluates_rescored_sentence(
    causal_run_and_lm, tiny_llm, prepared_dir
):
    run, lm = causal_run_and_lm
    assert main(["evaluate", str(run), "--lm", str(lm), "--llm", str(tiny_llm), *OPTIONS]) == 0
    rows = [
        json.loads(line)
        for line in (run / "eval" / "test-llm" / "hypotheses.jsonl").read_text().splitlines()
    ]
    dec = Decoder.load(
        run,
        lm=lm,
        llm=tiny_llm,
        rescoring=RescoreOptions(alpha=0.6, acoustic_scale=0.5),
        beam_size=8,
        nbest=5,
    )
    assert dec.words is not None and dec.words.rescoring is not None
    test = open_prepared(prepared_dir).split("test")
    for i in range(3):
        x, day = test.features(i), rows[i]["session"]
        out = dec.decode(x, day)
        assert out.text == rows[i]["hyp"]
        assert [h.total for h in out.nbest] == pytest.approx([h["total"] for h in rows[i]["nbest"]])
        stream = dec.stream(day)
        for first in range(0, len(x), 7):
            stream.push(x[first : first + 7])
        done = stream.finish()
        assert done.text == out.text and [h.words for h in done.nbest] == [
            h.words for h in out.nbest
        ]


def test_an_llm_without_an_lm_is_refused(causal_run_and_lm, tiny_llm):
    run, _ = causal_run_and_lm
    with pytest.raises(ConfigError, match="give an LM folder with --lm"):
        Decoder.load(run, llm=tiny_llm)
