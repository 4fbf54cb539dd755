"""COCO-style detection metrics per class and per object-size bucket, via pycocotools.

AP is pycocotools' 101-point interpolated average precision (``COCOeval`` with
``iouType="bbox"``, at most 100 detections per image); this module only sets its parameters
and reads ``COCOeval.eval["precision"]`` per class, as ``COCOeval.summarize`` does overall.

**Engine.** ``faster-coco-eval``'s ``COCOeval_faster`` (the same ``COCOeval`` interface,
``evaluateImg`` and ``accumulate`` in C++) computes the same precision array several times
faster; it is used unless the per-image matches are kept (``matches=True`` reads pycocotools'
``COCOeval.evalImgs``, which it does not fill) or an image id is not an int (it casts ids to
int). Its AP equals pycocotools' to 1e-9 on this project's detections (tested,
``tests/evaluate/test_metrics.py``); ``engine="pycocotools"`` forces pycocotools.

**Size buckets** (``alkit.data.classes.SizeBuckets``), by GT ``area`` (``w * h`` px^2 if absent):
``small``: area < small_max_side^2; ``medium``: small_max_side^2 <= area < medium_max_side^2;
``large``: area >= medium_max_side^2. By default they are COCO's 32 and 96 px sides scaled
by ``image_height / 384``: 8 and 24 px for the quick profile's 96 px tall images (areas 64
and 576 px^2), COCO's own 32 and 96 px (1024 and 9216 px^2) for the full profile's 384 px.
The buckets are half-open as written (pycocotools' own ranges are closed; the upper ends are
nudged down by one ulp so an object on a threshold falls in exactly one bucket).

**wMAP** of a class = sum over buckets s of ``w_s * AP_s``, where by default ``w_s`` is the
share of that class's (non-crowd) GT objects in bucket s, so buckets without GT get weight 0.
Fixed ``weights`` (e.g. ``{"small": 0.2, "medium": 0.3, "large": 0.5}``) may be given instead;
they are then renormalised over the buckets in which the class has GT.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import fsspec
import numpy as np
import pandas as pd
from faster_coco_eval import COCO as FastCOCO
from faster_coco_eval import COCOeval_faster
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from alkit.data.classes import CLASSES, SizeBuckets
from alkit.detector.network import Detections
from alkit.errors import ConfigError, DataError
from alkit.evaluate.matches import match_tables

BUCKETS: tuple[str, ...] = ("small", "medium", "large")
ENGINES: tuple[str, ...] = ("auto", "faster-coco-eval", "pycocotools")

PathLike = str | os.PathLike


@dataclass(frozen=True)
class EvalResult:
    """Metrics of one evaluation.

    ``table`` has one row per class (index: class name) with columns ``AP`` (IoU .50:.95),
    ``AP50``, ``AP_small``, ``AP_medium``, ``AP_large`` (NaN where the class has no GT in
    that bucket), ``n_small``, ``n_medium``, ``n_large``, ``n_gt`` (non-crowd GT objects) and
    ``wMAP``. The overall numbers are means over the classes that have GT (for ``mAP_<bucket>``:
    GT in that bucket); NaN if there are none.
    """

    mAP: float
    mAP50: float
    mAP_small: float
    mAP_medium: float
    mAP_large: float
    wMAP: float
    table: pd.DataFrame = field(repr=False)
    size_buckets: SizeBuckets
    iou_thresholds: tuple[float, ...]
    #: ``(detections, truth)`` of ``alkit.evaluate.matches.match_tables`` when asked for
    matches: tuple[pd.DataFrame, pd.DataFrame] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain values: the overall metrics plus ``per_class`` {class: {column: value}}."""
        overall = {
            name: getattr(self, name)
            for name in ("mAP", "mAP50", "mAP_small", "mAP_medium", "mAP_large", "wMAP")
        }
        per_class = {
            name: {
                col: (float(v) if col.startswith("AP") or col == "wMAP" else int(v))
                for col, v in row.items()
            }
            for name, row in self.table.iterrows()
        }
        return {**overall, "per_class": per_class}


