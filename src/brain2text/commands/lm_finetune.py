"""``brain2text lm finetune``: a LoRA-adapted causal LM for rescoring, fusion or the merge."""

from __future__ import annotations

import argparse

from brain2text.errors import ConfigError

OPTION_ARGS = (
    "epochs",
    "max_steps",
    "lr",
    "rank",
    "lora_alpha",
    "dropout",
    "warmup_steps",
    "batch_size",
    "val_fraction",
    "seed",
    "save_every",
)


def _examples(args: argparse.Namespace) -> tuple[list, dict]:
    """The examples of ``--task`` and what finetune.json records of where they came from."""
    if args.task == "sentences":
        if args.runs is not None or args.lm is not None:
            raise ConfigError("--runs and --lm make the examples of --task correct only")
        if args.corpus is None:
            raise ConfigError("--task sentences: give the training transcripts with --corpus")
        if (args.exclude_split is None) != (args.run is None):
            raise ConfigError(
                "--exclude-split and --run go together: e.g. --exclude-split val --run RUN_DIR"
            )
        from brain2text.decoding.llm_examples import corpus_examples

        exclude = excluded_from = None
        if args.exclude_split is not None:
            from brain2text.decoding.lm import split_sentences

            exclude = split_sentences(args.run, args.exclude_split, args.data)
            excluded_from = {"split": args.exclude_split, "run": str(args.run.resolve())}
        examples, corpus = corpus_examples(args.corpus, exclude, excluded_from)
        return examples, {"task": "sentences", "corpus": corpus}
    if args.exclude_split is not None or args.run is not None:
        raise ConfigError("--exclude-split and --run filter the --corpus of --task sentences")
    if args.corpus is not None:
        raise ConfigError("--task correct learns from the runs' decodings: drop --corpus")
    if not args.runs or args.lm is None:
        raise ConfigError("--task correct: give the ensemble's members (--runs) and --lm LM_DIR")
    from brain2text.evaluation.merge import correction_examples

    examples = correction_examples(
        args.runs, args.lm, splits=("train", "val"), device_name=args.device
    )
    return list(examples), {
        "task": "correct",
        "runs": [str(r.resolve()) for r in args.runs],
        "lm": str(args.lm.resolve()),
        "splits": ["train", "val"],
    }


def cmd_lm_finetune(args: argparse.Namespace) -> None:
    from brain2text.decoding.llm_finetune import (
        FinetuneOptions,
        check_destination,
        finetune_llm,
    )

    given = {name: getattr(args, name) for name in OPTION_ARGS if getattr(args, name) is not None}
    if args.target_modules is not None:
        given["target_modules"] = tuple(args.target_modules)
    if args.end is not None and args.task == "correct":
        raise ConfigError("--end is for --task sentences; a corrector always learns eos")
    end = "eos" if args.task == "correct" else args.end
    options = FinetuneOptions(**given, end=end)
    check_destination(args.out, resume=args.resume, overwrite=args.overwrite)
    examples, data = _examples(args)
    result = finetune_llm(
        args.llm,
        examples,
        args.out,
        options=options,
        resume=args.resume,
        overwrite=args.overwrite,
        device=args.device,
        data=data,
    )

    def ppl(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f}"

    print(
        f"fine-tuned {args.llm} for {result.steps} steps on {result.n_train} examples "
        f"({result.seconds:.1f} s): validation perplexity {ppl(result.val_perplexity_before)} "
        f"-> {ppl(result.val_perplexity_after)} on {result.n_val} held out; model in "
        f"{result.out_dir} (resume state in {result.resume_dir})"
    )
