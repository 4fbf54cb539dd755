"""Named test sets of the experiment world and per-class evaluation tables for notebooks.

Test sets (frames of the world's ``test`` segment, never labelled or selected):

- ``global``: every ``test_stride``-th test frame (mostly day, like the seed's global set);
- ``night_heldout``: every ``max(1, test_stride // 2)``-th night test frame;
- ``night_test``: every ``test_stride``-th frame of the ``night_test`` segment (unseen night
  drives; in worlds that have one, e.g. profile ``night``: 1,000 frames of 40 drives).

Evaluation rows are tidy: ``test_set | class | metric | value | n_gt`` with ``metric`` in
``wMAP``, ``mAP_large``, ``mAP_medium``, ``AP50``, ``AP`` and ``n_gt`` the ground-truth objects
the metric averages over (``value`` is NaN exactly when ``n_gt`` is 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from torch.utils.data import Dataset

from alkit.data.classes import CLASSES
from alkit.data.datasets import CachedFrames, VirtualFrames
from alkit.ensemble.store import Ensemble
from alkit.errors import ConfigError
from alkit.evaluate.metrics import EvalResult
from alkit.evaluate.predict import evaluate_model

TEST_SETS = ("global", "night_heldout", "night_test")
#: metric name -> (column of ``EvalResult.table``, its ground-truth count column)
METRICS = {
    "wMAP": ("wMAP", "n_gt"),
    "mAP_large": ("AP_large", "n_large"),
    "mAP_medium": ("AP_medium", "n_medium"),
    "AP50": ("AP50", "n_gt"),
    "AP": ("AP", "n_gt"),
}
COLUMNS = ("test_set", "class", "metric", "value", "n_gt")


def evaluation_set_ids(world: Any, name: str, test_stride: int = 4) -> list[int]:
    """Frame ids of the named test set (see the module docstring)."""
    if name not in TEST_SETS:
        raise ConfigError(f"unknown test set {name!r}; choose from {list(TEST_SETS)}")
    if test_stride < 1:
        raise ConfigError(f"test_stride must be >= 1, got {test_stride}")
    if name == "night_test":
        if "night_test" not in [s.name for s in world.config.segments]:
            raise ConfigError(
                "test set 'night_test' needs a world with a night_test segment "
                "(world profile 'night', or sessions={'night_test': 40})"
            )
        return list(world.segment_frame_ids("night_test"))[::test_stride]
    test = world.manifest(world.segment_frame_ids("test"))
    if name == "global":
        return test.frame_id.tolist()[::test_stride]
    return test[test.time_of_day == "night"].frame_id.tolist()[:: max(1, test_stride // 2)]


def evaluation_sets(
    world: Any, names: Sequence[str] = TEST_SETS, test_stride: int = 4
) -> dict[str, Dataset]:
    """The named test sets, rendered once and held in memory (``CachedFrames``)."""
    if isinstance(names, str) or not names:
        raise ConfigError(f"test set names must be a non-empty list, got {names!r}")
    ids = {name: evaluation_set_ids(world, name, test_stride) for name in names}
    return {name: CachedFrames(VirtualFrames(world, i)) for name, i in ids.items()}


def describe_test_sets(world: Any, names: Sequence[str], test_stride: int = 4) -> pd.DataFrame:
    """What each named test set can resolve: ``test_set | class | frames | sessions | objects |
    tracks`` (boxes, and distinct objects: the same object in many frames of a drive is one
    track). Renders the sets' frames once more (the world's frames carry their tracks)."""
    rows = []
    for name in names:
        ids = evaluation_set_ids(world, name, test_stride)
        frames = [world.frame(i) for i in ids]
        sessions = {world.locate(i)[0] for i in ids}
        for c, cls in enumerate(CLASSES):
            tracks = {(f.meta.session_id, int(t)) for f in frames
                      for t in f.tracks[f.labels == c]}  # fmt: skip
            rows.append({"test_set": name, "class": cls, "frames": len(ids),
                         "sessions": len(sessions),
                         "objects": int(sum((f.labels == c).sum() for f in frames)),
                         "tracks": len(tracks)})  # fmt: skip
    return pd.DataFrame(rows)


def model_of(ensemble: Ensemble, member: int = -1) -> Any:
    """``member = -1``: the ensemble as one detector (mean heatmaps); else that member."""
    if member == -1:
        return ensemble
    if not 0 <= member < len(ensemble):
        raise ConfigError(f"member {member} is not in the ensemble (0..{len(ensemble) - 1}, or -1)")
    return ensemble.members[member]


def evaluation_rows(
    model: Any, dataset: Dataset, batch_size: int = 32, classes: Sequence[str] = CLASSES
) -> pd.DataFrame:
    """COCO metrics of ``model`` (detecting ``classes``) on ``dataset``:
    ``class | metric | value | n_gt``."""
    return result_rows(evaluate_model(model, dataset, batch_size=batch_size, classes=classes))


def result_rows(result: EvalResult) -> pd.DataFrame:
    """An evaluation's per-class metrics as tidy rows: ``class | metric | value | n_gt``."""
    table = result.table
    rows = [
        (cls, metric, float(table.at[cls, column]), int(table.at[cls, count]))
        for cls in table.index
        for metric, (column, count) in METRICS.items()
    ]
    return pd.DataFrame(rows, columns=list(COLUMNS[1:]))


