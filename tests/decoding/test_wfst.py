"""WfstDecoder over a small TLG built here the way the B2T'24 graph is built.

The B2T'24 recipe (speechBCI LanguageModelDecoder: ctc_compile_dict_token.sh, make_tlg.sh):
tokens ``<eps> <blk> SIL AA..ZH #0..#k``; T is the CTC token topology (blank self-loops,
repeats without output, disambiguation symbols passed through on every state); L is Kaldi's
lexicon FST with optional silence (make_lexicon_fst.pl with a silence probability and a
silence disambiguation symbol, then #0 self-loops); G is the ARPA model with back-offs on #0
and <s>/</s> as epsilons (arpa2fst --disambig-symbol=#0), epsilons removed; then
LG = minimize_encoded(determinize_star(L o G)) and TLG = T o LG.
"""

import builtins
import math
import subprocess
import sys
from collections import Counter
from importlib.util import find_spec

import numpy as np
import pytest

from brain2text.decoding.beam import WordHypothesis
from brain2text.decoding.wfst import (
    DEFAULT_BLANK_PENALTY,
    GRAPH_TOKENS,
    MISSING_KALDI,
    TO_GRAPH_ORDER,
    WfstDecoder,
    WfstOptions,
    require_kaldi,
)
from brain2text.errors import ConfigError, DataError
from brain2text.phonemes import BLANK, N_CLASSES, PHONEME_TO_ID, PHONEMES, SIL, to_ids

needs_kaldi = pytest.mark.skipif(
    any(find_spec(m) is None for m in ("kaldifst", "kaldi_decoder", "kaldilm")),
    reason="kaldifst, kaldi-decoder and kaldilm are not installed (the lm extra)",
)

LN10 = math.log(10)
SIL_PROB = 0.5
# "right" and "write" are homophones: only the LM tells them apart. "josh" is "cat" with every
# phoneme replaced by the one before it in AA..ZH: what "cat" reads as when the model's columns
# go to the graph unreordered (the graph reads model column c as the phoneme before it).
LEXICON = {
    "cat": ("K", "AE", "T"),
    "josh": ("JH", "AA", "SH"),
    "now": ("N", "AW"),
    "right": ("R", "AY", "T"),
    "write": ("R", "AY", "T"),
}
# log10 probabilities; RIGHT_ARPA prefers "right now", WRITE_ARPA "write now"
ARPA = """\\data\\
ngram 1=7
ngram 2=4

\\1-grams:
-1.0\t<s>\t-0.3
-0.7\t</s>
-1.0\tcat\t-0.2
-1.0\tjosh\t-0.2
-1.0\tnow\t-0.2
-1.0\tright\t-0.2
-1.0\twrite\t-0.2

\\2-grams:
-0.3\t<s> josh
{right}\tright now
{write}\twrite now
-0.1\tnow </s>

\\end\\
"""
RIGHT_ARPA = ARPA.format(right=-0.1, write=-2.0)
WRITE_ARPA = ARPA.format(right=-2.0, write=-0.1)


# --- building a TLG the B2T'24 way ---------------------------------------------------------


def _disambiguate(lexicon):
    """Kaldi's add_lex_disambig.pl: #1, #2, ... after spellings that are shared or that are a
    prefix of another; returns the entries and the number of disambiguation symbols used."""
    entries = [(w, tuple(p)) for w, p in sorted(lexicon.items())]
    shared = Counter(p for _, p in entries)
    prefixes = {p[:i] for _, p in entries for i in range(1, len(p))}
    seen: Counter = Counter()
    out = []
    for word, pron in entries:
        if shared[pron] > 1 or pron in prefixes:
            seen[pron] += 1
            pron = (*pron, f"#{seen[pron]}")
        out.append((word, pron))
    return out, max(seen.values(), default=0)


