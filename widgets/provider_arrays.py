"""Checks on what a viewer's providers return: frame ids, class maps, member maps, boxes.

Each bad array raises ``ValueError`` naming the frame and the provider, so an error in a
notebook says which frame and which function to look at.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from alkit.errors import ConfigError

from .heatmap_figure import Boxes


def to_numpy(value: Any) -> np.ndarray:
    """A numpy array from a numpy array, list or (CPU/GPU) torch tensor."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def check_frame_ids(frame_ids: Sequence[int], owner: str) -> tuple[int, ...]:
    """Frame ids as a tuple of ints; raises ``ConfigError`` if empty or duplicated."""
    ids = tuple(int(i) for i in frame_ids)
    if not ids:
        raise ConfigError(f"{owner} needs at least one frame id; got none")
    if len(set(ids)) != len(ids):
        dup = sorted(i for i, n in Counter(ids).items() if n > 1)
        raise ConfigError(f"{owner}: duplicate frame ids {dup[:5]}")
    return ids


def check_boxes(value: Any, frame_id: int, source: str, n_classes: int) -> Boxes:
    """``(boxes, labels[, scores])``, a ``Detections`` or a dict -> checked ``Boxes``."""
    if hasattr(value, "boxes") and hasattr(value, "labels"):
        parts = [value.boxes, value.labels, getattr(value, "scores", None)]
    elif isinstance(value, dict):
        parts = [value.get("boxes"), value.get("labels"), value.get("scores")]
    elif isinstance(value, (tuple, list)) and len(value) in (2, 3):
        parts = [*value, None][:3]
        if len(value) == 3 and np.issubdtype(to_numpy(parts[1]).dtype, np.floating):
            if np.issubdtype(to_numpy(parts[2]).dtype, np.integer):
                parts = [parts[0], parts[2], parts[1]]  # (boxes, scores, labels) order
    else:
        raise ValueError(
            f"frame {frame_id}: {source} returned a {type(value).__name__}; expected "
            "(boxes, labels), (boxes, labels, scores), a Detections or a dict"
        )
    raw = to_numpy(parts[0]) if parts[0] is not None else np.zeros((0, 4))
    if raw.size and (raw.ndim != 2 or raw.shape[1] != 4):
        raise ValueError(
            f"frame {frame_id}: {source} boxes must be (N, 4) xywh px, got shape {raw.shape}"
        )
    boxes = raw.astype(np.float32).reshape(-1, 4)  # (N, 4)
    labels = to_numpy(parts[1] if parts[1] is not None else []).reshape(-1)
    if len(labels) != len(boxes):
        raise ValueError(
            f"frame {frame_id}: {source} gave {len(boxes)} boxes but {len(labels)} labels"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(
            f"frame {frame_id}: {source} labels must be class indices in [0, {n_classes}), "
            f"got {labels.min()}..{labels.max()}"
        )
    scores = None if parts[2] is None else to_numpy(parts[2]).reshape(-1).astype(np.float32)
    if scores is not None and len(scores) != len(boxes):
        raise ValueError(
            f"frame {frame_id}: {source} gave {len(boxes)} boxes but {len(scores)} scores"
        )
    return Boxes(boxes, labels.astype(np.int64), scores)


def check_heatmap(value: Any, frame_id: int, classes: Sequence[str]) -> np.ndarray:
    """``heatmap_fn`` output -> ``(C, h, w)`` float32, finite, one map per class."""
    heat = to_numpy(value).astype(np.float32)
    c = len(classes)
    if heat.ndim != 3:
        raise ValueError(
            f"frame {frame_id}: heatmap_fn returned shape {heat.shape}; expected (C, h, w) "
            f"with C = {c} classes"
        )
    if heat.shape[0] != c:
        raise ValueError(
            f"frame {frame_id}: heatmap_fn returned {heat.shape[0]} class maps but "
            f"{c} classes were given ({', '.join(classes)}); pass classes= naming the maps"
        )
    if not np.isfinite(heat).all():
        raise ValueError(f"frame {frame_id}: heatmap_fn returned NaN or inf values")
    return heat  # (C, h, w)


def check_member_probs(
    value: Any, frame_id: int, classes: Sequence[str], n_members: int | None = None
) -> np.ndarray:
    """``member_probs_fn`` output -> ``(M, C, h, w)`` float32 in [0, 1]."""
    probs = to_numpy(value).astype(np.float32)
    c = len(classes)
    if probs.ndim != 4 or probs.shape[1] != c:
        raise ValueError(
            f"frame {frame_id}: member_probs_fn returned shape {probs.shape}; expected "
            f"(M, C, h, w) with C = {c} classes"
        )
    if n_members and probs.shape[0] != n_members:
        raise ValueError(
            f"frame {frame_id}: member_probs_fn returned {probs.shape[0]} members, "
            f"expected {n_members}"
        )
    if not (np.isfinite(probs).all() and probs.min() >= 0 and probs.max() <= 1):
        raise ValueError(f"frame {frame_id}: member probabilities must be finite, in [0, 1]")
    return probs  # (M, C, h, w)
