"""One round of the loop: QUERY -> ANNOTATE -> APPEND -> RETRAIN -> EVALUATE.

:func:`acquire` is the round's first half: the scorer (the ensemble) scores the pool, the
arm (a selection method and its seed) picks frames, the labeller labels them and APPEND
stores parent + batch as a new dataset version. :func:`learn` is the second half: a learner
is retrained on that version (:func:`retrain_members`) and evaluated on the test sets
(:func:`evaluate`), the version's hash recorded beside the evaluation. :func:`run_round`
is the two in turn, with one learning per seed. Every driver calls these, so what an
experiment measures is the loop the product runs::

    ctx = RoundContext(pool, labeller, query, scoring, retraining, test_sets, out_dir, root)
    record = run_round(ctx, ensemble, Arm("AL"), parent, Learner(reference, initial, frames,
                       train, batch_size), seeds=(0, 1))
    record.acquired.version.hash == record.learned[0].evaluation.version
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn
from torch.utils.data import Dataset

from alkit.data.labels import LabelledBatch, Labeller
from alkit.data.lineage import append_batch
from alkit.data.pool import Pool
from alkit.data.versions import DatasetVersion
from alkit.ensemble.retrain import RetrainConfig, retrain
from alkit.errors import DataError
from alkit.evaluate.predict import evaluate_model
from alkit.evaluate.test_sets import COLUMNS, result_rows
from alkit.loop.frames import FrameCache, frame_ids_of, version_frames
from alkit.query.pool_query import Queried, QueryConfig, ScoringConfig, query_pool
from alkit.query.selection import SelectionRecord, load_selection


@dataclass(frozen=True)
class RoundContext:
    """What stays the same over a driver's rounds in one world or run folder.

    ``pool``: what QUERY picks from (``visible``: the simulated curator's view, MANUAL);
    ``labeller``: ANNOTATE; ``query`` / ``scoring``: QUERY's settings; ``retraining``:
    RETRAIN's (``None``: evaluate the learner as it is); ``test_sets``: name -> frames;
    ``out_dir``: ``scores/`` and ``selections/`` go there; ``versions_root``: APPEND's
    store; ``frames``: the world's images, rendered once; ``keep_matches``: the classes
    whose detection/ground-truth matches an evaluation keeps (for the session bootstrap);
    ``errors``: REFERENCE's errors on the frames ORACLE may pick (``reference_errors``).
    """

    pool: Pool
    labeller: Labeller
    query: QueryConfig
    scoring: ScoringConfig
    retraining: RetrainConfig | None
    test_sets: Mapping[str, Dataset]
    out_dir: Path
    versions_root: str
    frames: FrameCache | None = None
    visible: Callable[[Sequence[int]], pd.DataFrame] | None = None
    errors: pd.DataFrame | None = None
    keep_matches: tuple[str, ...] = ()
    eval_batch_size: int = 32
    progress: bool = False


@dataclass(frozen=True)
class Arm:
    """A selection method (``alkit.query.methods``) and its settings in one round: the
    selection ``seed`` (``None``: the query config's), the selection's file ``name``
    (``{method}`` is replaced) and ``params`` recorded in the selection and the lineage."""

    method: str
    seed: int | None = None
    name: str = "{method}"
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def file_name(self) -> str:
        return self.name.format(method=self.method)


@dataclass(frozen=True)
class Learner:
    """What RETRAIN starts from: ``model`` (fine-tuned from, or its architecture trained from
    scratch), the ``version`` it was trained on and that version's ``frames`` in memory (the
    replay), its ``train`` config (``TrainConfig`` fields) and ``batch_size``."""

    model: nn.Module
    version: DatasetVersion
    frames: Dataset
    train: Mapping[str, Any]
    batch_size: int


@dataclass(frozen=True)
class Acquired:
    """QUERY -> ANNOTATE -> APPEND of one arm: its ``selection`` (saved at ``path``), the
    labelled ``batch``, the new ``version`` (parent + batch) and the scored pool (``None``
    for a method that needs no scores, or a reused selection)."""

    method: str
    selection: SelectionRecord
    path: Path
    batch: LabelledBatch
    version: DatasetVersion
    scores: pd.DataFrame | None = None

    @property
    def frame_ids(self) -> list[int]:
        return list(self.selection.frame_ids)


@dataclass(frozen=True)
class Evaluation:
    """An evaluation: ``table`` (``test_set | class | metric | value | n_gt | version``),
    the ``version`` hash the model trained on, and per test set the kept ``matches``
    (detections, ground truth) of ``RoundContext.keep_matches``."""

    version: str
    table: pd.DataFrame
    matches: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = field(default_factory=dict)


@dataclass(frozen=True)
class Learned:
    """RETRAIN -> EVALUATE: the ``model`` and its ``evaluation``, with the ``seed``."""

    seed: int
    model: nn.Module
    evaluation: Evaluation


@dataclass(frozen=True)
class RoundRecord:
    """A whole round: what was acquired, and one learning per seed."""

    acquired: Acquired
    learned: tuple[Learned, ...]


# QUERY -> ANNOTATE -> APPEND ------------------------------------------------------------------
def query(
    ctx: RoundContext, scorer: Any, arms: Sequence[Arm], *, taken: Iterable[int] = ()
) -> Queried:
    """QUERY alone: ``scorer`` scores the pool once (resumable shards) and each of ``arms``
    (sharing one seed, name and params: the first arm's) picks, leaving out ``taken``."""
    first = arms[0]
    return query_pool(scorer, ctx.pool, ctx.out_dir, tuple(a.method for a in arms), ctx.query,
                      ctx.scoring, taken=taken, visible=ctx.visible, errors=ctx.errors,
                      seed=first.seed,
                      name=first.name, params=dict(first.params),
                      progress=ctx.progress)  # fmt: skip


def acquire(
    ctx: RoundContext, scorer: Any, arm: Arm, parent: DatasetVersion, *,
    taken: Iterable[int] = (), reuse: bool = False,
) -> Acquired:  # fmt: skip
    """QUERY the pool with ``scorer`` (an ``Ensemble`` or a list of members) for ``arm``,
    leaving out ``taken``; ANNOTATE the picks with the labeller; APPEND them to ``parent``
    as a new version in ``versions_root`` (lineage: the selection, the arm's params).
    ``reuse``: a selection already saved under the arm's name is taken as it is (a resumed
    driver whose scorer was not retrained)."""
    path = ctx.out_dir / "selections" / f"{arm.file_name}.json"
    scores = None
    if reuse and path.exists():
        selection = load_selection(str(path))
    else:
        queried = query(ctx, scorer, [arm], taken=taken)
        selection, path, scores = queried.selections[arm.method], queried.paths[arm.method], \
            queried.scores  # fmt: skip
    return acquired_as(ctx, arm, selection, path, parent, scores)


def acquire_all(
    ctx: RoundContext, scorer: Any, arms: Sequence[Arm], parent: DatasetVersion, *,
    taken: Iterable[int] = (),
) -> dict[str, Acquired]:  # fmt: skip
    """:func:`acquire` for several arms of one round from the same scored pool: the pool is
    scored once (its shards are shared by name) and each arm picks, is labelled and appended
    on its own."""
    taken = list(taken)
    return {a.method: acquire(ctx, scorer, a, parent, taken=taken) for a in arms}


def acquired_as(
    ctx: RoundContext, arm: Arm, selection: SelectionRecord, path: Path,
    parent: DatasetVersion, scores: pd.DataFrame | None = None,
) -> Acquired:  # fmt: skip
    """ANNOTATE -> APPEND of a selection made already."""
    batch = ctx.labeller.label(list(selection.frame_ids))
    version = append_batch(ctx.versions_root, parent, batch, selection,
                           params={"method": arm.method, **dict(arm.params)})  # fmt: skip
    return Acquired(arm.method, selection, Path(path), batch, version, scores)


def appended_prefix(
    ctx: RoundContext, acquired: Acquired, n: int, parent: DatasetVersion, name: str
) -> DatasetVersion:
    """APPEND the first ``n`` picks of ``acquired`` (in pick order) to ``parent`` as a
    version of their own: e.g. a selection cut to a labelling-seconds budget."""
    frames = acquired.batch.frames[:n]
    batch = LabelledBatch(frames, acquired.batch.source, acquired.batch.world,
                          acquired.batch.classes, acquired.batch.cost)  # fmt: skip
    return append_batch(ctx.versions_root, parent, batch, acquired.selection,
                        params={"method": name, "prefix": n})  # fmt: skip


# RETRAIN -> EVALUATE --------------------------------------------------------------------------
def new_frames(ctx: RoundContext, version: DatasetVersion, frame_ids: Iterable[int]) -> Dataset:
    """``frame_ids`` of ``version`` in that order, with the version's labels (images rendered
    once per world by ``ctx.frames``)."""
    return version_frames(version, frame_ids, ctx.frames)


def _check_trains_on(learner: Learner, version: DatasetVersion, new: Dataset) -> None:
    held = set(version.frame_ids)
    old = set(frame_ids_of(learner.frames) or learner.version.frame_ids)
    outside = sorted((old | set(frame_ids_of(new))) - held)
    if outside:
        raise DataError(
            f"frame(s) {outside[:8]} are not in version {version.hash[:12]}: a learner trains "
            "only on the version APPEND wrote"
        )


def retrain_members(
    ctx: RoundContext, learners: Sequence[Learner], version: DatasetVersion, new: Dataset,
    seeds: Sequence[int],
) -> list[nn.Module]:  # fmt: skip
    """RETRAIN each learner on ``version``: its own frames (the replay) + ``new`` (frames of
    ``version``), ``ctx.retraining`` steps, seeded by ``seeds`` (one per learner); with
    ``retraining`` ``None`` the learners' models as they are."""
    models = []
    for learner, seed in zip(learners, seeds, strict=True):
        _check_trains_on(learner, version, new)
        if ctx.retraining is None:
            models.append(learner.model)
            continue
        models.append(retrain(learner.model, learner.frames, new, learner.train, ctx.retraining,
                              seed=seed, batch_size=learner.batch_size,
                              progress=ctx.progress))  # fmt: skip
    return models


def evaluate(ctx: RoundContext, model: Any, version: DatasetVersion | str) -> Evaluation:
    """EVALUATE ``model`` on every test set: the tidy table with ``version`` (the hash of the
    version it trained on) beside each row, and the kept matches."""
    tag = version if isinstance(version, str) else version.hash
    keep = list(ctx.keep_matches)
    parts, matches = [], {}
    for name, frames in ctx.test_sets.items():
        result = evaluate_model(model, frames, batch_size=ctx.eval_batch_size,
                                **({"matches": True} if keep else {}))  # fmt: skip
        parts.append(result_rows(result).assign(test_set=name))
        if keep:
            dets, truth = result.matches
            matches[name] = (dets[dets["class"].isin(keep)], truth[truth["class"].isin(keep)])
    table = pd.concat(parts, ignore_index=True)[list(COLUMNS)].assign(version=tag)
    return Evaluation(tag, table, matches)


def learn(
    ctx: RoundContext, learner: Learner, version: DatasetVersion, new: Dataset, seed: int
) -> Learned:
    """RETRAIN ``learner`` on ``version`` (its frames + ``new``) with ``seed``, then EVALUATE."""
    (model,) = retrain_members(ctx, [learner], version, new, [seed])
    return Learned(seed, model, evaluate(ctx, model, version))


def run_round(
    ctx: RoundContext, scorer: Any, arm: Arm, parent: DatasetVersion, learner: Learner,
    seeds: Sequence[int], *, taken: Iterable[int] = (), reuse: bool = False,
) -> RoundRecord:  # fmt: skip
    """One round: :func:`acquire` for ``arm``, then :func:`learn` once per seed on the new
    version, drawing from every frame it holds beyond the learner's own (in version order)."""
    acquired = acquire(ctx, scorer, arm, parent, taken=taken, reuse=reuse)
    own = set(learner.version.frame_ids)
    ids = [f for f in acquired.version.frame_ids if f not in own]
    new = new_frames(ctx, acquired.version, ids)
    return RoundRecord(acquired, tuple(learn(ctx, learner, acquired.version, new, s)
                                       for s in seeds))  # fmt: skip


__all__ = [
    "Acquired",
    "Arm",
    "Evaluation",
    "Learned",
    "Learner",
    "RoundContext",
    "RoundRecord",
    "acquire",
    "acquire_all",
    "acquired_as",
    "appended_prefix",
    "evaluate",
    "learn",
    "new_frames",
    "query",
    "retrain_members",
    "run_round",
]
