"""The evaluation commands: ``evaluate`` (phonemes, ensembles, words), ``lm build``, ``lm tune``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from brain2text.commands.run_report import refresh_report
from brain2text.errors import ConfigError

if TYPE_CHECKING:
    from brain2text.decoding.llm import SentenceScorer
    from brain2text.evaluation.rescoring import RescoreOptions


def cmd_evaluate(args: argparse.Namespace) -> None:
    if args.lm is not None and args.wfst is not None:
        raise ConfigError("--lm and --wfst: decode with one of them")
    if args.merge is not None and not args.ensemble:
        raise ConfigError("--merge combines an ensemble's members: add --ensemble")
    llm_options = ("--llm", "--alpha", "--acoustic-scale", "--llm-gate")
    llm_given = [args.llm, args.alpha, args.acoustic_scale, args.llm_gate]
    if args.lm is None and any(v is not None for v in llm_given):
        raise ConfigError(f"{', '.join(llm_options)} rescore the n-best of --lm: give --lm LM_DIR")
    if args.llm is None and any(v is not None for v in llm_given[1:]):
        raise ConfigError("--alpha, --acoustic-scale and --llm-gate weigh --llm: give --llm MODEL")
    if (args.llm_fusion or args.fusion_weight is not None) and (args.llm is None or args.ensemble):
        raise ConfigError(
            "--llm-fusion (and --fusion-weight) bring --llm into one run's --lm search: "
            "give --lm LM_DIR --llm MODEL, without --ensemble"
        )
    if args.fusion_weight is not None and not args.llm_fusion:
        raise ConfigError("--fusion-weight weighs the LLM of --llm-fusion: add --llm-fusion")
    args.tta_settings = tta_settings(args)
    if args.ensemble and args.tta_settings is not None:
        raise ConfigError("--tta adapts one run's weights trial by trial: leave out --ensemble")
    if not args.ensemble and (len(args.run_dirs) > 1 or args.out is not None):
        raise ConfigError(
            "evaluate: several run folders (or --out) make an ensemble: add --ensemble"
        )
    args.llm = llm_of(args)  # after the checks: it may load the model
    if args.ensemble:
        args.rescoring = rescore_options(args)
        cmd_evaluate_ensemble(args)
        return
    args.run_dir = args.run_dirs[0]
    if args.lm is not None or args.wfst is not None:
        args.rescoring = rescore_options(args)
        cmd_evaluate_words(args)
        return
    if any(v is not None for v in (args.beam, args.lm_weight, args.word_score, args.nbest)):
        raise ConfigError(
            "--beam, --lm-weight, --word-score and --nbest are word decoding "
            "options: give an LM folder with --lm"
        )
    from brain2text.evaluation.evaluate import TTA_SUFFIX, eval_folder, evaluate_run

    summary = evaluate_run(
        args.run_dir,
        split_name=args.split,
        checkpoint=args.checkpoint,
        data_path=args.data,
        answers=args.answers,
        device_name=args.device,
        weights=args.weights,
        tta=args.tta_settings,
    )
    suffix = TTA_SUFFIX if summary.tta is not None else ""
    where = eval_folder(args.run_dir, args.split, args.weights, suffix)
    print_tta(summary.tta)
    if summary.per is not None:
        print(
            f"{args.split} PER {summary.per:.4f} over {summary.n_sentences} sentences "
            f"({summary.edit_distance} edits / {summary.n_phonemes} phonemes); "
            f"files in {where}"
        )
    else:
        print(f"decoded {summary.n_sentences} unlabelled sentences to {where / 'decoded.txt'}")
    refresh_report(args.run_dir)


def cmd_evaluate_ensemble(args: argparse.Namespace) -> None:
    from brain2text.evaluation.ensemble import default_out, evaluate_ensemble

    out = args.out or default_out(args.run_dirs)
    summary = evaluate_ensemble(
        args.run_dirs,
        split_name=args.split,
        checkpoint=args.checkpoint,
        weights=args.weights,
        data_path=args.data,
        answers=args.answers,
        device_name=args.device,
        out=out,
        lm_dir=args.lm,
        wfst_dir=args.wfst,
        beam_size=args.beam,
        lm_weight=args.lm_weight,
        word_score=args.word_score,
        nbest=args.nbest,
        merge=args.merge or "logits",
        llm=args.llm,
        rescoring=args.rescoring,
    )
    for member, per in (summary.members or {}).items():
        print(f"  member {member}: {args.split} PER {per:.4f}")
    what = [f"PER {summary.per:.4f}"] if summary.per is not None else []
    if summary.wer is not None:
        what.append(f"WER {summary.wer:.4f}")
    print(
        f"ensemble of {len(args.run_dirs)}: {args.split} {', '.join(what) or 'decoded'} over "
        f"{summary.n_sentences} sentences; files in {out / 'eval'}"
    )
    if summary.merge is not None:
        average = summary.merge["logit_average"]
        print(
            f"  merge {summary.merge['method']}: WER {_number(summary.wer)} "
            f"(logit average: WER {_number(average['wer'])}, eval/{average['folder']})"
        )


def cmd_evaluate_words(args: argparse.Namespace) -> None:
    from brain2text.evaluation.evaluate import TTA_SUFFIX, eval_folder
    from brain2text.evaluation.word_eval import evaluate_with_lm, word_suffix

    if args.wfst is not None and any(
        v is not None for v in (args.beam, args.lm_weight, args.word_score, args.nbest)
    ):
        raise ConfigError(
            "--beam, --lm-weight, --word-score and --nbest are options of --lm; "
            "--wfst searches with the Brain-to-Text '24 baseline's settings"
        )
    summary = evaluate_with_lm(
        args.run_dir,
        args.lm,
        wfst_dir=args.wfst,
        split_name=args.split,
        checkpoint=args.checkpoint,
        weights=args.weights,
        data_path=args.data,
        answers=args.answers,
        device_name=args.device,
        beam_size=args.beam,
        lm_weight=args.lm_weight,
        word_score=args.word_score,
        nbest=args.nbest,
        llm=args.llm,
        rescoring=args.rescoring,
        llm_batch=args.llm_batch,
        fusion_weight=fusion_weight(args),
        tta=args.tta_settings,
    )
    suffix = word_suffix(args.lm is not None, args.llm is not None, args.llm_fusion)
    where = eval_folder(
        args.run_dir,
        args.split,
        args.weights,
        (TTA_SUFFIX if summary.tta is not None else "") + suffix,
    )
    print_tta(summary.tta)
    speed = f"{_number(summary.decode_ms_per_sentence, 1)} ms/sentence"
    if summary.labelled:
        low, high = summary.wer_ci95 or (None, None)
        plow, phigh = summary.per_ci95 or (None, None)
        print(
            f"{args.split} WER {_number(summary.wer)} (95% CI {_number(low)}-{_number(high)}), "
            f"PER {_number(summary.per)} ({_number(plow)}-{_number(phigh)}) over "
            f"{summary.n_sentences} sentences; {speed}; files in {where}"
        )
    else:
        print(
            f"decoded {summary.n_sentences} unlabelled sentences to words ({speed}): "
            f"{where / 'decoded.txt'}"
        )
    if summary.llm is not None and summary.labelled:
        low, high = summary.wer_first_pass_ci95 or (None, None)
        tuned_first = "the LLM's first pass" in (summary.options_from or "")
        without = "its first pass, tuned for the LLM" if tuned_first else "n-gram only"
        print(
            f"  with {_llm_name(summary.llm)}: WER {_number(summary.wer)}; without ({without}"
            f"): WER {_number(summary.wer_first_pass)} ({_number(low)}-{_number(high)}); "
            f"n-best oracle WER {_number(summary.nbest_oracle_wer)} "
            f"(n-best {(summary.rescoring or {}).get('nbest')})"
        )
        clow, chigh = summary.wer_change_ci95 or (None, None)
        print(
            f"  change of WER with the LLM {_signed(summary.wer_change)} (paired 95% CI "
            f"{_signed(clow)} to {_signed(chigh)})"
        )
    if args.split == "competition":
        print(f"submission: {where / 'submission.txt'}")
    refresh_report(args.run_dir)


def tta_settings(args: argparse.Namespace) -> list[str] | None:
    """``--tta``'s changes to the run's tta section (None: no adaptation)."""
    if not args.tta:
        if args.tta_set:
            raise ConfigError("--tta-set changes a setting of --tta: add --tta")
        return None
    return list(args.tta_set or [])


def print_tta(tta: dict | None) -> None:
    """The line saying an evaluation adapted each trial, and how."""
    if tta is None:
        return
    print(
        f"test-time adaptation: {tta['copies']} masked copies, {tta['steps']} step(s) at lr "
        f"{tta['lr']:g} on {', '.join(tta['parameter_names'])} per trial, weights restored"
    )


def fusion_weight(args: argparse.Namespace) -> float | None:
    """The LLM's weight inside the search (None: no fusion)."""
    if not args.llm_fusion:
        return None
    from brain2text.decoding.llm_fusion import DEFAULT_FUSION_WEIGHT

    return DEFAULT_FUSION_WEIGHT if args.fusion_weight is None else args.fusion_weight


