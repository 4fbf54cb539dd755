"""Selection methods behind one registry: AL and the seed's baselines at one budget.

Every method is a function ``(candidates, settings) -> picks`` registered in ``METHODS`` under
its name; ``select_frames`` runs any of them on the same candidates, so the QUERY step, the
A/B test and the rounds pick frames the same way. ``picks`` are rows of the candidates'
metadata in pick order (AL, AL-div and COUNT add ``score`` and ``picked_for``; MANUAL adds
``subsequence``).

The seed's A/B test compares ``SEED_METHODS`` (AL, MANUAL, RANDOM, METADATA); the powered
experiment adds RANDOM-night (the fair control for an AL restricted to the watched, e.g.
night, frames), COUNT (density without uncertainty) and AL-div (AL with diversity), and
the field's acquisitions beside the seed's AL: AL-max and AL-peaks (MI localised: the most
uncertain cell, or the summed uncertainty of the ensemble's candidate objects), AL-kcenter
(top-MI candidates, then k-center greedy on the ensemble's features), and ORACLE (the
frames REFERENCE gets most wrong, read off the ground truth: the ceiling).

What a driver passes for each (``Candidates``): ``scores`` (the score shards merged with
the frames' metadata, ``alkit.query.score.read_scores``) for ``SCORED_METHODS``, with the
``<class>__max`` / ``<class>__peaks`` columns for AL-max / AL-peaks and the ``feature_NN``
columns for AL-kcenter; ``errors`` (``alkit.evaluate.errors.reference_errors`` of REFERENCE
on the candidate frames, e.g. the frames AL scores, merged with their metadata) for
``ORACLE_METHODS``; ``visible`` for MANUAL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from alkit.errors import ConfigError, DataError
from alkit.query.baselines import (
    count_selection,
    manual_curation,
    metadata_selection,
    oracle_selection,
    random_selection,
)
from alkit.query.kcenter import feature_columns, k_center_greedy
from alkit.query.round_robin import round_robin_topk

#: Frame-score kind -> its column suffix in the score shards (``alkit.query.score``): mean MI
#: (the seed's, named by the class), max MI over cells, MI summed over detection peaks.
SCORE_SUFFIXES = {"mean": "", "max": "__max", "peaks": "__peaks"}


@dataclass(frozen=True)
class SelectionSettings:
    """How much to pick and how (plain values).

    ``budget`` frames per method; AL takes turns over ``classes_of_interest`` with at most
    ``al_session_cap`` picks per session and picks of one session at least
    ``al_min_frame_gap`` frames apart (``None``: no rule); AL-div does the same with
    ``al_div_session_cap`` and ``al_div_min_frame_gap`` (default 4 per 10 s drive, 1 s
    apart at 10 frames per second); MANUAL applies ``manual_filters`` and keeps stretches of
    ``manual_subsequence`` frames; METADATA applies ``metadata_filters``; ``seed`` drives the
    random baselines, COUNT's and ORACLE's tie-breaks and the curator. AL-kcenter keeps the
    ``ceil(kcenter_factor * budget)`` best frames by ``kcenter_score`` (a kind of
    ``SCORE_SUFFIXES``; round robin over the classes), then picks ``budget`` of them by
    k-center greedy on the frames' features, starting from the best one.
    """

    budget: int = 100
    classes_of_interest: tuple[str, ...] = ("person", "bicycle")
    seed: int = 0
    al_session_cap: int | None = None
    al_min_frame_gap: int | None = None
    al_div_session_cap: int | None = 4
    al_div_min_frame_gap: int | None = 10
    manual_filters: Mapping = field(default_factory=lambda: {"route": ["urban", "suburban"]})
    manual_subsequence: int = 20
    metadata_filters: Mapping = field(default_factory=lambda: {"time_of_day": ["night"]})
    kcenter_factor: float = 4.0
    kcenter_score: str = "mean"


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
        errors: REFERENCE's errors on the frames ORACLE may pick: ``frame_id``, per class of
            interest ``<class>__missed`` and ``<class>__false`` (see
            ``baselines.oracle_selection``), and metadata; ``None`` without ground truth.
    """

    pool: pd.DataFrame
    watched: pd.DataFrame
    scores: pd.DataFrame | None = None
    visible: Callable[[Sequence[int]], pd.DataFrame] | None = None
    errors: pd.DataFrame | None = None


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


