import numpy as np
import pytest

from brain2text.data.batches import TrainBatches, batch_positions, collate, eval_batches
from brain2text.data.dataset import open_prepared
from brain2text.data.splits import split_validation
from brain2text.errors import DataError
from brain2text.model.ctc import ctc_frames_needed, output_lengths
from brain2text.training.rundata import check_trials


@pytest.fixture(scope="module")
def train_split(prepared_dir):
    return open_prepared(prepared_dir).split("train")


def test_validation_is_the_last_training_block_of_each_day(train_split):
    train, val = split_validation(train_split, 1)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(train_split)
    for day in np.unique(train_split.day_index):
        rows = train_split.day_index == day
        last = train_split.block[rows].max()
        assert set(train_split.block[val][train_split.day_index[val] == day]) == {last}
    none_train, none_val = split_validation(train_split, 0)
    assert len(none_val) == 0 and len(none_train) == len(train_split)
    # a day never gives all its blocks away
    _, all_val = split_validation(train_split, 99)
    assert len(all_val) == 0


def test_batch_order_is_a_pure_function_of_seed_and_batch():
    a = [batch_positions(k, 4, 10, seed=1) for k in range(5)]
    b = [batch_positions(k, 4, 10, seed=1) for k in range(5)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=False))
    stream = np.concatenate(a)
    # every epoch of 10 positions is a permutation of 0..9
    assert sorted(stream[:10]) == list(range(10)) and sorted(stream[10:20]) == list(range(10))
    assert not np.array_equal(batch_positions(0, 4, 10, seed=2), a[0])
    assert len(batch_positions(3, 25, 10, seed=0)) == 25  # batches larger than the dataset


def test_collate_pads_and_keeps_values(train_split):
    ids = np.array([0, 3, 5])
    batch = collate(train_split, ids)
    t = int(train_split.n_bins[ids].max())
    assert batch.features.shape == (3, t, 256)
    for row, i in enumerate(ids):
        n = train_split.n_bins[i]
        assert np.array_equal(batch.features[row, :n].numpy(), train_split.features(int(i)))
        assert not batch.features[row, n:].any()
        p = train_split.n_phones[i]
        assert batch.phonemes[row, :p].tolist() == train_split.phonemes(int(i)).tolist()
    assert batch.day_index.tolist() == train_split.day_index[ids].tolist()


def test_train_batches_and_eval_batches_cover_what_they_should(train_split):
    indices = np.arange(len(train_split))
    batches = TrainBatches(train_split, indices, batch_size=4, seed=0, start=2, stop=5)
    assert len(batches) == 3
    assert batches[0].trial_ids.tolist() == indices[batch_positions(2, 4, len(indices), 0)].tolist()
    seen = np.concatenate([b.trial_ids.numpy() for b in eval_batches(train_split, indices, 7)])
    assert sorted(seen) == list(indices)


def test_ctc_frames_needed_counts_repeats():
    assert ctc_frames_needed(np.array([1, 2, 3])) == 3
    assert ctc_frames_needed(np.array([1, 1, 2, 2, 2])) == 5 + 3  # a blank between repeats
    assert ctc_frames_needed(np.array([], dtype=np.int64)) == 0


def test_check_trials_names_the_trial_or_skips(train_split):
    indices = np.arange(len(train_split))
    shortest = int(train_split.n_bins.min())
    with pytest.raises(
        DataError, match=r"\.mat trial \d+: \d+ bins is shorter than model.kernel_len"
    ):
        check_trials(train_split, indices, shortest + 1, 4, skip=False)
    kept, skipped = check_trials(train_split, indices, shortest + 1, 4, skip=True)
    assert len(kept) + len(skipped) == len(indices)
    assert len(skipped) == int((train_split.n_bins < shortest + 1).sum())
    # a stride so large that some phoneme sequences cannot fit the output length
    stride = 12
    kept, skipped = check_trials(train_split, indices, 8, stride, skip=True)
    too_long = [
        i
        for i in indices
        if ctc_frames_needed(train_split.phonemes(int(i)))
        > output_lengths(int(train_split.n_bins[i]), 8, stride)
    ]
    assert len(skipped) == len(too_long) > 0
    assert "output frames" in skipped[0].reason