def evaluation_table(
    model: Any, sets: Mapping[str, Dataset], batch_size: int = 32, classes: Sequence[str] = CLASSES
) -> pd.DataFrame:
    """``evaluation_rows`` on every test set, with a ``test_set`` column first."""
    parts = [
        evaluation_rows(model, d, batch_size, classes).assign(test_set=n) for n, d in sets.items()
    ]
    return pd.concat(parts, ignore_index=True)[list(COLUMNS)]


def per_class_table(
    evaluation: pd.DataFrame, metrics: Sequence[str] = ("wMAP", "mAP_large", "mAP_medium")
) -> pd.DataFrame:
    """Wide view: rows = classes, columns = (test set, metric)."""
    part = evaluation[evaluation.metric.isin(metrics)]
    wide = part.pivot_table(
        index="class", columns=["test_set", "metric"], values="value", sort=False, dropna=False
    )
    return wide.reindex(columns=[(t, m) for t in dict.fromkeys(part.test_set) for m in metrics])


def evaluation_figure(evaluation: pd.DataFrame, metric: str = "wMAP") -> Figure:
    """Grouped bars of ``metric`` per class, one bar per test set."""
    if evaluation.empty:  # nothing evaluated (own data without a test set)
        fig = Figure(figsize=(4.0, 1.2))
        fig.text(0.5, 0.5, "no test set evaluated", ha="center", va="center")
        return fig
    part = evaluation[evaluation.metric == metric]
    if part.empty:
        raise ConfigError(
            f"no rows for metric {metric!r}; have {sorted(evaluation.metric.unique())}"
        )
    classes, sets = list(dict.fromkeys(part["class"])), list(dict.fromkeys(part.test_set))
    fig = Figure(figsize=(1.6 + 1.3 * len(classes), 3.0))
    ax = fig.subplots()
    width = 0.8 / len(sets)
    for i, name in enumerate(sets):
        values = part[part.test_set == name].set_index("class").value.reindex(classes)
        x = np.arange(len(classes)) + (i - (len(sets) - 1) / 2) * width
        ax.bar(x, values.to_numpy(), width, label=name)
    ax.set_xticks(np.arange(len(classes)), classes, rotation=15)
    ax.set_ylabel(metric)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


__all__ = [
    "METRICS",
    "TEST_SETS",
    "evaluation_figure",
    "evaluation_rows",
    "evaluation_table",
    "model_of",
    "per_class_table",
    "result_rows",
    "evaluation_set_ids",
    "evaluation_sets",
    "describe_test_sets",
]
