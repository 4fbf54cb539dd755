"""Round-robin top-k: alternation, no duplicates, diversity rules, bad input."""

import numpy as np
import pandas as pd
import pytest

from alkit.errors import ConfigError, DataError
from alkit.query.round_robin import round_robin_topk


def pool(n=50, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "frame_id": np.arange(1000, 1000 + n),
            "session_id": np.arange(n) // 10,
            "frame_index": np.arange(n) % 10,
            "person": rng.random(n),
            "bicycle": rng.random(n),
            "car": rng.random(n),
        }
    )


def test_alternates_classes_and_takes_each_class_best_first():
    scores = pool()
    picks = round_robin_topk(scores, ["person", "bicycle"], k=10)
    assert picks.picked_for.tolist() == ["person", "bicycle"] * 5
    assert picks.frame_id.is_unique
    first_person = scores.loc[scores.person.idxmax(), "frame_id"]
    assert picks.frame_id.iloc[0] == first_person
    # a class's picks come in its own descending order
    person_scores = picks[picks.picked_for == "person"].score.to_numpy()
    assert (np.diff(person_scores) <= 0).all()


def test_a_frame_best_for_both_classes_is_taken_once():
    scores = pool(6)
    scores.loc[0, ["person", "bicycle"]] = [5.0, 5.0]
    picks = round_robin_topk(scores, ["person", "bicycle"], k=6)
    assert picks.frame_id.is_unique and len(picks) == 6
    assert picks.frame_id.iloc[0] == 1000 and picks.frame_id.iloc[1] != 1000


def test_known_answer_with_ties_broken_by_frame_id():
    scores = pd.DataFrame(
        {
            "frame_id": [7, 3, 5, 9],
            "session_id": [0, 0, 1, 1],
            "frame_index": [0, 1, 0, 1],
            "person": [0.9, 0.5, 0.5, 0.1],
            "bicycle": [0.9, 0.2, 0.8, 0.8],
        }
    )
    picks = round_robin_topk(scores, ["person", "bicycle"], k=4)
    # person: 7, then 3 before 5 (tie, lower id); bicycle: 7 is taken, so 5; then 9
    assert picks.frame_id.tolist() == [7, 5, 3, 9]
    assert picks.picked_for.tolist() == ["person", "bicycle", "person", "bicycle"]


def test_per_session_cap_and_frame_gap():
    scores = pool()
    capped = round_robin_topk(scores, k=10, per_session_cap=2)
    assert capped.groupby("session_id").size().max() <= 2
    gapped = round_robin_topk(scores, k=10, min_frame_gap=4)
    for _, g in gapped.groupby("session_id"):
        idx = np.sort(g.frame_index.to_numpy())
        assert (np.diff(idx) >= 4).all()
    short = round_robin_topk(scores, k=10, per_session_cap=1)
    assert len(short) == 5 and short.attrs["short_by"] == 5


def test_bad_input():
    with pytest.raises(DataError, match="empty"):
        round_robin_topk(pool().iloc[:0], k=1)
    with pytest.raises(ConfigError, match="larger than the pool"):
        round_robin_topk(pool(5), k=6)
    with pytest.raises(ConfigError, match=r"\['traffic_light'\] have no scores"):
        round_robin_topk(pool(), ["person", "traffic_light"], k=3)
    nan = pool()
    nan.loc[7, "bicycle"] = np.nan
    with pytest.raises(DataError, match="frame 1007"):
        round_robin_topk(nan, k=3)
    dup = pd.concat([pool(3), pool(3)])
    with pytest.raises(DataError, match="duplicate frame ids"):
        round_robin_topk(dup, k=2)
