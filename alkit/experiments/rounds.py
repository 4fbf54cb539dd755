"""Several rounds of the loop, automatically: the seed's future work, as learning curves.

Round 0 trains an ensemble on the initial labelled set; its member 0 is REFERENCE, evaluated
once and shared by every method. Then, each round and for each method (AL, RANDOM, MANUAL,
METADATA), ``budget`` new frames are picked from what that method has not labelled yet, labelled
by the oracle and APPENDed to the method's own version chain (with lineage); the method's
detectors are retrained on initial + everything it labelled so far (fine-tuned from the
round-0 members, or from scratch) and its member 0 is evaluated. AL scores the filtered pool
with its own retrained ensemble, so every round queries with the model of the previous one;
the baselines only need member 0. The result is one tidy table::

    method | round | labelled_frames | class | metric | value | test_set | n_gt

written to ``<out_dir>/curves.csv`` after every round. Not resumable within the function: the
pipeline caches the whole step.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
from torch import nn
from torch.utils.data import Dataset, Subset

from alkit.annotate.oracle import OracleLabeler
from alkit.data import storage
from alkit.data.datasets import CachedFrames
from alkit.data.lineage import append_batch
from alkit.data.versions import DatasetVersion, to_frames_dataset
from alkit.detector.module import TrainConfig
from alkit.detector.network import DetectorConfig
from alkit.ensemble.datamodule import DetectionDataModule
from alkit.ensemble.retrain import retrain
from alkit.ensemble.store import load_ensemble
from alkit.ensemble.train import train_ensemble
from alkit.errors import ConfigError
from alkit.evaluate.test_sets import evaluation_sets, evaluation_table
from alkit.experiments.abtest import ABConfig
from alkit.query.methods import METHODS, pool_frames, select_frames
from alkit.query.score import read_scores, score_pool
from alkit.query.selection import SelectionManifest
from alkit.sim import World
from alkit.sim.experiment import initial_version, make_world

CURVE_COLUMNS = (
    "method",
    "round",
    "labelled_frames",
    "class",
    "metric",
    "value",
    "test_set",
    "n_gt",
)


def state_sha256(model: nn.Module) -> str:
    """sha256 of a model's weights (state dict tensors in key order): its lineage id."""
    digest = hashlib.sha256()
    for key, tensor in model.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def learning_curves(curves: pd.DataFrame, test_set: str) -> pd.DataFrame:
    """The rows of one test set (what ``alkit_widgets.LearningCurve`` takes)."""
    if test_set not in set(curves.test_set):
        raise ConfigError(
            f"no test set {test_set!r} in the curves; have {sorted(set(curves.test_set))}"
        )
    return curves[curves.test_set == test_set].reset_index(drop=True)


def round_table(
    curves: pd.DataFrame,
    test_set: str,
    metric: str = "wMAP",
    classes: Sequence[str] = ("person", "bicycle"),
) -> pd.DataFrame:
    """Rows = (method, round, labelled frames), columns = ``classes``: ``metric`` on one test
    set, the numbers behind the learning curves."""
    part = learning_curves(curves, test_set)
    part = part[(part.metric == metric) & part["class"].isin(list(classes))]
    return part.pivot_table(
        index=["method", "round", "labelled_frames"],
        columns="class",
        values="value",
        sort=False,
        dropna=False,
    ).reindex(columns=list(classes))


