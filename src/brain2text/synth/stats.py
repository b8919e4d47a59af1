"""Read a written release back and check it against the targets of SYNTH.md.

Everything measurable from the files is measured from the files (one file in memory at a
time). What needs the hidden alignment or tuning (drift of tuning across days, how
informative each array is) comes from the generator's ground truth, rebuilt from
``synth_manifest.json``; it is skipped for folders without one (e.g. real data).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.io

from brain2text.errors import DataError
from brain2text.phonemes import clean_text, words_of

from .electrodes import DORSAL_6V, VENTRAL_6V, array_of
from .params import SynthParams
from .schedule import SPLITS
from .session import build_world, correlation_by_gap, tuning_correlation
from .writer import ANSWERS_FILE, MANIFEST_FILE

TARGET_TX_MEANS = (0.57, 0.31, 0.22, 0.10)
TX_TOLERANCE = 0.2  # relative
REST_BINS = 10  # the first bins of every trial are rest: they measure the spikePow floor
BURST_LEVEL = 2000.0  # uV^2
GAP_WINDOWS = ((2.0, 7.0), (25.0, 35.0), (55.0, 65.0))
GAP_TARGETS = ((0.75, 0.95), (0.45, 0.65), (0.32, 0.52))  # around 0.85, 0.55, 0.42
N_6V = 128


@dataclass
class _Tally:
    """Running totals over the files read so far."""

    n_sentences: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SPLITS})
    n_days: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SPLITS})
    texts: dict[str, list[str]] = field(default_factory=lambda: {s: [] for s in SPLITS})
    lengths: list[int] = field(default_factory=list)
    tx_sums: np.ndarray = field(default_factory=lambda: np.zeros(4))
    n_values: int = 0
    nested_violations: int = 0
    floors: list[np.ndarray] = field(default_factory=list)  # per live channel of each day
    dead_fraction: list[float] = field(default_factory=list)
    burst_values: int = 0
    max_pow: float = 0.0
    block_shift: list[float] = field(default_factory=list)


def _texts(m: dict) -> list[str]:
    raw = np.atleast_1d(m["sentenceText"])
    return [str("".join(r) if raw.ndim > 1 else r).strip() for r in raw]


def _block_shift(trials: list[np.ndarray], blocks: np.ndarray, live: np.ndarray) -> float | None:
    """SD of block means across a day's blocks over the mean within-block SD (live 6v cols)."""
    ids = np.unique(blocks)
    if len(ids) < 2 or not live.any():
        return None
    means, sds = [], []
    for b in ids:
        x = np.concatenate([t for t, bb in zip(trials, blocks, strict=True) if bb == b])[:, live]
        means.append(x.mean(axis=0))
        sds.append(x.std(axis=0))
    return float(np.mean(np.std(means, axis=0) / (np.mean(sds, axis=0) + 1e-8)))


def _read_file(path: Path, split: str, tally: _Tally) -> None:
    try:
        m = scipy.io.loadmat(path)
        tx = [[m[f"tx{k}"][0, i] for i in range(m["tx1"].shape[1])] for k in range(1, 5)]
        pow_ = [m["spikePow"][0, i] for i in range(m["spikePow"].shape[1])]
        blocks = np.asarray(m["blockIdx"]).ravel()
    except (KeyError, IndexError, ValueError, OSError) as err:
        raise DataError(f"{path}: not a readable day file ({err})") from err
    tally.n_days[split] += 1
    tally.n_sentences[split] += len(pow_)
    if split != "competitionHoldOut":
        tally.texts[split].extend(_texts(m))
    tally.lengths.extend(p.shape[0] for p in pow_)
    for k in range(4):
        tally.tx_sums[k] += sum(float(t.sum()) for t in tx[k])
    tally.n_values += sum(p.size for p in pow_)
    tally.nested_violations += sum(
        int((tx[k][i] < tx[k + 1][i]).sum()) for k in range(3) for i in range(len(pow_))
    )
    tally.burst_values += sum(int((p > BURST_LEVEL).sum()) for p in pow_)
    tally.max_pow = max(tally.max_pow, max(float(p.max()) for p in pow_))
    if split == "train":
        live = sum(t.sum(axis=0) for t in tx[0]) > 0  # a dead electrode never crosses
        tally.dead_fraction.append(float(1.0 - live.mean()))
        rest = np.median(np.stack([p[:REST_BINS].mean(axis=0) for p in pow_]), axis=0)
        tally.floors.append(rest[live])
        shift = _block_shift([p[:, :N_6V] for p in pow_], blocks, live[:N_6V])
        if shift is not None:
            tally.block_shift.append(shift)


def _row(name: str, value: str, target: str = "", ok: bool | None = None) -> tuple[str, ...]:
    mark = "" if ok is None else ("ok" if ok else "MISS")
    return (name, value, target, mark)


def _within(x: float, lo: float, hi: float) -> bool:
    return bool(lo <= x <= hi)


