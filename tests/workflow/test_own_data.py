"""The loop on a team's own data, end to end on real photographs: a labelled COCO set, a pool
(a folder of images, a video), the export for Label Studio, the labeller's export back,
APPEND, the next TRAIN and EVALUATE; and what bad input says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from alkit.annotate.tool import LabelsPending, export_for_labelling
from alkit.data.sources import open_pool
from alkit.data.versions import list_versions, load_version
from alkit.detector.network import Detections
from alkit.errors import ConfigError, DataError
from alkit.workflow.run_data import check_own_data
from alkit.workflow.steps import (
    annotate_step,
    append_step,
    evaluate_step,
    query_step,
    train_step,
)
from tests.photos import KNOWN_BOXES, coco_set, photo, photo_folder, photo_video

CLASSES3 = ("person", "cat", "cup")
REPO = Path(__file__).resolve().parents[2]


def _labelstudio_export(tasks: list[dict], regions: dict[int, list[tuple]]) -> list[dict]:
    """What Label Studio's JSON export holds after a labeller drew ``regions``:
    frame id -> ``[(class, x%, y%, w%, h%)]`` (sizes come from the task's image)."""
    from PIL import Image

    out = []
    for k, task in enumerate(tasks, 1):
        fid = task["data"]["frame_id"]
        with Image.open(task["data"]["image"]) as img:
            width, height = img.size
        result = [
            {"id": f"r{k}-{j}", "type": "rectanglelabels", "from_name": "label",
             "to_name": "image", "original_width": width, "original_height": height,
             "value": {"x": x, "y": y, "width": w, "height": h, "rotation": 0,
                       "rectanglelabels": [label]}}
            for j, (label, x, y, w, h) in enumerate(regions.get(fid, []))
        ]  # fmt: skip
        out.append({"id": k, "data": task["data"], "annotations": [{"id": k, "result": result}]})
    return out


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """A three-class COCO set, a folder pool, and round 1 trained and queried on them."""
    root = tmp_path_factory.mktemp("own")
    labelled = coco_set(root / "labelled", CLASSES3)
    test = coco_set(root / "test", CLASSES3)
    files = photo_folder(root / "pool")
    trained = train_step(root / "01", profile="tiny", labelled=labelled.instances)
    queried = query_step(root / "02", str(trained.data), str(trained.ensemble), ["RANDOM"],
                         profile="tiny", pool=str(root / "pool"), budget=3,
                         classes_of_interest=["person"])  # fmt: skip
    return root, labelled, test, files, trained, queried


def _annotate(own, labels: str = "", out: str = "03"):
    root, _, _, _, trained, queried = own
    return annotate_step(root / out, str(trained.data), str(queried.paths["AL"]), labels,
                         str(trained.ensemble), profile="tiny", pool=str(root / "pool"),
                         export_dir=str(root / "to_label"))  # fmt: skip


@pytest.mark.slow
def test_round_trip_on_a_folder_pool(own):
    root, labelled, test, files, trained, queried = own
    assert json.loads(trained.data.read_text())["classes"] == list(CLASSES3)
    picks = queried.selections["AL"]
    assert len(picks.frame_ids) == 3
    with pytest.raises(LabelsPending, match="labels"):
        _annotate(own)
    export = root / "to_label"
    tasks = json.loads((export / "tasks.json").read_text())
    by_path = {str(f.path): f for f in files}
    scores = dict(zip(picks.frame_ids, picks.scores, strict=True))
    for task in tasks:  # the original image where it is, its score, boxes in % of it
        assert task["data"]["image"] in by_path
        fid = task["data"]["frame_id"]
        assert task["data"]["uncertainty"] == pytest.approx(scores[fid])
        assert task["predictions"][0]["score"] == pytest.approx(scores[fid])
        for region in task["predictions"][0]["result"]:
            f = by_path[task["data"]["image"]]
            assert (region["original_width"], region["original_height"]) == (f.width, f.height)
            v = region["value"]
            assert 0 <= v["x"] and v["x"] + v["width"] <= 100 + 1e-6
    config = (export / "labeling_config.xml").read_text()
    assert all(f'value="{c}"' in config for c in CLASSES3)
    coco = json.loads((export / "coco.json").read_text())
    sizes = {(i["file_name"], i["width"], i["height"]) for i in coco["images"]}
    assert sizes == {(t["data"]["image"], by_path[t["data"]["image"]].width,
                      by_path[t["data"]["image"]].height) for t in tasks}  # fmt: skip

    # the labeller draws one box per frame; alkit must keep exactly these, in pixels
    ids = [t["data"]["frame_id"] for t in tasks]
    drawn = {fid: [("cup" if k == 1 else "person", 10.0 + k, 20.0, 30.0, 40.0)]
             for k, fid in enumerate(ids)}  # fmt: skip
    labels = root / "export_1.json"
    labels.write_text(json.dumps(_labelstudio_export(tasks, drawn)))
    annotated = _annotate(own, str(labels))
    appended = append_step(root / "04", str(trained.data), str(annotated.batch),
                           str(queried.paths["AL"]), profile="tiny")  # fmt: skip
    version = load_version(appended.root, appended.version)
    initial = json.loads((root / "labelled" / "annotations" / "instances.json").read_text())
    assert len(version) == len(initial["images"]) + 3
    for task in tasks:
        fid, f = task["data"]["frame_id"], by_path[task["data"]["image"]]
        (label, x, y, w, h) = drawn[fid][0]
        want = [x * f.width / 100, y * f.height / 100, w * f.width / 100, h * f.height / 100]
        rows = version.boxes[version.boxes.frame_id == fid]
        assert rows.category.tolist() == [label]
        np.testing.assert_allclose(rows[["x", "y", "w", "h"]].to_numpy()[0], want, atol=1e-3)
        frame = version.frames.set_index("frame_id").loc[fid]
        assert frame.image_uri == str(f.path) and (frame.height, frame.width) == (f.height, f.width)
        assert frame.session_id == f.session

    # the same labels again append nothing new
    again = append_step(root / "04b", str(trained.data), str(annotated.batch),
                        str(queried.paths["AL"]), versions_root=appended.root,
                        profile="tiny")  # fmt: skip
    assert again.version == appended.version

    # the next TRAIN trains on the appended version (images letterboxed), EVALUATE on test
    round2 = train_step(root / "05", str(root / "04" / "version.json"), profile="tiny")
    assert round2.version == appended.version and round2.frames == len(version)
    table = evaluate_step(root / "06", str(round2.data), str(round2.ensemble),
                          profile="tiny", test=test.instances)  # fmt: skip
    assert set(table["class"]) == set(CLASSES3) and set(table.test_set) == {"test"}
    n_gt = table[(table.metric == "AP50")].set_index("class").n_gt
    assert n_gt.to_dict() == {"person": 12, "cat": 4, "cup": 4}  # the photos' known boxes

    # the frames labelled in round 1 are left out of round 2's query
    again_q = query_step(root / "02b", str(round2.data), str(round2.ensemble), ["RANDOM"],
                         profile="tiny", pool=str(root / "pool"), budget=len(files) - 3,
                         classes_of_interest=["person"])  # fmt: skip
    assert set(again_q.selections["AL"].frame_ids) == {
        int(i) for i in open_pool(str(root / "pool"), (64, 96)).frame_ids
    } - set(ids)


def test_bad_labels_are_refused_and_nothing_is_appended(own):
    root, _, _, _, trained, queried = own
    with pytest.raises(LabelsPending):
        _annotate(own, out="03x")
    tasks = json.loads((root / "to_label" / "tasks.json").read_text())
    fid = tasks[0]["data"]["frame_id"]
    cases = {
        "unknown class": ({fid: [("dog", 1.0, 1.0, 5.0, 5.0)]}, "dog"),
        "box outside": ({fid: [("person", 90.0, 10.0, 30.0, 5.0)]}, str(fid)),
    }
    for name, (regions, message) in cases.items():
        path = root / f"bad_{name.replace(' ', '_')}.json"
        path.write_text(json.dumps(_labelstudio_export(tasks, regions)))
        with pytest.raises(DataError, match=message):
            _annotate(own, str(path), out="03x")
    stranger = _labelstudio_export(tasks, {})
    stranger[0]["data"] = {**stranger[0]["data"], "frame_id": 12345}
    path = root / "bad_stranger.json"
    path.write_text(json.dumps(stranger))
    with pytest.raises(DataError, match="12345"):
        _annotate(own, str(path), out="03x")
    assert not (root / "03x" / "batch.json").exists()


def test_export_maps_a_known_box_back_to_the_photo(tmp_path):
    (tmp_path / "pool").mkdir()
    image = photo("astronaut")  # 512 x 512
    from PIL import Image

    Image.fromarray(image).save(tmp_path / "pool" / "a.png")
    pool = open_pool(str(tmp_path / "pool"), (64, 96))
    fid = pool.frame_ids[0]
    x, y, w, h = KNOWN_BOXES["astronaut"][1]
    # by hand: 512 x 512 into 64 x 96 is scaled by 1/8 and centred 16 px from the left
    in_box = [x / 8 + 16, y / 8, w / 8, h / 8]
    dets = {fid: Detections(torch.tensor([in_box]), torch.tensor([0.9]), torch.tensor([0]))}
    export_for_labelling(pool.source, [fid], str(tmp_path / "export"), dets, classes=["person"],
                         scores={fid: 0.25})  # fmt: skip
    task = json.loads((tmp_path / "export" / "tasks.json").read_text())[0]
    value = task["predictions"][0]["result"][0]["value"]
    got = [value["x"], value["y"], value["width"], value["height"]]
    np.testing.assert_allclose(got, [100 * v / 512 for v in (x, y, w, h)], atol=1e-4)
    assert task["data"] == {"image": str(tmp_path / "pool" / "a.png"), "frame_id": fid,
                            "uncertainty": 0.25}  # fmt: skip
    coco = json.loads((tmp_path / "export" / "coco.json").read_text())
    np.testing.assert_allclose(coco["annotations"][0]["bbox"], [x, y, w, h], atol=1e-3)
    assert not (tmp_path / "export" / "images").exists()  # image files are not copied


@pytest.mark.slow
def test_round_trip_on_a_video_pool(tmp_path):
    labelled = coco_set(tmp_path / "labelled", ("person",))
    frames = photo_video(tmp_path / "pool" / "drive.mp4", n_frames=12, fps=12, size=(120, 160))
    trained = train_step(tmp_path / "01", profile="tiny", labelled=labelled.instances)
    pool = str(tmp_path / "pool")
    queried = query_step(tmp_path / "02", str(trained.data), str(trained.ensemble), [],
                         profile="tiny", pool=pool, fps=6, budget=2,
                         classes_of_interest=["person"])  # fmt: skip
    ids = list(queried.selections["AL"].frame_ids)
    args = (tmp_path / "03", str(trained.data), str(queried.paths["AL"]))
    kw = {"profile": "tiny", "pool": pool, "fps": 6, "export_dir": str(tmp_path / "to_label")}
    with pytest.raises(LabelsPending):
        annotate_step(*args, **kw)
    tasks = json.loads((tmp_path / "to_label" / "tasks.json").read_text())
    meta = open_pool(pool, (64, 96), fps=6).metadata.set_index("frame_id")
    for task in tasks:  # a frame extracted next to the export, at the video's size
        from PIL import Image

        fid = task["data"]["frame_id"]
        index = int(meta.loc[fid, "frame_index"])
        assert index % 2 == 0  # 6 of 12 fps
        with Image.open(task["data"]["image"]) as img:
            extracted = np.asarray(img.convert("RGB"))
        assert extracted.shape == (120, 160, 3)
        assert np.abs(extracted.astype(int) - frames[index]).mean() < 8  # lossy video
    labels = tmp_path / "labels.json"
    drawn = {fid: [("person", 25.0, 25.0, 50.0, 50.0)] for fid in ids}
    labels.write_text(json.dumps(_labelstudio_export(tasks, drawn)))
    annotated = annotate_step(*args, str(labels), **kw)
    appended = append_step(tmp_path / "04", str(trained.data), str(annotated.batch),
                           str(queried.paths["AL"]), profile="tiny")  # fmt: skip
    version = load_version(appended.root, appended.version)
    uris = version.frames.set_index("frame_id").image_uri
    assert all(uris[fid].endswith(f"#frame={int(meta.loc[fid, 'frame_index'])}") for fid in ids)
    boxes = version.boxes[version.boxes.frame_id.isin(ids)]
    np.testing.assert_allclose(boxes[["x", "y", "w", "h"]].to_numpy(), [[40, 30, 80, 60]] * 2)
    round2 = train_step(tmp_path / "05", str(tmp_path / "04" / "version.json"), profile="tiny")
    assert round2.frames == len(version)  # video frames decoded for training


def test_bad_own_data_is_named_before_training(tmp_path):
    labelled = coco_set(tmp_path / "labelled", ("person",))
    (tmp_path / "empty").mkdir()
    photo_folder(tmp_path / "pool", sessions=("a",), per_session=1)
    base = {"labelled": labelled.instances, "pool": str(tmp_path / "pool"), "input_size": [64, 96]}
    with pytest.raises(ConfigError, match=r"classes_of_interest \['bicycle'\].*\['person'\]"):
        check_own_data(base | {"classes_of_interest": ["bicycle"]})
    with pytest.raises(ConfigError, match=r"classes \['dog'\] are not categories"):
        check_own_data(base | {"classes": ["dog"]})
    with pytest.raises(DataError, match="empty"):
        check_own_data(base | {"pool": str(tmp_path / "empty")})
    with pytest.raises(DataError, match="not found"):
        check_own_data(base | {"labelled": str(tmp_path / "missing.json")})
    assert check_own_data(base | {"classes_of_interest": ["person"]}).classes == ("person",)


@pytest.mark.slow
def test_cli_stops_for_labels_then_resumes(tmp_path):
    """``python -m alkit run loop`` on own data: export, stop with how to resume, resume."""
    labelled = coco_set(tmp_path / "labelled", ("person",))
    photo_folder(tmp_path / "pool", sessions=("a", "b"), per_session=2)
    run_dir = tmp_path / "run"
    base = [sys.executable, "-m", "alkit", "run", "loop", "--run-dir", str(run_dir),
            "--profile", "tiny", "--no-progress", "-p", f"labelled={labelled.instances}",
            "-p", f"pool={tmp_path / 'pool'}", "-p", 'classes_of_interest=["person"]',
            "-p", "budget=2"]  # fmt: skip
    first = subprocess.run(base, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert first.returncode == 3, first.stderr[-3000:]
    assert f"{run_dir / 'to_label'}/" in first.stderr and "-p labels=EXPORT.json" in first.stderr
    tasks = json.loads((run_dir / "to_label" / "tasks.json").read_text())
    assert len(tasks) == 2
    drawn = {t["data"]["frame_id"]: [("person", 5.0, 5.0, 50.0, 60.0)] for t in tasks}
    labels = tmp_path / "ls_export.json"
    labels.write_text(json.dumps(_labelstudio_export(tasks, drawn)))
    second = subprocess.run([*base, "-p", f"labels={labels}"], cwd=REPO, capture_output=True,
                            text=True, timeout=900)  # fmt: skip
    assert second.returncode == 0, second.stderr[-3000:]
    evaluation = (run_dir / "out" / "05_evaluate" / "evaluation.csv").read_text()
    assert evaluation.strip() == "test_set,class,metric,value,n_gt"  # no test set given
    where = json.loads((run_dir / "out" / "04_append" / "version.json").read_text())
    assert len(list_versions(where["root"])) == 2  # the initial set and the appended one
    version = load_version(where["root"], where["hash"])
    assert len(version) == 12 + 2
    record = json.loads(
        (run_dir / "out" / "round2_01_train_ensemble" / "ensemble.json").read_text()
    )
    assert where["hash"] in json.dumps(record)  # round 2 trained on the appended version


def test_a_test_set_with_more_categories_keeps_only_the_run_classes(tmp_path):
    """The test file's own categories decide what is left out (not the labelled file's)."""
    from alkit.workflow.run_data import CocoData

    labelled = coco_set(tmp_path / "labelled", ("person",))
    test = coco_set(tmp_path / "test", CLASSES3)
    data = CocoData.of_coco(labelled.instances, input_size=(64, 96))
    (frames,) = data.test_sets([], test=test.instances).values()
    assert len(frames) == 20  # every image of the three-class set
    labels = [int(lab) for i in range(len(frames)) for lab in frames[i]["labels"]]
    assert labels == [0] * 12  # the 12 person boxes; cat and cup are left out
