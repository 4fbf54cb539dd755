"""Selections to compare active learning against, at the same labelling budget.

* ``random_selection``: frames drawn uniformly from the pool (or from the watched, e.g. night,
  part of it: RANDOM-night);
* ``metadata_selection``: filter by tags (e.g. night, urban), then draw at random;
* ``count_selection``: the frames with the most predicted objects of the classes of
  interest (COUNT: density without uncertainty);
* ``manual_curation``: the seed's curators, simulated: metadata and geo filters, then
  contiguous subsequences of drives in which the target classes are visible, until the
  budget is filled;
* ``oracle_selection``: the frames REFERENCE gets most wrong, read off the ground truth
  (ORACLE: the ceiling any selection could reach in the design).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from alkit.data.pool import filter_metadata
from alkit.errors import ConfigError, DataError
from alkit.query.round_robin import round_robin_topk

#: Suffix of the per-frame predicted-count columns COUNT ranks by (``person__count``), after
#: the score shards' ``<class>__max`` / ``__entropy`` / ``__boxes`` columns.
COUNT_SUFFIX = "__count"
#: Suffixes of the per-frame columns of REFERENCE's errors ORACLE ranks by: ground-truth
#: objects it misses (``person__missed``) and detections that match none (``person__false``).
MISSED_SUFFIX, FALSE_SUFFIX = "__missed", "__false"


def _check_budget(pool: pd.DataFrame, k: int, what: str) -> None:
    if len(pool) == 0:
        raise DataError(f"{what}: the pool is empty (after filters)")
    if k < 1:
        raise ConfigError(f"{what}: budget k must be >= 1, got {k}")
    if k > len(pool):
        raise ConfigError(f"{what}: budget k={k} is larger than the pool ({len(pool)} frames)")


def random_selection(manifest: pd.DataFrame, k: int, seed: int | Sequence[int]) -> pd.DataFrame:
    """``k`` frames uniformly without replacement, in ``manifest``'s order; the same seed gives
    the same frames (``seed``: an int, or ints naming an independent stream, e.g.
    ``(seed, 1)``)."""
    _check_budget(manifest, k, "random selection")
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(manifest), size=k, replace=False)
    return manifest.iloc[np.sort(rows)].reset_index(drop=True)


def metadata_selection(
    manifest: pd.DataFrame, k: int, seed: int, filters: Mapping[str, Sequence]
) -> pd.DataFrame:
    """Filter by metadata tags, then ``random_selection`` from what is left."""
    return random_selection(filter_metadata(manifest, filters), k, seed)


def manual_curation(
    manifest: pd.DataFrame,
    visible: Callable[[Sequence[int]], pd.DataFrame],
    classes: Sequence[str],
    k: int,
    seed: int,
    filters: Mapping[str, Sequence] | None = None,
    subsequence_length: int = 20,
    min_visible: int = 1,
    stretches_per_session: int = 2,
) -> pd.DataFrame:
    """Simulate a curator: filter, then take stretches of drives where targets are seen.

    The curator visits the drives that pass ``filters`` (metadata and geo cells) in a random
    order (``seed``), watches each one (``visible(frame_ids)`` returns a table with
    ``frame_id`` and one count column per class) and keeps contiguous stretches of up to
    ``subsequence_length`` frames in which at least ``min_visible`` objects of ``classes``
    are visible, at most ``stretches_per_session`` of them per drive, until ``k`` frames are
    picked.

    Returns the picked rows of ``manifest`` in pick order, with ``subsequence`` numbering
    the stretches.
    """
    pool = filter_metadata(manifest, filters)
    _check_budget(pool, k, "manual curation")
    for column in ("session_id", "frame_index"):
        if column not in pool.columns:
            raise ConfigError(f"manual curation needs a {column!r} column in the manifest")
    rng = np.random.default_rng(seed)
    sessions = pool.session_id.unique()
    picked: list[pd.DataFrame] = []
    taken, stretch = 0, 0
    for session in rng.permutation(sessions):
        drive = pool[pool.session_id == session].sort_values("frame_index")
        counts = visible(drive.frame_id.tolist()).set_index("frame_id")
        missing = [c for c in classes if c not in counts.columns]
        if missing:
            raise ConfigError(f"visibility table has no column for {missing}")
        seen = counts.loc[drive.frame_id, list(classes)].sum(axis=1).to_numpy() >= min_visible
        index = drive.frame_index.to_numpy()
        start, in_session = None, 0
        for i in range(len(drive) + 1):
            if in_session == stretches_per_session:
                break
            inside = i < len(drive) and seen[i] and (start is None or index[i] == index[i - 1] + 1)
            if inside and start is None:
                start = i
            length = 0 if start is None else i - start
            if start is not None and (not inside or length == subsequence_length):
                take = drive.iloc[start : start + min(length, k - taken)]
                picked.append(take.assign(subsequence=stretch))
                taken, stretch, in_session = taken + len(take), stretch + 1, in_session + 1
                start = i if inside else None
                if taken >= k:
                    return pd.concat(picked, ignore_index=True)
    got = pd.concat(picked, ignore_index=True) if picked else pool.iloc[:0]
    got.attrs["short_by"] = k - taken
    return got


def count_column(cls: str) -> str:
    """The column of ``cls``'s predicted object count per frame: ``<cls>__count``."""
    return f"{cls}{COUNT_SUFFIX}"


