"""faster-coco-eval gives pycocotools' AP, to 1e-9, on this project's frames and detections.

The metrics use faster-coco-eval (``engine="auto"``) only because of this test: every AP,
per class and per size bucket, at IoU .50:.95 and at 0.5 alone, must equal pycocotools' on
ground truth rendered by the world (the quick profile's 96 x 160 frames and the full
profile's 384 x 640) against detections of the kinds an evaluation sees: a detector's own
(decoded from a U-Net), boxes near the objects with some missed and false ones (scores
rounded, so many tie), perfect ones, and none.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from alkit.data.classes import CLASSES
from alkit.data.datasets import VirtualFrames
from alkit.detector.network import DetectorConfig, UNetDetector
from alkit.errors import ConfigError
from alkit.evaluate.metrics import evaluate_detections
from alkit.evaluate.predict import predict_coco
from alkit.sim import World, experiment_world

TOLERANCE = 1e-9
AP_COLUMNS = ["AP", "AP50", "AP_small", "AP_medium", "AP_large", "wMAP"]


def world_truth(world: World, frame_ids: list[int]) -> dict:
    images, annotations = [], []
    for fid in frame_ids:
        frame = world.frame(fid)
        h, w = frame.image.shape[:2]
        images.append({"id": fid, "height": h, "width": w})
        for box, label in zip(frame.boxes.tolist(), frame.labels.tolist(), strict=True):
            annotations.append({"id": len(annotations) + 1, "image_id": fid,
                                "category_id": label + 1, "bbox": box})  # fmt: skip
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(CLASSES)]
    return {"images": images, "annotations": annotations, "categories": categories}


def near_boxes(truth: dict, seed: int) -> list[dict]:
    """Each object found with probability 0.8, its box jittered (~15% of its size), plus
    ~3 false boxes per image; scores rounded to 0.05, so many tie."""
    rng = np.random.default_rng(seed)
    dets = []
    for ann in truth["annotations"]:
        if rng.random() < 0.2:
            continue
        x, y, w, h = ann["bbox"]
        j = rng.normal(0.0, 0.15, 4)
        dets.append({"image_id": ann["image_id"], "category_id": ann["category_id"],
                     "bbox": [x + j[0] * w, y + j[1] * h, w * math.exp(j[2]), h * math.exp(j[3])],
                     "score": round(float(rng.random()) * 20) / 20})  # fmt: skip
    for img in truth["images"]:
        for _ in range(int(rng.poisson(3))):
            w, h = rng.uniform(2.0, img["height"] / 4, 2)
            x, y = rng.uniform(0, img["width"] - w), rng.uniform(0, img["height"] - h)
            score = round(float(rng.random()) * 20) / 20
            dets.append({"image_id": img["id"], "category_id": int(rng.integers(1, 6)),
                         "bbox": [x, y, w, h], "score": score})  # fmt: skip
    return dets


def perfect_boxes(truth: dict) -> list[dict]:
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
             "score": 0.9} for a in truth["annotations"]]  # fmt: skip


def table_difference(a: pd.DataFrame, b: pd.DataFrame) -> float:
    """Largest |AP difference| over the AP columns; NaN (no GT) must be NaN in both."""
    x, y = a[AP_COLUMNS].to_numpy(float), b[AP_COLUMNS].to_numpy(float)
    assert np.array_equal(np.isnan(x), np.isnan(y))
    assert (a[["n_small", "n_medium", "n_large", "n_gt"]] == b[["n_small", "n_medium",
            "n_large", "n_gt"]]).all().all()  # fmt: skip
    finite = ~np.isnan(x)
    return float(np.abs(x[finite] - y[finite]).max()) if finite.any() else 0.0


@pytest.fixture(scope="module")
def quick_case() -> tuple[dict, dict[str, list[dict]]]:
    world = World(experiment_world("quick", seed=0, initial=1, pool=6, test=1))
    pool = world.segment_frame_ids("pool")
    ids = list(pool)[::5]  # 120 frames of 6 drives
    truth = world_truth(world, ids)
    torch.manual_seed(0)
    detector = UNetDetector(DetectorConfig(width=8, depth=2, head_width=16))
    own = predict_coco(detector, VirtualFrames(world, ids), threshold=0.05)
    return truth, {"detector": own, "near": near_boxes(truth, 0), "near_2": near_boxes(truth, 1),
                   "perfect": perfect_boxes(truth), "none": []}  # fmt: skip


def test_faster_coco_eval_equals_pycocotools_on_quick_frames(quick_case):
    truth, cases = quick_case
    assert len(truth["annotations"]) > 300 and len(cases["detector"]) > 1000
    worst = {}
    for name, dets in cases.items():
        for iou in (None, [0.5]):
            ref = evaluate_detections(truth, dets, iou_thresholds=iou, engine="pycocotools")
            fast = evaluate_detections(truth, dets, iou_thresholds=iou, engine="faster-coco-eval")
            worst[name, iou is None] = table_difference(ref.table, fast.table)
            auto = evaluate_detections(truth, dets, iou_thresholds=iou)  # engine="auto"
            assert auto.table.equals(fast.table)
    assert max(worst.values()) <= TOLERANCE, worst
    # the cases are not trivial: somewhere AP is neither 0 nor 1
    ref = evaluate_detections(truth, cases["near"], engine="pycocotools").table
    assert ((ref.AP > 0.05) & (ref.AP < 0.95)).any()


def test_faster_coco_eval_equals_pycocotools_on_full_frames():
    world = World(experiment_world("full", seed=1, initial=1, pool=1, test=1))
    ids = list(world.segment_frame_ids("pool"))[::10]  # 10 frames of 384 x 640
    truth = world_truth(world, ids)
    for seed in (0, 1, 2):
        dets = near_boxes(truth, seed)
        ref = evaluate_detections(truth, dets, engine="pycocotools")
        fast = evaluate_detections(truth, dets, engine="faster-coco-eval")
        assert table_difference(ref.table, fast.table) <= TOLERANCE


def test_matches_are_kept_with_pycocotools(quick_case):
    truth, cases = quick_case
    kept = evaluate_detections(truth, cases["near"], matches=True)  # auto: pycocotools
    assert kept.matches is not None and len(kept.matches[0]) > 0
    with pytest.raises(ConfigError, match="matches=True needs engine"):
        evaluate_detections(truth, cases["near"], matches=True, engine="faster-coco-eval")
    with pytest.raises(ConfigError, match="engine must be one of"):
        evaluate_detections(truth, cases["near"], engine="coco")


def test_string_image_ids_fall_back_to_pycocotools():
    box = {"id": 1, "image_id": "a", "category_id": 1, "bbox": [10, 10, 20, 20]}
    truth = {"images": [{"id": "a", "height": 96, "width": 160}], "annotations": [box],
             "categories": [{"id": 1, "name": "car"}]}  # fmt: skip
    got = evaluate_detections(truth, perfect_boxes(truth))
    assert got.table.loc["car", "AP50"] == pytest.approx(1.0)
