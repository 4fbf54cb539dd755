"""evaluate_detections against hand-computed AP and against pycocotools' own summary."""

from __future__ import annotations

import contextlib
import io
import json
import math

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from alkit.data.classes import CLASSES, SizeBuckets
from alkit.detector.network import Detections
from alkit.errors import ConfigError, DataError
from alkit.evaluate.metrics import detections_to_coco, evaluate_detections

# Height 384: buckets are COCO's own, small < 32^2 = 1024 <= medium < 96^2 = 9216 <= large.
H, W = 384, 640
CAR, BICYCLE, PERSON, LIGHT, SIGN = range(1, 6)  # category ids = class index + 1


def coco_gt(objects: list[tuple[int, int, list[float]]], n_images: int = 3) -> dict:
    """``objects``: (image_id, category_id, bbox) -> COCO dict with categories from CLASSES."""
    return {
        "images": [{"id": i, "height": H, "width": W} for i in range(1, n_images + 1)],
        "annotations": [
            {"id": j, "image_id": img, "category_id": cat, "bbox": box, "area": box[2] * box[3]}
            for j, (img, cat, box) in enumerate(objects, start=1)
        ],
        "categories": [{"id": i + 1, "name": name} for i, name in enumerate(CLASSES)],
    }


def perfect(gt: dict, keep=lambda ann: True) -> list[dict]:
    return [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "bbox": a["bbox"],
            "score": 0.9,
        }
        for a in gt["annotations"]
        if keep(a)
    ]


OBJECTS = [
    (1, CAR, [10, 10, 120, 90]),  # large (10800)
    (1, CAR, [300, 200, 40, 30]),  # medium (1200)
    (1, PERSON, [200, 100, 12, 30]),  # small (360)
    (2, PERSON, [50, 60, 30, 70]),  # medium (2100)
    (2, LIGHT, [400, 20, 6, 14]),  # small (84)
    (3, BICYCLE, [100, 200, 60, 50]),  # medium (3000)
    (3, PERSON, [500, 100, 20, 45]),  # small (900)
    (3, PERSON, [560, 100, 22, 50]),  # medium (1100)
]


def test_perfect_detections_give_ap_one_everywhere_present() -> None:
    gt = coco_gt(OBJECTS)
    res = evaluate_detections(gt, perfect(gt))
    t = res.table
    assert list(t.index) == list(CLASSES)
    present = t[t.n_gt > 0]
    # pycocotools' precision is tp / (tp + fp + eps), so "1" is 1 - 2e-16.
    assert np.allclose(present[["AP", "AP50", "wMAP"]], 1.0, rtol=0, atol=1e-12)
    for bucket in ("small", "medium", "large"):
        has = t[f"n_{bucket}"] > 0
        assert np.allclose(t.loc[has, f"AP_{bucket}"], 1.0, rtol=0, atol=1e-12)
        assert t.loc[~has, f"AP_{bucket}"].isna().all()
    assert t.loc["road_sign"].isna()[["AP", "AP50", "wMAP"]].all()
    assert t.loc["person", ["n_small", "n_medium", "n_large", "n_gt"]].tolist() == [2, 2, 0, 4]
    for value in (res.mAP, res.mAP50, res.wMAP, res.mAP_small, res.mAP_medium, res.mAP_large):
        assert value == pytest.approx(1.0, abs=1e-12)
    assert res.size_buckets == SizeBuckets(32.0, 96.0)
    json.dumps(res.to_dict())  # plain values


def test_half_the_objects_missed_gives_51_over_101() -> None:
    gt = coco_gt(OBJECTS)
    people = [a["id"] for a in gt["annotations"] if a["category_id"] == PERSON]
    dets = perfect(gt, keep=lambda a: a["id"] not in people[:2])  # detect 2 of 4 people
    res = evaluate_detections(gt, dets)
    # Recall 0.5 at precision 1: 101-point interpolation gives 1 for thresholds 0..0.50.
    assert res.table.loc["person", "AP50"] == pytest.approx(51 / 101)
    assert res.table.loc["person", "AP"] == pytest.approx(51 / 101)
    assert res.table.loc["car", "AP"] == pytest.approx(1.0)
    assert res.mAP50 == pytest.approx((3 + 51 / 101) / 4)


