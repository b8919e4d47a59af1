import builtins
import itertools
import math
import subprocess
import sys
from importlib.util import find_spec

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brain2text.decoding.beam import (
    MISSING_FLASHLIGHT,
    SIL_ID,
    TRIE_MAX_LABELS,
    BeamOptions,
    WordDecoder,
    WordHypothesis,
    require_flashlight,
)
from brain2text.decoding.greedy import collapse
from brain2text.decoding.phoneme_beam import PhonemeBeamDecoder
from brain2text.errors import ConfigError, DataError
from brain2text.phonemes import BLANK, N_CLASSES, PHONEME_TO_ID, to_ids

needs_flashlight = pytest.mark.skipif(
    find_spec("flashlight") is None, reason="flashlight-text is not installed (the lm extra)"
)

SPELLINGS = {
    "hello": [("HH", "AH", "L", "OW")],
    "yellow": [("Y", "EH", "L", "OW")],
    "world": [("W", "ER", "L", "D")],
    "word": [("W", "ER", "D")],
}
# log10 probabilities: "hello" opens sentences, "hello world" is common, "yellow world" rare
ARPA = """\\data\\
ngram 1=6
ngram 2=3

\\1-grams:
-1.0\t<s>\t-0.3
-0.7\t</s>
-0.5\thello\t-0.2
-1.5\tyellow\t-0.2
-0.6\tworld\t-0.2
-1.2\tword\t-0.2

\\2-grams:
-0.1\t<s> hello
-0.05\thello world
-1.5\tyellow world

\\end\\
"""
LOG10_HELLO_WORLD = -0.1 + -0.05 + (-0.2 + -0.7)  # <s> hello, hello world, world </s> (backoff)


@pytest.fixture(scope="module")
def arpa(tmp_path_factory):
    path = tmp_path_factory.mktemp("lm") / "lm.arpa"
    path.write_text(ARPA)
    return path


def emissions(*units, repeat=2, noise=1e-3, seed=0) -> np.ndarray:
    """(T, N_CLASSES) log-softmax: each unit (a symbol, or {symbol: prob} for an ambiguous one)
    held for ``repeat`` frames, then a blank frame; the rest of the mass is seeded noise."""
    frames = []
    for unit in units:
        frames += [unit if isinstance(unit, dict) else {unit: 0.95}] * repeat + [{"-": 0.95}]
    rng = np.random.default_rng(seed)
    probs = noise * rng.uniform(0.5, 1.5, size=(len(frames), N_CLASSES))
    for t, frame in enumerate(frames):
        for symbol, p in frame.items():
            probs[t, BLANK if symbol == "-" else PHONEME_TO_ID[symbol]] = p
    probs /= probs.sum(axis=1, keepdims=True)
    return np.log(probs).astype(np.float32)


def sentence(text: str, **kw) -> np.ndarray:
    return emissions(*text.split(), **kw)


def greedy(log_probs: np.ndarray) -> list[int]:
    return collapse(log_probs.argmax(axis=1)).tolist()


HELLO_WORLD = "HH AH L OW SIL W ER L D SIL"
# the first word is acoustically "yellow" (Y over HH, EH over AH), the LM prefers "hello"
AMBIGUOUS = [
    {"Y": 0.5, "HH": 0.4},
    {"EH": 0.5, "AH": 0.4},
    "L",
    "OW",
    "SIL",
    "W",
    "ER",
    "L",
    "D",
    "SIL",
]


# --- options and the missing extra (no flashlight needed) ---------------------------------


def test_default_options_are_valid():
    options = BeamOptions()
    assert (options.beam_size, options.beam_size_token, options.nbest) == (50, None, 1)
    assert options.unk_score == -math.inf and options.tokens_per_frame == N_CLASSES


@pytest.mark.parametrize(
    "name, value",
    [
        ("beam_size", 0),
        ("beam_size", 2.5),
        ("beam_size", True),
        ("beam_size_token", 0),
        ("beam_size_token", N_CLASSES + 1),
        ("beam_threshold", 0.0),
        ("beam_threshold", math.inf),
        ("lm_weight", -1.0),
        ("lm_weight", math.nan),
        ("word_score", math.inf),
        ("sil_score", math.nan),
        ("sil_score", "0"),
        ("unk_score", math.nan),
        ("unk_score", math.inf),
        ("nbest", 0),
        ("nbest", 51),
        ("log_add", 1),
    ],
)
def test_bad_options_name_the_option(name, value):
    with pytest.raises(ConfigError, match=rf"^{name}: must be") as info:
        BeamOptions(**{name: value})
    assert "\n" not in str(info.value)


