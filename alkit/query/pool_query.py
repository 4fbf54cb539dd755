"""QUERY, once for every driver: score a pool with the ensemble and pick frames with any of the
selection methods, each pick saved as a selection record.

The notebook step (``alkit.workflow.steps.query_step``), the A/B test and the rounds all call
``query_pool``; only what they pass differs (which methods, which frames are already taken).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
from torch import nn

from alkit.data.classes import CLASSES
from alkit.data.pool import Pool
from alkit.detector.module import resolve_precision
from alkit.ensemble.store import weights_sha256
from alkit.query.methods import (
    SCORED_METHODS,
    Candidates,
    SelectionSettings,
    check_methods,
    select_frames,
)
from alkit.query.score import read_scores, score_pool
from alkit.query.selection import SelectionRecord


@dataclass(frozen=True)
class QueryConfig:
    """What QUERY picks from and how.

    ``pool_filter`` keeps the frames AL and MANUAL pick from (MANUAL watches them as whole
    drives); the ensemble scores every ``pool_stride``-th of them; ``selection`` is how the
    methods pick (``SelectionSettings``: the budget, the classes of interest, the rules).
    """

    pool_filter: Mapping = field(default_factory=lambda: {"time_of_day": ["night"]})
    pool_stride: int = 2
    selection: SelectionSettings = field(default_factory=SelectionSettings)

    @property
    def budget(self) -> int:
        return self.selection.budget

    @property
    def classes_of_interest(self) -> tuple[str, ...]:
        return tuple(self.selection.classes_of_interest)

    @property
    def seed(self) -> int:
        return self.selection.seed

    def settings(self, seed: int | None = None) -> SelectionSettings:
        """The selection settings (``seed`` overrides the selection's, e.g. per round)."""
        return self.selection if seed is None else replace(self.selection, seed=seed)

    def with_budget(self, budget: int) -> QueryConfig:
        """The same query with another budget (e.g. a round's share of it)."""
        return replace(self, selection=replace(self.selection, budget=budget))


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

    selections: dict[str, SelectionRecord]
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


def scoring_precision(
    members: Sequence[nn.Module] | nn.Module, requested: str | None = None,
    accelerator: str = "auto",
) -> str:  # fmt: skip
    """The precision pool scoring runs in: ``requested``, else the members' training one (an
    ``Ensemble``'s ``train_precision``), else ``"auto"``, resolved for ``accelerator``."""
    trained = getattr(members, "train_precision", None)
    return resolve_precision(requested or trained or "auto", accelerator)


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
            precision=scoring_precision(members, scoring.precision, scoring.accelerator),
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
        selections[method] = SelectionRecord.from_table(method.lower(), table, recorded, used)
        paths[method] = Path(out_dir) / "selections" / f"{name.format(method=method)}.json"
        selections[method].save(str(paths[method]))
    tables = pd.concat([t.assign(method=m) for m, t in picks.items()], ignore_index=True)
    return Queried(selections, paths, tables, scored)


__all__ = [
    "QueryConfig",
    "Queried",
    "ScoringConfig",
    "member_hashes",
    "scoring_precision",
    "query_pool",
]
