"""Figure and array -> PNG bytes for the wire."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from alkit_widgets.render import array_to_png, as_rgb_uint8, figure_to_png, png_size


def test_figure_to_png_is_figsize_times_dpi():
    fig = Figure(figsize=(3.0, 2.0))
    fig.subplots().plot([0, 1], [1, 0])
    png = figure_to_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png_size(png) == (300, 200)


def test_array_to_png_downscales_and_round_trips():
    image = np.random.default_rng(0).integers(0, 255, (30, 50, 3), dtype=np.uint8)
    full = Image.open(io.BytesIO(array_to_png(image)))
    np.testing.assert_array_equal(np.asarray(full), image)
    assert png_size(array_to_png(image, max_width=25)) == (25, 15)


def test_as_rgb_uint8_accepts_grey_and_float_and_names_bad_input():
    assert as_rgb_uint8(np.zeros((4, 5))).shape == (4, 5, 3)
    assert as_rgb_uint8(np.ones((4, 5, 3), np.float32)).max() == 255
    with pytest.raises(ValueError, match=r"frame 3: expected an \(H, W, 3\)"):
        as_rgb_uint8(np.zeros((4, 5, 4)), where="frame 3")
    with pytest.raises(ValueError, match="frame 3: image has NaN"):
        as_rgb_uint8(np.full((4, 5, 3), np.nan), where="frame 3")
    with pytest.raises(ValueError, match="dtype int64"):
        as_rgb_uint8(np.zeros((4, 5, 3), np.int64))
