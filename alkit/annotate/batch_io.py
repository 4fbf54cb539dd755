"""A labelled batch as one JSON file, so ANNOTATE and APPEND can run as separate steps.

``batch.json`` holds the batch's ``source``, ``world`` (config dict or null), ``classes``,
``cost`` (the ``CostModel``) and one record per frame: ``frame_id``, ``height``, ``width``,
``boxes`` (N x 4 xywh px), ``labels`` (N class indices), ``image_uri``, ``meta``, ``seconds``,
``measured``. ``load_batch(save_batch(b))`` gives back the same labels, bit for bit.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from alkit.data import storage
from alkit.data.labels import CostModel, LabelledBatch, LabelledFrame
from alkit.errors import DataError

FORMAT = 1


def save_batch(batch: LabelledBatch, url: str) -> str:
    """Write ``batch`` to ``url`` as JSON, atomically; returns ``url``."""
    frames = [
        {
            "frame_id": f.frame_id,
            "height": int(f.height),
            "width": int(f.width),
            "boxes": f.boxes.tolist(),  # (N, 4) float32 -> exact in JSON doubles
            "labels": f.labels.tolist(),  # (N,)
            "image_uri": f.image_uri,
            "meta": f.meta,
            "seconds": float(f.seconds),
            "measured": bool(f.measured),
        }
        for f in batch.frames
    ]
    storage.atomic_write_json(
        url,
        {
            "format": FORMAT,
            "source": batch.source,
            "world": batch.world,
            "classes": list(batch.classes),
            "cost": asdict(batch.cost),
            "frames": frames,
        },
    )
    return url


def load_batch(url: str) -> LabelledBatch:
    """The batch ``save_batch`` wrote; ``DataError`` naming the file and field if malformed."""
    raw = storage.read_json(url)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise DataError(f"{url}: not a labelled batch file (expected 'format': {FORMAT})")
    try:
        frames = tuple(
            LabelledFrame(
                frame_id=f["frame_id"],
                height=int(f["height"]),
                width=int(f["width"]),
                boxes=np.asarray(f["boxes"], np.float32).reshape(-1, 4),  # (N, 4)
                labels=np.asarray(f["labels"], np.int64),  # (N,)
                image_uri=str(f["image_uri"]),
                meta=dict(f.get("meta") or {}),
                seconds=float(f["seconds"]),
                measured=bool(f.get("measured", False)),
            )
            for f in raw["frames"]
        )
        return LabelledBatch(
            frames,
            str(raw["source"]),
            world=raw.get("world"),
            classes=tuple(raw["classes"]),
            cost=CostModel(**raw["cost"]),
        )
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, DataError):
            raise DataError(f"{url}: {err}") from None
        raise DataError(f"{url}: missing or malformed field {err}") from None


__all__ = ["load_batch", "save_batch"]
