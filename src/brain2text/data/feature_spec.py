"""What a bin's features are: the feature spec a prepared folder's manifest records and every
checkpoint carries (as a dict: :meth:`FeatureSpec.to_dict`, :meth:`FeatureSpec.from_dict`).

A spec says enough to compute the features again from a raw file: the layout, the fields and
arrays, the normalisation, and the per-day training statistics (``day_norm``) that
``brain2text decode --norm train`` uses. A stored spec without a key (written before it
existed) takes the standard 2023 preparation's value (:data:`STANDARD_2023`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from brain2text.errors import DataError

KIND_2023 = "competitionData"  # the 2023 release's .mat layout (and pickle imports of it)
KIND_B2T25 = "b2t25"  # the Brain-to-Text '25 HDF5 release
KINDS = (KIND_2023, KIND_B2T25)
NORMALIZATIONS = ("none", "block")  # features as recorded, or z-scored per block of a file
N_FEATURES = 256  # the 2023 release's standard features (a manifest without n_features has them)


@dataclass(frozen=True, eq=False)
class DayNorm:
    """One day's training statistics: mean and SD per feature over every bin, each (F,)."""

    mean: np.ndarray  # (F,) float64
    std: np.ndarray  # (F,) float64

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, DayNorm)
            and np.array_equal(self.mean, other.mean)
            and np.array_equal(self.std, other.std)
        )


@dataclass(frozen=True)
class FeatureSpec:
    """What a bin's features are: the layout, columns and normalisation ``prepare`` used."""

    kind: str  # KIND_2023 or KIND_B2T25
    n_features: int
    fields: tuple[str, ...]  # e.g. ("tx1", "spikePow"); ("input_features",) for B2T'25
    arrays: tuple[str, ...]  # e.g. ("6v",)
    normalization: str  # one of NORMALIZATIONS
    feature_names: tuple[str, ...] = ()  # one name per block of columns
    day_norm: Mapping[str, DayNorm] = field(default_factory=dict)  # day -> training statistics

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form a checkpoint stores (lists, floats)."""
        return {
            "kind": self.kind,
            "n_features": self.n_features,
            "fields": list(self.fields),
            "arrays": list(self.arrays),
            "normalization": self.normalization,
            "feature_names": list(self.feature_names),
            "day_norm": {
                day: {"mean": s.mean.tolist(), "std": s.std.tolist()}
                for day, s in self.day_norm.items()
            },
        }

    @classmethod
    def from_dict(
        cls, d: Mapping[str, Any], where: str = "the checkpoint's features"
    ) -> FeatureSpec:
        """The inverse of :meth:`to_dict`; a missing key takes the standard 2023 value."""
        if not isinstance(d, Mapping):
            raise DataError(f"{where}: expected a feature spec (a dict), got {type(d).__name__}")
        r = FieldReader(where)
        day_norm = {}
        for day, stats in r.get(d, "day_norm", dict, {}).items():
            if not isinstance(stats, Mapping) or not {"mean", "std"} <= set(stats):
                raise DataError(f"{where}: 'day_norm.{day}' must hold 'mean' and 'std'")
            day_norm[str(day)] = DayNorm(
                np.asarray(stats["mean"], dtype=np.float64),
                np.asarray(stats["std"], dtype=np.float64),
            )
        return cls(
            kind=r.choice(d, "kind", KINDS, STANDARD_2023.kind),
            n_features=r.count(d, "n_features", STANDARD_2023.n_features),
            fields=r.names(d, "fields", STANDARD_2023.fields),
            arrays=r.names(d, "arrays", STANDARD_2023.arrays),
            normalization=r.choice(d, "normalization", NORMALIZATIONS, "block"),
            feature_names=r.names(d, "feature_names", ()),
            day_norm=day_norm,
        )


STANDARD_2023 = FeatureSpec(
    kind=KIND_2023,
    n_features=N_FEATURES,
    fields=("tx1", "spikePow"),
    arrays=("6v",),
    normalization="block",
)


class FieldReader:
    """Typed reads of a JSON object (a stored spec, a manifest), each failure a one-line
    DataError naming ``where`` and the key, followed by ``advice``."""

    def __init__(self, where: str, advice: str = "") -> None:
        self.where, self.advice = where, advice

    def required(self, d: Mapping, key: str, kind: type, at: str = "") -> Any:
        value = d.get(key)
        # bool is an int in Python: refuse it where a count is expected
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            name = f"{at}.{key}" if at else key
            raise DataError(
                f"{self.where}: missing or malformed '{name}' "
                f"(expected {kind.__name__}){self.advice}"
            )
        return value

    def get(self, d: Mapping, key: str, kind: type, default: Any) -> Any:
        return default if d.get(key) is None else self.required(d, key, kind)

    def count(self, d: Mapping, key: str, default: int) -> int:
        value = d.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise DataError(f"{self.where}: malformed '{key}' {value!r}{self.advice}")
        return value

    def choice(self, d: Mapping, key: str, known: tuple[str, ...], default: str) -> str:
        value = d.get(key, default)
        if value not in known:
            raise DataError(
                f"{self.where}: '{key}' is {value!r}, expected one of {', '.join(known)}"
                f"{self.advice}"
            )
        return str(value)

    def names(self, d: Mapping, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = d.get(key)
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DataError(f"{self.where}: '{key}' must be a list of names{self.advice}")
        return tuple(value)
