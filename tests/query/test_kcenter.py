"""k-center greedy on constructed points with known answers."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from alkit.errors import ConfigError, DataError
from alkit.query.kcenter import covering_radius, feature_columns, k_center_greedy


def test_points_on_a_line_are_picked_farthest_first():
    x = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [20.0]])
    # from 0: 20 is farthest; then 10 (10 from 0, 10 from 20; 11 is 9 from 20); then 2 (2
    # from 0; 1 and 11 are 1 from a center)
    assert k_center_greedy(x, 4).tolist() == [0, 5, 3, 2]
    assert k_center_greedy(x, 2, first=3).tolist() == [3, 0]  # 20 and 0 tie at 10: lower row


def test_one_pick_per_cluster_and_labelled_centers_are_covered():
    rng = np.random.default_rng(0)
    means = np.array([[0.0, 0.0], [50.0, 0.0], [0.0, 50.0]])
    x = np.concatenate([m + rng.normal(0, 1, (20, 2)) for m in means])  # rows 0-19, 20-39, 40-59
    picks = k_center_greedy(x, 3)
    assert sorted(int(p) // 20 for p in picks) == [0, 1, 2]
    # with cluster 0 and 1 already labelled (rows 5 and 25), the one pick is in cluster 2
    assert int(k_center_greedy(x, 1, centers=[5, 25])[0]) // 20 == 2


def test_greedy_radius_is_within_twice_the_best_on_small_cases():
    rng = np.random.default_rng(1)
    for _ in range(5):
        x = rng.normal(size=(9, 3))
        best = min(covering_radius(x, c) for c in itertools.combinations(range(9), 3))
        greedy = covering_radius(x, k_center_greedy(x, 3))
        assert best <= greedy <= 2 * best + 1e-12


def test_bad_input_and_feature_columns():
    with pytest.raises(DataError, match="row 1"):
        k_center_greedy(np.array([[0.0], [np.nan]]), 1)
    with pytest.raises(ConfigError, match="k=3"):
        k_center_greedy(np.zeros((3, 2)), 3, centers=[0])
    table = pd.DataFrame(columns=["frame_id", "feature_10", "person", "feature_02"])
    assert feature_columns(table) == ["feature_02", "feature_10"]
