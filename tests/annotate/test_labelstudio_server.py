"""A labelling round through a real Label Studio server (``tests/labelstudio.py``).

alkit exports frames with pre-annotations; the test creates a project with alkit's labelling
config, imports ``tasks.json``, checks what the server holds, labels through the API as a
person would (accepts, moves, deletes and draws boxes), downloads the JSON export and imports
it with :func:`alkit.annotate.tool.import_labels`. The expected boxes are computed here from
the percent values the "labeller" submitted.
"""

from __future__ import annotations

import copy
import json
import urllib.request

import numpy as np
import pytest
import torch

from alkit.annotate.tool import export_for_labelling, import_labels, labeling_config
from alkit.data.classes import CLASSES
from alkit.detector.network import Detections
from tests.fakeworld import FakeWorld, H, W
from tests.labelstudio import LabelStudioClient

pytestmark = pytest.mark.slow

WORLD = FakeWorld(min_boxes=2)
ACCEPT, EDIT, DRAW, EMPTY = 6, 2, 9, 1  # what the labeller does with each frame
IDS = [ACCEPT, EDIT, DRAW, EMPTY]
SCORES = {ACCEPT: 0.9, EDIT: 0.8, DRAW: 0.7, EMPTY: 0.6}  # acquisition scores
LEAD = {ACCEPT: 11.0, EDIT: 42.5, DRAW: 30.0, EMPTY: 3.25}  # labelling time (s)
ROOT = "alkit/round1"  # the export, below the server's local-files document root
MIN_SCORE = 0.3


def detections() -> dict[int, Detections]:
    """The ground truth as the ensemble's detections (box k scored 0.95 - 0.1 k), plus one
    low-score box that the export leaves out; none for the DRAW frame."""
    out = {}
    for fid in (ACCEPT, EDIT, EMPTY):
        f = WORLD.frame(fid)
        boxes = np.concatenate([f.boxes, [[1.0, 1.0, 5.0, 5.0]]]).astype(np.float32)
        scores = [0.95 - 0.1 * k for k in range(len(f.labels))] + [MIN_SCORE / 3]
        labels = np.concatenate([f.labels, [0]])
        out[fid] = Detections(
            torch.from_numpy(boxes), torch.tensor(scores), torch.from_numpy(labels)
        )
    return out


def region(rid: str, label: str, x: float, y: float, w: float, h: float) -> dict:
    """A box drawn in Label Studio: a ``rectanglelabels`` region, x/y/w/h in percent."""
    return {
        "id": rid,
        "type": "rectanglelabels",
        "from_name": "label",
        "to_name": "image",
        "original_width": W,
        "original_height": H,
        "image_rotation": 0,
        "value": {
            "x": x,
            "y": y,
            "width": w,
            "height": h,
            "rotation": 0,
            "rectanglelabels": [label],
        },
    }


