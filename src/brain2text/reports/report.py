"""``brain2text report RUN_DIR``: a self-contained HTML page about a run, built from its files.

Reads ``metrics.jsonl``, ``config.yaml``, ``run.json`` and ``eval/<split>/`` and writes
``RUN_DIR/report/``: the five PNG plots of :mod:`brain2text.reports.curves` and ``index.html``,
which embeds them as data URIs and holds the run's facts, the success criteria verdicts, the
watch's warnings, the evaluation summaries and the resolved config with its differences from
the parent run.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import yaml

from brain2text.atomic import atomic_write_bytes, atomic_write_text
from brain2text.config import (
    RunConfig,
    config_differences,
    find_run_file,
    load_run,
    validate,
)
from brain2text.errors import ConfigError, DataError
from brain2text.reports.criteria import (
    Verdict,
    as_float,
    batch_rows,
    eval_points,
    eval_split_of,
    judge,
)
from brain2text.reports.curves import plot_all, warning_rows
from brain2text.reports.evaluations import evaluations_html
from brain2text.reports.listing import reference_rows
from brain2text.reports.page import CSS, html_table, image
from brain2text.runs import metric_keys as mk
from brain2text.runs.runlog import read_metrics

__all__ = ["CSS", "build_html", "html_table", "reference_rows", "write_report"]

# ----------------------------------------------------------------------------- reading


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
    except ValueError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object")
    return data


# ----------------------------------------------------------------------------- html pieces


def config_diff(config: RunConfig) -> tuple[str, list[list] | None]:
    """(what the parent is, [[key, parent value, this run's value]...] for the changed keys);
    the list is None when there is no parent to compare with."""
    if config.parent is None:
        return "this run has no parent", None
    local = Path.cwd() / "configs" / "runs" / f"{config.parent}.yaml"  # a project's own runs
    try:
        path = local if local.is_file() else find_run_file(config.parent)
        parent = load_run(path)
    except ConfigError as exc:
        return f"parent {config.parent}: cannot load ({exc})", None
    diffs = config_differences(
        [parent.to_dict(), config.to_dict()], ignore=("name", "parent", "description")
    )
    return f"parent {config.parent} ({path})", [[k, theirs, ours] for k, (theirs, ours) in diffs]


# ----------------------------------------------------------------------------- the report


def _facts(config: RunConfig, record: dict, rows: list[dict]) -> list[list]:
    batches = batch_rows(rows)
    split = eval_split_of(rows, config.data.eval_split)
    points = [(p, s) for s, p in eval_points(rows, split) if math.isfinite(p)]
    wall = record.get("wall_s")
    done = int(batches[-1][mk.STEP]) + 1 if batches else 0
    return [
        ["run", config.name],
        ["parent", config.parent or "-"],
        ["description", config.description or "-"],
        ["status", record.get("status", "unknown")],
        ["batches done", f"{done} of {config.train.n_batch}"],
        ["started", record.get("started", "-")],
        [
            "wall time",
            f"{wall / 60:.1f} min ({wall:.0f} s)" if isinstance(wall, (int, float)) else "-",
        ],
        [
            f"best {split or config.data.eval_split} PER",
            f"{min(points)[0]:.4f} at batch {min(points)[1]}" if points else "no evaluation",
        ],
        *_provenance_facts(record),
    ]


def _provenance_facts(record: dict) -> list[list]:
    """Code, machine and data identity from run.json (absent in records older than them)."""
    git, machine, dataset = record.get("git"), record.get("machine"), record.get("dataset")
    facts = [["brain2text", record.get("brain2text_version", "-")]]
    if git:
        facts.append(
            [
                "git commit",
                f"{git['commit'][:12]}{' (uncommitted changes)' if git['dirty'] else ''}",
            ]
        )
    if machine:
        gpu = machine.get("gpu")
        facts.append(
            [
                "machine",
                f"{machine.get('cpu')}, {machine.get('device')}"
                + (f" ({gpu['name']})" if gpu else ""),
            ]
        )
    if dataset:
        facts.append(
            [
                "dataset",
                f"{dataset.get('path')} (manifest sha256 "
                f"{(dataset.get('manifest_sha256') or '-')[:12]})",
            ]
        )
    return facts


def _warnings_html(rows: list[dict], record: dict) -> str:
    warnings = warning_rows(rows)
    stopped = record.get("stopped_early")
    parts = []
    if isinstance(stopped, dict):
        parts.append(
            f"<p><b>stopped early</b> at batch {html.escape(str(stopped.get('step')))}: "
            f"{html.escape(str(stopped.get('reason')))}</p>"
        )
    parts.append(
        html_table(
            ["batch", "lr", "kind", "message"],
            [
                [
                    w.get(mk.STEP),
                    f"{as_float(w.get(mk.LR)):.3g}",
                    w[mk.WARNING],
                    w.get(mk.MESSAGE, ""),
                ]
                for w in warnings
            ],
        )
        if warnings
        else "<p>no warning (or the watch was off: watch.enabled)</p>"
    )
    return "\n".join(parts)


def build_html(
    config: RunConfig,
    record: dict,
    rows: list[dict],
    verdicts: list[Verdict],
    pngs: dict[str, bytes],
    config_text: str,
    run_dir: Path,
) -> str:
    name = html.escape(config.name)
    verdict_html = (
        html_table(
            ["criterion", "status", "figure"],
            [[v.name, v.status, v.figure] for v in verdicts],
            [v.status.replace(" ", "-") for v in verdicts],
        )
        if verdicts
        else "<p>no success criteria set (criteria section of the run file)</p>"
    )
    images = "\n".join(image(n, b) for n, b in pngs.items())
    parent_line, diff = config_diff(config)
    diff_html = (
        ""
        if diff is None
        else html_table(["key", "parent", "this run"], diff)
        if diff
        else "<p>no differences</p>"
    )
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{name}: run report</title><style>{CSS}</style></head>
<body><h1>Run report: {name}</h1>
{html_table(None, _facts(config, record, rows))}
<h2>Success criteria</h2>
{verdict_html}
<h2>Instability watch</h2>
{_warnings_html(rows, record)}
<h2>Curves</h2>
{images}
<h2>Evaluation</h2>
{evaluations_html(run_dir)}
<h2>Config</h2>
<h3>Differences from the parent</h3>
<p>{html.escape(parent_line)}</p>
{diff_html}
<h3>Resolved config (config.yaml)</h3>
<pre>{html.escape(config_text)}</pre>
</body></html>
"""


def write_report(run_dir: Path) -> Path:
    """Write ``run_dir/report/`` (PNGs + self-contained index.html); returns index.html's path."""
    run_dir = Path(run_dir)
    rows = read_metrics(run_dir) if run_dir.is_dir() else []
    if not rows:
        raise DataError(f"{run_dir}: no metrics.jsonl with rows; is this a run folder?")
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise DataError(f"{config_path}: missing; a run folder holds its resolved config")
    config_text = config_path.read_text()
    config = validate(yaml.safe_load(config_text) or {}, origin=str(config_path))
    verdicts = judge(config, rows, reference_rows(config, run_dir))
    pngs = plot_all(config, rows)
    out = run_dir / "report"
    for file_name, data in pngs.items():
        atomic_write_bytes(out / file_name, lambda f, data=data: f.write(data))
    page = build_html(
        config, _read_json(run_dir / "run.json"), rows, verdicts, pngs, config_text, run_dir
    )
    atomic_write_text(out / "index.html", page)
    return out / "index.html"
