"""ANNOTATE and APPEND as steps of plain values and paths (notebooks 03 and 04).

``annotate_step`` labels a selection manifest with the oracle and writes ``batch.json``
(``alkit.annotate.batch_io``) and ``summary.csv``; ``append_step`` appends that batch to a parent
version (or the world's initial set) with lineage and writes ``version.json`` = {root, hash}.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from alkit.annotate.batch_io import load_batch, save_batch
from alkit.annotate.oracle import OracleLabeler
from alkit.annotate.summary import batch_summary
from alkit.data import storage
from alkit.data.labels import CostModel
from alkit.data.lineage import append_batch, lineage, resolve_version
from alkit.data.versions import load_version
from alkit.ensemble.store import load_ensemble
from alkit.evaluate.test_sets import evaluation_sets, evaluation_table, model_of
from alkit.query.selection import load_selection
from alkit.sim.experiment import initial_version, load_world


# 03 ANNOTATE ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Annotated:
    """``batch``: the labelled batch's ``batch.json``; ``summary``: ``batch_summary``."""

    batch: Path
    summary: pd.DataFrame


def annotate_step(
    out_dir: str | Path,
    world_path: str,
    selection_path: str,
    seconds_per_frame: float = 30.0,
    seconds_per_box: float = 7.0,
) -> Annotated:
    """ANNOTATE the frames of a selection manifest with the simulated oracle, charged by
    ``CostModel(seconds_per_frame, seconds_per_box)``."""
    out = Path(out_dir)
    selection = load_selection(selection_path)
    oracle = OracleLabeler(load_world(world_path), CostModel(seconds_per_frame, seconds_per_box))
    batch = oracle.label(list(selection.frame_ids))
    path = Path(save_batch(batch, str(out / "batch.json")))
    summary = batch_summary({selection.method.upper(): batch})
    storage.atomic_write_text(str(out / "summary.csv"), summary.to_csv())
    return Annotated(path, summary)


# 04 APPEND ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Appended:
    """``root`` + ``version``: the new version; ``chain``: its lineage, newest first."""

    root: str
    version: str
    chain: list[dict]


def append_step(
    out_dir: str | Path,
    world_path: str,
    batch_path: str,
    selection_path: str,
    versions_root: str = "",
    parent_version: str = "",
    initial_stride: int = 2,
    params: dict | None = None,
) -> Appended:
    """APPEND the labelled batch to ``parent_version`` (a hash or prefix in ``versions_root``;
    empty: the world's initial set) as a new version with lineage; ``versions_root`` empty
    means ``<out_dir>/versions``. Writes ``<out_dir>/version.json`` = {root, hash}."""
    out = Path(out_dir)
    root = versions_root or str(out / "versions")
    world = load_world(world_path)
    if parent_version:
        parent = load_version(root, resolve_version(root, parent_version))
    else:
        parent = initial_version(world, initial_stride)
    version = append_batch(
        root, parent, load_batch(batch_path), load_selection(selection_path), params=params
    )
    storage.atomic_write_json(str(out / "version.json"), {"root": root, "hash": version.hash})
    return Appended(root, version.hash, lineage(root, version.hash))


# 05 EVALUATE ----------------------------------------------------------------------------------
def evaluate_step(
    out_dir: str | Path,
    world_path: str,
    ensemble_path: str,
    member: int = -1,
    test_set_names: Sequence[str] = ("global", "night_heldout"),
    test_stride: int = 4,
    batch_size: int = 32,
) -> pd.DataFrame:
    """EVALUATE the ensemble (``member=-1``: mean heatmaps, as one detector) or one member on
    the named test sets; writes and returns the tidy ``evaluation.csv``."""
    world = load_world(world_path)
    sets = evaluation_sets(world, test_set_names, test_stride)
    table = evaluation_table(model_of(load_ensemble(ensemble_path), member), sets, batch_size)
    storage.atomic_write_text(str(Path(out_dir) / "evaluation.csv"), table.to_csv(index=False))
    return table


__all__ = ["Annotated", "Appended", "annotate_step", "append_step", "evaluate_step"]
