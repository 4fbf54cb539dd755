"""The selection registry: every method on one set of candidates, with known answers."""

from __future__ import annotations

import pandas as pd
import pytest

from alkit.errors import ConfigError
from alkit.query.methods import (
    METHODS,
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
    assert list(METHODS) == ["AL", "MANUAL", "RANDOM", "METADATA"]
    settings = SelectionSettings(budget=2)
    with pytest.raises(ConfigError, match="unknown selection method"):
        select_frames(["ORACLE"], CANDIDATES, settings)
    with pytest.raises(ConfigError, match="AL needs scores"):
        select_frames(["AL"], Candidates(POOL, POOL), settings)
    with pytest.raises(ConfigError, match="no ground truth"):
        select_frames(["MANUAL"], Candidates(POOL, POOL, SCORES), settings)
