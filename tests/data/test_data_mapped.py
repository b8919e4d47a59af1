from __future__ import annotations

import numpy as np
import pytest

from brain2text.data.mapped import map_npy


def test_array_is_a_read_only_view_of_the_file(tmp_path):
    want = np.arange(24, dtype=np.float32).reshape(6, 4)
    np.save(tmp_path / "a.npy", want)
    mapped = map_npy(tmp_path / "a.npy")
    np.testing.assert_array_equal(mapped.array, want)
    assert mapped.array.dtype == np.float32 and not mapped.array.flags.writeable


def test_copy_rows_into_out_and_new(tmp_path):
    want = np.arange(4000 * 256, dtype=np.float32).reshape(4000, 256)  # several pages
    np.save(tmp_path / "a.npy", want)
    mapped = map_npy(tmp_path / "a.npy")
    np.testing.assert_array_equal(mapped.copy_rows(1001, 3003), want[1001:3003])
    out = np.zeros((5, 256), dtype=np.float32)
    mapped.copy_rows(7, 12, out)
    np.testing.assert_array_equal(out, want[7:12])
    # released pages read back from the page cache unchanged
    np.testing.assert_array_equal(mapped.array, want)
    mapped.release(0, 0)  # an empty range is a no-op


def test_empty_array(tmp_path):
    np.save(tmp_path / "e.npy", np.zeros((0, 256), dtype=np.float32))
    mapped = map_npy(tmp_path / "e.npy")
    assert mapped.array.shape == (0, 256)
    assert mapped.copy_rows(0, 0).shape == (0, 256)


def test_short_file(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((10, 4), dtype=np.float32))
    data = (tmp_path / "a.npy").read_bytes()
    (tmp_path / "a.npy").write_bytes(data[:-1])
    with pytest.raises(ValueError, match="bytes of data, 160 expected"):
        map_npy(tmp_path / "a.npy")


def test_fortran_order_refused(tmp_path):
    np.save(tmp_path / "f.npy", np.asfortranarray(np.ones((3, 4), dtype=np.float32)))
    with pytest.raises(ValueError, match="C-order"):
        map_npy(tmp_path / "f.npy")
