"""The night test segment and what a test set can resolve (objects and distinct tracks)."""

from __future__ import annotations

import pytest

from alkit.errors import ConfigError
from alkit.evaluate.test_sets import describe_test_sets, evaluation_set_ids
from alkit.sim import World, experiment_world


def test_night_profile_adds_unseen_night_drives_and_keeps_the_quick_world():
    quick = experiment_world("quick", seed=0)
    assert quick.hash == "22be11a9c244b6f6"  # the quick world before the night profile existed
    night = World(experiment_world("night", seed=0))
    ids = evaluation_set_ids(night, "night_test", test_stride=4)
    meta = night.manifest(ids)
    assert len(ids) == 1000 and meta.session_id.nunique() == 40  # the issue's >= 1,000 / >= 40
    assert set(meta.time_of_day) == {"night"} and set(meta.segment) == {"night_test"}
    initial = night.manifest(night.segment_frame_ids("initial"))
    sessions = initial.drop_duplicates("session_id")
    assert (sessions.time_of_day == "night").sum() == 20  # half of 40 drives
    with pytest.raises(ConfigError, match="night_test segment"):
        evaluation_set_ids(World(quick), "night_test")


def test_tracks_follow_one_object_through_its_drive():
    world = World(experiment_world("quick", seed=0, initial=2, pool=0, test=0))
    frames = [world.frame(i) for i in range(0, 12)]  # 12 consecutive frames of one drive
    seen: dict[int, set[int]] = {}
    for f in frames:
        assert f.tracks.shape == f.labels.shape and len(set(f.tracks)) == len(f.tracks)
        for t, label in zip(f.tracks.tolist(), f.labels.tolist(), strict=True):
            seen.setdefault(t, set()).add(label)
    assert all(len(labels) == 1 for labels in seen.values())  # a track keeps its class
    boxes = sum(len(f.labels) for f in frames)
    assert len(seen) < boxes  # objects recur across frames: fewer tracks than boxes
    summary = describe_test_sets(world, ["global"], test_stride=1)
    assert (summary.tracks <= summary.objects).all()