def run_rounds(
    config: ABConfig,
    out_dir: str | Path,
    n_rounds: int = 3,
    methods: Sequence[str] = ("AL", "RANDOM", "MANUAL"),
    test_set_names: Sequence[str] = ("night_heldout", "global"),
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Run ``n_rounds`` rounds of ``config.budget`` frames per method (see the module docstring).

    ``config`` supplies the world, the initial set, the ensemble, the selection settings, the
    retraining (``retrain``, ``retrain_steps``, ``retrain_lr``, ``new_fraction``) and the test
    sets' ``test_stride`` (``alkit.evaluate.test_sets``); its ``n_splits`` and ``test_fraction``
    are not used. Returns the tidy curves table.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ConfigError(f"methods must be a non-empty subset of {list(METHODS)}, got {methods}")
    if n_rounds < 1:
        raise ConfigError(f"n_rounds must be >= 1, got {n_rounds}")
    c, out = config, Path(out_dir)
    world = make_world(c.profile, c.world_seed, c.sessions)
    initial_ids = list(world.segment_frame_ids("initial"))[:: c.initial_stride]
    data = DetectionDataModule((world, initial_ids), c.batch_size, seed=c.seed, cache=True)
    log(f"round 0: TRAIN {c.n_members} members on {len(initial_ids)} initial frames")
    manifest = train_ensemble(
        c.n_members,
        data,
        c.model or None,
        c.train or None,
        out / "ensemble",
        base_seed=c.seed,
        enable_progress_bar=progress,
    )
    reference = list(load_ensemble(manifest).members)
    data.setup("fit")  # a resumed ensemble trained nothing, so build the data here
    old = data.dataset
    sets = evaluation_sets(world, test_set_names, c.test_stride)
    pool, watched, night = pool_frames(world, c.pool_filter, c.pool_stride)
    oracle = OracleLabeler(world)
    versions = {m: initial_version(world, c.initial_stride) for m in methods}
    taken: dict[str, set[int]] = {m: set() for m in methods}
    members = {m: reference for m in methods}
    base = evaluation_table(reference[0], sets, c.batch_size)
    parts = [base.assign(method=m, round=0, labelled_frames=len(initial_ids)) for m in methods]
    for r in range(1, n_rounds + 1):
        for method in methods:
            done = taken[method]
            candidates = night[~night.frame_id.isin(done)]
            scores, used = None, ()
            if method == "AL":
                used = [state_sha256(m) for m in members[method]]
                url = out / "scores" / f"round_{r:02d}"
                shutil.rmtree(url, ignore_errors=True)  # scores of an interrupted earlier call
                score_pool(
                    members[method],
                    world,
                    candidates.frame_id.tolist(),
                    str(url),
                    member_hashes=used,
                    progress=progress,
                )
                scores = read_scores(str(url)).merge(candidates, on="frame_id")
            picks = select_frames(
                world,
                (method,),
                c.budget,
                c.classes_of_interest,
                c.seed + r,
                scores,
                watched[~watched.frame_id.isin(done)],
                pool[~pool.frame_id.isin(done)],
                c.al_session_cap,
                c.manual_filters,
                c.manual_subsequence,
                c.metadata_filters,
            )[method]
            sel = SelectionManifest.from_table(
                method.lower(), picks, {"round": r, "budget": c.budget}, used
            )
            sel.save(str(out / "selections" / f"{method}_{r:02d}.json"))
            versions[method] = append_batch(
                str(out / "versions"),
                versions[method],
                oracle.label(list(sel.frame_ids)),
                sel,
                params={"method": method, "round": r},
            )
            done |= set(sel.frame_ids)
            log(f"round {r}: {method} has labelled {len(done)} new frames")
            n_train = len(reference) if method == "AL" and r < n_rounds else 1
            members[method] = _retrain(
                c, reference[:n_train], old, _new_frames(versions[method], world, done), r, progress
            )
            table = evaluation_table(members[method][0], sets, c.batch_size)
            labelled = len(initial_ids) + len(done)
            parts.append(table.assign(method=method, round=r, labelled_frames=labelled))
        curves = pd.concat(parts, ignore_index=True)[list(CURVE_COLUMNS)]
        storage.atomic_write_text(str(out / "curves.csv"), curves.to_csv(index=False))
    return curves


def _new_frames(version: DatasetVersion, world: World, frame_ids: set[int]) -> CachedFrames:
    """The frames of ``version`` among ``frame_ids``, with the version's labels, in memory."""
    full = to_frames_dataset(version, world)
    return CachedFrames(Subset(full, [i for i, f in enumerate(full.frame_ids) if f in frame_ids]))


def _retrain(
    c: ABConfig, reference: Sequence[nn.Module], old: Dataset, new: Dataset, r: int, progress: bool
) -> list[nn.Module]:
    """Retrain one detector per ``reference`` member on ``old`` + ``new`` (see ``retrain``)."""
    config = TrainConfig.from_dict(c.train) if c.train else TrainConfig()
    config = TrainConfig.from_dict(config.to_dict() | {"lr": c.retrain_lr, "warmup_steps": 10})
    arch = DetectorConfig.from_dict(c.model) if c.model else DetectorConfig()
    finetune = c.retrain == "finetune"
    return [
        retrain(
            old,
            new,
            config,
            c.retrain_steps,
            seed=c.seed * 1000 + 10 * r + i,
            batch_size=c.batch_size,
            init=member if finetune else None,
            model_config=None if finetune else arch,
            new_fraction=c.new_fraction if finetune else None,
            enable_progress_bar=progress,
        )
        for i, member in enumerate(reference)
    ]


__all__ = [
    "CURVE_COLUMNS",
    "METHODS",
    "learning_curves",
    "round_table",
    "run_rounds",
    "state_sha256",
]
