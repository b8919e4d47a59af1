"""The Optuna space file: each entry a distribution, a malformed one an error naming the key."""

import pytest
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from brain2text.errors import ConfigError
from brain2text.sweep.space import describe, load_space, probe_values


def _space(tmp_path, text):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


def test_ranges_and_choices_become_optuna_distributions(tmp_path):
    space = load_space(
        _space(
            tmp_path,
            """
optim.max_lr: {low: 0.004, high: 0.015, log: true}
augment.white_noise_sd: {low: 0.1, high: 0.8, step: 0.1}
model.n_layers: {low: 3, high: 5}
train.ema_decay: {choices: [null, 0.999, 0.9995]}
""",
        )
    )
    assert list(space) == [
        "optim.max_lr",
        "augment.white_noise_sd",
        "model.n_layers",
        "train.ema_decay",
    ]
    assert space["optim.max_lr"] == FloatDistribution(0.004, 0.015, log=True)
    assert space["augment.white_noise_sd"] == FloatDistribution(0.1, 0.8, step=0.1)
    assert space["model.n_layers"] == IntDistribution(3, 5)
    assert space["train.ema_decay"] == CategoricalDistribution([None, 0.999, 0.9995])
    assert probe_values(space["model.n_layers"]) == [3, 5]
    assert probe_values(space["train.ema_decay"]) == [None, 0.999, 0.9995]
    assert describe(space)["optim.max_lr"] == {"low": 0.004, "high": 0.015, "log": True}


@pytest.mark.parametrize(
    "text, message",
    [
        ("optim.max_lr: {low: 0.01, high: 0.01}", "optim.max_lr: empty range"),
        ("optim.max_lr: {low: 0.02, high: 0.01}", "optim.max_lr: empty range"),
        ("optim.max_lr: {low: 0, high: 0.01, log: true}", "log range needs low > 0"),
        ("optim.max_lr: {low: 0.001, high: 0.01, log: true, step: 0.001}", "not with log"),
        ("optim.max_lr: {low: fast, high: 0.01}", "low and high must be numbers"),
        ("optim.max_lr: {high: 0.01}", "a range takes low, high"),
        ("optim.max_lr: {low: 0.001, high: 0.01, scale: log}", "a range takes low, high"),
        ("train.ema_decay: {choices: []}", "train.ema_decay: choices must be a non-empty list"),
        ("train.ema_decay: {choices: [[0.9]]}", "choices must be numbers"),
        ("train.ema_decay: {choices: [0.9, 0.9]}", "listed twice"),
        ("train.ema_decay: 0.999", "give {low: .., high: ..} or {choices: [..]}"),
        ("[1, 2]", "expected a mapping"),
        ("{}", "expected a mapping"),
        ("a: [b", "not valid YAML"),
    ],
)
def test_a_bad_space_names_the_file_and_key(tmp_path, text, message):
    path = _space(tmp_path, text)
    with pytest.raises(ConfigError, match=None) as info:
        load_space(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_a_missing_space_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="--space .*nope.yaml: cannot read it"):
        load_space(tmp_path / "nope.yaml")
