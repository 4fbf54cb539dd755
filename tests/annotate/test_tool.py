"""Labelling tools: Label Studio / COCO export with pre-annotations, import and its validation."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from alkit.annotate.oracle import OracleLabeller
from alkit.annotate.tool import (
    LabelsPending,
    ToolLabeller,
    export_for_labelling,
    import_labels,
    labeling_config,
    load_export,
)
from alkit.data import storage
from alkit.data.classes import CLASSES
from alkit.data.lineage import append_batch
from alkit.data.versions import DatasetVersion, list_versions
from alkit.detector.network import Detections
from alkit.errors import ConfigError, DataError
from tests.fakeworld import FakeWorld, H, W

WORLD = FakeWorld(min_boxes=1)
IDS = [12, 5, 31]


def truth_detections(ids, score: float = 0.9) -> dict[int, Detections]:
    """The ground truth as if an ensemble had found it (torch tensors, like the model's)."""
    out = {}
    for i in ids:
        f = WORLD.frame(i)
        scores = torch.full((len(f.labels),), score)
        out[i] = Detections(torch.from_numpy(f.boxes), scores, torch.from_numpy(f.labels))
    return out


def read(path: Path):
    return json.loads(path.read_text())


def accept_predictions(tasks: list[dict], lead_time: float | None = 20.0) -> list[dict]:
    """What Label Studio exports after an annotator accepts every pre-annotation as it is."""
    out = copy.deepcopy(tasks)
    for k, task in enumerate(out):
        task["id"] = k + 1
        annotation = {"id": 100 + k, "result": task["predictions"][0]["result"]}
        annotation["was_cancelled"] = False
        if lead_time is not None:
            annotation["lead_time"] = lead_time
        task["annotations"] = [annotation]
    return out


@pytest.fixture
def export(tmp_path) -> Path:
    url = tmp_path / "round1"
    export_for_labelling(WORLD, IDS, str(url), detections=truth_detections(IDS))
    return url


def write(path: Path, obj) -> str:
    path.write_text(json.dumps(obj))
    return str(path)


# ---------------------------------------------------------------------------------------------
# export


def test_export_writes_images_tasks_config_and_coco(export):
    exported = load_export(str(export))
    assert list(exported.frame_ids) == IDS and exported.world == WORLD.config.to_dict()
    for fid in IDS:
        with Image.open(export / "images" / f"{fid:012d}.png") as im:
            np.testing.assert_array_equal(np.asarray(im), WORLD.frame(fid).image)
    config = (export / "labeling_config.xml").read_text()
    assert config == labeling_config()
    assert '<RectangleLabels name="label" toName="image">' in config
    assert all(f'<Label value="{c}"/>' in config for c in CLASSES)
    tasks = read(export / "tasks.json")
    assert [t["data"]["frame_id"] for t in tasks] == IDS
    assert tasks[0]["data"]["image"] == storage.join(str(export), "images", f"{IDS[0]:012d}.png")
    region = tasks[0]["predictions"][0]["result"][0]
    x, y, w, h = WORLD.frame(IDS[0]).boxes[0].astype(float)
    assert region["type"] == "rectanglelabels"
    assert (region["from_name"], region["to_name"]) == ("label", "image")
    assert (region["original_width"], region["original_height"]) == (W, H)
    value = region["value"]
    assert value["x"] == pytest.approx(100 * x / W) and value["width"] == pytest.approx(100 * w / W)
    assert value["y"] == pytest.approx(100 * y / H) and value["height"] == pytest.approx(
        100 * h / H
    )
    assert value["rectanglelabels"] == [CLASSES[WORLD.frame(IDS[0]).labels[0]]]
    assert region["score"] == pytest.approx(0.9)
    coco = read(export / "coco.json")
    assert [im["id"] for im in coco["images"]] == IDS
    assert all(a["score"] == pytest.approx(0.9) for a in coco["annotations"])
    assert not [p for p in export.rglob("*") if ".tmp-" in p.name]


def test_export_without_detections_leaks_no_ground_truth(tmp_path):
    export_for_labelling(WORLD, IDS, str(tmp_path))
    assert all("predictions" not in t for t in read(tmp_path / "tasks.json"))
    assert read(tmp_path / "coco.json")["annotations"] == []


def test_pre_annotations_drop_low_scores_and_clip_to_the_image(tmp_path):
    dets = {
        5: Detections(
            torch.tensor([[-4.0, 10.0, 20.0, 10.0], [5.0, 5.0, 4.0, 4.0]]),
            torch.tensor([0.8, 0.1]),
            torch.tensor([2, 0]),
        )
    }
    export_for_labelling(WORLD, [5], str(tmp_path), detections=dets, task_image_url="/data/x")
    task = read(tmp_path / "tasks.json")[0]
    assert task["data"]["image"] == "/data/x/000000000005.png"
    (region,) = task["predictions"][0]["result"]
    assert region["value"]["x"] == 0.0
    assert region["value"]["width"] == pytest.approx(100 * 16 / W)


# ---------------------------------------------------------------------------------------------
# round trips


def assert_matches_truth(batch, ids=IDS):
    assert batch.frame_ids == ids
    for f in batch.frames:
        truth = WORLD.frame(f.frame_id)
        np.testing.assert_allclose(f.boxes, truth.boxes, atol=1e-3)
        np.testing.assert_array_equal(f.labels, truth.labels)


def test_labelstudio_round_trip_equals_the_ground_truth(export, tmp_path):
    labels = write(tmp_path / "ls.json", accept_predictions(read(export / "tasks.json")))
    batch = import_labels(str(export), labels)
    assert_matches_truth(batch)
    assert batch.source == f"labelstudio:{labels}"
    assert batch.seconds.tolist() == [20.0] * 3 and all(f.measured for f in batch.frames)
    oracle = OracleLabeller(WORLD).label(IDS)
    assert batch.to_version() == oracle.to_version()  # same content, same hash


def test_labelstudio_import_without_lead_time_uses_the_cost_model(export, tmp_path):
    tasks = accept_predictions(read(export / "tasks.json"), lead_time=None)
    batch = import_labels(str(export), write(tmp_path / "ls.json", tasks))
    np.testing.assert_allclose(batch.seconds, OracleLabeller(WORLD).label(IDS).seconds)
    assert not any(f.measured for f in batch.frames)


def test_labelstudio_task_found_by_image_name_and_empty_frames(export, tmp_path):
    tasks = accept_predictions(read(export / "tasks.json"))
    del tasks[0]["data"]["frame_id"]
    tasks[1]["annotations"][0]["result"] = []  # the annotator removed every box
    tasks[2]["annotations"][0]["result"].append({"type": "choices", "value": {"choices": ["ok"]}})
    batch = import_labels(str(export), write(tmp_path / "ls.json", tasks))
    assert batch.frame_ids == IDS and len(batch.frames[1].labels) == 0


def test_coco_round_trip_equals_the_ground_truth(export):
    batch = import_labels(str(export), str(export / "coco.json"))
    assert_matches_truth(batch)
    assert batch.source.startswith("coco:")
    assert batch.to_version() == OracleLabeller(WORLD).label(IDS).to_version()


def test_export_and_import_on_an_fsspec_url():
    url = "memory://alkit-label-io/round1"
    try:
        export_for_labelling(WORLD, IDS, url, detections=truth_detections(IDS))
        tasks = accept_predictions(storage.read_json(storage.join(url, "tasks.json")))
        storage.atomic_write_json(storage.join(url, "ls.json"), tasks)
        assert_matches_truth(import_labels(url, storage.join(url, "ls.json")))
    finally:
        fs, path = storage.filesystem(url)
        fs.rm(path, recursive=True)


def test_tool_labeller_exports_then_imports(tmp_path):
    url = str(tmp_path / "batch")
    labeller = ToolLabeller(WORLD, url, detections=truth_detections(IDS))
    with pytest.raises(LabelsPending, match="labelled.json"):
        labeller.label(IDS)
    tasks = accept_predictions(read(tmp_path / "batch" / "tasks.json"))
    write(tmp_path / "batch" / "labelled.json", tasks)
    assert_matches_truth(labeller.label(IDS))
    with pytest.raises(ConfigError, match="other frames"):
        labeller.label([1, 2])


# ---------------------------------------------------------------------------------------------
# invalid imports: refused, naming frame and field, and nothing appended


def ls_case(tasks: list[dict], case: str) -> tuple[list[dict], int, str]:
    """Break a valid Label Studio export; returns it, the frame and the field named."""
    regions = tasks[0]["annotations"][0]["result"]
    if case == "unknown frame":
        tasks[1]["data"]["frame_id"] = 999
        return tasks, 999, "frame_id"
    if case == "duplicate frame":
        tasks.append(copy.deepcopy(tasks[1]))
        for r in tasks[-1]["annotations"][0]["result"]:
            r["id"] += "-again"
        return tasks, IDS[1], "frame_id"
    if case == "unknown class":
        regions[0]["value"]["rectanglelabels"] = ["truck"]
        return tasks, IDS[0], "category"
    if case == "out of bounds":
        regions[0]["value"].update(x=90.0, width=20.0)
        return tasks, IDS[0], "bbox"
    if case == "zero area":
        regions[0]["value"]["height"] = 0.0
        return tasks, IDS[0], "bbox"
    if case == "nan box":
        regions[0]["value"]["x"] = float("nan")
        return tasks, IDS[0], "bbox"
    if case == "duplicate annotation id":
        regions.append(copy.deepcopy(regions[0]))
        regions[-1]["value"]["x"] = 1.0
        return tasks, IDS[0], "id"
    if case == "duplicate annotation":
        regions.append({**copy.deepcopy(regions[0]), "id": "copy"})
        return tasks, IDS[0], "bbox"
    if case == "missing frame":
        del tasks[2]
        return tasks, IDS[2], "annotations"
    if case == "cancelled":
        tasks[2]["annotations"][0]["was_cancelled"] = True
        return tasks, IDS[2], "annotations"
    if case == "two annotations":
        tasks[0]["annotations"].append(copy.deepcopy(tasks[0]["annotations"][0]))
        return tasks, IDS[0], "annotations"
    if case == "wrong size":
        regions[0]["original_width"] = 2 * W
        return tasks, IDS[0], "original_width"
    if case == "rotated":
        regions[0]["value"]["rotation"] = 30
        return tasks, IDS[0], "rotation"
    raise AssertionError(case)


LS_CASES = [
    "unknown frame",
    "duplicate frame",
    "unknown class",
    "out of bounds",
    "zero area",
    "nan box",
    "duplicate annotation id",
    "duplicate annotation",
    "missing frame",
    "cancelled",
    "two annotations",
    "wrong size",
    "rotated",
]


@pytest.fixture
def store(tmp_path) -> tuple[str, DatasetVersion]:
    root = str(tmp_path / "store")
    initial = DatasetVersion.from_frames([WORLD.frame(i) for i in (1, 2)], world=WORLD)
    initial.save(root)
    return root, initial


@pytest.mark.parametrize("case", LS_CASES)
def test_invalid_labelstudio_import_is_refused(export, tmp_path, store, case):
    root, initial = store
    tasks, frame, field = ls_case(accept_predictions(read(export / "tasks.json")), case)
    labels = write(tmp_path / "ls.json", tasks)
    before = list_versions(root)
    with pytest.raises(DataError) as err:
        append_batch(root, initial, import_labels(str(export), labels))
    message = str(err.value)
    assert f"frame {frame}" in message or f"frame(s) {frame}" in message, message
    assert f"'{field}'" in message and labels in message, message
    assert list_versions(root) == before


def coco_case(coco: dict, case: str) -> tuple[dict, int, str]:
    """Break a valid COCO file; returns it, the frame and the field named."""
    ann = coco["annotations"][0]
    frame = ann["image_id"]
    if case == "unknown frame":
        coco["images"][1]["id"] = 999
        for a in coco["annotations"]:
            if a["image_id"] == IDS[1]:
                a["image_id"] = 999
        return coco, 999, "frame_id"
    if case == "duplicate frame":
        coco["images"].append(dict(coco["images"][0]))
        return coco, coco["images"][0]["id"], "frame_id"
    if case == "unknown class":
        coco["categories"].append({"id": 77, "name": "truck"})
        ann["category_id"] = 77
        return coco, frame, "category"
    if case == "unknown category id":
        ann["category_id"] = 78
        return coco, frame, "category_id"
    if case == "annotation on no image":
        ann["image_id"] = 555
        return coco, 555, "image_id"
    if case == "out of bounds":
        ann["bbox"] = [W - 3.0, 1.0, 10.0, 5.0]
        return coco, frame, "bbox"
    if case == "zero area":
        ann["bbox"][2] = 0
        return coco, frame, "bbox"
    if case == "duplicate annotation id":
        coco["annotations"].append({**ann, "bbox": [1.0, 1.0, 3.0, 3.0]})
        return coco, frame, "id"
    if case == "duplicate annotation":
        coco["annotations"].append({**ann, "id": 9999})
        return coco, frame, "bbox"
    if case == "missing frame":
        gone = coco["images"].pop()["id"]
        coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] != gone]
        return coco, gone, "annotations"
    if case == "wrong size":
        coco["images"][0]["width"] = 2 * W
        return coco, coco["images"][0]["id"], "size"
    raise AssertionError(case)


