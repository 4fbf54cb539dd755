"""Diagnostics of a frame score and of a selection: pure functions on arrays and tables.

* ``mi_share_in_boxes``: how much of a frame's mutual information lies on its objects (the
  ground truth's boxes) rather than on the background;
* ``partial_spearman``: the rank correlation of a score with hard-case objects once the
  object count is held fixed (a raw correlation is confounded with how many objects a frame
  has, which the seed's mean-MI score also follows);
* ``pick_layout``: per arm, how many driving sessions its picks come from and how many of
  them are neighbouring frames of one drive (near-duplicates).

A driver calls them on what it already has: the members' MI maps and each frame's ground
truth, the scores table merged with per-frame object and hard-case counts, and the picks of
every arm (``Queried.picks``: ``method``, ``session_id``, ``frame_index``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from alkit.errors import ConfigError, DataError

#: ``pick_layout``'s columns.
LAYOUT_COLUMNS = ("method", "frames", "sessions", "neighbour_pairs")


def box_cells(boxes: np.ndarray, shape: tuple[int, int], stride: float) -> np.ndarray:
    """``[H, W]`` bool: the cells of a ``shape`` grid with ``stride`` px per cell covered by
    any of ``boxes`` ``[N, 4]`` (xywh px): a cell whose centre lies in a box, and for every
    box the cell holding its centre (so a box smaller than a cell still covers one)."""
    h, w = shape
    cover = np.zeros((h, w), bool)
    centre_y = (np.arange(h) + 0.5) * stride  # [H] px
    centre_x = (np.arange(w) + 0.5) * stride  # [W] px
    for x, y, bw, bh in np.asarray(boxes, np.float64).reshape(-1, 4):
        rows = (centre_y >= y) & (centre_y <= y + bh)  # [H]
        cols = (centre_x >= x) & (centre_x <= x + bw)  # [W]
        cover |= rows[:, None] & cols[None, :]
        j = int(np.clip((y + bh / 2) // stride, 0, h - 1))
        i = int(np.clip((x + bw / 2) // stride, 0, w - 1))
        cover[j, i] = True
    return cover


def mi_share_in_boxes(
    mi: np.ndarray, boxes: Sequence[np.ndarray], labels: Sequence[np.ndarray], stride: float
) -> np.ndarray:
    """Per frame and class, the share of the class's summed MI that falls on cells covered by
    the frame's ground-truth boxes of that class (``box_cells``); the rest is background.

    Args:
        mi: ``[B, C, H, W]`` nats (``alkit.mutual_information``), channel ``c`` = label ``c``.
        boxes: ``B`` arrays ``[N_i, 4]`` xywh px (in the scored image's pixels).
        labels: ``B`` arrays ``[N_i]`` class indices.
        stride: px per cell (the detector's output stride).

    Returns:
        ``[B, C]`` in [0, 1]; NaN where a frame's MI of the class sums to 0.
    """
    m = np.asarray(mi, np.float64)  # [B, C, H, W]
    if m.ndim != 4:
        raise DataError(f"mi must be [B, C, H, W], got shape {m.shape}")
    if not len(boxes) == len(labels) == m.shape[0]:
        raise DataError(f"{m.shape[0]} MI maps, {len(boxes)} box sets, {len(labels)} label sets")
    b, c, h, w = m.shape
    inside = np.zeros((b, c))
    for f in range(b):
        lab = np.asarray(labels[f]).reshape(-1)
        box = np.asarray(boxes[f], np.float64).reshape(-1, 4)
        for k in range(c):
            mask = box_cells(box[lab == k], (h, w), stride)  # [H, W]
            inside[f, k] = m[f, k][mask].sum()
    total = m.sum(axis=(2, 3))  # [B, C]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside / np.where(total > 0, total, 1.0), np.nan)


def _ranks(x: np.ndarray) -> np.ndarray:
    return pd.Series(np.asarray(x, np.float64)).rank().to_numpy()


def partial_spearman(score: np.ndarray, hard: np.ndarray, count: np.ndarray) -> float:
    """Spearman's partial rank correlation of ``score`` with ``hard`` given ``count``, all
    ``[N]`` per frame (e.g. mean MI, hard-case objects, all objects of the class): Pearson's
    partial correlation of the average ranks, ``(r_sh - r_sc r_hc) / sqrt((1 - r_sc^2)(1 -
    r_hc^2))``. NaN where a rank is constant or ``count`` ranks as ``score`` or ``hard`` do."""
    s, h, c = (np.asarray(v, np.float64) for v in (score, hard, count))
    if not s.shape == h.shape == c.shape or s.ndim != 1:
        raise DataError(f"score, hard and count must be [N] each, got {s.shape}, {h.shape}, "
                        f"{c.shape}")  # fmt: skip
    if len(s) < 4:
        raise DataError(f"a partial rank correlation needs at least 4 frames, got {len(s)}")
    if not np.isfinite(np.stack([s, h, c])).all():
        raise DataError("score, hard and count must be finite")
    r = np.corrcoef(np.stack([_ranks(s), _ranks(h), _ranks(c)]))  # [3, 3]
    r_sh, r_sc, r_hc = r[0, 1], r[0, 2], r[1, 2]
    denom = np.sqrt((1 - r_sc**2) * (1 - r_hc**2))
    return float((r_sh - r_sc * r_hc) / denom) if denom > 1e-12 else float("nan")


def pick_layout(picks: pd.DataFrame, max_gap: int = 2) -> pd.DataFrame:
    """Per ``method`` (one table per arm, or every arm's picks with a ``method`` column):
    ``frames``, distinct ``sessions`` and ``neighbour_pairs``, the picks of one session whose
    ``frame_index`` is at most ``max_gap`` after the previous pick of that session (each pick
    paired with the next in frame order; ``max_gap=2``: 0.2 s at 10 frames per second, the
    experiment's ``pool_stride``, so two scored frames in a row)."""
    if max_gap < 1:
        raise ConfigError(f"max_gap must be >= 1, got {max_gap}")
    table = picks if "method" in picks else picks.assign(method="")
    missing = [c for c in ("session_id", "frame_index") if c not in table]
    if missing:
        raise ConfigError(f"picks lack columns {missing}")
    rows = []
    for method, part in table.groupby("method", sort=False):
        ordered = part.sort_values(["session_id", "frame_index"], kind="stable")
        gap = ordered.groupby("session_id").frame_index.diff()  # NaN for a session's first
        rows.append([method, len(part), part.session_id.nunique(), int((gap <= max_gap).sum())])
    return pd.DataFrame(rows, columns=list(LAYOUT_COLUMNS))


__all__ = [
    "LAYOUT_COLUMNS",
    "box_cells",
    "mi_share_in_boxes",
    "partial_spearman",
    "pick_layout",
]
