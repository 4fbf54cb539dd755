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

import shutil
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from alkit.annotate.oracle import OracleLabeler
from alkit.data import storage
from alkit.data.lineage import append_batch
from alkit.data.versions import cached_frames
from alkit.ensemble.retrain import retrain
from alkit.ensemble.train import train_members
from alkit.errors import ConfigError
from alkit.evaluate.test_sets import evaluation_sets, evaluation_table
from alkit.experiments.abtest import ABConfig, as_ab_config
from alkit.query.methods import SCORED_METHODS, check_methods
from alkit.query.pool_query import query_pool
from alkit.sim.experiment import (
    initial_frame_ids,
    initial_version,
    make_world,
    visible_objects,
    world_pool,
)

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
    sets' ``test_stride`` (``alkit.evaluate.test_sets``); its ``n_splits`` and
    ``test_fraction`` are not used. Returns the tidy curves table.
    """
    methods = check_methods(methods)
    if n_rounds < 1:
        raise ConfigError(f"n_rounds must be >= 1, got {n_rounds}")
    c, out = as_ab_config(config), Path(out_dir)
    world = make_world(c.profile, c.world_seed, c.sessions)
    initial_ids = initial_frame_ids(world, c.initial_stride)
    log(f"round 0: TRAIN {c.n_members} members on {len(initial_ids)} initial frames")
    trained = train_members((world, initial_ids), out / "ensemble", c.ensemble(),
                            progress=progress)  # fmt: skip
    reference = list(trained.ensemble.members)
    scoring = replace(c.scoring(), precision=trained.ensemble.train_precision)
    sets = evaluation_sets(world, test_set_names, c.test_stride)
    pool, visible = world_pool(world), visible_objects(world)
    oracle = OracleLabeler(world)
    versions = {m: initial_version(world, c.initial_stride) for m in methods}
    taken: dict[str, set[int]] = {m: set() for m in methods}
    members = {m: reference for m in methods}
    base = evaluation_table(reference[0], sets, c.batch_size)
    parts = [base.assign(method=m, round=0, labelled_frames=len(initial_ids)) for m in methods]
    for r in range(1, n_rounds + 1):
        for method in methods:
            done = taken[method]
            name = f"{{method}}_{r:02d}"
            # scores of an interrupted earlier call were made by other members
            shutil.rmtree(out / "scores" / name.format(method=method), ignore_errors=True)
            queried = query_pool(members[method], pool, out, (method,), c.query(), scoring,
                                 taken=done, visible=visible, seed=c.seed + r, name=name,
                                 params={"round": r}, progress=progress)  # fmt: skip
            sel = queried.selections[method]
            versions[method] = append_batch(
                str(out / "versions"),
                versions[method],
                oracle.label(list(sel.frame_ids)),
                sel,
                params={"method": method, "round": r},
            )
            done |= set(sel.frame_ids)
            log(f"round {r}: {method} has labelled {len(done)} new frames")
            # a method that scores the pool (AL, AL-div, COUNT) needs its whole ensemble
            # retrained for the next round; the others only the member that is evaluated
            n_train = len(reference) if method in SCORED_METHODS and r < n_rounds else 1
            new = cached_frames(versions[method], world, done)
            members[method] = [
                retrain(
                    member,
                    trained.frames,
                    new,
                    c.train,
                    c.retraining(),
                    seed=c.seed * 1000 + 10 * r + i,
                    batch_size=c.batch_size,
                    progress=progress,
                )  # fmt: skip
                for i, member in enumerate(reference[:n_train])
            ]
            table = evaluation_table(members[method][0], sets, c.batch_size)
            labelled = len(initial_ids) + len(done)
            parts.append(table.assign(method=method, round=r, labelled_frames=labelled))
        curves = pd.concat(parts, ignore_index=True)[list(CURVE_COLUMNS)]
        storage.atomic_write_text(str(out / "curves.csv"), curves.to_csv(index=False))
    return curves


__all__ = [
    "CURVE_COLUMNS",
    "learning_curves",
    "round_table",
    "run_rounds",
]
