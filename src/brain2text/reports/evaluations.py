"""The run report's Evaluation section: one part per evaluation folder ``RUN_DIR/eval/<name>/``,
read from its ``summary.json`` (:func:`brain2text.evaluation.summary.read_summary`),
``hypotheses.jsonl`` and ``errors.txt``."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from brain2text.errors import DataError
from brain2text.evaluation.files import ERRORS_FILE, HYPOTHESES_FILE
from brain2text.evaluation.metrics import align, confusions
from brain2text.evaluation.summary import SUMMARY_FILE, EvalSummary, read_summary
from brain2text.reports.criteria import as_float
from brain2text.reports.page import fmt, html_table

N_WORST = 10
N_CONFUSIONS = 15
NO_EVALUATION = "<p>no evaluation files yet</p>"


def _confusion_lines(folder: Path, hyps: list[dict[str, Any]]) -> list[str]:
    """The top of errors.txt's confusion list, or the same recomputed from the hypotheses."""
    errors = folder / ERRORS_FILE
    if errors.is_file():
        lines = []
        for line in errors.read_text().splitlines()[2:]:  # after the title and a blank line
            if not line.strip():
                break
            lines.append(line)
        return lines[:N_CONFUSIONS]
    counts = confusions([align(h["ref"].split(), h["hyp"].split()) for h in hyps if "ref" in h])
    return [f"{n:6d}  {r} -> {h}" for (r, h), n in counts.most_common(N_CONFUSIONS)]


def _per_day_table(per_day: dict[str, float] | None, what: str) -> str:
    return html_table(["day", what], [[d, fmt(v)] for d, v in per_day.items()]) if per_day else ""


def _hypotheses(folder: Path) -> list[dict[str, Any]]:
    path = folder / HYPOTHESES_FILE
    return (
        [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
        if path.is_file()
        else []
    )


def _interval(bounds: list[float | None] | None) -> str:
    return "-".join(fmt(v) for v in bounds or [])


def _words_section(folder: Path, summary: EvalSummary) -> str:
    """An ``evaluate --lm`` (or ``--wfst``) folder: WER beside the PER of the decoded
    phonemes."""
    split = html.escape(folder.name)
    searched = f"LM {summary.lm}" if summary.lm is not None else f"graph {summary.wfst}"
    parts = [
        (
            f"<h3>{split}</h3><p>WER <b>{fmt(summary.wer)}</b> (95% CI "
            f"{_interval(summary.wer_ci95)}), PER of the decoded phonemes {fmt(summary.per)} "
            f"(95% CI {_interval(summary.per_ci95)}) over {summary.n_sentences} sentences; "
            f"{html.escape(searched)}, {html.escape(json.dumps(summary.options or {}))} from "
            f"{html.escape(str(summary.options_from))}; "
            f"{fmt(summary.decode_ms_per_sentence, 1)} ms per sentence</p>"
        )
    ]
    parts.append(_per_day_table(summary.wer_per_day, "WER"))
    hyps = _hypotheses(folder)
    worst = sorted(hyps, key=lambda h: -h.get("word_edits", 0))[:N_WORST]
    if worst:
        parts.append(
            f"<h4>{len(worst)} sentences with the most word errors</h4>"
            + html_table(
                ["session", "trial", "word errors", "reference", "decoded"],
                [
                    [
                        h.get("session"),
                        h.get("trial"),
                        h.get("word_edits"),
                        h.get("text", ""),
                        h.get("hyp", ""),
                    ]
                    for h in worst
                ],
            )
        )
    confusion = _confusion_lines(folder, [])
    if confusion:
        parts.append(
            "<h4>most frequent word errors (REF -&gt; HYP; * = nothing)</h4><pre>"
            + html.escape("\n".join(confusion))
            + "</pre>"
        )
    return "\n".join(parts)


def _phonemes_section(folder: Path, summary: EvalSummary) -> str:
    split = html.escape(folder.name)
    parts = [
        (
            f"<h3>{split}</h3><p>PER <b>{fmt(summary.per)}</b> over {summary.n_sentences} "
            f"sentences ({_known(summary.edit_distance)} edits / "
            f"{_known(summary.n_phonemes)} phonemes), checkpoint of batch "
            f"{_known(summary.checkpoint_step)}</p>"
        )
    ]
    parts.append(_per_day_table(summary.per_day, "PER"))
    hyps = _hypotheses(folder)
    if hyps:
        worst = sorted(hyps, key=lambda h: -as_float(h.get("per")))[:N_WORST]
        parts.append(
            f"<h4>{len(worst)} worst sentences</h4>"
            + html_table(
                ["session", "trial", "PER", "text", "reference", "hypothesis"],
                [
                    [
                        h.get("session"),
                        h.get("trial"),
                        fmt(h.get("per"), 3),
                        h.get("text", ""),
                        h.get("ref", ""),
                        h.get("hyp", ""),
                    ]
                    for h in worst
                ],
            )
        )
    confusion = _confusion_lines(folder, hyps)
    if confusion:
        parts.append(
            "<h4>most frequent errors (REF -&gt; HYP; * = nothing)</h4><pre>"
            + html.escape("\n".join(confusion))
            + "</pre>"
        )
    return "\n".join(parts)


def _known(value: object) -> str:
    return "?" if value is None else str(value)


def eval_section(folder: Path) -> str:
    """One evaluation folder's part of the page (an unreadable summary is said, in its place)."""
    try:
        summary = read_summary(folder)
    except DataError as exc:
        return f"<h3>{html.escape(folder.name)}</h3><p>{html.escape(str(exc))}</p>"
    if summary.wer is not None:
        return _words_section(folder, summary)
    if summary.per is None:
        return (
            f"<h3>{html.escape(folder.name)}</h3><p>{summary.n_sentences} unlabelled sentences "
            "decoded (no PER)</p>"
        )
    return _phonemes_section(folder, summary)


def evaluations_html(run_dir: Path) -> str:
    """Every evaluation folder of the run, in name order."""
    folders = sorted(p.parent for p in (Path(run_dir) / "eval").glob(f"*/{SUMMARY_FILE}"))
    return "\n".join(eval_section(f) for f in folders) or NO_EVALUATION
