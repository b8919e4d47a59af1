"""Real-time decoding latency: one 80 ms step (4 bins of 20 ms) of a causal decoder, in torch
(``Stream``) and in onnxruntime (the ``export --streaming`` step), with and without the word
search's step, and the whole-trial decode time, at two model sizes: the Brain-to-Text '25
baseline's (5 x 768 unidirectional GRU, 512 inputs, kernel 14) and Run #13's made causal
(5 x 1024 GRU, 256 inputs, kernel 32). Random weights and inputs: latency does not depend on
what the weights are. The word step reads the emissions of a peaky CTC model on held-out
generator sentences (as ``decode_words.py``) with a 3-gram over the 125k-word CMU lexicon.

    python benchmarks/stream_latency.py [--steps 500] [--threads 2] [--lm-sentences 20000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _common import command_line, machine_line, markdown_table
from brain2text.config import load_run
from brain2text.decoding.beam import BeamOptions, WordDecoder
from brain2text.decoding.lm import build_lm, open_lm
from brain2text.evaluation.words import normalize_words
from brain2text.model.export import sidecar
from brain2text.model.gru import GRUDecoder, count_parameters, describe_size
from brain2text.model.stream_export import OnnxStream, export_onnx_stream
from brain2text.model.streaming import Stream
from brain2text.phonemes import cmu_dictionary
from brain2text.synth.sentences import sample_sentences
from decode_words import emissions_for

SIZES = {"b2t25_causal": 512, "run13_causal": 256}
STEP_BINS = 4


def percentiles(seconds: list[float]) -> tuple[float, float, float]:
    ms = sorted(1000 * s for s in seconds)
    return (statistics.median(ms), ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))], ms[-1])


class WordSteps:
    """One frame of emissions per step, sentence after sentence, through the word search."""

    def __init__(self, decoder: WordDecoder, emissions: list[np.ndarray]) -> None:
        self.decoder, self.emissions = decoder, emissions
        self.sentence, self.frame, self.stream = 0, 0, decoder.stream()

    def step(self) -> None:
        e = self.emissions[self.sentence]
        self.stream.step(e[self.frame : self.frame + 1])
        self.frame += 1
        if self.frame == len(e):  # the sentence ends: the next one starts afresh
            self.stream.finish()
            self.sentence = (self.sentence + 1) % len(self.emissions)
            self.frame, self.stream = 0, self.decoder.stream()


def run_steps(
    push, steps: int, n_features: int, words: WordSteps | None, rng: np.random.Generator
) -> list[float]:
    bins = rng.standard_normal((steps * STEP_BINS, n_features)).astype(np.float32)
    for k in range(8):  # warm-up
        push(bins[k * STEP_BINS : (k + 1) * STEP_BINS])
    out = []
    for k in range(steps):
        chunk = bins[k * STEP_BINS : (k + 1) * STEP_BINS]
        start = time.perf_counter()
        push(chunk)
        if words is not None:
            words.step()
        out.append(time.perf_counter() - start)
    return out


def main(argv: list[str] | None = None) -> list[list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=500, help="80 ms steps per measurement")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lm-sentences", type=int, default=20_000)
    parser.add_argument("--beam", type=int, default=50)
    parser.add_argument(
        "--override",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="overrides of both run files (e.g. a smaller model.n_units)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        texts = sample_sentences(rng, args.lm_sentences, evaluation=False)
        words = sorted(w for w in cmu_dictionary() if normalize_words(w) == [w])
        corpus.write_text("".join(t + "\n" for t in [*texts, *words]))
        build_lm(corpus, Path(tmp) / "lm")
        lm = open_lm(Path(tmp) / "lm")
        decoder = WordDecoder(lm.arpa, lm.spellings, BeamOptions(beam_size=args.beam))
        emissions = [emissions_for(t, rng) for t in sample_sentences(rng, 50, evaluation=True)]
        for run_file, n_features in SIZES.items():
            config = load_run(run_file, args.override).model
            torch.manual_seed(0)
            model = GRUDecoder(config, n_days=1, n_features=n_features).eval()
            size = describe_size(count_parameters(model))
            out = Path(tmp) / f"{run_file}.onnx"
            export_onnx_stream(
                model,
                ["day"],
                "day",
                out,
                sidecar({"model": config.model_dump()}, ["day"], None, n_features),
            )
            h0 = out.with_name(out.name + ".h0.npy")
            for runtime in ("torch", "onnxruntime"):
                for with_words in (False, True):
                    if runtime == "torch":
                        stream = Stream(model, 0)
                        push = stream.push
                    else:
                        onnx_stream = OnnxStream(
                            out, np.load(h0) if h0.exists() else None, threads=args.threads
                        )
                        push = onnx_stream.push
                    steps = WordSteps(decoder, emissions) if with_words else None
                    p50, p99, worst = percentiles(
                        run_steps(push, args.steps, n_features, steps, rng)
                    )
                    rows.append(
                        [
                            f"{run_file} ({size})",
                            runtime,
                            "yes" if with_words else "no",
                            f"{p50:.2f}",
                            f"{p99:.2f}",
                            f"{worst:.2f}",
                        ]
                    )
            x = torch.from_numpy(rng.standard_normal((1, 500, n_features)).astype(np.float32))
            with torch.no_grad():
                model(x, torch.tensor([0]))
                start = time.perf_counter()
                for _ in range(3):
                    model(x, torch.tensor([0]))
            whole = (time.perf_counter() - start) / 3
            rows.append(
                [
                    f"{run_file} ({size})",
                    "torch, whole 10 s trial at once",
                    "no",
                    f"{1000 * whole:.1f}",
                    "-",
                    "-",
                ]
            )
    print(f"machine: {machine_line(args.threads, torch.device('cpu'))}")
    print(f"command: {command_line()}")
    print(
        f"{args.steps} steps of {STEP_BINS} bins (80 ms) each; word step: beam {args.beam}, "
        f"3-gram over {len(words)} lexicon words + {args.lm_sentences} sentences"
    )
    print(markdown_table(["model", "runtime", "word step", "p50 ms", "p99 ms", "max ms"], rows))
    return rows


if __name__ == "__main__":
    main()
