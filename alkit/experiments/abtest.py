"""The seed's A/B test: one round of the loop with several query methods, then its evaluation.

1. TRAIN an ensemble on the initial (mostly day) labelled set; its member 0 is REFERENCE
   (fine-tuning: member 0 fine-tuned for the same steps on the initial set alone).
2. QUERY the night pool: score it with the ensemble, select the budget with AL (mutual
   information, round robin over the classes of interest), MANUAL (simulated curation),
   RANDOM (whole pool) and METADATA (night tag, then random).
3. ANNOTATE each selection with the oracle; APPEND each as a dataset version (lineage kept).
4. For each of ``n_splits`` seeded 90/10 splits of every selection (``split_by``: whole
   driving sessions held out, or the seed's random frames): retrain on initial + the
   90% part (fine-tune from REFERENCE, or from scratch), evaluate every model and REFERENCE on
   the global test set, the held-out night test set, the union of the AL and MANUAL 10% parts
   (the seed's night test) and the MANUAL 10% part.
5. Tables: per class of interest, wMAP, mAP large / medium, relative improvement over
   REFERENCE (mean and spread over splits), AL gain / MANUAL gain, objects per class and
   sessions per selection, labelling cost; figures like the seed's.

Steps 1-3 are the loop's own functions (``train_members``, ``query_pool``, the oracle and
``append_batch``), the same the notebook steps and the rounds call. Each function below takes
what the earlier ones returned, so nothing depends on call order; each writes into the run
folder and skips what is there, so an interrupted run resumes. All randomness comes from the
config's seeds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import pandas as pd
from torch.utils.data import Subset

from alkit.annotate.oracle import OracleLabeller
from alkit.annotate.summary import batch_summary
from alkit.config.profiles import profile_values
from alkit.config.tree import FLAT, ABSettings, RunConfig
from alkit.data import storage
from alkit.data.classes import CLASSES
from alkit.data.labels import LabelledBatch
from alkit.data.pool import Pool
from alkit.data.versions import DatasetVersion
from alkit.ensemble.train import TrainedEnsemble, train_members
from alkit.errors import ConfigError
from alkit.evaluate.test_sets import evaluation_set_ids
from alkit.experiments.stats import verdicts_table
from alkit.experiments.tables import (
    REFERENCE,
    RESULT_COLUMNS,
    cv_splits,
    gain_ratio,
    relative_bar_figure,
    seed_table,
    selection_figure,
    summary_table,
    write_csv_tables,
)
from alkit.loop import Acquired, Arm, FrameCache, Learner, RoundContext, learn, version_frames
from alkit.loop.frames import NoFrames
from alkit.loop.round import acquired_as, query
from alkit.query.methods import SEED_METHODS
from alkit.query.pool_query import Queried
from alkit.sim import World
from alkit.sim.experiment import (
    initial_frame_ids,
    initial_version,
    make_world,
    visible_objects,
    world_pool,
)

#: The A/B test's arms: the seed's four, and RANDOM-night (random frames of the night pool AL
#: chooses from: the fair control for an AL restricted to night frames)
AB_METHODS = (*SEED_METHODS, "RANDOM-night")
#: The tables' test sets, in print order.
AB_TEST_SETS = ("global", "night_heldout", "night", "manual")


@dataclass(frozen=True)
class ABConfig:
    """Everything that determines an A/B run: the run's configuration tree (``run``:
    ``alkit.config.tree.RunConfig``, the world, ensemble, scoring, selection, retraining and
    evaluation) and the A/B test's own ``splits`` (``ABSettings``). Its plain-value form
    (``to_dict`` / ``from_dict``) is what notebooks, ``-p`` and ``ab_config.json`` hold."""

    run: RunConfig = field(default_factory=RunConfig)
    splits: ABSettings = field(default_factory=ABSettings)

    def __post_init__(self) -> None:
        unknown = [c for c in self.run.query.classes_of_interest if c not in CLASSES]
        if unknown:
            raise ConfigError(f"classes_of_interest {unknown} are not in {list(CLASSES)}")

    @staticmethod
    def names() -> set[str]:
        """The plain-value names an ``ABConfig`` takes."""
        return set(FLAT) | {f.name for f in fields(ABSettings)}

    def to_dict(self) -> dict:
        return json.loads(json.dumps(self.run.values() | asdict(self.splits)))

    @classmethod
    def from_dict(cls, values: Mapping) -> ABConfig:
        """From plain values; an unknown name raises ``ConfigError`` naming it."""
        own = {f.name for f in fields(ABSettings)}
        unknown = sorted(set(values) - cls.names())
        if unknown:
            raise ConfigError(f"unknown parameter(s) {unknown}; parameters: {sorted(cls.names())}")
        run = RunConfig.from_values({k: v for k, v in values.items() if k not in own})
        return cls(run, ABSettings(**{k: v for k, v in values.items() if k in own}))


def profile_config(profile: str, **overrides: Any) -> ABConfig:
    """The ``ABConfig`` of a profile (``alkit.config.profiles``), with ``overrides``."""
    return ABConfig.from_dict(profile_values(profile, **overrides))


def as_ab_config(config: ABConfig | Mapping) -> ABConfig:
    """An ``ABConfig`` from itself or a dict of its fields."""
    return config if isinstance(config, ABConfig) else ABConfig.from_dict(config)


@dataclass(frozen=True)
class ABSetup:
    """A claimed run folder and what every step reads: the world, its pool, the initial set."""

    config: ABConfig
    run_dir: Path
    world: World
    pool: Pool
    initial_ids: tuple[int, ...]
    frames: FrameCache


@dataclass(frozen=True)
class Acquisitions:
    """The ``initial`` version and, per method, what its round acquired (the oracle's batch,
    the appended version)."""

    initial: DatasetVersion
    acquired: dict[str, Acquired]

    @property
    def batches(self) -> dict[str, LabelledBatch]:
        return {m: a.batch for m, a in self.acquired.items()}

    @property
    def versions(self) -> dict[str, DatasetVersion]:
        return {m: a.version for m, a in self.acquired.items()}


@dataclass(frozen=True)
class ABResult:
    """Paths and tables of a finished run (all also saved in ``run_dir``)."""

    run_dir: Path
    results: pd.DataFrame
    summary: pd.DataFrame
    gains: pd.DataFrame
    selections: pd.DataFrame
    figures: dict[str, Path]


def ab_setup(config: ABConfig | Mapping, run_dir: str | Path) -> ABSetup:
    """Claim ``run_dir`` for ``config`` (a folder holds one configuration) and build the world."""
    c = as_ab_config(config)
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    saved = run / "ab_config.json"
    if saved.exists():
        # a field the file lacks came later (e.g. ``split_by``): the folder still holds this
        # configuration if every field it has agrees
        old = json.loads(saved.read_text())
        if {k: v for k, v in c.to_dict().items() if k in old} != old:
            raise ConfigError(f"{saved} holds another configuration; use a new run folder")
    storage.atomic_write_json(str(saved), c.to_dict())
    w = c.run.world
    world = make_world(w.world_profile, w.world_seed, dict(w.sessions))
    ids = tuple(initial_frame_ids(world, w.initial_stride))
    return ABSetup(c, run, world, world_pool(world), ids, FrameCache(world))


# 1 TRAIN --------------------------------------------------------------------------------------
def ab_train(
    setup: ABSetup, progress: bool = True, log: Callable[[str], None] = print
) -> TrainedEnsemble:
    """The ensemble on the initial set (``<run>/ensemble``)."""
    c = setup.config
    log(f"TRAIN {c.run.ensemble.n_members} members on {len(setup.initial_ids)} initial frames")
    labelled = (setup.world, list(setup.initial_ids))
    return train_members(labelled, setup.run_dir / "ensemble", c.run.ensemble, progress=progress,
                         log=log)  # fmt: skip


# 2 QUERY --------------------------------------------------------------------------------------
def ab_context(setup: ABSetup, test_sets: dict | None = None) -> RoundContext:
    """The round's context of this run: the oracle, the query and scoring settings, the
    retraining, the run folder and its versions store, the world's frames rendered once."""
    c = setup.config
    return RoundContext(
        pool=setup.pool, labeller=OracleLabeller(setup.world), query=c.run.query,
        scoring=c.run.scoring, retraining=c.run.retraining, test_sets=test_sets or {},
        out_dir=setup.run_dir, versions_root=str(setup.run_dir / "versions"),
        frames=setup.frames, visible=visible_objects(setup.world), progress=False,
    )  # fmt: skip


