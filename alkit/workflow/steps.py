"""The loop's steps as functions of paths and plain values: what notebooks 01-05 call.

Each step reads its inputs from paths, calls the loop's own functions (the same the A/B test
and the rounds call), writes its outputs under ``out_dir`` (atomically) and returns a small
frozen result with the paths and tables a notebook shows::

    01 train_step     -> data.json, ensemble.json (+ member checkpoints)    train_members
    02 query_step     -> scores/, selections/<METHOD>.json (AL + baselines) query_pool
    03 annotate_step  -> batch.json, summary.csv (+ export/ for a tool)     a labeller
    04 append_step    -> a new version in the versions store, version.json  append_batch
    05 evaluate_step  -> evaluation.csv                                     evaluation_table

Every other value comes from a profile (``alkit.config.profiles``; ``quick`` by default),
overridden by keyword: ``train_step(out, profile="tiny", n_members=2)``. Called with only a
profile, a step runs what its notebook runs. An unknown keyword raises ``ConfigError`` naming
it. Between steps only paths pass (``alkit.workflow.pipeline`` wires them); the world (or own
data) travels as ``data.json`` (``alkit.workflow.run_data``), labelled batches as
``batch.json``, versions as ``version.json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from alkit.annotate.batch_io import load_batch, save_batch
from alkit.annotate.labellers import LABELLERS as REGISTERED
from alkit.annotate.labellers import LabellerRequest, make_labeller
from alkit.annotate.summary import batch_summary
from alkit.config.profiles import profile_parameters
from alkit.config.tree import FLAT, RunConfig
from alkit.data import storage
from alkit.data.datasets import VirtualFrames
from alkit.data.labels import CostModel, Labeller
from alkit.data.lineage import append_batch, lineage, resolve_version
from alkit.data.versions import load_version
from alkit.ensemble.store import load_ensemble
from alkit.ensemble.train import EnsembleConfig, train_members
from alkit.errors import ConfigError
from alkit.evaluate.predict import predict_detections
from alkit.evaluate.test_sets import COLUMNS, evaluation_table, model_of
from alkit.query.methods import BASELINES
from alkit.query.pool_query import Queried, query_pool
from alkit.query.selection import load_selection
from alkit.sim.experiment import initial_frame_ids, make_world
from alkit.workflow.run_data import CocoData, RunData, WorldData, check_classes_of_interest

#: The labellers of ANNOTATE (``alkit.annotate.labellers``): the simulated oracle, or a
#: labelling tool through files.
LABELLERS = tuple(REGISTERED)


def say(line: str) -> None:
    """A progress line for the user (a notebook's output, the CLI's log)."""
    print(line, flush=True)


def step_values(step: str, profile: str, names: Sequence[str], given: Mapping) -> dict[str, Any]:
    """``profile``'s values overridden by ``given``, which may only hold ``names``."""
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ConfigError(f"{step}: unknown parameter(s) {unknown}; parameters: {sorted(names)}")
    own = bool(given.get("labelled") or given.get("pool"))
    return profile_parameters(profile, own_data=own) | dict(given)


def step_config(values: Mapping[str, Any]) -> RunConfig:
    """The configuration tree of a step's plain values (those that are the tree's)."""
    return RunConfig.from_values({k: v for k, v in values.items() if k in FLAT})


# 01 TRAIN -------------------------------------------------------------------------------------
#: own labelled data (see ``alkit.workflow.run_data``); ``labelled`` empty: the world
OWN_DATA_PARAMETERS = ("labelled", "images_root", "classes", "category_map", "input_size")
TRAIN_PARAMETERS = (
    "world_profile",
    "world_seed",
    "sessions",
    "initial_stride",
    *OWN_DATA_PARAMETERS,
    *EnsembleConfig.__dataclass_fields__,
    "progress",
)


@dataclass(frozen=True)
class Trained:
    """``ensemble``: the ``ensemble.json``; ``data``: the run's ``data.json`` (the world or
    own data, ``alkit.workflow.run_data``); ``frames``: how many labelled frames the ensemble
    was trained on; ``version``: their version's hash (empty for the world's initial set)."""

    ensemble: Path
    data: Path
    frames: int
    version: str = ""


def _version_at(version_path: str):
    where = storage.read_json(version_path)
    version = load_version(where["root"], resolve_version(where["root"], where["hash"]))
    trained_on = {"root": where["root"], "hash": version.hash}
    if where.get("data"):
        return version, replace(RunData.load(where["data"]), version=trained_on)
    if version.world is None:
        raise ConfigError(
            f"{version_path}: version {version.hash[:12]} records neither a world nor the "
            "run's data.json; cannot train on it"
        )
    return version, WorldData(world=version.world, classes=version.classes, version=trained_on)


