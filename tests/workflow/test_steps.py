"""The routines notebooks call: world files, batch files, selections side by side, test sets,
learning-curve tables, A/B folders (the full steps run in test_pipeline's loop recipe)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from alkit.annotate.batch_io import load_batch, save_batch
from alkit.annotate.oracle import OracleLabeller
from alkit.data.labels import CostModel
from alkit.errors import ConfigError, DataError
from alkit.evaluate.test_sets import evaluation_set_ids, evaluation_sets, model_of, per_class_table
from alkit.experiments.abfolder import open_ab_folder
from alkit.experiments.rounds import learning_curves, round_table
from alkit.sim.experiment import initial_version, make_world
from alkit.workflow.run_data import WorldData

SESSIONS = {"initial": 1, "pool": 2, "test": 2}


@pytest.fixture(scope="module")
def world():
    return make_world("quick", 0, SESSIONS)


def test_batch_file_round_trip_is_exact(world, tmp_path):
    ids = list(world.segment_frame_ids("pool"))[:3]
    batch = OracleLabeller(world, CostModel(10.0, 2.5)).label(ids)
    back = load_batch(save_batch(batch, str(tmp_path / "batch.json")))
    assert back.frame_ids == ids and back.source == "oracle" and back.cost == batch.cost
    assert back.world == batch.world and back.classes == batch.classes
    for a, b in zip(batch.frames, back.frames, strict=True):
        assert np.array_equal(a.boxes, b.boxes) and a.boxes.dtype == b.boxes.dtype
        assert np.array_equal(a.labels, b.labels) and a.meta == b.meta
        assert a.seconds == b.seconds and a.image_uri == b.image_uri
    (tmp_path / "bad.json").write_text('{"format": 1, "frames": [{"frame_id": 1}]}')
    with pytest.raises(DataError, match="bad.json"):
        load_batch(str(tmp_path / "bad.json"))


def test_initial_version_takes_every_nth_initial_frame(world):
    version = initial_version(world, initial_stride=10)
    assert version.frame_ids == list(world.segment_frame_ids("initial"))[::10]


def test_evaluation_sets_come_from_the_test_segment(world):
    test = set(world.segment_frame_ids("test"))
    glob = evaluation_set_ids(world, "global", 7)
    night = evaluation_set_ids(world, "night_heldout", 7)
    assert set(glob) <= test and glob == sorted(test)[::7]
    assert set(night) <= test
    assert set(world.manifest(night).time_of_day) <= {"night"}
    with pytest.raises(ConfigError, match="unknown test set 'day'"):
        evaluation_sets(world, ["day"], 4)
    with pytest.raises(ConfigError, match="test_stride"):
        evaluation_set_ids(world, "global", 0)


def test_model_of_picks_the_ensemble_or_a_member():
    class Members:
        members = ["m0", "m1"]

        def __len__(self):
            return 2

    ensemble = Members()
    assert model_of(ensemble, -1) is ensemble and model_of(ensemble, 1) == "m1"
    with pytest.raises(ConfigError, match="member 2"):
        model_of(ensemble, 2)


def _curves() -> pd.DataFrame:
    rows = [
        (m, r, 50 + 10 * r, c, "wMAP", 0.1 * r + (0.05 if m == "AL" else 0), t, 3)
        for m in ("AL", "RANDOM")
        for r in range(3)
        for c in ("person", "bicycle")
        for t in ("night_heldout", "global")
    ]
    cols = ["method", "round", "labelled_frames", "class", "metric", "value", "test_set", "n_gt"]
    return pd.DataFrame(rows, columns=cols)


def test_learning_curve_tables():
    curves = _curves()
    night = learning_curves(curves, "night_heldout")
    assert set(night.test_set) == {"night_heldout"} and len(night) == len(curves) // 2
    table = round_table(curves, "global", "wMAP", ["person", "bicycle"])
    assert list(table.columns) == ["person", "bicycle"]
    assert table.loc[("AL", 2, 70), "person"] == pytest.approx(0.25)
    with pytest.raises(ConfigError, match="no test set 'day'"):
        learning_curves(curves, "day")


def test_per_class_table_is_wide():
    tidy = pd.DataFrame(
        {
            "test_set": ["g", "g", "n"],
            "class": ["car", "person", "car"],
            "metric": ["wMAP"] * 3,
            "value": [0.1, 0.2, 0.3],
            "n_gt": [1, 1, 1],
        }
    )
    wide = per_class_table(tidy, ["wMAP"])
    assert wide.loc["car", ("n", "wMAP")] == 0.3 and np.isnan(wide.loc["person", ("n", "wMAP")])


def test_open_ab_folder_names_what_is_missing(tmp_path):
    with pytest.raises(DataError, match="ab_config.json is missing"):
        open_ab_folder(tmp_path)


def test_annotate_step_with_a_labelling_tool_exports_then_imports(world, tmp_path):
    from alkit.annotate.tool import LabelsPending
    from alkit.query.selection import SelectionRecord
    from alkit.workflow.steps import annotate_step

    ids = list(world.segment_frame_ids("pool"))[5:8]
    selection = SelectionRecord.from_table("al", pd.DataFrame({"frame_id": ids}), {})
    selection.save(str(tmp_path / "AL.json"))
    data_path = WorldData.of_world(world).save(str(tmp_path / "data.json"))
    args = (tmp_path / "03", data_path, str(tmp_path / "AL.json"))
    with pytest.raises(LabelsPending, match="labeling_config.xml"):
        annotate_step(*args, labeller="coco")
    export = tmp_path / "03" / "export"
    coco = json.loads((export / "coco.json").read_text())
    assert sorted(image["id"] for image in coco["images"]) == sorted(ids)
    assert coco["annotations"] == []  # no ensemble given: no pre-annotations; no ground truth
    # the people label every frame exactly (as the oracle would) and export COCO
    truth = OracleLabeller(world).label(ids)
    boxes = [(f.frame_id, box, label) for f in truth.frames
             for box, label in zip(f.boxes, f.labels, strict=True)]  # fmt: skip
    coco["annotations"] = [
        {"id": i, "image_id": fid, "category_id": int(label) + 1, "bbox": box.tolist()}
        for i, (fid, box, label) in enumerate(boxes, 1)
    ]
    (tmp_path / "labelled.json").write_text(json.dumps(coco))
    annotated = annotate_step(*args, str(tmp_path / "labelled.json"), labeller="coco")
    batch = load_batch(str(annotated.batch))
    assert batch.frame_ids == ids and batch.source.startswith("coco:")
    for got, want in zip(batch.frames, truth.frames, strict=True):
        np.testing.assert_allclose(got.boxes, want.boxes, atol=1e-3)
        assert got.labels.tolist() == want.labels.tolist()
    with pytest.raises(ConfigError, match="labeller must be one of"):
        annotate_step(tmp_path / "other", data_path, str(tmp_path / "AL.json"), labeller="crowd")


def test_run_data_loads_as_its_kind(world, tmp_path):
    """``data.json`` of the world loads as ``WorldData`` and of own data as ``CocoData``, both
    behind ``RunData``; a file written before the split (every field, ``world: null``)
    loads as own data."""
    from alkit.data.classes import CLASSES
    from alkit.sim.experiment import initial_frame_ids
    from alkit.workflow.run_data import CocoData, RunData

    saved = RunData.load(WorldData.of_world(world).save(str(tmp_path / "world.json")))
    assert isinstance(saved, WorldData) and not saved.own and saved.input_size is None
    assert saved.sim.config == world.config and saved.classes == tuple(CLASSES)
    assert saved.initial_version(4).frame_ids == initial_frame_ids(world, 4)
    own = CocoData(labelled="memory://x.json", classes=("person",), input_size=(64, 96))
    again = RunData.load(own.save(str(tmp_path / "own.json")))
    assert again == own and isinstance(again, CocoData) and again.visible() is None
    assert again.world is None and "world" not in json.loads((tmp_path / "own.json").read_text())
    with pytest.raises(ConfigError, match="no synthetic world"):
        again.sim  # noqa: B018
    with pytest.raises(ConfigError, match="-p pool=URL"):
        again.pool()
    old = {"world": None, "labelled": "memory://x.json", "images_root": "", "classes": ["a"],
           "category_map": {}, "input_size": [64, 96], "version": {}}  # fmt: skip
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert RunData.load(str(tmp_path / "old.json")) == CocoData(
        "memory://x.json", classes=("a",), input_size=(64, 96)
    )