def ab_query(
    setup: ABSetup, trained: TrainedEnsemble, progress: bool = True,
    log: Callable[[str], None] = print,
) -> Queried:  # fmt: skip
    """Every method's selection (``<run>/selections/<METHOD>.json``, scores in ``<run>/scores``)."""
    log(f"QUERY the pool with {len(trained.ensemble)} members and {', '.join(AB_METHODS)}")
    ctx = replace(ab_context(setup), progress=progress)
    return query(ctx, trained.ensemble, [Arm(m) for m in AB_METHODS])


# 3 ANNOTATE + 4 APPEND ------------------------------------------------------------------------
def ab_annotate(
    setup: ABSetup, queried: Queried, log: Callable[[str], None] = print
) -> Acquisitions:
    """The oracle labels each selection; each is appended to the initial set as a version
    (``<run>/versions``); ``<run>/selection_analysis.csv`` holds what each batch contains."""
    ctx = ab_context(setup)
    initial = initial_version(setup.world, setup.config.run.world.initial_stride)
    acquired = {m: acquired_as(ctx, Arm(m), sel, queried.paths[m], initial, queried.scores)
                for m, sel in queried.selections.items()}  # fmt: skip
    analysis = batch_summary({m: a.batch for m, a in acquired.items()})
    storage.atomic_write_text(str(setup.run_dir / "selection_analysis.csv"), analysis.to_csv())
    log("ANNOTATE " + ", ".join(f"{m}: {len(a.batch)} frames" for m, a in acquired.items()))
    return Acquisitions(initial, acquired)


