"""Several selection methods side by side at one budget: AL and the seed's baselines.

``select_frames`` runs any of ``METHODS`` on the same pool, so the QUERY step, the A/B test and
the multi-round loop pick frames the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from alkit.data.classes import CLASSES
from alkit.errors import ConfigError
from alkit.query.baselines import (
    filter_manifest,
    manual_curation,
    metadata_selection,
    random_selection,
)
from alkit.query.round_robin import round_robin_topk

METHODS = ("AL", "MANUAL", "RANDOM", "METADATA")
BASELINES = METHODS[1:]


def class_counts(world: Any, frame_ids) -> pd.DataFrame:
    """Ground-truth objects per class per frame: what a curator sees when watching a drive."""
    rows = []
    for fid in frame_ids:
        labels = world.frame(int(fid)).labels
        rows.append([int(fid), *np.bincount(labels, minlength=len(CLASSES)).tolist()])
    return pd.DataFrame(rows, columns=["frame_id", *CLASSES])


def pool_frames(
    world: Any, pool_filter: Mapping | None, pool_stride: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(pool, watched, scored)`` manifests: the whole ``pool`` segment; the frames passing
    ``pool_filter``, which the MANUAL curator watches as whole drives; and every
    ``pool_stride``-th of those, which the ensemble scores for AL."""
    pool = world.manifest(world.segment_frame_ids("pool"))
    watched = filter_manifest(pool, pool_filter)
    return pool, watched, watched.iloc[::pool_stride]


def select_frames(
    world: Any,
    methods: Sequence[str],
    budget: int,
    classes: Sequence[str],
    seed: int,
    scores: pd.DataFrame | None = None,
    candidates: pd.DataFrame | None = None,
    pool: pd.DataFrame | None = None,
    al_session_cap: int | None = None,
    manual_filters: Mapping | None = None,
    manual_subsequence: int = 20,
    metadata_filters: Mapping | None = None,
) -> dict[str, pd.DataFrame]:
    """``budget`` frames for each of ``methods``: AL = round robin over ``classes`` on
    ``scores``; MANUAL = simulated curation of ``candidates`` (the filtered pool); RANDOM and
    METADATA draw from ``pool`` (the whole pool manifest)."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"unknown selection method(s) {unknown}; choose from {list(METHODS)}")
    needs = {
        "AL": ("scores", scores),
        "MANUAL": ("candidates", candidates),
        "RANDOM": ("pool", pool),
        "METADATA": ("pool", pool),
    }
    missing = sorted({needs[m][0] for m in methods if needs[m][1] is None})
    if missing:
        raise ConfigError(f"select_frames: methods {list(methods)} need {missing}")
    coi = list(classes)
    makers = {
        "AL": lambda: round_robin_topk(scores, coi, budget, per_session_cap=al_session_cap),
        "MANUAL": lambda: manual_curation(
            candidates,
            lambda ids: class_counts(world, ids),
            coi,
            budget,
            seed,
            filters=manual_filters,
            subsequence_length=manual_subsequence,
        ),
        "RANDOM": lambda: random_selection(pool, budget, seed),
        "METADATA": lambda: metadata_selection(pool, budget, seed, metadata_filters or {}),
    }
    return {m: makers[m]() for m in methods}


def selection_overview(picks: pd.DataFrame) -> pd.DataFrame:
    """Per method: frames, driving sessions and frames per time of day (metadata only, no
    labels yet)."""
    times = pd.crosstab(picks.method, picks.time_of_day)
    sessions = picks.groupby("method").session_id.nunique().rename("sessions")
    frames = picks.groupby("method").size().rename("frames")
    return pd.concat([frames, sessions, times], axis=1).fillna(0).astype(int)


def score_figure(scores: pd.DataFrame, picked: Sequence[int], classes: Sequence[str]) -> Figure:
    """Per class, the histogram of frame scores (mean MI, nats) over the scored pool, with the
    ``picked`` frames' scores as a second histogram on top."""
    fig = Figure(figsize=(3.2 * len(classes), 2.8))
    axes = np.atleast_1d(fig.subplots(1, len(classes)))
    chosen = scores.frame_id.isin(list(picked))
    for ax, cls in zip(axes, classes, strict=True):
        bins = np.linspace(0.0, max(float(scores[cls].max()), 1e-9), 30)
        ax.hist(scores[cls], bins=bins, color="#7f7f7f", label="pool")
        ax.hist(scores.loc[chosen, cls], bins=bins, color="#d62728", label="picked")
        ax.set_yscale("log")
        ax.set_xlabel(f"mean MI, {cls} (nats)")
    axes[0].set_ylabel("frames")
    axes[0].legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


__all__ = [
    "BASELINES",
    "METHODS",
    "class_counts",
    "pool_frames",
    "select_frames",
    "score_figure",
    "selection_overview",
]
