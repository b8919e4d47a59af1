from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
RUNS = REPO / "configs" / "runs"


@pytest.fixture(autouse=True)
def _few_threads():
    # tests run on small tensors: more threads only add contention on small machines
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def raw_dir(tmp_path_factory) -> Path:
    """Tiny synthetic competitionData folder: 3 days, 2 training blocks a day."""
    from brain2text.synth import generate

    out = tmp_path_factory.mktemp("raw") / "competitionData"
    generate(
        out, days=3, train_per_day=20, test_per_day=5, holdout_per_day=5, seed=7, progress=False
    )
    return out


@pytest.fixture(scope="session")
def prepared_dir(raw_dir, tmp_path_factory) -> Path:
    from brain2text.data.prepare import prepare

    out = tmp_path_factory.mktemp("prepared") / "prepared"
    prepare(raw_dir, out, progress=False)
    return out


def tiny_overrides(prepared: Path, **extra) -> list[str]:
    """Overrides that shrink run13_cpu_demo to a few seconds of training."""
    values = {
        "data.path": str(prepared),
        "model.n_units": 16,
        "model.n_layers": 1,
        "model.kernel_len": 8,
        "train.batch_size": 4,
        "train.n_batch": 6,
        "train.eval_every": 3,
        "train.threads": 1,
        **extra,
    }
    return [f"{k}={v}" for k, v in values.items()]
