import hashlib
import json

import torch

from brain2text.runs.provenance import collect, git_commit


def test_record_names_code_libraries_machine_data_and_seeds(tmp_path):
    (tmp_path / "manifest.json").write_text('{"format": "x"}')
    record = collect(torch.device("cpu"), tmp_path, seed=5)
    json.dumps(record)  # JSON-ready
    assert record["brain2text_version"]
    assert torch.__version__.startswith(record["libraries"]["torch"])
    assert record["machine"]["device"] == "cpu" and record["machine"]["cpu"]
    expected = hashlib.sha256(b'{"format": "x"}').hexdigest()
    assert record["dataset"]["manifest_sha256"] == expected
    assert record["seeds"]["train.seed"] == 5


def test_git_commit_outside_a_checkout_is_none(tmp_path):
    assert git_commit(tmp_path) is None
