import pytest

from brain2text.config import RunConfig, validate
from brain2text.reports.criteria import MET, NOT_MEASURABLE, NOT_MET, Verdict, judge
from tests.conftest import RUNS


def config(eval_split: str = "val", **criteria) -> RunConfig:
    return validate({"name": "r", "data": {"eval_split": eval_split}, "criteria": criteria})


def batches(norms, skipped=None) -> list[dict]:
    skipped = skipped or [0] * len(norms)
    return [
        {
            "step": i,
            "train/loss": 1.0,
            "lr": 1e-3,
            "grad_norm": g,
            "skipped_steps": s,
            "time_per_batch": 0.1,
            "samples_per_s": 10.0,
        }
        for i, (g, s) in enumerate(zip(norms, skipped, strict=False))
    ]


def evals(points, split="val") -> list[dict]:
    return [
        {"step": s, f"{split}/loss": 1.0, f"{split}/per": p, f"{split}/per/day1": p}
        for s, p in points
    ]


def only(verdicts: list[Verdict], name: str) -> Verdict:
    (verdict,) = [v for v in verdicts if v.name == name]
    return verdict


ROWS = batches([1.0] * 10) + evals([(4, 0.40), (9, 0.30)])


def test_nothing_set_nothing_judged():
    assert judge(config(), ROWS) == []


def test_run13_sets_the_notes_criteria():
    from brain2text.config import load_run

    c = load_run(RUNS / "run13_onecycle_safe.yaml").criteria
    assert (c.target_per, c.final_per, c.max_grad_norm, c.no_nonfinite) == (
        0.25,
        0.2046,
        10.0,
        True,
    )
    assert (c.faster_than.run, c.faster_than.per) == ("runs/run11", 0.30)


@pytest.mark.parametrize("target, status", [(0.31, MET), (0.30, NOT_MET), (0.2, NOT_MET)])
def test_target_per_is_strict_on_the_best(target, status):
    v = judge(config(target_per=target), ROWS)[0]
    assert (v.name, v.status) == ("target_per", status)
    assert v.figure == f"best val PER 0.3000 at batch 9 vs target < {target:g}"


@pytest.mark.parametrize("limit, status", [(0.30, MET), (0.29, NOT_MET)])
def test_final_per_uses_the_last_evaluation(limit, status):
    rows = batches([1.0] * 10) + evals([(4, 0.20), (9, 0.30)])
    v = judge(config(final_per=limit, target_per=0.25), rows)
    assert only(v, "final_per").status == status
    assert "last val PER 0.3000 at batch 9" in only(v, "final_per").figure
    assert only(v, "target_per").status == MET  # the best (0.20) counts for target_per


def test_nan_per_is_not_met_for_final_and_not_measurable_for_target():
    rows = batches([1.0] * 5) + evals([(4, "nan")])
    v = judge(config(final_per=0.3, target_per=0.3), rows)
    assert only(v, "final_per").status == NOT_MET
    assert only(v, "target_per").status == NOT_MEASURABLE


def test_no_eval_rows_make_per_criteria_not_measurable():
    rows = batches([1.0] * 5)
    v = judge(config(target_per=0.3, final_per=0.3, faster_than={"run": "x", "per": 0.3}), rows)
    assert [x.status for x in v] == [NOT_MEASURABLE] * 3
    assert all("no val evaluation" in x.figure for x in v)


def test_test_split_prefix_is_read():
    v = judge(config("test", target_per=0.5), batches([1.0]) + evals([(0, 0.4)], "test"))[0]
    assert v.status == MET and "best test PER 0.4000" in v.figure


def test_max_grad_norm():
    met = judge(config(max_grad_norm=10), batches([1.0, 9.9, "nan", 2.0], [0, 0, 1, 1]))[0]
    assert met.status == MET
    assert met.figure.startswith("max pre-clip grad norm 9.9 at batch 1 vs ceiling < 10")
    assert "1 non-finite norms not counted" in met.figure
    not_met = judge(config(max_grad_norm=10), batches([1.0, 10.0, 30.0]))[0]
    assert not_met.status == NOT_MET
    assert "30 at batch 2" in not_met.figure and "2 of 3 batches" in not_met.figure
    none = judge(config(max_grad_norm=10), batches(["nan", "inf"], [1, 2]))[0]
    assert none.status == NOT_MEASURABLE
    assert judge(config(max_grad_norm=10), evals([(0, 0.3)]))[0].status == NOT_MEASURABLE


def test_no_nonfinite():
    assert judge(config(no_nonfinite=True), ROWS)[0].status == MET
    bad = judge(config(no_nonfinite=True), batches([1.0, "nan", "inf", 1.0], [0, 1, 2, 2]))[0]
    assert bad.status == NOT_MET
    assert "2 steps skipped" in bad.figure and "the first at batch 1" in bad.figure
    assert judge(config(no_nonfinite=True), [])[0].status == NOT_MEASURABLE
    assert judge(config(no_nonfinite=False), ROWS) == []  # false: not judged


def test_faster_than():
    c = config(faster_than={"run": "runs/run11", "per": 0.35})
    ours = ROWS  # reaches 0.35 at batch 9
    slower = batches([1.0] * 20) + evals([(9, 0.5), (19, 0.3)])
    faster = batches([1.0] * 20) + evals([(4, 0.3)])
    never = batches([1.0] * 20) + evals([(9, 0.9)])
    v = judge(c, ours, slower)[0]
    assert (v.status, v.figure) == (MET, "val PER <= 0.35 at batch 9 vs runs/run11 at batch 19")
    assert judge(c, ours, faster)[0].status == NOT_MET
    assert judge(c, ours, never)[0].status == MET
    assert judge(c, batches([1.0] * 10) + evals([(9, 0.9)]), faster)[0].status == NOT_MET
    neither = judge(c, batches([1.0] * 10) + evals([(9, 0.9)]), never)[0]
    assert neither.status == NOT_MEASURABLE and "never" in neither.figure
    missing = judge(c, ours, None)[0]
    assert missing.status == NOT_MEASURABLE and "runs/run11: no metrics.jsonl" in missing.figure


def test_faster_than_reads_the_other_runs_split():
    c = config(faster_than={"run": "other", "per": 0.35})
    assert judge(c, ROWS, batches([1.0]) + evals([(2, 0.3)], "test"))[0].status == NOT_MET


def test_verdict_is_frozen():
    v = Verdict("target_per", MET, "x")
    with pytest.raises(AttributeError):
        v.status = NOT_MET
