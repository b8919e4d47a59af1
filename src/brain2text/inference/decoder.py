"""``Decoder``: a trained run as a Python object that decodes trials.

    from brain2text import Decoder
    dec = Decoder.load("runs/run13", checkpoint="best", weights="raw", lm="lm/")  # lm optional
    out = dec.decode(features, day="t12.2022.05.05")   # features: (T, n_features) floats
    out.phonemes, out.text, out.nbest, out.logits       # a frozen Decoding
    dec.decode_batch([(features_1, day_1), (features_2, day_2)])

The model is rebuilt from the checkpoint alone (:mod:`brain2text.model.loading`, as
``brain2text evaluate`` does), in eval mode, and runs the same logits and decode stages
(:mod:`brain2text.evaluation.scoring`, :mod:`brain2text.evaluation.search`) with the run's
autocast settings, so a trial decoded here gets the hypothesis ``evaluate`` gives it. A
bidirectional model reads each trial of a batch as a packed sequence, so a trial's result
does not depend on what it is batched with. With ``lm`` the emissions also go through the word
beam search (the options ``lm tune`` wrote to the run folder for that LM, else the defaults).

With ``tta`` (``Decoder.load(run, tta=True)``, or ``tta=["lr=1e-4"]`` to change the run's
``tta`` section) every trial :meth:`Decoder.decode` reads is first adapted alone, DietCORP's
step on masked copies of it, and decoded with those weights, which are restored after it
(:mod:`brain2text.evaluation.tta`, as ``evaluate --tta``).

A day the checkpoint was not trained on borrows the input layer of the nearest earlier training
day (by session name, i.e. date), with a warning naming both; a day earlier than every training
day is an error.

A causal model (a unidirectional GRU or a causal Transformer, with causal or no smoothing) also
decodes as bins arrive:

    stream = dec.stream(day="t15.2024.06.14")
    for chunk in chunks:                       # any size, e.g. 4 bins = 80 ms
        update = stream.push(chunk)            # new frames, phonemes so far, partial sentence
    out = stream.finish()                      # a Decoding, as decode() of the whole trial

The streamed logits equal the whole trial's (:mod:`brain2text.model.streaming`); with an LM the
partial sentence comes from flashlight's incremental search, and ``finish`` ends it as the
whole-trial search does.
"""

from __future__ import annotations

import bisect
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from brain2text.config import RunConfig, TtaConfig
from brain2text.data.feature_spec import STANDARD_2023, FeatureSpec
from brain2text.decoding.beam import WordHypothesis
from brain2text.decoding.greedy import greedy_decode
from brain2text.decoding.llm import SentenceScorer, as_scorer
from brain2text.decoding.wfst import WfstDecoder
from brain2text.distributed import pick_device
from brain2text.errors import ConfigError, DataError
from brain2text.evaluation.rescoring import RescoreOptions
from brain2text.evaluation.scoring import log_probs_of, network_logits
from brain2text.evaluation.search import (
    LLM_NEEDS_LM,
    WordSearch,
    decode_words,
    greedy_ids,
    sentence_of,
    word_search,
)
from brain2text.evaluation.tta import TrialAdapter, resolve_tta, trial_seed
from brain2text.model.factory import SpeechModel
from brain2text.model.loading import checkpoint_path, load_model
from brain2text.model.precision import denormals_flushed
from brain2text.model.streaming import Stream, as_bins
from brain2text.phonemes import to_symbols