def test_a_missing_flashlight_says_how_to_install_it(monkeypatch, arpa):
    real_import = builtins.__import__

    def no_flashlight(name, *args, **kwargs):
        if name.split(".")[0] == "flashlight":
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_flashlight)
    for build in (require_flashlight, PhonemeBeamDecoder, lambda: WordDecoder(arpa, SPELLINGS)):
        with pytest.raises(ConfigError) as info:
            build()
        assert (
            str(info.value)
            == MISSING_FLASHLIGHT
            == (
                "word decoding needs flashlight-text: pip install 'brain2text[lm]' "
                "(wheels for CPython 3.9-3.12)"
            )
        )


def test_no_module_of_the_package_imports_flashlight_at_import():
    code = (
        "import importlib, pkgutil, sys, brain2text\n"
        "for m in pkgutil.walk_packages(brain2text.__path__, 'brain2text.'):\n"
        "    if m.name.endswith('__main__'): continue\n"
        "    try: importlib.import_module(m.name)\n"
        "    except Exception: pass  # a module another change left broken is not this test's\n"
        "assert 'brain2text.decoding.beam' in sys.modules\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] == 'flashlight'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- the word decoder -------------------------------------------------------------------------


@needs_flashlight
def test_a_clean_sentence_decodes_to_its_words_and_phonemes(arpa):
    log_probs = sentence(HELLO_WORLD)
    [best] = WordDecoder(arpa, SPELLINGS).decode(log_probs)
    assert isinstance(best, WordHypothesis)
    assert best.words == ("hello", "world")
    assert list(best.phonemes) == to_ids(HELLO_WORLD.split()) == greedy(log_probs)


@needs_flashlight
def test_the_score_is_acoustics_plus_weighted_log10_lm_plus_word_and_sil_scores(arpa):
    log_probs = sentence(HELLO_WORLD)  # the frame-wise best path spells the sentence
    options = BeamOptions(lm_weight=2.0, word_score=0.5, sil_score=-0.3)
    [best] = WordDecoder(arpa, SPELLINGS, options).decode(log_probs)
    acoustic = float(log_probs.max(axis=1).astype(np.float64).sum())
    n_sil_frames = int((log_probs.argmax(axis=1) == SIL_ID).sum())
    assert n_sil_frames == 4
    expected = acoustic + 2.0 * LOG10_HELLO_WORLD + 0.5 * 2 - 0.3 * n_sil_frames
    assert best.score == pytest.approx(expected, abs=1e-4)


@needs_flashlight
def test_the_lm_decides_between_acoustically_ambiguous_words(arpa):
    log_probs = emissions(*AMBIGUOUS)
    [acoustic] = WordDecoder(arpa, SPELLINGS, BeamOptions(lm_weight=0.0)).decode(log_probs)
    [with_lm] = WordDecoder(arpa, SPELLINGS, BeamOptions(lm_weight=2.0)).decode(log_probs)
    assert acoustic.words == ("yellow", "world")
    assert with_lm.words == ("hello", "world")
    assert list(with_lm.phonemes) == to_ids(HELLO_WORLD.split())
    assert list(acoustic.phonemes) == greedy(log_probs)


@needs_flashlight
def test_nbest_returns_distinct_sentences_best_first(arpa):
    log_probs = emissions(*AMBIGUOUS)
    hyps = WordDecoder(arpa, SPELLINGS, BeamOptions(lm_weight=1.0, nbest=5)).decode(log_probs)
    assert len(hyps) >= 3
    assert len({h.words for h in hyps}) == len(hyps)
    assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
    [best] = WordDecoder(arpa, SPELLINGS, BeamOptions(lm_weight=1.0)).decode(log_probs)
    assert hyps[0] == best


@needs_flashlight
@pytest.mark.parametrize(
    "text",
    [
        "SIL HH AH L OW SIL W ER L D SIL",  # a leading SIL
        "HH AH L OW SIL SIL SIL W ER L D SIL SIL",  # long gaps, blanks inside them
    ],
)
def test_sil_frames_around_words_are_word_gaps(arpa, text):
    log_probs = sentence(text)
    [best] = WordDecoder(arpa, SPELLINGS).decode(log_probs)
    assert best.words == ("hello", "world")
    assert list(best.phonemes) == greedy(log_probs)  # SIL blank SIL reads as two SILs, as in CTC


@needs_flashlight
@pytest.mark.parametrize("text", ["HH AH L OW W ER L D SIL", "HH AH L OW SIL W ER L D"])
def test_a_missing_word_boundary_costs_a_frame_read_as_sil(arpa, text):
    log_probs = sentence(text)
    [best] = WordDecoder(arpa, SPELLINGS).decode(log_probs)
    assert best.words == ("hello", "world")
    assert list(best.phonemes) == to_ids(HELLO_WORLD.split())
    assert best.score < WordDecoder(arpa, SPELLINGS).decode(sentence(HELLO_WORLD))[0].score - 5


@needs_flashlight
def test_words_outside_the_lexicon_never_appear(arpa):
    decoder = WordDecoder(arpa, SPELLINGS, BeamOptions(nbest=5))
    trials = [sentence("M EH L OW SIL W ER L D SIL")]  # "mellow" is not in the lexicon
    rng = np.random.default_rng(3)
    for _ in range(5):
        logits = rng.normal(size=(40, N_CLASSES)) * 3
        trials.append(logits - np.logaddexp.reduce(logits, axis=1, keepdims=True))
    for hyps in decoder.decode_batch(trials):
        assert hyps and all(set(h.words) <= set(SPELLINGS) for h in hyps)


@needs_flashlight
def test_empty_emissions_decode_to_an_empty_sentence(arpa):
    [best] = WordDecoder(arpa, SPELLINGS).decode(np.zeros((0, N_CLASSES), np.float32))
    assert best.words == () and best.phonemes == ()
    assert PhonemeBeamDecoder().decode(np.zeros((0, N_CLASSES), np.float32)) == []


@needs_flashlight
def test_memory_layout_and_dtype_do_not_change_the_result(arpa):
    decoder = WordDecoder(arpa, SPELLINGS, BeamOptions(nbest=3))
    log_probs = emissions(*AMBIGUOUS)
    expected = decoder.decode(log_probs)
    strided = np.zeros((log_probs.shape[0], 2 * N_CLASSES))
    strided[:, ::2] = log_probs
    batch = np.stack([np.zeros_like(log_probs), log_probs])  # (B, T, C): a row is a view
    for variant in (
        np.asfortranarray(log_probs),
        log_probs.astype(np.float64),
        strided[:, ::2],
        batch[1],
    ):
        assert decoder.decode(variant) == expected


@needs_flashlight
def test_bad_emissions_and_bad_inputs_are_one_line_errors(arpa, tmp_path):
    decoder = WordDecoder(arpa, SPELLINGS)
    with pytest.raises(DataError, match=r"shape \(5, 40\)"):
        decoder.decode(np.zeros((5, 40), np.float32))
    bad = sentence(HELLO_WORLD)
    bad[3, 0] = np.nan
    with pytest.raises(DataError, match=r"^trial 1: emissions hold NaN"):
        decoder.decode_batch([sentence(HELLO_WORLD), bad])
    with pytest.raises(DataError, match="no such language model"):
        WordDecoder(tmp_path / "missing.arpa", SPELLINGS)
    (tmp_path / "bad.arpa").write_text("not an arpa file\n")
    with pytest.raises(DataError, match=r"bad.arpa: KenLM cannot load it: .*\\data\\") as info:
        WordDecoder(tmp_path / "bad.arpa", SPELLINGS)
    assert "\n" not in str(info.value)
    for spellings, message in [
        ({"hello": [("HH", "AH", "L", "OW", "SIL")]}, "SIL is added"),
        ({"hello": [("HH", "AX")]}, "'AX' is not a phoneme"),
        ({"hello": []}, "give a list of spellings"),
        ({"<unk>": [("AH",)]}, "reserved"),
        ({}, "no words"),
    ]:
        with pytest.raises(DataError, match=message):
            WordDecoder(arpa, spellings)


@needs_flashlight
def test_decode_batch_decodes_each_trial(arpa):
    decoder = WordDecoder(arpa, SPELLINGS, BeamOptions(nbest=2))
    trials = [sentence(HELLO_WORLD), emissions(*AMBIGUOUS), sentence("W ER D SIL")]
    assert decoder.decode_batch(trials) == [decoder.decode(x) for x in trials]
    assert decoder.decode(trials[2])[0].words == ("word",)


@needs_flashlight
def test_the_word_dictionary_maps_words_as_load_words_does(arpa, tmp_path):
    fl = require_flashlight()
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("".join(f"{w} {' '.join(p[0])}\n" for w, p in SPELLINGS.items()))
    word_dict = fl.dictionary.create_word_dict(fl.dictionary.load_words(str(lexicon)))
    lm = fl.KenLM(str(arpa), word_dict)
    start = lm.start(True)
    decoder = WordDecoder(arpa, SPELLINGS)
    assert decoder.unigram == {w: lm.score(start, word_dict.get_index(w))[1] for w in SPELLINGS}
    assert decoder.unigram == pytest.approx(
        {"hello": -0.5, "yellow": -1.5, "world": -0.6, "word": -1.2}
    )


# --- homophones ---------------------------------------------------------------------------

HOMOPHONES = {
    "ray": -1.0,
    "rae": -1.1,
    "rey": -1.2,
    "wray": -1.3,
    "raye": -1.4,
    "reigh": -1.5,
    "rhae": -1.6,
    "wrey": -1.7,
}  # all spelled R EY


@needs_flashlight
def test_flashlight_keeps_six_words_per_trie_node():
    fl = require_flashlight()
    trie = fl.decoder.Trie(N_CLASSES, SIL_ID)
    for label in range(TRIE_MAX_LABELS + 1):
        trie.insert([5, SIL_ID], label, -float(label))
    assert list(trie.search([5, SIL_ID]).labels) == list(range(TRIE_MAX_LABELS))


@needs_flashlight
def test_homophones_beyond_the_trie_limit_keep_the_most_probable(tmp_path):
    unigrams = "".join(f"{p}\t{w}\n" for w, p in HOMOPHONES.items())
    arpa = tmp_path / "lm.arpa"
    arpa.write_text(
        f"\\data\\\nngram 1={len(HOMOPHONES) + 2}\nngram 2=1\n\n\\1-grams:\n"
        f"-1.0\t<s>\t-0.3\n-0.7\t</s>\n{unigrams}\n\\2-grams:\n-0.5\t<s> wrey\n\n"
        "\\end\\\n"
    )  # KenLM loads bigram models and up
    # "<s> wrey" makes wrey the likeliest first word: the ranking reads unigrams, not p(w | <s>)
    order = ["wrey", "rae", "rhae", "ray", "reigh", "rey", "wray", "raye"]  # not by probability
    spellings = {w: [("R", "EY")] for w in order}
    spellings["rhae"].append(("R", "AY"))  # still reachable through its other spelling
    decoder = WordDecoder(arpa, spellings, BeamOptions(nbest=8, lm_weight=1.0))
    assert decoder.dropped_homophones == {"R EY": ["rhae", "wrey"]}
    summary = decoder.homophone_summary
    assert "\n" not in summary and "dropped 2" in summary and "R EY: rhae, wrey" in summary
    hyps = decoder.decode(sentence("R EY SIL"))
    assert hyps[0].words == ("ray",)
    kept = ["ray", "rae", "rey", "wray", "raye", "reigh"]
    assert [h.words for h in hyps[:TRIE_MAX_LABELS]] == [(w,) for w in kept]
    assert not any("wrey" in h.words for h in hyps)
    assert decoder.decode(sentence("R AY SIL"))[0].words == ("rhae",)
    assert "none dropped" in WordDecoder(arpa, {"ray": [("R", "EY")]}).homophone_summary


# --- the phoneme beam search ----------------------------------------------------------------

_PHONEME_DECODER = PhonemeBeamDecoder() if find_spec("flashlight") else None  # reused by examples


@needs_flashlight
@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, N_CLASSES - 1), min_size=1, max_size=40), st.integers(0, 2**16))
def test_phoneme_beam_equals_greedy_where_greedy_is_clearly_right(frames, seed):
    rng = np.random.default_rng(seed)
    probs = 1e-4 * rng.uniform(0.5, 1.5, size=(len(frames), N_CLASSES))
    probs[np.arange(len(frames)), frames] = 0.97
    log_probs = np.log(probs / probs.sum(axis=1, keepdims=True))
    assert _PHONEME_DECODER.decode(log_probs) == collapse(np.array(frames)).tolist()


