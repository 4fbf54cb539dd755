"""QUERY, once for every driver: score a pool with the ensemble and pick frames with any of the
selection methods, each pick saved as a selection record.

The notebook step (``alkit.workflow.steps.query_step``), the A/B test and the rounds all call
``query_pool``; only what they pass differs (which methods, which frames are already taken).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
from torch import nn

from alkit.data.classes import CLASSES
from alkit.data.pool import Pool
from alkit.detector.module import resolve_precision
from alkit.ensemble.store import weights_sha256
from alkit.errors import check_known_fields
from alkit.query.methods import (
    SCORED_METHODS,
    Candidates,
    SelectionSettings,
    check_methods,
    select_frames,
)
from alkit.query.score import read_scores, score_pool
from alkit.query.selection import SelectionManifest


@dataclass(frozen=True)
class QueryConfig:
    """What QUERY picks from and how (plain values, one per profile parameter).

    ``pool_filter`` keeps the frames AL and MANUAL pick from (MANUAL watches them as whole
    drives); the ensemble scores every ``pool_stride``-th of them. The rest is
    ``SelectionSettings``.
    """

    budget: int = 100
    classes_of_interest: tuple[str, ...] = ("person", "bicycle")
    pool_filter: Mapping = field(default_factory=lambda: {"time_of_day": ["night"]})
    pool_stride: int = 2
    al_session_cap: int | None = None
    al_min_frame_gap: int | None = None
    al_div_session_cap: int | None = 4
    al_div_min_frame_gap: int | None = 10
    manual_filters: Mapping = field(default_factory=lambda: {"route": ["urban", "suburban"]})
    manual_subsequence: int = 20
    metadata_filters: Mapping = field(default_factory=lambda: {"time_of_day": ["night"]})
    seed: int = 0

    @classmethod
    def from_values(cls, values: Mapping) -> QueryConfig:
        """The fields of ``values`` this config knows (a profile holds more)."""
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        check_known_fields(cls, known)
        if "classes_of_interest" in known:
            known["classes_of_interest"] = tuple(known["classes_of_interest"])
        return cls(**known)

    def settings(self, seed: int | None = None) -> SelectionSettings:
        """The selection settings (``seed`` overrides ``self.seed``, e.g. per round)."""
        return SelectionSettings(
            budget=self.budget,
            classes_of_interest=tuple(self.classes_of_interest),
            seed=self.seed if seed is None else seed,
            al_session_cap=self.al_session_cap,
            al_min_frame_gap=self.al_min_frame_gap,
            al_div_session_cap=self.al_div_session_cap,
            al_div_min_frame_gap=self.al_div_min_frame_gap,
            manual_filters=dict(self.manual_filters or {}),
            manual_subsequence=self.manual_subsequence,
            metadata_filters=dict(self.metadata_filters or {}),
        )


@dataclass(frozen=True)
class ScoringConfig:
    """Where and how the ensemble scores the pool: Lightning's ``accelerator``, ``devices``
    and ``precision`` (``"auto"``: as ``resolve_precision``; ``None``: the members' training
    precision), frames per ``batch_size``, render ``num_workers``."""

    accelerator: str = "auto"
    devices: int | str = 1
    precision: str | None = None
    batch_size: int = 32
    num_workers: int = 0


@dataclass(frozen=True)
class Queried:
    """``selections``: method -> record; ``paths``: method -> its JSON; ``picks``: every
    method's picks (``method`` column); ``scores``: the scored frames with their metadata
    (``None`` without AL)."""

    selections: dict[str, SelectionManifest]
    paths: dict[str, Path]
    picks: pd.DataFrame
    scores: pd.DataFrame | None

    @property
    def frame_ids(self) -> list[int]:
        """The AL picks' frame ids (else the first method's), in pick order."""
        method = "AL" if "AL" in self.selections else next(iter(self.selections))
        return list(self.selections[method].frame_ids)


def member_hashes(members: Sequence[nn.Module] | nn.Module) -> list[str]:
    """``weights_sha256`` of each member (an ``Ensemble``, a list, or one module such as
    ``MCDropout``): the ensemble's identity in selection records and score plans."""
    if hasattr(members, "members"):
        members = list(members.members)
    elif isinstance(members, nn.Module):
        members = [members]
    return [weights_sha256(m) for m in members]


