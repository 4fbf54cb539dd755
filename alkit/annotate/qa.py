"""Label QA: which of a labeller's boxes the ensemble strongly disagrees with.

Scores first, thresholds after (cleanlab's own split). :func:`box_scores` compares each
frame's labels with the ensemble's **fused** predictions (the members' mean heatmap, its
peaks decoded: ``Ensemble.mean_output``, what the pre-annotations are) through cleanlab's
``object_detection`` scores, all in ``[0, 1]``, low = likely wrong:

- ``overlooked``: per confident prediction that no label box overlaps (a missed object);
- ``swap``: per label box, against confident predictions of another class (a class swap);
- ``badloc``: per label box, its best overlap with predictions of its class (bad location);
- per frame ``image_score``: the three kinds pooled per frame (cleanlab's
  ``pool_box_scores_per_image``) and weighted as ``get_label_quality_scores`` weighs them, at
  these thresholds; and ``label_quality``, ``get_label_quality_scores`` itself (its defaults).

:func:`flag` marks box scores under ``QAConfig`` thresholds and frames by
``issues_from_scores`` on ``image_score``. cleanlab's defaults
(``high_probability_threshold=0.95``) suit softmax detectors; a small ensemble's heatmap
peaks seldom reach 0.95, so ``QAConfig.high_probability`` is 0.5. The predictions must come
from members that did not train on the frame, else they repeat its labels: the table's
``held_out`` says so per frame.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alkit.annotate.detections import as_numpy
from alkit.detector.network import Detections
from alkit.errors import DataError

KINDS = ("overlooked", "swap", "badloc")
COLUMNS = (
    "frame_id",
    "kind",
    "box",
    "category",
    "x",
    "y",
    "w",
    "h",
    "score",
    "flagged",
    "predicted_class",
    "predicted_score",
    "image_score",
    "image_flagged",
    "held_out",
)


@dataclass(frozen=True)
class QAConfig:
    """Thresholds of label QA (plain values).

    ``high_probability``: predictions at least this sure count for overlooked and swap
    (cleanlab's ``high_probability_threshold``); ``low_probability``: for bad location
    (``low_probability_threshold``); a box is flagged when its score is under
    ``flag_below[kind]`` (an overlooked score is at most ``1 - alpha = 0.1``: every defined one
    is flagged); a frame when its label quality score is under ``image_threshold``
    (``issues_from_scores``); predictions under ``prediction_floor`` are left out (not the
    pre-annotations' ``min_score``: QA wants the ensemble's unsure detections too).
    """

    high_probability: float = 0.5
    low_probability: float = 0.3
    flag_below: Mapping[str, float] | None = None
    image_threshold: float = 0.5
    prediction_floor: float = 0.05

    def threshold(self, kind: str) -> float:
        return dict({"overlooked": 0.1, "swap": 0.5, "badloc": 0.5}, **(self.flag_below or {}))[
            kind
        ]


@dataclass(frozen=True)
class LabelledBoxes:
    """One frame's labels: boxes ``(N, 4)`` xywh px, labels ``(N,)`` class indices."""

    frame_id: int
    boxes: np.ndarray
    labels: np.ndarray


def _xyxy(xywh: np.ndarray) -> np.ndarray:
    xywh = np.asarray(xywh, dtype=np.float64).reshape(-1, 4)  # (N, 4)
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)  # (N, 4)