@needs_flashlight
def test_a_leading_sil_is_a_label_of_its_own():
    log_probs = emissions("SIL", "AA", "SIL", repeat=1)
    assert PhonemeBeamDecoder().decode(log_probs) == [SIL_ID, 1, SIL_ID] == greedy(log_probs)
    # "SIL AA" (0.3) and "AA" (0.3) must not be summed as one labelling against "AE AA" (0.4)
    log_probs = emissions({"SIL": 0.3, "-": 0.3, "AE": 0.4}, "AA", repeat=1, noise=1e-6)
    assert PhonemeBeamDecoder().decode(log_probs) == [2, 1]


@needs_flashlight
def test_phoneme_beam_finds_the_most_probable_labelling_where_greedy_does_not():
    # two frames, blank 0.6 and AA 0.4: the best path is blank blank (0.36, ""), but "AA" has
    # three paths (AA AA, AA -, - AA) worth 0.64 together
    probs = np.full((2, N_CLASSES), 1e-7)
    probs[:, BLANK], probs[:, 1] = 0.6, 0.4
    log_probs = np.log(probs / probs.sum(axis=1, keepdims=True))
    assert greedy(log_probs) == []
    assert PhonemeBeamDecoder().decode(log_probs) == [1]
    assert PhonemeBeamDecoder(BeamOptions(log_add=False)).decode(log_probs) == []  # best path


