"""The synthetic driving world: determinism, metadata, statistics, realism."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from alkit.data.classes import CLASSES
from alkit.errors import ConfigError, DataError
from alkit.sim import World, WorldConfig, experiment_world
from alkit.sim.scene import BIN, POLE, RACK, plan_session
from alkit.sim.stats import box_table


@pytest.fixture(scope="module")
def world() -> World:
    return World(experiment_world("quick", seed=3, initial=4, pool=20, test=2))


@pytest.fixture(scope="module")
def pool_boxes(world: World) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every box of a 2,000-frame pool, and the pool's manifest."""
    ids = world.segment_frame_ids("pool")
    assert len(ids) == 2000
    return box_table(world, ids), world.manifest(ids)


def test_same_seed_and_id_give_the_same_frame(world: World):
    other = World(world.config)
    for fid in (0, 57, 1234, 2599):
        a, b = world.frame(fid), other.frame(fid)
        assert np.array_equal(a.image, b.image)
        assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.labels, b.labels)
        assert a.meta == b.meta
    # order of access and a trip through pickle (DataLoader workers) change nothing
    revived = pickle.loads(pickle.dumps(world))
    assert np.array_equal(revived.frame(1234).image, other.frame(1234).image)


def test_another_world_seed_gives_other_frames(world: World):
    other = World(experiment_world("quick", seed=4, initial=4, pool=20, test=2))
    assert not np.array_equal(world.frame(10).image, other.frame(10).image)


def test_frame_shape_and_dtype(world: World):
    f = world.frame(500)
    assert f.image.shape == (96, 160, 3) and f.image.dtype == np.uint8
    assert f.boxes.dtype == np.float32 and f.boxes.shape == (len(f.labels), 4)
    assert len(f.attributes) == len(f.labels)


def test_full_profile_renders_at_its_size():
    big = World(experiment_world("full", seed=0, initial=1, pool=1, test=1))
    f = big.frame(42)
    assert f.image.shape == (384, 640, 3)
    assert len(f.labels) > 0


def test_manifest_matches_frame_metadata(world: World):
    ids = [0, 99, 100, 450, 2599]
    m = world.manifest(ids)
    assert list(m.frame_id) == ids
    for row, fid in zip(m.itertuples(), ids, strict=True):
        assert world.frame(fid).meta.as_dict() == {
            k: getattr(row, k) for k in world.meta(fid).as_dict()
        }
    assert m.frame_id.dtype == np.int64


def test_segments_and_session_layout(world: World):
    m = world.manifest(world.segment_frame_ids("initial"))
    assert set(m.segment) == {"initial"}
    assert m.groupby("session_id").size().eq(100).all()
    assert world.locate(250) == (2, 50, 0)


def test_time_of_day_shares_follow_the_segment_mix():
    w = World(experiment_world("quick", seed=11))
    m = w.manifest()
    share = pd.crosstab(m.segment, m.time_of_day, normalize="index")
    assert share.loc["initial", "day"] == pytest.approx(0.85, abs=0.03)
    assert share.loc["initial", "night"] <= 0.08
    assert share.loc["pool", "night"] == pytest.approx(0.70, abs=0.02)
    assert share.loc["test", "day"] == pytest.approx(0.60, abs=0.05)


def test_unknown_frame_id_names_the_id(world: World):
    with pytest.raises(DataError, match="frame id 999999"):
        world.frame(999_999)
    with pytest.raises(DataError, match="frame id -1"):
        world.meta(-1)
    with pytest.raises(KeyError, match="segments"):
        world.segment_frame_ids("validation")


def test_config_round_trip_and_bad_settings():
    cfg = experiment_world("quick", seed=5)
    again = WorldConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.hash == cfg.hash
    with pytest.raises(ConfigError, match="unknown profile"):
        experiment_world("huge")
    with pytest.raises(ConfigError, match="sum"):
        WorldConfig.from_dict({**cfg.to_dict(), "segments": [
            {"name": "x", "n_sessions": 1, "time_of_day": [0.5, 0.5, 0.5], "route": [1, 0, 0]}
        ]})  # fmt: skip


def test_pool_statistics(pool_boxes):
    boxes, meta = pool_boxes
    # the pool is mostly night, as the experiment needs
    assert (meta.time_of_day == "night").mean() == pytest.approx(0.7, abs=0.05)
    # every class occurs, and all three size buckets are populated
    assert set(boxes.category) == set(CLASSES)
    assert set(boxes["size"]) == {"small", "medium", "large"}
    for cls in ("car", "person"):
        assert set(boxes[boxes.category == cls]["size"]) >= {"small", "medium"}
    # boxes lie inside the image and have positive area
    assert (boxes.x >= 0).all() and (boxes.y >= 0).all()
    assert (boxes.x + boxes.w <= 160 + 1e-3).all() and (boxes.y + boxes.h <= 96 + 1e-3).all()
    assert (boxes.w > 0).all() and (boxes.h > 0).all()


