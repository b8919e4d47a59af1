"""What a run trains on: a dataset without block numbers (a reference pickle import) still gets
a validation split, and the run says so in its log."""

import pickle

import numpy as np

from brain2text.config import load_run
from brain2text.data.pickle_import import import_pickle
from brain2text.phonemes import phonemize, to_ids
from brain2text.training.loop import train
from brain2text.training.rundata import load_run_data
from tests.conftest import RUNS

SENTENCES = ("hello world", "i think so", "the cat sat on the mat", "good morning to you")


def _day(seed: int, n: int) -> dict:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(120, 160, n)
    ids = [to_ids(phonemize(SENTENCES[i % len(SENTENCES)])) for i in range(n)]
    return {
        "sentenceDat": [rng.standard_normal((t, 256)) for t in lengths],
        "transcriptions": [SENTENCES[i % len(SENTENCES)] for i in range(n)],
        "phonemes": [np.pad(np.asarray(p, np.int32), (0, 500 - len(p))) for p in ids],
        "timeSeriesLens": np.array(lengths),
        "phoneLens": np.array([len(p) for p in ids]),
    }


def test_a_pickle_import_gets_a_validation_split(tmp_path):
    pkl = tmp_path / "ptDecoder_ctc"
    pkl.write_bytes(
        pickle.dumps(
            {
                "train": [_day(0, 20), _day(1, 10)],
                "test": [_day(2, 3), _day(3, 3)],
                "competition": [],
            }
        )
    )
    import_pickle(pkl, tmp_path / "prepared")
    overrides = [
        f"data.path={tmp_path / 'prepared'}",
        "model.n_units=8",
        "model.n_layers=1",
        "model.kernel_len=8",
        "train.batch_size=4",
        "train.n_batch=2",
        "train.eval_every=2",
        "train.threads=1",
    ]
    config = load_run(RUNS / "run13_cpu_demo.yaml", overrides)
    data = load_run_data(config)
    assert data.eval_name == "val"
    # the last 10% of each day's training trials, in file order: 2 of 20, 1 of 10
    assert data.eval_idx.tolist() == [18, 19, 29]
    assert len(data.train_idx) == 27 and not set(data.train_idx) & set(data.eval_idx)
    train(config, tmp_path / "run", quiet=True)
    log = (tmp_path / "run" / "train.log").read_text()
    assert (
        "2 day(s) have no block numbers (a pickle import): their last 0.1 of training "
        "trials, in file order, are the validation split" in log
    )
    assert "3 val trials" in log