def test_size_buckets_and_wmap() -> None:
    objects = [
        (1, CAR, [0, 0, 40, 40]),  # medium 1600
        (1, CAR, [100, 0, 50, 60]),  # medium 3000
        (2, CAR, [0, 0, 32, 32]),  # medium: exactly 1024 = 32^2, the lower edge
        (2, CAR, [200, 100, 120, 100]),  # large 12000
    ]
    gt = coco_gt(objects, n_images=2)
    res = evaluate_detections(gt, perfect(gt, keep=lambda a: a["area"] >= 96**2))
    car = res.table.loc["car"]
    assert car[["n_small", "n_medium", "n_large"]].tolist() == [0, 3, 1]
    assert car.AP_large == pytest.approx(1.0) and car.AP_medium == 0.0 and math.isnan(car.AP_small)
    assert car.wMAP == pytest.approx(0.25 * 1.0)
    assert car.AP == pytest.approx(26 / 101)  # recall 1/4 overall
    assert (
        res.mAP_large == pytest.approx(1.0) and res.mAP_medium == 0.0 and math.isnan(res.mAP_small)
    )
    fixed = evaluate_detections(
        gt,
        perfect(gt, keep=lambda a: a["area"] >= 96**2),
        weights={"small": 0.5, "medium": 0.25, "large": 0.25},
    )
    assert fixed.table.loc["car", "wMAP"] == pytest.approx(0.5)  # renormalised over med, large
    # The 32x32 car sits on the small/medium edge: medium only, for counts and for AP.
    edge = perfect(gt, keep=lambda a: a["area"] == 1024)
    res = evaluate_detections(gt, edge)
    assert math.isnan(res.table.loc["car", "AP_small"])
    assert res.table.loc["car", "AP_medium"] == pytest.approx(34 / 101)  # recall 1/3


def test_thresholds_follow_image_height() -> None:
    gt = coco_gt([(1, CAR, [0, 0, 10, 10]), (1, CAR, [50, 0, 30, 30])], n_images=1)
    for img in gt["images"]:
        img["height"] = 96  # quick profile: sides 8 and 24 px
    res = evaluate_detections(gt, perfect(gt))
    assert res.size_buckets == SizeBuckets(8.0, 24.0)
    assert res.table.loc["car", ["n_small", "n_medium", "n_large"]].tolist() == [0, 1, 1]
    res = evaluate_detections(gt, perfect(gt), image_height=384)
    assert res.table.loc["car", ["n_small", "n_medium", "n_large"]].tolist() == [2, 0, 0]
    del gt["images"][0]["height"]
    with pytest.raises(ConfigError, match="image_height"):
        evaluate_detections(gt, [])


def test_empty_detections_give_zero() -> None:
    res = evaluate_detections(coco_gt(OBJECTS), [])
    present = res.table[res.table.n_gt > 0]
    assert (present.AP == 0).all() and (present.AP50 == 0).all() and (present.wMAP == 0).all()
    assert res.mAP == res.mAP50 == res.wMAP == 0.0


def test_categories_are_mapped_by_name() -> None:
    gt = coco_gt(OBJECTS)
    renumber = {CAR: 7, BICYCLE: 3, PERSON: 11, LIGHT: 1, SIGN: 5}
    dets = perfect(gt)  # detections use class index + 1
    gt["categories"] = [{"id": renumber[c["id"]], "name": c["name"]} for c in gt["categories"]]
    for ann in gt["annotations"]:
        ann["category_id"] = renumber[ann["category_id"]]
    res = evaluate_detections(gt, dets)
    assert res.mAP == pytest.approx(1.0)
    assert res.table.loc["person", "n_gt"] == 4
    gt["categories"].append({"id": 99, "name": "tram"})
    with pytest.raises(DataError, match="'tram'"):
        evaluate_detections(gt, dets)


