import pytest
import yaml

from brain2text.config import apply_overrides, load_run, to_yaml, validate
from brain2text.errors import ConfigError
from tests.conftest import RUNS


def test_the_run_files_are_found():
    # the test below is parametrised by a glob: were RUNS to move, it would silently skip
    assert {"baseline", "baseline_cpu", "run13_cpu_demo", "run13_onecycle_safe"} <= {
        p.stem for p in RUNS.glob("*.yaml")
    }


@pytest.mark.parametrize("path", sorted(RUNS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_run_file_loads(path):
    config = load_run(path)
    assert config.name == path.stem
    assert validate(config.to_dict()) == config  # resolved config round-trips


def test_run13_holds_every_value_of_the_note():
    c = load_run(RUNS / "run13_onecycle_safe.yaml")
    assert c.parent == "run12_baseline_hybrid"  # the note: "Changes from Run #12"
    assert (c.optim.schedule, c.optim.max_lr, c.optim.pct_start) == ("onecycle", 0.01, 0.1)
    assert (c.optim.div_factor, c.optim.final_div_factor, c.optim.anneal_strategy) == (
        25.0,
        1000.0,
        "cos",
    )
    assert (c.optim.optimizer, c.optim.l2_decay, c.optim.betas, c.optim.eps) == (
        "adam",
        1e-5,
        (0.9, 0.999),
        1e-8,
    )
    m = c.model
    assert (m.n_units, m.n_layers, m.dropout, m.use_layer_norm, m.input_dropout) == (
        1024,
        5,
        0.4,
        True,
        0.0,
    )
    assert (m.bidirectional, m.stride_len, m.kernel_len, m.gaussian_smooth_width) == (
        True,
        4,
        32,
        2.0,
    )
    a = c.augment
    assert (a.white_noise_sd, a.constant_offset_sd) == (0.3, 0.1)
    assert (a.time_mask_prob, a.time_mask_width, a.time_mask_max_masks) == (0.1, 40, 2)
    assert (a.freq_mask_prob, a.freq_mask_width, a.freq_mask_max_masks) == (0.1, 12, 2)
    t = c.train
    assert (t.batch_size, t.n_batch, t.use_amp, t.num_workers) == (64, 10000, False, 4)
    assert c.optim.grad_clip_norm == 1.5


def test_baseline_is_the_reference_recipe():
    c = load_run(RUNS / "baseline.yaml")
    assert (c.optim.eps, c.optim.max_lr, c.optim.schedule) == (0.1, 0.02, "constant")
    assert (c.augment.white_noise_sd, c.augment.constant_offset_sd) == (0.8, 0.2)


def test_child_inherits_and_overrides(tmp_path):
    (tmp_path / "parent.yaml").write_text(
        "model: {n_units: 64, n_layers: 3}\ntrain: {n_batch: 7, eval_every: 5}\n"
    )
    (tmp_path / "child.yaml").write_text("parent: parent\nmodel: {n_units: 32}\n")
    c = load_run(tmp_path / "child.yaml", ["train.n_batch=50", "optim.betas=[0.8, 0.9]"])
    assert (c.name, c.parent) == ("child", "parent")
    assert (c.model.n_units, c.model.n_layers, c.train.n_batch) == (32, 3, 50)
    assert c.optim.betas == (0.8, 0.9)


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.n_batchx=3", "train.n_batchx"),
        ("train.n_batch=abc", "train.n_batch"),
        ("model.dropout=1.5", "model.dropout"),
        ("optim.schedule=cosine", "optim.schedule"),
        ("nosuch.key=1", "nosuch"),
    ],
)
def test_bad_overrides_name_the_key(override, key):
    with pytest.raises(ConfigError) as err:
        load_run(RUNS / "baseline.yaml", [override])
    assert key in str(err.value) and "\n" not in str(err.value)


