"""A finished A/B run folder, opened for exploring (notebook 20).

``open_ab_folder(run_dir)`` reads what ``alkit.experiments.abtest.run_ab_test`` wrote
(``ab_config.json``, ``ensemble/``, ``scores/``, ``selections/``, ``summary.csv``, ``gains.csv``,
``selection_analysis.csv``) and builds the selection table ``SelectionExplorer`` takes: one
row per (method, frame) with the frame's metadata and its per-class scores. Frames the A/B
run did not score (RANDOM draws from the whole pool, day frames included) are scored with the
same ensemble into ``scores_dir``, so every method's frames carry comparable scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from alkit.data import storage
from alkit.data.classes import CLASSES
from alkit.ensemble.store import Ensemble, load_ensemble
from alkit.errors import DataError
from alkit.experiments.abtest import ABConfig
from alkit.query.methods import METHODS
from alkit.query.pool_query import member_hashes
from alkit.query.score import read_scores, score_pool
from alkit.query.selection import load_selection
from alkit.sim import World
from alkit.sim.experiment import make_world


@dataclass(frozen=True)
class ABFolder:
    """A finished A/B run: its config, world, ensemble and tables.

    ``selections``: one row per (method, frame): ``method``, ``rank`` (pick order),
    ``frame_id``, the metadata (``session_id``, ``time_of_day``, ...) and one mean-MI score
    column per class. ``summary``, ``gains``, ``analysis``: as ``ab_report`` wrote them.
    """

    run_dir: Path
    config: ABConfig
    world: World
    ensemble: Ensemble
    selections: pd.DataFrame
    summary: pd.DataFrame
    gains: pd.DataFrame
    analysis: pd.DataFrame

    @property
    def frame_ids(self) -> list[int]:
        """Every selected frame once, in first-pick order."""
        return list(dict.fromkeys(self.selections.frame_id.tolist()))


def _need(path: Path) -> Path:
    if not path.exists():
        raise DataError(f"{path} is missing: is {path.parent} a finished A/B run (10_ab_test)?")
    return path


def open_ab_folder(
    run_dir: str | Path, scores_dir: str | Path | None = None, progress: bool = False
) -> ABFolder:
    """Open the A/B run in ``run_dir``; frames its pool scoring skipped are scored into
    ``scores_dir`` (default ``<run_dir>/explore_scores``), resumably."""
    run = Path(run_dir)
    config = ABConfig.from_dict(storage.read_json(str(_need(run / "ab_config.json"))))
    w = config.run.world
    world = make_world(w.world_profile, w.world_seed, dict(w.sessions))
    ensemble = load_ensemble(_need(run / "ensemble" / "ensemble.json"))
    picks = []
    for method in METHODS:
        path = run / "selections" / f"{method}.json"
        if path.exists():
            ids = list(load_selection(str(path)).frame_ids)
            picks.append(pd.DataFrame({"method": method, "rank": range(len(ids)), "frame_id": ids}))
    if not picks:
        raise DataError(f"no selections under {run / 'selections'}: run the A/B test first")
    table = pd.concat(picks, ignore_index=True)
    scores = read_scores(str(_need(run / "scores" / "AL")))
    missing = sorted(set(table.frame_id) - set(scores.frame_id))
    if missing:
        extra = str(scores_dir or run / "explore_scores")
        score_pool(ensemble, world, missing, extra, member_hashes=member_hashes(ensemble),
                   progress=progress)  # fmt: skip
        scores = pd.concat([scores, read_scores(extra)], ignore_index=True)
    scores = scores[["frame_id", *CLASSES]]
    table = table.merge(world.manifest(sorted(set(table.frame_id))), on="frame_id")
    table = table.merge(scores, on="frame_id", how="left")
    return ABFolder(
        run,
        config,
        world,
        ensemble,
        table,
        pd.read_csv(_need(run / "summary.csv")),
        pd.read_csv(_need(run / "gains.csv")),
        pd.read_csv(_need(run / "selection_analysis.csv"), index_col=0),
    )


__all__ = ["ABFolder", "open_ab_folder"]
