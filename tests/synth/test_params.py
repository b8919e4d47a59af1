import dataclasses
import json
from pathlib import Path

import pytest

from brain2text.errors import ConfigError
from brain2text.synth import DEFAULT_PARAMS, SynthParams


def test_round_trip_through_json():
    data = json.loads(json.dumps(DEFAULT_PARAMS.to_dict()))
    assert SynthParams.from_dict(data) == DEFAULT_PARAMS


@pytest.mark.parametrize(
    "change",
    [{"slip_substitute": 1.5}, {"drift_slow_weight": 0.8, "drift_fast_weight": 0.4},
     {"rest_before_bins": (50, 20)}, {"thin_probs": (0.5, 1.0, 0.5)}, {"latent_dim": 0}],
)  # fmt: skip
def test_impossible_values_are_refused(change):
    with pytest.raises(ConfigError):
        dataclasses.replace(DEFAULT_PARAMS, **change)


def test_unknown_keys_are_named():
    with pytest.raises(ConfigError, match="gian"):
        SynthParams.from_dict({"gian": 0.5})


def test_every_parameter_is_documented():
    doc = (Path(__file__).parents[2] / "docs" / "synthetic-data.md").read_text()
    missing = [f.name for f in dataclasses.fields(SynthParams) if f"`{f.name}`" not in doc]
    assert missing == []
