"""``brain2text prepare``: turn a raw folder into a prepared dataset (docs/prepared-format.md).

It checks the options, picks the layout's path and reports what was left out:

- ``competitionData`` (the 2023 ``.mat`` release): :mod:`brain2text.data.prepare_2023`;
- Brain-to-Text '25 sessions (HDF5): :mod:`brain2text.data.prepare_b2t25`.

Both read a file into trials (:mod:`~brain2text.data.matfile`, :mod:`~brain2text.data.b2t25`),
compute the features (:mod:`~brain2text.data.features`) and write the prepared format
(:mod:`~brain2text.data.writer`); text is cleaned and phonemised with the CMU dictionary
(``--phonemizer cmu``) or with g2p_en's rules as far as they run offline (``reference``,
``brain2text.g2p``), a user lexicon (``--lexicon``) first in both.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from brain2text.data.b2t25 import detect_layout
from brain2text.data.feature_spec import KIND_B2T25, NORMALIZATIONS
from brain2text.data.features import DEFAULT_ARRAYS, DEFAULT_FEATURES, check_feature_choice
from brain2text.data.manifest import MANIFEST_FILE, Manifest
from brain2text.data.prepare_2023 import prepare_2023
from brain2text.data.prepare_b2t25 import prepare_b2t25
from brain2text.errors import ConfigError
from brain2text.g2p import make_phonemizer

log = logging.getLogger(__name__)


def prepare(
    raw_dir: Path,
    out_dir: Path,
    *,
    skip_bad_trials: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    phonemizer: str = "cmu",
    lexicon: Path | str | None = None,
    normalize: str | None = None,
    features: Sequence[str] = DEFAULT_FEATURES,
    arrays: Sequence[str] = DEFAULT_ARRAYS,
) -> Manifest:
    """Prepare ``raw_dir`` into ``out_dir``; return the manifest. ``raw_dir`` holds either
    layout: ``competitionData`` (train/, test/, competitionHoldOut/) or Brain-to-Text '25
    sessions.

    ``normalize``: ``block`` z-scores each block of each file (the 2023 default), ``none``
    keeps the features as recorded (the B2T'25 default: they ship normalised). ``features``
    (any of tx1..tx4, spikePow) and ``arrays`` (6v, 44) choose the 2023 columns: 128 per
    feature and array, feature-major; the default is the standard tx1 + spikePow of area 6v.

    ``phonemizer`` is ``"cmu"`` or ``"reference"`` (see ``brain2text.g2p``); ``lexicon`` a
    CMU-format file read before the CMU dictionary. A bad trial (NaN/Inf, no bins, lengths
    differing, empty sentence, words missing from lexicon and dictionary in ``cmu`` mode)
    raises a DataError naming the file and trial, unless ``skip_bad_trials``: then it is left
    out, listed in its split's ``skipped`` list and counted in ``n_skipped``; every test or
    hold-out trial left out is also named in a warning.
    """
    raw_dir, out_dir = Path(raw_dir), Path(os.path.normpath(Path(out_dir).absolute()))
    features, arrays = tuple(features), tuple(arrays)
    b2t25 = detect_layout(raw_dir) == KIND_B2T25
    if b2t25 and skip_bad_trials:
        raise ConfigError(
            "--skip-bad-trials: Brain-to-Text '25 files are checked whole; "
            "a bad trial stops the preparation, naming it"
        )
    if b2t25 and (features, arrays) != (DEFAULT_FEATURES, DEFAULT_ARRAYS):
        raise ConfigError(
            "--features/--arrays choose among the 2023 files' columns; "
            "Brain-to-Text '25's 512 features are taken as released"
        )
    if not b2t25:
        check_feature_choice(features, arrays)
    if normalize not in (None, *NORMALIZATIONS):
        raise ConfigError(f"--normalize {normalize}: choose one of {', '.join(NORMALIZATIONS)}")
    labeller = make_phonemizer(phonemizer, lexicon)  # a bad lexicon fails before any reading
    if b2t25:
        return prepare_b2t25(
            raw_dir,
            out_dir,
            labeller=labeller,
            overwrite=overwrite,
            progress=progress,
            normalization=normalize or "none",
        )
    manifest = prepare_2023(
        raw_dir,
        out_dir,
        labeller=labeller,
        skip_bad_trials=skip_bad_trials,
        overwrite=overwrite,
        progress=progress,
        normalization=normalize or "block",
        features=features,
        arrays=arrays,
    )
    report_skipped(manifest, out_dir)
    return manifest


def report_skipped(manifest: Manifest, out_dir: Path) -> None:
    """One warning per test or hold-out trial left out (they are never dropped silently), then
    one line of counts per split."""
    for name, split in manifest.splits.items():
        if name == "train":
            continue
        for s in split.skipped:
            log.warning(
                "left out %s trial %d of the %s split: %s%s",
                s.file,
                s.trial,
                name,
                s.reason,
                " (a hold-out submission needs every trial)" if name == "competition" else "",
            )
    counts = {name: s.n_skipped for name, s in manifest.splits.items() if s.n_skipped}
    if counts:
        first = next(s.skipped[0] for s in manifest.splits.values() if s.skipped)
        log.warning(
            "skipped %d bad trials (%s); listed under 'skipped' in %s; first: %s trial %d: %s",
            sum(counts.values()),
            ", ".join(f"{n} in {k}" for k, n in counts.items()),
            out_dir / MANIFEST_FILE,
            first.file,
            first.trial,
            first.reason,
        )