def test_unknown_key_in_file(tmp_path):
    (tmp_path / "r.yaml").write_text("model: {n_unitz: 3}\n")
    with pytest.raises(ConfigError, match=r"model\.n_unitz: unknown key"):
        load_run(tmp_path / "r.yaml")


def test_parent_cycle_and_missing_parent(tmp_path):
    (tmp_path / "a.yaml").write_text("parent: b\n")
    (tmp_path / "b.yaml").write_text("parent: a\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_run(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("parent: nothere\n")
    with pytest.raises(ConfigError, match="not found"):
        load_run(tmp_path / "c.yaml")


def test_override_syntax():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        apply_overrides({}, ["train.n_batch"])


def test_yaml_round_trip(tmp_path):
    c = load_run(RUNS / "run13_cpu_demo.yaml")
    # the resolved YAML is complete: it validates alone, without its parent files
    assert validate(yaml.safe_load(to_yaml(c))) == c


def test_flatten_and_config_differences():
    from brain2text.config import config_differences, flatten

    assert flatten({"optim": {"max_lr": 0.02, "betas": [0.9, 0.999]}, "name": "a"}) == {
        "optim.max_lr": 0.02,
        "optim.betas": [0.9, 0.999],
        "name": "a",
    }
    assert config_differences([{"x": {"y": 1}}, {"x": {"y": 1, "z": [1, 2]}}]) == [
        ("x.z", [None, [1, 2]])
    ]
    # a section set in one config and null in the other shows by its sub-keys only
    assert config_differences([{"f": {"run": "r", "per": 0.3}}, {"f": None}]) == [
        ("f.run", ["r", None]),
        ("f.per", [0.3, None]),
    ]
    assert (
        config_differences([{"name": "a", "k": 1}, {"name": "b", "k": 1}], ignore=("name",)) == []
    )
    assert config_differences([{"name": "a"}, {"name": "b"}]) == [("name", ["a", "b"])]


def test_packaged_run_files_load_by_name_from_anywhere(tmp_path, monkeypatch):
    from brain2text.config import packaged_run_files

    monkeypatch.chdir(tmp_path)  # no configs/ folder here
    packaged = packaged_run_files()
    assert {"baseline", "baseline_cpu", "run13_cpu_demo", "run13_onecycle_safe"} <= packaged.keys()
    c = load_run("run13_cpu_demo")  # its parent, run13_onecycle_safe, is packaged too
    assert (c.name, c.parent) == ("run13_cpu_demo", "run13_onecycle_safe")
    assert c == load_run(RUNS / "run13_cpu_demo.yaml")
    with pytest.raises(ConfigError, match="nothere: no such run file, nor a packaged run"):
        load_run("nothere")
    with pytest.raises(ConfigError, match="nothere.yaml: run file not found"):
        load_run("nothere.yaml")


def test_a_local_run_file_may_name_a_packaged_parent(tmp_path):
    (tmp_path / "run14.yaml").write_text("parent: run13_onecycle_safe\noptim: {max_lr: 0.012}\n")
    c = load_run(tmp_path / "run14.yaml")
    assert (c.name, c.parent, c.optim.max_lr) == ("run14", "run13_onecycle_safe", 0.012)
    assert c.model == load_run("run13_onecycle_safe").model


def test_config_list_prints_the_packaged_runs(capsys):
    from brain2text.cli import main

    assert main(["config", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == sorted(line.split()[0] for line in lines)
    assert any(line.startswith("run13_onecycle_safe ") and "OneCycleLR" in line for line in lines)


# ----------------------------------------------------------------------------- runnable configs


def _onecycle_raises(pct_start: float, n_batch: int) -> bool:
    import warnings

    import torch
    from torch.optim.lr_scheduler import OneCycleLR

    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scheduler = OneCycleLR(optimizer, max_lr=1.0, total_steps=n_batch, pct_start=pct_start)
            for _ in range(n_batch):
                optimizer.step()
                scheduler.step()
    except ZeroDivisionError:
        return True
    return False


def _onecycle(pct_start: float, n_batch: int, *extra: str) -> list[str]:
    return [
        f"optim.pct_start={pct_start}",
        f"train.n_batch={n_batch}",
        "train.eval_every=1",
        *extra,
    ]


def test_onecycle_is_refused_exactly_where_torch_cannot_schedule_it():
    from brain2text.sections import onecycle_warmup_end

    refused = []
    for n_batch in range(1, 41):
        for pct_start in (0.01, 0.05, 0.1, 0.125, 0.2, 0.25, 1 / 3, 0.3, 0.5, 0.9):
            torch_fails = _onecycle_raises(pct_start, n_batch)
            assert (onecycle_warmup_end(pct_start, n_batch) == 0) == torch_fails
            if torch_fails:
                refused.append((pct_start, n_batch))
    assert (0.1, 10) in refused and (0.5, 2) in refused and (0.25, 4) in refused
    assert all(round(p * n) == 1 for p, n in refused)


def test_onecycle_one_batch_warmup_is_a_one_line_error_naming_the_keys():
    with pytest.raises(ConfigError) as err:
        load_run(RUNS / "run13_onecycle_safe.yaml", _onecycle(0.1, 10))
    message = str(err.value)
    assert "optim.pct_start=0.1 x train.n_batch=10 = 1" in message and "OneCycleLR" in message
    assert "\n" not in message and message.startswith(str(RUNS / "run13_onecycle_safe.yaml"))
    for pct_start, n_batch in ((0.1, 9), (0.1, 11), (0.1, 2), (0.2, 10)):  # its neighbours run
        load_run(RUNS / "run13_onecycle_safe.yaml", _onecycle(pct_start, n_batch))


def test_a_warmup_as_long_as_the_run_is_refused():
    run = RUNS / "run13_warmcos.yaml"
    load_run(run, ["train.n_batch=1001", "train.eval_every=1"])  # warm-up 1000: one batch left
    with pytest.raises(ConfigError, match=r"optim\.warmup_batches=1000 >= train\.n_batch=1000"):
        load_run(run, ["train.n_batch=1000", "train.eval_every=1"])
    # another schedule does not use the key
    load_run(run, ["train.n_batch=10", "train.eval_every=1", "optim.schedule=constant"])


def test_eval_every_beyond_the_run_is_refused():
    load_run(RUNS / "baseline.yaml", ["train.n_batch=100", "train.eval_every=100"])
    with pytest.raises(ConfigError, match=r"train\.eval_every=101 > train\.n_batch=100"):
        load_run(RUNS / "baseline.yaml", ["train.n_batch=100", "train.eval_every=101"])


def test_days_per_batch_beyond_the_batch_is_refused():
    base = ["train.batch_size=4", "train.length_bucket_pool=null"]
    load_run(RUNS / "baseline.yaml", [*base, "train.days_per_batch=4"])
    with pytest.raises(ConfigError, match=r"train\.days_per_batch=5 > train\.batch_size=4"):
        load_run(RUNS / "baseline.yaml", [*base, "train.days_per_batch=5"])


def test_every_problem_is_named_on_the_one_line():
    with pytest.raises(ConfigError) as err:
        load_run(RUNS / "run13_onecycle_safe.yaml", ["train.n_batch=10"])
    assert "optim.pct_start" in str(err.value) and "train.eval_every=100" in str(err.value)
    assert "\n" not in str(err.value) and "Value error" not in str(err.value)


def test_a_stored_config_is_read_without_the_run_checks():
    # a run that already trained (its checkpoint's or config.yaml's config) still loads
    data = load_run(RUNS / "baseline.yaml").to_dict()
    data["train"].update(n_batch=2, eval_every=3)
    assert validate(data).train.eval_every == 3
    with pytest.raises(ConfigError, match="train.eval_every=3 > train.n_batch=2"):
        validate(data, runnable=True)
