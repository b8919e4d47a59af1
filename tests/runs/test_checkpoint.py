import errno

import pytest
import torch

from brain2text.atomic import atomic_write_bytes, atomic_write_text
from brain2text.errors import DataError, StorageError, TrainingError
from brain2text.runs.checkpoint import FORMAT_VERSION, Checkpoint, load_checkpoint, save_checkpoint


def _checkpoint(model: torch.nn.Module, step: int, **fields) -> Checkpoint:
    return Checkpoint(step=step, model=model.state_dict(), config={}, days=["d0"], **fields)


def test_round_trip_and_truncation(tmp_path):
    model = torch.nn.Linear(4, 3)
    path = tmp_path / "ck" / "last.pt"
    written = Checkpoint(
        step=7,
        model=model.state_dict(),
        config={"a": 1},
        days=["d0"],
        features={"kind": "b2t25"},
        evaluations={"eval": {"per": 0.5}},
        optimizer={"state": {}},
        resume={"best": {}},
    )
    save_checkpoint(path, written)
    loaded = load_checkpoint(path)
    assert loaded.format_version == FORMAT_VERSION == 2
    assert loaded.step == 7 and loaded.config == {"a": 1} and loaded.days == ["d0"]
    assert loaded.features == {"kind": "b2t25"} and loaded.evaluations == {"eval": {"per": 0.5}}
    assert loaded.optimizer == {"state": {}} and loaded.resume == {"best": {}}
    assert loaded.ema is None and loaded.scheduler is None and loaded.weights("ema") is None
    assert torch.equal(loaded.weights("raw")["weight"], model.weight)
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
    torch.save({"format": "brain2text-checkpoint", "format_version": 9}, tmp_path / "new.pt")
    with pytest.raises(DataError, match="format version 9 is not supported"):
        load_checkpoint(tmp_path / "new.pt")


def test_non_finite_weights_are_never_saved(tmp_path):
    model = torch.nn.Linear(2, 2)
    path = tmp_path / "best.pt"
    save_checkpoint(path, _checkpoint(model, 1))
    before = path.read_bytes()
    with torch.no_grad():
        model.weight[0, 0] = float("nan")
    with pytest.raises(TrainingError, match="step 5: parameter weight holds NaN"):
        save_checkpoint(path, _checkpoint(model, 5))
    assert path.read_bytes() == before  # the previous checkpoint is intact


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write_text(tmp_path / "a.json", "{}")
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def _disk_full(path):
    """What torch.save raises when the disk fills: a RuntimeError raised while handling the
    OSError of the failed write."""

    def write(f):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:
            raise RuntimeError(
                "[enforce fail at inline_container.cc:672] . unexpected pos"
            ) from exc

    return write


def test_a_full_disk_is_one_line_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model = torch.nn.Linear(2, 2)
    path = tmp_path / "last.pt"
    save_checkpoint(path, _checkpoint(model, 1))
    before = path.read_bytes()

    def full_save(payload, f):
        _disk_full(path)(f)

    monkeypatch.setattr(torch, "save", full_save)
    with pytest.raises(StorageError) as err:
        save_checkpoint(path, _checkpoint(model, 2))
    message = str(err.value)
    assert message == f"{path}: cannot write, the disk is full (the previous file is kept)"
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary left


def test_other_write_errors_name_the_file(tmp_path):
    with pytest.raises(
        StorageError,
        match=r"new\.txt: cannot write, Permission denied "
        r"\(nothing was written\)",
    ):
        atomic_write_bytes(
            tmp_path / "new.txt",
            lambda f: (_ for _ in ()).throw(PermissionError(errno.EACCES, "Permission denied")),
        )
    with pytest.raises(ValueError, match="not a disk problem"):  # other errors pass through
        atomic_write_bytes(
            tmp_path / "x.txt", lambda f: (_ for _ in ()).throw(ValueError("not a disk problem"))
        )
    assert list(tmp_path.iterdir()) == []


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path):
    from brain2text.atomic import atomic_write_folder

    out = tmp_path / "eval" / "test-lm"
    atomic_write_folder(out, {"a.txt": "1", "b.txt": "2"})
    atomic_write_folder(out, {"a.txt": "new"})  # b.txt of the old folder does not linger
    assert (
        sorted(p.name for p in out.iterdir()) == ["a.txt"] and (out / "a.txt").read_text() == "new"
    )

    class Boom(str):
        def encode(self, *args):
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(StorageError, match="the disk is full"):
        atomic_write_folder(out, {"a.txt": "newer", "b.txt": Boom("x")})
    assert (out / "a.txt").read_text() == "new"  # the previous folder is intact
    assert sorted(p.name for p in out.parent.iterdir()) == ["test-lm"]  # no temporary left
