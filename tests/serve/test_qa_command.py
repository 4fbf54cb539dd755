"""``python -m alkit qa`` and notebook 50 on a loop run; ``serve --help``, ``qa --help``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import papermill
import pytest

from alkit.cli import main
from alkit.data.classes import CLASSES
from alkit.query.score import read_scores
from alkit.workflow.pipeline import NOTEBOOKS
from alkit.workflow.run_data import RunData
from tests.serve.test_protocol import truth_regions

pytestmark = pytest.mark.usefixtures("one_thread_module")


def labelled_tasks(run_dir, n=4):
    """A Label Studio JSON export of ``n`` pool frames labelled with the world's truth, the
    first box of the first frame given another class."""
    world = RunData.load(str(run_dir / "out/01_train_ensemble/data.json")).sim
    ids = read_scores(str(run_dir / "out/02_query/scores/AL")).frame_id.tolist()[:n]
    tasks = []
    for k, fid in enumerate(ids):
        result = truth_regions(world, fid)
        if k == 0 and result:
            label = result[0]["value"]["rectanglelabels"][0]
            other = next(c for c in CLASSES if c != label)
            result[0]["value"]["rectanglelabels"] = [other]
        tasks.append(
            {
                "id": k + 1,
                "data": {"frame_id": fid, "image": f"/x/{fid}.png"},
                "annotations": [{"id": 10 + k, "result": result, "was_cancelled": False}],
            }
        )
    return world, ids, tasks


def test_qa_command_writes_the_table_and_its_lineage(run_dir, tmp_path, capsys):
    world, ids, tasks = labelled_tasks(run_dir)
    labels = tmp_path / "export.json"
    labels.write_text(json.dumps(tasks))
    out = tmp_path / "qa" / "table.csv"
    assert main(["qa", "--run-dir", str(run_dir), "--labels", str(labels), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{len(ids)} frames ({len(ids)} the ensemble did not train on)" in printed
    table = pd.read_csv(out)
    assert sorted(table.frame_id.unique()) == sorted(ids)
    n_boxes = sum(len(world.frame(f).labels) for f in ids)
    assert (table.kind == "swap").sum() == n_boxes == (table.kind == "badloc").sum()
    assert table.held_out.all()
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["frames"] == len(ids) and record["boxes"] == n_boxes
    assert set(record["flags"]) == {"overlooked", "swap", "badloc"}
    assert record["params"]["labels"] == str(labels) and len(record["ensemble"]) == 2

    coco = {
        "images": [{"id": f, "file_name": f"{f}.png", "height": 96, "width": 160} for f in ids],
        "annotations": [],
        "categories": [{"id": 1, "name": "car"}],
    }
    k = 0
    for f in ids:
        for b, c in zip(world.frame(f).boxes.tolist(), world.frame(f).labels, strict=True):
            if CLASSES[c] == "car":
                k += 1
                coco["annotations"].append(
                    {
                        "id": k,
                        "image_id": f,
                        "category_id": 1,
                        "bbox": b,
                        "area": b[2] * b[3],
                        "iscrowd": 0,
                    }
                )
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(coco))
    assert main(["qa", "--run-dir", str(run_dir), "--labels", str(path)]) == 0
    table = pd.read_csv(run_dir / "qa" / "qa.csv")
    assert (table.kind == "swap").sum() == k

    bad = tmp_path / "bad.json"
    tasks[1]["annotations"][0]["result"][0]["value"]["rectanglelabels"] = ["unicorn"]
    bad.write_text(json.dumps(tasks))
    assert main(["qa", "--run-dir", str(run_dir), "--labels", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "unicorn" in err and "category" in err and f"frame {ids[1]}" in err


def test_notebook_50_runs_on_a_loop_run(run_dir, tmp_path):
    _, _, tasks = labelled_tasks(run_dir, 3)
    labels = tmp_path / "export.json"
    labels.write_text(json.dumps(tasks))
    out = tmp_path / "50.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / "50_label_qa.ipynb"),
        str(out),
        parameters={
            "run_dir": str(run_dir),
            "labels": str(labels),
            "out_dir": str(tmp_path / "qa"),
        },
        progress_bar=False,
        cwd=str(tmp_path),
    )
    assert (tmp_path / "qa" / "qa.csv").exists() and (tmp_path / "qa" / "qa.json").exists()
    widget = json.loads(out.read_text())["cells"][-1]["outputs"]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in widget)


@pytest.mark.parametrize("command", ["serve", "qa"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    assert "--run-dir" in capsys.readouterr().out


def test_qa_viewer_draws_each_flagged_box():
    from alkit_widgets import QAViewer

    rows = [
        {
            "frame_id": 1,
            "kind": "swap",
            "category": "car",
            "predicted_class": "person",
            "x": 2.0,
            "y": 2.0,
            "w": 8.0,
            "h": 6.0,
            "score": 0.2,
            "flagged": True,
        },
        {
            "frame_id": 1,
            "kind": "badloc",
            "category": "car",
            "predicted_class": "car",
            "x": 2.0,
            "y": 2.0,
            "w": 8.0,
            "h": 6.0,
            "score": 0.9,
            "flagged": False,
        },
        {
            "frame_id": 2,
            "kind": "overlooked",
            "category": "person",
            "predicted_class": "person",
            "x": 10.0,
            "y": 4.0,
            "w": 5.0,
            "h": 9.0,
            "score": 0.05,
            "flagged": True,
        },
    ]
    seen = []
    viewer = QAViewer(
        pd.DataFrame(rows), lambda f: seen.append(f) or np.zeros((20, 30, 3), np.uint8)
    )
    assert seen == [2] and "missed object" in viewer._caption.value  # worst first
    viewer.index = 1
    assert seen == [2, 1] and "class swap" in viewer._caption.value
    viewer.kind = "overlooked"
    assert viewer.index == 0 and len(viewer.rows) == 1
    import io

    from PIL import Image

    image = np.asarray(Image.open(io.BytesIO(viewer._image.value)))
    assert image.shape[:2] == (20, 30) and image[4, 12].tolist() == [0, 220, 255]
