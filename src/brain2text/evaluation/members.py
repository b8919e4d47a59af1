"""An ensemble's members: their checkpoints on the same trials, checked to agree, and each
one's own word decoding (what the merges of :mod:`brain2text.evaluation.merge` pool)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brain2text.errors import DataError
from brain2text.evaluation.evaluate import EvalTarget, decode_target, load_target
from brain2text.evaluation.scoring import Decoded
from brain2text.evaluation.search import DecodedWords, WordSearch, decode_words, greedy_ids
from brain2text.model.diphones import emitted_classes
from brain2text.phonemes import to_symbols


def _facts(t: EvalTarget) -> dict[str, object]:
    """What the members of an ensemble must agree on (a diphone model emits the phoneme
    log-probabilities a phoneme model does, so the two mix)."""
    return {
        "phoneme set (emitted classes)": emitted_classes(t.model.readout.out_features),
        "training days": tuple(t.loaded.days),
        "patching (kernel_len, stride_len)": (t.config.model.kernel_len, t.config.model.stride_len),
        "input features": t.model.n_features,
    }


def check_members(targets: Sequence[EvalTarget], run_dirs: Sequence[Path]) -> None:
    """One-line DataError naming the first member that differs from the first one."""
    first = targets[0]
    reference = _facts(first)
    for run_dir, target in zip(run_dirs[1:], targets[1:], strict=False):
        for what, value in _facts(target).items():
            if value != reference[what]:
                raise DataError(
                    f"{run_dir}: its {what} differs from {run_dirs[0]}'s "
                    f"({_short(value)} vs {_short(reference[what])}); an ensemble's "
                    "members must agree on it"
                )
    if any(not np.array_equal(t.indices, first.indices) for t in targets[1:]):
        raise DataError(f"{run_dirs[0]}: the members evaluate different trials of the split")


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load_members(
    run_dirs: Sequence[Path],
    split_name: str,
    checkpoint: str = "best",
    weights: str = "raw",
    data_path: Path | None = None,
    device_name: str = "auto",
) -> list[EvalTarget]:
    """The members' checkpoints on the same trials (the first member's data, unless given)."""
    run_dirs = [Path(r) for r in run_dirs]
    if len(run_dirs) < 2:
        raise DataError("--ensemble needs at least two run folders")
    first = load_target(run_dirs[0], split_name, checkpoint, weights, data_path, device_name)
    data_path = data_path or first.data.path  # every member reads the same trials
    targets = [first] + [
        load_target(r, split_name, checkpoint, weights, data_path, device_name)
        for r in run_dirs[1:]
    ]
    check_members(targets, run_dirs)
    return targets


@dataclass(frozen=True)
class MemberWords:
    """One member's pass over the trials: its emissions and its own n-best lists."""

    emissions: list[np.ndarray]
    words: DecodedWords

    def greedy_phonemes(self, k: int) -> str:
        """Trial k's greedy CTC phonemes, as symbols separated by spaces."""
        return " ".join(to_symbols(list(greedy_ids(self.emissions[k]))))


def decode_members(targets: Sequence[EvalTarget], batch_size: int | None = None) -> list[Decoded]:
    """Every member's pass over the trials, its (T', 41) log-probabilities kept."""
    return [decode_target(t, batch_size, keep_log_probs=True) for t in targets]


def member_words(emissions: Sequence[list[np.ndarray]], search: WordSearch) -> list[MemberWords]:
    """Every member decoded to words on its own emissions with ``search``."""
    return [MemberWords(list(e), decode_words(search, e)) for e in emissions]
