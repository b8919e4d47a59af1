"""The files of an evaluation folder beside ``summary.json``, and the folder's one writer.

* ``hypotheses.jsonl``: one JSON row per sentence;
* ``errors.txt``: the most frequent confusions and aligned ``(REF->HYP)`` examples, worst
  first, in one format for phonemes and for words;
* ``decoded.txt`` (one decoded sentence per line), ``decoded.jsonl`` for unlabelled trials;
  ``submission.csv`` for Brain-to-Text '25's test split (``id,text``) and ``submission.txt``
  for the 2023 hold-out's words (its lines in trial order).

A folder is written whole or not at all (:func:`write_folder`, staged and renamed), so an
evaluation never leaves another's files beside its own.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from brain2text.atomic import atomic_write_folder
from brain2text.evaluation.metrics import align, confusions, edit_distance, format_alignment
from brain2text.evaluation.summary import SUMMARY_FILE, EvalSummary, jsonable, summary_text

N_TOP_CONFUSIONS = 30
N_EXAMPLES = 40
HYPOTHESES_FILE = "hypotheses.jsonl"
ERRORS_FILE = "errors.txt"
DECODED_FILE = "decoded.txt"
DECODED_ROWS_FILE = "decoded.jsonl"
SUBMISSION_FILE = "submission.csv"
HOLDOUT_SUBMISSION_FILE = "submission.txt"


@dataclass(frozen=True)
class Aligned:
    """One scored sentence: its reference and hypothesis as symbols (phonemes or words)."""

    session: str
    trial: int
    text: str
    ref: Sequence[str]
    hyp: Sequence[str]

    @property
    def edits(self) -> int:
        return edit_distance(self.ref, self.hyp)

    @property
    def rate(self) -> float:
        return sentence_rate(self.ref, self.hyp)


def sentence_rate(ref: Sequence, hyp: Sequence) -> float:
    """One sentence's error rate: its edits over its reference length (0 for an empty one)."""
    return edit_distance(ref, hyp) / max(len(ref), 1)


def error_report(sentences: Sequence[Aligned], unit: str, rate_name: str) -> str:
    """``errors.txt``: the most frequent (REF -> HYP) confusions, then the sentences aligned,
    worst ``rate_name`` first (``unit``: what the symbols are, "phonemes" or "words")."""
    pairs = [align(list(s.ref), list(s.hyp)) for s in sentences]
    counts = confusions(pairs)
    lines = [f"# most frequent errors (REF -> HYP; * = nothing), in {unit}", ""]
    lines += [f"{n:6d}  {r} -> {h}" for (r, h), n in counts.most_common(N_TOP_CONFUSIONS)]
    lines += [
        "",
        f"# aligned sentences, worst first: correct {unit} as-is, errors as (REF->HYP)",
        "",
    ]
    rates = [s.rate for s in sentences]
    worst = sorted(range(len(sentences)), key=lambda k: -rates[k])[:N_EXAMPLES]
    for k in worst:
        s = sentences[k]
        lines.append(f'{s.session} trial {s.trial}  {rate_name} {rates[k]:.3f}  "{s.text}"')
        lines.append("  " + format_alignment(pairs[k]))
    return "\n".join(lines) + "\n"


def json_lines(rows: Sequence[dict]) -> str:
    return "".join(json.dumps(r, default=jsonable) + "\n" for r in rows)


def lines_of(texts: Sequence[str]) -> str:
    return "".join(t + "\n" for t in texts)


def submission_csv(texts: Sequence[str]) -> str:
    """The Brain-to-Text '25 submission: ``id,text``, ids 0..N-1 in the split's order
    (sessions by date, trials in file order)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "text"])
    writer.writerows(enumerate(texts))
    return buffer.getvalue()


def with_summary(files: dict[str, str], summary: EvalSummary) -> dict[str, str]:
    return {**files, SUMMARY_FILE: summary_text(summary)}


def write_folder(folder: Path, files: dict[str, str]) -> Path:
    """Replace ``folder`` with exactly ``files`` (name -> text), whole or not at all."""
    atomic_write_folder(Path(folder), files)
    return Path(folder)
