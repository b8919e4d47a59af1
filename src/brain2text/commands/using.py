"""Using a trained decoder: ``decode`` (raw recordings), ``adapt`` (a new day)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from brain2text.errors import ConfigError

if TYPE_CHECKING:
    from brain2text.evaluation.labels import Labeller
    from brain2text.inference.decoder import Decoder


def cmd_decode(args: argparse.Namespace) -> None:
    import warnings

    from brain2text.atomic import atomic_write_text
    from brain2text.commands.evaluation import llm_of, rescore_options
    from brain2text.data.recording import read_recording
    from brain2text.evaluation.files import json_lines, sentence_rate
    from brain2text.evaluation.labels import recording_references
    from brain2text.inference.decoder import Decoder
    from brain2text.phonemes import to_symbols

    rescoring = rescore_options(args)
    if args.lm is None and (args.llm is not None or rescoring is not None):
        raise ConfigError(
            "--llm, --alpha, --acoustic-scale and --llm-gate rescore the n-best of --lm: give --lm"
        )
    decoder = Decoder.load(
        args.run_dir,
        checkpoint=args.checkpoint,
        weights=args.weights,
        lm=args.lm,
        llm=llm_of(args),
        rescoring=rescoring,
        nbest=args.nbest,
    )
    trials = read_recording(args.recording, decoder.feature_spec, args.norm, args.day)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outs = decoder.decode_batch([(t.features, args.day or t.day) for t in trials])
    sources = [(t.source, t.trial, t.sentence) for t in trials]
    refs = recording_references(sources, lambda: _run_labeller(decoder))
    for message in dict.fromkeys(str(w.message) for w in caught):
        print(f"warning: {message}", file=sys.stderr)
    rows = []
    for trial, out, ref in zip(trials, outs, refs, strict=True):
        row: dict = {
            "file": trial.source,
            "trial": trial.trial,
            "block": trial.block,
            "day": out.day,
            "day_used": out.day_used,
            "phonemes": " ".join(out.phonemes),
        }
        if out.text is not None:
            row["text"] = out.text
        if trial.sentence:
            row["sentence"] = trial.sentence
            if ref is not None:  # scored against the labels the run's dataset would give it
                row["per"] = sentence_rate(to_symbols(ref), list(out.phonemes))
        rows.append(row)
    if args.out is not None:
        atomic_write_text(args.out, json_lines(rows))
        print(f"decoded {len(rows)} trials of {args.recording} to {args.out}")
        return
    for row in rows:
        print(f"{row['day']} trial {row['trial']}: {row.get('text', row['phonemes'])}")


def _run_labeller(decoder: Decoder) -> Labeller | None:
    """The phonemiser of the prepared folder the run trained on (its manifest says which), or
    None with a warning when that folder is gone (trials of .mat files then get no PER)."""
    from brain2text.errors import DataError
    from brain2text.evaluation.labels import folder_labeller

    prepared = Path(decoder.config.data.path)
    try:
        return folder_labeller(prepared)
    except DataError as exc:
        print(
            f"warning: {exc}; without the run's prepared data its labelling is unknown, so "
            "sentences are not scored (no PER)",
            file=sys.stderr,
        )
        return None


def cmd_adapt(args: argparse.Namespace) -> None:
    from brain2text.training.adapt import adapt

    if args.unlabelled != (args.lm is not None):
        raise ConfigError(
            "--unlabelled and --lm go together: the trials are labelled with their decodings "
            "by the LM folder (adapt RUN RECORDING --day D --unlabelled --lm LM_DIR)"
        )
    out = args.out or Path("runs") / f"{args.run_dir.name}+{args.day}"
    if args.unlabelled:
        _adapt_unlabelled(args, out)
        return
    r = adapt(
        args.run_dir,
        args.recording,
        args.day,
        out,
        overrides=args.overrides,
        overwrite=args.overwrite,
    )
    print(
        f"day {r.day}: input layer started from {r.started_from}, fitted on {r.n_fitted} "
        f"sentences for {r.steps} steps (final loss {r.final_loss:.3f}); PER on its "
        f"{r.n_held_out} held-out sentences {r.per_before:.4f} -> {r.per_after:.4f}; "
        f"run folder {out}"
    )


def _adapt_unlabelled(args: argparse.Namespace, out: Path) -> None:
    from brain2text.training.adapt_unlabelled import adapt_unlabelled

    r = adapt_unlabelled(
        args.run_dir,
        args.recording,
        args.day,
        out,
        args.lm,
        overrides=args.overrides,
        overwrite=args.overwrite,
    )
    scored = (
        f"PER on its {r.n_scored} labelled trials {r.per_before:.4f} -> {r.per_after:.4f}"
        if r.n_scored
        else "no labelled trials to measure a PER on"
    )
    print(
        f"day {r.day}: input layer started from {r.started_from}, fitted on the {r.n_kept} of "
        f"{r.n_trials} trials whose LM decoding passed adapt.pseudo_gate={r.gate:g} (n-gram ln "
        f"score per word) for {r.steps} steps (final loss {r.final_loss:.3f}); {scored}; "
        f"run folder {out}"
    )


def cmd_export(args: argparse.Namespace) -> None:
    import json

    from brain2text.data.feature_spec import FeatureSpec
    from brain2text.distributed import pick_device
    from brain2text.model import export
    from brain2text.model.loading import checkpoint_path, load_model

    loaded = load_model(
        checkpoint_path(args.run_dir, args.checkpoint), pick_device("cpu"), args.weights
    )
    model, config, days = loaded.model, loaded.config, loaded.days
    stored = loaded.checkpoint.features
    spec = FeatureSpec.from_dict(stored, f"{loaded.path}: its features") if stored else None
    blocks = list(spec.feature_names) if spec is not None else []  # one name a block of columns
    names = (
        [f"{block} #{k}" for block in blocks for k in range(model.n_features // len(blocks))]
        if blocks and model.n_features % len(blocks) == 0
        else None
    )
    normalization = spec.normalization if spec is not None else None
    info = export.sidecar(config.to_dict(), days, args.day, model.n_features, names, normalization)
    if args.streaming:
        from brain2text.model.stream_export import (
            check_stream_export,
            export_onnx_stream,
        )

        if args.format != "onnx" or (args.day is not None and len(args.day) != 1):
            raise ConfigError("--streaming: an ONNX step for one day (--format onnx --day D)")
        day = check_stream_export(model, args.day[0] if args.day else None)
        out = export_onnx_stream(model, days, day, args.out, info)
    elif args.format == "onnx":
        out = export.export_onnx(model, days, args.day, args.out, info=info)
    elif args.format == "torchscript":
        out = export.export_torchscript(model, days, args.day, args.out, info=info)
    else:
        if args.day is not None:
            raise ConfigError("--day: a safetensors export holds every day's weights")
        out = export.export_safetensors(model, args.out, {"days": json.dumps(days)}, info=info)
    print(f"wrote {out} and {out}.json ({args.format}, days: {', '.join(args.day or days)})")


def cmd_stream(args: argparse.Namespace) -> None:
    import statistics
    import time

    from brain2text.data.manifest import BIN_SECONDS
    from brain2text.data.recording import read_recording
    from brain2text.inference.decoder import Decoder

    if args.chunk < 1:
        raise ConfigError(f"--chunk {args.chunk}: give 1 or more bins")
    decoder = Decoder.load(args.run_dir, lm=args.lm)
    trials = read_recording(args.recording, decoder.feature_spec)
    if not 0 <= args.trial < len(trials):
        raise ConfigError(f"--trial {args.trial}: {args.recording} has trials 0..{len(trials) - 1}")
    trial = trials[args.trial]
    stream = decoder.stream(args.day or trial.day)
    latencies = []
    start = time.perf_counter()
    for first in range(0, len(trial.features), args.chunk):
        chunk = trial.features[first : first + args.chunk]
        if args.realtime:  # the chunk's last bin arrives at (first + len) * 20 ms
            time.sleep(max(0.0, start + (first + len(chunk)) * BIN_SECONDS - time.perf_counter()))
        update = stream.push(chunk)
        latencies.append(update.seconds)
        shown = update.text if update.text is not None else " ".join(update.phonemes)
        print(
            f"{update.n_bins * BIN_SECONDS * 1000:7.0f} ms  +{update.new_frames} frame(s)  "
            f"{1000 * update.seconds:6.2f} ms  {shown}",
            flush=True,
        )
    final = stream.finish()
    ms = sorted(1000 * s for s in latencies)
    p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]
    print(f"final: {final.text if final.text is not None else ' '.join(final.phonemes)}")
    print(
        f"{len(ms)} steps of {args.chunk} bins: latency p50 {statistics.median(ms):.2f} ms, "
        f"p99 {p99:.2f} ms, max {ms[-1]:.2f} ms "
        f"(real time: {args.chunk * BIN_SECONDS * 1000:.0f} ms a step)"
    )
    if trial.sentence:
        print(f"sentence: {trial.sentence}")