def test_class_counts_depend_on_route(pool_boxes):
    boxes, meta = pool_boxes
    frames = meta.route.value_counts()
    counts = pd.crosstab(boxes.category, boxes.route) / frames
    assert {"highway", "urban"} <= set(frames.index)
    assert counts.loc["person", "urban"] > 3 * counts.loc["person", "highway"]
    assert counts.loc["traffic_light", "urban"] > 0
    assert "highway" not in counts.columns or counts.loc["traffic_light", "highway"] == 0
    assert counts.loc["car", "highway"] > counts.loc["bicycle", "highway"]


def test_long_tail_and_hard_cases_are_present(pool_boxes):
    boxes, _ = pool_boxes
    tags = set(",".join(boxes.tags).split(","))
    for tag in ("dark_clothing", "rider", "truncated", "occluded", "low_contrast", "unlit"):
        assert tag in tags, tag
    rare = {"wheelie", "stilts", "trailer", "child", "motorcycle"}
    assert len(rare & tags) >= 4, tags


def test_hard_negatives_are_drawn_but_never_labelled(world: World):
    plan = plan_session(world.config, 10, 1)
    kinds = set(plan.kind.tolist())
    assert kinds & {POLE, BIN, RACK}
    f = world.frame(1050)
    assert set(f.labels.tolist()) <= set(range(len(CLASSES)))


def test_night_is_dark_and_noisy(world: World, pool_boxes):
    _, meta = pool_boxes
    day = meta[meta.time_of_day == "day"].frame_id.to_numpy()[::50]
    night = meta[meta.time_of_day == "night"].frame_id.to_numpy()[::50]
    day_mean = np.mean([world.frame(int(i)).image.mean() for i in day])
    night_mean = np.mean([world.frame(int(i)).image.mean() for i in night])
    assert night_mean < 0.6 * day_mean


def test_dark_clothing_is_harder_to_see_at_night(pool_boxes):
    boxes, _ = pool_boxes
    people = boxes[boxes.category == "person"]
    night = people[people.time_of_day == "night"]
    dark = night.tags.str.contains("dark_clothing")
    low = night.tags.str.contains("low_contrast")
    assert low[dark].mean() > low[~dark].mean() + 0.1


def _blocks(image: np.ndarray) -> np.ndarray:
    """8x8 block means: the scene without the sensor noise."""
    h, w, _ = image.shape
    return image.reshape(h // 8, 8, w // 8, 8, 3).mean(axis=(1, 3))


@pytest.mark.parametrize("fid", [1200, 1530, 2010])
def test_consecutive_frames_are_near_duplicates(world: World, fid: int):
    a, b = _blocks(world.frame(fid).image), _blocks(world.frame(fid + 1).image)
    far = _blocks(world.frame(fid + 1000 if fid < 1500 else fid - 900).image)
    step = np.abs(a - b).mean()
    jump = np.abs(a - far).mean()
    assert step < 0.5 * jump


def test_a_frame_is_rendered_once_and_served_from_the_cache(monkeypatch):
    import alkit.sim.world as world_module

    world = World(experiment_world("quick", seed=3, initial=1, pool=1, test=1), cache_mib=1)
    expected = World(world.config, cache_mib=0).frame(150).image
    calls = []
    render = world_module.render
    monkeypatch.setattr(world_module, "render",
                        lambda *a, **k: calls.append(a[2]) or render(*a, **k))  # fmt: skip
    first = world.frame(150)
    first.image[:] = 0  # a caller's change reaches neither the cache nor the next caller
    again = world.frame(150)
    assert len(calls) == 1 and again.image.any()
    assert np.array_equal(again.image, expected)
    assert np.array_equal(world.image(150), again.image) and len(calls) == 1
    # the cache holds at most cache_mib: 1 MiB is 22 frames of 96 x 160 x 3 bytes
    for fid in range(100, 140):
        world.frame(fid)
    assert world._frames_bytes <= 2**20 and len(world._frames) == 2**20 // (96 * 160 * 3)
    assert 150 not in world._frames  # least recently used first
    revived = pickle.loads(pickle.dumps(world))
    assert len(revived._frames) == 0 and revived._cache_bytes == 2**20


def test_image_renders_the_frames_pixels_without_its_boxes():
    world = World(experiment_world("quick", seed=3, initial=1, pool=2, test=1), cache_mib=0)
    for fid in (101, 150, 199, 250):
        assert np.array_equal(world.image(fid), world.frame(fid).image)
