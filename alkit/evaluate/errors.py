"""What a detector gets wrong on each frame, against the ground truth: missed objects and false
detections per class (what the ORACLE selection ranks frames by, ``query.baselines``).

A detection counts when its score is at least ``score_threshold`` (``TrainConfig``'s decode
threshold, 0.3, by default). Per frame and class, detections in descending score order each
take the unmatched ground-truth box of that class they overlap most, if that IoU is at least
``iou_threshold`` (0.5), as COCO matches; a ground-truth box left unmatched is *missed*, a
detection left unmatched is *false*.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from torch.utils.data import Dataset

from alkit.data.classes import CLASSES
from alkit.errors import ConfigError, DataError
from alkit.evaluate.predict import _predictions
from alkit.query.baselines import error_columns

#: The detections that count as found (``TrainConfig.decode_threshold``'s default).
ERROR_SCORE_THRESHOLD = 0.3


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes ``a`` ``[N, 4]`` and ``b`` ``[K, 4]``, COCO xywh px -> ``[N, K]``."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])  # [N, K, 2]
    hi = np.minimum(a[:, None, :2] + a[:, None, 2:], b[None, :, :2] + b[None, :, 2:])
    inter = np.clip(hi - lo, 0.0, None).prod(axis=2)  # [N, K]
    union = a[:, None, 2:].prod(axis=2) + b[None, :, 2:].prod(axis=2) - inter  # [N, K]
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def match_errors(
    det_boxes: np.ndarray, det_scores: np.ndarray, gt_boxes: np.ndarray,
    score_threshold: float = ERROR_SCORE_THRESHOLD, iou_threshold: float = 0.5,
) -> tuple[int, int]:  # fmt: skip
    """``(missed, false)`` of one frame and class: detections ``[D, 4]`` xywh px with scores
    ``[D]``, ground truth ``[G, 4]`` (see the module docstring for the matching)."""
    keep = np.asarray(det_scores, np.float64) >= score_threshold  # [D]
    boxes = np.asarray(det_boxes, np.float64).reshape(-1, 4)[keep]
    order = np.argsort(-np.asarray(det_scores, np.float64)[keep], kind="mergesort")
    gt = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    iou = box_iou(boxes[order], gt)  # [D', G]
    taken = np.zeros(len(gt), bool)
    false = 0
    for row in iou:
        free = np.where(taken, -1.0, row)  # [G]
        best = int(np.argmax(free)) if len(gt) else -1
        if best >= 0 and free[best] >= iou_threshold:
            taken[best] = True
        else:
            false += 1
    return int((~taken).sum()), false


def frame_errors(
    detections: Mapping[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    truth: Mapping[int, tuple[np.ndarray, np.ndarray]],
    classes: Sequence[str],
    class_names: Sequence[str] = CLASSES,
    score_threshold: float = ERROR_SCORE_THRESHOLD,
    iou_threshold: float = 0.5,
) -> pd.DataFrame:
    """Per frame of ``truth``: ``frame_id`` and, per class of ``classes``, ``<class>__missed``
    and ``<class>__false`` (``query.baselines.error_columns``).

    Args:
        detections: frame id -> ``(boxes [D, 4] xywh px, scores [D], labels [D])`` (a
            ``Detections``' tensors or arrays); a frame without an entry has none.
        truth: frame id -> ``(boxes [G, 4] xywh px, labels [G])``.
        classes: the classes to count (e.g. the classes of interest).
        class_names: the names of label indices ``0, 1, ...``.
    """
    unknown = [c for c in classes if c not in class_names]
    if unknown:
        raise ConfigError(f"classes {unknown} are not among {list(class_names)}")
    stray = sorted(set(detections) - set(truth))
    if stray:
        raise DataError(f"detections of frames {stray[:5]} have no ground truth")
    rows = []
    for fid in truth:
        gt_boxes, gt_labels = (np.asarray(v) for v in truth[fid])
        if fid in detections:
            d_boxes, d_scores, d_labels = (np.asarray(v) for v in detections[fid])
        else:
            d_boxes, d_scores, d_labels = np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64)
        row = [int(fid)]
        for cls in classes:
            label = list(class_names).index(cls)
            row.extend(match_errors(d_boxes.reshape(-1, 4)[d_labels == label],
                                    d_scores[d_labels == label],
                                    gt_boxes.reshape(-1, 4)[gt_labels == label],
                                    score_threshold, iou_threshold))  # fmt: skip
        rows.append(row)
    columns = ["frame_id", *[c for cls in classes for c in error_columns(cls)]]
    return pd.DataFrame(rows, columns=columns)


def reference_errors(
    model: Any,
    dataset: Dataset,
    classes: Sequence[str],
    class_names: Sequence[str] = CLASSES,
    score_threshold: float = ERROR_SCORE_THRESHOLD,
    batch_size: int = 32,
    num_workers: int = 0,
) -> pd.DataFrame:
    """``frame_errors`` of ``model`` (REFERENCE: a ``UNetDetector``, ``DetectorModule`` or
    ``Ensemble``) on every frame of ``dataset`` (e.g. ``VirtualFrames(world, ids)`` of the
    frames AL scores), the ground truth read from the dataset's own boxes in the same pass.

    A driver gives ORACLE its candidates as
    ``Candidates(..., errors=reference_errors(reference, frames, coi).merge(metadata))``."""
    detections, truth = {}, {}
    for batch, found in _predictions(model, dataset, batch_size, score_threshold, 100,
                                     num_workers):  # fmt: skip
        for fid, boxes, labels, d in zip(batch["frame_id"].tolist(), batch["boxes"],
                                         batch["labels"], found, strict=True):  # fmt: skip
            # copies, not views of the batch's tensors: with views, peak memory grew by about
            # 0.15 MB a frame (3,000 frames: 1,186 MiB, with copies 733)
            truth[int(fid)] = (boxes.numpy().copy(), labels.numpy().copy())
            detections[int(fid)] = (d.boxes.numpy().copy(), d.scores.numpy().copy(),
                                    d.labels.numpy().copy())  # fmt: skip
    return frame_errors(detections, truth, classes, class_names, score_threshold)


__all__ = [
    "ERROR_SCORE_THRESHOLD",
    "box_iou",
    "frame_errors",
    "match_errors",
    "reference_errors",
]