@needs_flashlight
def test_sil_score_is_added_to_sil_frames():
    log_probs = emissions("AA", {"SIL": 0.6, "-": 0.35}, repeat=1)
    assert PhonemeBeamDecoder().decode(log_probs) == [1, SIL_ID]
    assert PhonemeBeamDecoder(BeamOptions(log_add=True, sil_score=-20.0)).decode(log_probs) == [1]


def _labelling_probs(probs: np.ndarray) -> dict[tuple[int, ...], float]:
    """Exact probability of every labelling: the sum over all paths (naive reference)."""
    out: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(probs.shape[1]), repeat=probs.shape[0]):
        key = tuple(collapse(np.array(path)).tolist())
        out[key] = out.get(key, 0.0) + float(np.prod(probs[np.arange(len(path)), path]))
    return out


@needs_flashlight
@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(0, 2**16))
def test_phoneme_beam_is_exact_with_a_wide_beam(n_frames, seed):
    classes = [BLANK, 1, SIL_ID]  # blank, AA, SIL
    probs = np.random.default_rng(seed).dirichlet(np.ones(3), size=n_frames)
    log_probs = np.full((n_frames, N_CLASSES), -40.0)
    log_probs[:, classes] = np.log(probs)
    decoder = PhonemeBeamDecoder(BeamOptions(beam_size=200, beam_threshold=1000.0, log_add=True))
    exact = _labelling_probs(probs)  # over columns 0, 1, 2 of probs
    found = tuple(classes.index(c) for c in decoder.decode(log_probs))
    assert exact[found] == pytest.approx(max(exact.values()), rel=1e-4)