def count_selection(
    scores: pd.DataFrame, classes: Sequence[str], k: int, seed: int
) -> pd.DataFrame:
    """COUNT: the frames with the most predicted objects, taking turns over ``classes``.

    Density without uncertainty: the same round robin as AL (``round_robin_topk``), each
    class ranking the frames by its predicted count ``<class>__count`` (most first) instead
    of its mutual information. Scoring must provide these columns: per frame, the number of
    objects of the class the ensemble predicts (a float is fine, e.g. the members' mean
    count). Counts are small numbers, so ties are common; they are broken at random
    (``seed``), since frame-id order would fill ties with neighbouring frames of the
    earliest drives.

    Returns:
        one row per pick, as ``round_robin_topk``: ``rank``, ``frame_id``, ``picked_for``,
        ``score`` (the count of the class picked for) and ``scores``' other columns.
    """
    columns = [count_column(c) for c in classes]
    missing = [c for c in columns if c not in scores.columns]
    if missing:
        raise ConfigError(
            f"COUNT needs each frame's predicted object count per class of interest, but the "
            f"scores table has no {missing} column(s): score the pool with predicted counts "
            f"('<class>{COUNT_SUFFIX}')"
        )
    table = scores.reset_index(drop=True)
    values = {}
    for cls, column in zip(classes, columns, strict=True):
        values[cls] = table[column].to_numpy(dtype=np.float64)
        if not np.isfinite(values[cls]).all():
            bad = table.frame_id.to_numpy()[~np.isfinite(values[cls])][0]
            raise DataError(f"frame {bad}: {column} is not finite")
    picks = _most_first(table, values, classes, k, np.random.default_rng(seed))
    score = [picks.at[i, count_column(c)] for i, c in enumerate(picks.picked_for)]
    picks.insert(3, "score", np.asarray(score, dtype=np.float64))
    picks.attrs["short_by"] = 0
    return picks


def _most_first(table: pd.DataFrame, values: Mapping[str, np.ndarray], classes: Sequence[str],
                k: int, rng: np.random.Generator) -> pd.DataFrame:  # fmt: skip
    """``round_robin_topk``'s turns over ``classes``, each class ranking the rows of
    ``table`` by ``values[cls]`` ``(N,)`` (most first, ties in one random order drawn from
    ``rng``); ``rank``, ``frame_id``, ``picked_for`` and ``table``'s columns."""
    tiebreak = rng.permutation(len(table))
    keys = pd.DataFrame({"frame_id": table.frame_id.to_numpy()})
    for cls in classes:
        order = np.lexsort((tiebreak, -values[cls]))  # most first, ties at random
        key = np.empty(len(table))
        key[order] = -np.arange(len(table), dtype=np.float64)  # a strict ranking, best highest
        keys[cls] = key
    ranked = round_robin_topk(keys, classes, k)[["rank", "frame_id", "picked_for"]]
    return ranked.merge(table, on="frame_id", how="left", validate="one_to_one")


def error_columns(cls: str) -> tuple[str, str]:
    """The columns of REFERENCE's missed objects and false detections of ``cls`` per frame."""
    return f"{cls}{MISSED_SUFFIX}", f"{cls}{FALSE_SUFFIX}"


def oracle_selection(
    errors: pd.DataFrame, classes: Sequence[str], k: int, seed: int
) -> pd.DataFrame:
    """ORACLE: the frames REFERENCE gets most wrong, taking turns over ``classes``.

    ``errors`` has one row per candidate frame: ``frame_id``, per class ``<class>__missed``
    (ground-truth objects REFERENCE does not find) and ``<class>__false`` (its detections
    that match no object), e.g. from ``alkit.evaluate.errors.reference_errors``, and any
    metadata. Each class ranks the frames by missed + false (most first); ties, common among
    small counts, are broken at random (``seed``, its own stream ``(seed, 2)``).

    Returns:
        one row per pick, as ``round_robin_topk``: ``rank``, ``frame_id``, ``picked_for``,
        ``score`` (the errors of the class picked for) and ``errors``' other columns.
    """
    _check_budget(errors, k, "ORACLE")
    needed = [c for cls in classes for c in error_columns(cls)]
    missing = [c for c in needed if c not in errors.columns]
    if missing:
        raise ConfigError(
            f"ORACLE needs REFERENCE's errors per frame and class of interest, but the errors "
            f"table has no {missing} column(s): see alkit.evaluate.errors.reference_errors"
        )
    table = errors.reset_index(drop=True)
    values = {}
    for cls in classes:
        missed, false = (table[c].to_numpy(dtype=np.float64) for c in error_columns(cls))
        values[cls] = missed + false  # (N,)
        if not np.isfinite(values[cls]).all() or (values[cls] < 0).any():
            bad = table.frame_id.to_numpy()[~(values[cls] >= 0)][0]
            raise DataError(f"frame {bad}: REFERENCE's {cls} errors are not counts >= 0")
    picks = _most_first(table, values, classes, k, np.random.default_rng((seed, 2)))
    rows = picks.frame_id.map(dict(zip(table.frame_id, range(len(table)), strict=True)))
    score = [values[c][r] for r, c in zip(rows, picks.picked_for, strict=True)]
    picks.insert(3, "score", np.asarray(score, dtype=np.float64))
    picks.attrs["short_by"] = 0
    return picks
