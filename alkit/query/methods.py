"""Selection methods behind one registry: AL and the seed's baselines at one budget.

Every method is a function ``(candidates, settings) -> picks`` registered in ``METHODS`` under
its name; ``select_frames`` runs any of them on the same candidates, so the QUERY step, the
A/B test and the rounds pick frames the same way. ``picks`` are rows of the candidates'
metadata in pick order (AL, AL-div and COUNT add ``score`` and ``picked_for``; MANUAL adds
``subsequence``).

The seed's A/B test compares ``SEED_METHODS`` (AL, MANUAL, RANDOM, METADATA); the powered
experiment adds RANDOM-night (the fair control for an AL restricted to the watched, e.g.
night, frames), COUNT (density without uncertainty) and AL-div (AL with diversity).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from alkit.errors import ConfigError
from alkit.query.baselines import (
    count_selection,
    manual_curation,
    metadata_selection,
    random_selection,
)
from alkit.query.round_robin import round_robin_topk


@dataclass(frozen=True)
class SelectionSettings:
    """How much to pick and how (plain values).

    ``budget`` frames per method; AL takes turns over ``classes_of_interest`` with at most
    ``al_session_cap`` picks per session and picks of one session at least
    ``al_min_frame_gap`` frames apart (``None``: no rule); AL-div does the same with
    ``al_div_session_cap`` and ``al_div_min_frame_gap`` (default 4 per 10 s drive, 1 s
    apart at 10 frames per second); MANUAL applies ``manual_filters`` and keeps stretches of
    ``manual_subsequence`` frames; METADATA applies ``metadata_filters``; ``seed`` drives the
    random baselines, COUNT's tie-break and the curator.
    """

    budget: int = 100
    classes_of_interest: tuple[str, ...] = ("person", "bicycle")
    seed: int = 0
    al_session_cap: int | None = None
    al_min_frame_gap: int | None = None
    al_div_session_cap: int | None = 4
    al_div_min_frame_gap: int | None = 10
    manual_filters: Mapping = field(default_factory=dict)
    manual_subsequence: int = 20
    metadata_filters: Mapping = field(default_factory=dict)


@dataclass(frozen=True)
class Candidates:
    """What the methods choose from (metadata tables with a ``frame_id`` column).

    Attributes:
        pool: the whole pool (RANDOM, METADATA).
        watched: the frames passing the pool filter, whole drives (MANUAL watches these,
            RANDOM-night draws from them).
        scores: the scored frames with one score column per class (AL, AL-div) and, for
            COUNT, one predicted-count column per class (``<class>__count``, see
            ``baselines.count_selection``); ``None`` if unscored.
        visible: the curator's eyes: ``frame_ids -> frame_id + objects per class``; ``None``
            where nobody can watch the drives (then MANUAL cannot run).
    """

    pool: pd.DataFrame
    watched: pd.DataFrame
    scores: pd.DataFrame | None = None
    visible: Callable[[Sequence[int]], pd.DataFrame] | None = None


def _scores(c: Candidates, method: str) -> pd.DataFrame:
    if c.scores is None:
        raise ConfigError(f"{method} needs scores: score the pool with the ensemble first")
    return c.scores


def _al(c: Candidates, s: SelectionSettings) -> pd.DataFrame:
    coi = list(s.classes_of_interest)
    return round_robin_topk(
        _scores(c, "AL"), coi, s.budget, s.al_session_cap, min_frame_gap=s.al_min_frame_gap
    )


def _al_div(c: Candidates, s: SelectionSettings) -> pd.DataFrame:
    """AL with diversity: the same round robin on mean MI, with at most
    ``al_div_session_cap`` picks per driving session and picks of one session at least
    ``al_div_min_frame_gap`` frames apart.

    Why a cap and a gap rather than top-MI candidates then k-center on features: neighbouring
    frames of a drive are near-duplicates and test sets are unseen drives, so the redundancy
    to remove is within a session, and ``session_id`` / ``frame_index`` say exactly that at no
    cost; the score shards hold no feature vectors, and k-center on them would add a second
    pass over the pool and a distance whose meaning (which features, which layer) is itself a
    design choice. The selection can fall short of the budget when the rules leave too few
    frames (``attrs["short_by"]``)."""
    coi = list(s.classes_of_interest)
    scores = _scores(c, "AL-div")
    return round_robin_topk(
        scores, coi, s.budget, s.al_div_session_cap, min_frame_gap=s.al_div_min_frame_gap
    )


def _count(c: Candidates, s: SelectionSettings) -> pd.DataFrame:
    scores = _scores(c, "COUNT")
    return count_selection(scores, list(s.classes_of_interest), s.budget, s.seed)


def _manual(c: Candidates, s: SelectionSettings) -> pd.DataFrame:
    if c.visible is None:
        raise ConfigError(
            "MANUAL simulates a curator who watches the drives; this pool has no ground truth "
            "to watch (visible=None)"
        )
    return manual_curation(
        c.watched,
        c.visible,
        list(s.classes_of_interest),
        s.budget,
        s.seed,
        filters=s.manual_filters,
        subsequence_length=s.manual_subsequence,
    )


def _random(c: Candidates, s: SelectionSettings) -> pd.DataFrame:
    return random_selection(c.pool, s.budget, s.seed)


def _random_night(c: Candidates, s: SelectionSettings) -> pd.DataFrame:
    """Uniform from the watched frames (the pool filter's, e.g. night): the population AL
    chooses from. Its own random stream ``(seed, 1)``: where ``metadata_filters`` equal the
    pool filter, METADATA draws from the same frames, and the two are then independent
    draws rather than the same frames."""
    return random_selection(c.watched, s.budget, (s.seed, 1))


def _metadata(c: Candidates, s: SelectionSettings) -> pd.DataFrame:
    return metadata_selection(c.pool, s.budget, s.seed, s.metadata_filters or {})


#: name -> method; the order is the order of tables and figures.
METHODS: dict[str, Callable[[Candidates, SelectionSettings], pd.DataFrame]] = {
    "AL": _al,
    "MANUAL": _manual,
    "RANDOM": _random,
    "METADATA": _metadata,
    "RANDOM-night": _random_night,
    "COUNT": _count,
    "AL-div": _al_div,
}
#: The seed's A/B test: AL against its three baselines.
SEED_METHODS = ("AL", "MANUAL", "RANDOM", "METADATA")
BASELINES = tuple(m for m in SEED_METHODS if m != "AL")
#: The methods that choose from the ensemble's scores (QUERY must score the pool for them).
SCORED_METHODS = ("AL", "COUNT", "AL-div")


def check_methods(methods: Sequence[str]) -> tuple[str, ...]:
    """``methods`` as a tuple; ``ConfigError`` naming the unknown ones or for none."""
    if isinstance(methods, str) or not methods:
        raise ConfigError(f"methods must be a non-empty list of {list(METHODS)}, got {methods!r}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"unknown selection method(s) {unknown}; choose from {list(METHODS)}")
    return tuple(methods)


def select_frames(
    methods: Sequence[str], candidates: Candidates, settings: SelectionSettings
) -> dict[str, pd.DataFrame]:
    """``settings.budget`` frames for each of ``methods``, in pick order."""
    return {m: METHODS[m](candidates, settings) for m in check_methods(methods)}


def selection_overview(picks: pd.DataFrame) -> pd.DataFrame:
    """Per method: frames, driving sessions and frames per time of day (metadata only, no
    labels yet); a pool without ``session_id`` or ``time_of_day`` columns has no such
    columns here."""
    parts = [picks.groupby("method").size().rename("frames")]
    if "session_id" in picks:
        parts.append(picks.groupby("method").session_id.nunique().rename("sessions"))
    if "time_of_day" in picks:
        parts.append(pd.crosstab(picks.method, picks.time_of_day))
    return pd.concat(parts, axis=1).fillna(0).astype(int)


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
    "SCORED_METHODS",
    "SEED_METHODS",
    "Candidates",
    "SelectionSettings",
    "check_methods",
    "score_figure",
    "select_frames",
    "selection_overview",
]