def in_px(result: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """The boxes ``[x, y, w, h]`` in px and class indices of submitted regions."""
    boxes = [
        [
            r["value"]["x"] * W / 100,
            r["value"]["y"] * H / 100,
            r["value"]["width"] * W / 100,
            r["value"]["height"] * H / 100,
        ]
        for r in result
    ]
    labels = [CLASSES.index(r["value"]["rectanglelabels"][0]) for r in result]
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(labels, dtype=np.int64)


def test_labelling_round_through_a_real_label_studio(labelstudio: LabelStudioClient, tmp_path):
    ls = labelstudio
    with ls.server.show_log_on_failure():
        url = ls.server.document_root / ROOT
        task_image_url = f"/data/local-files/?d={ROOT}/images"
        dets = detections()
        export_for_labelling(
            WORLD,
            IDS,
            str(url),
            dets,
            task_image_url=task_image_url,
            scores=SCORES,
            min_score=MIN_SCORE,
        )
        config = (url / "labeling_config.xml").read_text()
        assert config == labeling_config()
        exported_tasks = json.loads((url / "tasks.json").read_text())

        # project + import, predictions included
        project = ls.create_project("alkit round 1", config)
        task_ids = ls.import_tasks(project, exported_tasks)
        assert ls.last_import["prediction_count"] == 3
        held = {t["data"]["frame_id"]: t for t in ls.tasks(project)}
        assert sorted(held) == sorted(IDS)
        assert [held[fid]["id"] for fid in IDS] == task_ids
        for fid, sent in zip(IDS, exported_tasks, strict=True):
            task = held[fid]
            assert task["data"] == sent["data"]
            assert task["data"]["image"] == f"{task_image_url}/{fid:012d}.png"
            if fid == DRAW:
                assert task["predictions"] == []
                continue
            (pred,) = task["predictions"]
            assert pred["model_version"] == "alkit-ensemble-mean"
            assert pred["score"] == pytest.approx(SCORES[fid])
            truth = WORLD.frame(fid)
            result = pred["result"]
            assert len(result) == len(truth.labels)  # the low-score box was left out
            assert [r["value"]["rectanglelabels"] for r in result] == [
                [CLASSES[c]] for c in truth.labels
            ]
            want = [0.95 - 0.1 * k for k in range(len(truth.labels))]
            assert [r["score"] for r in result] == pytest.approx(want)
            boxes, _ = in_px(result)
            np.testing.assert_allclose(boxes, truth.boxes, atol=1e-3)
        assert "Prediction validation failed" not in ls.server.log.read_text()

        # the server shows the exported images: local-files serving of a connected folder
        ls.connect_local_files(project, url / "images")
        image = held[ACCEPT]["data"]["image"]
        req = urllib.request.Request(ls.url + image, headers={"Authorization": f"Token {ls.token}"})
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req) as resp:
            assert resp.read() == (url / "images" / f"{ACCEPT:012d}.png").read_bytes()

        # label as a person would
        submitted: dict[int, list[dict]] = {}
        pred = held[ACCEPT]["predictions"][0]
        submitted[ACCEPT] = copy.deepcopy(pred["result"])  # accepted as it is

        pred = held[EDIT]["predictions"][0]
        result = copy.deepcopy(pred["result"])
        moved = result[0]["value"]
        assert (moved["x"], moved["y"]) != (75.0, 20.0)
        moved["x"], moved["y"] = 75.0, 20.0  # dragged: 60 px, 9.6 px
        del result[1]  # a false positive, deleted
        other = next(
            c for c in CLASSES if c not in {r["value"]["rectanglelabels"][0] for r in result}
        )
        result.append(region("Kx81nQ2aZt", other, 5.0, 50.0, 12.5, 25.0))  # a missed object
        submitted[EDIT] = result

        submitted[DRAW] = [
            region("a9Hd0Lw3Qe", "person", 10.0, 12.5, 6.25, 37.5),
            region("b7Tq2Xc5Rn", "traffic_light", 61.25, 4.0, 7.5, 20.0),
        ]
        submitted[EMPTY] = []  # every prediction was wrong: nothing to label

        for fid in IDS:
            preds = held[fid]["predictions"]
            annotation = ls.submit_annotation(
                held[fid]["id"],
                submitted[fid],
                lead_time=LEAD[fid],
                parent_prediction=preds[0]["id"] if preds else None,
            )
            assert annotation["result"] == submitted[fid]

        # the user's JSON export, imported by alkit
        export = ls.export(project, "JSON")
        assert sorted(t["data"]["frame_id"] for t in export) == sorted(IDS)
        assert all(len(t["annotations"]) == 1 for t in export)
        labels_path = tmp_path / "labelled.json"
        labels_path.write_text(json.dumps(export))
        batch = import_labels(str(url), str(labels_path))

        assert batch.frame_ids == IDS
        assert batch.source == f"labelstudio:{labels_path}"
        for frame in batch.frames:
            boxes, labels = in_px(submitted[frame.frame_id])
            assert (frame.height, frame.width) == (H, W)
            np.testing.assert_array_equal(frame.labels, labels)
            np.testing.assert_allclose(frame.boxes, boxes, atol=1e-3)
            assert frame.seconds == pytest.approx(LEAD[frame.frame_id]) and frame.measured
        by_id = {f.frame_id: f for f in batch.frames}
        truth = WORLD.frame(ACCEPT)
        np.testing.assert_allclose(by_id[ACCEPT].boxes, truth.boxes, atol=1e-3)
        np.testing.assert_array_equal(by_id[ACCEPT].labels, truth.labels)
        edited = WORLD.frame(EDIT)
        np.testing.assert_allclose(
            by_id[EDIT].boxes[:2],
            [[60.0, 9.6, *edited.boxes[0, 2:]], edited.boxes[2]],
            atol=1e-3,
        )
        assert by_id[EDIT].labels.tolist() == [
            edited.labels[0],
            edited.labels[2],
            CLASSES.index(other),
        ]
        assert len(by_id[EMPTY].labels) == 0 and by_id[EMPTY].boxes.shape == (0, 4)