def ab_splits(
    setup: ABSetup, queried: Queried, log: Callable[[str], None] = print
) -> dict[str, list[tuple[list[int], list[int]]]]:
    """Each selection's ``n_splits`` (train, test) frame ids, by ``split_by``; a selection
    from one driving session is split by frame, saying so."""
    c, world = setup.config, setup.world
    splits = {}
    for m, selection in queried.selections.items():
        ids = selection.frame_ids
        sessions = [world.locate(f)[0] for f in ids] if c.splits.split_by == "session" else None
        if sessions is not None and len(set(sessions)) < 2:
            log(f"A/B: {m}'s {len(ids)} frames come from one driving session: split by frame "
                "(its test frames have neighbours in training)")  # fmt: skip
            sessions = None
        splits[m] = cv_splits(ids, c.splits.n_splits, c.splits.test_fraction, c.run.ensemble.seed,
                              sessions)  # fmt: skip
    return splits


# 5 A/B: retrain and EVALUATE ------------------------------------------------------------------
def ab_evaluate(
    setup: ABSetup, trained: TrainedEnsemble, queried: Queried, annotated: Acquisitions,
    progress: bool = True, log: Callable[[str], None] = print,
) -> pd.DataFrame:  # fmt: skip
    """The seed's protocol (module docstring, step 4): one row per evaluation, in
    ``<run>/ab/<method>_<split>.parquet`` and ``<run>/results.csv``; each row names the
    version its model trained on (``version``: the initial set for REFERENCE, else the
    method's appended version, of which the split's training part is drawn)."""
    c = setup.config
    out = setup.run_dir / "ab"
    out.mkdir(exist_ok=True)
    frames = setup.frames
    fixed = {n: frames.frames(evaluation_set_ids(setup.world, n, c.run.evaluation.test_stride))
             for n in ("global", "night_heldout")}  # fmt: skip
    initial = annotated.initial
    e = c.run.ensemble
    learner = Learner(trained.ensemble.members[0], initial, trained.frames, e.train, e.batch_size)
    methods = tuple(queried.selections)
    new, index = {}, {}
    for m in methods:
        version = annotated.acquired[m].version
        ids = [f for f in version.frame_ids if f in set(queried.selections[m].frame_ids)]
        new[m] = version_frames(version, ids, frames)
        index[m] = {fid: i for i, fid in enumerate(ids)}
    splits = ab_splits(setup, queried, log)
    for s in range(c.splits.n_splits):
        night = sorted(set(splits["AL"][s][1]) | set(splits["MANUAL"][s][1]))
        sets = {**fixed, "night": frames.frames(night),
                "manual": frames.frames(splits["MANUAL"][s][1])}  # fmt: skip
        ctx = replace(ab_context(setup, sets), eval_batch_size=32, progress=progress)
        for method in (REFERENCE, *methods):
            path = out / f"{method}_{s}.parquet"
            if path.exists():
                continue
            if method == REFERENCE:
                # Fine-tuning: REFERENCE gets the same extra steps on the initial data
                # alone, so a method's gain is its new labels', not the extra training's.
                version, part = initial, NoFrames()
                if c.run.retraining.mode == "scratch":
                    ctx = replace(ctx, retraining=None)
            else:
                version = annotated.acquired[method].version
                part = Subset(new[method], [index[method][i] for i in splits[method][s][0]])
            log(f"A/B split {s}: retrain {method} on initial + {len(part)}")
            learned = learn(ctx, learner, version, part, seed=e.seed * 100 + s)
            table = learned.evaluation.table.assign(method=method, split=s)
            storage.atomic_write_parquet(table[[*RESULT_COLUMNS, "n_gt", "version"]], str(path))
            ctx = replace(ctx, retraining=c.run.retraining)
    results = pd.concat([pd.read_parquet(p) for p in sorted(out.glob("*.parquet"))],
                        ignore_index=True)  # fmt: skip
    write_csv_tables(setup.run_dir, {"results": results})
    return results


