"""The Python API of a trained run: the same hypotheses as evaluate, batch-independent, new
days, bad input; and `brain2text decode` on a raw file nobody prepared."""

import json
import warnings

import numpy as np
import pytest

from brain2text import Decoder, Decoding
from brain2text.cli import main
from brain2text.config import load_run
from brain2text.data.dataset import open_prepared
from brain2text.errors import DataError
from brain2text.inference.decoder import NewDayWarning
from brain2text.training.loop import train
from tests.conftest import RUNS, tiny_overrides


@pytest.fixture(scope="module")
def run(prepared_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("decoder") / "run"
    config = load_run(RUNS / "run13_cpu_demo.yaml", tiny_overrides(prepared_dir))
    assert config.model.bidirectional
    train(config, folder, quiet=True)
    assert main(["evaluate", str(folder), "--split", "test"]) == 0
    return folder


def _evaluated(run):
    return [
        json.loads(line)
        for line in (run / "eval" / "test" / "hypotheses.jsonl").read_text().splitlines()
    ]


def test_a_trial_decoded_alone_gets_the_hypothesis_evaluate_gave_it(run, prepared_dir):
    dec = Decoder.load(run)
    test = open_prepared(prepared_dir).split("test")
    rows = _evaluated(run)
    assert len(rows) == len(test)
    for i, row in enumerate(rows):
        out = dec.decode(test.features(i), day=row["session"])
        assert isinstance(out, Decoding) and " ".join(out.phonemes) == row["hyp"]
        assert out.day == out.day_used == row["session"] and out.text is None
        assert out.logits.shape == (dec.model.output_lengths(np.array(len(test.features(i)))), 41)


def test_batch_results_do_not_depend_on_the_batch(run, prepared_dir):
    dec = Decoder.load(run)
    test = open_prepared(prepared_dir).split("test")
    days = open_prepared(prepared_dir).days
    trials = [(test.features(i), days[test.day_index[i]]) for i in range(len(test))]
    alone = [dec.decode(x, d) for x, d in trials]
    order = np.random.default_rng(0).permutation(len(trials))
    batched = dec.decode_batch([trials[k] for k in order], batch_size=4)
    for k, out in zip(order, batched, strict=False):
        assert out.phonemes == alone[k].phonemes
        np.testing.assert_allclose(out.logits, alone[k].logits, atol=1e-5)


def test_a_new_day_borrows_the_nearest_earlier_days_layer(run, prepared_dir):
    dec = Decoder.load(run)
    x = open_prepared(prepared_dir).split("test").features(0)
    later = dec.days[1][:-2] + "06"  # after day 1, before day 2 by date
    with pytest.warns(NewDayWarning, match=f"day {later} .* input layer of {dec.days[1]}"):
        out = dec.decode(x, later)
    assert out.day == later and out.day_used == dec.days[1]
    assert out.phonemes == dec.decode(x, dec.days[1]).phonemes
    with pytest.raises(DataError, match="earlier than all of them"):
        dec.decode(x, "t01.2000.01.01")


@pytest.mark.parametrize(
    "features, message",
    [
        (np.zeros((40, 255), np.float32), "trial 0 of shape (40, 255): expected (bins, 256)"),
        (np.zeros(40, np.float32), "expected (bins, 256)"),
        (np.zeros((40, 256), bool), "trial 0 of dtype bool: expected real numbers"),
        (np.full((40, 256), "a"), "expected real numbers"),
        ([[1.0, 2.0], [3.0]], "trial 0 is not an array of numbers"),
        (np.zeros((3, 256), np.float32), "trial 0: 3 bins, fewer than model.kernel_len=8"),
        (np.where(np.eye(40, 256) > 0, np.nan, 0.0), "trial 0 of 40 bins: 40 NaN/Inf values"),
    ],
)
def test_bad_features_are_one_line_errors(run, features, message):
    dec = Decoder.load(run)
    with pytest.raises(DataError) as info:
        dec.decode(features, dec.days[0])
    assert message in str(info.value) and "\n" not in str(info.value)


def test_decode_reads_a_raw_file_nobody_prepared(run, raw_dir, tmp_path, capsys):
    day = open_prepared(load_run(run / "config.yaml").data.path).days[0]
    out = tmp_path / "decoded.jsonl"
    assert main(["decode", str(run), str(raw_dir / "test" / f"{day}.mat"), "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    evaluated = [r for r in _evaluated(run) if r["session"] == day]
    assert [r["phonemes"] for r in rows] == [r["hyp"] for r in evaluated]
    assert all(r["day_used"] == day and "sentence" in r and 0 <= r["per"] for r in rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a known day: no warning
        assert main(["decode", str(run), str(raw_dir / "test" / f"{day}.mat")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1].startswith(f"{day} trial {len(rows) - 1}: ")


@pytest.mark.parametrize(
    "extra", [["--llm", "x"], ["--alpha", "0.5"], ["--acoustic-scale", "1"], ["--llm-gate", "-5"]]
)
def test_decode_refuses_rescoring_options_without_an_lm(run, raw_dir, extra, capsys):
    day = open_prepared(load_run(run / "config.yaml").data.path).days[0]
    assert main(["decode", str(run), str(raw_dir / "test" / f"{day}.mat"), *extra]) == 2
    err = capsys.readouterr().err
    assert "rescore the n-best of --lm: give --lm" in err and err.count("\n") == 1


@pytest.mark.parametrize("extra", [["--llm-end", "."], ["--llm-dtype", "bf16"]])
def test_decode_refuses_llm_scoring_options_without_an_llm(run, raw_dir, extra, capsys):
    day = open_prepared(load_run(run / "config.yaml").data.path).days[0]
    assert main(["decode", str(run), str(raw_dir / "test" / f"{day}.mat"), *extra]) == 2
    err = capsys.readouterr().err
    assert "give --llm MODEL" in err and err.count("\n") == 1


def test_decode_names_a_file_of_the_wrong_kind(run, tmp_path, capsys):
    (tmp_path / "x.hdf5").write_bytes(b"")
    assert main(["decode", str(run), str(tmp_path / "x.hdf5")]) == 2
    assert "trained on competitionData features" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "safetensors"])
def test_export_writes_a_model_that_gives_the_decoders_logits(run, prepared_dir, tmp_path, fmt):
    pytest.importorskip("onnxruntime", reason="the export extra is not installed")
    import torch

    dec = Decoder.load(run)
    day = dec.days[1]
    out = tmp_path / f"model.{fmt}"
    args = ["export", str(run), "--format", fmt, "--out", str(out)]
    assert main(args + ([] if fmt == "safetensors" else ["--day", day])) == 0
    side = json.loads(out.with_name(out.name + ".json").read_text())
    assert side["n_features"] == 256 and len(side["feature_names"]) == 256
    assert side["feature_names"][0] == "tx1 of area 6v (128 electrodes) #0"
    x = open_prepared(prepared_dir).split("test").features(0)
    want = dec.decode(x, day).logits
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = session.run(
            ["logits"], {"features": np.array(x)[None], "day": np.array([0], dtype=np.int64)}
        )[0][0]
        assert side["days"] == [day]
    elif fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            model = torch.jit.load(str(out))
        got = model(torch.from_numpy(np.array(x))[None], torch.tensor([0]))[0].detach().numpy()
    else:
        from safetensors.torch import load_file

        state = load_file(str(out))
        assert torch.equal(state["day_weights"], dec.model.day_weights.detach())
        return
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_decode_can_normalise_with_the_days_training_statistics(run, raw_dir, tmp_path, capsys):
    from brain2text.data.recording import read_recording

    dec = Decoder.load(run)
    day = dec.days[0]
    assert set(dec.feature_spec.day_norm) == set(dec.days)
    recording = raw_dir / "test" / f"{day}.mat"
    by_file = read_recording(recording, dec.feature_spec)
    by_train = read_recording(recording, dec.feature_spec, "train")
    assert len(by_file) == len(by_train) and by_train[0].features.dtype == np.float32
    assert not np.allclose(by_file[0].features, by_train[0].features)
    from brain2text.data.features import trial_features
    from brain2text.data.matfile import read_session

    stats = dec.feature_spec.day_norm[day]  # over every bin of the day's training file
    train_file = read_session(raw_dir / "train" / f"{day}.mat")
    bins = np.concatenate([trial_features(train_file, i) for i in range(train_file.n_trials)])
    np.testing.assert_allclose(stats.mean, bins.mean(0))
    np.testing.assert_allclose(stats.std, bins.std(0))
    want = (trial_features(read_session(recording), 0) - bins.mean(0)) / (bins.std(0) + 1e-8)
    np.testing.assert_allclose(by_train[0].features, want, rtol=1e-5, atol=1e-5)
    assert (
        main(
            [
                "decode",
                str(run),
                str(recording),
                "--norm",
                "train",
                "--out",
                str(tmp_path / "t.jsonl"),
            ]
        )
        == 0
    )
    assert (
        main(["decode", str(run), str(recording), "--norm", "train", "--day", "t99.2099.01.01"])
        == 2
    )
    assert "no training statistics of day t99.2099.01.01" in capsys.readouterr().err


def test_a_checkpoint_of_another_phoneme_set_is_refused(run, tmp_path):
    import shutil

    import torch

    other = tmp_path / "other"
    shutil.copytree(run, other)
    ckpt = other / "checkpoints" / "best.pt"
    payload = torch.load(ckpt, weights_only=True)
    for key in ("readout.weight", "readout.bias"):
        payload["model"][key] = torch.cat([payload["model"][key], payload["model"][key][:1]])
    torch.save(payload, ckpt)
    with pytest.raises(DataError, match="emits 42 classes") as info:
        Decoder.load(other)
    assert "\n" not in str(info.value)
