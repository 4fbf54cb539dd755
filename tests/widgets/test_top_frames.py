"""top_frames_figure on a constructed provider: rows, panels, titles and colour ranges."""

from __future__ import annotations

import numpy as np
import pytest

from alkit.errors import ConfigError
from alkit_widgets.top_frames import top_frames_figure

CLASSES = ("car", "person", "bicycle")


class Maps:
    """The provider interface of ``EnsembleMaps`` on made-up frames."""

    classes = CLASSES
    has_gt = True

    def image(self, fid):
        return np.full((24, 40, 3), fid, dtype=np.uint8)

    def heatmap(self, fid):  # (C, h, w): channel k holds (fid + k) / 100 with one hot cell
        out = np.stack([np.full((6, 10), (fid + k) / 100, np.float32) for k in range(3)])
        out[:, 2, 3] = fid / 10
        return out

    def gt(self, fid):
        return np.array([[2.0, 3.0, 8.0, 6.0]]), np.array([1])

    def caption(self, fid):
        return f"frame {fid}"


def test_one_row_per_frame_with_the_frame_then_each_class_map():
    fig = top_frames_figure(Maps(), [5, 9, 2, 7], ["person", "bicycle"], n=3)
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert len(axes) == 3 * 3
    titles = [ax.get_title() for ax in axes]
    assert titles[0] == "frame 5" and titles[3] == "frame 9" and titles[6] == "frame 2"
    want = Maps().heatmap(5)[1].mean()  # person of frame 5
    assert titles[1] == f"MI person: mean {want:.4f} nats"
    assert titles[2].startswith("MI bicycle: mean")
    # one colour range per class over the rows: the largest map value of the frames shown
    person_heat = axes[1].get_images()[1]
    assert person_heat.get_clim() == pytest.approx((0.0, 9 / 10))
    assert len(axes[0].patches) == 1  # the ground-truth box


def test_bad_requests_name_what_is_wrong():
    with pytest.raises(ConfigError, match="no frames"):
        top_frames_figure(Maps(), [], ["person"])
    with pytest.raises(ConfigError, match="truck"):
        top_frames_figure(Maps(), [1], ["truck"])