def test_bad_detections_raise() -> None:
    gt = coco_gt(OBJECTS)
    with pytest.raises(DataError, match="image_id 42"):
        evaluate_detections(
            gt, [{"image_id": 42, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1.0}]
        )
    with pytest.raises(DataError, match="category_id 6"):
        evaluate_detections(
            gt, [{"image_id": 1, "category_id": 6, "bbox": [0, 0, 1, 1], "score": 1.0}]
        )


def test_paths_and_detections_to_coco(tmp_path) -> None:
    gt = coco_gt(OBJECTS)
    dets = []
    for image_id in (1, 2, 3):
        anns = [a for a in gt["annotations"] if a["image_id"] == image_id]
        dets.append(
            Detections(
                boxes=torch.tensor([a["bbox"] for a in anns], dtype=torch.float32),
                scores=torch.linspace(0.9, 0.5, len(anns)),
                labels=torch.tensor([a["category_id"] - 1 for a in anns]),
            )
        )
    dets[1] = Detections(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64))
    results = detections_to_coco(np.array([1, 2, 3]), dets)
    assert len(results) == len(OBJECTS) - 2 and type(results[0]["image_id"]) is int
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dets.json").write_text(json.dumps(results))
    res = evaluate_detections(tmp_path / "gt.json", str(tmp_path / "dets.json"))
    assert res.table.loc["car", "AP"] == pytest.approx(1.0)
    assert res.table.loc["traffic_light", "AP"] == 0.0  # its only image had no detections
    with pytest.raises(DataError, match="labels outside"):
        detections_to_coco([1], [Detections(torch.zeros(1, 4), torch.ones(1), torch.tensor([5]))])


def test_agrees_with_pycocotools_summary_on_noisy_detections() -> None:
    rng = np.random.default_rng(0)
    objects = []
    for image_id in range(1, 21):
        for _ in range(rng.integers(1, 6)):
            w, h = rng.uniform(4, 150, size=2)
            x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
            objects.append((image_id, int(rng.integers(1, 6)), [x, y, w, h]))
    gt = coco_gt(objects, n_images=20)
    dets = []
    for a in gt["annotations"]:
        if rng.random() < 0.8:
            x, y, w, h = a["bbox"]
            jitter = rng.normal(0, 0.08, size=4) * [w, h, w, h]
            dets.append(
                {
                    "image_id": a["image_id"],
                    "category_id": a["category_id"],
                    "bbox": [x + jitter[0], y + jitter[1], w + jitter[2], h + jitter[3]],
                    "score": float(rng.random()),
                }
            )
        if rng.random() < 0.3:  # a false positive
            dets.append(
                {
                    "image_id": a["image_id"],
                    "category_id": int(rng.integers(1, 6)),
                    "bbox": [float(v) for v in rng.uniform(0, 200, size=4)],
                    "score": float(rng.random()),
                }
            )
    res = evaluate_detections(gt, dets)

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt_obj = COCO()
        coco_gt_obj.dataset = gt  # plain pycocotools needs 'iscrowd'
        for ann in gt["annotations"]:
            ann["iscrowd"] = 0
        coco_gt_obj.createIndex()
        ref = COCOeval(coco_gt_obj, coco_gt_obj.loadRes(dets), "bbox")
        ref.evaluate()
        ref.accumulate()
        ref.summarize()
    assert 0.2 < res.mAP < 0.9
    assert res.mAP == pytest.approx(ref.stats[0], abs=1e-12)
    assert res.mAP50 == pytest.approx(ref.stats[1], abs=1e-12)
    assert res.mAP_small == pytest.approx(ref.stats[3], abs=1e-12)
    assert res.mAP_medium == pytest.approx(ref.stats[4], abs=1e-12)
    assert res.mAP_large == pytest.approx(ref.stats[5], abs=1e-12)
