"""Neural-LM rescoring: load time, ms per sentence and peak memory, and the WER it buys.

    python benchmarks/llm_rescoring.py RUN_DIR LM_DIR --llm smollm2-135m --split test \
        --nbests 10,50,100 --threads 1,2 [--dtypes fp32,bf16] [--llm-end .] [--sentences N] \
        [--finetuned LLM_DIR] [--fusion 20]

1. Load: the model loaded into an empty cache folder (for a ``.gguf`` file or a packaged name:
   dequantised, then written as safetensors) and again from that cache (``transformers``
   already imported, so this is the model's own load time).
2. The split is decoded once by the network and the n-gram beam search with n-best
   ``max(--nbests)`` (beam as wide; the run's ``lm_tuning.json`` weights when it has them).
   Each n-best size N then keeps the first N hypotheses of every list and rescores them with
   the LLM (:class:`~brain2text.evaluation.rescoring.LlmRescorer`, the tuned alpha and
   acoustic scale when ``lm tune --llm`` wrote them for this model, else the defaults) at each
   thread count: ms per sentence is the LLM's time alone (its score cache emptied first),
   trial by trial (a stream's ``finish``) and with the sentences of ``LLM_GROUP`` trials
   scored in one call (``evaluate``). ``--dtypes``: the same in each of these weight types
   (``--llm-dtype``; bf16 pays on a CPU with native bf16 instructions), with the WER each gives.
3. WER with bootstrap 95% intervals: greedy phonemes (PER), the n-gram's best, the n-best
   oracle, + the LLM at each N, + the fine-tuned LLM (``--finetuned``), and the LLM inside the
   beam (``--fusion K``: the first K sentences only, as fusion is slow on a CPU; the n-gram's
   and rescoring's WER on those K sentences beside it).

Run it alone on the machine: other processes distort the times.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from _common import command_line, machine_line, markdown_table, peak_rss_mb
from brain2text.decoding.llm import SentenceScorer, load_causal_lm, require_llm, resolve_dtype
from brain2text.decoding.llm_fusion import fused_decoder
from brain2text.evaluation.evaluate import decode_target, load_target
from brain2text.evaluation.rescoring import LlmRescorer, nbest_oracle
from brain2text.evaluation.search import (
    LLM_GROUP,
    choose_rescoring,
    decode_words,
    word_search,
)
from brain2text.evaluation.words import normalize_words, rate_with_interval


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("run_dir", type=Path)
    p.add_argument("lm_dir", type=Path)
    p.add_argument("--llm", default="smollm2-135m")
    p.add_argument("--split", default="test")
    p.add_argument("--sentences", type=int, default=0, help="the split's first N only (0: all)")
    p.add_argument("--nbests", default="10,50,100")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--dtypes", default="fp32", help="weight types timed (fp32, bf16, fp16)")
    p.add_argument("--llm-end", default=None, help="the scorers' end ('.', eos; default none)")
    p.add_argument("--finetuned", default=None, help="a fine-tuned LLM folder to compare")
    p.add_argument("--fusion", type=int, default=0, help="sentences decoded with fusion")
    p.add_argument("--fusion-weight", type=float, default=1.0)
    return p.parse_args()


def wer_cell(refs: list[list[str]], hyps: list[str]) -> str:
    rate = rate_with_interval(refs, [normalize_words(h) for h in hyps])
    low, high = rate.interval.low, rate.interval.high
    return f"{rate.rate:.3f} ({low:.3f}-{high:.3f})"


def rescored(nbests, scorer: SentenceScorer, rescorer_options, emissions, group: int = 1):
    """The rescored lists and the seconds they took, the LLM's cache emptied first; ``group``
    trials' sentences scored in one call (as ``evaluate`` does, LLM_GROUP), 1: trial by trial
    (as a stream's ``finish`` does)."""
    rescorer = LlmRescorer(scorer, rescorer_options)
    scorer._scores.clear()  # time the LLM, not its cache
    start = time.perf_counter()
    out = []
    for first in range(0, len(nbests), group):
        lists = [list(n) for n in nbests[first : first + group]]
        out += rescorer.rescore_group(lists, emissions[first : first + group])
    return out, time.perf_counter() - start


def main() -> None:
    args = parse()
    require_llm()
    nbest_sizes = [int(v) for v in args.nbests.split(",")]
    thread_counts = [int(v) for v in args.threads.split(",")]
    dtypes = args.dtypes.split(",")
    torch.set_num_threads(max(thread_counts))

    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        load_causal_lm(args.llm, cache_dir=Path(cache))
        cold = time.perf_counter() - start
        start = time.perf_counter()
        lm = load_causal_lm(args.llm, cache_dir=Path(cache))
        cached = time.perf_counter() - start
        others = {
            d: SentenceScorer(
                load_causal_lm(args.llm, dtype=d, cache_dir=Path(cache)), end=args.llm_end
            )
            for d in dtypes
            if resolve_dtype(d, lm.device) != lm.dtype
        }
    scorer = SentenceScorer(lm, end=args.llm_end)
    default = str(lm.dtype).removeprefix("torch.")

    widest = max(nbest_sizes)
    search = word_search(args.run_dir, args.lm_dir, beam_size=max(widest, 50), nbest=widest)
    chosen = choose_rescoring(args.run_dir, open_lm_of(search), scorer.name, None)
    options, source = chosen.options, chosen.source
    llm_search = search  # the first pass the LLM rescores: its own when lm tune chose one
    if chosen.first_pass:
        llm_search = word_search(
            args.run_dir, args.lm_dir, beam_size=max(widest, 50), nbest=widest, **chosen.first_pass
        )
    target = load_target(args.run_dir, args.split)
    trials = target.trials(None)
    if trials.references is None or trials.references.texts is None:
        raise SystemExit(f"{args.split}: unlabelled, nothing to score")
    refs = [normalize_words(t) for t in trials.references.texts]
    decoded = decode_target(target, keep_log_probs=True)
    emissions = decoded.emissions
    if args.sentences:
        n = min(args.sentences, len(emissions))
        emissions, refs = emissions[:n], refs[:n]
        hypotheses, ref_ids = decoded.hypotheses[:n], trials.references.ids[:n]
    else:
        hypotheses, ref_ids = decoded.hypotheses, trials.references.ids
    start = time.perf_counter()
    first = decode_words(search, emissions).nbests
    beam_ms = 1000 * (time.perf_counter() - start) / len(first)
    ngram = [" ".join(n[0].words) if n else "" for n in first]
    if llm_search is not search:
        first = decode_words(llm_search, emissions).nbests
    greedy_per = rate_with_interval(ref_ids, [h.tolist() for h in hypotheses])

    speed_rows, wer_rows = [], []
    wer_rows.append(["greedy phonemes (PER)", f"{greedy_per.rate:.3f}", "-"])
    wer_rows.append(["n-gram", wer_cell(refs, ngram), f"{beam_ms:.1f} (beam search)"])
    for size in nbest_sizes:
        cut = [n[:size] for n in first]
        oracle = nbest_oracle(refs, cut).wer
        for name, timed in [(default, scorer), *others.items()]:
            for threads in thread_counts:
                torch.set_num_threads(threads)
                _, alone = rescored(cut, timed, options, emissions)
                out, grouped = rescored(cut, timed, options, emissions, LLM_GROUP)
                ms = [f"{1000 * t / len(cut):.0f}" for t in (alone, grouped)]
                speed_rows.append([size, name, threads, *ms])
            text = [" ".join(n[0].words) if n else "" for n in out]
            label = f"+ LLM, n-best {size}" + (f", {name}" if timed is not scorer else "")
            wer_rows.append([label, wer_cell(refs, text), f"oracle {oracle:.3f}"])
    torch.set_num_threads(max(thread_counts))
    if args.finetuned:
        tuned = SentenceScorer(load_causal_lm(args.finetuned), end=args.llm_end)
        cut = [n[: nbest_sizes[0]] for n in first]
        out, seconds = rescored(cut, tuned, options, emissions, LLM_GROUP)
        text = [" ".join(n[0].words) if n else "" for n in out]
        wer_rows.append(
            [f"+ fine-tuned LLM, n-best {nbest_sizes[0]}", wer_cell(refs, text),
             f"{1000 * seconds / len(cut):.0f} ms/sentence"]
        )  # fmt: skip
    if args.fusion:
        k = min(args.fusion, len(first))
        fused = fused_decoder(
            search.decoder.with_options(replace(search.decoder.options, nbest=1)),
            scorer,
            args.fusion_weight,
        )
        start = time.perf_counter()
        fused_text = [" ".join(h[0].words) if (h := fused.decode(e)) else "" for e in emissions[:k]]
        fusion_ms = 1000 * (time.perf_counter() - start) / k
        cut = [n[: nbest_sizes[0]] for n in first[:k]]
        out, _ = rescored(cut, scorer, options, emissions[:k])
        wer_rows.append([f"n-gram, first {k}", wer_cell(refs[:k], ngram[:k]), "-"])
        wer_rows.append(
            [f"+ LLM n-best {nbest_sizes[0]}, first {k}",
             wer_cell(refs[:k], [" ".join(n[0].words) if n else "" for n in out]), "-"]
        )  # fmt: skip
        wer_rows.append(
            [f"+ LLM fusion (weight {args.fusion_weight:g}), first {k}",
             wer_cell(refs[:k], fused_text), f"{fusion_ms:.0f} ms/sentence"]
        )  # fmt: skip

    print(f"machine: {machine_line(max(thread_counts), lm.device)}")
    print(f"command: {command_line()}")
    print(f"model: {scorer.name} ({sum(p.numel() for p in lm.model.parameters()) / 1e6:.1f}M)")
    print(f"load: {cold:.1f} s into an empty cache, {cached:.1f} s from the cache")
    print(f"rescoring options: {options} from {source}; {len(first)} {args.split} sentences")
    if chosen.first_pass:
        print(f"the LLM's first pass: {chosen.first_pass} (the n-gram row: its own best)")
    print()
    print(
        markdown_table(
            ["n-best", "weights", "threads", "LLM ms/sentence, trial by trial",
             f"LLM ms/sentence, {LLM_GROUP} trials a call (evaluate)"],
            speed_rows,
        )
    )  # fmt: skip
    print()
    print(markdown_table(["decoding", "WER (95% CI)", "note"], wer_rows))
    print(f"\npeak RSS {peak_rss_mb():.0f} MB")


def open_lm_of(search):
    from brain2text.decoding.lm import open_lm

    return open_lm(Path(search.lm))


if __name__ == "__main__":
    main()
