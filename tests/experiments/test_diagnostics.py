"""Score and selection diagnostics on constructed inputs with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alkit.errors import DataError
from alkit.experiments.diagnostics import (
    box_cells,
    mi_share_in_boxes,
    partial_spearman,
    pick_layout,
)
from alkit.experiments.stats import spearman


def test_box_cells_cover_centres_and_tiny_boxes():
    cover = box_cells(np.array([[4.0, 0.0, 8.0, 4.0], [13.0, 13.0, 1.0, 1.0]]), (4, 4), 4.0)
    # cell centres at 2, 6, 10, 14 px: box 1 spans x 4-12, y 0-4 -> cells (0, 1), (0, 2);
    # box 2 (1 px) covers no centre, but holds its own centre in cell (3, 3)
    assert np.argwhere(cover).tolist() == [[0, 1], [0, 2], [3, 3]]


def test_mi_share_in_boxes_by_hand():
    mi = np.full((2, 2, 4, 4), 0.01)  # background everywhere: 16 cells x 0.01
    mi[0, 0, 0, 1] = mi[0, 0, 0, 2] = 0.5  # frame 0, class 0: two uncertain object cells
    mi[1, 1] = 0.0  # frame 1, class 1: no MI at all
    boxes = [np.array([[4.0, 0.0, 8.0, 4.0], [0.0, 8.0, 4.0, 4.0]]), np.zeros((0, 4))]
    labels = [np.array([0, 1]), np.zeros(0, np.int64)]
    share = mi_share_in_boxes(mi, boxes, labels, stride=4.0)
    assert share.shape == (2, 2)
    assert share[0, 0] == pytest.approx(1.0 / (1.0 + 14 * 0.01))  # 2 x 0.5 of 1.14
    assert share[0, 1] == pytest.approx(0.01 / 0.16)  # class 1's box covers cell (2, 0)
    assert share[1, 0] == 0.0 and np.isnan(share[1, 1])
    with pytest.raises(DataError, match="2 MI maps, 1 box sets"):
        mi_share_in_boxes(mi, boxes[:1], labels[:1], 4.0)


def test_partial_rank_correlation_removes_the_object_count():
    rng = np.random.default_rng(0)
    n = 3000
    count = rng.integers(0, 8, n).astype(float)
    hard = rng.binomial(count.astype(int), 0.3).astype(float)  # hard cases: a share of all
    score = count + rng.normal(0, 1, n)  # follows the count only
    assert spearman(score, hard) > 0.4  # the raw correlation the issue calls confounded
    assert abs(partial_spearman(score, hard, count)) < 0.06
    informed = count + 3 * hard + rng.normal(0, 1, n)  # follows the hard cases beyond it
    r = partial_spearman(informed, hard, count)
    assert r > 0.4
    # float64 reference: the correlation of the ranks' residuals after a linear fit on the
    # count's ranks
    ranks = [pd.Series(v).rank().to_numpy() for v in (informed, hard, count)]
    design = np.stack([np.ones(n), ranks[2]], axis=1)
    res = [v - design @ np.linalg.lstsq(design, v, rcond=None)[0] for v in ranks[:2]]
    assert r == pytest.approx(float(np.corrcoef(res[0], res[1])[0, 1]), abs=1e-12)


def test_pick_layout_counts_sessions_and_neighbouring_pairs():
    picks = pd.DataFrame(
        {
            "method": ["AL"] * 5 + ["AL-div"] * 3,
            "session_id": [0, 0, 0, 1, 1, 0, 1, 2],
            "frame_index": [4, 0, 2, 10, 30, 0, 0, 0],
        }
    )
    out = pick_layout(picks, max_gap=2).set_index("method")
    # AL: session 0 holds 0, 2, 4 (two pairs 2 apart), session 1 holds 10 and 30 (none)
    assert out.loc["AL"].tolist() == [5, 2, 2]
    assert out.loc["AL-div"].tolist() == [3, 3, 0]
    assert pick_layout(picks, max_gap=1).set_index("method").loc["AL", "neighbour_pairs"] == 0
    one = pick_layout(picks[picks.method == "AL"].drop(columns="method"))
    assert one.frames.tolist() == [5]


def test_hard_cases_counts_the_class_objects_with_a_hard_tag():
    from types import SimpleNamespace

    import numpy as np

    from alkit.experiments.replicated import hard_cases

    frame = SimpleNamespace(
        labels=np.array([0, 0, 1, 0, 1]),
        attributes=[("dark_clothing",), (), ("unlit", "occluded"), ("far", "low_contrast"), ()],
    )
    assert hard_cases(frame, 0) == 2  # dark_clothing, low_contrast; the untagged one not
    assert hard_cases(frame, 1) == 1  # one bicycle with two hard tags counts once
    assert hard_cases(frame, 2) == 0
