"""Active learning inside a real Label Studio 1.23.2 (``tests/labelstudio.py``).

``python -m alkit serve`` runs as its own process on a tiny loop run; the test connects it to
a project (``POST /api/ml``), imports the pool's scored frames as tasks, has Label Studio ask
it for predictions, turns on "Uncertainty sampling", labels the first tasks of the queue
through the API (the world's ground truth as the labeller's boxes), sees label QA's flags
come back to those tasks, and waits for the
backend to retrain and push a new ``model_version``: Label Studio's next task then follows
the new model's scores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from alkit.annotate.labelstudio import labeling_config
from alkit.data.classes import CLASSES
from alkit.data.versions import list_versions
from alkit.query.score import read_scores
from alkit.workflow.run_data import RunData
from tests.labelstudio import LabelStudioClient, free_port
from tests.serve.test_protocol import truth_regions

pytestmark = pytest.mark.slow
N_TASKS = 12


def get_json(url: str) -> dict:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as resp:
        return json.loads(resp.read())


def wait_for(check, timeout: float, what: str, step: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def predictions_of(ls: LabelStudioClient, project: int) -> dict[int, list[dict]]:
    return {t["id"]: t["predictions"] for t in ls.tasks(project)}


def test_active_learning_inside_label_studio(labelstudio, run_dir, tmp_path):
    ls = labelstudio
    port = free_port()
    backend_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [
        sys.executable,
        "-m",
        "alkit",
        "serve",
        "--run-dir",
        str(run_dir),
        "--port",
        str(port),
        "-p",
        "retrain_every=2",
        "--label-studio-url",
        ls.url,
        "--label-studio-token",
        ls.token,
    ]
    with log.open("w") as out:
        server = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        with ls.server.show_log_on_failure():
            _round_trip(ls, backend_url, run_dir, server, log)
    except BaseException:
        print("--- alkit serve log ---\n" + log.read_text(errors="replace")[-6000:])
        raise
    finally:
        server.terminate()
        server.wait(30)


def _round_trip(ls, backend_url, run_dir, server, log):
    wait_for(lambda: server.poll() is None and _up(backend_url), 300, "alkit serve to start")
    first_version = get_json(f"{backend_url}/health")["model_version"]

    # a project with alkit's labelling interface; the pool's scored frames as tasks
    data = RunData.load(str(run_dir / "out" / "01_train_ensemble" / "data.json"))
    world = data.sim
    table = read_scores(str(run_dir / "out" / "02_query" / "scores" / "AL"))
    ids = table.frame_id.tolist()[:N_TASKS]
    images = ls.server.document_root / "serve"
    images.mkdir()
    for fid in ids:
        Image.fromarray(np.asarray(world.frame(fid).image)).save(images / f"{fid}.png")
    project = ls.create_project("alkit active learning", labeling_config(data.classes))
    ls.connect_local_files(project, images)
    tasks = [
        {"data": {"image": f"/data/local-files/?d=serve/{fid}.png", "frame_id": fid}} for fid in ids
    ]
    task_ids = ls.import_tasks(project, tasks)
    frame_of = dict(zip(task_ids, ids, strict=True))

    # connect the backend: Label Studio checks /health and /setup
    ml = ls.request(
        "POST",
        "/api/ml/",
        {"project": project, "url": backend_url, "title": "alkit", "is_interactive": False},
    )
    assert ml["state"] == "CO", ml  # connected
    assert get_json(f"{backend_url}/health")["project"] == project

    # Label Studio asks the backend for every task's prediction
    ls.request(
        "POST",
        "/api/dm/actions",
        {"selectedItems": {"all": True, "excluded": []}},
        {"id": "retrieve_tasks_predictions", "project": project},
    )
    held = predictions_of(ls, project)
    assert all(len(p) == 1 for p in held.values()), held
    assert {p[0]["model_version"] for p in held.values()} == {first_version}
    for (pred,) in held.values():
        for region in pred["result"]:
            assert region["type"] == "rectanglelabels"
            assert region["value"]["rectanglelabels"][0] in CLASSES
            assert 0 <= region["value"]["x"] <= 100 and 0 <= region["value"]["width"] <= 100
    scores = {tid: p[0]["score"] for tid, p in held.items()}

    # "Uncertainty sampling": the open-source edition orders by the current model's
    # prediction score, lowest first
    answer = ls.request(
        "PATCH",
        f"/api/projects/{project}/",
        {"sampling": "Uncertainty sampling", "model_version": first_version},
    )
    assert answer["sampling"] == "Uncertainty sampling"
    assert answer["model_version"] == first_version
    queue = ls.request("GET", f"/api/projects/{project}/next")
    assert queue["id"] == min(scores, key=scores.get)

    # label the queue's first two tasks as a labeller would; the webhook appends them
    labelled = []
    for _ in range(2):
        task = ls.request("GET", f"/api/projects/{project}/next")
        assert task["id"] not in labelled
        fid = frame_of[task["id"]]
        ls.submit_annotation(task["id"], truth_regions(world, fid), lead_time=15.0)
        labelled.append(task["id"])
    root = str(run_dir / "serve" / "versions")
    wait_for(lambda: len(list_versions(root)) == 3, 30, "two appended versions")

    # label QA's flags come back to each labelled task: data manager columns and meta
    def marked():
        got = [ls.request("GET", f"/api/tasks/{tid}/") for tid in labelled]
        return got if all("alkit_qa" in t["data"] for t in got) else None

    for task in wait_for(marked, 300, "label QA on the labelled tasks", step=2):
        fid = frame_of[task["id"]]
        assert task["data"]["frame_id"] == fid  # the task's own data kept
        assert task["data"]["image"] == f"/data/local-files/?d=serve/{fid}.png"
        qa = task["meta"]["alkit_qa"]
        assert set(qa["flags"]) == {"overlooked", "swap", "badloc"}
        assert task["data"]["alkit_qa_flags"] == sum(qa["flags"].values())
        assert qa["model_version"] == first_version

    # the backend retrains in the background and pushes a new model_version
    def new_version():
        health = get_json(f"{backend_url}/health")
        assert health["last_error"] is None, health["last_error"]
        return health["model_version"] if health["round"] == 1 else None

    second = wait_for(new_version, 900, "the retrained model", step=3)
    assert second != first_version and second.startswith("alkit-r1-")
    project_now = wait_for(
        lambda: (
            (p := ls.request("GET", f"/api/projects/{project}/"))["model_version"] == second and p
        ),
        120,
        "the project's new model",
    )
    assert project_now["sampling"] == "Uncertainty sampling"
    held = predictions_of(ls, project)
    new_scores = {}
    for tid, preds in held.items():
        versions = [p["model_version"] for p in preds]
        assert versions.count(second) == 1, versions
        new_scores[tid] = next(p["score"] for p in preds if p["model_version"] == second)
    open_tasks = {t: s for t, s in new_scores.items() if t not in labelled}
    queue = ls.request("GET", f"/api/projects/{project}/next")
    assert queue["id"] == min(open_tasks, key=open_tasks.get)  # the new model's order
    before = {t: s for t, s in scores.items() if t not in labelled}
    old_order = sorted(before, key=lambda t: (before[t], t))
    new_order = sorted(open_tasks, key=lambda t: (open_tasks[t], t))
    print(f"queue under {first_version}: {old_order}\nqueue under {second}: {new_order}")
    assert old_order != new_order  # the queue re-ordered
    # and the task a labeller gets next is another one than the old model would have given
    # (this seeded run's; another run's two orders could share their first task by chance)
    assert new_order[0] != old_order[0] and queue["id"] == new_order[0]
    # "Start Training" (POST /api/ml/<id>/train) reaches /webhook as START_TRAINING
    ls.request("POST", f"/api/ml/{ml['id']}/train", {})
    wait_for(lambda: "START_TRAINING" in log.read_text() or None, 30, "START_TRAINING", 0.5)
    state = ls.request("GET", f"/api/ml/{ml['id']}")
    assert state["state"] != "ER", state
    text = log.read_text()
    assert "Traceback" not in text


def _up(url: str) -> bool:
    try:
        return get_json(f"{url}/health").get("status") == "UP"
    except OSError:
        return False