def test_bucketed_epoch_is_a_permutation_of_similar_length_batches():
    from brain2text.data.batches import bucketed_epoch

    lengths = np.random.default_rng(0).integers(100, 900, size=203)
    epoch = bucketed_epoch(lengths, batch_size=8, pool_batches=5, seed=1, epoch=0)
    assert epoch.shape == (203 // 8, 8)
    assert len(np.unique(epoch)) == epoch.size  # no trial twice in an epoch
    assert np.array_equal(epoch, bucketed_epoch(lengths, 8, 5, seed=1, epoch=0))
    assert not np.array_equal(epoch, bucketed_epoch(lengths, 8, 5, seed=1, epoch=1))
    # padding: the longest trial of each batch over the mean length, against random batches
    waste = lambda batches: np.mean([lengths[b].max() / lengths[b].mean() for b in batches])  # noqa: E731
    random_batches = np.random.default_rng(1).permutation(203)[:200].reshape(-1, 8)
    assert waste(epoch) < waste(random_batches)


def test_train_batches_with_buckets_cover_each_epoch(train_split):
    indices = np.arange(len(train_split))
    per_epoch = len(indices) // 4
    batches = TrainBatches(
        train_split, indices, batch_size=4, seed=0, start=0, stop=2 * per_epoch, pool_batches=3
    )
    first = np.concatenate([batches.positions(k) for k in range(per_epoch)])
    assert len(np.unique(first)) == per_epoch * 4
    again = TrainBatches(
        train_split,
        indices,
        batch_size=4,
        seed=0,
        start=per_epoch + 1,
        stop=2 * per_epoch,
        pool_batches=3,
    )
    assert np.array_equal(again[0].trial_ids.numpy(), batches[per_epoch + 1].trial_ids.numpy())


def test_rank_shares_of_a_batch_are_its_rows_padded_to_the_whole_batch(train_split):
    idx = np.arange(len(train_split))
    whole = TrainBatches(train_split, idx, 8, seed=3, start=0, stop=4, pool_batches=2)
    shares = [
        TrainBatches(
            train_split,
            idx,
            8,
            seed=3,
            start=0,
            stop=4,
            pool_batches=2,
            share=slice(r * 4, (r + 1) * 4),
        )
        for r in range(2)
    ]
    for k in range(4):
        full, parts = whole[k], [s[k] for s in shares]
        for name in ("features", "n_bins", "n_phones", "day_index", "trial_ids"):
            joined = np.concatenate([getattr(p, name).numpy() for p in parts])
            assert np.array_equal(joined, getattr(full, name).numpy()), name
        phonemes = [
            row[:n] for p in parts for row, n in zip(p.phonemes.numpy(), p.n_phones, strict=False)
        ]
        assert all(
            np.array_equal(a, b[:n])
            for a, b, n in zip(phonemes, full.phonemes.numpy(), full.n_phones, strict=False)
        )


def test_eval_batches_are_dealt_to_ranks_in_turn(train_split):
    idx = np.arange(len(train_split))
    single = [b.trial_ids.tolist() for b in eval_batches(train_split, idx, 5)]
    dealt = [
        [b.trial_ids.tolist() for b in eval_batches(train_split, idx, 5, r, 3)] for r in range(3)
    ]
    assert sorted(b for share in dealt for b in share) == sorted(single) and len(single) > 3
    assert all(dealt[r] == single[r::3] for r in range(3))


def test_day_batches_draw_equal_shares_from_n_random_days():
    from brain2text.data.batches import day_batch_positions

    day_of = np.repeat(np.arange(6), [10, 10, 10, 10, 10, 2])  # day 5 has 2 trials only
    seen_days = set()
    for batch in range(50):
        pos = day_batch_positions(batch, 16, day_of, 4, seed=3)
        assert len(pos) == 16
        days, counts = np.unique(day_of[pos], return_counts=True)
        assert len(days) == 4 and sorted(counts) == [4, 4, 4, 4]
        for d in days:  # without replacement where the day has enough trials
            if d != 5:
                assert len(set(pos[day_of[pos] == d])) == 4
        seen_days |= set(days.tolist())
        assert np.array_equal(pos, day_batch_positions(batch, 16, day_of, 4, seed=3))
    assert seen_days == set(range(6))
    uneven = day_batch_positions(0, 10, day_of, 4, seed=0)
    assert sorted(np.unique(day_of[uneven], return_counts=True)[1]) == [2, 2, 3, 3]
    fewer = day_batch_positions(0, 8, day_of[:20], 4, seed=0)  # 2 days only: both, 4 each
    assert sorted(np.unique(day_of[:20][fewer], return_counts=True)[1]) == [4, 4]


def test_days_per_batch_and_length_buckets_are_one_or_the_other():
    from brain2text.config import TrainConfig

    with pytest.raises(ValueError, match="days_per_batch and train.length_bucket_pool"):
        TrainConfig(days_per_batch=4, length_bucket_pool=16)


def test_the_releases_own_validation_split_is_used_whole(tmp_path):
    from brain2text.data.prepare import prepare
    from brain2text.data.splits import train_and_validation
    from brain2text.synth.b2t25 import generate_b2t25

    generate_b2t25(
        tmp_path / "raw",
        sessions=3,
        train_per_session=6,
        val_per_session=3,
        test_per_session=2,
        progress=False,
    )
    prepare(tmp_path / "raw", tmp_path / "prep", progress=False)
    data = open_prepared(tmp_path / "prep")
    chosen = train_and_validation(data, blocks_per_day=1)
    assert chosen.val_split is data.split("val") and chosen.train_split is data.split("train")
    assert len(chosen.train) == len(data.split("train")) == 18
    assert len(chosen.val) == len(data.split("val")) == 6
