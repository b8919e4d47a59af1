"""Phoneme inventory, cleaning, both phonemisers and user lexicons, pinned to exact values."""

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from brain2text import g2p
from brain2text.errors import ConfigError, DataError
from brain2text.g2p import (
    NeuralG2p,
    ReferencePhonemizer,
    compare_phonemizers,
    gru_step,
    make_phonemizer,
)
from brain2text.phonemes import (
    BLANK,
    N_CLASSES,
    PHONEME_TO_ID,
    PHONEMES,
    clean_text,
    cmu_dictionary,
    missing_words,
    phonemize,
    pronounce,
    read_lexicon,
    strip_stress,
    to_ids,
    to_symbols,
    words_of,
)

REPO = Path(__file__).resolve().parents[1]
FACTS_ORDER = (
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH "
    "T TH UH UW V W Y Z ZH SIL"
)  # FACTS §2, ids 1..40


@pytest.fixture(scope="module")
def ref() -> ReferencePhonemizer:
    return ReferencePhonemizer()


def sym(text: str) -> list[str]:
    return text.split()


# --- inventory and cleaning ----------------------------------------------------------------


def test_symbol_order_and_ids_follow_the_reference():
    assert PHONEMES == tuple(FACTS_ORDER.split())
    assert BLANK == 0 and N_CLASSES == 41
    assert PHONEME_TO_ID["AA"] == 1 and PHONEME_TO_ID["ZH"] == 39 and PHONEME_TO_ID["SIL"] == 40
    assert to_ids(sym("HH AH L OW SIL")) == [16, 3, 21, 25, 40]
    assert to_symbols([1, 40, 39]) == ["AA", "SIL", "ZH"]


def test_known_cmu_pronunciations():
    assert pronounce("hello") == sym("HH AH L OW")
    assert pronounce("world") == sym("W ER L D")
    assert pronounce("thought") == sym("TH AO T")
    assert pronounce("measure") == sym("M EH ZH ER")
    assert pronounce("choice") == sym("CH OY S")
    assert pronounce("refuse") == sym("R AH F Y UW Z")  # the first of its three entries
    assert pronounce("zzyzxq") is None


def test_stress_digits_are_removed():
    assert strip_stress(["AH0", "B", "AW1", "T", "ER2"]) == sym("AH B AW T ER")
    symbols = {p for pron in cmu_dictionary().values() for p in pron}
    assert symbols <= set(PHONEMES[:-1])  # every dictionary symbol is one of the 39, no digits


def test_cleaning_rule():
    assert clean_text("Hello -- World!") == "hello  world"  # '--' dropped, punctuation too
    assert clean_text("It's 5 o'clock, well-known.") == "it's  o'clock well-known"
    assert clean_text("a---b") == "a-b"  # pairs of dashes go, an odd one stays
    assert words_of("  Don't  STOP  ") == ["don't", "stop"]


# --- cmu mode --------------------------------------------------------------------------------


def test_sil_after_every_word_including_the_last():
    assert phonemize("Hello world.") == sym("HH AH L OW SIL W ER L D SIL")
    out = phonemize("the cat sat on the mat")
    assert out[-1] == "SIL" and out.count("SIL") == 6


def test_cmu_mode_contractions_hyphens_and_quotes():
    assert phonemize("I don't know, it's fine") == sym(
        "AY SIL D OW N T SIL N OW SIL IH T S SIL F AY N SIL"
    )  # contractions stay whole
    assert phonemize("well-known") == sym("W EH L N OW N SIL")  # in the dictionary as a whole
    assert phonemize("go-getter") == sym("G OW G EH T ER SIL")  # not: part by part
    assert phonemize("the kids' toys") == sym("DH AH SIL K IH D Z SIL T OY Z SIL")
    assert phonemize("well - yes") == sym("W EH L SIL Y EH S SIL")  # a lone '-' is no word


def test_cmu_mode_lists_unknown_words():
    with pytest.raises(KeyError) as info:
        phonemize("the zzyzxq and qqxv sat")
    assert info.value.args[0] == ["zzyzxq", "qqxv"]
    assert missing_words("the zzyzxq sat - ok") == ["zzyzxq"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(sorted(cmu_dictionary())[1000:6000]), min_size=1, max_size=8))