def _scored_by(c: Candidates, s: SelectionSettings, kind: str, method: str, k: int,
               cap: int | None = None, gap: int | None = None) -> pd.DataFrame:  # fmt: skip
    """``round_robin_topk`` on the ``kind`` frame scores (``SCORE_SUFFIXES``): ``rank``,
    ``frame_id``, ``picked_for``, ``score`` (of that kind) and the scores table's columns."""
    if kind not in SCORE_SUFFIXES:
        raise ConfigError(f"unknown frame score {kind!r}; choose one of {list(SCORE_SUFFIXES)}")
    scores, coi = _scores(c, method), list(s.classes_of_interest)
    columns = [f"{cls}{SCORE_SUFFIXES[kind]}" for cls in coi]
    missing = [col for col in columns if col not in scores.columns]
    if missing:
        raise ConfigError(
            f"{method} needs the {kind!r} frame scores {missing}: these score shards were "
            "written before them; score the pool again into a new folder"
        )
    if kind == "mean":
        return round_robin_topk(scores, coi, k, cap, min_frame_gap=gap)
    keep = [col for col in ("frame_id", "session_id", "frame_index") if col in scores]
    keys = scores[keep].assign(**{cls: scores[col] for cls, col in zip(coi, columns, strict=True)})
    ranked = round_robin_topk(keys, coi, k, cap, min_frame_gap=gap)
    picks = ranked[["rank", "frame_id", "picked_for", "score"]].merge(
        scores, on="frame_id", how="left", validate="one_to_one"
    )
    picks.attrs["short_by"] = ranked.attrs["short_by"]
    return picks


def _al_max(c: Candidates, s: SelectionSettings) -> pd.DataFrame:
    """AL on the most uncertain cell (``<class>__max``) instead of the mean over cells."""
    return _scored_by(c, s, "max", "AL-max", s.budget, s.al_session_cap, s.al_min_frame_gap)


def _al_peaks(c: Candidates, s: SelectionSettings) -> pd.DataFrame:
    """AL on the MI summed over the ensemble's candidate objects at least
    ``acquisition.MIN_LEARNABLE_HEIGHT`` px tall (``<class>__peaks``): uncertain objects,
    not background area."""
    return _scored_by(c, s, "peaks", "AL-peaks", s.budget, s.al_session_cap, s.al_min_frame_gap)


def _al_kcenter(c: Candidates, s: SelectionSettings) -> pd.DataFrame:
    """Diversity as its own step (core-set, PPAL): the ``ceil(kcenter_factor * budget)``
    best frames by ``kcenter_score`` (round robin over the classes), then ``budget`` of them
    by k-center greedy on the ensemble's per-frame features (``feature_NN`` columns), the
    first pick the best candidate. ``picked_for`` and ``score`` are those of the first stage;
    ``kcenter_rank`` is the candidate's rank there."""
    scores = _scores(c, "AL-kcenter")
    columns = feature_columns(scores)
    if not columns:
        raise ConfigError(
            "AL-kcenter needs the ensemble's per-frame features (feature_NN columns): these "
            "score shards were written before them; score the pool again into a new folder"
        )
    if s.kcenter_factor < 1:
        raise ConfigError(f"kcenter_factor must be >= 1, got {s.kcenter_factor}")
    n = min(len(scores), int(np.ceil(s.kcenter_factor * s.budget)))
    pool = _scored_by(c, s, s.kcenter_score, "AL-kcenter", n)  # best first
    if s.budget > len(pool):
        raise ConfigError(f"AL-kcenter: budget {s.budget} is larger than the pool ({len(pool)})")
    features = pool[columns].to_numpy(np.float64)  # [n, D]
    if not np.isfinite(features).all():
        bad = pool.frame_id.to_numpy()[~np.isfinite(features).all(axis=1)][0]
        raise DataError(f"frame {bad}: no finite features (shards of an older scoring run?)")
    chosen = k_center_greedy(features, s.budget, first=0)
    picks = pool.iloc[chosen].rename(columns={"rank": "kcenter_rank"})
    picks.insert(0, "rank", np.arange(len(picks)))
    picks = picks.reset_index(drop=True)
    picks.attrs["short_by"] = 0
    return picks


def _oracle(c: Candidates, s: SelectionSettings) -> pd.DataFrame:
    if c.errors is None:
        raise ConfigError(
            "ORACLE needs REFERENCE's errors on the candidate frames (Candidates.errors, "
            "alkit.evaluate.errors.reference_errors): only a pool with ground truth has them"
        )
    return oracle_selection(c.errors, list(s.classes_of_interest), s.budget, s.seed)


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
    "AL-max": _al_max,
    "AL-peaks": _al_peaks,
    "AL-kcenter": _al_kcenter,
    "ORACLE": _oracle,
}
#: The seed's A/B test: AL against its three baselines.
SEED_METHODS = ("AL", "MANUAL", "RANDOM", "METADATA")
BASELINES = tuple(m for m in SEED_METHODS if m != "AL")
#: The methods that choose from the ensemble's scores (QUERY must score the pool for them).
SCORED_METHODS = ("AL", "COUNT", "AL-div", "AL-max", "AL-peaks", "AL-kcenter")
#: The methods that read REFERENCE's errors against the ground truth (``Candidates.errors``).
ORACLE_METHODS = ("ORACLE",)


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
    "ORACLE_METHODS",
    "SCORED_METHODS",
    "SCORE_SUFFIXES",
    "SEED_METHODS",
    "Candidates",
    "SelectionSettings",
    "check_methods",
    "score_figure",
    "select_frames",
    "selection_overview",
]