def pad_bins(trials: Sequence[np.ndarray], n_features: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(T_i, C) trials -> a (B, max T, C) float32 batch zero-padded at the end, and (B,) T_i."""
    n_bins = torch.tensor([len(x) for x in trials])
    padded = np.zeros((len(trials), int(n_bins.max()), n_features), np.float32)
    for row, x in enumerate(trials):
        padded[row, : len(x)] = x
    return torch.from_numpy(padded), n_bins


class NewDayWarning(UserWarning):
    """A day the checkpoint has no input layer for borrows the nearest earlier day's."""


@dataclass(frozen=True)
class Decoding:
    """One trial decoded."""

    day: str  # the day asked for
    day_used: str  # the training day whose input layer read it (differs for a new day)
    phoneme_ids: tuple[int, ...]  # greedy CTC path, ids 1..40
    phonemes: tuple[str, ...]
    logits: np.ndarray  # (T', 41) float32, the model's output (diphones: log-probabilities)
    text: str | None = None  # the best sentence, with an LM
    nbest: tuple[WordHypothesis, ...] = ()  # with an LM


class Decoder:
    def __init__(
        self,
        model: SpeechModel,
        config: RunConfig,
        days: list[str],
        features: FeatureSpec,
        device: torch.device,
        words: WordSearch | None = None,
        tta: TtaConfig | None = None,
    ) -> None:
        self.model, self.config, self.days = model.eval(), config, list(days)
        self.feature_spec, self.device, self.words = features, device, words
        # test-time adaptation of each decoded trial (not of streamed ones)
        self.adapter = (
            TrialAdapter(self.model, tta, config.optim.betas) if tta is not None else None
        )

    @classmethod
    def load(
        cls,
        run_dir: Path | str,
        *,
        checkpoint: str = "best",
        weights: str = "raw",
        lm: Path | str | None = None,
        llm: SentenceScorer | Path | str | None = None,
        rescoring: RescoreOptions | None = None,
        device: str = "cpu",
        tta: TtaConfig | Sequence[str] | bool | None = None,
        **beam_options,
    ) -> Decoder:
        """A run's checkpoint, with ``lm`` an n-gram word search; ``llm`` (a sentence scorer
        or a model spec, needs ``lm``) rescores its n-best in :meth:`decode` and
        ``stream.finish()`` with ``rescoring`` (else ``lm tune --llm``'s choice, else the
        defaults). While streaming, the partial sentences stay n-gram only. ``tta``: adapt
        each trial :meth:`decode` reads before decoding it (:mod:`brain2text.evaluation.tta`;
        True: the run's ``tta`` section, ``KEY=VALUE`` strings: it with changes); a stream is
        not adapted."""
        run_dir = Path(run_dir)
        if llm is not None and lm is None:
            raise ConfigError(LLM_NEEDS_LM)
        device_ = pick_device(device)
        loaded = load_model(checkpoint_path(run_dir, checkpoint), device_, weights)
        words = None
        if lm is not None:
            scorer = as_scorer(llm, device=device)
            words = word_search(run_dir, Path(lm), llm=scorer, rescoring=rescoring, **beam_options)
        stored = loaded.checkpoint.features
        spec = (
            FeatureSpec.from_dict(stored, f"{loaded.path}: its features")
            if stored
            else replace(STANDARD_2023, n_features=loaded.model.n_features)
        )
        adapt = resolve_tta(loaded.config, tta)
        return cls(loaded.model, loaded.config, loaded.days, spec, device_, words, adapt)

    @property
    def n_features(self) -> int:
        return self.model.n_features

    @property
    def causal(self) -> bool:
        """Whether every output frame reads only bins up to its own (it can stream)."""
        m = self.config.model
        return not m.bidirectional and (m.causal_smoothing or m.gaussian_smooth_width == 0)

    def day_index(self, day: str) -> int:
        """The input layer that reads ``day``: its own, or the nearest earlier day's."""
        if day in self.days:
            return self.days.index(day)
        ordered = sorted(range(len(self.days)), key=lambda i: self.days[i])
        k = bisect.bisect_left([self.days[i] for i in ordered], day)
        if k == 0:
            raise DataError(
                f"day {day}: not a training day of this decoder, and earlier than "
                f"all of them (first: {self.days[ordered[0]]}): no input layer to "
                "borrow; adapt the decoder to it first"
            )
        used = ordered[k - 1]
        warnings.warn(
            f"day {day} is not a training day: decoding it with the input layer of "
            f"{self.days[used]}, the nearest earlier one",
            NewDayWarning,
            stacklevel=3,
        )
        return used

    def check_features(self, features, where: str = "features") -> np.ndarray:
        """(T, n_features) finite real numbers, at least kernel_len bins, as float32."""
        x = as_bins(features, self.n_features, torch.float32, what=where, then="").numpy()
        if x.shape[0] < self.config.model.kernel_len:
            raise DataError(
                f"{where}: {x.shape[0]} bins, fewer than model.kernel_len="
                f"{self.config.model.kernel_len}"
            )
        return x

    def stream(self, day: str) -> DecoderStream:
        """Decode one trial of ``day`` as its bins arrive (a causal model only: a one-line
        ConfigError says why another cannot)."""
        return DecoderStream(self, day)

    def decode(self, features, day: str) -> Decoding:
        return self.decode_batch([(features, day)])[0]

    def decode_batch(
        self, trials: Sequence[tuple[object, str]], batch_size: int | None = None
    ) -> list[Decoding]:
        """Decode ``(features, day)`` pairs, ``batch_size`` at a time (the run's
        ``train.eval_batch_size`` by default; one at a time with test-time adaptation, the
        k-th trial's draws seeded with (``tta.seed``, k)); results in the order given."""
        checked = [
            (self.check_features(x, f"trial {k}"), day, self.day_index(day))
            for k, (x, day) in enumerate(trials)
        ]
        size = 1 if self.adapter is not None else batch_size or self.config.train.eval_batch_size
        out: list[Decoding] = []
        for start in range(0, len(checked), size):
            out.extend(self._decode(checked[start : start + size], start))
        return out

    def _decode(self, chunk: list[tuple[np.ndarray, str, int]], first: int = 0) -> list[Decoding]:
        batch, n_bins = pad_bins([x for x, _, _ in chunk], self.n_features)
        days = torch.tensor([i for _, _, i in chunk])
        tc = self.config.train
        inputs = (batch.to(self.device), days.to(self.device), n_bins.to(self.device))
        with denormals_flushed(tc.flush_denormals):  # subnormals cost a slow path on the CPU
            if self.adapter is not None:  # a chunk of one trial
                seed = trial_seed(self.adapter.config.seed, first)
                logits, lengths = self.adapter.logits(*inputs, seed, tc.use_amp, tc.amp_dtype)
            else:
                logits, lengths = network_logits(self.model, *inputs, tc.use_amp, tc.amp_dtype)
        nbests: list[list[WordHypothesis]] | None = None
        if self.words is not None:  # the chunk's trials searched (and rescored) together
            nbests = decode_words(self.words, log_probs_of(logits, lengths)).nbests
        results = []
        for row, ids in enumerate(greedy_decode(logits, lengths)):
            frames = logits[row, : int(lengths[row])].float().cpu().numpy()
            text: str | None = None
            nbest: tuple[WordHypothesis, ...] = ()
            if nbests is not None:
                nbest = tuple(nbests[row])
                text = sentence_of(nbest)
            ids_ = tuple(int(i) for i in ids)
            results.append(
                Decoding(
                    chunk[row][1],
                    self.days[chunk[row][2]],
                    ids_,
                    tuple(to_symbols(list(ids_))),
                    frames,
                    text,
                    nbest,
                )
            )
        return results


@dataclass(frozen=True)
class StreamUpdate:
    """What one chunk of bins changed."""

    n_bins: int  # bins received so far
    new_frames: int  # output frames this chunk completed
    phonemes: tuple[str, ...]  # the greedy hypothesis so far
    new_phonemes: tuple[str, ...]  # what this chunk added to it
    text: str | None  # the best partial sentence, with an LM
    seconds: float  # compute time of this chunk (model, and the LM step with an LM)


class DecoderStream:
    """One trial streamed through a :class:`Decoder` (see the module docstring)."""

    def __init__(self, decoder: Decoder, day: str) -> None:
        self.decoder, self.day = decoder, day
        index = decoder.day_index(day)
        self.day_used = decoder.days[index]
        self._stream = Stream(decoder.model, index)
        search = decoder.words.decoder if decoder.words is not None else None
        if isinstance(search, WfstDecoder):
            raise ConfigError("a decoding graph's search does not stream; stream with an LM folder")
        self._words = search.stream() if search is not None else None
        self._phonemes: tuple[str, ...] = ()

    def push(self, bins) -> StreamUpdate:
        """Add bins (n, n_features); a bad chunk raises a one-line DataError and changes
        nothing (the stream stays usable)."""
        start = time.perf_counter()
        with denormals_flushed(self.decoder.config.train.flush_denormals):
            logits = self._stream.push(bins)
        text = None
        if self._words is not None:
            text = " ".join(self._words.step(logits.float().log_softmax(-1).cpu().numpy()).words)
        frames = self._stream.logits
        phonemes = tuple(to_symbols(list(greedy_ids(frames.float().cpu().numpy()))))
        new = phonemes[len(self._phonemes) :]
        self._phonemes = phonemes
        return StreamUpdate(
            self._stream.n_bins, len(logits), phonemes, new, text, time.perf_counter() - start
        )

    def finish(self) -> Decoding:
        """The whole trial's Decoding (the LM's end of sentence applied)."""
        frames = self._stream.logits.float().cpu().numpy()
        if len(frames) == 0:
            raise DataError(
                f"stream of day {self.day}: {self._stream.n_bins} bins, fewer than "
                f"model.kernel_len={self.decoder.config.model.kernel_len}: "
                "nothing to decode"
            )
        ids = greedy_ids(frames)
        text: str | None = None
        nbest: tuple[WordHypothesis, ...] = ()
        if self._words is not None:
            nbest = tuple(self._words.finish())
            rescorer = self.decoder.words.rescorer if self.decoder.words is not None else None
            if rescorer is not None:
                nbest = tuple(rescorer(list(nbest), frames))
            text = sentence_of(nbest)
        return Decoding(
            self.day, self.day_used, ids, tuple(to_symbols(list(ids))), frames, text, nbest
        )
