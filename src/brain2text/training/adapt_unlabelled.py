"""``brain2text adapt RUN RECORDING --day D --unlabelled --lm LM_DIR``: a new day's input layer
fitted to its own trials' confident word decodings (pseudo-labels), no sentence needed.

1. Every trial of the recording is decoded to words with the LM folder's search (the options
   ``lm tune`` wrote to the run for it, else the defaults) through the input layer the new day
   borrows (the nearest earlier training day's, as :class:`~brain2text.inference.decoder.
   Decoder` reads an unknown day).
2. The gate (:func:`passes_gate`): a trial's best sentence becomes its label when it has a word
   and its n-gram score per word (natural log, ``</s>`` included: ``WordHypothesis.ngram`` over
   its words) is at least ``adapt.pseudo_gate`` (-2.5, the self-training threshold of a
   Brain-to-Text '25 top-10 entry). The label's phonemes are those of the pronunciation the
   search read (:func:`pseudo_label`: the best path's phonemes, SIL after every word, the
   silences before the first word and runs of SIL merged, as the dataset labels a sentence).
3. The new day's layer, a copy of the borrowed one, is fitted on the kept trials alone, as the
   labelled ``adapt`` fits it (``adapt.steps``, ``adapt.lr``, ``adapt.batch_size``; every other
   weight frozen, dropout off).
4. The greedy PER on the recording's labelled trials (those with a sentence; their sentences
   are never used for fitting, and the gate may have kept them as any other trial) before
   (borrowed layer) and after is the figure reported, with how many trials the gate kept.

A recording no trial of which passes the gate is a one-line DataError and nothing is written.
The result is a run folder as the labelled ``adapt`` writes (``adapt.json``: the figures).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from brain2text.data.recording import RawTrial, read_recording
from brain2text.decoding.beam import WordHypothesis
from brain2text.errors import DataError
from brain2text.evaluation.metrics import error_rate
from brain2text.inference.decoder import Decoder, Decoding, NewDayWarning
from brain2text.phonemes import PHONEME_TO_ID, SIL
from brain2text.training.adapt import (
    adapting,
    check_new_day,
    fit_day_layer,
    labelled_trials,
    score_trials,
    with_new_day,
    write_adapted,
)
from brain2text.training.state import Evaluation, LatestEval

LABELLED = "labelled"  # the split the adapted checkpoint's evaluation scored
SIL_ID = PHONEME_TO_ID[SIL]


@dataclass(frozen=True)
class PseudoAdapted:
    day: str
    started_from: str  # the training day whose layer the new one started as
    lm: str
    gate: float  # adapt.pseudo_gate
    n_trials: int  # trials of the recording
    n_kept: int  # trials whose decoding passed the gate: fitted on
    n_scored: int  # labelled trials scored (0: no PER)
    per_before: float  # greedy PER on the labelled trials (NaN without any)
    per_after: float
    steps: int
    final_loss: float
    unlabelled: bool = True


def ngram_per_word(hyp: WordHypothesis) -> float:
    """A sentence's n-gram score per word (natural log, ``</s>`` included); NaN without one."""
    return hyp.ngram / len(hyp.words) if hyp.words else math.nan


def passes_gate(nbest: tuple[WordHypothesis, ...] | list[WordHypothesis], gate: float) -> bool:
    """Whether a trial's best sentence is confident enough to be its label: it has a word and
    an n-gram score per word of at least ``gate`` (a NaN score never passes)."""
    if not nbest:
        return False
    score = ngram_per_word(nbest[0])
    return math.isfinite(score) and score >= gate


def pseudo_label(hyp: WordHypothesis) -> list[int]:
    """The phoneme ids a decoded sentence is labelled with: its best path's phonemes, SIL after
    every word, without the path's leading silence and with each run of SIL merged."""
    out: list[int] = []
    for p in hyp.phonemes:
        if p == SIL_ID and (not out or out[-1] == SIL_ID):
            continue
        out.append(int(p))
    return out


def adapt_unlabelled(
    run_dir: Path,
    recording: Path,
    day: str,
    out_dir: Path,
    lm: Path,
    *,
    overrides: list[str] | None = None,
    overwrite: bool = False,
    checkpoint: str = "best",
) -> PseudoAdapted:
    with adapting(run_dir, overrides) as (config, cpu):
        decoder = Decoder.load(run_dir, checkpoint=checkpoint, lm=lm)
        check_new_day(decoder, run_dir, day)
        trials = read_recording(recording, decoder.feature_spec)
        labelled = labelled_trials(trials, day)  # the PER's references, never fitted on
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NewDayWarning)
            start = decoder.day_index(day)
            outs = decoder.decode_batch([(t.features, day) for t in trials])
        kept = _gated(trials, outs, config.adapt.pseudo_gate)
        if not kept:
            best = [ngram_per_word(o.nbest[0]) for o in outs if o.nbest and o.nbest[0].words]
            raise DataError(
                f"{recording}: no trial's decoding passes adapt.pseudo_gate="
                f"{config.adapt.pseudo_gate:g} (n-gram ln score per word; the best of "
                f"{len(trials)} trials: {max(best, default=math.nan):.3f}); lower the gate or "
                "adapt with labels"
            )
        before = _greedy_per(labelled, trials, outs)
        model = with_new_day(decoder, start)
        loss = fit_day_layer(model, kept, len(decoder.days), config, config.train.seed)
        adapted = Decoder(
            model.eval(), config, [*decoder.days, day], decoder.feature_spec, decoder.device
        )
        after = score_trials(adapted, labelled, day) if labelled else None
        result = PseudoAdapted(
            day,
            decoder.days[start],
            str(lm),
            config.adapt.pseudo_gate,
            len(trials),
            len(kept),
            len(labelled),
            before,
            after.per if after is not None else math.nan,
            config.adapt.steps,
            loss,
        )
        held = LatestEval(raw=Evaluation(result.steps, LABELLED, "raw", after) if after else None)
        figures = {**asdict(result), "run": str(run_dir), "recording": str(recording)}
        write_adapted(out_dir, overwrite, run_dir, config, adapted, figures, cpu, held)
        return result


def _gated(
    trials: list[RawTrial], outs: list[Decoding], gate: float
) -> list[tuple[RawTrial, list[int]]]:
    """The trials whose decoding passes the gate, with their pseudo-labels."""
    return [
        (t, pseudo_label(o.nbest[0]))
        for t, o in zip(trials, outs, strict=True)
        if passes_gate(o.nbest, gate) and pseudo_label(o.nbest[0])
    ]


def _greedy_per(
    labelled: list[tuple[RawTrial, list[int]]], trials: list[RawTrial], outs: list[Decoding]
) -> float:
    """The greedy PER of the decoding already made on the labelled trials (NaN without any)."""
    if not labelled:
        return math.nan
    by_trial = {id(t): o for t, o in zip(trials, outs, strict=True)}
    hyps = [list(by_trial[id(t)].phoneme_ids) for t, _ in labelled]
    return error_rate([ids for _, ids in labelled], hyps).rate
