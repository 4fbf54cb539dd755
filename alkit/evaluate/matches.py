"""Detection matches at IoU 0.5, kept per image so AP can be recomputed on any (re)sample of
the test images, e.g. a bootstrap over test sessions (``alkit.experiments.stats``).

pycocotools matches each image's detections to its ground truth once (``COCOeval.evaluate``);
``match_tables`` reads those matches, at IoU 0.5 and for every area range, out of
``COCOeval.evalImgs``:

- ``detections``: ``class | image_id | score | all | small | medium | large``, one row per
  detection of a class with ground truth; a range's column holds 1 (true positive), 0 (false
  positive) or -1 (ignored in that range: matched to an ignored object, or unmatched and
  outside the range);
- ``truth``: ``class | image_id | all | small | medium | large``: non-ignored objects.

``average_precision`` then does what ``COCOeval.accumulate`` does for one class and range
(detections in descending score order, stable; precision made monotone; read at 101 recall
points), with an optional weight per image: weight 1 everywhere gives pycocotools' AP
(tested), an integer weight counts an image that many times (its detections and its objects;
ties between copies are one step of the curve). ``metrics`` gives AP@0.5 and the size-weighted
wMAP at IoU 0.5 (``alkit.evaluate.metrics``' weights: the class's GT shares per bucket).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

RANGES = ("all", "small", "medium", "large")
#: pycocotools' recall points
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def match_tables(coco_eval, classes) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(detections, truth)`` at IoU 0.5 of an evaluated ``COCOeval`` whose ``areaRngLbl`` are
    ``RANGES`` (see the module docstring); ``classes[k]`` is category ``catIds[k]``."""
    p = coco_eval.params
    t = int(np.flatnonzero(np.isclose(p.iouThrs, 0.5))[0])
    n_img, n_area = len(p.imgIds), len(p.areaRng)
    order = [list(p.areaRngLbl).index(r) for r in RANGES]
    dets, truth = [], []
    for k, name in enumerate(classes):
        for i, image in enumerate(p.imgIds):
            per_range = [coco_eval.evalImgs[k * n_area * n_img + a * n_img + i] for a in order]
            first = per_range[0]
            if first is None:  # no detection and no object of this class in the image
                continue
            truth.append([name, image, *(int((e["gtIgnore"] == 0).sum()) for e in per_range)])
            if not first["dtIds"]:
                continue
            codes = [np.where(e["dtIgnore"][t], -1, e["dtMatches"][t] > 0) for e in per_range]
            for j, score in enumerate(first["dtScores"]):
                dets.append([name, image, float(score), *(int(c[j]) for c in codes)])
    detections = pd.DataFrame(dets, columns=["class", "image_id", "score", *RANGES])
    truth_table = pd.DataFrame(truth, columns=["class", "image_id", *RANGES])
    return detections.astype({r: "int8" for r in RANGES}), truth_table


def average_precision(
    scores: np.ndarray, codes: np.ndarray, n_truth: float,
    weights: np.ndarray | None = None,
) -> float:  # fmt: skip
    """101-point AP of one class and range: ``scores`` ``(D,)``, ``codes`` ``(D,)`` (1 TP, 0 FP,
    -1 ignored), ``n_truth`` non-ignored objects (weighted), ``weights`` ``(D,)`` per detection
    (its image's); NaN without objects."""
    order = np.argsort(-scores, kind="mergesort")
    w = None if weights is None else weights[order]
    return sorted_average_precision(codes[order], n_truth, w)


def sorted_average_precision(
    codes: np.ndarray, n_truth: float, weights: np.ndarray | None = None
) -> float:
    """``average_precision`` of detections already in descending score order (stable)."""
    if n_truth <= 0:
        return math.nan
    keep = codes >= 0 if weights is None else (codes >= 0) & (weights > 0)
    tp = codes[keep] == 1
    w = np.ones(tp.size) if weights is None else weights[keep]  # a copy counted w times
    tp_sum = np.cumsum(w * tp)  # (D',) one step of the curve per kept detection
    fp_sum = np.cumsum(w * ~tp)
    if not tp_sum.size:
        return 0.0
    recall = tp_sum / n_truth
    precision = tp_sum / (tp_sum + fp_sum + np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # monotone, as accumulate does
    at = np.searchsorted(recall, RECALL_POINTS, side="left")
    q = np.zeros(RECALL_POINTS.size)
    valid = at < precision.size
    q[valid] = precision[at[valid]]
    return float(q.mean())


def metrics(
    detections: pd.DataFrame, truth: pd.DataFrame, cls: str,
    image_weights: Mapping[int, float] | None = None,
) -> dict[str, float]:  # fmt: skip
    """``{"AP50": ..., "wMAP50": ...}`` of class ``cls`` from ``match_tables``' tables, each
    image counted ``image_weights[image_id]`` times (absent: 0) or once when ``None``."""
    d = detections[detections["class"] == cls]
    d = d.iloc[np.argsort(-d.score.to_numpy(), kind="mergesort")]
    g = truth[truth["class"] == cls]
    if image_weights is None:
        wd, wg = None, np.ones(len(g))
    else:
        wd = d.image_id.map(image_weights).fillna(0.0).to_numpy(float)
        wg = g.image_id.map(image_weights).fillna(0.0).to_numpy(float)
    counts = (g[list(RANGES)].to_numpy(float).T * wg).sum(axis=1)  # (4,)
    ap50, wmap50 = sorted_metrics(d[list(RANGES)].to_numpy(np.int8).T, counts, wd)
    return {"AP50": float(ap50), "wMAP50": float(wmap50)}


def sorted_metrics(
    codes: np.ndarray, counts: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """``[AP50, wMAP50]`` of detections in descending score order: ``codes`` ``(4, D)`` per
    range of ``RANGES``, ``counts`` ``(4,)`` non-ignored objects per range (weighted),
    ``weights`` ``(D,)`` per detection or ``None``."""
    ap = {r: sorted_average_precision(codes[i], counts[i], weights) for i, r in enumerate(RANGES)}
    return np.array([ap["all"], size_weighted(ap, dict(zip(RANGES, counts, strict=True)))])


def size_weighted(ap: Mapping[str, float], counts: Mapping[str, float]) -> float:
    """wMAP: the buckets' APs weighted by their shares of the class's objects."""
    total = sum(counts[s] for s in RANGES[1:])
    if not total:
        return math.nan
    return float(sum(counts[s] / total * ap[s] for s in RANGES[1:] if counts[s] > 0))


__all__ = [
    "RANGES",
    "RECALL_POINTS",
    "average_precision",
    "match_tables",
    "metrics",
    "size_weighted",
    "sorted_average_precision",
    "sorted_metrics",
]
