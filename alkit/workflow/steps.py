"""The loop's steps as functions of paths and plain values: what notebooks 01-05 call.

Each step reads its inputs from paths, calls the loop's own functions (the same the A/B test
and the rounds call), writes its outputs under ``out_dir`` (atomically) and returns a small
frozen result with the paths and tables a notebook shows::

    01 train_step     -> world.json, ensemble.json (+ member checkpoints)   train_members
    02 query_step     -> scores/, selections/<METHOD>.json (AL + baselines) query_pool
    03 annotate_step  -> batch.json, summary.csv (+ export/ for a tool)     a labeller
    04 append_step    -> a new version in the versions store, version.json  append_batch
    05 evaluate_step  -> evaluation.csv                                     evaluation_table

Every other value comes from a profile (``alkit.experiments.profiles``; ``quick`` by default),
overridden by keyword: ``train_step(out, profile="tiny", n_members=2)``. Called with only a
profile, a step runs what its notebook runs. An unknown keyword raises ``ConfigError`` naming
it. Between steps only paths pass (``alkit.workflow.pipeline`` wires them); the world travels
as ``world.json``, labelled batches as ``batch.json``, versions as ``version.json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from alkit.annotate.batch_io import load_batch, save_batch
from alkit.annotate.oracle import OracleLabeler
from alkit.annotate.summary import batch_summary
from alkit.annotate.tool import ToolLabeler
from alkit.data import storage
from alkit.data.datasets import VirtualFrames
from alkit.data.labels import CostModel, Labeler
from alkit.data.lineage import append_batch, lineage, resolve_version
from alkit.data.versions import load_version
from alkit.ensemble.store import load_ensemble
from alkit.ensemble.train import EnsembleConfig, train_members
from alkit.errors import ConfigError
from alkit.evaluate.predict import predict_detections
from alkit.evaluate.test_sets import evaluation_sets, evaluation_table, model_of
from alkit.experiments.profiles import profile_parameters
from alkit.query.methods import BASELINES
from alkit.query.pool_query import Queried, QueryConfig, query_pool, scoring_from_values
from alkit.query.selection import load_selection
from alkit.sim import World, WorldConfig
from alkit.sim.experiment import (
    initial_frame_ids,
    initial_version,
    load_world,
    make_world,
    save_world,
    visible_objects,
    world_pool,
)

#: The labellers of ANNOTATE: the simulated oracle, or a labelling tool through files.
LABELLERS = ("oracle", "labelstudio", "coco")


def step_values(step: str, profile: str, names: Sequence[str], given: Mapping) -> dict[str, Any]:
    """``profile``'s values overridden by ``given``, which may only hold ``names``."""
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ConfigError(f"{step}: unknown parameter(s) {unknown}; parameters: {sorted(names)}")
    return profile_parameters(profile) | dict(given)


# 01 TRAIN -------------------------------------------------------------------------------------
TRAIN_PARAMETERS = (
    "world_seed",
    "sessions",
    "initial_stride",
    *EnsembleConfig.__dataclass_fields__,
    "progress",
)


@dataclass(frozen=True)
class Trained:
    """``ensemble``: the ``ensemble.json``; ``world``: the ``world.json``; ``frames``: how many
    labelled frames the ensemble was trained on; ``version``: their version's hash (empty for
    the world's initial segment)."""

    ensemble: Path
    world: Path
    frames: int
    version: str = ""


def train_step(
    out_dir: str | Path, version_path: str = "", profile: str = "quick", **values: Any
) -> Trained:
    """TRAIN ``n_members`` detectors on the dataset version of ``version_path`` (the
    ``version.json`` of ``append_step``: the loop's next round) or, without one, on the world's
    initial segment (every ``initial_stride``-th frame). A version brings its own world.
    Finished members are kept on a rerun."""
    v = step_values("train_step", profile, TRAIN_PARAMETERS, values)
    out = Path(out_dir)
    config = EnsembleConfig(v["n_members"], v["model"], v["train"], v["batch_size"], v["seed"])
    if version_path:
        where = storage.read_json(version_path)
        version = load_version(where["root"], resolve_version(where["root"], where["hash"]))
        if version.world is None:
            raise ConfigError(f"version {version.hash[:12]} records no world; cannot train on it")
        world, labelled, tag = World(WorldConfig.from_dict(version.world)), version, version.hash
    else:
        world = make_world(v["profile"], v["world_seed"], v["sessions"])
        labelled, tag = (world, initial_frame_ids(world, v["initial_stride"])), ""
    world_path = Path(save_world(world, str(out / "world.json")))
    trained = train_members(labelled, out, config, world=world, progress=v["progress"])
    return Trained(trained.manifest, world_path, len(trained.frames), tag)


# 02 QUERY -------------------------------------------------------------------------------------
QUERY_PARAMETERS = (*QueryConfig.__dataclass_fields__, "accelerator", "devices",
                    "score_batch_size", "score_workers", "progress")  # fmt: skip


