"""The Label Studio ML backend protocol through FastAPI's test client, on a tiny loop run.

Expected values are computed here: boxes in percent from ``predict_detections`` and the
image sizes, the queue order from the stored score table by its definition (the frame's best
per-class rank interleaved over the classes of interest), labels from the world's ground truth.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from alkit.annotate.labelstudio import labeling_config
from alkit.data.datasets import VirtualFrames
from alkit.data.lineage import lineage
from alkit.data.versions import list_versions, load_version
from alkit.ensemble.store import load_ensemble
from alkit.evaluate.predict import predict_detections
from alkit.query.score import read_scores
from alkit.query.selection import load_selection
from alkit.serve.app import make_app
from alkit.serve.backend import Backend
from alkit.serve.labels import add_labels, annotation_batch
from alkit.workflow.run_data import RunData

pytestmark = pytest.mark.usefixtures("one_thread_module")
PROJECT = 7


def region(rid: str, label: str, box, size) -> dict:
    """A Label Studio ``rectanglelabels`` region of a px box ``[x, y, w, h]``."""
    h, w = size
    x, y, bw, bh = (float(v) for v in box)
    return {
        "id": rid,
        "type": "rectanglelabels",
        "from_name": "label",
        "to_name": "image",
        "original_width": w,
        "original_height": h,
        "image_rotation": 0,
        "value": {
            "x": 100 * x / w,
            "y": 100 * y / h,
            "width": 100 * bw / w,
            "height": 100 * bh / h,
            "rotation": 0,
            "rectanglelabels": [label],
        },
    }


def truth_regions(world, fid: int) -> list[dict]:
    frame = world.frame(fid)
    size = np.asarray(frame.image).shape[:2]
    return [
        region(f"{fid}-{k}", world_classes()[c], b, size)
        for k, (b, c) in enumerate(zip(frame.boxes, frame.labels, strict=True))
    ]


def world_classes():
    from alkit.data.classes import CLASSES

    return CLASSES


def event(action: str, tid: int, fid: int, result: list[dict], ann: int, project=PROJECT):
    """The body Label Studio posts to ``/webhook`` for an annotation."""
    task = {
        "id": tid,
        "data": {"image": f"/data/upload/{fid}.png", "frame_id": fid},
        "project": project,
    }
    annotation = {
        "id": ann,
        "task": tid,
        "result": result,
        "was_cancelled": False,
        "lead_time": 12.5,
    }
    return {
        "action": action,
        "task": task,
        "annotation": annotation,
        "project": {"id": project, "title": "alkit"},
    }


@pytest.fixture
def served(run_dir):
    backend = Backend(run_dir, {"retrain_every": 2})
    client = TestClient(make_app(backend))
    yield backend, client
    backend.close()


def scored_frames(run_dir: Path) -> pd.DataFrame:
    return read_scores(str(run_dir / "out" / "02_query" / "scores" / "AL"))


def test_health_and_setup(served):
    backend, client = served
    health = client.get("/health").json()
    assert health["status"] == "UP" and health["model_version"].startswith("alkit-r0-")
    config = labeling_config(backend.classes)
    answer = client.post("/setup", json={"project": f"{PROJECT}.1712000000", "schema": config})
    assert answer.status_code == 200 and answer.json() == {"model_version": health["model_version"]}
    assert client.get("/health").json()["project"] == PROJECT
    wrong = config.replace('value="person"', 'value="pedestrian"')
    answer = client.post("/setup", json={"project": str(PROJECT), "schema": wrong})
    assert answer.status_code == 422
    assert answer.json()["field"] == "schema" and "pedestrian" in answer.json()["error"]
    other = client.post("/setup", json={"project": "8.1", "schema": config})
    assert other.status_code == 409 and other.json()["field"] == "project"


def test_predictions_are_the_mean_detections_in_percent_ordered_as_al(served, run_dir):
    backend, client = served
    table = scored_frames(run_dir)
    ids = table.frame_id.tolist()
    tasks = [
        {"id": 100 + i, "data": {"image": f"/x/{fid}.png", "frame_id": fid}}
        for i, fid in enumerate(ids)
    ]
    answer = client.post("/predict", json={"tasks": tasks, "project": f"{PROJECT}.1"})
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert len(results) == len(tasks)
    version = client.get("/health").json()["model_version"]
    assert {r["model_version"] for r in results} == {version}

    # the boxes: the ensemble's mean detections >= min_score, in percent of the image
    ensemble = load_ensemble(run_dir / "out" / "01_train_ensemble" / "ensemble.json")
    world = RunData.load(str(run_dir / "out/01_train_ensemble/data.json")).sim
    dets = predict_detections(ensemble, VirtualFrames(world, ids))
    h, w = world.config.image_height, world.config.image_width
    for fid, result in zip(ids, results, strict=True):
        d = dets[fid]
        keep = d.scores.numpy() >= 0.3
        got = [(r["value"]["x"] * w / 100, r["value"]["y"] * h / 100) for r in result["result"]]
        np.testing.assert_allclose(
            np.asarray(got).reshape(-1, 2),
            np.clip(d.boxes.numpy()[keep][:, :2], 0, None),
            atol=1e-3,
        )
        assert [r["score"] for r in result["result"]] == pytest.approx(d.scores.numpy()[keep])
        assert result["acquisition"]["stored"] is True

    # the order: lowest task score first = the interleaved per-class rankings
    classes = ["person", "bicycle"]
    ranks = pd.DataFrame({c: table[c].rank(method="min", ascending=False) - 1 for c in classes})
    position = np.min([ranks[c].to_numpy() * len(classes) + j for j, c in enumerate(classes)], 0)
    want = position / (len(table) * len(classes))
    assert [r["score"] for r in results] == pytest.approx(want)
    first = ids[int(np.argmin([r["score"] for r in results]))]
    picks = load_selection(str(run_dir / "out" / "02_query" / "selections" / "AL.json"))
    assert first == picks.frame_ids[0]  # Label Studio's first task is AL's first pick
    top = results[ids.index(first)]["acquisition"]
    assert top["score"] == pytest.approx(
        float(table.set_index("frame_id").loc[first, picks.picked_for[0]])
    )


def test_an_image_outside_the_pool_is_scored_on_the_fly(served, run_dir, tmp_path):
    backend, client = served
    fid = scored_frames(run_dir).frame_id.iloc[0]
    world = backend.frames.source
    path = tmp_path / "same.png"
    Image.fromarray(np.asarray(world.frame(int(fid)).image)).save(path)
    tasks = [
        {"id": 1, "data": {"frame_id": int(fid), "image": "x"}},
        {"id": 2, "data": {"image": str(path)}},
    ]
    pool, url = client.post("/predict", json={"tasks": tasks}).json()["results"]
    assert pool["acquisition"]["stored"] and not url["acquisition"]["stored"]
    assert url["result"] == [dict(r, id=r["id"].replace(f"{fid}-", "url-")) for r in pool["result"]]
    # the stored scores were computed so too, in another process; a frame's mean MI of ~1e-6
    # nats is a float32 difference of entropies up to ln 2, so it carries ~1e-7 of rounding
    for c, s in pool["acquisition"]["scores"].items():
        assert url["acquisition"]["scores"][c] == pytest.approx(s, rel=1e-4, abs=1e-7)
    assert url["score"] == pytest.approx(pool["score"], abs=2 / (2 * 10_000))


def test_annotations_are_appended_once_with_lineage_and_updates_replace(served, run_dir):
    backend, client = served
    world = backend.frames.source
    fid = int(scored_frames(run_dir).frame_id.iloc[3])
    result = truth_regions(world, fid)
    before = set(list_versions(backend.root))
    start = time.perf_counter()
    answer = client.post("/webhook", json=event("ANNOTATION_CREATED", 11, fid, result, 501))
    assert time.perf_counter() - start < 1.0  # Label Studio's webhook timeout
    assert answer.status_code == 200 and answer.json()["status"] == "appended"
    head = answer.json()["version"]
    assert set(list_versions(backend.root)) - before == {head}
    version = load_version(backend.root, head)
    truth = world.frame(fid)
    rows = version.boxes[version.boxes.frame_id == fid]
    got = sorted(zip(rows.category, *(rows[k].round(2) for k in "xywh"), strict=True))
    want = sorted(
        (world_classes()[c], *np.round(b, 2))
        for b, c in zip(truth.boxes.tolist(), truth.labels, strict=True)
    )
    assert [g[0] for g in got] == [w[0] for w in want]
    np.testing.assert_allclose([g[1:] for g in got], [w[1:] for w in want], atol=0.011)
    chain = lineage(backend.root, head)
    assert chain[0]["added_frames"] == 1 and chain[0]["parent"] == backend.state.base
    assert chain[0]["params"]["task"] == 11 and chain[0]["labelling"]["seconds"] == 12.5

    again = client.post("/webhook", json=event("ANNOTATION_CREATED", 11, fid, result, 501))
    assert again.json()["status"] == "unchanged" and again.json()["version"] == head
    assert set(list_versions(backend.root)) - before == {head}

    fewer = result[1:] if len(result) > 1 else []
    updated = client.post("/webhook", json=event("ANNOTATION_UPDATED", 11, fid, fewer, 501))
    assert updated.json()["status"] == "appended"
    new = load_version(backend.root, updated.json()["version"])
    assert new.parent == head and len(new) == len(version)
    assert (new.boxes.frame_id == fid).sum() == len(result) - 1
    assert json.loads((run_dir / "serve" / "state.json").read_text())["head"] == new.hash


def test_bad_input_is_refused_naming_task_and_field_and_nothing_is_appended(served, run_dir):
    backend, client = served
    world = backend.frames.source
    fid = int(scored_frames(run_dir).frame_id.iloc[1])
    good = truth_regions(world, fid) or [region("r", "car", [2, 2, 10, 10], (96, 160))]
    before = sorted(list_versions(backend.root))
    h, w = world.config.image_height, world.config.image_width

    unknown = [dict(good[0], value=dict(good[0]["value"], rectanglelabels=["unicorn"]))]
    outside = [region("o", "car", [w - 5, 10, 40, 20], (h, w))]
    cases = [
        (event("ANNOTATION_CREATED", 21, fid, unknown, 601), 422, "category"),
        (event("ANNOTATION_CREATED", 22, fid, outside, 602), 422, "bbox"),
        (event("ANNOTATION_CREATED", 23, fid, good, 603, project=99), 409, "project"),
        (event("ANNOTATION_CREATED", 24, 10**9, good, 604), 422, "data.frame_id"),
    ]
    client.post("/setup", json={"project": str(PROJECT)})
    for body, status, field in cases:
        answer = client.post("/webhook", json=body)
        assert answer.status_code == status, answer.json()
        assert answer.json()["field"] == field
        if status == 422:
            assert str(body["task"]["id"]) in answer.json()["error"]
            assert answer.json()["task"] == body["task"]["id"]
    malformed = client.post(
        "/webhook", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400 and malformed.json()["field"] == "body"
    assert client.post("/webhook", json={"no": "action"}).status_code == 400
    unreadable = client.post(
        "/predict", json={"tasks": [{"id": 5, "data": {"image": "/nope/a.png"}}]}
    )
    assert unreadable.status_code == 422
    assert unreadable.json()["task"] == 5 and unreadable.json()["field"] == "data.image"
    assert client.post("/predict", json={"tasks": "x"}).status_code == 400
    assert sorted(list_versions(backend.root)) == before
    assert client.get("/health").json()["status"] == "UP"  # still serving
    assert (
        client.post("/webhook", json=event("ANNOTATION_CREATED", 25, fid, good, 605)).json()[
            "status"
        ]
        == "appended"
    )


def test_a_kill_during_an_append_loses_nothing_and_duplicates_nothing(run_dir):
    backend = Backend(run_dir, {"retrain_every": 100, "qa": False})
    world = backend.frames.source
    fid = int(scored_frames(run_dir).frame_id.iloc[2])
    body = event("ANNOTATION_CREATED", 31, fid, truth_regions(world, fid), 701)
    batch = annotation_batch(backend.frames, body["task"], body["annotation"])
    # the version is written, then the process dies before state.json records it
    written = add_labels(backend.root, backend.head, batch, {"task": 31})
    assert json.loads((run_dir / "serve" / "state.json").read_text())["head"] == backend.state.base
    restarted = Backend(run_dir, {"retrain_every": 100, "qa": False})
    assert restarted.head.hash == written.hash and restarted.labels_since_training == 1
    again = TestClient(make_app(restarted)).post("/webhook", json=body).json()
    assert again["status"] == "unchanged" and len(list_versions(restarted.root)) == 2


def test_labels_retrain_in_the_background_and_the_model_version_changes(served, run_dir):
    backend, client = served
    world = backend.frames.source
    ids = scored_frames(run_dir).frame_id.tolist()
    old = client.get("/health").json()["model_version"]
    tasks = [{"id": 1, "data": {"frame_id": ids[0], "image": "x"}}]
    for k, fid in enumerate(ids[4:6]):
        start = time.perf_counter()
        answer = client.post(
            "/webhook",
            json=event("ANNOTATION_CREATED", 40 + k, fid, truth_regions(world, fid), 800 + k),
        )
        assert time.perf_counter() - start < 1.0
    assert answer.json()["training"] == "started"
    assert client.get("/health").json()["training"] is True
    during = client.post("/predict", json={"tasks": tasks}).json()  # served meanwhile
    assert during["model_version"] == old
    assert backend.retrainer.wait(600) == 0
    for _ in range(100):  # the watcher thread swaps the model in
        if client.get("/health").json()["round"] == 1:
            break
        time.sleep(0.1)
    health = client.get("/health").json()
    assert health["round"] == 1 and health["model_version"] != old
    assert health["model_version"].startswith("alkit-r1-") and health["labels_since_training"] == 0
    after = client.post("/predict", json={"tasks": tasks}).json()
    assert after["model_version"] == health["model_version"]
    done = json.loads((run_dir / "serve" / "rounds" / "001" / "done.json").read_text())
    trained = load_version(backend.root, done["trained_on"])
    assert set(ids[4:6]) <= set(trained.frame_ids)  # the new labels were trained on
    assert (run_dir / "serve" / "qa").is_dir()
    restarted = Backend(run_dir, {"retrain_every": 2})
    assert restarted.health()["model_version"] == health["model_version"]  # a restart keeps it


class RecordingLabelStudio:
    """Stands in for ``LabelStudioAPI``: records the tasks the backend marks."""

    def __init__(self):
        self.marked: list[tuple[int, dict, dict]] = []

    def read(self, path: str) -> bytes:
        raise AssertionError(f"no image is fetched from Label Studio here: {path}")

    def mark_task(self, task: int, data: dict, meta: dict) -> dict:
        self.marked.append((task, data, meta))
        return {"id": task}


def test_label_qa_flags_go_back_to_the_task(run_dir):
    ls = RecordingLabelStudio()
    backend = Backend(run_dir, {"retrain_every": 100}, label_studio=ls)
    client = TestClient(make_app(backend))
    world = backend.frames.source
    fid = int(scored_frames(run_dir).frame_id.iloc[2])
    body = event("ANNOTATION_CREATED", 21, fid, truth_regions(world, fid)[1:], 601)
    body["task"]["meta"] = {"team": "night"}
    assert client.post("/webhook", json=body).json()["status"] == "appended"
    for _ in range(300):  # QA runs in a thread of its own
        if ls.marked:
            break
        time.sleep(0.1)
    ((task, data, meta),) = ls.marked
    table = pd.read_csv(next((run_dir / "serve" / "qa").glob("qa-*.csv")))
    flagged = table[table.flagged]
    assert task == 21
    assert data["frame_id"] == fid and data["image"] == f"/data/upload/{fid}.png"  # kept
    assert data["alkit_qa_flags"] == len(flagged)
    assert meta["team"] == "night"  # kept
    qa = meta["alkit_qa"]
    assert qa["model_version"] == backend.model.version
    assert qa["flags"] == {
        k: int((flagged.kind == k).sum()) for k in ("overlooked", "swap", "badloc")
    }
    assert len(qa["boxes"]) == min(10, len(flagged))
    if flagged.empty and not table.image_flagged.any():
        assert data["alkit_qa"] == "ok"
    else:
        assert data["alkit_qa"].startswith(f"{len(flagged)} flag")
    backend.close()
