"""The replicated experiment: every arm over world seeds x disjoint pool blocks x fine-tuning
seeds, paired, with bootstrap confidence intervals and verdicts fixed in advance.

Per world seed: TRAIN the scoring ensemble on the initial set, and REFERENCE, one more
learner outside the ensemble (seed ``seed + n_members``), on the same data. The pool's
sessions are dealt into ``pool_blocks`` disjoint blocks (sorted by time of day, then id,
dealt in turn, so every block gets its share of night drives); the ensemble scores each
block once and every arm selects ``budget`` frames from it. The oracle labels each
selection (its labelling seconds are recorded), and REFERENCE is fine-tuned on the initial
set + the selection with each fine-tuning seed (REFERENCE itself gets the same extra steps
on the initial set alone, so an arm's gain is its labels', not the extra training's); with
``cost_matched`` also on each selection's longest prefix that fits the cheapest selection's
labelling seconds in that block (equal cost instead of equal frames). Every
model is evaluated on ``test_set``. One replicate is (world seed, pool block, fine-tuning
seed); arms are paired within it.

Writes into ``out_dir``: ``world_<s>/`` (ensemble, reference, scores, REFERENCE's errors for
ORACLE per pool block, selections, per evaluation its metrics and its matches at IoU 0.5: a
rerun skips what is there),
``results.csv`` (tidy: ``method, world_seed, pool_block, finetune_seed, class, metric, value,
n_gt``; ``wMAP`` and ``AP`` there are over IoU 0.5:0.95), ``costs.csv`` (frames, boxes,
labelling seconds per selection), ``diagnostics.csv`` (``signal_diagnostics``: is the frame
score reliable, and does it follow objects and hard cases?), ``test_sets.csv`` (frames,
drives, objects and tracks per class), ``verdicts.csv`` and ``power.csv``
(``alkit.experiments.session_bootstrap``: paired differences of AP@0.5 and wMAP@0.5 with 95%
confidence intervals from a bootstrap of world seeds, pool blocks and test sessions; the
80%-power minimum detectable difference) and ``differences.png``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pandas as pd
from torch.utils.data import Dataset

from alkit.data import storage
from alkit.data.datasets import VirtualFrames
from alkit.data.pool import Pool
from alkit.data.versions import DatasetVersion
from alkit.ensemble.train import EnsembleConfig, TrainedEnsemble, train_members
from alkit.errors import ConfigError
from alkit.evaluate.errors import reference_errors
from alkit.evaluate.test_sets import describe_test_sets, evaluation_set_ids
from alkit.experiments.abtest import ABConfig, ABSetup, ab_context, ab_setup, ab_train
from alkit.experiments.session_bootstrap import AnalysisPlan, session_bootstrap
from alkit.experiments.stats import (
    COMPARISONS,
    differences_figure,
    spearman,
    split_half_correlation,
)
from alkit.experiments.tables import REFERENCE, write_csv_tables
from alkit.experiments.workers import run_world_seeds
from alkit.loop import Arm, Learner, RoundContext, learn
from alkit.loop.frames import NoFrames
from alkit.loop.round import acquired_as, appended_prefix, new_frames, query
from alkit.query.methods import check_methods
from alkit.query.score import read_scores, score_pool
from alkit.sim.experiment import initial_version

#: The arms of the experiment (``alkit.query.methods``).
ARMS = ("AL", "AL-div", "AL-peaks", "AL-kcenter", "ORACLE", "RANDOM-night", "RANDOM", "METADATA",
        "MANUAL", "COUNT")  # fmt: skip
#: The primary comparisons, named before any arm ran: each of the field's acquisitions
#: against RANDOM-night (Holm-adjusted over these, per class and metric).
PRIMARY = (("AL", "RANDOM-night"), ("AL-peaks", "RANDOM-night"), ("AL-kcenter", "RANDOM-night"))
#: Secondary: the ceiling's headroom, the gain of random labels (which sets the margin), and
#: every other arm against the control (named before the powered run, 2026-12-06).
SECONDARY = (("ORACLE", "RANDOM-night"), ("RANDOM-night", REFERENCE), ("AL-div", "RANDOM-night"),
             ("COUNT", "RANDOM-night"), ("MANUAL", "RANDOM-night"))  # fmt: skip
#: The replicate levels, top first (``alkit.experiments.stats``).
LEVELS = ("world_seed", "pool_block", "finetune_seed")


@dataclass(frozen=True)
class ExperimentConfig:
    """The replicated experiment: ``ab`` = ``ABConfig`` fields of each world's run (world
    profile and sessions, ensemble, selection, retraining), then the replicates and the
    pre-registered analysis (``margin``: the equivalence band, AP points as fractions).
    ``cost_matched``: also every arm at equal labelling seconds (``COST_MATCHED``).
    ``reference_train``: ``TrainConfig`` fields REFERENCE trains with instead of the members'
    (e.g. more epochs: it is the model every arm improves; the ensemble only ranks frames)."""

    ab: Mapping = field(default_factory=dict)
    reference_train: Mapping = field(default_factory=dict)
    world_seeds: tuple[int, ...] = (0, 1)
    pool_blocks: int = 2
    finetune_seeds: tuple[int, ...] = (0, 1)
    arms: tuple[str, ...] = ARMS
    test_set: str = "night_heldout"
    margin: float = 0.02
    n_resamples: int = 2000
    cost_matched: bool = False

    def __post_init__(self) -> None:
        check_methods(self.arms)
        if self.pool_blocks < 1 or not self.world_seeds or not self.finetune_seeds:
            raise ConfigError("pool_blocks must be >= 1 and world_seeds, finetune_seeds non-empty")
        ABConfig.from_dict(dict(self.ab))  # checks the fields now, naming an unknown one

    def world_config(self, seed: int) -> ABConfig:
        """The configuration of world seed ``seed``'s run (its ``ABConfig``)."""
        return ABConfig.from_dict({**dict(self.ab), "world_seed": seed})


