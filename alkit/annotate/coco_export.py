"""COCO for labelling tools other than Label Studio: an export's frames and pre-annotations."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from alkit.annotate.detections import frame_detections
from alkit.annotate.validate import ExportedBatch
from alkit.data.coco import CocoRecord, frames_to_coco
from alkit.detector.network import Detections


def coco_for_labelling(
    exported: ExportedBatch,
    detections: Mapping[int, Detections] | None = None,
    min_score: float = 0.3,
) -> dict:
    """COCO instances of an export: images (``file_name`` relative to ``images/``) and the
    kept detections as annotations with their ``score``."""
    records, scores = [], []
    for i, fid in enumerate(exported.frame_ids):
        h, w = exported.sizes[i]
        kept = frame_detections(detections, fid, (h, w), min_score, exported.classes)
        scores += [s for _, _, s in kept]
        records.append(
            CocoRecord(
                frame_id=fid,
                file_name=exported.file_names[i],
                height=h,
                width=w,
                boxes=np.asarray([b for b, _, _ in kept], dtype=np.float64).reshape(-1, 4),
                labels=np.asarray([c for _, c, _ in kept], dtype=np.int64),
                meta=dict(exported.meta[i]),
            )
        )
    coco = frames_to_coco(records, exported.file_names, exported.classes)
    for annotation, score in zip(coco["annotations"], scores, strict=True):
        annotation["score"] = score
    return coco


__all__ = ["coco_for_labelling"]