def cleanlab_inputs(
    frames: Sequence[LabelledBoxes],
    detections: Mapping[int, Detections],
    num_classes: int,
    prediction_floor: float = 0.05,
) -> tuple[list[dict], list[list[np.ndarray]]]:
    """cleanlab's ``labels`` (``bboxes (L, 4)`` x1y1x2y2, ``labels (L,)``) and
    ``predictions`` (per frame, per class ``(M_k, 5)`` x1y1x2y2 + probability)."""
    labels, predictions = [], []
    for f in frames:
        if f.frame_id not in detections:
            raise DataError(f"label QA: frame {f.frame_id} has no predictions (field 'frame_id')")
        labels.append(
            {
                "bboxes": _xyxy(f.boxes),
                "labels": np.asarray(f.labels, np.int64),
                "image_name": str(f.frame_id),
            }
        )
        d = detections[f.frame_id]
        boxes = _xyxy(as_numpy(d.boxes))  # (K, 4)
        scores = as_numpy(d.scores).astype(np.float64).reshape(-1)  # (K,)
        classes = as_numpy(d.labels).astype(np.int64).reshape(-1)  # (K,)
        keep = scores >= prediction_floor
        per_class = []
        for k in range(num_classes):
            sel = keep & (classes == k)
            per_class.append(np.concatenate([boxes[sel], scores[sel, None]], axis=1))  # (M_k, 5)
        predictions.append(per_class)
    return labels, predictions


def _quiet():
    """cleanlab prints and warns about pruned boxes: keep it from the user."""
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    return stack


def _best(label_box: np.ndarray, preds: list[np.ndarray], same: int | None, other_than: int):
    """``(class, score)`` of the prediction overlapping ``label_box`` (x1y1x2y2) most, among
    class ``same`` (or every class but ``other_than``); ``("", nan)`` without overlap."""
    best, out = 0.0, ("", float("nan"))
    for k, p in enumerate(preds):
        if (same is not None and k != same) or (same is None and k == other_than) or not len(p):
            continue
        x0 = np.maximum(p[:, 0], label_box[0])
        y0 = np.maximum(p[:, 1], label_box[1])
        x1 = np.minimum(p[:, 2], label_box[2])
        y1 = np.minimum(p[:, 3], label_box[3])
        inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)  # (M,)
        area = (p[:, 2] - p[:, 0]) * (p[:, 3] - p[:, 1])
        own = (label_box[2] - label_box[0]) * (label_box[3] - label_box[1])
        iou = inter / np.maximum(area + own - inter, 1e-9)  # (M,)
        j = int(np.argmax(iou))
        if iou[j] > best:
            best, out = float(iou[j]), (k, float(p[j, 4]))
    return out


