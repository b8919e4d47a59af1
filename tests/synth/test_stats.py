import pytest

from brain2text.errors import DataError
from brain2text.synth import dataset_stats


def test_stats_table(tiny_release):
    table = dataset_stats(tiny_release)
    for needle in ("mean tx1", "tx1>=tx2>=tx3>=tx4", "resting floor", "tuning corr",
                   "words per minute", "dead electrodes"):  # fmt: skip
        assert needle in table
    line = next(x for x in table.splitlines() if x.startswith("bins breaking"))
    assert line.split()[-1] == "ok"
    assert "train: days / sentences" in table and " 5 / 100" in table


def test_stats_refuses_an_empty_folder(tmp_path):
    with pytest.raises(DataError):
        dataset_stats(tmp_path)
