"""Virtual frames -> materialized PNG + COCO (local and memory://) -> loaded back, unchanged."""

from __future__ import annotations

import json
import pickle
import uuid

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from alkit.data import storage
from alkit.data.coco import encode_png, load_coco, read_image
from alkit.data.datasets import CocoFrames, VirtualFrames, collate_frames
from alkit.data.frames import Frame
from alkit.data.materialize import materialize
from alkit.errors import DataError
from tests.fakeworld import FakeWorld, H, W

IDS = [7, 3, 12, 40, 41, 5]


@pytest.fixture(params=["local", "memory"])
def root(request, tmp_path):
    if request.param == "local":
        yield str(tmp_path / "mat")
    else:
        url = f"memory://alkit-test-{uuid.uuid4().hex}/mat"
        yield url
        fs, path = storage.filesystem(url)
        if fs.exists(path):
            fs.rm(path, recursive=True)


def assert_items_equal(a: dict, b: dict) -> None:
    assert a["frame_id"] == b["frame_id"]
    assert a["image"].dtype == torch.float32 and a["image"].shape == (3, H, W)
    assert torch.equal(a["image"], b["image"])  # pixels exactly equal
    assert a["boxes"].dtype == torch.float32 and a["labels"].dtype == torch.int64
    torch.testing.assert_close(a["boxes"], b["boxes"], atol=1e-3, rtol=0)
    assert torch.equal(a["labels"], b["labels"])


def test_virtual_to_materialized_round_trip(root):
    world = FakeWorld()
    url = materialize(world, IDS, root, shard_size=4, progress=False)
    assert url == storage.join(root, "annotations/instances.json")
    assert storage.exists(storage.join(root, "images/shard-00000/000000000007.png"))
    assert storage.exists(storage.join(root, "images/shard-00001/000000000041.png"))

    index = load_coco(url)
    assert index.frame_ids == IDS
    for record in index:
        frame = world.frame(record.frame_id)
        pixels = read_image(storage.join(root, "images", record.file_name), (H, W))
        np.testing.assert_array_equal(pixels, frame.image)
        np.testing.assert_allclose(record.boxes, frame.boxes, atol=1e-3)
        np.testing.assert_array_equal(record.labels, frame.labels)
        assert record.meta == frame.meta.as_dict()
        assert len(record.attributes) in (0, len(frame.labels))

    virtual, stored = VirtualFrames(world, IDS), CocoFrames(url)
    assert virtual.frame_ids == stored.frame_ids == IDS
    assert len(virtual) == len(stored) == len(IDS)
    for i in range(len(IDS)):
        assert_items_equal(virtual[i], stored[i])
    assert all(0.0 <= float(stored[i]["image"].min()) for i in range(len(IDS)))
    assert all(float(stored[i]["image"].max()) <= 1.0 for i in range(len(IDS)))


def test_no_temp_files_left_and_json_is_sorted(root):
    url = materialize(FakeWorld(), IDS[:2], root, progress=False)
    assert storage.list_names(storage.join(root, "annotations")) == ["instances.json"]
    assert storage.list_names(storage.join(root, "images/shard-00000")) == [
        "000000000003.png",
        "000000000007.png",
    ]
    text = storage.read_bytes(url).decode()
    assert json.loads(text)["images"][0]["file_name"] == "shard-00000/000000000007.png"


def test_collate_and_dataloader(tmp_path):
    url = materialize(FakeWorld(), IDS, str(tmp_path), progress=False)
    dataset = pickle.loads(pickle.dumps(CocoFrames(url)))  # workers get a pickled copy
    loader = DataLoader(dataset, batch_size=4, collate_fn=collate_frames, num_workers=2)
    batch = next(iter(loader))
    assert batch["image"].shape == (4, 3, H, W)
    assert batch["frame_id"].tolist() == IDS[:4]
    assert len(batch["boxes"]) == len(batch["labels"]) == 4
    assert all(b.shape[1] == 4 for b in batch["boxes"])
    virtual = pickle.loads(pickle.dumps(VirtualFrames(FakeWorld(), IDS)))
    assert_items_equal(virtual[0], dataset[0])


