"""evaluate RUN1 RUN2 ... --ensemble: the mean of the members' log-probabilities, decoded."""

import json

import numpy as np
import pytest
import torch

from brain2text.cli import main
from brain2text.config import load_run
from brain2text.evaluation.ensemble import mean_emissions
from brain2text.evaluation.summary import read_summary
from brain2text.training.loop import train
from tests.conftest import RUNS, tiny_overrides


@pytest.fixture(scope="module")
def runs(prepared_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    for name, extra in (
        ("a", {"train.seed": 1}),
        ("b", {"train.seed": 2}),
        ("k12", {"model.kernel_len": 12}),
    ):
        config = load_run(RUNS / "run13_cpu_demo.yaml", tiny_overrides(prepared_dir, **extra))
        train(config, root / name, quiet=True)
    return root


def test_mean_emissions_renormalise_the_average():
    one = [torch.randn(5, 41).log_softmax(-1).numpy() for _ in range(2)]
    two = [torch.randn(5, 41).log_softmax(-1).numpy() for _ in range(2)]
    mixed = mean_emissions([one, two])
    assert len(mixed) == 2 and all(m.shape == (5, 41) for m in mixed)
    np.testing.assert_allclose(np.exp(mixed[0]).sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(mean_emissions([one, one])[1], one[1], atol=1e-5)
    expected = torch.from_numpy((one[0] + two[0]) / 2).log_softmax(-1).numpy()
    np.testing.assert_allclose(mixed[0], expected, atol=1e-6)


def test_an_ensemble_reports_its_members_beside_it(runs, capsys):
    out = runs / "ens"
    assert (
        main(["evaluate", str(runs / "a"), str(runs / "b"), "--ensemble", "--out", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    summary = read_summary(out / "eval" / "test")
    assert summary.ensemble == [str(runs / "a"), str(runs / "b")]
    for member in ("a", "b"):
        assert main(["evaluate", str(runs / member)]) == 0
        alone = read_summary(runs / member / "eval" / "test")
        assert summary.members[str(runs / member)] == alone.per
    assert f"member {runs / 'a'}" in printed and f"PER {summary.per:.4f}" in printed
    rows = (out / "eval" / "test" / "hypotheses.jsonl").read_text().splitlines()
    assert len(rows) == summary.n_sentences == 15


def test_an_ensemble_of_a_run_with_itself_decodes_as_the_run(runs):
    out = runs / "self"
    assert (
        main(["evaluate", str(runs / "a"), str(runs / "a"), "--ensemble", "--out", str(out)]) == 0
    )
    assert main(["evaluate", str(runs / "a")]) == 0

    def hyps(folder):
        return [
            json.loads(r)["hyp"]
            for r in (folder / "eval" / "test" / "hypotheses.jsonl").read_text().splitlines()  # noqa: E731
        ]

    assert hyps(out) == hyps(runs / "a")


def test_members_that_differ_are_refused_in_one_line(runs, capsys):
    assert (
        main(
            [
                "evaluate",
                str(runs / "a"),
                str(runs / "k12"),
                "--ensemble",
                "--out",
                str(runs / "bad"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "k12: its patching (kernel_len, stride_len) differs" in err
    assert not (runs / "bad").exists()
    assert main(["evaluate", str(runs / "a"), str(runs / "b")]) == 2
    assert "add --ensemble" in capsys.readouterr().err
    assert main(["evaluate", str(runs / "a"), "--ensemble"]) == 2
    assert "at least two run folders" in capsys.readouterr().err