def build_tlg(graph_dir, lexicon, arpa_text, sil_prob=SIL_PROB, tokens_txt=True):
    import kaldifst
    import kaldilm

    graph_dir.mkdir(parents=True, exist_ok=True)
    entries, n_disambig = _disambiguate(lexicon)
    sil_disambig = n_disambig + 1  # ctc_compile_dict_token.sh: one more, for the silence
    token_list = ["<eps>", *GRAPH_TOKENS] + [f"#{i}" for i in range(sil_disambig + 1)]
    tok = {t: i for i, t in enumerate(token_list)}
    word_list = ["<eps>", *sorted(lexicon), "#0", "<s>", "</s>"]
    wid = {w: i for i, w in enumerate(word_list)}
    (graph_dir / "words.txt").write_text("".join(f"{w} {i}\n" for w, i in wid.items()))
    if tokens_txt:
        (graph_dir / "tokens.txt").write_text("".join(f"{t} {i}\n" for t, i in tok.items()))
    Arc = kaldifst.StdArc

    # L: make_lexicon_fst.pl with silence probability, silence phone SIL and its disambiguator
    sil_cost, no_sil_cost = -math.log(sil_prob), -math.log(1 - sil_prob)
    L = kaldifst.StdVectorFst()
    start, loop, sil, disambig = (L.add_state() for _ in range(4))
    L.start = start
    L.set_final(loop, 0)
    L.add_arc(start, Arc(0, 0, no_sil_cost, loop))
    L.add_arc(start, Arc(tok[SIL], 0, sil_cost, disambig))
    L.add_arc(sil, Arc(tok[SIL], 0, 0, disambig))
    L.add_arc(disambig, Arc(tok[f"#{sil_disambig}"], 0, 0, loop))
    for word, pron in entries:
        state = loop
        for i, phone in enumerate(pron):
            out = wid[word] if i == 0 else 0
            if i < len(pron) - 1:
                nxt = L.add_state()
                L.add_arc(state, Arc(tok[phone], out, 0, nxt))
                state = nxt
            else:  # the last phone: on to the words, or to a silence first
                L.add_arc(state, Arc(tok[phone], out, no_sil_cost, loop))
                L.add_arc(state, Arc(tok[phone], out, sil_cost, sil))
    kaldifst.add_self_loops(L, isyms=[tok["#0"]], osyms=[wid["#0"]])
    kaldifst.arcsort(L, sort_type="olabel")

    # G: arpa2fst --disambig-symbol=#0 --read-symbol-table=words.txt, then rmepsilon
    (graph_dir / "lm.arpa").write_text(arpa_text)
    text = kaldilm.arpa2fst(
        str(graph_dir / "lm.arpa"),
        disambig_symbol="#0",
        read_symbol_table=str(graph_dir / "words.txt"),
        max_arpa_warnings=0,
    )
    G = kaldifst.compile(text, acceptor=False)
    kaldifst.rmepsilon(G)
    kaldifst.arcsort(G, sort_type="ilabel")

    LG = kaldifst.compose(L, G)
    assert not kaldifst.determinize_star(LG, use_log=True)  # True: stopped early
    kaldifst.minimize_encoded(LG)
    kaldifst.arcsort(LG, sort_type="ilabel")

    # T: state 0 is "after a blank" (and the start), state k "after token k+1"
    n_tokens = len(GRAPH_TOKENS)  # blank, SIL, AA..ZH: labels 1..41
    T = kaldifst.StdVectorFst()
    for _ in range(n_tokens):
        T.set_final(T.add_state(), 0)
    T.start = 0
    for state in range(n_tokens):
        T.add_arc(state, Arc(1, 0, 0, 0))  # a blank
        for k in range(1, n_tokens):
            label = k + 1
            # the token again: its repeat, no output; another token: emitted
            T.add_arc(state, Arc(label, 0 if state == k else label, 0, k))
        for d in range(sil_disambig + 1):
            T.add_arc(state, Arc(0, tok[f"#{d}"], 0, state))
    kaldifst.arcsort(T, sort_type="olabel")
    kaldifst.compose(T, LG).write(str(graph_dir / "TLG.fst"))
    return graph_dir


@pytest.fixture(scope="module")
def right_graph(tmp_path_factory):
    return build_tlg(tmp_path_factory.mktemp("right"), LEXICON, RIGHT_ARPA)


@pytest.fixture(scope="module")
def write_graph(tmp_path_factory):
    return build_tlg(tmp_path_factory.mktemp("write"), LEXICON, WRITE_ARPA, tokens_txt=False)


@pytest.fixture(scope="module")
def decoder(right_graph):
    return WfstDecoder(right_graph, WfstOptions())


PEAK, FLOOR = math.log(0.96), math.log(0.001)  # 0.96 + 40 * 0.001 = 1


def spell(symbols):
    """Model-order (T, 41) log-probabilities: one frame per symbol ('-' is the blank)."""
    x = np.full((len(symbols), N_CLASSES), FLOOR, dtype=np.float32)
    for t, s in enumerate(symbols):
        x[t, BLANK if s == "-" else PHONEME_TO_ID[s]] = PEAK
    return x


def words_of(decoder, log_probs):
    [best] = decoder.decode(log_probs)
    return best.words


def graph_cost(log10_p, n_words, sil_prob=SIL_PROB):
    """-ln of the graph's weight: the LM in natural log plus one optional-silence choice at the
    start and one after every word."""
    return -LN10 * log10_p - (n_words + 1) * math.log(sil_prob)


# --- decoding --------------------------------------------------------------------------------


