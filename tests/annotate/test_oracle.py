"""ANNOTATE: the oracle labeller, its cost model and the labelled batch."""

from __future__ import annotations

import numpy as np
import pytest

from alkit.annotate.oracle import OracleLabeller
from alkit.annotate.tool import ToolLabeller
from alkit.data.classes import CLASSES
from alkit.data.labels import CostModel, LabelledBatch, LabelledFrame, Labeller
from alkit.data.version_tables import world_dict
from alkit.data.versions import DatasetVersion, sim_uri
from alkit.errors import ConfigError, DataError
from alkit.sim import World, experiment_world
from tests.fakeworld import FakeWorld


@pytest.fixture(scope="module")
def world() -> World:
    return World(experiment_world("quick", seed=0, initial=1, pool=2, test=1))


def test_oracle_labels_equal_the_worlds_ground_truth(world):
    ids = [150, 101, 120]  # pool frames, deliberately unsorted
    batch = OracleLabeller(world).label(ids)
    assert batch.frame_ids == ids and batch.source == "oracle"
    assert batch.world == world_dict(world)
    for labelled in batch.frames:
        truth = world.frame(labelled.frame_id)
        np.testing.assert_array_equal(labelled.boxes, truth.boxes)
        np.testing.assert_array_equal(labelled.labels, truth.labels)
        assert labelled.boxes.dtype == np.float32 and labelled.labels.dtype == np.int64
        assert (labelled.height, labelled.width) == (truth.height, truth.width)
        assert labelled.meta == truth.meta.as_dict()
        assert labelled.image_uri == sim_uri(labelled.frame_id)
    assert batch.num_boxes == sum(len(world.frame(i).labels) for i in ids)


def test_oracle_batch_becomes_the_same_version_as_the_worlds_frames(world):
    ids = [100, 130]
    batch = OracleLabeller(world).label(ids)
    direct = DatasetVersion.from_frames([world.frame(i) for i in ids], world=world)
    version = batch.to_version(info={"round": 1})
    assert version == direct and version.info["labelled_by"] == "oracle"
    assert version.frame_ids == sorted(ids)


def test_cost_model_charges_every_frame_and_is_recorded():
    world = FakeWorld(min_boxes=1)
    cost = CostModel(seconds_per_frame=10.0, seconds_per_box=2.5)
    batch = OracleLabeller(world, cost=cost).label([3, 1, 2])
    boxes = np.array([len(world.frame(i).labels) for i in (3, 1, 2)])
    np.testing.assert_allclose(batch.seconds, 10.0 + 2.5 * boxes)
    assert batch.total_seconds == pytest.approx(float((10.0 + 2.5 * boxes).sum()))
    table = batch.cost_table()
    assert table.frame_id.tolist() == [3, 1, 2] and table.boxes.tolist() == boxes.tolist()
    assert not table.measured.any() and batch.cost == cost
    default = CostModel()
    assert (default.seconds_per_frame, default.seconds_per_box) == (30.0, 7.0)
    assert default.seconds(4) == 58.0


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "7"])
def test_cost_model_rejects_bad_numbers(bad):
    with pytest.raises(ConfigError, match="seconds_per_box"):
        CostModel(seconds_per_box=bad)


def test_labellers_follow_one_protocol(tmp_path):
    world = FakeWorld()
    assert isinstance(OracleLabeller(world), Labeller)
    assert isinstance(ToolLabeller(world, str(tmp_path / "export")), Labeller)


def test_oracle_refuses_empty_and_duplicate_frame_ids():
    oracle = OracleLabeller(FakeWorld())
    with pytest.raises(DataError, match="no frame ids"):
        oracle.label([])
    with pytest.raises(DataError, match=r"duplicate frame id\(s\) 4.*frame_ids"):
        oracle.label([4, 5, 4])


def test_oracle_needs_a_world_config():
    class Bare:
        def frame(self, frame_id):
            return FakeWorld().frame(frame_id)

    with pytest.raises(ConfigError, match="config"):
        OracleLabeller(Bare())


def test_batch_tables_and_checks():
    batch = OracleLabeller(FakeWorld(min_boxes=1)).label([7, 8])
    boxes = batch.boxes_table()
    assert list(boxes.columns) == ["frame_id", "category", "x", "y", "w", "h"]
    assert len(boxes) == batch.num_boxes and set(boxes.category) <= set(CLASSES)
    assert batch.meta_table().frame_id.tolist() == [7, 8]
    assert "frames=2" in repr(batch)
    frame = batch.frames[0]
    with pytest.raises(DataError, match="duplicate frame id"):
        LabelledBatch((frame, frame), "oracle", world=batch.world)
    bad = LabelledFrame(1, 48, 80, [[0, 0, 5, 5]], [9], "sim:1")
    with pytest.raises(DataError, match="frame 1: field 'labels'"):
        LabelledBatch((bad,), "oracle", world=batch.world)
    with pytest.raises(DataError, match="frame 2: 1 boxes but 2 labels"):
        LabelledFrame(2, 48, 80, [[0, 0, 5, 5]], [0, 1], "sim:2")