def rescore_options(args: argparse.Namespace) -> RescoreOptions | None:
    """The command line's RescoreOptions (None: none given, so lm_tuning.json or the
    defaults)."""
    from brain2text.evaluation.rescoring import RescoreOptions

    given = {"alpha": args.alpha, "acoustic_scale": args.acoustic_scale, "gate": args.llm_gate}
    chosen = {k: v for k, v in given.items() if v is not None}
    return RescoreOptions(**chosen) if chosen else None


def llm_of(args: argparse.Namespace) -> SentenceScorer | str | None:
    """``--llm`` as given, or the scorer ``--llm-end`` / ``--llm-dtype`` make of it."""
    end, dtype = getattr(args, "llm_end", None), getattr(args, "llm_dtype", None)
    if args.llm is None and (end is not None or dtype is not None):
        raise ConfigError("--llm-end and --llm-dtype say how --llm scores: give --llm MODEL")
    if args.llm is None or (end is None and dtype is None):
        return args.llm
    if end is not None and getattr(args, "llm_fusion", False):
        raise ConfigError("--llm-end ends the sentences --llm rescores; --llm-fusion has none")
    from brain2text.decoding.llm import load_scorer

    batch = getattr(args, "llm_batch", 32)
    device = getattr(args, "device", "auto")
    return load_scorer(args.llm, device=device, dtype=dtype, batch_size=batch, end=end)


