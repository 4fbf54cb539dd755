"""Dataset versions: content hash, save/load, tamper detection, append, datasets."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest
import torch

from alkit.data import storage
from alkit.data.datasets import CocoFrames, VirtualFrames, to_frames_dataset
from alkit.data.frames import Frame
from alkit.data.materialize import materialize
from alkit.data.versions import (
    DatasetVersion,
    append,
    list_versions,
    load_version,
    version_url,
)
from alkit.errors import ConfigError, DataError, IntegrityError
from tests.fakeworld import FakeWorld, H, W

WORLD = FakeWorld(min_boxes=1, time_of_day="night")


def frames(ids) -> list[Frame]:
    return [WORLD.frame(i) for i in ids]


def relabel(frame: Frame, dx: float = 1.0) -> Frame:
    boxes = frame.boxes.copy()
    boxes[0, 2] = max(boxes[0, 2] - dx, 1.0)
    return Frame(frame.frame_id, frame.image, boxes, frame.labels, frame.meta)


@pytest.fixture(params=["local", "memory"])
def root(request, tmp_path):
    if request.param == "local":
        yield str(tmp_path / "store")
    else:
        url = f"memory://alkit-test-{uuid.uuid4().hex}/store"
        yield url
        fs, path = storage.filesystem(url)
        if fs.exists(path):
            fs.rm(path, recursive=True)


# ---------------------------------------------------------------------------------------------
# hash


def test_hash_depends_on_content_only():
    a = DatasetVersion.from_frames(frames([5, 1, 9]), world=WORLD, info={"k": 1})
    b = DatasetVersion.from_frames(frames([9, 5, 1]), world=WORLD.config, parent="x" * 64)
    assert a.hash == b.hash and a == b and len(a.hash) == 64
    assert a.frame_ids == [1, 5, 9]
    assert a.frames["frame_id"].is_monotonic_increasing
    moved = DatasetVersion.from_frames([relabel(f, 0.01) for f in frames([5, 1, 9])], world=WORLD)
    assert moved.hash != a.hash
    other_world = DatasetVersion.from_frames(frames([5, 1, 9]), world={"seed": 1})
    assert other_world.hash != a.hash
    tiny = [relabel(f, 1e-6) for f in frames([5, 1, 9])]  # below the 1e-4 px rounding
    assert DatasetVersion.from_frames(tiny, world=WORLD).hash == a.hash


def test_hash_is_pinned():
    """A fixed content must keep its hash across runs, processes and library versions."""
    frames_df = pd.DataFrame(
        {"frame_id": [2, 1], "image_uri": ["sim:2", "sim:1"], "height": [48, 48], "width": [80, 80]}
    )
    boxes_df = pd.DataFrame(
        {"frame_id": [1], "category": ["person"], "x": [1.0], "y": [2.0], "w": [3.0], "h": [4.0]}
    )
    version = DatasetVersion(frames_df, boxes_df, world={"seed": 0})
    assert version.hash == PINNED_HASH


PINNED_HASH = "02cebf1c24deb2c9007e4b1fd1952fcc04f915ea2666832138eed94ce1211ef8"


def test_construction_validates_and_names_frame_and_field():
    good = DatasetVersion.from_frames(frames([1, 2]), world=WORLD)
    f, b = good.frames, good.boxes
    cases = [
        (pd.concat([f, f.iloc[[0]]]), b, r"duplicate frame id\(s\) 1 \(field 'frame_id'\)"),
        (f, b.assign(category=["car", "truck", *b.category[2:]][: len(b)]), r"'category'.*'truck'"),
        (f, b.assign(x=np.r_[70.0, b.x[1:]]), r"frame id\(s\) 1: box field 'x\+w' lies outside"),
        (f, b.assign(w=np.r_[0.0, b.w[1:]]), r"frame id\(s\) 1: field 'w' must be > 0"),
        (f, b.assign(h=np.r_[np.nan, b.h[1:]]), r"frame id\(s\) 1: field 'h' is NaN"),
        (f.iloc[1:], b, r"frame id\(s\) 1 have boxes but are not in frames"),
        (f.assign(image_uri=["sim:9", "sim:2"]), b, r"frame id\(s\) 1: field 'image_uri'"),
    ]
    for frames_df, boxes_df, pattern in cases:
        with pytest.raises(DataError, match=pattern):
            DatasetVersion(frames_df, boxes_df, world=good.world)
    with pytest.raises(DataError, match="no world config"):
        DatasetVersion(f, b)
    with pytest.raises(DataError, match="pass world= .* or image_uris="):
        DatasetVersion.from_frames(frames([1]))


# ---------------------------------------------------------------------------------------------
# storage


def test_save_load_round_trip(root):
    version = DatasetVersion.from_frames(frames([3, 1, 2]), world=WORLD, info={"round": 0})
    assert version.save(root) == version.hash
    names = storage.list_names(version_url(root, version.hash))
    assert names == ["boxes.parquet", "frames.parquet", "version.json"]
    loaded = load_version(root, version.hash)
    assert loaded == version and loaded.info == version.info and loaded.parent is None
    assert loaded.world == {"image_height": H, "image_width": W, "seed": 0}
    pd.testing.assert_frame_equal(loaded.boxes, version.boxes)
    pd.testing.assert_frame_equal(loaded.frames, version.frames)
    assert list_versions(root) == [version.hash]
    record = storage.read_json(storage.join(version_url(root, version.hash), "version.json"))
    assert record["counts"]["frames"] == 3 and record["parent"] is None


def test_save_is_idempotent_and_never_rewrites(root):
    version = DatasetVersion.from_frames(frames([1, 2]), world=WORLD, info={"first": True})
    version.save(root)
    folder = version_url(root, version.hash)
    before = {n: storage.read_bytes(storage.join(folder, n)) for n in storage.list_names(folder)}
    again = DatasetVersion.from_frames(frames([2, 1]), world=WORLD, info={"first": False})
    assert again.save(root) == version.hash
    after = {n: storage.read_bytes(storage.join(folder, n)) for n in storage.list_names(folder)}
    assert after == before
    assert load_version(root, version.hash).info["first"] is True
    assert list_versions(root) == [version.hash]


def test_interrupted_save_is_reported_and_completed(root):
    version = DatasetVersion.from_frames(frames([1, 2]), world=WORLD)
    version.save(root)
    storage.filesystem(root)[0].rm(
        storage.filesystem(storage.join(version_url(root, version.hash), "version.json"))[1]
    )
    with pytest.raises(IntegrityError, match="incomplete.*version.json"):
        load_version(root, version.hash)
    assert list_versions(root) == []
    version.save(root)
    assert load_version(root, version.hash) == version


def test_tampering_is_refused_naming_the_file(root):
    version = DatasetVersion.from_frames(frames([1, 2, 3]), world=WORLD)
    version.save(root)
    folder = version_url(root, version.hash)
    boxes_url = storage.join(folder, "boxes.parquet")
    original = storage.read_bytes(boxes_url)
    edited = storage.read_parquet(boxes_url)
    edited.loc[0, "w"] += 0.5
    storage.atomic_write_parquet(edited, boxes_url)
    with pytest.raises(IntegrityError, match=r"boxes\.parquet does not match"):
        load_version(root, version.hash)
    storage.atomic_write_bytes(boxes_url, b"garbage")
    with pytest.raises(IntegrityError, match=r"boxes\.parquet is corrupt"):
        load_version(root, version.hash)
    storage.atomic_write_bytes(boxes_url, original)
    assert load_version(root, version.hash) == version

    frames_url = storage.join(folder, "frames.parquet")
    edited = storage.read_parquet(frames_url)
    storage.atomic_write_parquet(edited.assign(time_of_day="day"), frames_url)
    with pytest.raises(IntegrityError, match=r"frames\.parquet does not match"):
        load_version(root, version.hash)
    storage.atomic_write_parquet(edited, frames_url)

    json_url = storage.join(folder, "version.json")
    record = storage.read_json(json_url)
    storage.atomic_write_json(json_url, record | {"world": {"seed": 7}})
    with pytest.raises(IntegrityError, match=r"version\.json: classes, world"):
        load_version(root, version.hash)
    storage.atomic_write_json(json_url, record)

    storage.filesystem(frames_url)[0].rm(storage.filesystem(frames_url)[1])
    with pytest.raises(IntegrityError, match=r"incomplete: .*frames\.parquet is missing"):
        load_version(root, version.hash)
    with pytest.raises(DataError, match="no version 'abc'"):
        load_version(root, "abc")


def test_in_place_mutation_is_refused_on_save(tmp_path):
    version = DatasetVersion.from_frames(frames([1]), world=WORLD)
    version.boxes.loc[0, "x"] = 0.0
    with pytest.raises(IntegrityError, match="modified in place"):
        version.save(str(tmp_path))


# ---------------------------------------------------------------------------------------------
# append


def test_append_adds_frames_and_leaves_parent_unchanged(root):
    parent = DatasetVersion.from_frames(frames([1, 2]), world=WORLD)
    parent.save(root)
    frames_before, boxes_before, hash_before = (
        parent.frames.copy(),
        parent.boxes.copy(),
        parent.hash,
    )
    child = append(parent, frames([2, 3, 4]), info={"selection": "abc"})
    assert child.frame_ids == [1, 2, 3, 4] and child.parent == parent.hash
    assert child.info["selection"] == "abc" and child.info["added_frames"] == 2
    assert child.info["skipped_frames"] == 1
    assert child == DatasetVersion.from_frames(frames([1, 2, 3, 4]), world=WORLD)
    assert parent.hash == hash_before
    pd.testing.assert_frame_equal(parent.frames, frames_before)
    pd.testing.assert_frame_equal(parent.boxes, boxes_before)
    assert load_version(root, parent.hash) == parent

    again = append(child, frames([3, 4]))
    assert again.hash == child.hash and again is child  # nothing new: the same version
    twice = append(parent, frames([2, 3, 4]))
    assert twice.hash == child.hash and len(twice.frames) == 4
    assert not twice.frames["frame_id"].duplicated().any()

    child.save(root)
    assert set(list_versions(root)) == {parent.hash, child.hash}
    assert load_version(root, child.hash).parent == parent.hash


def test_append_conflicting_labels_names_the_frame():
    parent = DatasetVersion.from_frames(frames([1, 2]), world=WORLD)
    with pytest.raises(DataError, match=r"frame id\(s\) 2 are already in version .* different"):
        append(parent, [WORLD.frame(3), relabel(WORLD.frame(2))])
    with pytest.raises(ConfigError, match="different world"):
        append(parent, DatasetVersion.from_frames(frames([3]), world={"seed": 5}))


# ---------------------------------------------------------------------------------------------
# datasets


def test_sim_version_dataset_matches_virtual_frames():
    ids = [4, 1, 7]
    version = DatasetVersion.from_frames(frames(ids), world=WORLD)
    dataset = to_frames_dataset(version, WORLD)
    virtual = VirtualFrames(WORLD, sorted(ids))
    assert dataset.frame_ids == virtual.frame_ids == [1, 4, 7]
    for i in range(3):
        a, b = dataset[i], virtual[i]
        assert a["frame_id"] == b["frame_id"] and torch.equal(a["image"], b["image"])
        order_a, order_b = np.lexsort(a["boxes"].T.numpy()), np.lexsort(b["boxes"].T.numpy())
        torch.testing.assert_close(a["boxes"][order_a], b["boxes"][order_b], atol=1e-3, rtol=0)
        assert torch.equal(a["labels"][order_a], b["labels"][order_b])
    with pytest.raises(ConfigError, match="pass its world"):
        to_frames_dataset(version, None)
    with pytest.raises(ConfigError, match="different world config"):
        to_frames_dataset(version, FakeWorld(seed=3, min_boxes=1, time_of_day="night"))


def test_version_labels_win_over_world_ground_truth():
    noisy = relabel(WORLD.frame(1), dx=1.5)
    item = to_frames_dataset(DatasetVersion.from_frames([noisy], world=WORLD), WORLD)[0]
    order = np.lexsort(item["boxes"].T.numpy())
    expected = noisy.boxes[np.lexsort(noisy.boxes.T)]
    np.testing.assert_allclose(item["boxes"][order].numpy(), expected, atol=1e-3)


def test_file_version_from_materialized_coco(tmp_path):
    url = materialize(WORLD, [8, 2], str(tmp_path / "mat"), progress=False)
    version = DatasetVersion.from_coco(url)
    assert version.world is None and version.frames["image_uri"].str.endswith(".png").all()
    assert version.frames["time_of_day"].tolist() == ["night", "night"]
    dataset, coco = to_frames_dataset(version), CocoFrames(url)
    by_id = {coco[i]["frame_id"]: coco[i] for i in range(len(coco))}
    for i in range(len(dataset)):
        a = dataset[i]
        b = by_id[a["frame_id"]]
        assert torch.equal(a["image"], b["image"])
        order_a, order_b = np.lexsort(a["boxes"].T.numpy()), np.lexsort(b["boxes"].T.numpy())
        torch.testing.assert_close(a["boxes"][order_a], b["boxes"][order_b], atol=1e-3, rtol=0)
    version.save(str(tmp_path / "store"))
    assert load_version(str(tmp_path / "store"), version.hash) == version


def test_real_world_version_round_trip(tmp_path):
    import pickle

    from alkit.sim.config import WorldConfig, experiment_world
    from alkit.sim.world import World

    world = World(experiment_world("quick", seed=0, initial=1, pool=1, test=1))
    ids = [3, 120, 4]
    version = DatasetVersion.from_frames([world.frame(i) for i in ids], world=world)
    assert WorldConfig.from_dict(version.world) == world.config  # sim: URIs can be resolved
    root = str(tmp_path / "store")
    version.save(root)
    loaded = load_version(root, version.hash)
    assert loaded == version
    dataset = pickle.loads(pickle.dumps(to_frames_dataset(loaded, world)))
    virtual = VirtualFrames(world, [3, 4, 120])
    for i in range(len(ids)):
        a, b = dataset[i], virtual[i]
        assert torch.equal(a["image"], b["image"])
        order_a, order_b = np.lexsort(a["boxes"].T.numpy()), np.lexsort(b["boxes"].T.numpy())
        torch.testing.assert_close(a["boxes"][order_a], b["boxes"][order_b], atol=1e-3, rtol=0)
        assert torch.equal(a["labels"][order_a], b["labels"][order_b])
    grown = append(loaded, [world.frame(5)])
    assert grown.parent == version.hash and grown.frame_ids == [3, 4, 5, 120]
