import numpy as np

from brain2text.synth.electrodes import (
    DORSAL_6V,
    INFERIOR_44,
    SUPERIOR_44,
    VENTRAL_6V,
    array_of,
    neighbour_matrix,
)


def test_every_column_on_exactly_one_array():
    arrays = array_of()
    assert (arrays >= 0).all()
    assert set(np.flatnonzero(arrays == VENTRAL_6V)) == set(range(32)) | set(range(96, 128))
    assert set(np.flatnonzero(arrays == DORSAL_6V)) == set(range(32, 96))
    assert set(np.flatnonzero(arrays == SUPERIOR_44)) == set(range(160, 224))
    assert set(np.flatnonzero(arrays == INFERIOR_44)) == set(range(128, 160)) | set(range(224, 256))


def test_neighbours_are_on_the_same_array():
    nb = neighbour_matrix()
    np.testing.assert_allclose(nb.sum(axis=1), 1.0)
    rows, cols = np.nonzero(nb)
    assert (array_of()[rows] == array_of()[cols]).all()
    assert np.diag(nb).sum() == 0
    assert ((nb > 0).sum(axis=1) >= 3).all() and ((nb > 0).sum(axis=1) <= 8).all()