# 6 REPORT -------------------------------------------------------------------------------------
#: The A/B test's comparisons, first arm minus second (COUNT and the other acquisitions are
#: arms of the replicated experiment, ``alkit.experiments.replicated``).
AB_COMPARISONS = (("AL", "MANUAL"), ("AL", "METADATA"), ("AL", "RANDOM"), ("AL", "RANDOM-night"),
                  ("AL", REFERENCE))  # fmt: skip


def ab_verdicts(
    results: pd.DataFrame, classes: Sequence[str], test_set: str = "night_heldout",
    margin: float = 0.02,
) -> pd.DataFrame:  # fmt: skip
    """Paired differences (absolute) of AP@0.5 and wMAP on ``test_set``, paired by split, with
    95% bootstrap intervals over the splits and the pre-registered verdicts
    (``stats.verdicts_table``). They rest on ``n_splits`` units of one world, one ensemble and
    one test set, without the test set's own sampling noise: not powered; the replicated
    experiment is."""
    part = results[(results.test_set == test_set) & results.metric.isin(["AP50", "wMAP"])
                   & results["class"].isin(list(classes))].dropna(subset=["value"])  # fmt: skip
    comparisons = [(a, b) for a, b in AB_COMPARISONS if {a, b} <= set(part.method)]
    table = part[["method", "split", "class", "metric", "value"]]
    return verdicts_table(table, ["split"], comparisons, margin)


def ab_report(setup: ABSetup, results: pd.DataFrame) -> ABResult:
    """Summary, gains, seed-style tables and figures from ``results`` (``ab_evaluate``)."""
    c, run = setup.config, setup.run_dir
    part = results[results["class"].isin(list(c.run.query.classes_of_interest))]
    summary = summary_table(part)
    gains = gain_ratio(summary)
    write_csv_tables(run, {"summary": summary, "gains": gains})
    analysis = pd.read_csv(run / "selection_analysis.csv", index_col=0)
    figures = {}
    for test_set in ("night", "night_heldout", "global"):
        figures[f"relative_wmap_{test_set}"] = run / f"relative_wmap_{test_set}.png"
        relative_bar_figure(summary, test_set, "wMAP").savefig(
            figures[f"relative_wmap_{test_set}"], dpi=110
        )
    figures["selections"] = run / "selections.png"
    selection_figure(analysis, list(CLASSES)).savefig(figures["selections"], dpi=110)
    metrics = ["wMAP", "mAP_large", "mAP_medium"]
    tables = {t: seed_table(summary, t, metrics) for t in AB_TEST_SETS}
    text = "".join(f"{t} test set\n{table.to_string()}\n\n" for t, table in tables.items())
    storage.atomic_write_text(str(run / "tables.txt"), text)
    return ABResult(run, results, summary, gains, analysis, figures)


def run_ab_test(
    config: ABConfig | Mapping, run_dir: str | Path, progress: bool = True,
    log: Callable[[str], None] = print,
) -> ABResult:  # fmt: skip
    """Run (or resume) the whole A/B protocol in ``run_dir``; see the module docstring."""
    setup = ab_setup(config, run_dir)
    trained = ab_train(setup, progress, log)
    queried = ab_query(setup, trained, progress, log)
    annotated = ab_annotate(setup, queried, log)
    return ab_report(setup, ab_evaluate(setup, trained, queried, annotated, progress, log))


__all__ = [
    "AB_TEST_SETS",
    "ABConfig",
    "ABResult",
    "ABSetup",
    "Acquisitions",
    "ab_annotate",
    "ab_context",
    "ab_evaluate",
    "ab_query",
    "ab_report",
    "ab_setup",
    "ab_splits",
    "ab_train",
    "as_ab_config",
    "profile_config",
    "run_ab_test",
]
