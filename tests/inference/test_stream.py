"""Streaming a causal decoder: the logits of chunk after chunk are the whole trial's, the
hypothesis grows, bad chunks leave the stream usable, and bidirectional models refuse."""

import numpy as np
import pytest

from brain2text import Decoder
from brain2text.cli import main
from brain2text.config import load_run
from brain2text.data.dataset import open_prepared
from brain2text.errors import ConfigError, DataError
from brain2text.training.loop import train
from tests.conftest import RUNS, tiny_overrides


@pytest.fixture(scope="module")
def causal_run(prepared_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("stream") / "run"
    config = load_run(
        RUNS / "run13_causal.yaml", tiny_overrides(prepared_dir, **{"train.num_workers": 0})
    )
    assert not config.model.bidirectional and config.model.causal_smoothing
    train(config, folder, quiet=True)
    return folder


@pytest.mark.parametrize("chunk", [1, 4, 13])
def test_streamed_logits_and_hypothesis_are_the_whole_trials(causal_run, prepared_dir, chunk):
    dec = Decoder.load(causal_run)
    data = open_prepared(prepared_dir)
    test = data.split("test")
    x, day = test.features(2), data.days[test.day_index[2]]
    whole = dec.decode(x, day)
    stream = dec.stream(day)
    grown, frames = [], 0
    for first in range(0, len(x), chunk):
        update = stream.push(x[first : first + chunk])
        grown.extend(update.new_phonemes)
        frames += update.new_frames
        assert update.n_bins == min(first + chunk, len(x)) and update.text is None
        assert update.phonemes == tuple(grown)
    out = stream.finish()
    assert frames == len(whole.logits)
    np.testing.assert_allclose(out.logits, whole.logits, atol=1e-5)
    assert out.phonemes == whole.phonemes == tuple(grown)


def test_a_bad_chunk_is_refused_and_the_stream_goes_on(causal_run, prepared_dir):
    dec = Decoder.load(causal_run)
    data = open_prepared(prepared_dir)
    x = data.split("test").features(0)
    day = data.days[data.split("test").day_index[0]]
    stream = dec.stream(day)
    stream.push(x[:10])
    bad = np.array(x[10:14])
    bad[1, 3] = np.nan
    with pytest.raises(DataError, match="NaN/Inf") as info:
        stream.push(bad)
    assert "\n" not in str(info.value)
    with pytest.raises(DataError, match="256"):
        stream.push(np.zeros((4, 12), np.float32))
    stream.push(x[10:])
    np.testing.assert_allclose(stream.finish().logits, dec.decode(x, day).logits, atol=1e-5)


def test_a_bidirectional_model_refuses_to_stream(prepared_dir, tmp_path):
    config = load_run(
        RUNS / "run13_cpu_demo.yaml",
        tiny_overrides(prepared_dir, **{"train.n_batch": 2, "train.eval_every": 2}),
    )
    train(config, tmp_path / "bi", quiet=True)
    dec = Decoder.load(tmp_path / "bi")
    with pytest.raises(ConfigError, match="bidirectional") as info:
        dec.stream(dec.days[0])
    assert "\n" not in str(info.value)


def test_stream_replays_a_recorded_trial(causal_run, raw_dir, capsys):
    day = Decoder.load(causal_run).days[0]
    assert (
        main(
            [
                "stream",
                str(causal_run),
                str(raw_dir / "test" / f"{day}.mat"),
                "--trial",
                "1",
                "--chunk",
                "4",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].lstrip().startswith("80 ms")
    assert any(line.startswith("final: ") for line in lines)
    assert "latency p50" in lines[-2] or "latency p50" in lines[-1]


def test_export_streaming_writes_an_onnx_step_that_streams_the_same_logits(
    causal_run, prepared_dir, tmp_path, capsys
):
    pytest.importorskip("onnxruntime", reason="the export extra is not installed")
    from brain2text.model.stream_export import OnnxStream

    dec = Decoder.load(causal_run)
    data = open_prepared(prepared_dir)
    x, day = data.split("test").features(1), data.days[data.split("test").day_index[1]]
    out = tmp_path / "step.onnx"
    assert (
        main(
            [
                "export",
                str(causal_run),
                "--format",
                "onnx",
                "--streaming",
                "--day",
                day,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    stream = OnnxStream(out)
    got = np.concatenate(
        [stream.push(x[i : i + 4]) for i in range(0, len(x), 4)]
        + [stream.push(np.zeros(((-len(x)) % 4, 256), np.float32))]
    )
    want = dec.decode(x, day).logits
    np.testing.assert_allclose(got[: len(want)], want, atol=1e-4)
    assert (
        main(["export", str(causal_run), "--format", "onnx", "--streaming", "--out", str(out)]) == 2
    )
    assert "--day D" in capsys.readouterr().err


def test_with_an_lm_the_stream_ends_on_the_whole_trials_sentence(
    causal_run, prepared_dir, tmp_path
):
    pytest.importorskip("flashlight.lib.text.decoder", reason="the lm extra is not installed")
    from brain2text.decoding.lm import build_lm

    data = open_prepared(prepared_dir)
    train_split = data.split("train")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(train_split.text(i) + "\n" for i in range(len(train_split))))
    build_lm(corpus, tmp_path / "lm")
    dec = Decoder.load(causal_run, lm=tmp_path / "lm")
    test = data.split("test")
    x, day = test.features(3), data.days[test.day_index[3]]
    stream = dec.stream(day)
    texts = [stream.push(x[i : i + 4]).text for i in range(0, len(x), 4)]
    assert all(isinstance(t, str) for t in texts)
    out, whole = stream.finish(), dec.decode(x, day)
    assert out.text == whole.text  # the streamed logits match to float rounding, so the scores
    assert [(h.words, h.phonemes) for h in out.nbest] == [
        (h.words, h.phonemes) for h in whole.nbest
    ]
    assert [h.score for h in out.nbest] == pytest.approx([h.score for h in whole.nbest], rel=1e-6)


TRANSFORMER = {  # b2t25_transformer_cpu, tiny: no day layer, log input, learned mask token
    "model.d_model": 16,
    "model.n_heads": 2,
    "model.n_layers": 1,
    "model.kernel_len": 4,
    "model.stride_len": 4,
    "model.causal_smoothing": "true",
    "model.left_context_s": 0.4,  # 5 patches, so that the trials outgrow the cache
    "model.left_context_train_s": "[0.1,0.4]",
    "train.num_workers": 0,
    "train.length_bucket_pool": "null",
}


@pytest.fixture(scope="module")
def transformer_run(prepared_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("stream_transformer") / "run"
    config = load_run(
        RUNS / "b2t25_transformer_cpu.yaml", tiny_overrides(prepared_dir, **TRANSFORMER)
    )
    assert config.model.kind == "transformer" and config.model.day_layers == "none"
    train(config, folder, quiet=True)
    return folder


@pytest.mark.parametrize("chunk", [1, 6])
def test_a_transformers_stream_gives_the_whole_trials_logits(transformer_run, prepared_dir, chunk):
    dec = Decoder.load(transformer_run)
    assert dec.causal and dec.model.mask_token is not None
    data = open_prepared(prepared_dir)
    test = data.split("test")
    x, day = test.features(1), data.days[test.day_index[1]]
    whole = dec.decode(x, day)
    assert len(whole.logits) > 5  # longer than the left context's patches
    stream = dec.stream(day)
    frames = sum(stream.push(x[i : i + chunk]).new_frames for i in range(0, len(x), chunk))
    out = stream.finish()
    assert frames == len(whole.logits)
    np.testing.assert_allclose(out.logits, whole.logits, atol=1e-5)
    assert out.phonemes == whole.phonemes


def test_a_bidirectional_transformer_refuses_to_stream(prepared_dir, tmp_path):
    changes = {**TRANSFORMER, "model.bidirectional": "true", "model.left_context_s": "null"}
    changes |= {"model.left_context_train_s": "null", "train.n_batch": 4, "train.eval_every": 4}
    config = load_run(RUNS / "b2t25_transformer_cpu.yaml", tiny_overrides(prepared_dir, **changes))
    train(config, tmp_path / "bi", quiet=True)
    dec = Decoder.load(tmp_path / "bi")
    with pytest.raises(ConfigError, match=r"^model\.bidirectional: a bidirectional Transformer"):
        dec.stream(dec.days[0])


def test_the_cli_streams_and_exports_a_transformer(
    transformer_run, raw_dir, prepared_dir, tmp_path, capsys
):
    day = Decoder.load(transformer_run).days[0]
    recording = str(raw_dir / "test" / f"{day}.mat")
    assert main(["stream", str(transformer_run), recording, "--trial", "0", "--chunk", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].lstrip().startswith("60 ms") and any(x.startswith("final: ") for x in lines)
    pytest.importorskip("onnxruntime", reason="the export extra is not installed")
    import onnxruntime

    from brain2text.model.stream_export import OnnxStream

    dec = Decoder.load(transformer_run)
    data = open_prepared(prepared_dir)
    x, day = data.split("test").features(2), data.days[data.split("test").day_index[2]]
    want = dec.decode(x, day).logits
    export = ["export", str(transformer_run), "--format"]
    assert main([*export, "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    assert [i.name for i in session.get_inputs()] == ["features"]  # no day layer to choose
    (got,) = session.run(["logits"], {"features": x[None].astype(np.float32)})
    np.testing.assert_allclose(got[0], want, atol=1e-4)
    step = tmp_path / "step.onnx"
    assert main([*export, "onnx", "--streaming", "--day", day, "--out", str(step)]) == 0
    stream = OnnxStream(step)
    got = np.concatenate(
        [stream.push(x[i : i + 4]) for i in range(0, len(x), 4)]
        + [stream.push(np.zeros(((-len(x)) % 4, 256), np.float32))]
    )
    np.testing.assert_allclose(got[: len(want)], want, atol=1e-4)