def train_step(
    out_dir: str | Path, version_path: str = "", profile: str = "quick", **values: Any
) -> Trained:
    """TRAIN ``n_members`` detectors on the dataset version of ``version_path`` (the
    ``version.json`` of ``append_step``: the loop's next round); without one, on the own
    COCO set ``labelled`` (its ``classes``, images letterboxed into ``input_size``) or, with
    neither, on the world's initial segment (every ``initial_stride``-th frame). Writes
    ``<out_dir>/data.json`` for the later steps. Finished members are kept on a rerun."""
    v = step_values("train_step", profile, TRAIN_PARAMETERS, values)
    out = Path(out_dir)
    run = step_config(v)
    config, w = run.ensemble, run.world
    world = None
    if version_path:
        labelled, data = _version_at(version_path)
        tag = labelled.hash
    elif v["labelled"]:
        data = CocoData.of_coco(v["labelled"], v["images_root"], v["classes"],
                               v["category_map"], v["input_size"])  # fmt: skip
        labelled = data.initial_version()
        tag = labelled.hash
    else:
        world = make_world(w.world_profile, w.world_seed, dict(w.sessions))
        data = WorldData.of_world(world)
        labelled, tag = (world, initial_frame_ids(world, w.initial_stride)), ""
    if world is None and not data.own:
        world = data.sim
    data_path = Path(data.save(str(out / "data.json")))
    trained = train_members(labelled, out, config, world=world, progress=v["progress"],
                            input_size=data.input_size, classes=data.classes)  # fmt: skip
    return Trained(trained.ensemble_json, data_path, len(trained.frames), tag)


# 02 QUERY -------------------------------------------------------------------------------------
#: the pool of own data (``alkit.data.sources.open_pool``); empty: the world's pool segment
POOL_PARAMETERS = ("pool", "fps")
QUERY_PARAMETERS = (*(n for n, paths in FLAT.items() if paths[-1][0] == "query"),
                    *POOL_PARAMETERS, "accelerator",
                    "devices", "score_batch_size", "score_workers", "progress")  # fmt: skip


def query_step(
    out_dir: str | Path,
    data_path: str,
    ensemble_path: str,
    baselines: Sequence[str] = BASELINES,
    profile: str = "quick",
    **values: Any,
) -> Queried:
    """QUERY: score the pool (the world's, or ``pool``) with the ensemble (resumable shards
    in ``<out_dir>/scores``), pick ``budget`` frames with AL and each of ``baselines``, save
    each as ``<out_dir>/selections/<METHOD>.json``. Frames of an own pool that the labelled
    set already holds are left out (and counted). Scoring runs on ``accelerator`` /
    ``devices`` in the members' training precision."""
    v = step_values("query_step", profile, QUERY_PARAMETERS, values)
    data, ensemble = RunData.load(data_path), load_ensemble(ensemble_path)
    check_classes_of_interest(v["classes_of_interest"], ensemble.classes)
    pool, taken = data.pool(v["pool"], v["fps"]), []
    if data.own:
        taken = pool.already_labelled(data.labelled_version())
        say(f"pool: {len(pool)} frames; {len(taken)} already in the labelled set, left out")
        if "MANUAL" in baselines:
            say("MANUAL left out: own data has no simulated curator (it reads ground truth)")
            baselines = [b for b in baselines if b != "MANUAL"]
    run = step_config(v)
    return query_pool(ensemble, pool, out_dir, ("AL", *baselines), run.query, run.scoring,
                      taken=taken,
                      visible=data.visible(), progress=v["progress"])  # fmt: skip


# 03 ANNOTATE ----------------------------------------------------------------------------------
ANNOTATE_PARAMETERS = ("labeller", "seconds_per_frame", "seconds_per_box", "export_dir",
                       "task_image_url", "min_score", *POOL_PARAMETERS)  # fmt: skip


@dataclass(frozen=True)
class Annotated:
    """``batch``: the labelled batch's ``batch.json``; ``summary``: ``batch_summary``."""

    batch: Path
    summary: pd.DataFrame