COCO_CASES = [
    "unknown frame",
    "duplicate frame",
    "unknown class",
    "unknown category id",
    "annotation on no image",
    "out of bounds",
    "zero area",
    "duplicate annotation id",
    "duplicate annotation",
    "missing frame",
    "wrong size",
]


@pytest.mark.parametrize("case", COCO_CASES)
def test_invalid_coco_import_is_refused(export, tmp_path, store, case):
    root, initial = store
    coco, frame, field = coco_case(read(export / "coco.json"), case)
    labels = write(tmp_path / "labels.json", coco)
    before = list_versions(root)
    with pytest.raises(DataError) as err:
        append_batch(root, initial, import_labels(str(export), labels))
    message = str(err.value)
    assert f"frame {frame}" in message or f"frame(s) {frame}" in message, message
    assert f"'{field}'" in message and labels in message, message
    assert list_versions(root) == before


@pytest.mark.parametrize("content", ["{}", '{"tasks": []}', "[1, 2]", "not json"])
def test_malformed_label_files_are_refused(export, tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DataError, match="bad.json"):
        import_labels(str(export), str(path))


def test_missing_files_are_refused(export, tmp_path):
    with pytest.raises(DataError, match="not found"):
        import_labels(str(export), str(tmp_path / "nowhere.json"))
    with pytest.raises(DataError, match="export.json"):
        import_labels(str(tmp_path), str(export / "coco.json"))


