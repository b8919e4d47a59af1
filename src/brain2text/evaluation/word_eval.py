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

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from brain2text.config import TtaConfig
from brain2text.decoding.llm import SentenceScorer, as_scorer
from brain2text.errors import ConfigError
from brain2text.evaluation.evaluate import TTA_SUFFIX, decode_target, eval_folder, load_target
from brain2text.evaluation.pipeline import word_evaluation
from brain2text.evaluation.rescoring import RescoreOptions
from brain2text.evaluation.search import LLM_NEEDS_LM, describe_scorer, word_search
from brain2text.evaluation.summary import EvalSummary


def word_suffix(lm: bool, llm: bool, fusion: bool = False) -> str:
    """The evaluation folder's suffix: ``-fusion`` (the LLM inside the beam search), ``-llm``
    (n-gram + LLM rescoring), ``-lm``, ``-wfst``."""
    return "-fusion" if fusion else "-llm" if llm else "-lm" if lm else "-wfst"


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
    llm: SentenceScorer | str | Path | None = None,
    rescoring: RescoreOptions | None = None,
    llm_batch: int = 32,
    fusion_weight: float | None = None,
    tta: TtaConfig | Sequence[str] | bool | None = None,
) -> EvalSummary:
    """Words with an LM folder (``lm_dir``: files in ``eval/<split>-lm/``) or with a Kaldi
    decoding graph (``wfst_dir``: ``TLG.fst`` + ``words.txt``, files in ``eval/<split>-wfst/``;
    its search options are the Brain-to-Text '24 baseline's). ``llm``: a sentence scorer or a
    model spec whose scores rescore the n-best list (files in ``eval/<split>-llm/``, the WER
    without it beside; :func:`~brain2text.evaluation.search.word_search` for its options).
    ``fusion_weight``: bring that LLM into the beam search instead, at this weight relative to
    the n-gram's (:mod:`brain2text.decoding.llm_fusion`; files in ``eval/<split>-fusion/``).
    ``tta``: each trial adapted first (:mod:`brain2text.evaluation.tta`), its emissions those of
    the weights adapted to it; files in ``eval/<split>-tta-lm/`` (``-tta-wfst``, ...)."""
    run_dir = Path(run_dir)
    if llm is not None and lm_dir is None:
        raise ConfigError(LLM_NEEDS_LM)
    if fusion_weight is not None and (llm is None or rescoring is not None):
        raise ConfigError(
            "--llm-fusion brings the --llm model into the search (no n-best rescoring: "
            "--alpha, --acoustic-scale and --llm-gate do not apply)"
        )
    scorer = as_scorer(llm, device=device_name, batch_size=llm_batch)
    fusion = None
    if fusion_weight is not None and scorer is not None:
        from brain2text.decoding.llm_fusion import fused_decoder

        weight = fusion_weight
        fusion = lambda decoder: fused_decoder(decoder, scorer, weight)  # noqa: E731
    search = word_search(
        run_dir,
        lm_dir,
        wfst_dir,
        llm=scorer if fusion is None else None,
        rescoring=rescoring,
        fusion=fusion,
        beam_size=beam_size,
        lm_weight=lm_weight,
        word_score=word_score,
        nbest=nbest,
    )
    if fusion is not None and scorer is not None:
        search = replace(
            search,
            llm=describe_scorer(scorer),
            options=(search.options or {}) | {"llm_fusion_weight": fusion_weight},
        )
    target = load_target(run_dir, split_name, checkpoint, weights, data_path, device_name)
    adapter = target.adapter(tta)
    trials = target.trials(answers)
    decoded = decode_target(target, batch_size, keep_log_probs=True, adapter=adapter)
    evaluation = word_evaluation(
        trials, decoded.emissions, search, target.header(split_name, adapter), split_name
    )
    suffix = word_suffix(lm_dir is not None, scorer is not None, fusion is not None)
    if adapter is not None:
        suffix = TTA_SUFFIX + suffix
    return evaluation.write(eval_folder(run_dir, split_name, weights, suffix))
