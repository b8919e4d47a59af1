"""``brain2text report RUN_DIR``: a self-contained HTML page about a run, built from its files.

Reads ``metrics.jsonl``, ``config.yaml``, ``run.json`` and ``eval/<split>/`` and writes
``RUN_DIR/report/``: five PNG plots (LR, losses, PER per day, pre-clip gradient norm, skipped
steps; the LR and PER plots mark the instability watch's warnings) and ``index.html``, which
embeds them as data URIs and holds the run's facts, the success criteria verdicts, the
watch's warnings, the evaluation summaries and the resolved config with its differences from
the parent run. Plots use matplotlib's Agg canvas directly (no pyplot, no global state).
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

import numpy as np
import yaml
from matplotlib.figure import Figure

import brain2text
from brain2text.atomic import atomic_write_bytes, atomic_write_text
from brain2text.config import (
    RunConfig,
    config_differences,
    find_run_file,
    load_run,
    validate,
)
from brain2text.errors import ConfigError, DataError
from brain2text.evaluation.metrics import align, confusions
from brain2text.plotting import moving_average, new_figure, png_bytes
from brain2text.reports.criteria import (
    Verdict,
    as_float,
    batch_rows,
    eval_points,
    eval_split_of,
    judge,
)
from brain2text.runs.runlog import read_metrics

REPO_ROOT = Path(brain2text.__file__).resolve().parents[2]
N_WORST = 10
N_CONFUSIONS = 15
SMOOTH_FRACTION = 0.05  # moving-average window of the smoothed train loss, as a share of batches
FIGSIZE = (8.0, 3.2)
WARNING_COLORS = {"trend": "tab:red", "grad_norm": "tab:orange", "nonfinite": "tab:purple"}
CSS = """body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}
th{background:#f0f0f0}img{max-width:100%}pre{background:#f7f7f7;padding:.5em;overflow-x:auto}
.met{background:#d9f2d9}.not-met{background:#f8d7d7}.not-measurable{background:#eee}"""


# ----------------------------------------------------------------------------- reading


def _finite(values: list) -> np.ndarray:
    return np.array([as_float(v) for v in values], dtype=float)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except ValueError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None


def _find_relative(name: str) -> Path | None:
    for base in (Path.cwd(), REPO_ROOT):
        if (base / name).exists():
            return base / name
    return None


def reference_rows(config: RunConfig) -> list[dict] | None:
    """The metrics rows of ``criteria.faster_than.run``, None when that run cannot be read."""
    ft = config.criteria.faster_than
    if ft is None:
        return None
    path = Path(ft.run) if Path(ft.run).is_absolute() else _find_relative(ft.run)
    return (read_metrics(path) or None) if path is not None else None


# ----------------------------------------------------------------------------- plots


def _png(fig: Figure) -> bytes:
    fig.tight_layout()
    return png_bytes(fig)


def _axes(title: str, ylabel: str) -> tuple[Figure, object]:
    fig = new_figure(FIGSIZE)
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel("batch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig, ax


def warning_rows(rows: list[dict]) -> list[dict]:
    """The instability watch's rows (brain2text.training.watch): step, warning (kind), message, lr."""
    return [r for r in rows if "warning" in r]


def _mark_warnings(ax, warnings: list[dict]) -> None:
    """A vertical line at each warning's step, one legend entry per kind."""
    for kind in sorted({str(w["warning"]) for w in warnings}):
        color = WARNING_COLORS.get(kind, "tab:gray")
        for i, w in enumerate(x for x in warnings if x["warning"] == kind):
            ax.axvline(
                int(w["step"]),
                color=color,
                ls=":",
                lw=1,
                label=f"warning: {kind}" if i == 0 else None,
            )


def plot_all(config: RunConfig, rows: list[dict]) -> dict[str, bytes]:
    """File name -> PNG bytes of each plot."""
    batches = batch_rows(rows)
    steps = np.array([int(r["step"]) for r in batches])
    split = eval_split_of(rows, config.data.eval_split) or config.data.eval_split
    evals = [r for r in rows if f"{split}/per" in r]
    eval_steps = [int(r["step"]) for r in evals]
    pngs = {}

    fig, ax = _axes("learning rate", "lr")
    ax.plot(steps, _finite([r.get("lr") for r in batches]))
    _mark_warnings(ax, warning_rows(rows))
    if warning_rows(rows):
        ax.legend(fontsize="small")
    pngs["lr.png"] = _png(fig)

    fig, ax = _axes("loss", "CTC loss")
    loss = _finite([r["train/loss"] for r in batches])
    ax.plot(steps, loss, color="tab:blue", alpha=0.3, lw=0.8, label="train (raw)")
    window = max(1, int(len(loss) * SMOOTH_FRACTION))
    ax.plot(
        steps, moving_average(loss, window), color="tab:blue", label=f"train ({window}-batch mean)"
    )
    if evals:
        ax.plot(
            eval_steps,
            _finite([r.get(f"{split}/loss") for r in evals]),
            "o-",
            color="tab:orange",
            label=f"{split}",
        )
    ax.legend()
    pngs["loss.png"] = _png(fig)

    fig, ax = _axes(f"{split} PER", "PER")
    if evals:
        days = sorted({k for r in evals for k in r if k.startswith(f"{split}/per/")})
        for key in days:
            ax.plot(
                eval_steps,
                _finite([r.get(key) for r in evals]),
                lw=0.8,
                alpha=0.7,
                label=key.removeprefix(f"{split}/per/"),
            )
        ax.plot(
            eval_steps,
            _finite([r[f"{split}/per"] for r in evals]),
            "o-",
            color="black",
            lw=2,
            label="all days",
        )
        if any(f"{split}/per_ema" in r for r in evals):  # train.ema_decay: the EMA weights
            ax.plot(
                eval_steps,
                _finite([r.get(f"{split}/per_ema") for r in evals]),
                "s--",
                color="dimgray",
                lw=1.5,
                label="all days, EMA weights",
            )
        words = [(r["step"], as_float(r[f"{split}/wer"])) for r in evals if f"{split}/wer" in r]
        if words:  # eval.word_decoding: WER on the same axis (both are error rates)
            ax.plot(*zip(*words, strict=False), "D-", color="tab:red", lw=1.5, label="WER (LM)")
        ax.legend(
            fontsize="x-small",
            ncol=max(1, len(days) // 12),
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
        )
    else:
        ax.text(0.5, 0.5, "no evaluation in the metrics", ha="center", transform=ax.transAxes)
    _mark_warnings(ax, warning_rows(rows))  # after the legend: the days' legend stays as it was
    pngs["per.png"] = _png(fig)

    fig, ax = _axes("gradient norm before clipping", "norm (log)")
    norms = _finite([r.get("grad_norm") for r in batches])
    ok = np.isfinite(norms) & (norms > 0)
    ax.plot(steps[ok], norms[ok], lw=0.8, label="pre-clip norm")
    for x in steps[~np.isfinite(norms)]:
        ax.axvline(x, color="red", alpha=0.4, lw=0.8)
    if not np.all(np.isfinite(norms)):
        ax.plot([], [], color="red", alpha=0.4, label="non-finite (skipped)")
    if config.optim.grad_clip_norm:
        ax.axhline(
            config.optim.grad_clip_norm,
            color="tab:green",
            ls="--",
            label=f"clip {config.optim.grad_clip_norm:g}",
        )
    if config.criteria.max_grad_norm:
        ax.axhline(
            config.criteria.max_grad_norm,
            color="tab:red",
            ls=":",
            label=f"criterion < {config.criteria.max_grad_norm:g}",
        )
    ax.set_yscale("log")
    ax.legend()
    pngs["grad_norm.png"] = _png(fig)

    fig, ax = _axes("skipped steps (non-finite loss or gradient)", "cumulative count")
    skipped = _finite([r.get("skipped_steps", 0) for r in batches])
    ax.step(steps, skipped, where="post")
    top = max((v for v in skipped if math.isfinite(v)), default=0.0)
    ax.set_ylim(-0.05 * max(top, 1.0), max(top, 1.0) * 1.1)  # a run with none: a flat line at 0
    pngs["skipped.png"] = _png(fig)
    return pngs


# ----------------------------------------------------------------------------- html pieces


def html_table(header: list[str] | None, rows: list[list], classes: list[str] | None = None) -> str:
    def cells(tag: str, values: list) -> str:
        return "".join(f"<{tag}>{html.escape(str(v))}</{tag}>" for v in values)

    head = f"<tr>{cells('th', header)}</tr>" if header else ""
    body = "".join(
        (f'<tr class="{classes[i]}">' if classes else "<tr>") + cells("td", row) + "</tr>"
        for i, row in enumerate(rows)
    )
    return f"<table>{head}{body}</table>"


def _fmt(value, digits: int = 4) -> str:
    value = as_float(value) if isinstance(value, (int, float, str)) else math.nan
    return "-" if not math.isfinite(value) else f"{value:.{digits}f}"


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


def _confusion_lines(folder: Path, hyps: list[dict]) -> list[str]:
    """The top of errors.txt's confusion list, or the same recomputed from the hypotheses."""
    errors = folder / "errors.txt"
    if errors.is_file():
        lines = []
        for line in errors.read_text().splitlines()[2:]:  # after the title and a blank line
            if not line.strip():
                break
            lines.append(line)
        return lines[:N_CONFUSIONS]
    counts = confusions([align(h["ref"].split(), h["hyp"].split()) for h in hyps if "ref" in h])
    return [f"{n:6d}  {r} -> {h}" for (r, h), n in counts.most_common(N_CONFUSIONS)]


def _per_day_table(per_day: dict, what: str) -> str:
    return html_table(["day", what], [[d, _fmt(v)] for d, v in per_day.items()]) if per_day else ""


def _hypotheses(folder: Path) -> list[dict]:
    path = folder / "hypotheses.jsonl"
    return (
        [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
        if path.is_file()
        else []
    )


def _words_section(folder: Path, summary: dict) -> str:
    """An ``evaluate --lm`` folder: WER beside the PER of the decoded phonemes."""
    split = html.escape(folder.name)
    ci = lambda k: "-".join(_fmt(v) for v in summary.get(f"{k}_ci95", []))  # noqa: E731
    parts = [
        (
            f"<h3>{split}</h3><p>WER <b>{_fmt(summary['wer'])}</b> (95% CI {ci('wer')}), "
            f"PER of the decoded phonemes {_fmt(summary['per'])} (95% CI {ci('per')}) over "
            f"{summary.get('n_sentences', '?')} sentences; LM {html.escape(summary['lm'])}, "
            f"{html.escape(json.dumps(summary.get('options', {})))} from "
            f"{html.escape(str(summary.get('options_from')))}; "
            f"{_fmt(summary.get('decode_ms_per_sentence'), 1)} ms per sentence</p>"
        )
    ]
    parts.append(_per_day_table(summary.get("wer_per_day", {}), "WER"))
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


def _eval_section(folder: Path) -> str:
    summary = _read_json(folder / "summary.json")
    split = html.escape(folder.name)
    if "wer" in summary:
        return _words_section(folder, summary)
    if "per" not in summary:
        return (
            f"<h3>{split}</h3><p>{summary.get('n_sentences', '?')} unlabelled sentences "
            "decoded (no PER)</p>"
        )
    parts = [
        (
            f"<h3>{split}</h3><p>PER <b>{_fmt(summary['per'])}</b> over "
            f"{summary.get('n_sentences', '?')} sentences ({summary.get('edit_distance', '?')} "
            f"edits / {summary.get('n_phonemes', '?')} phonemes), checkpoint of batch "
            f"{summary.get('checkpoint_step', '?')}</p>"
        )
    ]
    parts.append(_per_day_table(summary.get("per_day", {}), "PER"))
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
                        _fmt(h.get("per"), 3),
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


# ----------------------------------------------------------------------------- the report


def _facts(config: RunConfig, record: dict, rows: list[dict]) -> list[list]:
    batches = batch_rows(rows)
    split = eval_split_of(rows, config.data.eval_split)
    points = [(p, s) for s, p in eval_points(rows, split) if math.isfinite(p)]
    wall = record.get("wall_s")
    done = int(batches[-1]["step"]) + 1 if batches else 0
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
                [w.get("step"), f"{as_float(w.get('lr')):.3g}", w["warning"], w.get("message", "")]
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
    images = "\n".join(
        f'<img alt="{html.escape(n)}" src="data:image/png;base64,{base64.b64encode(b).decode()}">'
        for n, b in pngs.items()
    )
    evals = sorted(p.parent for p in (run_dir / "eval").glob("*/summary.json"))
    eval_html = "\n".join(_eval_section(f) for f in evals) or "<p>no evaluation files yet</p>"
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
{eval_html}
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
    verdicts = judge(config, rows, reference_rows(config))
    pngs = plot_all(config, rows)
    out = run_dir / "report"
    for file_name, data in pngs.items():
        atomic_write_bytes(out / file_name, lambda f, data=data: f.write(data))
    page = build_html(
        config, _read_json(run_dir / "run.json"), rows, verdicts, pngs, config_text, run_dir
    )
    atomic_write_text(out / "index.html", page)
    return out / "index.html"
