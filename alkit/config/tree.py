"""The run's configuration: one tree of the stages' own configs, and its plain-value form.

::

    RunConfig
      world       WorldSettings     world_profile, world_seed, sessions, initial_stride
      ensemble    EnsembleConfig    n_members, model (DetectorConfig fields), train
                                    (TrainConfig fields), batch_size, seed
      scoring     ScoringConfig     accelerator, devices, score_precision, score_batch_size,
                                    score_workers
      query       QueryConfig       pool_filter, pool_stride, and its ``selection``
                                    (SelectionSettings): budget, classes_of_interest,
                                    al_*, manual_*, metadata_filters, kcenter_*, seed
      labelling   LabellingConfig   labeller, seconds_per_frame, seconds_per_box, min_score,
                                    export_dir, task_image_url
      retraining  RetrainConfig     retrain, retrain_steps, retrain_lr, new_fraction,
                                    retrain_min_epochs
      evaluation  EvaluationConfig  test_stride
      data        OwnData           labelled, images_root, classes, category_map, input_size,
                                    pool, fps, test, labels
      driver      DriverSettings    n_rounds, progress

Each stage's dataclass holds its defaults, once. Notebooks, the CLI's ``-p key=value`` and the
profiles speak the plain-value form: one name per leaf (``FLAT``; ``seed`` is the run's one
seed, of training and of selection). ``RunConfig.from_values`` builds the tree from plain
values (an unknown name raises ``ConfigError`` naming it) and ``values()`` gives them back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from alkit.data.labels import CostModel
from alkit.ensemble.retrain import RetrainConfig
from alkit.ensemble.train import EnsembleConfig
from alkit.errors import ConfigError
from alkit.query.methods import SelectionSettings
from alkit.query.pool_query import QueryConfig, ScoringConfig


@dataclass(frozen=True)
class WorldSettings:
    """The synthetic world (``alkit.sim.experiment.make_world``): its ``world_profile`` (a
    world size: ``quick``, ``night``, ``full``, ``alkit.sim.config``), ``world_seed``,
    ``sessions`` per segment (empty: the profile's) and every ``initial_stride``-th frame of
    the initial segment labelled."""

    world_profile: str = "quick"
    world_seed: int = 0
    sessions: Mapping = field(default_factory=dict)
    initial_stride: int = 2


@dataclass(frozen=True)
class LabellingConfig:
    """ANNOTATE: the ``labeller`` (``alkit.annotate``), its cost model, and for a labelling
    tool the pre-annotations' ``min_score``, where frames are exported (``export_dir``;
    empty: the step's folder) and the URL prefix the tool loads them from (``task_image_url``)."""

    labeller: str = "oracle"
    seconds_per_frame: float = 30.0
    seconds_per_box: float = 7.0
    min_score: float = 0.3
    export_dir: str = ""
    task_image_url: str = ""

    def cost(self) -> CostModel:
        return CostModel(self.seconds_per_frame, self.seconds_per_box)


@dataclass(frozen=True)
class EvaluationConfig:
    """EVALUATE: every ``test_stride``-th test frame (``alkit.evaluate.test_sets``)."""

    test_stride: int = 4


@dataclass(frozen=True)
class OwnData:
    """A team's own data (``alkit.workflow.run_data``); ``labelled`` empty: the world."""

    labelled: str = ""  # COCO instances file of the labelled set
    images_root: str = ""  # its images' folder; empty: found beside the COCO file
    classes: tuple[str, ...] = ()  # the classes to learn; empty: all the COCO file's
    category_map: Mapping = field(default_factory=dict)  # rename categories
    input_size: tuple[int, int] = (96, 160)  # [H, W] own images are letterboxed into
    pool: str = ""  # the unlabelled pool: a folder of images or videos, a video, a table
    fps: float | None = None  # frames per second sampled from videos; None: every frame
    test: str = ""  # COCO instances file of a labelled test set
    labels: str = ""  # the labelling tool's export (Label Studio JSON or COCO)


@dataclass(frozen=True)
class DriverSettings:
    """How the drivers run: ``n_rounds`` of the rounds, ``progress`` bars."""

    n_rounds: int = 3
    progress: bool = True


#: How the A/B test splits a selection 90/10: by driving session, or by frame (the seed's).
SPLIT_BY = ("session", "frame")


@dataclass(frozen=True)
class ABSettings:
    """What the A/B test adds to the run: ``n_splits`` x (1 - ``test_fraction``) /
    ``test_fraction`` splits of every selection, by ``split_by``: ``"session"`` (whole
    driving sessions held out, so no test frame has a near-duplicate neighbour in training)
    or ``"frame"`` (the seed's random frames)."""

    n_splits: int = 3
    test_fraction: float = 0.1
    split_by: str = "session"

    def __post_init__(self) -> None:
        if self.split_by not in SPLIT_BY:
            raise ConfigError(f"split_by must be one of {SPLIT_BY}, got {self.split_by!r}")


@dataclass(frozen=True)
class RunConfig:
    """Every stage's config, nested (module docstring)."""

    world: WorldSettings = field(default_factory=WorldSettings)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    query: QueryConfig = field(default_factory=QueryConfig)
    labelling: LabellingConfig = field(default_factory=LabellingConfig)
    retraining: RetrainConfig = field(default_factory=RetrainConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    data: OwnData = field(default_factory=OwnData)
    driver: DriverSettings = field(default_factory=DriverSettings)

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> RunConfig:
        """The tree of plain ``values`` (``FLAT`` names; the rest from the defaults)."""
        unknown = sorted(set(values) - set(FLAT))
        if unknown:
            raise ConfigError(f"unknown parameter(s) {unknown}; parameters: {sorted(FLAT)}")
        parts: dict[str, dict[str, Any]] = {}
        for name, value in values.items():
            for path in FLAT[name]:
                parts.setdefault(path[0], {})[path[1:]] = _typed(name, value)
        config = cls()
        for stage, leaves in parts.items():
            config = replace(config, **{stage: _set(getattr(config, stage), leaves)})
        return config

    def values(self, names: Any = None) -> dict[str, Any]:
        """The plain values of ``names`` (default: every ``FLAT`` name), JSON types."""
        out = {}
        for name in names if names is not None else FLAT:
            node = self
            for step in FLAT[name][0]:
                node = getattr(node, step)
            out[name] = node
        return json.loads(json.dumps(out))


def _typed(name: str, value: Any) -> Any:
    if name in ("classes_of_interest", "classes"):
        return tuple(value)
    if name == "input_size":
        return tuple(int(v) for v in value)
    return value


def _set(node: Any, leaves: Mapping[tuple[str, ...], Any]) -> Any:
    """``node`` with each ``(field, ...)`` path of ``leaves`` replaced."""
    own = {p[0]: v for p, v in leaves.items() if len(p) == 1}
    for child in {p[0] for p in leaves if len(p) > 1}:
        deeper = {p[1:]: v for p, v in leaves.items() if len(p) > 1 and p[0] == child}
        own[child] = _set(getattr(node, child), deeper)
    known = {f.name for f in fields(node)}
    bad = sorted(set(own) - known)
    if bad:  # a FLAT entry pointing nowhere: a bug here, not the user's
        raise ConfigError(f"{type(node).__name__} has no field(s) {bad}")
    return replace(node, **own)


def _leaves(stage: str, prefix: tuple[str, ...], names: Mapping[str, str]) -> dict:
    return {flat: [(stage, *prefix, leaf)] for flat, leaf in names.items()}


#: plain-value name -> the path(s) of its leaf in ``RunConfig`` (``seed``: two leaves, one value)
FLAT: dict[str, list[tuple[str, ...]]] = {
    **_leaves(
        "world", (), {n: n for n in ("world_profile", "world_seed", "sessions", "initial_stride")}
    ),  # fmt: skip
    **_leaves("ensemble", (), {n: n for n in ("n_members", "model", "train", "batch_size")}),
    "seed": [("ensemble", "seed"), ("query", "selection", "seed")],
    **_leaves(
        "scoring",
        (),
        {
            "accelerator": "accelerator",
            "devices": "devices",
            "score_precision": "precision",
            "score_batch_size": "batch_size",
            "score_workers": "num_workers",
        },
    ),  # fmt: skip
    **_leaves("query", (), {"pool_filter": "pool_filter", "pool_stride": "pool_stride"}),
    **_leaves(
        "query",
        ("selection",),
        {f.name: f.name for f in fields(SelectionSettings) if f.name != "seed"},
    ),
    **_leaves("labelling", (), {f.name: f.name for f in fields(LabellingConfig)}),
    **_leaves(
        "retraining",
        (),
        {
            "retrain": "mode",
            "retrain_steps": "steps",
            "retrain_lr": "lr",
            "new_fraction": "new_fraction",
            "retrain_min_epochs": "min_epochs",
        },
    ),  # fmt: skip
    **_leaves("evaluation", (), {"test_stride": "test_stride"}),
    **_leaves("data", (), {f.name: f.name for f in fields(OwnData)}),
    **_leaves("driver", (), {f.name: f.name for f in fields(DriverSettings)}),
}


__all__ = [
    "FLAT",
    "SPLIT_BY",
    "ABSettings",
    "EvaluationConfig",
    "LabellingConfig",
    "OwnData",
    "RunConfig",
    "DriverSettings",
    "WorldSettings",
]
