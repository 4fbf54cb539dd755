"""The loop's steps as functions of plain values and paths: what notebooks 01-05 call.

Each step reads its inputs from paths, writes its outputs under ``out_dir`` (atomically) and
returns a small frozen result with the paths and tables a notebook shows::

    01 train_step     -> <out_dir>/world.json, <out_dir>/ensemble.json (+ member checkpoints)
    02 query_step     -> <out_dir>/scores/, <out_dir>/selections/<METHOD>.json (AL + baselines)
    03 annotate_step  -> <out_dir>/batch.json, <out_dir>/summary.csv  (alkit.workflow.label_steps)
    04 append_step    -> a new version in <versions_root>, <out_dir>/version.json  (same)
    05 evaluate_step  -> <out_dir>/evaluation.csv  (alkit.workflow.label_steps)

Between steps only these paths pass (``alkit.workflow.pipeline`` wires them); the world travels as
``world.json`` (its ``WorldConfig``), labelled batches as ``batch.json`` (``save_batch``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from alkit.data import storage
from alkit.data.lineage import resolve_version
from alkit.data.versions import load_version
from alkit.ensemble.datamodule import DetectionDataModule
from alkit.ensemble.store import load_ensemble
from alkit.ensemble.train import train_ensemble
from alkit.errors import ConfigError
from alkit.query.methods import BASELINES, pool_frames, select_frames
from alkit.query.score import read_scores, score_pool
from alkit.query.selection import SelectionManifest
from alkit.sim import World, WorldConfig
from alkit.sim.experiment import initial_version, load_world, make_world, save_world


# 01 TRAIN -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trained:
    """``ensemble``: the ``ensemble.json``; ``world``: the ``world.json``; ``frames``: how many
    labelled frames the ensemble was trained on."""

    ensemble: Path
    world: Path
    frames: int


def train_step(
    out_dir: str | Path,
    profile: str = "quick",
    world_seed: int = 0,
    sessions: dict | None = None,
    initial_stride: int = 2,
    version_root: str = "",
    version_hash: str = "",
    n_members: int = 4,
    model: dict | None = None,
    train: dict | None = None,
    batch_size: int = 16,
    seed: int = 0,
    progress: bool = True,
) -> Trained:
    """TRAIN ``n_members`` detectors on a dataset version (``version_root`` + ``version_hash``,
    a hash or a unique prefix) or, without one, on the world's initial segment (every
    ``initial_stride``-th frame). A version brings its own world; otherwise the world is
    ``make_world(profile, world_seed, sessions)``. Finished members are kept on a rerun."""
    out = Path(out_dir)
    if version_hash:
        version = load_version(version_root, resolve_version(version_root, version_hash))
        if version.world is None:
            raise ConfigError(f"version {version.hash[:12]} records no world; cannot train on it")
        world = World(WorldConfig.from_dict(version.world))
        data = DetectionDataModule(version, batch_size, seed=seed, world=world, cache=True)
        frames = len(version.frame_ids)
    else:
        world = make_world(profile, world_seed, sessions)
        ids = list(world.segment_frame_ids("initial"))[::initial_stride]
        data = DetectionDataModule((world, ids), batch_size, seed=seed, cache=True)
        frames = len(ids)
    world_path = Path(save_world(world, str(out / "world.json")))
    manifest = train_ensemble(
        n_members,
        data,
        model or None,
        train or None,
        out,
        base_seed=seed,
        enable_progress_bar=progress,
    )
    return Trained(Path(manifest), world_path, frames)


def member_table(ensemble_path: str | Path) -> pd.DataFrame:
    """One row per member of an ``ensemble.json``: seed, checkpoint hash, steps, seconds and
    the last logged losses."""
    manifest = storage.read_json(str(ensemble_path))
    rows = []
    for m in manifest["members"]:
        metrics = m.get("metrics") or {}
        rows.append(
            {
                "member": m["index"],
                "seed": m["seed"],
                "sha256": m["sha256"][:12],
                "steps": int(metrics.get("global_step", 0)),
                "seconds": round(metrics.get("train_seconds", float("nan")), 1),
                **{k: v for k, v in metrics.items() if k.startswith("train/")},
            }
        )
    return pd.DataFrame(rows).set_index("member")


def training_losses(ensemble_path: str | Path) -> pd.DataFrame:
    """Logged training losses of every member (``<ensemble dir>/logs/member_XX/metrics.csv``):
    ``member | step | loss``; empty when nothing was logged yet."""
    parts = []
    for path in sorted((Path(ensemble_path).parent / "logs").glob("member_*/metrics.csv")):
        table = pd.read_csv(path)
        if "train/loss" in table:
            rows = table.dropna(subset=["train/loss"])
            member = int(path.parent.name.removeprefix("member_"))
            parts.append(
                pd.DataFrame({"member": member, "step": rows.step, "loss": rows["train/loss"]})
            )
    if not parts:
        return pd.DataFrame({"member": [], "step": [], "loss": []})
    return pd.concat(parts, ignore_index=True)


def loss_figure(losses: pd.DataFrame) -> Figure:
    """Training loss against step, one line per member."""
    fig = Figure(figsize=(6.0, 3.0))
    ax = fig.subplots()
    for member, rows in losses.groupby("member"):
        ax.plot(rows.step, rows.loss, label=f"member {member}")
    if losses.empty:
        ax.text(0.5, 0.5, "no losses logged (too few steps)", ha="center", transform=ax.transAxes)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    if len(losses):
        ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


# 02 QUERY -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Queried:
    """``selection``: the AL selection manifest; ``selections``: every method's manifest;
    ``picks``: every method's table (``method`` column); ``scores``: the scored pool, one row
    per frame with the per-class scores (``alkit.query.score.score_columns``) and the metadata."""

    selection: Path
    selections: dict[str, Path]
    picks: pd.DataFrame
    scores: pd.DataFrame

    @property
    def frame_ids(self) -> list[int]:
        """The AL picks' frame ids, in pick order."""
        return self.picks.frame_id[self.picks.method == "AL"].tolist()