def test_collate_rejects_mixed_sizes():
    a = {"image": torch.zeros(3, 4, 4), "boxes": torch.zeros(0, 4), "labels": torch.zeros(0)}
    b = {"image": torch.zeros(3, 5, 4), "boxes": torch.zeros(0, 4), "labels": torch.zeros(0)}
    with pytest.raises(DataError, match="frame 1: .* frame 2"):
        collate_frames([a | {"frame_id": 1}, b | {"frame_id": 2}])


def test_materialize_rejects_duplicates_and_empty(tmp_path):
    with pytest.raises(DataError, match=r"duplicate frame ids \[3\]"):
        materialize(FakeWorld(), [3, 4, 3], str(tmp_path), progress=False)
    with pytest.raises(DataError, match="no frame ids"):
        materialize(FakeWorld(), [], str(tmp_path), progress=False)
    assert not storage.exists(str(tmp_path / "annotations"))


class BadBoxWorld(FakeWorld):
    def frame(self, frame_id: int) -> Frame:
        f = super().frame(frame_id)
        return Frame(
            f.frame_id, f.image, np.array([[70, 0, 20, 5]], np.float32), np.array([0]), f.meta
        )


def test_materialize_validates_with_the_user_loader_before_publishing(tmp_path):
    with pytest.raises(DataError, match=r"image id 3: field 'bbox' lies outside"):
        materialize(BadBoxWorld(), [3], str(tmp_path), progress=False)
    assert not storage.exists(str(tmp_path / "annotations" / "instances.json"))


def test_coco_frames_bad_images_name_the_file(tmp_path):
    url = materialize(FakeWorld(), IDS[:3], str(tmp_path), progress=False)
    shard = tmp_path / "images" / "shard-00000"
    (shard / "000000000007.png").write_bytes(b"not a png")
    (shard / "000000000003.png").unlink()
    storage.atomic_write_bytes(
        str(shard / "000000000012.png"), encode_png(np.zeros((H, W + 1, 3), np.uint8))
    )
    dataset = CocoFrames(url)
    with pytest.raises(DataError, match=r"cannot decode image .*000000000007\.png"):
        dataset[0]
    with pytest.raises(DataError, match=r"image file not found: .*000000000003\.png"):
        dataset[1]
    with pytest.raises(DataError, match=r"000000000012\.png is 48x81 \(HxW\) but .* 48x80"):
        dataset[2]


def test_user_coco_with_explicit_images_root(tmp_path):
    url = materialize(FakeWorld(), IDS[:2], str(tmp_path / "a"), progress=False)
    moved = tmp_path / "elsewhere.json"
    moved.write_bytes(storage.read_bytes(url))
    dataset = CocoFrames(str(moved), images_root=str(tmp_path / "a" / "images"))
    assert_items_equal(dataset[1], VirtualFrames(FakeWorld(), IDS[:2])[1])


def test_real_world_round_trip(tmp_path):
    from alkit.sim.config import experiment_world
    from alkit.sim.world import World

    world = World(experiment_world("quick", seed=0, initial=1, pool=1, test=1))
    ids = [0, 1, 57, 150]
    assert sum(len(world.frame(i).labels) for i in ids) > 0
    root = f"memory://alkit-test-{uuid.uuid4().hex}"
    url = materialize(world, ids, root, progress=False)
    virtual, stored = VirtualFrames(world, ids), CocoFrames(url)
    for i in range(len(ids)):
        a, b = virtual[i], stored[i]
        assert torch.equal(a["image"], b["image"])
        torch.testing.assert_close(a["boxes"], b["boxes"], atol=1e-3, rtol=0)
        assert torch.equal(a["labels"], b["labels"])
    assert load_coco(url).record(57).meta == world.meta(57).as_dict()
    fs, path = storage.filesystem(root)
    fs.rm(path, recursive=True)