def _load_json(source: Any, what: str) -> Any:
    if isinstance(source, str | os.PathLike):
        try:
            with fsspec.open(os.fspath(source), "r") as f:
                return json.load(f)
        except (OSError, json.JSONDecodeError) as err:
            raise DataError(f"cannot read {what} from {os.fspath(source)!r}: {err}") from err
    return source


def _ground_truth(gt: dict[str, Any], classes: Sequence[str]) -> dict[str, Any]:
    """A fresh COCO dict with category ids 1..C in ``classes`` order (mapped by name),
    annotation ids 1..N (pycocotools treats id 0 as 'unmatched'), ``area`` and ``iscrowd``."""
    for key in ("images", "annotations", "categories"):
        if key not in gt:
            raise DataError(f"ground truth has no {key!r} list (expected COCO instances format)")
    new_id = {}
    for cat in gt["categories"]:
        if cat["name"] not in classes:
            raise DataError(
                f"ground-truth category {cat['name']!r} (id {cat['id']}) is not one of the "
                f"classes {list(classes)}"
            )
        new_id[cat["id"]] = classes.index(cat["name"]) + 1
    annotations = []
    for i, ann in enumerate(gt["annotations"], start=1):
        if ann.get("category_id") not in new_id:
            raise DataError(
                f"ground-truth annotation {ann.get('id', i)!r} (image {ann.get('image_id')!r}) "
                f"has category_id {ann.get('category_id')!r}, not in the categories list"
            )
        x, y, w, h = (float(v) for v in ann["bbox"])
        annotations.append(
            {
                "id": i,
                "image_id": ann["image_id"],
                "category_id": new_id[ann["category_id"]],
                "bbox": [x, y, w, h],
                "area": float(ann.get("area", w * h)),
                "iscrowd": int(ann.get("iscrowd", 0)),
            }
        )
    return {
        "images": [dict(img) for img in gt["images"]],
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": name} for i, name in enumerate(classes)],
    }


def _detections(
    dets: Sequence[dict[str, Any]], gt: dict[str, Any], num_classes: int
) -> dict[str, Any]:
    image_ids = {img["id"] for img in gt["images"]}
    annotations = []
    for i, det in enumerate(dets, start=1):
        if det["image_id"] not in image_ids:
            raise DataError(f"detection {i - 1} refers to image_id {det['image_id']!r}, not in GT")
        if not 1 <= det["category_id"] <= num_classes:
            raise DataError(
                f"detection {i - 1} has category_id {det['category_id']!r}; "
                f"expected 1..{num_classes} (class index + 1)"
            )
        x, y, w, h = (float(v) for v in det["bbox"])
        annotations.append(
            {
                "id": i,
                "image_id": det["image_id"],
                "category_id": int(det["category_id"]),
                "bbox": [x, y, w, h],
                "area": w * h,
                "score": float(det["score"]),
                "iscrowd": 0,
            }
        )
    return {"images": gt["images"], "annotations": annotations, "categories": gt["categories"]}


def _coco(dataset: dict[str, Any]) -> COCO:
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _quiet(*_args, **_kwargs) -> None:
    """faster-coco-eval's ``print_function``: says nothing."""


def _cocoeval(gt: dict[str, Any], dets: dict[str, Any], engine: str):
    """An unevaluated bbox ``COCOeval`` of ``engine`` over the two prepared COCO dicts."""
    if engine == "pycocotools":
        return COCOeval(_coco(gt), _coco(dets), iouType="bbox")
    fast_gt = FastCOCO(gt, print_function=_quiet)
    fast_dt = FastCOCO(dets, print_function=_quiet)
    return COCOeval_faster(fast_gt, fast_dt, iouType="bbox", print_function=_quiet)