def test_own_data_loop_resumes_from_a_real_label_studio_export(
    labelstudio: LabelStudioClient,
    tmp_path,
):
    """The loop on own photographs: 02 QUERY, 03 ANNOTATE exports for Label Studio, the
    server takes the tasks, a labeller draws boxes, the export resumes 03, 04 APPEND keeps
    exactly the labeller's boxes in the original images' pixels."""
    from PIL import Image

    from alkit.data.versions import load_version
    from alkit.workflow.steps import annotate_step, append_step, query_step, train_step
    from tests.photos import coco_set, photo_folder

    ls = labelstudio
    labelled = coco_set(tmp_path / "labelled", ("person", "cup"))
    files = {str(f.path): f for f in photo_folder(tmp_path / "pool", ("a", "b"), per_session=2)}
    pool, to_label = str(tmp_path / "pool"), str(tmp_path / "to_label")
    trained = train_step(tmp_path / "01", profile="tiny", labelled=labelled.instances)
    queried = query_step(tmp_path / "02", str(trained.data), str(trained.ensemble), [],
                         profile="tiny", pool=pool, budget=3,
                         classes_of_interest=["person"])  # fmt: skip
    args = (tmp_path / "03", str(trained.data), str(queried.paths["AL"]))
    kw = {"profile": "tiny", "pool": pool, "export_dir": to_label,
          "task_image_url": "/data/local-files/?d="}  # fmt: skip
    with ls.server.show_log_on_failure():
        with pytest.raises(Exception, match="LabelsPending|labels"):
            annotate_step(*args, "", str(trained.ensemble), **kw)
        tasks = json.loads((tmp_path / "to_label" / "tasks.json").read_text())
        config = (tmp_path / "to_label" / "labeling_config.xml").read_text()
        project = ls.create_project("alkit own data", config)
        ls.import_tasks(project, tasks)
        held = ls.tasks(project)
        assert len(held) == 3
        drawn = {}
        for k, task in enumerate(held):
            path = "/" + task["data"]["image"].split("?d=", 1)[1]
            assert path in files  # the original photo, not a copy
            f = files[path]
            with Image.open(path) as img:
                assert img.size == (f.width, f.height)
            result = [
                region(f"own{k}a", "person", 10.0 + k, 15.0, 40.0, 50.0),
                region(f"own{k}b", "cup", 60.0, 60.0, 20.0, 25.5),
            ]
            for r in result:
                r["original_width"], r["original_height"] = f.width, f.height
            drawn[task["data"]["frame_id"]] = (f, result)
            ls.submit_annotation(task["id"], result, lead_time=20.0)
        labels = tmp_path / "ls_export.json"
        labels.write_text(json.dumps(ls.export(project, "JSON")))

    annotated = annotate_step(*args, str(labels), str(trained.ensemble), **kw)
    appended = append_step(tmp_path / "04", str(trained.data), str(annotated.batch),
                           str(queried.paths["AL"]), profile="tiny")  # fmt: skip
    version = load_version(appended.root, appended.version)
    for fid, (f, result) in drawn.items():
        rows = version.boxes[version.boxes.frame_id == fid].sort_values("category")
        want = sorted(
            (r["value"]["rectanglelabels"][0], r["value"]["x"] * f.width / 100,
             r["value"]["y"] * f.height / 100, r["value"]["width"] * f.width / 100,
             r["value"]["height"] * f.height / 100)
            for r in result
        )  # fmt: skip
        assert rows.category.tolist() == [w[0] for w in want]
        np.testing.assert_allclose(rows[["x", "y", "w", "h"]].to_numpy(),
                                   [w[1:] for w in want], atol=1e-3)  # fmt: skip
        assert version.frames.set_index("frame_id").image_uri[fid] == str(f.path)