@needs_kaldi
def test_a_spelled_sentence_decodes_to_its_words_phonemes_and_score(decoder):
    symbols = ["-", "JH", "AA", "SH", SIL, "R", "AY", "AY", "T", SIL, "N", "AW", SIL, "-"]
    log_probs = spell(symbols)
    [best] = decoder.decode(log_probs)
    assert isinstance(best, WordHypothesis)
    assert best.words == ("josh", "right", "now")
    assert best.phonemes == tuple(
        to_ids(["JH", "AA", "SH", SIL, "R", "AY", "T", SIL, "N", "AW", SIL])
    )
    # score = acoustic_scale * (emissions along the path, blank penalised) - graph cost
    opts = decoder.options
    am = len(symbols) * PEAK - symbols.count("-") * opts.blank_penalty
    log10_p = -0.3 + (-1.0 + -0.2) + -0.1 + -0.1  # <s> josh, right|josh (back-off), now, </s>
    assert best.score == pytest.approx(opts.acoustic_scale * am - graph_cost(log10_p, 3), abs=1e-2)


@needs_kaldi
def test_silence_between_words_is_optional(decoder):
    [best] = decoder.decode(spell(["JH", "AA", "SH", "R", "AY", "T", "N", "AW"]))
    assert best.words == ("josh", "right", "now")
    assert best.phonemes == tuple(to_ids(["JH", "AA", "SH", "R", "AY", "T", "N", "AW"]))


@needs_kaldi
def test_a_const_graph_decodes_too(tmp_path, right_graph):
    import kaldifst

    graph_dir = tmp_path / "const"
    graph_dir.mkdir()
    (graph_dir / "words.txt").write_text((right_graph / "words.txt").read_text())
    const = kaldifst.StdConstFst(kaldifst.StdVectorFst.read(str(right_graph / "TLG.fst")))
    const.write(str(graph_dir / "TLG.fst"))
    log_probs = spell(["K", "AE", "T", SIL])
    assert words_of(WfstDecoder(graph_dir, WfstOptions()), log_probs) == ("cat",)


@needs_kaldi
def test_the_lm_decides_between_homophones(decoder, write_graph):
    log_probs = spell(["R", "AY", "T", SIL, "N", "AW", SIL])
    assert words_of(decoder, log_probs) == ("right", "now")
    assert words_of(WfstDecoder(write_graph, WfstOptions()), log_probs) == ("write", "now")


@needs_kaldi
def test_the_columns_are_reordered_for_the_graph(decoder):
    assert TO_GRAPH_ORDER.tolist() == [BLANK, PHONEME_TO_ID[SIL], *range(1, 40)]
    assert GRAPH_TOKENS == ("<blk>", SIL, *PHONEMES[:-1])
    log_probs = spell(["K", "AE", "T", SIL])
    assert words_of(decoder, log_probs) == ("cat",)
    # emissions whose reordering is log_probs itself: what the graph would read from
    # log_probs were the columns not reordered (each phoneme read as the one before it)
    unreordered = log_probs[:, np.argsort(TO_GRAPH_ORDER)]
    assert np.array_equal(unreordered[:, TO_GRAPH_ORDER], log_probs)
    assert words_of(decoder, unreordered) == ("josh",)


@needs_kaldi
def test_acoustic_scale_and_blank_penalty_enter_the_score(decoder):
    symbols = ["-", "K", "AE", "T", "-"]
    log_probs = spell(symbols)
    log10_p = -1.0 + -0.3 + -0.2 + -0.7  # <s> cat (back-off), cat </s> (back-off)
    for scale, penalty in ((1.0, 0.0), (0.5, DEFAULT_BLANK_PENALTY), (2.0, 1.0)):
        other = decoder.with_options(WfstOptions(acoustic_scale=scale, blank_penalty=penalty))
        [best] = other.decode(log_probs)
        am = len(symbols) * PEAK - 2 * penalty
        assert best.words == ("cat",)
        assert best.score == pytest.approx(scale * am - graph_cost(log10_p, 1), abs=1e-2)
    assert decoder.options == WfstOptions()  # with_options leaves the original alone


@needs_kaldi
def test_no_surviving_path_gives_no_hypothesis_and_batches_name_the_trial(decoder):
    assert decoder.decode(np.full((4, N_CLASSES), -np.inf, dtype=np.float32)) == []
    good = spell(["K", "AE", "T"])
    [[first], [second]] = decoder.decode_batch([good, good.astype(np.float64)])
    assert first == second
    with pytest.raises(DataError, match=r"^trial 1: emissions of shape \(3, 40\)"):
        decoder.decode_batch([good, good[:, :-1]])


# --- files and errors ------------------------------------------------------------------------


