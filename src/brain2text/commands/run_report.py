"""The run's report page, drawn after training and redrawn after each evaluation of the run."""

from __future__ import annotations

import sys
from pathlib import Path

from brain2text.runs.metric_keys import METRICS_FILE


def refresh_report(run_dir: Path) -> None:
    """Draw (or redraw) a trained run's report page, after training and after each evaluation
    of it, so that its Evaluation section shows the new files. A failure to draw it is said,
    never allowed to fail the training or the evaluation."""
    if not (run_dir / METRICS_FILE).is_file():
        return  # not a trained run's folder (an ensemble's, an adapted day's): no report
    from brain2text.reports.report import write_report

    try:
        print(f"report: {write_report(run_dir)}")
    except Exception as exc:  # a report is evidence, never a reason to fail
        reason = " ".join(str(exc).split())
        print(f"warning: no run report ({type(exc).__name__}: {reason})", file=sys.stderr)
