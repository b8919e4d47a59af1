import pytest
import torch

from brain2text.atomic import atomic_write_text
from brain2text.runs.checkpoint import load_checkpoint, save_checkpoint
from brain2text.errors import DataError, TrainingError


def test_round_trip_and_truncation(tmp_path):
    model = torch.nn.Linear(4, 3)
    path = tmp_path / "ck" / "last.pt"
    save_checkpoint(path, model, {"config": {"a": 1}, "days": ["d0"]}, step=7)
    payload = load_checkpoint(path)
    assert payload["step"] == 7 and payload["config"] == {"a": 1}
    assert torch.equal(payload["model"]["weight"], model.weight)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="not a readable checkpoint") as err:
        load_checkpoint(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(DataError, match="not a brain2text checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_non_finite_weights_are_never_saved(tmp_path):
    model = torch.nn.Linear(2, 2)
    path = tmp_path / "best.pt"
    save_checkpoint(path, model, {}, step=1)
    before = path.read_bytes()
    with torch.no_grad():
        model.weight[0, 0] = float("nan")
    with pytest.raises(TrainingError, match="step 5: parameter weight holds NaN"):
        save_checkpoint(path, model, {}, step=5)
    assert path.read_bytes() == before  # the previous checkpoint is intact


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write_text(tmp_path / "a.json", "{}")
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