def test_one_sil_per_dictionary_word(words):
    out = phonemize(" ".join(words))
    assert out.count("SIL") == len(words) and out[-1] == "SIL"
    assert len(out) == sum(len(cmu_dictionary()[w]) + 1 for w in words)


# --- reference mode --------------------------------------------------------------------------


def test_reference_tokens_are_g2p_en_2_1_0s(ref):
    # TweetTokenizer: contractions and hyphenated words stay whole; edge quotes and lone dashes
    # become tokens of their own
    assert ref.tokens("I don't know, it's well-known") == [
        "i",
        "don't",
        "know",
        "it's",
        "well-known",
    ]
    assert ref.tokens("the kids' toys 'cause - yes") == [
        "the",
        "kids",
        "'",
        "toys",
        "'",
        "cause",
        "-",
        "yes",
    ]


def test_reference_mode_contractions_hyphens_and_quotes(ref):
    assert ref("I don't know, it's fine") == phonemize("I don't know, it's fine")
    assert ref("well-known") == sym("W EH L N OW N SIL")
    assert ref("the kids' toys") == sym("DH AH SIL K IH D Z SIL SIL T OY Z SIL")  # "'" -> SIL
    assert ref("well - yes") == sym("W EH L SIL SIL Y EH S SIL")
    assert ref("'cause") == sym("SIL K AA Z SIL")  # "'" then "cause", not CMU's 'cause
    assert ref("go-getter") == sym("G OW G IH T ER SIL")  # the network guesses it whole


def test_reference_homographs_take_the_second_pronunciation(ref):
    assert ref("refuse") == sym("R EH F Y UW Z SIL")  # homographs.en: R IH F.. (V) | R EH F..
    assert ref.untagged["refuse"] >= 1
    assert ref("read") == sym("R EH D SIL")


def test_neural_guess_matches_g2p_en(ref):
    # g2p_en's README prints this guess for "activationist"
    assert NeuralG2p.from_g2p_en().predict("activationist") == [
        "AE2",
        "K",
        "T",
        "IH0",
        "V",
        "EY1",
        "SH",
        "AH0",
        "N",
        "IH0",
        "S",
        "T",
    ]
    assert ref("zzyzxq") == sym("Z IY K S K SIL")
    assert ref.guessed["zzyzxq"] == "Z IY K S K"


def test_reference_mode_never_imports_g2p_en(ref):
    ref("an activationist said so")  # a guess: the weights are read from g2p_en's folder
    assert "g2p_en" not in sys.modules  # importing it would try to download NLTK data


def test_gru_step_is_torchs_gru_cell():
    torch.manual_seed(0)
    cell = torch.nn.GRUCell(5, 3)
    x, h = torch.randn(1, 5), torch.randn(1, 3)
    want = cell(x, h).detach().numpy()
    params = [
        p.detach().numpy() for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    ]
    np.testing.assert_allclose(gru_step(x.numpy(), h.numpy(), *params), want, rtol=1e-5, atol=1e-6)


def test_missing_g2p_en_files_are_a_one_line_error(monkeypatch):
    g2p.g2p_en_folder.cache_clear()
    monkeypatch.setattr(g2p.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="pip install --no-deps g2p_en==2.1.0"):
        g2p.g2p_en_folder()
    g2p.g2p_en_folder.cache_clear()


def test_changed_g2p_en_files_are_refused(monkeypatch, tmp_path):
    (tmp_path / "checkpoint20.npz").write_bytes(b"not the weights")
    g2p.g2p_en_folder.cache_clear()
    spec = types.SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(g2p.importlib.util, "find_spec", lambda name: spec)
    with pytest.raises(DataError, match=r"checkpoint20\.npz: missing or not the file"):
        g2p.g2p_en_folder()
    g2p.g2p_en_folder.cache_clear()


def test_unknown_phonemizer_name():
    with pytest.raises(ConfigError, match="cmu or reference"):
        make_phonemizer("espeak")


# --- user lexicon ------------------------------------------------------------------------------


def lexicon_file(tmp_path, text: str) -> Path:
    path = tmp_path / "extra.dict"
    path.write_text(text, encoding="utf-8")
    return path


def test_lexicon_format(tmp_path):
    path = lexicon_file(
        tmp_path,
        ";;; my words\n\nZZYZXQ  Z IH1 Z IH0 K S\n"
        "ZZYZXQ(2)  Z AY1 Z\nhello hh eh0 l ow1  # British\n",
    )
    assert read_lexicon(path) == {"zzyzxq": sym("Z IH Z IH K S"), "hello": sym("HH EH L OW")}


