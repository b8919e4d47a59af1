"""Word decoding speed: `lm build` time, LM load and trie build, decode time per sentence, RSS.

    python benchmarks/decode_words.py                        # 100k sentences, CMU lexicon
    python benchmarks/decode_words.py --sentences 20000 --beams 50

The corpus is ``--sentences`` training-side sentences of the synthetic generator plus every word
of the CMU dictionary as a sentence of its own, so the 3-gram's vocabulary is the whole
125k-word lexicon the decoder spells (as with a web-text LM). Emissions are those of a peaky CTC
model on held-out generator sentences (evaluation side: unseen by the LM): each phoneme of the
sentence's labels held for 2-4 frames at probability 0.6-0.9 with blanks between, 15% of the
phonemes confused with a random one, the rest of the mass spread over the other classes. Each
figure is measured in this one process, one thread; run it alone on the machine.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from brain2text.decoding.beam import BeamOptions, WordDecoder
from brain2text.decoding.lm import build_lm, open_lm
from brain2text.evaluation.metrics import error_rate
from brain2text.evaluation.words import normalize_words
from brain2text.phonemes import BLANK, N_CLASSES, cmu_dictionary, phonemize, to_ids
from brain2text.runs.provenance import cpu_name
from brain2text.synth.sentences import sample_sentences

CONFUSION = 0.15


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emissions_for(text: str, rng: np.random.Generator) -> np.ndarray:
    """(T, 41) log-softmax emissions of a peaky CTC model reading ``text``."""
    frames = []
    for label in to_ids(phonemize(text)):
        if rng.random() < CONFUSION:
            label = int(rng.integers(1, N_CLASSES))
        frames += [(label, rng.uniform(0.6, 0.9))] * int(rng.integers(2, 5))
        frames += [(BLANK, 0.9)]
    probs = rng.uniform(0.5, 1.5, size=(len(frames), N_CLASSES))
    for t, (label, p) in enumerate(frames):
        probs[t] *= (1 - p) / (probs[t].sum() - probs[t, label])
        probs[t, label] = p
    return np.log(probs).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=100_000)
    parser.add_argument("--test", type=int, default=200, help="decoded sentences")
    parser.add_argument("--beams", default="50,200")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"machine: {cpu_name()}, 1 process")
    print(f"command: python {' '.join(sys.argv)}")

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        texts = sample_sentences(rng, args.sentences, evaluation=False)
        words = sorted(w for w in cmu_dictionary() if normalize_words(w) == [w])
        corpus.write_text("".join(t + "\n" for t in [*texts, *words]))
        start = time.perf_counter()
        info = build_lm(corpus, Path(tmp) / "lm")
        build_s = time.perf_counter() - start
        rss_build = peak_rss_mb()
        print(
            f"lm build: {len(texts)} sentences + {len(words)} one-word lines -> "
            f"{info['vocabulary_size']} words, n-grams {info['ngrams']}: {build_s:.1f} s "
            f"({build_s * 100_000 / len(texts):.1f} s per 100k sentences), "
            f"peak RSS {rss_build:.0f} MB"
        )

        lm = open_lm(Path(tmp) / "lm")
        tests = sample_sentences(rng, args.test, evaluation=True)
        emissions = [emissions_for(t, rng) for t in tests]
        frames = statistics.fmean(len(e) for e in emissions)
        print(f"emissions: {len(tests)} held-out sentences, {frames:.0f} frames on average")
        print(
            "\n| beam | LM load + trie build (s) | ms per sentence (mean) | median | "
            "WER | peak RSS (MB) |\n|---|---|---|---|---|---|"
        )
        for beam in (int(b) for b in args.beams.split(",")):
            start = time.perf_counter()
            decoder = WordDecoder(lm.arpa, lm.spellings, BeamOptions(beam_size=beam))
            load_s = time.perf_counter() - start
            times, hyps = [], []
            for e in emissions:
                t0 = time.perf_counter()
                best = decoder.decode(e)
                times.append(time.perf_counter() - t0)
                hyps.append(normalize_words(" ".join(best[0].words)) if best else [])
            wer = error_rate([normalize_words(t) for t in tests], hyps).rate
            print(
                f"| {beam} | {load_s:.1f} | {1000 * statistics.fmean(times):.1f} | "
                f"{1000 * statistics.median(times):.1f} | {wer:.3f} | {peak_rss_mb():.0f} |"
            )
            del decoder


if __name__ == "__main__":
    main()