def _engine(engine: str, gt: dict[str, Any], matches: bool) -> str:
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine != "auto":
        if engine == "faster-coco-eval" and matches:
            raise ConfigError("matches=True needs engine 'pycocotools' (or 'auto')")
        return engine
    int_ids = all(type(img["id"]) is int for img in gt["images"])
    return "pycocotools" if matches or not int_ids else "faster-coco-eval"


def _image_height(gt: dict[str, Any]) -> int:
    heights = {img.get("height") for img in gt["images"]}
    if None in heights or not heights:
        raise ConfigError(
            "ground-truth images lack 'height'; pass image_height or size_buckets to evaluate"
        )
    if len(heights) > 1:
        raise ConfigError(
            f"ground-truth images have different heights {sorted(heights)}; pass size_buckets "
            "(or image_height) to fix one set of size thresholds"
        )
    return int(heights.pop())


def _mean_ap(precision: np.ndarray) -> float:
    """Mean of pycocotools precision entries that are set (-1 marks 'no GT')."""
    valid = precision[precision > -1]
    return float(valid.mean()) if valid.size else math.nan


def _wmap(ap: dict[str, float], counts: dict[str, int], weights: dict[str, float] | None):
    if weights is None:
        total = sum(counts.values())
        w = {s: counts[s] / total if total else 0.0 for s in BUCKETS}
    else:
        present = {s: weights.get(s, 0.0) for s in BUCKETS if counts[s] > 0}
        norm = sum(present.values())
        w = {s: present.get(s, 0.0) / norm if norm else 0.0 for s in BUCKETS}
    if not any(w.values()):
        return math.nan
    return float(sum(w[s] * ap[s] for s in BUCKETS if w[s] > 0))


