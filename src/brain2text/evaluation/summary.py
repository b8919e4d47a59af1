"""``summary.json``, the figures of one evaluation folder (:class:`EvalSummary`).

One summary describes a phoneme evaluation (greedy PER, loss, per-day PER), a word evaluation
(WER and the PER of the decoded phonemes, each with a bootstrap 95% interval, per-day WER,
decode time, the search's options) or the unlabelled decoding of either; an ensemble's says
which runs it combined and each one's PER. :func:`summary_text` is the one writer (the
folder is written whole: :mod:`brain2text.evaluation.files`) and :func:`read_summary` the one
reader. Undefined figures (NaN) are written as ``null``. Format version 1 (the first release) had no
``format_version`` entry and reads as it is.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from brain2text.errors import DataError

SUMMARY_FILE = "summary.json"
FORMAT_VERSION = 2


@dataclass(frozen=True, kw_only=True)
class EvalSummary:
    """What one evaluation found (None: not part of this kind of evaluation). The fields are in
    the order ``summary.json`` lists them."""

    checkpoint: str | None = None  # the checkpoint file (an ensemble: its name, best or last)
    checkpoint_step: int | None = None
    ensemble: list[str] | None = None  # an ensemble's member run folders
    weights: str  # "raw" or "ema"
    split: str
    data: str  # the prepared folder
    combination: str | None = None  # how an ensemble combines its members
    members: dict[str, float] | None = None  # member -> its own greedy PER
    # an ensemble merged by its LMs (--merge nbest|generate): how, and the logit average's WER
    merge: dict[str, Any] | None = None
    # test-time adaptation (evaluate --tta): its settings and the parameters it updated
    tta: dict[str, Any] | None = None
    # a word search
    lm: str | None = None
    wfst: str | None = None
    options: dict | None = None
    options_from: str | None = None
    dropped_homophones: int | None = None
    decode_ms_per_sentence: float | None = None
    decode_ms_median: float | None = None
    # phonemes: greedy (loss, PER and its counts) or the best sentences' (PER and interval)
    loss: float | None = None
    per: float | None = None  # total edits / total reference phonemes
    per_mean_sentence: float | None = None
    edit_distance: int | None = None
    n_phonemes: int | None = None
    n_sentences: int
    per_day: dict[str, float] | None = None
    # words
    wer: float | None = None  # total word edits / total reference words
    wer_ci95: list[float | None] | None = None
    wer_edits: int | None = None
    wer_reference: int | None = None
    wer_per_day: dict[str, float] | None = None
    per_ci95: list[float | None] | None = None
    per_edits: int | None = None
    per_reference: int | None = None
    # n-best rescoring with a neural LM: the LLM's record, its options, the WER of the first
    # pass's best sentences (without the LLM) and the n-best oracle (the lowest WER any
    # choice from the n-best lists reaches)
    llm: dict[str, Any] | None = None
    rescoring: dict[str, Any] | None = None
    wer_first_pass: float | None = None
    wer_first_pass_ci95: list[float | None] | None = None
    wer_change: float | None = None  # wer - wer_first_pass (negative: the LLM removed errors)
    wer_change_ci95: list[float | None] | None = None  # paired bootstrap over the sentences
    nbest_oracle_wer: float | None = None
    nbest_mean: float | None = None  # mean n-best list size (distinct sentences) decoded
    labelled: bool  # whether the figures could be scored
    format_version: int = FORMAT_VERSION

    @property
    def words(self) -> bool:
        """Whether this is a word evaluation (an LM folder or a decoding graph)."""
        return self.lm is not None or self.wfst is not None

    def to_dict(self) -> dict[str, Any]:
        """The summary's JSON object: every entry this evaluation has, NaN as None."""
        return {k: _finite(v) for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict, where: str = SUMMARY_FILE) -> EvalSummary:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values.setdefault("format_version", 1)
        try:
            return cls(**values)
        except TypeError as exc:
            raise DataError(f"{where}: not an evaluation summary ({exc})") from None


def _finite(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def jsonable(value: Any) -> Any:
    """``json.dumps``'s fallback for what evaluation files hold beside plain JSON values."""
    if hasattr(value, "item"):  # a numpy or torch scalar
        return value.item()
    return str(value)


def to_json(value: Any) -> str:
    """An evaluation file's JSON text: NaN as null, indented, one trailing newline."""
    return json.dumps(_finite(value), indent=2, default=jsonable) + "\n"


def summary_text(summary: EvalSummary) -> str:
    """The text of ``summary.json``."""
    return to_json(summary.to_dict())


def read_summary(folder_or_file: Path) -> EvalSummary:
    """The summary of an evaluation folder (or of a ``summary.json`` path)."""
    path = Path(folder_or_file)
    if path.is_dir():
        path = path / SUMMARY_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: no evaluation summary") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: not an evaluation summary (not a JSON object)")
    return EvalSummary.from_dict(data, str(path))
