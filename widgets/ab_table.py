"""ABTable: the seed's A/B results table (best value per column in bold) and its bar chart.

Input is tidy, one row per (method, class, metric)::

    method | class | metric | mean | std        (+ optional test_set)

Metric names ending in ``%`` are relative improvements over REFERENCE in percent (e.g.
``"wMAP Δ%"``); others are absolute values (``"mAP_large"``). ``ab_tidy_from_summary``
turns ``alkit.experiments.tables.summary_table`` output into this shape.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import ipywidgets as widgets
import numpy as np
import pandas as pd
import traitlets
from matplotlib.figure import Figure

from alkit.errors import ConfigError
from alkit.experiments.tables import METHOD_COLORS, METHOD_ORDER, REFERENCE

from .render import figure_to_png

REQUIRED_COLUMNS = ("method", "class", "metric", "mean")
#: Suffix of relative-improvement metrics made by ``ab_tidy_from_summary``.
RELATIVE_SUFFIX = " Δ%"


def is_relative(metric: str) -> bool:
    """Whether a metric is a relative improvement in percent (its name ends in ``%``)."""
    return str(metric).endswith("%")


def _order(values: Sequence[str], first: Sequence[str] = ()) -> list[str]:
    present = list(dict.fromkeys(values))
    return [v for v in first if v in present] + [v for v in present if v not in first]


def check_ab_frame(df: pd.DataFrame, test_set: str | None = None) -> pd.DataFrame:
    """Validate a tidy A/B frame and select one test set; returns the rows to show.

    Raises ``ConfigError`` for missing columns, non-numeric values, duplicated rows, or
    several test sets without ``test_set``.
    """
    if not isinstance(df, pd.DataFrame):
        raise ConfigError(f"A/B results must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ConfigError(
            f"A/B results lack columns {missing}; need {list(REQUIRED_COLUMNS)} (+ std)"
        )
    if "test_set" in df.columns:
        sets = list(dict.fromkeys(df.test_set))
        if test_set is None and len(sets) > 1:
            raise ConfigError(f"A/B results hold test sets {sets}; pass test_set=")
        if test_set is not None:
            if test_set not in sets:
                raise ConfigError(f"no test set {test_set!r} in the A/B results; have {sets}")
            df = df[df.test_set == test_set]
    elif test_set is not None:
        raise ConfigError(f"test_set={test_set!r} given but the A/B results have no test_set")
    if df.empty:
        raise ConfigError("A/B results are empty")
    for column in ("mean", "std"):
        if column in df.columns and not pd.api.types.is_numeric_dtype(df[column]):
            raise ConfigError(f"A/B column {column!r} must be numeric, got {df[column].dtype}")
    dup = df[df.duplicated(["method", "class", "metric"])]
    if len(dup):
        rows = list(zip(dup.method, dup["class"], dup.metric, strict=True))[:5]
        raise ConfigError(f"A/B results repeat (method, class, metric) rows: {rows}")
    return df


def ab_pivot(df: pd.DataFrame, test_set: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(means, stds)``: rows = methods (AL, MANUAL, RANDOM, METADATA, others, REFERENCE
    last), columns = ``(class, metric)`` grouped by class, classes and metrics in first-seen
    order; std NaN when absent."""
    df = check_ab_frame(df, test_set)
    methods = _order(df.method, METHOD_ORDER)
    methods = [m for m in methods if m != REFERENCE] + ([REFERENCE] if REFERENCE in methods else [])
    classes, metrics = list(dict.fromkeys(df["class"])), list(dict.fromkeys(df.metric))
    pairs = set(zip(df["class"], df.metric, strict=True))
    columns = [(c, m) for c in classes for m in metrics if (c, m) in pairs]  # grouped by class
    index = pd.MultiIndex.from_tuples(columns, names=["class", "metric"])
    means = df.pivot(index="method", columns=["class", "metric"], values="mean")
    means = means.reindex(index=methods, columns=index)
    if "std" in df.columns:
        stds = df.pivot(index="method", columns=["class", "metric"], values="std")
        stds = stds.reindex(index=methods, columns=index)
    else:
        stds = pd.DataFrame(np.nan, index=methods, columns=index)
    return means, stds


def best_methods(
    means: pd.DataFrame, lower_is_better: Sequence[str] = ()
) -> dict[tuple[str, str], set[str]]:
    """Per ``(class, metric)`` column, the method(s) with the best mean (ties all win);
    REFERENCE is not a candidate."""
    out: dict[tuple[str, str], set[str]] = {}
    for column in means.columns:
        values = means[column].drop(index=REFERENCE, errors="ignore").dropna()
        if values.empty:
            out[column] = set()
            continue
        best = values.min() if column[1] in lower_is_better else values.max()
        out[column] = set(values.index[values == best])
    return out