def evaluate_detections(
    ground_truth: dict[str, Any] | PathLike,
    detections: Sequence[dict[str, Any]] | PathLike,
    classes: Sequence[str] = CLASSES,
    size_buckets: SizeBuckets | None = None,
    image_height: int | None = None,
    iou_thresholds: Sequence[float] | None = None,
    weights: dict[str, float] | None = None,
    matches: bool = False,
    engine: str = "auto",
) -> EvalResult:
    """COCO bbox AP per class and size bucket, and wMAP (see the module docstring).

    Args:
        ground_truth: COCO instances dict, or a path/fsspec URL to its JSON: ``images``
            (``id``, ``height``), ``annotations`` (``image_id``, ``category_id``, ``bbox`` xywh
            px, optional ``area``, ``iscrowd``), ``categories`` (``id``, ``name``). Categories
            are matched to ``classes`` by name.
        detections: COCO result dicts (``image_id``, ``category_id`` = class index + 1,
            ``bbox`` xywh px, ``score``), or a path to their JSON list; may be empty.
        classes: class names; category id ``i + 1`` is ``classes[i]``.
        size_buckets: size thresholds; default ``SizeBuckets.for_height(image_height)``.
        image_height: image height in px; default read from the GT images.
        iou_thresholds: IoU thresholds; default COCO's 0.50:0.05:0.95.
        weights: fixed per-bucket wMAP weights instead of the GT shares.
        matches: also keep the per-image matches at IoU 0.5 (``EvalResult.matches``), to
            recompute AP on resamples of the images (``alkit.evaluate.matches``).
        engine: ``"auto"`` (faster-coco-eval, or pycocotools where matches are kept),
            ``"faster-coco-eval"`` or ``"pycocotools"`` (see the module docstring).
    """
    classes = tuple(classes)
    gt = _ground_truth(_load_json(ground_truth, "ground truth"), classes)
    dets = _detections(_load_json(detections, "detections"), gt, len(classes))
    if weights is not None and (set(weights) - set(BUCKETS) or min(weights.values()) < 0):
        raise ConfigError(f"weights must map a subset of {BUCKETS} to values >= 0, got {weights}")
    if size_buckets is None:
        size_buckets = SizeBuckets.for_height(image_height or _image_height(gt))
    ranges = size_buckets.area_ranges()
    labels = ["all", *BUCKETS]
    area_rng = [[float(ranges[name][0]), float(ranges[name][1])] for name in labels]
    for rng in area_rng[1:-1]:  # make [lo, hi] closed ranges half-open [lo, hi)
        rng[1] = float(np.nextafter(rng[1], -np.inf))

    coco_eval = _cocoeval(gt, dets, _engine(engine, gt, matches))
    coco_eval.params.areaRng = area_rng
    coco_eval.params.areaRngLbl = labels
    if iou_thresholds is not None:
        coco_eval.params.iouThrs = np.asarray(iou_thresholds, dtype=np.float64)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval.evaluate()
        coco_eval.accumulate()
    precision = coco_eval.eval["precision"]  # (T, R, K, A, M)
    iou_thrs = coco_eval.params.iouThrs
    at50 = np.isclose(iou_thrs, 0.5)

    counts_of = {k: {s: 0 for s in BUCKETS} for k in range(len(classes))}
    for ann in gt["annotations"]:
        if not ann["iscrowd"]:
            counts_of[ann["category_id"] - 1][size_buckets.bucket(ann["area"])] += 1
    rows = {}
    for k, name in enumerate(classes):
        p = precision[:, :, k, :, -1]  # (T, R, A) at maxDets = 100
        counts = counts_of[k]
        ap = {s: _mean_ap(p[:, :, 1 + i]) for i, s in enumerate(BUCKETS)}
        rows[name] = {
            "AP": _mean_ap(p[:, :, 0]),
            "AP50": _mean_ap(p[at50, :, 0]),
            **{f"AP_{s}": ap[s] for s in BUCKETS},
            **{f"n_{s}": counts[s] for s in BUCKETS},
            "n_gt": sum(counts.values()),
            "wMAP": _wmap(ap, counts, weights),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "class"

    def mean(col: str, count: str = "n_gt") -> float:
        values = table.loc[table[count] > 0, col]
        return float(values.mean()) if len(values) else math.nan

    return EvalResult(
        mAP=mean("AP"),
        mAP50=mean("AP50"),
        mAP_small=mean("AP_small", "n_small"),
        mAP_medium=mean("AP_medium", "n_medium"),
        mAP_large=mean("AP_large", "n_large"),
        wMAP=mean("wMAP"),
        table=table,
        size_buckets=size_buckets,
        iou_thresholds=tuple(float(t) for t in iou_thrs),
        matches=match_tables(coco_eval, classes) if matches else None,
    )


def detections_to_coco(
    frame_ids: Sequence[Any], detections: Sequence[Detections], classes: Sequence[str] = CLASSES
) -> list[dict[str, Any]]:
    """``decode()`` output -> COCO result dicts (``category_id`` = label + 1).

    Args:
        frame_ids: image id of each entry of ``detections`` (the GT's ``images[].id``).
        detections: one ``Detections`` per frame, boxes xywh in pixels.
        classes: class names, to check the labels' range.
    """
    if len(frame_ids) != len(detections):
        raise DataError(f"got {len(frame_ids)} frame ids but {len(detections)} detection sets")
    results = []
    for frame_id, det in zip(frame_ids, detections, strict=True):
        image_id = frame_id.item() if isinstance(frame_id, np.generic) else frame_id
        labels = det.labels.tolist()
        if labels and not 0 <= min(labels) <= max(labels) < len(classes):
            raise DataError(
                f"frame {image_id!r}: labels outside [0, {len(classes)}): {sorted(set(labels))}"
            )
        results.extend(
            {"image_id": image_id, "category_id": label + 1, "bbox": box, "score": score}
            for box, score, label in zip(
                det.boxes.tolist(), det.scores.tolist(), labels, strict=True
            )
        )
    return results
