"""Pre-annotations: the ensemble's detections as boxes a labelling tool shows.

Every box that leaves alkit is in the original image's pixels: :func:`in_original` maps
detections on a letterboxed model input back, :func:`kept_boxes` keeps the sure ones,
clipped to the image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from alkit.data.letterbox import Letterbox
from alkit.detector.network import Detections
from alkit.errors import DataError

#: a kept box: ``([x, y, w, h] px, class index, score)``
KeptBox = tuple[list[float], int, float]


def as_numpy(values: Any) -> np.ndarray:
    """A tensor or array-like as a numpy array (on the CPU)."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def kept_boxes(dets: Detections, height: int, width: int, min_score: float) -> list[KeptBox]:
    """Detections with score >= ``min_score``, clipped to the ``height`` x ``width`` image:
    ``[(xywh px, label, score)]``."""
    boxes = as_numpy(dets.boxes).astype(np.float64).reshape(-1, 4)  # (K, 4)
    scores = as_numpy(dets.scores).astype(np.float64).reshape(-1)  # (K,)
    labels = as_numpy(dets.labels).astype(np.int64).reshape(-1)  # (K,)
    if not len(boxes) == len(scores) == len(labels):
        raise DataError(
            f"detections: {len(boxes)} boxes, {len(scores)} scores, {len(labels)} labels"
        )
    x0 = np.clip(boxes[:, 0], 0, width)
    y0 = np.clip(boxes[:, 1], 0, height)
    x1 = np.clip(boxes[:, 0] + boxes[:, 2], 0, width)
    y1 = np.clip(boxes[:, 1] + boxes[:, 3], 0, height)
    keep = (scores >= min_score) & (x1 > x0) & (y1 > y0) & np.isfinite(scores)
    return [
        ([x0[k], y0[k], x1[k] - x0[k], y1[k] - y0[k]], int(labels[k]), float(scores[k]))
        for k in np.flatnonzero(keep)
    ]


def in_original(dets: Detections, box: Letterbox) -> Detections:
    """Detections on a letterboxed input, with their boxes in the original image's px
    (clipped to it); boxes entirely in the padding are dropped."""
    boxes = box.to_original(as_numpy(dets.boxes).astype(np.float64).reshape(-1, 4))  # (K, 4)
    keep = (boxes[:, 2] > 0) & (boxes[:, 3] > 0)  # (K,)
    scores = as_numpy(dets.scores).reshape(-1)[keep]  # (K',)
    labels = as_numpy(dets.labels).reshape(-1)[keep]  # (K',)
    return Detections(boxes[keep].astype(np.float32), scores, labels)


def frame_detections(
    detections: Mapping[int, Detections] | None,
    fid: int,
    size: tuple[int, int],
    min_score: float,
    classes: Sequence[str],
) -> list[KeptBox]:
    """The kept pre-annotations of frame ``fid`` of ``size`` (H, W) px; ``[]`` without any."""
    dets = (detections or {}).get(fid)
    if dets is None:
        return []
    try:
        kept = kept_boxes(dets, size[0], size[1], min_score)
    except DataError as err:
        raise DataError(f"frame {fid}: {err}") from None
    bad = [c for _, c, _ in kept if not 0 <= c < len(classes)]
    if bad:
        raise DataError(
            f"frame {fid}: detections field 'labels' has {bad[0]}, outside 0..{len(classes) - 1}"
        )
    return kept


__all__ = ["KeptBox", "as_numpy", "frame_detections", "in_original", "kept_boxes"]
