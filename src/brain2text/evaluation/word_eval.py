"""``brain2text evaluate RUN --lm LM_DIR``: words out of a trained decoder.

The checkpoint's emissions of every trial go through the lexicon-constrained CTC beam search
with the n-gram LM (:class:`brain2text.decoding.beam.WordDecoder`). Writes
``RUN/eval/<split>-lm/`` (``<split>-ema-lm/`` for the EMA weights), replaced whole:

* ``summary.json``: WER (total word edits / total reference words) and the PER of the decoded
  phonemes, each with a bootstrap 95% interval over sentences, per-day WER, decode time per
  sentence, the beam options and where they came from, the LM folder's record;
* ``hypotheses.jsonl``: per sentence the reference, the best sentence, the n-best list with
  scores, word edits;
* ``errors.txt``: the most frequent word confusions and aligned examples, worst first;
* ``decoded.txt``: one decoded sentence per line; for the hold-out split ``submission.txt`` as
  well, the same lines in hold-out trial order (the Brain-to-Text '24 submission format); for
  the test split of Brain-to-Text '25 data ``submission.csv`` (``id,text``, its format).

The beam options are, in order of precedence: those given, those ``brain2text lm tune`` wrote
to ``RUN/lm_tuning.json`` for this LM folder, the defaults.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from brain2text.atomic import atomic_write_folder
from brain2text.decoding.beam import BeamOptions, WordDecoder, WordHypothesis
from brain2text.decoding.lm import LanguageModel, open_lm
from brain2text.decoding.wfst import WfstDecoder
from brain2text.errors import DataError
from brain2text.evaluation.evaluate import (
    SUBMISSION_FILE,
    EvalTarget,
    answer_sentences,
    dataset_labeller,
    decode_target,
    eval_folder,
    is_submission,
    label_answer,
    load_target,
    submission_csv,
)
from brain2text.evaluation.metrics import (
    align,
    confusions,
    edit_distance,
    format_alignment,
    rates_by_day,
)
from brain2text.evaluation.words import normalize_words, rate_with_interval
from brain2text.phonemes import to_symbols

TUNING_FILE = "lm_tuning.json"
N_TOP_CONFUSIONS = 30
N_EXAMPLES = 40


def tuned_options(run_dir: Path, lm: LanguageModel) -> BeamOptions | None:
    """The options ``lm tune`` chose for this LM folder, or None."""
    path = run_dir / TUNING_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable ({exc})") from None
    if record.get("lm") != str(lm.folder.resolve()):
        return None
    return BeamOptions(**record["options"])


def choose_options(run_dir: Path, lm: LanguageModel, **given) -> tuple[BeamOptions, str]:
    """(options, their source): ``given`` values (None: not given) over the tuned ones."""
    tuned = tuned_options(run_dir, lm)
    base, source = (tuned, f"{run_dir / TUNING_FILE}") if tuned else (BeamOptions(), "defaults")
    chosen = {k: v for k, v in given.items() if v is not None}
    if chosen:
        source += " + command line (" + ", ".join(f"{k}={v}" for k, v in chosen.items()) + ")"
    return replace(base, **chosen), source


def decode_words(
    decoder: WordDecoder | WfstDecoder, emissions: list[np.ndarray]
) -> tuple[list[list[WordHypothesis]], list[float]]:
    """n-best lists and the seconds each sentence took."""
    nbests, seconds = [], []
    for log_probs in emissions:
        start = time.perf_counter()
        nbests.append(decoder.decode(log_probs))
        seconds.append(time.perf_counter() - start)
    return nbests, seconds


def sentence_of(hyps: list[WordHypothesis]) -> str:
    return " ".join(hyps[0].words) if hyps else ""


def score_words(refs: list[str], hyps: list[str], day_of: np.ndarray, days: list[str]) -> dict:
    """WER with its interval, overall and per day."""
    ref_words = [normalize_words(r) for r in refs]
    hyp_words = [normalize_words(h) for h in hyps]
    overall = rate_with_interval(ref_words, hyp_words)
    return {
        **overall.to_dict("wer"),
        "wer_per_day": rates_by_day(ref_words, hyp_words, day_of, days),
    }


def word_search(
    run_dir: Path | None, lm_dir: Path | None = None, wfst_dir: Path | None = None, **given
) -> tuple[WordDecoder | WfstDecoder, dict]:
    """The word decoder of an LM folder or a Kaldi graph, and what the summary says of it.
    ``given``: beam options from the command line (None: not given); with ``run_dir`` the
    options ``lm tune`` wrote there are the defaults."""
    if (lm_dir is None) == (wfst_dir is None):
        raise DataError("give an LM folder or a Kaldi graph folder, not both or neither")
    if wfst_dir is not None:
        decoder = WfstDecoder(Path(wfst_dir))
        return decoder, {
            "wfst": str(wfst_dir),
            "options": asdict(decoder.options),
            "options_from": "the Brain-to-Text '24 baseline's graph search settings",
        }
    lm = open_lm(Path(lm_dir))
    if run_dir is not None:
        options, source = choose_options(run_dir, lm, **given)
    else:
        chosen = {k: v for k, v in given.items() if v is not None}
        options, source = replace(BeamOptions(), **chosen), "defaults + command line"
    decoder = WordDecoder(lm.arpa, lm.spellings, options)
    return decoder, {
        "lm": str(lm.folder),
        "options": asdict(options),
        "options_from": source,
        "dropped_homophones": sum(len(v) for v in decoder.dropped_homophones.values()),
    }


def evaluate_with_lm(
    run_dir: Path,
    lm_dir: Path | None = None,
    *,
    wfst_dir: Path | None = None,
    split_name: str = "test",
    checkpoint: str = "best",
    weights: str = "raw",
    data_path: Path | None = None,
    answers: Path | None = None,
    device_name: str = "auto",
    batch_size: int | None = None,
    beam_size: int | None = None,
    lm_weight: float | None = None,
    word_score: float | None = None,
    nbest: int | None = None,
) -> dict:
    """Words with an LM folder (``lm_dir``: files in ``eval/<split>-lm/``) or with a Kaldi
    decoding graph (``wfst_dir``: ``TLG.fst`` + ``words.txt``, files in ``eval/<split>-wfst/``;
    its search options are the Brain-to-Text '24 baseline's)."""
    decoder, info = word_search(
        run_dir,
        lm_dir,
        wfst_dir,
        beam_size=beam_size,
        lm_weight=lm_weight,
        word_score=word_score,
        nbest=nbest,
    )
    target = load_target(run_dir, split_name, checkpoint, weights, data_path, device_name)
    decoded = decode_target(target, batch_size, keep_log_probs=True)
    summary, files = word_files(
        target,
        decoded.log_probs,
        decoder,
        split_name,
        answers,
        {**target.info(split_name, weights), **info},
    )
    suffix = "-lm" if lm_dir is not None else "-wfst"
    atomic_write_folder(eval_folder(run_dir, split_name, weights, suffix), files)
    return summary


def word_files(
    target: EvalTarget,
    emissions: list[np.ndarray],
    decoder: WordDecoder | WfstDecoder,
    split_name: str,
    answers: Path | None,
    header: dict,
) -> tuple[dict, dict[str, str]]:
    """Decode ``emissions`` (one per trial of ``target``) to words; the summary and the files
    of a words evaluation folder."""
    nbests, seconds = decode_words(decoder, emissions)
    split, indices = target.split, target.indices
    hyps = [sentence_of(n) for n in nbests]
    summary = {
        **header,
        "decode_ms_per_sentence": 1000 * statistics.fmean(seconds) if seconds else math.nan,
        "decode_ms_median": 1000 * statistics.median(seconds) if seconds else math.nan,
        "n_sentences": len(hyps),
    }
    refs: list[str] | None = None
    ref_ids: list[list[int]] | None = None
    if split.labelled:
        refs = [split.text(int(i)) for i in indices]
        ref_ids = [split.phonemes(int(i)).tolist() for i in indices]
    elif answers is not None:
        refs = answer_sentences(split, answers, indices)
        labeller = dataset_labeller(target.data)
        ref_ids = [
            label_answer(labeller, s, answers, split.describe(int(i)))
            for i, s in zip(indices, refs, strict=False)
        ]
    rows = []
    for k, i in enumerate(map(int, indices)):
        row = {
            "session": split.session_of(i),
            "trial": int(split.trial[i]),
            "hyp": hyps[k],
            "phonemes": " ".join(to_symbols(list(nbests[k][0].phonemes))) if nbests[k] else "",
            "nbest": [{"text": " ".join(h.words), "score": h.score} for h in nbests[k]],
        }
        if refs is not None:
            row |= {
                "text": refs[k],
                "word_edits": edit_distance(normalize_words(refs[k]), normalize_words(hyps[k])),
            }
        rows.append(row)
    files = {"decoded.txt": "".join(h + "\n" for h in hyps)}
    if split_name == "competition":
        files["submission.txt"] = files["decoded.txt"]
    if is_submission(target.data, split_name):
        files[SUBMISSION_FILE] = submission_csv(hyps)
    if refs is not None:
        summary |= score_words(refs, hyps, split.day_index[indices], target.data.days)
        decoded_ids = [list(n[0].phonemes) if n else [] for n in nbests]
        summary |= rate_with_interval(ref_ids, decoded_ids).to_dict("per")
        files["errors.txt"] = word_error_report(rows)
    summary["labelled"] = refs is not None
    files["hypotheses.jsonl"] = "".join(json.dumps(r) + "\n" for r in rows)
    files["summary.json"] = json.dumps(summary, indent=2, default=_jsonable) + "\n"
    return summary, files


def word_error_report(rows: list[dict]) -> str:
    pairs = [align(normalize_words(r["text"]), normalize_words(r["hyp"])) for r in rows]
    counts = confusions(pairs)
    lines = ["# most frequent word errors: (REF->HYP) count; * marks a missing word", ""]
    lines += [f"({r}->{h}) {n}" for (r, h), n in counts.most_common(N_TOP_CONFUSIONS)]
    lines += ["", "# aligned examples, most word errors first", ""]
    order = sorted(range(len(rows)), key=lambda k: -rows[k]["word_edits"])
    for k in order[:N_EXAMPLES]:
        r = rows[k]
        lines += [
            f"{r['session']} trial {r['trial']}: {r['word_edits']} word errors",
            f"  REF  {r['text']}",
            f"  HYP  {r['hyp']}",
            f"  ALN  {format_alignment(pairs[k])}",
            "",
        ]
    return "\n".join(lines) + "\n"


def _jsonable(value):
    return None if isinstance(value, float) and math.isnan(value) else str(value)