def _ground_truth(manifest: dict) -> list[tuple[str, ...]]:
    params = SynthParams.from_dict(manifest["params"])
    world = build_world(int(manifest["seed"]), params)
    rows = []
    by_gap = correlation_by_gap(tuning_correlation(world), GAP_WINDOWS)
    for (lo, hi), value, (tlo, thi) in zip(GAP_WINDOWS, by_gap, GAP_TARGETS, strict=True):
        rows.append(_row(f"tuning corr, {lo:g}-{hi:g} days apart (truth)", f"{value:.2f}",
                         f"{tlo:.2f}-{thi:.2f}", _within(value, tlo, thi)))  # fmt: skip
    arrays, scale = array_of(), world.channel_scale
    info = {a: float((scale[arrays == a] ** 2).sum()) for a in (VENTRAL_6V, DORSAL_6V)}
    ratio = info[VENTRAL_6V] / info[DORSAL_6V]
    rows.append(_row("ventral / dorsal 6v information (truth)", f"{ratio:.2f}", "1.5-3",
                     _within(ratio, 1.5, 3.0)))  # fmt: skip
    tuned = float(np.mean(scale[:N_6V] >= params.dorsal_scale * 0.999))
    rows.append(_row("tuned 6v electrodes (truth)", f"{tuned:.2f}", "0.50-0.67",
                     _within(tuned, 0.45, 0.70)))  # fmt: skip
    area44 = float((scale[N_6V:] ** 2).sum() / (scale[:N_6V] ** 2).sum())
    rows.append(_row("area-44 / 6v information (truth)", f"{area44:.3f}", "< 0.05",
                     area44 < 0.05))  # fmt: skip
    return rows


def dataset_stats(out_dir: Path) -> str:
    """Human-readable table of the release in ``out_dir`` against the SYNTH.md targets."""
    out_dir = Path(out_dir)
    tally = _Tally()
    files = [(s, p) for s in SPLITS for p in sorted((out_dir / s).glob("t12.*.mat"))]
    if not files:
        raise DataError(f"{out_dir}: no t12.*.mat files under train/, test/ or "
                        "competitionHoldOut/")  # fmt: skip
    for split, path in files:
        _read_file(path, split, tally)
    answers_path = out_dir / ANSWERS_FILE
    answers = json.loads(answers_path.read_text()) if answers_path.exists() else {}
    tally.texts["competitionHoldOut"] = [t for day in answers.values() for t in day]

    rows = [_row(f"{s}: days / sentences", f"{tally.n_days[s]} / {tally.n_sentences[s]}")
            for s in SPLITS]  # fmt: skip
    lengths = np.array(tally.lengths)
    rows.append(_row("trial length, bins (mean, min, max)",
                     f"{lengths.mean():.0f}, {lengths.min()}, {lengths.max()}",
                     "~300, ~100, ~900", _within(lengths.mean(), 250, 350)
                     and lengths.min() >= 80 and lengths.max() <= 950))  # fmt: skip
    all_texts = [t for ts in tally.texts.values() for t in ts]
    n_words = np.array([len(words_of(t)) for t in all_texts])
    if n_words.size:
        rows.append(_row("words per sentence (mean, min, max)",
                         f"{n_words.mean():.2f}, {n_words.min()}, {n_words.max()}", "~6.5, 2, 13",
                         _within(n_words.mean(), 5.5, 7.5) and n_words.min() >= 2
                         and n_words.max() <= 13))  # fmt: skip
        minutes = lengths.sum() * 0.02 / 60
        wpm = n_words.sum() / minutes if len(all_texts) == len(lengths) else float("nan")
        rows.append(_row("words per minute", f"{wpm:.1f}", "~62", _within(wpm, 55, 70)))
    train = {clean_text(t) for t in tally.texts["train"]}
    held = {clean_text(t) for t in tally.texts["test"] + tally.texts["competitionHoldOut"]}
    overlap = len(train & held)
    rows.append(_row("train sentences also in test/hold-out", str(overlap), "0", overlap == 0))
    means = tally.tx_sums / max(tally.n_values, 1)
    for k, (mean, target) in enumerate(zip(means, TARGET_TX_MEANS, strict=True)):
        rows.append(_row(f"mean tx{k + 1} per bin", f"{mean:.3f}", f"~{target:.2f}",
                         abs(mean - target) <= TX_TOLERANCE * target))  # fmt: skip
    rows.append(_row("bins breaking tx1>=tx2>=tx3>=tx4", str(tally.nested_violations), "0",
                     tally.nested_violations == 0))  # fmt: skip
    if tally.floors:
        floors = np.concatenate(tally.floors)
        p5, p50, p95 = np.percentile(floors, [5, 50, 95])
        rows.append(_row("spikePow resting floor, uV^2 (p5, median, p95)",
                         f"{p5:.0f}, {p50:.0f}, {p95:.0f}", "150-900, ~500",
                         _within(p50, 400, 600) and p5 >= 100 and p95 <= 1000))  # fmt: skip
        dead = float(np.mean(tally.dead_fraction))
        rows.append(_row("dead electrodes (mean fraction per day)", f"{dead:.3f}", "~0.03-0.1",
                         _within(dead, 0.01, 0.15)))  # fmt: skip
    burst = tally.burst_values / max(tally.n_values, 1)
    rows.append(_row("spikePow values > 2000 (fraction), max", f"{burst:.5f}, "
                     f"{tally.max_pow:.0f}", "< 0.002, 2000-5000", burst < 0.002
                     and BURST_LEVEL <= tally.max_pow <= 5000))  # fmt: skip
    if tally.block_shift:
        shift = float(np.mean(tally.block_shift))
        rows.append(_row("block-mean shift of 6v spikePow (within-block SDs)", f"{shift:.2f}",
                         "> 0.1 (block z-scoring helps)", shift > 0.1))  # fmt: skip
    manifest_path = out_dir / MANIFEST_FILE
    if manifest_path.exists():
        rows.extend(_ground_truth(json.loads(manifest_path.read_text())))
    return format_table(out_dir, rows)


def format_table(out_dir: Path, rows: list[tuple[str, ...]]) -> str:
    """Aligned plain-text table with a one-line verdict."""
    header = ("check", "value", "target", "")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = [f"synthetic release: {out_dir}"]
    for r in [header, *rows]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    missed = [r[0] for r in rows if r[3] == "MISS"]
    lines.append("all targets met" if not missed else f"targets missed: {', '.join(missed)}")
    return "\n".join(lines)
