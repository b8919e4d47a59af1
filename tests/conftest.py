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