def query_step(
    out_dir: str | Path,
    world_path: str,
    ensemble_path: str,
    baselines: Sequence[str] = BASELINES,
    profile: str = "quick",
    **values: Any,
) -> Queried:
    """QUERY: score the world's pool with the ensemble (resumable shards in
    ``<out_dir>/scores``), pick ``budget`` frames with AL and each of ``baselines``, save
    each as ``<out_dir>/selections/<METHOD>.json``. Scoring runs on ``accelerator`` /
    ``devices`` in the members' training precision."""
    v = step_values("query_step", profile, QUERY_PARAMETERS, values)
    world, ensemble = load_world(world_path), load_ensemble(ensemble_path)
    return query_pool(ensemble, world_pool(world), out_dir, ("AL", *baselines),
                      QueryConfig.from_values(v), scoring_from_values(v),
                      visible=visible_objects(world), progress=v["progress"])  # fmt: skip


# 03 ANNOTATE ----------------------------------------------------------------------------------
ANNOTATE_PARAMETERS = ("labeller", "seconds_per_frame", "seconds_per_box")


@dataclass(frozen=True)
class Annotated:
    """``batch``: the labelled batch's ``batch.json``; ``summary``: ``batch_summary``."""

    batch: Path
    summary: pd.DataFrame


def labeller_for(
    name: str, world: World, out_dir: str | Path, cost: CostModel, labels_path: str = "",
    ensemble_path: str = "", frame_ids: Sequence[int] = (),
) -> Labeler:  # fmt: skip
    """``oracle``: the world's ground truth; ``labelstudio`` / ``coco``: export the frames to
    ``<out_dir>/export`` for the tool (with the ensemble's mean detections as pre-annotations
    when ``ensemble_path`` is given) and import the finished labels from ``labels_path``
    (default ``<out_dir>/export/labelled.json``)."""
    if name not in LABELLERS:
        raise ConfigError(f"labeller must be one of {list(LABELLERS)}, got {name!r}")
    if name == "oracle":
        return OracleLabeler(world, cost)
    detections = None
    if ensemble_path and frame_ids:
        detections = predict_detections(
            load_ensemble(ensemble_path), VirtualFrames(world, frame_ids)
        )
    return ToolLabeler(world, str(Path(out_dir) / "export"), detections,
                       labels_url=labels_path or None, cost=cost)  # fmt: skip


def annotate_step(
    out_dir: str | Path,
    world_path: str,
    selection_path: str,
    labels_path: str = "",
    ensemble_path: str = "",
    profile: str = "quick",
    **values: Any,
) -> Annotated:
    """ANNOTATE the frames of a selection with ``labeller`` (``labeller_for``), charged by
    ``CostModel(seconds_per_frame, seconds_per_box)``. With a labelling tool the first call
    exports the frames and raises ``LabelsPending`` saying what to do; the call after the
    labels are in imports and validates them."""
    v = step_values("annotate_step", profile, ANNOTATE_PARAMETERS, values)
    out = Path(out_dir)
    selection = load_selection(selection_path)
    ids = list(selection.frame_ids)
    cost = CostModel(v["seconds_per_frame"], v["seconds_per_box"])
    labeller = labeller_for(v["labeller"], load_world(world_path), out, cost, labels_path,
                            ensemble_path, ids)  # fmt: skip
    batch = labeller.label(ids)
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
    profile: str = "quick",
    **values: Any,
) -> Appended:
    """APPEND the labelled batch to ``parent_version`` (a hash or prefix in ``versions_root``;
    empty: the world's initial set, every ``initial_stride``-th frame) as a new version with
    lineage; ``versions_root`` empty means ``<out_dir>/versions``. Writes
    ``<out_dir>/version.json`` = {root, hash}, what ``train_step(version_path=...)`` reads."""
    v = step_values("append_step", profile, ("initial_stride",), values)
    out = Path(out_dir)
    root = versions_root or str(out / "versions")
    if parent_version:
        parent = load_version(root, resolve_version(root, parent_version))
    else:
        parent = initial_version(load_world(world_path), v["initial_stride"])
    selection = load_selection(selection_path)
    version = append_batch(root, parent, load_batch(batch_path), selection,
                           params={"method": selection.method.upper()})  # fmt: skip
    storage.atomic_write_json(str(out / "version.json"), {"root": root, "hash": version.hash})
    return Appended(root, version.hash, lineage(root, version.hash))


# 05 EVALUATE ----------------------------------------------------------------------------------
def evaluate_step(
    out_dir: str | Path,
    world_path: str,
    ensemble_path: str,
    member: int = -1,
    test_sets: Sequence[str] = ("global", "night_heldout"),
    profile: str = "quick",
    **values: Any,
) -> pd.DataFrame:
    """EVALUATE the ensemble (``member=-1``: mean heatmaps, as one detector) or one member on
    the named test sets (``test_stride``); writes and returns the tidy ``evaluation.csv``."""
    v = step_values("evaluate_step", profile, ("test_stride", "batch_size"), values)
    sets = evaluation_sets(load_world(world_path), test_sets, v["test_stride"])
    model = model_of(load_ensemble(ensemble_path), member)
    table = evaluation_table(model, sets, v["batch_size"])
    storage.atomic_write_text(str(Path(out_dir) / "evaluation.csv"), table.to_csv(index=False))
    return table


__all__ = [
    "LABELLERS",
    "Annotated",
    "Appended",
    "Trained",
    "annotate_step",
    "append_step",
    "evaluate_step",
    "labeller_for",
    "query_step",
    "step_values",
    "train_step",
]