def pool_blocks(pool: Pool, n: int) -> list[Pool]:
    """``pool`` split into ``n`` disjoint blocks of whole sessions, dealt in turn after
    sorting by time of day and session id (so each block gets its share of every time)."""
    meta = pool.metadata
    keys = meta[["session_id", "time_of_day"]].drop_duplicates("session_id")
    order = keys.sort_values(["time_of_day", "session_id"]).session_id.tolist()
    if len(order) < n:
        raise ConfigError(f"pool_blocks = {n} but the pool has {len(order)} sessions")
    return [pool.where({"session_id": order[k::n]}) for k in range(n)]


#: Tags of the long tail (``alkit.sim.objects``): the hard cases an uncertainty score should find.
HARD_TAGS = ("dark_clothing", "unlit", "wheelie", "occluded", "low_contrast")


def hard_cases(frame, class_index: int) -> int:
    """How many of a world frame's objects of ``class_index`` carry a ``HARD_TAGS`` tag."""
    return sum(1 for label, tags in zip(frame.labels, frame.attributes, strict=False)
               if label == class_index and set(tags) & set(HARD_TAGS))  # fmt: skip


def signal_diagnostics(
    ensemble, world, scored: pd.DataFrame, classes: Sequence[str], out_dir: Path,
    scoring, n_frames: int = 400, seed: int = 0,
) -> pd.DataFrame:  # fmt: skip
    """Is the ensemble's frame score a signal? On up to ``n_frames`` scored frames, per class:
    the split-half rank correlation (two halves of the members scoring alone, with its
    Spearman-Brown correction), and the Spearman correlation of the score with the frame's
    ground-truth object count and with its count of hard-case objects (``HARD_TAGS``). Needs
    >= 4 members: a half of one member has no disagreement (its MI is 0 everywhere)."""
    sample = scored.sample(min(n_frames, len(scored)), random_state=seed).frame_id.tolist()
    halves = {}
    members = list(ensemble.members)
    h = len(members) // 2
    for name, part in (("a", members[:h]), ("b", members[h:])):
        url = str(out_dir / f"half_{name}")
        score_pool(part, world, sample, url, classes=ensemble.classes, progress=False,
                   batch_size=scoring.batch_size, accelerator=scoring.accelerator,
                   devices=scoring.devices)  # fmt: skip
        halves[name] = read_scores(url).set_index("frame_id").reindex(sample)
    truth = {fid: world.frame(int(fid)) for fid in sample}
    rows = []
    mean = scored.set_index("frame_id").reindex(sample)
    for cls in classes:
        ci = list(ensemble.classes).index(cls)
        counts = [int((truth[f].labels == ci).sum()) for f in sample]
        hard = [hard_cases(truth[f], ci) for f in sample]
        split = split_half_correlation(halves["a"][cls].to_numpy(), halves["b"][cls].to_numpy())
        score = mean[cls].to_numpy()
        rows.append({"class": cls, "frames": len(sample), "split_half_r": split.r_half,
                     "split_half_r_full": split.r_full,
                     "spearman_score_vs_objects": spearman(score, counts),
                     "spearman_score_vs_hard_objects": spearman(score, hard)})  # fmt: skip
    return pd.DataFrame(rows)