def query_pool(
    members: Sequence[nn.Module],
    pool: Pool,
    out_dir: str | Path,
    methods: Sequence[str],
    config: QueryConfig,
    scoring: ScoringConfig,
    *,
    taken: Iterable[int] = (),
    visible: Callable[[Sequence[int]], pd.DataFrame] | None = None,
    errors: pd.DataFrame | None = None,
    seed: int | None = None,
    name: str = "{method}",
    params: Mapping | None = None,
    progress: bool = True,
) -> Queried:
    """QUERY ``pool`` with ``members`` (an ``Ensemble`` or a list of detectors).

    For AL (and the other scored methods: COUNT, AL-div) the ensemble scores every
    ``pool_stride``-th frame passing ``pool_filter`` (resumable shards in
    ``<out_dir>/scores``, named like the selections); the frames in ``taken`` (already
    labelled) are left out of everything the methods see. ``visible`` is the simulated
    curator's view of ground truth (MANUAL); ``errors`` is REFERENCE's errors on the frames
    ORACLE may pick (``Candidates.errors``, ``alkit.evaluate.errors.reference_errors``),
    ``taken`` frames left out. Each method's pick is saved as
    ``<out_dir>/selections/<name>.json`` with ``name.format(method=...)``.
    """
    methods = check_methods(methods)
    taken = set(int(i) for i in taken)
    watched = pool.where(config.pool_filter)
    scored = None
    hashes = member_hashes(members)
    if set(methods) & set(SCORED_METHODS):
        to_score = watched.every(config.pool_stride).without(taken)
        trained = getattr(members, "train_precision", None)
        precision = scoring.precision or trained or "auto"
        url = str(Path(out_dir) / "scores" / name.format(method="AL"))
        score_pool(
            members,
            pool.source,
            to_score.frame_ids,
            url,
            classes=getattr(members, "classes", CLASSES),
            member_hashes=hashes,
            batch_size=scoring.batch_size,
            num_workers=scoring.num_workers,
            accelerator=scoring.accelerator,
            devices=scoring.devices,
            precision=resolve_precision(precision, scoring.accelerator),
            progress=progress,
        )
        scored = read_scores(url).merge(to_score.metadata, on="frame_id")
    candidates = Candidates(
        pool=pool.without(taken).metadata,
        watched=watched.without(taken).metadata,
        scores=scored,
        visible=visible,
        errors=None if errors is None else errors[~errors.frame_id.isin(taken)],
    )
    picks = select_frames(methods, candidates, config.settings(seed))
    recorded = {
        "budget": config.budget,
        "classes": list(config.classes_of_interest),
        "seed": config.seed if seed is None else seed,
        **dict(params or {}),
    }
    selections, paths = {}, {}
    for method, table in picks.items():
        used = hashes if method in SCORED_METHODS else ()
        selections[method] = SelectionManifest.from_table(method.lower(), table, recorded, used)
        paths[method] = Path(out_dir) / "selections" / f"{name.format(method=method)}.json"
        selections[method].save(str(paths[method]))
    tables = pd.concat([t.assign(method=m) for m, t in picks.items()], ignore_index=True)
    return Queried(selections, paths, tables, scored)


def scoring_from_values(values: Mapping) -> ScoringConfig:
    """The ``ScoringConfig`` of a profile's plain values (``accelerator``, ``devices``,
    ``score_precision``, ``score_batch_size``, ``score_workers``)."""
    defaults = asdict(ScoringConfig())
    return ScoringConfig(
        accelerator=values.get("accelerator", defaults["accelerator"]),
        devices=values.get("devices", defaults["devices"]),
        precision=values.get("score_precision", defaults["precision"]),
        batch_size=values.get("score_batch_size", defaults["batch_size"]),
        num_workers=values.get("score_workers", defaults["num_workers"]),
    )


__all__ = [
    "QueryConfig",
    "Queried",
    "ScoringConfig",
    "member_hashes",
    "query_pool",
    "scoring_from_values",
]