@pytest.mark.parametrize("field", ["annotations", "result", "value"])
def test_malformed_labelstudio_structures_are_refused(export, tmp_path, field):
    tasks = accept_predictions(read(export / "tasks.json"))
    annotation = tasks[1]["annotations"][0]
    if field == "annotations":
        tasks[1]["annotations"] = "done"
    elif field == "result":
        annotation["result"] = [1, 2]
    else:
        annotation["result"][0]["value"] = None
    with pytest.raises(DataError, match=f"frame {IDS[1]} .*field '{field}'"):
        import_labels(str(export), write(tmp_path / "ls.json", tasks))


def test_bad_detections_are_refused_and_no_export_is_recorded(tmp_path):
    box = torch.tensor([[1.0, 1.0, 5.0, 5.0]])
    dets = {5: Detections(box, torch.tensor([0.9]), torch.tensor([7]))}
    with pytest.raises(DataError, match="frame 5: detections field 'labels'"):
        export_for_labelling(WORLD, [5], str(tmp_path), detections=dets)
    assert not (tmp_path / "export.json").exists()


def test_re_export_replaces_the_record(tmp_path):
    export_for_labelling(WORLD, [1, 2], str(tmp_path))
    export_for_labelling(WORLD, [3], str(tmp_path))
    assert list(load_export(str(tmp_path)).frame_ids) == [3]