def _llm_name(record: dict) -> str:
    end = record.get("end")
    return str(record.get("name")) + ("" if end is None else f" (end {end!r})")


def _number(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _signed(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:+.{digits}f}"


def cmd_lm_tune(args: argparse.Namespace) -> None:
    from brain2text.evaluation.tuning import tune_lm, tuning_table

    lm_weights = _floats(args.lm_weights, "--lm-weights")
    word_scores = _floats(args.word_scores, "--word-scores")
    alphas = _floats(args.alphas, "--alphas")
    scales = _floats(args.acoustic_scales, "--acoustic-scales")
    gates = tuple(
        None if g.strip().lower() == "none" else _floats(g, "--llm-gates")[0]
        for g in args.llm_gates.split(",")
    )
    if args.llm is not None:
        from brain2text.evaluation.rescoring import RescoreOptions

        for alpha in alphas:  # a bad grid value is a one-line error before any work
            RescoreOptions(alpha=alpha)
        for scale in scales:
            RescoreOptions(acoustic_scale=scale)
    result = tune_lm(
        args.run_dir,
        args.lm,
        lm_weights=lm_weights,
        word_scores=word_scores,
        beam_size=args.beam,
        checkpoint=args.checkpoint,
        weights=args.weights,
        data_path=args.data,
        device_name=args.device,
        llm=llm_of(args),
        llm_nbest=args.nbest,
        alphas=alphas,
        acoustic_scales=scales,
        gates=gates,
        first_pass_weights=(
            None
            if args.first_pass_weights is None
            else _floats(args.first_pass_weights, "--first-pass-weights")
        ),
    )
    print(tuning_table(result))
    refresh_report(args.run_dir)


def _floats(text: str, flag: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"{flag} {text}: give comma-separated numbers, e.g. 0.5,1,2") from None
    return values


def cmd_lm_build(args: argparse.Namespace) -> None:
    from brain2text.decoding.lm import build_lm, split_sentences

    if (args.exclude_split is None) != (args.run is None):
        raise ConfigError(
            "--exclude-split and --run go together: e.g. --exclude-split val --run RUN_DIR"
        )
    if args.data is not None and args.run is None:
        raise ConfigError("--data names the prepared data of --exclude-split: give --run too")
    exclude, excluded_from = None, None
    if args.exclude_split is not None:
        exclude = split_sentences(args.run, args.exclude_split, args.data)
        excluded_from = {"split": args.exclude_split, "run": str(args.run.resolve())}
    info = build_lm(
        args.corpus,
        args.out,
        order=args.order,
        prune=args.prune,
        min_count=args.min_count,
        lexicon=args.lexicon,
        overwrite=args.overwrite,
        exclude=exclude,
        excluded_from=excluded_from,
    )
    ngrams = "/".join(str(n) for n in info["ngrams"].values())
    left_out = info["left_out"]
    print(
        f"built a {info['order']}-gram LM from {info['n_sentences']} sentences: vocabulary "
        f"{info['vocabulary_size']} words, n-grams {ngrams}, words left out: "
        f"{left_out['n_words']} ({left_out['n_tokens']} tokens counted as <unk>), in {args.out}"
    )
    if (excluded := info["corpus"]["excluded"]) is not None:
        print(
            f"left out the {excluded['n_sentences']} distinct sentences of {args.run}'s "
            f"{args.exclude_split} split: {excluded['n_corpus_lines_dropped']} corpus lines dropped"
        )
