import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from brain2text.decoding.greedy import collapse, greedy_decode
from brain2text.phonemes import N_CLASSES


def _naive(frames):
    out, prev = [], None
    for f in frames:
        if f != prev and f != 0:
            out.append(f)
        prev = f
    return out


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(0, N_CLASSES - 1), min_size=0, max_size=30), min_size=1, max_size=5
    )
)
def test_vectorised_greedy_decode_matches_a_naive_loop(rows):
    t = max(len(r) for r in rows) or 1
    logits = torch.full((len(rows), t, N_CLASSES), -5.0)
    for b, r in enumerate(rows):
        for i, c in enumerate(r):
            logits[b, i, c] = 5.0
        for i in range(len(r), t):  # padding frames hold a non-blank class that must be ignored
            logits[b, i, 7] = 5.0
    lengths = torch.tensor([len(r) for r in rows])
    for hyp, r in zip(greedy_decode(logits, lengths), rows, strict=False):
        assert hyp.tolist() == _naive(r) == collapse(np.array(r, dtype=np.int64)).tolist()


def test_all_blank_and_empty():
    assert collapse(np.zeros(5, dtype=np.int64)).tolist() == []
    assert collapse(np.zeros(0, dtype=np.int64)).tolist() == []
    assert collapse(np.array([3, 3, 0, 3, 4, 4])).tolist() == [3, 3, 4]
