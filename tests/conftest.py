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


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory) -> Path:
    """A tiny seeded causal LM folder (Hugging Face layout) for the LLM tests."""
    pytest.importorskip("transformers", reason="the llm extra is not installed")
    from tests.llm_fixtures import make_tiny_llm

    return make_tiny_llm(tmp_path_factory.mktemp("llm") / "tiny-llm")


class NetworkBlocked(OSError):
    """Raised by the ``no_network`` fixture whenever code tries to reach the network."""


@pytest.fixture
def no_network(monkeypatch):
    """Make every attempt to reach the network (a connection, a name lookup) raise
    :class:`NetworkBlocked`; local (AF_UNIX) sockets keep working."""
    import socket

    def refuse(*args, **kwargs):
        raise NetworkBlocked(f"network access attempted: {args[1:] or args}")

    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def connect(self, address):
        if self.family == socket.AF_UNIX:
            return real_connect(self, address)
        refuse(self, address)

    def connect_ex(self, address):
        if self.family == socket.AF_UNIX:
            return real_connect_ex(self, address)
        refuse(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield
