"""``brain2text evaluate RUN --lm LM_DIR`` (or ``--wfst GRAPH_DIR``): words out of a trained
decoder.

The checkpoint's emissions of every trial go through the word search
(:mod:`brain2text.evaluation.search`: the lexicon-constrained CTC beam search with the n-gram
LM, or a Kaldi decoding graph). Writes ``RUN/eval/<split>-lm/`` (``<split>-ema-lm/`` for the
EMA weights; ``-wfst`` for a graph), replaced whole:

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

from pathlib import Path

from brain2text.evaluation.evaluate import decode_target, eval_folder, load_target
from brain2text.evaluation.pipeline import word_evaluation
from brain2text.evaluation.search import word_search
from brain2text.evaluation.summary import EvalSummary


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
) -> EvalSummary:
    """Words with an LM folder (``lm_dir``: files in ``eval/<split>-lm/``) or with a Kaldi
    decoding graph (``wfst_dir``: ``TLG.fst`` + ``words.txt``, files in ``eval/<split>-wfst/``;
    its search options are the Brain-to-Text '24 baseline's)."""
    run_dir = Path(run_dir)
    search = word_search(
        run_dir,
        lm_dir,
        wfst_dir,
        beam_size=beam_size,
        lm_weight=lm_weight,
        word_score=word_score,
        nbest=nbest,
    )
    target = load_target(run_dir, split_name, checkpoint, weights, data_path, device_name)
    trials = target.trials(answers)
    decoded = decode_target(target, batch_size, keep_log_probs=True)
    evaluation = word_evaluation(
        trials, decoded.emissions, search, target.header(split_name), split_name
    )
    suffix = "-lm" if lm_dir is not None else "-wfst"
    return evaluation.write(eval_folder(run_dir, split_name, weights, suffix))
