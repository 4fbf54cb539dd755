"""LearningCurve: a metric against the number of labelled frames, one line per method.

Input is the learning-curve table (``alkit.experiments.tables.CURVE_COLUMNS``: the rounds'
and the experiment's rounds' ``curves.csv``), of which it reads::

    method | round | labelled_frames | class | metric | value

Several rows for one (method, class, metric, labelled_frames) (CV splits, seeds) are
averaged and drawn with a +-1 std band.
"""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as widgets
import pandas as pd
import traitlets
from matplotlib.figure import Figure

from alkit.errors import ConfigError
from alkit.experiments.tables import METHOD_COLORS, METHOD_ORDER

from .render import figure_to_png

REQUIRED_COLUMNS = ("method", "round", "labelled_frames", "class", "metric", "value")


def check_curve_frame(df: pd.DataFrame) -> None:
    """Raise ``ConfigError`` unless ``df`` has the curve columns with numeric values."""
    if not isinstance(df, pd.DataFrame):
        raise ConfigError(f"learning curves must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ConfigError(f"learning curves lack columns {missing}; need {list(REQUIRED_COLUMNS)}")
    if df.empty:
        raise ConfigError("learning curves are empty")
    for column in ("round", "labelled_frames", "value"):
        if not pd.api.types.is_numeric_dtype(df[column]):
            raise ConfigError(f"column {column!r} must be numeric, got dtype {df[column].dtype}")


def curve_points(df: pd.DataFrame, class_name: str, metric: str) -> pd.DataFrame:
    """Mean, std and count of ``value`` per method and labelled-frame count for one class and
    metric, sorted by method then labelled frames; raises ``ConfigError`` if there are none."""
    check_curve_frame(df)
    rows = df[(df["class"] == class_name) & (df.metric == metric)]
    if rows.empty:
        raise ConfigError(
            f"no rows for class {class_name!r} and metric {metric!r}; classes: "
            f"{sorted(map(str, df['class'].unique()))}, "
            f"metrics: {sorted(map(str, df.metric.unique()))}"
        )
    out = rows.groupby(["method", "labelled_frames"], sort=True).agg(
        mean=("value", "mean"), std=("value", "std"), n=("value", "size"), round=("round", "max")
    )
    return out.reset_index()


def learning_curve_figure(
    df: pd.DataFrame, class_name: str, metric: str, methods: Sequence[str] | None = None
) -> Figure:
    """``metric`` of ``class_name`` against labelled frames, one line (with a std band where
    there are repeats) per method."""
    points = curve_points(df, class_name, metric)
    present = list(dict.fromkeys(points.method))
    order = [m for m in METHOD_ORDER if m in present] + [
        m for m in present if m not in METHOD_ORDER
    ]
    methods = order if methods is None else [m for m in order if m in methods]
    fig = Figure(figsize=(6.0, 3.4))
    ax = fig.subplots()
    for method in methods:
        line = points[points.method == method]
        x, y, s = line.labelled_frames, line["mean"], line["std"].fillna(0.0)
        color = METHOD_COLORS.get(method)
        ax.plot(x, y, marker="o", ms=4, label=method, color=color)
        if (line.n > 1).any():
            ax.fill_between(x, y - s, y + s, color=color, alpha=0.15, lw=0)
    ax.set_xlabel("labelled frames")
    ax.set_ylabel(f"{metric} ({class_name})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


class LearningCurve(widgets.VBox):
    """Learning curves per method with class and metric selectors.

    Args:
        curves: tidy ``method, round, labelled_frames, class, metric, value`` rows.
        class_name: class shown first (default: the first in the table).
        metric: metric shown first (default: ``"wMAP"`` if present, else the first).
    """

    class_name = traitlets.Unicode()
    metric = traitlets.Unicode()

    def __init__(
        self, curves: pd.DataFrame, class_name: str | None = None, metric: str | None = None
    ) -> None:
        super().__init__()
        check_curve_frame(curves)
        self.curves = curves
        self.classes = tuple(dict.fromkeys(map(str, curves["class"])))
        self.metrics = tuple(dict.fromkeys(map(str, curves.metric)))
        default_metric = "wMAP" if "wMAP" in self.metrics else self.metrics[0]
        self.class_name = self.classes[0] if class_name is None else class_name
        self.metric = default_metric if metric is None else metric
        self.class_dropdown = widgets.Dropdown(options=self.classes, description="class")
        self.metric_dropdown = widgets.Dropdown(options=self.metrics, description="metric")
        for trait, control in (("class_name", self.class_dropdown),
                               ("metric", self.metric_dropdown)):  # fmt: skip
            control.value = getattr(self, trait)
            traitlets.link((self, trait), (control, "value"))
        self.image = widgets.Image(format="png")
        self.children = [widgets.HBox([self.class_dropdown, self.metric_dropdown]), self.image]
        self.observe(lambda _: self.refresh(), ["class_name", "metric"])
        self.refresh()

    @traitlets.validate("class_name", "metric")
    def _valid_choice(self, proposal: dict) -> str:
        name = proposal["trait"].name
        known = self.classes if name == "class_name" else self.metrics
        if proposal["value"] not in known:
            raise ConfigError(f"unknown {name} {proposal['value']!r}; have {list(known)}")
        return proposal["value"]

    @property
    def png(self) -> bytes:
        """The chart's PNG bytes."""
        return bytes(self.image.value)

    def refresh(self) -> None:
        """Redraw for the current class and metric."""
        fig = learning_curve_figure(self.curves, self.class_name, self.metric)
        self.image.value = figure_to_png(fig)