#: The suffix of an arm cut to the block's equal labelling-seconds budget.
COST_MATCHED = " (equal seconds)"


def cost_matched_prefix(seconds: Sequence[float], budget: float) -> int:
    """How many picks, in pick order, fit ``budget`` labelling seconds (the longest prefix
    whose cumulative seconds stay within it)."""
    total, n = 0.0, 0
    for value in seconds:
        if total + value > budget + 1e-9:
            break
        total, n = total + value, n + 1
    return n


def _kept(paths: Sequence[Path], make: Callable[[], Sequence[pd.DataFrame]]) -> tuple:
    """The tables saved as ``paths``; made (and saved atomically) if any is absent. Read back
    from the files either way, so a resumed run sees what a run from the start saw."""
    if not all(p.exists() for p in paths):
        for table, path in zip(make(), paths, strict=True):
            storage.atomic_write_parquet(table, str(path))
    return tuple(pd.read_parquet(p) for p in paths)


def _evaluated(
    out: Path, make: Callable[[], tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(metrics rows, detections, truth)`` of one evaluation saved as ``out`` + ``.parquet``,
    ``_detections.parquet``, ``_truth.parquet`` (``_kept``)."""
    paths = [out.with_name(out.name + suffix)
             for suffix in (".parquet", "_detections.parquet", "_truth.parquet")]  # fmt: skip
    return _kept(paths, make)


def analysis_plan(arms: Sequence[str], primary: Sequence[tuple[str, str]] = ()) -> AnalysisPlan:
    """The analysis fixed in advance: crossed, ``primary`` Holm-adjusted, the margin a share of
    RANDOM-night's gain over REFERENCE where RANDOM-night is among ``arms``."""
    margin_from = ("RANDOM-night", REFERENCE) if "RANDOM-night" in arms else None
    return AnalysisPlan(crossed=True, primary=tuple(primary), margin_from=margin_from)


def test_sessions(world, frame_ids: Sequence[int]) -> dict[int, int]:
    """``{frame id: its driving session}`` of a test set's frames."""
    return {int(f): int(world.locate(f)[0]) for f in frame_ids}


@dataclass(frozen=True)
class WorldRun:
    """What one world seed gives: tidy ``results``, ``costs``, ``diagnostics``, the test set's
    ``test_sets`` summary (frames, sessions, objects, tracks per class), the evaluations'
    ``matches`` keyed ``(method, world_seed, pool_block, finetune_seed)`` and the test frames'
    ``sessions``."""

    results: pd.DataFrame
    costs: pd.DataFrame
    diagnostics: pd.DataFrame
    test_sets: pd.DataFrame
    matches: dict
    sessions: dict[int, int]


@dataclass(frozen=True)
class WorldModels:
    """A world seed's round-0 models and test set, shared by the experiment and its rounds:
    the A/B ``setup``, the scoring ensemble (``trained``), ``reference`` (REFERENCE: a
    learner outside it, trained on the ``initial`` version), the test frames (``test_ids``),
    and the round's context (``ctx``: the oracle, the world's versions store, the test set,
    the matches kept for the classes of interest)."""

    config: ExperimentConfig
    seed: int
    setup: ABSetup
    trained: TrainedEnsemble
    reference: TrainedEnsemble
    initial: DatasetVersion
    test_ids: list[int]
    ctx: RoundContext

    def learner(self) -> Learner:
        """REFERENCE as the learner every arm retrains."""
        c = self.config.world_config(self.seed)
        e = c.run.ensemble
        return Learner(self.reference.ensemble.members[0], self.initial, self.reference.frames,
                       e.train, e.batch_size)  # fmt: skip

    def scorers(self) -> list[Learner]:
        """The scoring ensemble's members as learners (an arm's own ensemble, retrained)."""
        c = self.config.world_config(self.seed)
        e = c.run.ensemble
        return [Learner(m, self.initial, self.trained.frames, e.train, e.batch_size)
                for m in self.trained.ensemble.members]  # fmt: skip


def learned_evaluation(
    models: WorldModels, version: DatasetVersion, part: Dataset, block: int,
    finetune_seed: int, out: Path, what: str, log: Callable,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """REFERENCE retrained on ``version`` (the initial set + ``part``, seeded by world, block
    and fine-tuning seed) and evaluated on the test set (``alkit.loop.learn``), saved as
    ``out`` (``_evaluated``): rows with the version's hash, and the kept matches."""
    seed = models.seed

    def make():
        log(f"world {seed}, block {block}, fine-tuning seed {finetune_seed}: {what}")
        learned = learn(models.ctx, models.learner(), version, part,
                        seed=1000 * seed + 10 * block + finetune_seed)  # fmt: skip
        ev = learned.evaluation
        dets, truth = ev.matches[models.config.test_set]
        return ev.table, dets, truth

    return _evaluated(out, make)


def oracle_errors(models: WorldModels, block: Pool) -> pd.DataFrame:
    """REFERENCE's missed and false detections per class on the frames of ``block`` that AL
    scores (the pool filter's, every ``pool_stride``-th), with their metadata: what ORACLE
    ranks (``alkit.evaluate.errors.reference_errors``)."""
    c = models.config.world_config(models.seed)
    e = c.run.ensemble
    scored = block.where(c.run.query.pool_filter).every(c.run.query.pool_stride)
    frames = VirtualFrames(models.setup.world, scored.frame_ids)
    errors = reference_errors(models.reference.ensemble.members[0], frames,
                              list(c.run.query.classes_of_interest),
                              batch_size=e.batch_size)  # fmt: skip
    return errors.merge(scored.metadata, on="frame_id")


def world_models(
    config: ExperimentConfig, seed: int, out_dir: Path, progress: bool, log: Callable
) -> WorldModels:
    """TRAIN a world's scoring ensemble and REFERENCE in ``out_dir`` (kept ones are reused)
    and render its test set (``WorldModels``)."""
    c = config.world_config(seed)
    w, e = c.run.world, c.run.ensemble
    setup = ab_setup(c, out_dir)
    trained = ab_train(setup, progress, log)
    log(f"world {seed}: TRAIN REFERENCE, a learner outside the ensemble")
    ref_train = {**dict(e.train), **dict(config.reference_train)}
    ref_config = EnsembleConfig(1, e.model, ref_train, e.batch_size, e.seed + e.n_members)
    labelled = (setup.world, list(setup.initial_ids))
    reference = train_members(labelled, out_dir / "reference", ref_config, progress=progress)
    test_ids = evaluation_set_ids(setup.world, config.test_set, c.run.evaluation.test_stride)
    ctx = replace(ab_context(setup, {config.test_set: setup.frames.frames(test_ids)}),
                  keep_matches=tuple(c.run.query.classes_of_interest), eval_batch_size=e.batch_size,
                  progress=progress)  # fmt: skip
    (out_dir / "evaluations").mkdir(exist_ok=True)
    initial = initial_version(setup.world, w.initial_stride)
    return WorldModels(config, seed, setup, trained, reference, initial, test_ids, ctx)


def run_world(
    config: ExperimentConfig, seed: int, out_dir: Path, progress: bool, log: Callable
) -> WorldRun:
    """One world seed: every arm, block and fine-tuning seed (``WorldRun``); every selection
    is labelled and APPENDed to the initial set, and REFERENCE retrains on that version."""
    c = config.world_config(seed)
    e = c.run.ensemble
    models = world_models(config, seed, out_dir, progress, log)
    setup, trained, initial = models.setup, models.trained, models.initial
    summary = describe_test_sets(setup.world, [config.test_set], c.run.evaluation.test_stride)
    evals = out_dir / "evaluations"
    results, costs, diagnostics, matches = [], [], [], {}
    for b, block in enumerate(pool_blocks(setup.pool, config.pool_blocks)):
        log(f"world {seed}, pool block {b}: QUERY {len(block)} frames with {list(config.arms)}")
        ctx = replace(models.ctx, pool=block)
        if "ORACLE" in config.arms:  # the ceiling: REFERENCE's errors on what AL scores
            (errors,) = _kept([out_dir / f"oracle_errors_block{b}.parquet"],
                              lambda block=block: [oracle_errors(models, block)])  # fmt: skip
            ctx = replace(ctx, errors=errors)
        arms = [Arm(a, seed=e.seed + b, name=f"block{b}_{{method}}", params={"pool_block": b})
                for a in config.arms]  # fmt: skip
        queried = query(ctx, trained.ensemble, arms)
        if queried.scores is not None and len(trained.ensemble) >= 4:  # halves of >= 2
            diag = signal_diagnostics(trained.ensemble, setup.world, queried.scores,
                                      c.run.query.classes_of_interest,
                                      out_dir / f"diagnostics_block{b}", c.run.scoring,
                                      seed=e.seed + b)  # fmt: skip
            diagnostics.append(diag.assign(world_seed=seed, pool_block=b))
        new, versions, acquired = {}, {}, {}
        for arm in arms:
            sel = queried.selections[arm.method]
            acquired[arm.method] = got = acquired_as(ctx, arm, sel, queried.paths[arm.method],
                                                     initial)  # fmt: skip
            costs.append({"method": arm.method, "world_seed": seed, "pool_block": b,
                          "frames": len(got.batch), "boxes": got.batch.num_boxes,
                          "seconds": got.batch.total_seconds})  # fmt: skip
            versions[arm.method] = got.version
            new[arm.method] = new_frames(ctx, got.version, got.frame_ids)
        if config.cost_matched:  # every arm cut to the cheapest selection's seconds
            budget = min(a.batch.total_seconds for a in acquired.values())
            for arm, got in acquired.items():
                n = cost_matched_prefix(got.batch.seconds.tolist(), budget)
                name = arm + COST_MATCHED
                versions[name] = appended_prefix(ctx, got, n, initial, name) if n else initial
                new[name] = new_frames(ctx, versions[name], got.frame_ids[:n])
                costs.append({"method": name, "world_seed": seed, "pool_block": b,
                              "frames": n, "boxes": int(sum(len(fr.labels) for fr in
                                                            got.batch.frames[:n])),
                              "seconds": float(got.batch.seconds[:n].sum())})  # fmt: skip
        for f in config.finetune_seeds:
            for arm in (REFERENCE, *new):
                version, part = versions.get(arm, initial), new.get(arm, NoFrames())
                table, dets, truth = learned_evaluation(models, version, part, b, f,
                                                        evals / f"block{b}_ft{f}_{arm}", arm,
                                                        log)  # fmt: skip
                replicate = (arm, seed, b, f)
                matches[replicate] = (dets, truth)
                results.append(table.assign(method=arm, world_seed=seed, pool_block=b,
                                            finetune_seed=f))  # fmt: skip
    diag = pd.concat(diagnostics, ignore_index=True) if diagnostics else pd.DataFrame()
    return WorldRun(
        results=pd.concat(results, ignore_index=True),
        costs=pd.DataFrame(costs),
        diagnostics=diag,
        test_sets=summary.assign(world_seed=seed),
        matches=matches,
        sessions=test_sessions(setup.world, models.test_ids),
    )


def run_experiment(
    config: ExperimentConfig | Mapping,
    out_dir: str | Path,
    progress: bool = True,
    log: Callable[[str], None] = print,
    workers: int = 1,
) -> dict[str, pd.DataFrame]:
    """Every world seed (``run_world``), then the verdicts; see the module docstring.
    ``workers`` > 1: that many world seeds at once, each in its own process on one CPU thread
    (on a 2-core CPU two single-threaded trainings do about 1.4x the work of one on two
    threads; floating-point sums may then differ in their last bits from a one-worker run)."""
    if not isinstance(config, ExperimentConfig):
        config = ExperimentConfig(**dict(config))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "experiment_config.json"
    plain = json.loads(json.dumps(asdict(config)))
    if saved.exists() and json.loads(saved.read_text()) != plain:
        raise ConfigError(f"{saved} holds another configuration; use a new run folder")
    storage.atomic_write_json(str(saved), plain)
    run = functools.partial(run_world, config)
    parts = run_world_seeds(run, config.world_seeds, out, (), workers, progress, log)
    results = pd.concat([p.results for p in parts], ignore_index=True)
    results = results[["method", *LEVELS, "class", "metric", "value", "n_gt", "version"]]
    costs = pd.concat([p.costs for p in parts], ignore_index=True)
    diagnostics = pd.concat([p.diagnostics for p in parts], ignore_index=True)
    test_sets = pd.concat([p.test_sets for p in parts], ignore_index=True)
    classes = list(config.world_config(config.world_seeds[0]).run.query.classes_of_interest)
    comparisons = [(a, b) for a, b in COMPARISONS if {a, b} <= {REFERENCE, *config.arms}]
    if config.cost_matched:
        comparisons += [(a + COST_MATCHED, b + COST_MATCHED) for a, b in comparisons]
    log(f"bootstrap: {config.n_resamples} resamples of world seeds, pool blocks, test sessions")
    arms = {REFERENCE, *config.arms}
    comparisons += [c for c in SECONDARY if set(c) <= arms and c not in comparisons]
    primary = tuple(c for c in PRIMARY if set(c) <= arms)
    comparisons += [c for c in primary if c not in comparisons]
    plan = analysis_plan(arms, primary)
    boot = session_bootstrap(
        {k: v for p in parts for k, v in p.matches.items()},
        {s: p.sessions for s, p in zip(config.world_seeds, parts, strict=True)},
        comparisons, classes, config.margin, config.n_resamples, plan=plan,
    )  # fmt: skip
    verdicts = boot.verdicts
    tables = {"results": results, "costs": costs, "diagnostics": diagnostics,
              "test_sets": test_sets, "verdicts": verdicts, "power": boot.power}  # fmt: skip
    write_csv_tables(out, tables)
    differences_figure(verdicts, config.margin).savefig(out / "differences.png", dpi=110)
    return tables


def reanalyse(out_dir: str | Path, log: Callable[[str], None] = print) -> dict[str, pd.DataFrame]:
    """The analysis of a finished run in ``out_dir`` again, with this code's tables (e.g.
    ``power.csv`` for a run made before it existed): its configuration is read back and every
    model, score and evaluation is reused; nothing trains."""
    return run_experiment(experiment_config(out_dir), out_dir, False, log)


def experiment_config(out_dir: str | Path) -> ExperimentConfig:
    """The configuration of the experiment in ``out_dir`` (``experiment_config.json``)."""
    saved = Path(out_dir) / "experiment_config.json"
    if not saved.exists():
        raise ConfigError(f"{saved} not found: {out_dir} holds no experiment")
    return ExperimentConfig(**json.loads(saved.read_text()))


__all__ = [
    "ARMS",
    "COST_MATCHED",
    "HARD_TAGS",
    "LEVELS",
    "ExperimentConfig",
    "WorldModels",
    "cost_matched_prefix",
    "experiment_config",
    "pool_blocks",
    "reanalyse",
    "run_experiment",
    "signal_diagnostics",
    "test_sessions",
    "learned_evaluation",
    "world_models",
]
