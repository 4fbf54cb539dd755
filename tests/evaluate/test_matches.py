"""AP recomputed from kept matches equals pycocotools' AP; image weights count copies."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alkit.data.classes import CLASSES
from alkit.evaluate.matches import average_precision, metrics
from alkit.evaluate.metrics import evaluate_detections

H, W = 96, 160


def noisy_set(seed: int, n_images: int = 30):
    """A COCO ground truth and noisy detections (jittered boxes, misses, false positives)."""
    rng = np.random.default_rng(seed)
    anns, dets = [], []
    for image in range(1, n_images + 1):
        for _ in range(rng.integers(0, 6)):
            w, h = rng.uniform(3, 40, size=2)
            x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
            cat = int(rng.integers(1, 4))
            anns.append({"id": len(anns) + 1, "image_id": image, "category_id": cat,
                         "bbox": [x, y, w, h], "area": w * h})  # fmt: skip
            if rng.random() < 0.75:
                j = rng.normal(0, 0.12, size=4) * [w, h, w, h]
                dets.append({"image_id": image, "category_id": cat, "score": float(rng.random()),
                             "bbox": [x + j[0], y + j[1], w + j[2], h + j[3]]})  # fmt: skip
        for _ in range(rng.integers(0, 3)):  # false positives, some of them tiny or large
            box = [float(v) for v in rng.uniform(0, 60, size=4)]
            dets.append({"image_id": image, "category_id": int(rng.integers(1, 4)),
                         "score": float(rng.random()), "bbox": box})  # fmt: skip
    gt = {
        "images": [{"id": i, "height": H, "width": W} for i in range(1, n_images + 1)],
        "annotations": anns,
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)],
    }
    return gt, dets


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ap50_and_wmap50_from_matches_equal_pycocotools(seed):
    gt, dets = noisy_set(seed)
    res = evaluate_detections(gt, dets, matches=True, iou_thresholds=[0.5])
    detections, truth = res.matches
    for cls in CLASSES[:3]:
        got = metrics(detections, truth, cls)
        # with one IoU threshold, the table's AP per bucket and wMAP are all at IoU 0.5
        assert got["AP50"] == pytest.approx(res.table.at[cls, "AP50"], abs=1e-12)
        assert got["wMAP50"] == pytest.approx(res.table.at[cls, "wMAP"], abs=1e-12)


def test_weight_two_equals_the_images_evaluated_twice():
    gt, dets = noisy_set(3, n_images=12)
    doubled_images = [1, 2, 3]  # images 1..3 again, as images 101..103
    gt2 = {**gt, "images": gt["images"] + [{"id": 100 + i, "height": H, "width": W}
                                           for i in doubled_images]}  # fmt: skip
    gt2["annotations"] = gt["annotations"] + [
        {**a, "id": 1000 + k, "image_id": 100 + a["image_id"]}
        for k, a in enumerate(gt["annotations"]) if a["image_id"] in doubled_images
    ]  # fmt: skip
    dets2 = dets + [{**d, "image_id": 100 + d["image_id"], "score": d["score"] - 1e-9}
                    for d in dets if d["image_id"] in doubled_images]  # fmt: skip
    twice = evaluate_detections(gt2, dets2, iou_thresholds=[0.5])
    detections, truth = evaluate_detections(gt, dets, matches=True, iou_thresholds=[0.5]).matches
    weights = {i: (2.0 if i in doubled_images else 1.0) for i in range(1, 13)}
    for cls in CLASSES[:3]:
        got = metrics(detections, truth, cls, weights)["AP50"]
        assert got == pytest.approx(twice.table.at[cls, "AP50"], abs=0.02)


def test_known_curves():
    # 2 objects; detections TP 0.9, FP 0.8, TP 0.7: precision 1 up to recall 0.5, then 2/3
    ap = average_precision(np.array([0.9, 0.8, 0.7]), np.array([1, 0, 1]), 2)
    assert ap == pytest.approx((51 * 1.0 + 50 * 2 / 3) / 101)
    # an ignored detection changes nothing; weight 0 drops an image's detection
    assert average_precision(np.array([0.9, 0.85, 0.8, 0.7]), np.array([1, -1, 0, 1]), 2) == ap
    w = np.array([1.0, 0.0, 1.0])
    assert average_precision(np.array([0.9, 0.8, 0.7]), np.array([1, 0, 1]), 2, w) == 1.0
    assert math.isnan(average_precision(np.array([0.5]), np.array([0]), 0))
    assert average_precision(np.array([]), np.array([], int), 3) == 0.0
