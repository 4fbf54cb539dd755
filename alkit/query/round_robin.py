"""Choosing frames to label: round-robin top-k over the classes of interest.

Scores come as a table with one row per frame: ``frame_id``, one score column per class
(e.g. the mean mutual information for ``person``), and optionally ``session_id`` and
``frame_index`` for the diversity rules.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from alkit.errors import ConfigError, DataError


def _check_pool(scores: pd.DataFrame, classes: Sequence[str], k: int) -> None:
    if len(scores) == 0:
        raise DataError("the pool is empty: there are no scored frames to select from")
    if k < 1:
        raise ConfigError(f"budget k must be >= 1, got {k}")
    if k > len(scores):
        raise ConfigError(f"budget k={k} is larger than the pool ({len(scores)} frames)")
    missing = [c for c in classes if c not in scores.columns]
    if missing:
        known = [c for c in scores.columns if c not in ("frame_id", "session_id", "frame_index")]
        raise ConfigError(f"classes {missing} have no scores; scored classes: {known}")
    dup = scores.frame_id[scores.frame_id.duplicated()]
    if len(dup):
        raise DataError(f"duplicate frame ids in the scores: {sorted(dup.unique())[:10]}")


def round_robin_topk(
    scores: pd.DataFrame,
    classes: Sequence[str] = ("person", "bicycle"),
    k: int = 100,
    per_session_cap: int | None = None,
    min_frame_gap: int | None = None,
) -> pd.DataFrame:
    """Pick ``k`` frames, taking turns over ``classes``, each turn the best frame left.

    Each class ranks the frames by its own score (highest first; ties by frame id). Turns
    go class by class; a turn takes that class's best frame not yet taken and allowed by the
    diversity rules: at most ``per_session_cap`` frames per driving session, and picks of one
    session at least ``min_frame_gap`` frames apart. When the rules leave no frame for any
    class before ``k`` picks, the selection stops short and says so in ``attrs["short_by"]``.

    Returns:
        one row per pick in pick order: ``rank``, ``frame_id``, ``picked_for`` (the class
        whose turn it was), ``score`` (that class's score), and the input's other columns.
    """
    _check_pool(scores, classes, k)
    diverse = per_session_cap is not None or min_frame_gap is not None
    if diverse and "session_id" not in scores.columns:
        raise ConfigError("per_session_cap / min_frame_gap need a session_id column")
    if min_frame_gap is not None and "frame_index" not in scores.columns:
        raise ConfigError("min_frame_gap needs a frame_index column")
    table = scores.reset_index(drop=True)
    ids = table.frame_id.to_numpy()
    orders = []
    for c in classes:
        col = table[c].to_numpy(dtype=np.float64)
        if not np.isfinite(col).all():
            bad = ids[~np.isfinite(col)][0]
            raise DataError(f"frame {bad}: score for class {c!r} is not finite")
        orders.append(np.lexsort((ids, -col)))  # best first, ties by frame id
    sessions = table.session_id.to_numpy() if diverse else None
    index = table.frame_index.to_numpy() if min_frame_gap is not None else None
    taken = np.zeros(len(table), bool)
    per_session: dict[int, list[int]] = {}
    cursors = [0] * len(classes)
    picks: list[tuple[int, str]] = []

    def allowed(row: int) -> bool:
        if sessions is None:
            return True
        chosen = per_session.get(int(sessions[row]), [])
        if per_session_cap is not None and len(chosen) >= per_session_cap:
            return False
        if min_frame_gap is not None:
            return all(abs(int(index[row]) - int(index[r])) >= min_frame_gap for r in chosen)
        return True

    exhausted = [False] * len(classes)
    turn = 0
    while len(picks) < k and not all(exhausted):
        ci = turn % len(classes)
        turn += 1
        if exhausted[ci]:
            continue
        order = orders[ci]
        while cursors[ci] < len(order) and (
            taken[order[cursors[ci]]] or not allowed(order[cursors[ci]])
        ):
            cursors[ci] += 1
        if cursors[ci] == len(order):
            exhausted[ci] = True
            continue
        row = int(order[cursors[ci]])
        taken[row] = True
        if sessions is not None:
            per_session.setdefault(int(sessions[row]), []).append(row)
        picks.append((row, classes[ci]))
    rows = [r for r, _ in picks]
    out = table.iloc[rows].copy()
    out.insert(0, "picked_for", [c for _, c in picks])
    out.insert(0, "score", [float(table.at[r, c]) for r, c in picks])
    out.insert(0, "rank", np.arange(len(picks)))
    out = out[["rank", "frame_id", "picked_for", "score", *[c for c in table if c != "frame_id"]]]
    out = out.reset_index(drop=True)
    out.attrs["short_by"] = k - len(picks)
    return out