def box_scores(
    frames: Sequence[LabelledBoxes],
    detections: Mapping[int, Detections],
    classes: Sequence[str],
    config: QAConfig | None = None,
    held_out: Mapping[int, bool] | None = None,
) -> pd.DataFrame:
    """One row per scored box (``COLUMNS``; ``flagged`` by :func:`flag`): overlooked rows
    are predictions (``box`` -1), swap and badloc rows label boxes (``box``: its index)."""
    from cleanlab.internal.constants import (
        CUSTOM_SCORE_WEIGHT_BADLOC,
        CUSTOM_SCORE_WEIGHT_OVERLOOKED,
        CUSTOM_SCORE_WEIGHT_SWAP,
    )
    from cleanlab.object_detection.rank import (
        compute_badloc_box_scores,
        compute_overlooked_box_scores,
        compute_swap_box_scores,
        get_label_quality_scores,
        pool_box_scores_per_image,
    )

    config = config or QAConfig()
    if not frames:
        return pd.DataFrame(columns=list(COLUMNS))
    labels, predictions = cleanlab_inputs(frames, detections, len(classes), config.prediction_floor)
    with _quiet():
        overlooked = compute_overlooked_box_scores(
            labels=labels,
            predictions=predictions,
            high_probability_threshold=config.high_probability,
        )
        swap = compute_swap_box_scores(
            labels=labels,
            predictions=predictions,
            high_probability_threshold=config.high_probability,
        )
        badloc = compute_badloc_box_scores(
            labels=labels, predictions=predictions, low_probability_threshold=config.low_probability
        )
        quality = get_label_quality_scores(labels, predictions, verbose=False)  # (F,)
        image = (
            CUSTOM_SCORE_WEIGHT_OVERLOOKED * pool_box_scores_per_image(overlooked)
            + CUSTOM_SCORE_WEIGHT_SWAP * pool_box_scores_per_image(swap)
            + CUSTOM_SCORE_WEIGHT_BADLOC * pool_box_scores_per_image(badloc)
        )  # (F,)
    rows = []
    for i, f in enumerate(frames):
        out = held_out.get(f.frame_id, False) if held_out is not None else False
        base = {
            "frame_id": f.frame_id,
            "image_score": float(image[i]),
            "label_quality": float(quality[i]),
            "held_out": bool(out),
        }
        flat = [(k, p) for k, arr in enumerate(predictions[i]) for p in arr]  # over classes
        for (k, p), s in zip(flat, _by_class_order(predictions[i], overlooked[i]), strict=True):
            if np.isnan(s):
                continue
            x0, y0, x1, y1, prob = p.tolist()
            rows.append(
                base
                | {
                    "kind": "overlooked",
                    "box": -1,
                    "category": classes[k],
                    "x": x0,
                    "y": y0,
                    "w": x1 - x0,
                    "h": y1 - y0,
                    "score": float(s),
                    "predicted_class": classes[k],
                    "predicted_score": prob,
                }
            )
        for j, (xywh, c) in enumerate(
            zip(np.asarray(f.boxes).reshape(-1, 4), f.labels, strict=True)
        ):
            xyxy = labels[i]["bboxes"][j]
            x, y, w, h = (float(v) for v in xywh)
            for kind, scores, same in (("swap", swap, None), ("badloc", badloc, int(c))):
                k, prob = _best(xyxy, predictions[i], same, int(c))
                rows.append(
                    base
                    | {
                        "kind": kind,
                        "box": j,
                        "category": classes[int(c)],
                        "x": x,
                        "y": y,
                        "w": w,
                        "h": h,
                        "score": float(scores[i][j]),
                        "predicted_class": classes[k] if k != "" else "",
                        "predicted_score": prob,
                    }
                )
    table = pd.DataFrame(
        rows, columns=[c for c in COLUMNS if c not in ("flagged", "image_flagged")]
    )
    return flag(table, config)


def _by_class_order(per_class: list[np.ndarray], scores: np.ndarray) -> np.ndarray:
    """cleanlab's per-prediction scores are in the order of its flattened predictions
    (class by class, each class's rows in order): the same as ``flat`` above."""
    if len(scores) != sum(len(p) for p in per_class):
        raise DataError("label QA: cleanlab returned a score per prediction of another length")
    return scores


def flag(table: pd.DataFrame, config: QAConfig | None = None) -> pd.DataFrame:
    """``flagged``: score under ``config.threshold(kind)``; ``image_flagged``: frames
    ``issues_from_scores`` returns at ``config.image_threshold``."""
    from cleanlab.object_detection.rank import issues_from_scores

    config = config or QAConfig()
    out = table.copy()
    out["flagged"] = [s < config.threshold(k) for k, s in zip(out.kind, out.score, strict=True)]
    frames = out.drop_duplicates("frame_id")
    issues = issues_from_scores(
        frames.image_score.to_numpy(np.float64), threshold=config.image_threshold
    )
    bad = set(frames.frame_id.iloc[issues].tolist())
    out["image_flagged"] = out.frame_id.isin(bad)
    return out[list(COLUMNS)].reset_index(drop=True)


def flagged_boxes(table: pd.DataFrame) -> pd.DataFrame:
    """The flagged rows, worst (lowest score) first."""
    return table[table.flagged].sort_values(["score", "frame_id"]).reset_index(drop=True)


__all__ = [
    "COLUMNS",
    "KINDS",
    "LabelledBoxes",
    "QAConfig",
    "box_scores",
    "cleanlab_inputs",
    "flag",
    "flagged_boxes",
]
