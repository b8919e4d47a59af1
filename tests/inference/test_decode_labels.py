"""``decode`` and ``evaluate`` score a trial alike: against the dataset's own labels, a
``--lexicon`` dataset's pronunciations and a Brain-to-Text '25 file's released ids, not the CMU
phonemisation of the sentence."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import pytest

from brain2text.cli import main
from brain2text.data.b2t25 import SPLIT_FILES
from brain2text.data.dataset import open_prepared
from brain2text.phonemes import PHONEMES, CmuPhonemizer, clean_text, to_ids
from tests.conftest import RUNS, tiny_overrides

TINY_B2T25 = [
    "model.n_units=16",
    "model.n_layers=1",
    "train.batch_size=8",
    "train.n_batch=6",
    "train.eval_every=3",
    "train.threads=1",
]


def _train(run_file: str, overrides: list[str], out: Path) -> Path:
    assert main(["train", run_file, *overrides, "--out", str(out), "--quiet"]) == 0
    return out


def _evaluated(folder: Path) -> dict[tuple[str, int], dict]:
    rows = [json.loads(r) for r in (folder / "hypotheses.jsonl").read_text().splitlines()]
    return {(r["session"], r["trial"]): r for r in rows}


def _decoded(run: Path, recording: Path, out: Path) -> list[dict]:
    assert main(["decode", str(run), str(recording), "--out", str(out)]) == 0
    return [json.loads(r) for r in out.read_text().splitlines()]


def _agree(decoded: list[dict], evaluated: dict[tuple[str, int], dict], day: str) -> None:
    assert decoded and all("per" in r for r in decoded)
    for row in decoded:
        mine = evaluated[(day, row["trial"])]
        assert row["phonemes"] == mine["hyp"]
        assert row["per"] == pytest.approx(mine["per"], abs=1e-12)


def test_decode_scores_a_lexicon_dataset_with_its_lexicon(raw_dir, tmp_path, capsys):
    day_file = sorted((raw_dir / "test").glob("*.mat"))[0]
    day = day_file.stem
    prepared = tmp_path / "plain"
    assert main(["prepare", str(raw_dir), str(prepared), "--quiet"]) == 0
    test = open_prepared(prepared).split("test")
    first = next(i for i in range(len(test)) if test.session_of(i) == day)
    word = clean_text(test.text(first)).split()[0]
    lexicon = tmp_path / "lexicon.txt"  # a pronunciation CMU never gives this word
    lexicon.write_text(f"{word.upper()}  ZH ZH OY\n")
    lexical = tmp_path / "lexical"
    argv = ["prepare", str(raw_dir), str(lexical), "--lexicon", str(lexicon), "--quiet"]
    assert main(argv) == 0
    relabelled = open_prepared(lexical).split("test")
    cmu = to_ids(CmuPhonemizer()(clean_text(test.text(first))))
    assert relabelled.phonemes(first).tolist() != cmu  # the labels follow the lexicon

    run = _train(str(RUNS / "run13_cpu_demo.yaml"), tiny_overrides(lexical), tmp_path / "run")
    assert main(["evaluate", str(run), "--split", "test"]) == 0
    decoded = _decoded(run, day_file, tmp_path / "decoded.jsonl")
    _agree(decoded, _evaluated(run / "eval" / "test"), day)
    capsys.readouterr()


@pytest.fixture(scope="module")
def b2t25_raw(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("b2t25_labels")
    argv = ["synth", str(root / "raw"), "--layout", "b2t25", "--days", "2"]
    argv += ["--train-per-day", "12", "--test-per-day", "2", "--holdout-per-day", "4", "--quiet"]
    assert main(argv) == 0
    return root


def test_decode_scores_a_b2t25_file_with_its_released_ids(b2t25_raw, tmp_path, capsys):
    raw = b2t25_raw / "raw"
    val_files = sorted(raw.rglob(SPLIT_FILES["val"]))
    assert val_files
    val_file = val_files[-1]
    with h5py.File(val_file, "r+") as f:  # released ids that differ from the CMU phonemisation
        group = f[sorted(f.keys())[0]]
        ids = group["seq_class_ids"][...]
        ids[0] = 40 if ids[0] != 40 else 1
        group["seq_class_ids"][...] = ids
    prepared = tmp_path / "prep"
    assert main(["prepare", str(raw), str(prepared), "--quiet"]) == 0
    data = open_prepared(prepared)
    assert data.manifest.label_check is not None and data.manifest.label_check.n_mismatched >= 1

    overrides = [f"data.path={prepared}", *TINY_B2T25]
    run = _train("b2t25_cpu_demo", overrides, tmp_path / "run")
    assert main(["evaluate", str(run), "--split", "val"]) == 0
    evaluated = _evaluated(run / "eval" / "val")
    day = val_file.parent.name
    decoded = _decoded(run, val_file, tmp_path / "decoded.jsonl")
    _agree(decoded, evaluated, day)
    changed = evaluated[(day, 0)]  # the trial whose released ids were changed
    sentence = next(r["sentence"] for r in decoded if r["trial"] == 0)
    assert changed["ref"].split()[0] == PHONEMES[int(ids[0]) - 1]
    assert changed["ref"].split() != CmuPhonemizer()(clean_text(sentence))
    capsys.readouterr()
