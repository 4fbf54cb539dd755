"""Several rounds of the loop, automatically: the seed's future work, as learning curves.

Round 0 trains an ensemble on the initial labelled set; its member 0 is REFERENCE, evaluated
once and shared by every method. Then, each round and for each method (AL, RANDOM, MANUAL,
METADATA), ``budget`` new frames are picked from what that method has not labelled yet, labelled
by the oracle and APPENDed to the method's own version chain (with lineage); the method's
detectors are retrained on initial + everything it labelled so far (fine-tuned from the
round-0 members, or from scratch) and its member 0 is evaluated. AL scores the filtered pool
with its own retrained ensemble, so every round queries with the model of the previous one;
the baselines only need member 0. The result is one tidy table::

    method | round | labelled_frames | new_frames | test_set | class | metric | value | n_gt |
    gain | ci_low | ci_high | version  (``alkit.experiments.tables.CURVE_COLUMNS``)

written to ``<out_dir>/curves.csv`` after every round. Not resumable within the function: the
pipeline caches the whole step.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from alkit.annotate.oracle import OracleLabeller
from alkit.ensemble.train import train_members
from alkit.errors import ConfigError
from alkit.evaluate.test_sets import evaluation_set_ids
from alkit.experiments.abtest import ABConfig, as_ab_config
from alkit.experiments.tables import CURVE_COLUMNS, write_csv_tables
from alkit.loop import Arm, FrameCache, Learner, RoundContext, acquire, evaluate, retrain_members
from alkit.loop.round import new_frames
from alkit.query.methods import SCORED_METHODS, check_methods
from alkit.sim.experiment import (
    initial_frame_ids,
    initial_version,
    make_world,
    visible_objects,
    world_pool,
)


def curve_table(rows: pd.DataFrame, initial_frames: int) -> pd.DataFrame:
    """Evaluation rows (``method, round, labelled_frames``, the test set's rows, ``version``)
    as ``CURVE_COLUMNS``: the gain over the method's round 0 on the same test set, class and
    metric; no interval (one world, nothing resampled)."""
    key = ["method", "test_set", "class", "metric"]
    zero = rows[rows["round"] == 0].set_index(key).value
    out = rows.assign(new_frames=rows.labelled_frames - initial_frames)
    out["gain"] = out.value.to_numpy() - zero.reindex(pd.MultiIndex.from_frame(out[key])).to_numpy()
    out["ci_low"] = out["ci_high"] = float("nan")
    return out[list(CURVE_COLUMNS)]


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
    w, e = c.run.world, c.run.ensemble
    world = make_world(w.world_profile, w.world_seed, dict(w.sessions))
    initial_ids = initial_frame_ids(world, w.initial_stride)
    log(f"round 0: TRAIN {e.n_members} members on {len(initial_ids)} initial frames")
    trained = train_members((world, initial_ids), out / "ensemble", e,
                            progress=progress)  # fmt: skip
    frames = FrameCache(world)
    sets = {
        n: frames.frames(evaluation_set_ids(world, n, c.run.evaluation.test_stride))
        for n in test_set_names
    }
    ctx = RoundContext(
        pool=world_pool(world), labeller=OracleLabeller(world), query=c.run.query,
        scoring=replace(c.run.scoring, precision=trained.ensemble.train_precision),
        retraining=c.run.retraining, test_sets=sets, out_dir=out,
        versions_root=str(out / "versions"), frames=frames, visible=visible_objects(world),
        eval_batch_size=e.batch_size, progress=progress,
    )  # fmt: skip
    initial = initial_version(world, w.initial_stride)
    reference = list(trained.ensemble.members)
    learners = [Learner(m, initial, trained.frames, e.train, e.batch_size) for m in reference]
    versions = {m: initial for m in methods}
    taken: dict[str, set[int]] = {m: set() for m in methods}
    members = {m: reference for m in methods}
    base = evaluate(ctx, reference[0], initial).table
    parts = [base.assign(method=m, round=0, labelled_frames=len(initial_ids)) for m in methods]
    for r in range(1, n_rounds + 1):
        for method in methods:
            done = taken[method]
            arm = Arm(method, seed=e.seed + r, name=f"{{method}}_{r:02d}", params={"round": r})
            # scores of an interrupted earlier call were made by other members
            shutil.rmtree(out / "scores" / arm.file_name, ignore_errors=True)
            acquired = acquire(ctx, members[method], arm, versions[method], taken=done)
            versions[method] = version = acquired.version
            done |= set(acquired.frame_ids)
            log(f"round {r}: {method} has labelled {len(done)} new frames")
            # a method that scores the pool (AL, AL-div, COUNT) needs its whole ensemble
            # retrained for the next round; the others only the member that is evaluated
            n_train = len(reference) if method in SCORED_METHODS and r < n_rounds else 1
            new = new_frames(ctx, version, [f for f in version.frame_ids if f in done])
            seeds = [e.seed * 1000 + 10 * r + i for i in range(n_train)]
            members[method] = retrain_members(ctx, learners[:n_train], version, new, seeds)
            table = evaluate(ctx, members[method][0], version).table
            labelled = len(initial_ids) + len(done)
            parts.append(table.assign(method=method, round=r, labelled_frames=labelled))
        curves = curve_table(pd.concat(parts, ignore_index=True), len(initial_ids))
        write_csv_tables(out, {"curves": curves})
    return curves


__all__ = [
    "CURVE_COLUMNS",
    "learning_curves",
    "round_table",
    "run_rounds",
]