@needs_flashlight
def test_with_options_reuses_the_lexicon_and_lm(arpa):
    """A decoder with other options decodes as one built afresh with them."""
    log_probs = emissions(*AMBIGUOUS)
    base = WordDecoder(arpa, SPELLINGS, BeamOptions(lm_weight=0.0))
    heavy = BeamOptions(lm_weight=2.0)
    reused, fresh = base.with_options(heavy), WordDecoder(arpa, SPELLINGS, heavy)
    assert reused.options == heavy and base.options.lm_weight == 0.0
    assert reused.decode(log_probs) == fresh.decode(log_probs)
    assert base.decode(log_probs)[0].words == ("yellow", "world")  # the original is unchanged
    assert reused.decode(log_probs)[0].words == ("hello", "world")


@needs_flashlight
@pytest.mark.parametrize("chunk", [1, 3, 8, 1000])
def test_a_streamed_search_ends_where_the_whole_trial_search_does(arpa, chunk):
    decoder = WordDecoder(arpa, SPELLINGS, BeamOptions(nbest=3))
    log_probs = emissions(*AMBIGUOUS, seed=3)
    stream = decoder.stream()
    partials = []
    for start in range(0, len(log_probs), chunk):
        partials.append(stream.step(log_probs[start : start + chunk]))
    assert stream.n_frames == len(log_probs)
    assert stream.finish() == decoder.decode(log_probs)
    assert partials[-1].words in {("hello", "world"), ("hello",)}
    with pytest.raises(DataError, match="finished"):
        stream.step(log_probs[:1])


@needs_flashlight
def test_a_partial_sentence_grows_word_by_word(arpa):
    decoder = WordDecoder(arpa, SPELLINGS)
    log_probs = sentence(HELLO_WORLD)
    stream = decoder.stream()
    assert stream.partial().words == ()
    half = stream.step(log_probs[: len(log_probs) // 2 + 1])
    assert half.words == ("hello",)
    assert stream.step(log_probs[len(log_probs) // 2 + 1 :]).words == ("hello", "world")
