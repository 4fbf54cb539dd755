"""Diversity as its own step: k-center greedy on the ensemble's per-frame features.

The core-set step (Sener & Savarese, 2018; PPAL's second stage does the same on its
candidates): from candidates already chosen for their uncertainty, pick the frames that
cover the candidates' feature space, each next pick the candidate farthest (Euclidean) from
every frame picked so far. Pure NumPy on ``[N, D]`` arrays; the features come from the score
shards (``alkit.query.score``: columns ``feature_00``, ``feature_01``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from alkit.errors import ConfigError, DataError

#: Score-shard columns of the per-frame feature vector: ``feature_00``, ``feature_01``, ...
FEATURE_PREFIX = "feature_"


def feature_name(index: int) -> str:
    """The shard column of feature ``index``."""
    return f"{FEATURE_PREFIX}{index:02d}"


def feature_columns(table: pd.DataFrame) -> list[str]:
    """The feature columns of a scores table, in index order (empty for shards written
    before features were)."""
    return sorted((c for c in table.columns if str(c).startswith(FEATURE_PREFIX)),
                  key=lambda c: int(str(c)[len(FEATURE_PREFIX):]))  # fmt: skip


def k_center_greedy(
    features: np.ndarray, k: int, centers: Sequence[int] = (), first: int = 0
) -> np.ndarray:
    """``k`` rows of ``features`` chosen by k-center greedy, in pick order.

    Each pick is the row whose distance to its nearest center is largest (ties: the lowest
    row index); a picked row becomes a center. ``centers`` are rows already covered (e.g.
    labelled frames), not returned; without them the first pick is row ``first`` (e.g. the
    most uncertain candidate).

    Args:
        features: ``[N, D]`` finite floats (computed in float64).
        k: picks, ``1 <= k <= N - len(centers)``.

    Returns:
        ``[k]`` int64 row indices.
    """
    x = np.asarray(features, dtype=np.float64)  # [N, D]
    if x.ndim != 2:
        raise DataError(f"features must be [N, D], got shape {x.shape}")
    n = len(x)
    if not np.isfinite(x).all():
        row = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise DataError(f"features of row {row} are not finite")
    centers = [int(c) for c in centers]
    if k < 1 or k > n - len(set(centers)):
        raise ConfigError(f"k-center: k={k} must be in [1, {n - len(set(centers))}]")
    if not 0 <= first < n:
        raise ConfigError(f"k-center: first={first} is not a row of {n}")
    nearest = np.full(n, np.inf)  # [N] distance to the nearest center
    picks: list[int] = []

    def cover(row: int) -> None:
        d = np.sqrt(((x - x[row]) ** 2).sum(axis=1))  # [N]
        np.minimum(nearest, d, out=nearest)

    for c in centers:
        cover(c)
    if not centers:
        picks.append(first)
        cover(first)
    while len(picks) < k:
        row = int(np.argmax(nearest))  # the first of equal maxima: the lowest row
        picks.append(row)
        cover(row)
    return np.asarray(picks, dtype=np.int64)


def covering_radius(features: np.ndarray, chosen: Sequence[int]) -> float:
    """The largest distance from any row of ``features`` ``[N, D]`` to its nearest chosen row:
    what k-center greedy keeps small (within a factor 2 of the best ``len(chosen)`` centers)."""
    x = np.asarray(features, dtype=np.float64)  # [N, D]
    c = x[np.asarray(chosen, dtype=np.int64)]  # [K, D]
    d = np.sqrt(((x[:, None, :] - c[None, :, :]) ** 2).sum(axis=2))  # [N, K]
    return float(d.min(axis=1).max())


__all__ = [
    "FEATURE_PREFIX",
    "covering_radius",
    "feature_columns",
    "feature_name",
    "k_center_greedy",
]