@needs_kaldi
def test_missing_or_broken_files_are_one_line_data_errors(tmp_path, right_graph):
    def error(path):
        with pytest.raises(DataError) as info:
            WfstDecoder(path, WfstOptions())
        assert "\n" not in str(info.value)
        return str(info.value)

    assert "no such graph directory" in error(tmp_path / "absent")
    only_words = tmp_path / "only_words"
    only_words.mkdir()
    (only_words / "words.txt").write_text((right_graph / "words.txt").read_text())
    assert error(only_words) == f"{only_words / 'TLG.fst'}: no such decoding graph file"
    only_graph = tmp_path / "only_graph"
    only_graph.mkdir()
    (only_graph / "TLG.fst").write_bytes((right_graph / "TLG.fst").read_bytes())
    assert error(only_graph) == f"{only_graph / 'words.txt'}: no such word table file"

    (only_words / "TLG.fst").write_bytes(b"not an fst at all")
    assert error(only_words).startswith(f"{only_words / 'TLG.fst'}: not an OpenFst graph")
    (only_words / "TLG.fst").write_bytes((right_graph / "TLG.fst").read_bytes()[:200])
    assert error(only_words).startswith(f"{only_words / 'TLG.fst'}: not an OpenFst graph")

    (only_graph / "words.txt").write_text("<eps> 0\ncat one\n")
    assert error(only_graph) == (
        f"{only_graph / 'words.txt'} line 2: expected 'SYMBOL ID', got 'cat one'"
    )


@needs_kaldi
def test_tokens_txt_in_the_model_order_is_refused(tmp_path, right_graph):
    graph_dir = tmp_path / "g"
    graph_dir.mkdir()
    for name in ("TLG.fst", "words.txt"):
        (graph_dir / name).write_bytes((right_graph / name).read_bytes())
    model_order = ["<eps>", "<blk>", *PHONEMES]  # SIL last, as the model emits
    (graph_dir / "tokens.txt").write_text("".join(f"{t} {i}\n" for i, t in enumerate(model_order)))
    with pytest.raises(DataError, match=r"tokens.txt: token 2 is 'AA', expected 'SIL'"):
        WfstDecoder(graph_dir, WfstOptions())


@needs_kaldi
def test_words_the_graph_outputs_must_be_in_words_txt(tmp_path, right_graph):
    graph_dir = tmp_path / "g"
    graph_dir.mkdir()
    (graph_dir / "TLG.fst").write_bytes((right_graph / "TLG.fst").read_bytes())
    (graph_dir / "words.txt").write_text("<eps> 0\nzebra 99\n")  # "cat" is 1 in TLG.fst
    with pytest.raises(DataError, match=r"words.txt: no word with id 1, which TLG.fst outputs"):
        WfstDecoder(graph_dir, WfstOptions()).decode(spell(["K", "AE", "T"]))


def test_missing_packages_say_how_to_install_them(monkeypatch, tmp_path):
    real_import = builtins.__import__

    def no_kaldi(name, *args, **kwargs):
        if name.split(".")[0] in ("kaldifst", "kaldi_decoder"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_kaldi)
    for build in (require_kaldi, lambda: WfstDecoder(tmp_path, WfstOptions())):
        with pytest.raises(ConfigError) as info:
            build()
        assert (
            str(info.value)
            == MISSING_KALDI
            == (
                "decoding with a Kaldi graph needs kaldifst and kaldi-decoder: "
                "pip install 'brain2text[lm]'"
            )
        )


def test_the_module_imports_no_kaldi_package():
    code = (
        "import sys, brain2text.decoding.wfst\n"
        "print(sorted(m for m in ('kaldifst', 'kaldi_decoder', 'kaldilm') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("beam", 0.0, "beam: must be a positive number, got 0.0"),
        ("beam", math.inf, "beam: must be a positive number, got inf"),
        ("beam", "18", "beam: must be a number, got '18'"),
        ("max_active", 0, "max_active: must be an integer >= 1, got 0"),
        ("max_active", 7.5, "max_active: must be an integer >= 1, got 7.5"),
        ("min_active", -1, "min_active: must be an integer >= 0, got -1"),
        ("min_active", 8000, "min_active: must be <= max_active (7000), got 8000"),
        ("acoustic_scale", -0.5, "acoustic_scale: must be a positive number, got -0.5"),
        ("acoustic_scale", True, "acoustic_scale: must be a number, got True"),
        ("blank_penalty", math.nan, "blank_penalty: must be a finite number, got nan"),
    ],
)
def test_bad_options_are_config_errors_naming_the_option(field, value, message):
    with pytest.raises(ConfigError) as info:
        WfstOptions(**{field: value})
    assert str(info.value) == message