def _cell(mean: float, std: float, metric: str, show_spread: bool) -> str:
    if pd.isna(mean):
        return "–"
    text = f"{mean:+.1f}" if is_relative(metric) else f"{mean:.3f}"
    if show_spread and not pd.isna(std):
        text += f" ± {std:.1f}" if is_relative(metric) else f" ± {std:.3f}"
    return text


def ab_table_html(
    df: pd.DataFrame,
    test_set: str | None = None,
    show_spread: bool = True,
    lower_is_better: Sequence[str] = (),
) -> str:
    """The seed's table as HTML: rows = methods, columns grouped by class then metric, the
    best method per column in ``<b>``. Cells carry ``data-method``, ``data-class`` and
    ``data-metric`` attributes."""
    means, stds = ab_pivot(df, test_set)
    best = best_methods(means, lower_is_better)
    classes = list(dict.fromkeys(c for c, _ in means.columns))
    style = "border-collapse:collapse;font-size:12px"
    pad = "padding:2px 8px;text-align:right"
    head1 = "".join(
        f"<th colspan='{sum(1 for cc, _ in means.columns if cc == c)}' "
        f"style='{pad};text-align:center;border-bottom:1px solid #999'>{html.escape(c)}</th>"
        for c in classes
    )
    head2 = "".join(f"<th style='{pad}'>{html.escape(m)}</th>" for _, m in means.columns)
    rows = []
    for method in means.index:
        cells = []
        for c, m in means.columns:
            text = html.escape(_cell(means.at[method, (c, m)], stds.at[method, (c, m)], m,
                                     show_spread))  # fmt: skip
            if method in best[(c, m)]:
                text = f"<b>{text}</b>"
            attrs = (f"data-method='{html.escape(method)}' data-class='{html.escape(c)}' "
                     f"data-metric='{html.escape(m)}'")  # fmt: skip
            cells.append(f"<td {attrs} style='{pad}'>{text}</td>")
        name = html.escape(method)
        name = f"<i>{name}</i>" if method == REFERENCE else name
        rows.append(f"<tr><th style='{pad};text-align:left'>{name}</th>{''.join(cells)}</tr>")
    return (
        f"<table class='alkit-ab-table' style='{style}'>"
        f"<thead><tr><th></th>{head1}</tr><tr><th style='{pad}'>method</th>{head2}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def default_bar_metric(df: pd.DataFrame) -> str:
    """The first relative metric (name ending in ``%``), else the first metric."""
    metrics = list(dict.fromkeys(df.metric))
    return next((m for m in metrics if is_relative(m)), metrics[0])


def ab_bar_figure(
    df: pd.DataFrame, metric: str | None = None, test_set: str | None = None
) -> Figure:
    """Grouped bars: ``metric`` per class, one bar per method (REFERENCE left out), error
    bars = std. The default metric is the first relative one."""
    means, stds = ab_pivot(df, test_set)
    metrics = list(dict.fromkeys(m for _, m in means.columns))
    metric = default_bar_metric(df) if metric is None else metric
    if metric not in metrics:
        raise ConfigError(f"no metric {metric!r} in the A/B results; have {metrics}")
    columns = [col for col in means.columns if col[1] == metric]
    classes = [c for c, _ in columns]
    methods = [m for m in means.index if m != REFERENCE]
    fig = Figure(figsize=(1.6 + 1.4 * len(classes), 3.2))
    ax = fig.subplots()
    width = 0.8 / max(len(methods), 1)
    x = np.arange(len(classes))
    for i, method in enumerate(methods):
        ax.bar(
            x + (i - (len(methods) - 1) / 2) * width,
            means.loc[method, columns].to_numpy(dtype=float),
            width,
            yerr=np.nan_to_num(stds.loc[method, columns].to_numpy(dtype=float)),
            label=method,
            color=METHOD_COLORS.get(method),
            capsize=3,
        )
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x, classes)
    ax.set_ylabel(f"{metric} over REFERENCE" if is_relative(metric) else metric)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def ab_tidy_from_summary(
    summary: pd.DataFrame,
    metrics: Sequence[str] = ("wMAP", "mAP_large", "mAP_medium"),
    relative: Sequence[str] = ("wMAP",),
) -> pd.DataFrame:
    """``alkit.experiments.tables.summary_table`` output -> the tidy frame ``ABTable`` takes.

    Metrics in ``relative`` become ``"<metric> Δ%"`` = 100 x relative mean / std over splits
    (REFERENCE left out); the others keep their absolute ``value_mean`` / ``value_std``.
    """
    needed = ["method", "class", "metric", "value_mean", "value_std", "relative_mean",
              "relative_std"]  # fmt: skip
    missing = [c for c in needed if c not in summary.columns]
    if missing:
        raise ConfigError(f"summary table lacks columns {missing} (see summary_table)")
    keep = ["test_set"] if "test_set" in summary.columns else []
    parts = []
    for metric in metrics:
        rows = summary[summary.metric == metric]
        if metric in relative:
            rows = rows[rows.method != REFERENCE]
            parts.append(rows[[*keep, "method", "class"]].assign(
                metric=metric + RELATIVE_SUFFIX,
                mean=100 * rows.relative_mean, std=100 * rows.relative_std,
            ))  # fmt: skip
        else:
            parts.append(rows[[*keep, "method", "class"]].assign(
                metric=metric, mean=rows.value_mean, std=rows.value_std,
            ))  # fmt: skip
    if not parts or all(p.empty for p in parts):
        raise ConfigError(f"summary table has none of the metrics {list(metrics)}")
    return pd.concat(parts, ignore_index=True)


