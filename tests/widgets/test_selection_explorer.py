"""SelectionExplorer: filters, sort, pages, thumbnails and opening frames, headless."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alkit.errors import ConfigError
from alkit_widgets import MAX_THUMBNAILS, HeatmapViewer, SelectionExplorer
from alkit_widgets.render import png_size

H, W = 24, 40
TIMES = ("day", "dusk", "night")


def image_fn(fid: int) -> np.ndarray:
    return np.random.default_rng(fid).integers(0, 255, (H, W, 3), dtype=np.uint8)


def selections() -> pd.DataFrame:
    """AL picks frames 1..6, MANUAL 4..9 (4, 5, 6 in both); session = fid // 3."""
    rows = []
    for method, ids in (("AL", range(1, 7)), ("MANUAL", range(4, 10))):
        for fid in ids:
            rows.append({"frame_id": fid, "method": method, "session_id": fid // 3,
                         "time_of_day": TIMES[fid % 3], "person": (fid * 7 % 10) / 10,
                         "car": fid / 100})  # fmt: skip
    return pd.DataFrame(rows)


def heatmap_fn(fid: int) -> np.ndarray:
    return np.full((5, 6, 10), fid / 10, np.float32)


def test_side_by_side_groups_per_method_with_thumbnails():
    ex = SelectionExplorer(selections(), image_fn, thumb_width=20)
    assert ex.classes == ("car", "person") and ex.side_by_side and ex.per_group == 6
    assert ex.visible == {"AL": [1, 2, 3, 4, 5, 6], "MANUAL": [4, 5, 6, 7, 8, 9]}
    assert len(ex.buttons) == 12 <= MAX_THUMBNAILS
    thumb = ex.grid.children[0].children[1].children[0].children[0]
    assert png_size(thumb.value) == (20, 12)  # downscaled from 40 x 24


def test_filters_reduce_the_grid():
    ex = SelectionExplorer(selections(), image_fn)
    ex.threshold_class = "person"
    ex.threshold = 0.5  # person score = fid * 7 % 10 / 10 >= 0.5: frames 1, 4, 5, 7, 8
    assert ex.visible == {"AL": [1, 4, 5], "MANUAL": [4, 5, 7, 8]}
    ex.threshold = 0.0
    ex.session_select.value = (1,)  # frames 3, 4, 5
    assert ex.sessions == (1,) and ex.visible == {"AL": [3, 4, 5], "MANUAL": [4, 5]}
    ex.sessions = ex.all_sessions
    ex.times_of_day = ("night",)  # fid % 3 == 2
    assert ex.visible == {"AL": [2, 5], "MANUAL": [5, 8]}
    ex.methods = ("MANUAL",)
    assert ex.visible == {"MANUAL": [5, 8]}
    assert set(ex.buttons) == {("MANUAL", 5), ("MANUAL", 8)}


def test_sort_by_score_and_merged_mode():
    ex = SelectionExplorer(selections(), image_fn)
    ex.sort_dropdown.value = "person"
    ex.descending = True
    assert ex.sort_by == "person"
    assert ex.visible["AL"] == [4, 1, 5, 2, 6, 3]  # person scores .8 .7 .5 .4 .2 .1
    ex.side_by_side = False
    assert list(ex.visible) == ["all methods"] and ex.per_group == 12
    ids = ex.visible["all methods"]
    assert len(ids) == 12 and ids[:4] == [7, 4, 4, 1]  # frame 4 by AL and by MANUAL
    ex.sort_by = "frame_id"
    ex.descending = False
    assert ex.visible["all methods"] == [1, 2, 3, 4, 4, 5, 5, 6, 6, 7, 8, 9]


def test_pages_hold_at_most_page_size_and_reset_on_filter():
    ex = SelectionExplorer(selections(), image_fn, page_size=4)
    assert ex.per_group == 2 and ex.n_pages == 3 and ex.page_slider.max == 2
    ex.page = 1
    assert ex.visible == {"AL": [3, 4], "MANUAL": [6, 7]} and "page 2 / 3" in ex.page_label.value
    old = ex.button(3)
    ex.methods = ("AL",)
    assert ex.page == 0 and ex.per_group == 4 and ex.n_pages == 2
    assert old.comm is None  # the previous page's widgets were closed
    with pytest.raises(ConfigError, match=r"page 5 out of range 0..1"):
        ex.page = 5


def test_clicking_a_thumbnail_opens_it_in_the_viewer_and_calls_back():
    viewer = HeatmapViewer(range(1, 10), image_fn, heatmap_fn)
    opened: list[int] = []
    ex = SelectionExplorer(selections(), image_fn, viewer=viewer, on_open=opened.append)
    ex.button(7, "MANUAL").click()
    assert viewer.frame_id == 7 and opened == [7] and ex.opened_frame == 7
    ex.button(2).click()
    assert viewer.frame_id == 2 and viewer.index == 1 and opened == [7, 2]
    with pytest.raises(KeyError, match="frame 2 is not on the current page"):
        ex.methods = ("MANUAL",)
        ex.button(2)


def test_bad_inputs_raise_precise_errors():
    table = selections()
    with pytest.raises(ConfigError, match=r"lacks columns \['method'\]"):
        SelectionExplorer(table.drop(columns="method"), image_fn)
    with pytest.raises(ConfigError, match="no score columns"):
        SelectionExplorer(table.drop(columns=["person", "car"]), image_fn)
    with pytest.raises(ConfigError, match=r"score columns for classes \['bicycle'\]"):
        SelectionExplorer(table, image_fn, classes=("person", "bicycle"))
    with pytest.raises(ConfigError, match=r"twice for one method: \[\('AL', 1\)\]"):
        SelectionExplorer(pd.concat([table, table.iloc[:1]]), image_fn)
    with pytest.raises(ConfigError, match="selection table is empty"):
        SelectionExplorer(table.iloc[:0], image_fn)
    with pytest.raises(ConfigError, match=r"page_size must be in 1..24"):
        SelectionExplorer(table, image_fn, page_size=25)
    viewer = HeatmapViewer([1, 2], image_fn, heatmap_fn)
    with pytest.raises(ConfigError, match=r"viewer does not hold 7 selected frame\(s\)"):
        SelectionExplorer(table, image_fn, viewer=viewer)
    with pytest.raises(ValueError, match=r"frame 1: image_fn: expected an \(H, W, 3\)"):
        SelectionExplorer(table, lambda f: np.zeros((4, 4, 2), np.uint8))
    ex = SelectionExplorer(table, image_fn)
    with pytest.raises(ConfigError, match="cannot sort by 'truck'"):
        ex.sort_by = "truck"
    with pytest.raises(ConfigError, match=r"unknown sessions \[42\]"):
        ex.sessions = (42,)
    with pytest.raises(ConfigError, match="not in the selection table"):
        ex.open_frame(42)