def test_lexicon_comes_before_the_dictionary_in_both_modes(tmp_path):
    lexicon = read_lexicon(
        lexicon_file(tmp_path, "HELLO  HH EH1 L OW0\nZZYZXQ  Z IH1 K\nREFUSE  R IY1 F Y UW0 Z\n")
    )
    assert phonemize("hello zzyzxq", lexicon) == sym("HH EH L OW SIL Z IH K SIL")
    assert phonemize("hello") == sym("HH AH L OW SIL")  # without it, the dictionary
    ref = ReferencePhonemizer(lexicon)
    assert ref("hello zzyzxq") == sym("HH EH L OW SIL Z IH K SIL")  # no guess needed
    assert ref("refuse") == sym("R IY F Y UW Z SIL")  # before the homograph table too
    assert ref.counts["lexicon"] == 3 and not ref.guessed


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("HELLO  HH AH0 L OW1\nWORLD\n", 2, "no phonemes"),
        (";;; c\nHELLO  HH AH0 L QQ1\n", 2, "unknown phoneme 'QQ1'"),
        ("HELLO  HH AH3 L OW\n", 1, "unknown phoneme 'AH3'"),
        ("HELLO  HH AH L OW SIL\n", 1, "unknown phoneme 'SIL'"),
        ("\nE.G.  IY JH IY\n", 2, "can never match"),
        ("HELLO  HH AH L OW\nhello  HH EH L OW\n", 2, "already defined on line 1"),
    ],
)
def test_malformed_lexicon_line_is_a_one_line_error(tmp_path, text, line, what):
    path = lexicon_file(tmp_path, text)
    with pytest.raises(DataError) as info:
        read_lexicon(path)
    message = str(info.value)
    assert message.startswith(f"{path} line {line}: ") and what in message and "\n" not in message


def test_unreadable_lexicon_names_the_file(tmp_path):
    with pytest.raises(DataError, match=r"nowhere\.dict: no such lexicon file"):
        read_lexicon(tmp_path / "nowhere.dict")
    (tmp_path / "latin1.dict").write_bytes("CAF\xc9  K AE F EY\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.dict: not UTF-8"):
        read_lexicon(tmp_path / "latin1.dict")


# --- how the modes differ ----------------------------------------------------------------------


def test_comparison_names_the_causes():
    result = compare_phonemizers(
        ["the kids' toys", "I refuse", "go-getter", "a zzyzxq", "we agree"]
    )
    rows = {r.text: r for r in result.sentences}
    assert rows["we agree"].edits == 0 and rows["we agree"].causes == ()
    assert rows["the kids' toys"].causes == ("split by the tokenizer (extra SIL)",)
    assert rows["the kids' toys"].edits == 1
    assert rows["I refuse"].causes == ("homograph (second pronunciation)",)
    assert rows["I refuse"].edits == 1  # R AH F.. -> R EH F..
    assert rows["go-getter"].causes == ("cmu by parts, reference guesses",)
    assert rows["a zzyzxq"].cmu is None
    assert result.summary() == {
        "n_sentences": 5,
        "n_cmu_unlabelled": 1,
        "n_differing": 3,
        "edits": 3,
        "n_reference_phonemes": 13 + 9 + 7 + 8,
        "n_untagged_homographs": 1,
        "causes": {
            "split by the tokenizer (extra SIL)": 1,
            "homograph (second pronunciation)": 1,
            "cmu by parts, reference guesses": 1,
            "unknown to cmu (reference guesses)": 1,
        },
    }


def test_documented_measurement(capsys):
    """The figures docs/prepared-format.md quotes for benchmarks/phonemizer_labels.py."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import phonemizer_labels
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    assert len(phonemizer_labels.SENTENCES) == 40
    result = compare_phonemizers(phonemizer_labels.SENTENCES)
    s = result.summary()
    assert (s["n_cmu_unlabelled"], s["n_differing"], s["edits"], s["n_reference_phonemes"]) == (
        1,
        10,
        22,
        1317,
    )
    assert s["n_untagged_homographs"] == 10
    print(phonemizer_labels.report(result))
    assert "| 40 | 1 | 10 | 22 | 1317 | 1.67% |" in capsys.readouterr().out