def labeller_for(
    name: str, data: RunData, source: Any, export_dir: str | Path, cost: CostModel,
    labels: str = "", ensemble_path: str = "", selection: Any = None, task_image_url: str = "",
    min_score: float = 0.3,
) -> Labeller:  # fmt: skip
    """The labeller registered as ``name`` (``alkit.annotate.labellers``): ``oracle``, the
    world's ground truth; ``labelstudio`` / ``coco``: export the frames of ``selection`` from
    ``source`` to ``export_dir`` for the tool (with the ensemble's mean detections as
    pre-annotations when ``ensemble_path`` is given, and each frame's acquisition score) and
    import the finished labels from ``labels`` (default ``<export_dir>/labelled.json``)."""
    ids = list(selection.frame_ids) if selection is not None else []

    def detections():
        return predict_detections(load_ensemble(ensemble_path), VirtualFrames(source, ids))

    request = LabellerRequest(
        source, cost, world=None if data.own else data.sim, export_dir=str(export_dir),
        labels=labels, detections=detections if ensemble_path else None, selection=selection,
        task_image_url=task_image_url, min_score=min_score, classes=tuple(data.classes),
    )  # fmt: skip
    return make_labeller(name, request)


def annotate_step(
    out_dir: str | Path,
    data_path: str,
    selection_path: str,
    labels: str = "",
    ensemble_path: str = "",
    profile: str = "quick",
    **values: Any,
) -> Annotated:
    """ANNOTATE the frames of a selection with ``labeller`` (``labeller_for``), charged by
    ``CostModel(seconds_per_frame, seconds_per_box)``. With a labelling tool the first call
    exports the frames to ``export_dir`` (default ``<out_dir>/export``) and raises
    ``LabelsPending`` saying what to do; the call with ``labels`` (the tool's export)
    imports and validates them."""
    v = step_values("annotate_step", profile, ANNOTATE_PARAMETERS, values)
    out = Path(out_dir)
    data, selection = RunData.load(data_path), load_selection(selection_path)
    ids = list(selection.frame_ids)
    cost = step_config(v).labelling.cost()
    source = data.sim if not data.own else data.pool(v["pool"], v["fps"]).source
    labeller = labeller_for(v["labeller"], data, source, v["export_dir"] or out / "export",
                            cost, labels, ensemble_path, selection, v["task_image_url"],
                            v["min_score"])  # fmt: skip
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
    data_path: str,
    batch_path: str,
    selection_path: str,
    versions_root: str = "",
    parent_version: str = "",
    profile: str = "quick",
    **values: Any,
) -> Appended:
    """APPEND the labelled batch to ``parent_version`` (a hash or prefix in ``versions_root``;
    empty: the run's initial labelled set) as a new version with lineage; ``versions_root``
    empty means ``<out_dir>/versions``. Writes ``<out_dir>/version.json`` = {root, hash,
    data}, what ``train_step(version_path=...)`` reads. Appending the same labels twice adds
    nothing."""
    v = step_values("append_step", profile, ("initial_stride",), values)
    out = Path(out_dir)
    root = versions_root or str(out / "versions")
    data = RunData.load(data_path)
    if parent_version:
        parent = load_version(root, resolve_version(root, parent_version))
    else:
        parent = data.initial_version(v["initial_stride"])
    selection = load_selection(selection_path)
    version = append_batch(root, parent, load_batch(batch_path), selection,
                           params={"method": selection.method.upper()})  # fmt: skip
    where = {"root": root, "hash": version.hash, "data": str(Path(data_path).resolve())}
    storage.atomic_write_json(str(out / "version.json"), where)
    return Appended(root, version.hash, lineage(root, version.hash))


# 05 EVALUATE ----------------------------------------------------------------------------------
def evaluate_step(
    out_dir: str | Path,
    data_path: str,
    ensemble_path: str,
    member: int = -1,
    test_sets: Sequence[str] = ("global", "night_heldout"),
    profile: str = "quick",
    **values: Any,
) -> pd.DataFrame:
    """EVALUATE the ensemble (``member=-1``: mean heatmaps, as one detector) or one member on
    the world's named test sets (``test_stride``) or, for own data, on the COCO file
    ``test`` (none given: nothing to evaluate, an empty table); writes and returns the tidy
    ``evaluation.csv``."""
    v = step_values("evaluate_step", profile, ("test_stride", "batch_size", "test"), values)
    data = RunData.load(data_path)
    sets = data.test_sets(test_sets, v["test_stride"], v["test"])
    if sets:
        ensemble = load_ensemble(ensemble_path)
        table = evaluation_table(model_of(ensemble, member), sets, v["batch_size"],
                                 ensemble.classes)  # fmt: skip
    else:
        say("no test set: give own data's labelled test set as -p test=COCO_URL")
        table = pd.DataFrame(columns=list(COLUMNS))
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
