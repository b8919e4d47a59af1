import numpy as np
import pytest

from brain2text.plotting import moving_average, new_figure, png_bytes


def test_moving_average_is_a_trailing_mean():
    assert moving_average(np.array([1.0, 2.0, 3.0, 4.0]), 2) == pytest.approx([1.0, 1.5, 2.5, 3.5])
    assert moving_average(np.array([1.0, 3.0]), 1) == pytest.approx([1.0, 3.0])
    assert len(moving_average(np.array([]), 5)) == 0


def test_moving_average_ignores_non_finite_values():
    values = np.array([1.0, np.nan, 3.0, 5.0])
    np.testing.assert_allclose(moving_average(values, 2), [1.0, 1.0, 3.0, 4.0])
    assert np.isnan(moving_average(np.array([np.nan, 1.0]), 1)[0])
    np.testing.assert_allclose(moving_average(np.array([1.0, 3.0]), 5), [1.0, 2.0])  # window > n


def test_a_figure_renders_to_png():
    fig = new_figure((2, 1))
    fig.add_subplot().plot([0, 1], [1, 0])
    data = png_bytes(fig, dpi=50)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    import io

    import matplotlib.image

    assert matplotlib.image.imread(io.BytesIO(data)).shape[:2] == (50, 100)