def query_step(
    out_dir: str | Path,
    world_path: str,
    ensemble_path: str,
    budget: int = 100,
    classes_of_interest: Sequence[str] = ("person", "bicycle"),
    pool_filter: Mapping | None = None,
    pool_stride: int = 1,
    al_session_cap: int | None = None,
    baselines: Sequence[str] = BASELINES,
    manual_filters: Mapping | None = None,
    manual_subsequence: int = 20,
    metadata_filters: Mapping | None = None,
    seed: int = 0,
    batch_size: int = 32,
    progress: bool = True,
) -> Queried:
    """QUERY: score the pool frames passing ``pool_filter`` (every ``pool_stride``-th) with the
    ensemble (resumable shards in ``<out_dir>/scores``), pick ``budget`` frames with AL and
    each of ``baselines``, save each as ``<out_dir>/selections/<METHOD>.json``."""
    out = Path(out_dir)
    world, ensemble = load_world(world_path), load_ensemble(ensemble_path)
    hashes = [m["sha256"] for m in ensemble.manifest["members"]]
    pool, watched, candidates = pool_frames(world, pool_filter, pool_stride)
    score_pool(
        ensemble,
        world,
        candidates.frame_id.tolist(),
        str(out / "scores"),
        member_hashes=hashes,
        batch_size=batch_size,
        progress=progress,
    )
    scores = read_scores(str(out / "scores")).merge(candidates, on="frame_id")
    picks = select_frames(
        world,
        ("AL", *baselines),
        budget,
        classes_of_interest,
        seed,
        scores,
        watched,
        pool,
        al_session_cap,
        manual_filters,
        manual_subsequence,
        metadata_filters,
    )
    paths = {}
    for method, table in picks.items():
        params = {"budget": budget, "classes": list(classes_of_interest), "seed": seed}
        sel = SelectionManifest.from_table(
            method.lower(), table, params, hashes if method == "AL" else ()
        )
        paths[method] = out / "selections" / f"{method}.json"
        sel.save(str(paths[method]))
    tables = [t.assign(method=m) for m, t in picks.items()]
    return Queried(paths["AL"], paths, pd.concat(tables, ignore_index=True), scores)


__all__ = [
    "Queried",
    "Trained",
    "initial_version",
    "load_world",
    "loss_figure",
    "make_world",
    "member_table",
    "query_step",
    "save_world",
    "train_step",
    "training_losses",
]
