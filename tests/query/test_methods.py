"""The selection registry: every method on one set of candidates, with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alkit.errors import ConfigError
from alkit.query.methods import (
    BASELINES,
    METHODS,
    SCORED_METHODS,
    SEED_METHODS,
    Candidates,
    SelectionSettings,
    select_frames,
    selection_overview,
)

# 6 frames of 2 sessions; frames 3-5 are night
POOL = pd.DataFrame(
    {
        "frame_id": [10, 11, 12, 13, 14, 15],
        "session_id": [0, 0, 0, 1, 1, 1],
        "frame_index": [0, 1, 2, 0, 1, 2],
        "time_of_day": ["day", "day", "day", "night", "night", "night"],
        "route": ["urban"] * 6,
    }
)
# AL's scores: person favours 14 then 12, bicycle favours 11 then 15
SCORES = POOL.assign(person=[0.0, 0.1, 0.5, 0.2, 0.9, 0.3], bicycle=[0.0, 0.8, 0.1, 0.2, 0.1, 0.6])


def _counts(frame_ids):
    """A curator who sees one person in frames 13 and 14 and nothing else."""
    return pd.DataFrame(
        {
            "frame_id": list(frame_ids),
            "person": [int(f in (13, 14)) for f in frame_ids],
            "bicycle": [0] * len(frame_ids),
        }
    )


CANDIDATES = Candidates(pool=POOL, watched=POOL[POOL.time_of_day == "night"], scores=SCORES,
                        visible=_counts)  # fmt: skip


def test_al_takes_turns_over_the_classes():
    settings = SelectionSettings(budget=4, classes_of_interest=("person", "bicycle"))
    picks = select_frames(["AL"], CANDIDATES, settings)["AL"]
    assert picks.frame_id.tolist() == [14, 11, 12, 15]
    assert picks.picked_for.tolist() == ["person", "bicycle", "person", "bicycle"]


def test_manual_keeps_the_stretch_where_targets_are_visible():
    settings = SelectionSettings(budget=2, classes_of_interest=("person",))
    picks = select_frames(["MANUAL"], CANDIDATES, settings)["MANUAL"]
    assert picks.frame_id.tolist() == [13, 14]


def test_metadata_draws_only_tagged_frames_and_random_from_the_whole_pool():
    settings = SelectionSettings(budget=3, seed=3, metadata_filters={"time_of_day": ["night"]})
    picks = select_frames(["RANDOM", "METADATA"], CANDIDATES, settings)
    assert list(picks) == ["RANDOM", "METADATA"]
    assert sorted(picks["METADATA"].frame_id) == [13, 14, 15]  # all 3 night frames
    assert len(set(picks["RANDOM"].frame_id)) == 3
    table = pd.concat([t.assign(method=m) for m, t in picks.items()])
    overview = selection_overview(table)
    assert overview.loc["METADATA", "night"] == 3 and overview.loc["METADATA", "sessions"] == 1


def test_the_registry_names_what_is_wrong():
    seed_methods = ["AL", "MANUAL", "RANDOM", "METADATA"]
    added = ["RANDOM-night", "COUNT", "AL-div", "AL-max", "AL-peaks", "AL-kcenter", "ORACLE"]
    assert list(METHODS) == [*seed_methods, *added]
    assert SEED_METHODS == ("AL", "MANUAL", "RANDOM", "METADATA")
    assert BASELINES == ("MANUAL", "RANDOM", "METADATA")
    assert set(SCORED_METHODS) == {"AL", "COUNT", "AL-div", "AL-max", "AL-peaks", "AL-kcenter"}
    settings = SelectionSettings(budget=2)
    with pytest.raises(ConfigError, match="unknown selection method"):
        select_frames(["BALD"], CANDIDATES, settings)
    for method in SCORED_METHODS:
        with pytest.raises(ConfigError, match=f"{method} needs scores"):
            select_frames([method], Candidates(POOL, POOL), settings)
    with pytest.raises(ConfigError, match="no ground truth"):
        select_frames(["MANUAL"], Candidates(POOL, POOL, SCORES), settings)


def test_random_night_draws_from_the_watched_frames_only():
    # RANDOM draws from all 6 frames, RANDOM-night only from the 3 watched (night) ones
    for seed in range(10):
        settings = SelectionSettings(budget=2, seed=seed)
        picks = select_frames(["RANDOM-night"], CANDIDATES, settings)["RANDOM-night"]
        assert set(picks.frame_id) <= {13, 14, 15} and picks.frame_id.is_unique
    whole = select_frames(["RANDOM-night"], CANDIDATES, SelectionSettings(budget=3))
    assert whole["RANDOM-night"].frame_id.tolist() == [13, 14, 15]
    with pytest.raises(ConfigError, match="larger than the pool"):
        select_frames(["RANDOM-night"], CANDIDATES, SelectionSettings(budget=4))


# predicted objects per frame (frames 10..15): person favours 12, 14, 13; bicycle 10, 15, 14
COUNTS = SCORES.assign(
    person__count=[0.0, 1.0, 5.0, 2.0, 3.0, 0.0], bicycle__count=[4.0, 0.0, 0.0, 1.0, 2.0, 3.0]
)


def test_count_takes_turns_over_the_most_predicted_objects():
    candidates = Candidates(POOL, POOL[POOL.time_of_day == "night"], COUNTS)
    picks = select_frames(["COUNT"], candidates, SelectionSettings(budget=4))["COUNT"]
    assert picks.frame_id.tolist() == [12, 10, 14, 15]
    assert picks.picked_for.tolist() == ["person", "bicycle", "person", "bicycle"]
    assert picks.score.tolist() == [5.0, 4.0, 3.0, 3.0]  # counts, not MI
    assert picks["rank"].tolist() == [0, 1, 2, 3] and "time_of_day" in picks


def test_count_breaks_ties_at_random_with_the_seed():
    # frame 10 has 2 people, the other five 1 each: 10 first, then any of the tied five
    tied = SCORES.assign(person__count=[2.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    candidates = Candidates(POOL, POOL, tied)
    seconds = set()
    for seed in range(20):
        settings = SelectionSettings(budget=2, classes_of_interest=("person",), seed=seed)
        picks = select_frames(["COUNT"], candidates, settings)["COUNT"]
        again = select_frames(["COUNT"], candidates, settings)["COUNT"]
        pd.testing.assert_frame_equal(picks, again)
        assert picks.frame_id.iloc[0] == 10
        seconds.add(int(picks.frame_id.iloc[1]))
    assert seconds <= {11, 12, 13, 14, 15} and len(seconds) >= 3  # not frame-id order


def test_count_names_the_missing_count_columns():
    only_person = SCORES.assign(person__count=1.0)
    with pytest.raises(ConfigError, match=r"\['bicycle__count'\]"):
        select_frames(["COUNT"], Candidates(POOL, POOL, only_person), SelectionSettings(budget=2))


# two drives of 6 frames: every frame of drive 0 scores above every frame of drive 1
DRIVES = pd.DataFrame(
    {
        "frame_id": list(range(12)),
        "session_id": [0] * 6 + [1] * 6,
        "frame_index": list(range(6)) * 2,
        "time_of_day": ["night"] * 12,
        "person": [0.90, 0.89, 0.88, 0.87, 0.86, 0.85, 0.50, 0.40, 0.30, 0.20, 0.10, 0.05],
    }
)


def test_al_div_caps_sessions_and_keeps_a_frame_gap():
    candidates = Candidates(DRIVES, DRIVES, DRIVES)
    settings = SelectionSettings(
        budget=4, classes_of_interest=("person",), al_div_session_cap=2, al_div_min_frame_gap=2
    )
    picks = select_frames(["AL", "AL-div"], candidates, settings)
    assert picks["AL"].frame_id.tolist() == [0, 1, 2, 3]  # all from drive 0, neighbours
    # 0; 1 is 1 frame from 0; 2 is 2 away; drive 0 is then full; 6; 7 is too close; 8
    assert picks["AL-div"].frame_id.tolist() == [0, 2, 6, 8]


def test_al_with_a_session_cap_and_gap_picks_as_al_div():
    # what the README tells a user: the loop's AL with AL-div's rules labels AL-div's picks
    candidates = Candidates(DRIVES, DRIVES, DRIVES)
    settings = SelectionSettings(budget=4, classes_of_interest=("person",), al_session_cap=2,
                                 al_min_frame_gap=2)  # fmt: skip
    assert select_frames(["AL"], candidates, settings)["AL"].frame_id.tolist() == [0, 2, 6, 8]


def test_al_passes_its_frame_gap_through():
    candidates = Candidates(DRIVES, DRIVES, DRIVES)
    settings = SelectionSettings(budget=3, classes_of_interest=("person",), al_min_frame_gap=3)
    picks = select_frames(["AL"], candidates, settings)["AL"]
    assert picks.frame_id.tolist() == [0, 3, 6]  # 1, 2 too close to 0; 4, 5 too close to 3


# localised scores per frame 10..15: person's max favours 13 then 10, bicycle's peaks 12, 14
LOCAL = SCORES.assign(
    person__max=[0.5, 0.1, 0.2, 0.6, 0.0, 0.3],
    bicycle__max=[0.0] * 6,
    person__peaks=[0.0] * 6,
    bicycle__peaks=[0.1, 0.0, 0.9, 0.2, 0.7, 0.3],
)


def test_al_max_and_al_peaks_rank_by_their_own_columns():
    candidates = Candidates(POOL, POOL, LOCAL)
    person = SelectionSettings(budget=2, classes_of_interest=("person",))
    bicycle = SelectionSettings(budget=2, classes_of_interest=("bicycle",))
    al_max = select_frames(["AL-max"], candidates, person)["AL-max"]
    assert al_max.frame_id.tolist() == [13, 10] and al_max.score.tolist() == [0.6, 0.5]
    assert al_max.person.tolist() == [0.2, 0.0]  # the mean-MI column is carried unchanged
    al_peaks = select_frames(["AL-peaks"], candidates, bicycle)["AL-peaks"]
    assert al_peaks.frame_id.tolist() == [12, 14] and al_peaks.score.tolist() == [0.9, 0.7]
    with pytest.raises(ConfigError, match=r"AL-peaks needs the 'peaks' frame scores"):
        select_frames(["AL-peaks"], CANDIDATES, bicycle)


def test_al_kcenter_takes_top_mi_candidates_then_covers_their_features():
    # 12 frames; person's mean MI falls with the frame id; features: frames 0-3 one cluster,
    # 4-7 another, 8-11 a third (all frames of the third have the lowest MI)
    n = 12
    meta = pd.DataFrame({"frame_id": range(n), "session_id": [0] * n, "frame_index": range(n)})
    feats = np.repeat([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], 4, axis=0)
    feats = feats + np.arange(n)[:, None] * 0.01  # distinct points inside each cluster
    table = meta.assign(person=np.linspace(1.0, 0.0, n), feature_00=feats[:, 0],
                        feature_01=feats[:, 1])  # fmt: skip
    candidates = Candidates(meta, meta, table)
    settings = SelectionSettings(budget=2, classes_of_interest=("person",), kcenter_factor=4.0)
    picks = select_frames(["AL", "AL-kcenter"], candidates, settings)
    assert picks["AL"].frame_id.tolist() == [0, 1]  # neighbours of one cluster
    # top 8 by MI (frames 0-7), then k-center from frame 0: the farthest is frame 7
    assert picks["AL-kcenter"].frame_id.tolist() == [0, 7]
    assert picks["AL-kcenter"].kcenter_rank.tolist() == [0, 7]
    assert picks["AL-kcenter"]["rank"].tolist() == [0, 1]
    wide = SelectionSettings(budget=3, classes_of_interest=("person",), kcenter_factor=4.0)
    chosen = select_frames(["AL-kcenter"], candidates, wide)["AL-kcenter"].frame_id.tolist()
    assert chosen[0] == 0 and {f // 4 for f in chosen} == {0, 1, 2}  # one per cluster
    with pytest.raises(ConfigError, match="feature_NN"):
        select_frames(["AL-kcenter"], Candidates(meta, meta, table.iloc[:, :4]), settings)