class ABTable(widgets.VBox):
    """The A/B table (HTML, best per column in bold) above its grouped bar chart (PNG).

    Args:
        results: tidy ``method, class, metric, mean[, std][, test_set]`` rows.
        test_set: the test set shown first, when the results hold several.
        bar_metric: metric of the bar chart (default: the first relative metric).
        lower_is_better: metrics where the smallest mean is best.
    """

    show_spread = traitlets.Bool(True)
    bar_metric = traitlets.Unicode()
    test_set = traitlets.Unicode(None, allow_none=True)

    def __init__(
        self,
        results: pd.DataFrame,
        test_set: str | None = None,
        bar_metric: str | None = None,
        show_spread: bool = True,
        lower_is_better: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.test_sets = (
            tuple(dict.fromkeys(results.test_set))
            if isinstance(results, pd.DataFrame) and "test_set" in results.columns
            else ()
        )
        if self.test_sets and test_set is None:
            test_set = self.test_sets[0]
        shown = check_ab_frame(results, test_set)
        self.results = results
        self.metrics = tuple(dict.fromkeys(shown.metric))
        self.lower_is_better = tuple(lower_is_better)
        self.test_set = test_set
        self.bar_metric = default_bar_metric(shown) if bar_metric is None else bar_metric
        self.show_spread = show_spread
        self.metric_dropdown = widgets.Dropdown(options=self.metrics, description="bars")
        self.spread_checkbox = widgets.Checkbox(description="± spread", indent=False)
        self.test_set_dropdown = widgets.Dropdown(
            options=self.test_sets or ("",), description="test set", disabled=not self.test_sets
        )
        for trait, control in (("bar_metric", self.metric_dropdown),
                               ("show_spread", self.spread_checkbox)):  # fmt: skip
            control.value = getattr(self, trait)
            traitlets.link((self, trait), (control, "value"))
        if self.test_sets:
            self.test_set_dropdown.value = self.test_set
            traitlets.link((self, "test_set"), (self.test_set_dropdown, "value"))
        self.table = widgets.HTML()
        self.image = widgets.Image(format="png")
        self.children = [
            widgets.HBox([self.test_set_dropdown, self.metric_dropdown, self.spread_checkbox]),
            self.table,
            self.image,
        ]
        self.observe(lambda _: self.refresh(), ["show_spread", "bar_metric", "test_set"])
        self.refresh()

    @traitlets.validate("bar_metric")
    def _valid_metric(self, proposal: dict) -> str:
        if proposal["value"] not in self.metrics:
            raise ConfigError(f"no metric {proposal['value']!r}; have {list(self.metrics)}")
        return proposal["value"]

    @traitlets.validate("test_set")
    def _valid_test_set(self, proposal: dict) -> str | None:
        value = proposal["value"]
        if self.test_sets and value not in self.test_sets:
            raise ConfigError(f"no test set {value!r}; have {list(self.test_sets)}")
        return value

    @property
    def html(self) -> str:
        """The table's HTML."""
        return self.table.value

    @property
    def png(self) -> bytes:
        """The bar chart's PNG bytes."""
        return bytes(self.image.value)

    def refresh(self) -> None:
        """Redraw the table and the chart from the current traits."""
        self.table.value = ab_table_html(
            self.results, self.test_set, self.show_spread, self.lower_is_better
        )
        self.image.value = figure_to_png(
            ab_bar_figure(self.results, self.bar_metric, self.test_set)
        )
