"""The A/B test's numbers: CV splits, relative improvement over REFERENCE, the seed's tables.

Raw results are one tidy row per evaluation::

    method | split | test_set | class | metric | value

with ``method`` in AL / MANUAL / RANDOM / METADATA / REFERENCE, ``split`` 0..n-1, ``test_set``
``global`` / ``night`` / ``manual``, ``metric`` e.g. ``wMAP``, ``mAP_large``, ``mAP_medium``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from alkit.data import storage
from alkit.errors import ConfigError

REFERENCE = "REFERENCE"
RESULT_COLUMNS = ("method", "split", "test_set", "class", "metric", "value")
METHOD_ORDER = ("AL", "AL-div", "MANUAL", "RANDOM", "RANDOM-night", "METADATA", "COUNT")
METHOD_COLORS = {
    "AL": "#d62728",
    "AL-div": "#ff7f0e",
    "MANUAL": "#1f77b4",
    "RANDOM": "#7f7f7f",
    "RANDOM-night": "#17becf",
    "METADATA": "#9467bd",
    "COUNT": "#8c564b",
}

#: The one learning-curve table (``curves.csv`` of the rounds and of the experiment's rounds;
#: what ``alkit_widgets.LearningCurve`` reads): per method and round, the labelled frames
#: (initial + new), the test set, class and metric, its ``value`` (mean over the replicates
#: where there are several) with ``n_gt``, the ``gain`` over round 0 and its 95% interval
#: (NaN where nothing was resampled: one world, one split), and the ``version`` the learner
#: trained on (empty where a row averages several).
CURVE_COLUMNS = ("method", "round", "labelled_frames", "new_frames", "test_set", "class",
                 "metric", "value", "n_gt", "gain", "ci_low", "ci_high", "version")  # fmt: skip


def cv_splits(
    frame_ids: Sequence[int],
    n_splits: int = 3,
    test_fraction: float = 0.1,
    seed: int = 0,
    sessions: Sequence[int] | None = None,
) -> list[tuple[list[int], list[int]]]:
    """``n_splits`` seeded random train/test splits of ``frame_ids`` (the seed's 3 x 90/10).

    Without ``sessions``, each split draws its own ``test_fraction`` of the frames (at least
    one) as the test part: the seed's split, which leaves near-duplicate neighbours of a test
    frame in training. With ``sessions`` (each frame's driving session, in ``frame_ids``'
    order), the test part is whole sessions, taken in a seeded random order until it holds at
    least ``test_fraction`` of the frames; at least one session, and never all of them. A
    selection from few sessions gets a larger test part (MANUAL's 3 sessions: about a third).
    """
    if sessions is not None and len(sessions) != len(frame_ids):
        raise ConfigError(f"{len(sessions)} sessions given for {len(frame_ids)} frames")
    ids = sorted(int(i) for i in frame_ids)
    if len(ids) < 2:
        raise ConfigError(f"need at least 2 frames to split, got {len(ids)}")
    if not 0 < test_fraction < 1:
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n_test = max(1, round(test_fraction * len(ids)))
    if sessions is not None:
        session_of = dict(zip(map(int, frame_ids), sessions, strict=True))
        return _session_splits(session_of, n_test, n_splits, seed)
    out = []
    for s in range(n_splits):
        rng = np.random.default_rng((seed, s))
        test = set(rng.choice(len(ids), size=n_test, replace=False).tolist())
        out.append(
            ([i for j, i in enumerate(ids) if j not in test], [ids[j] for j in sorted(test)])
        )
    return out


def _session_splits(
    session_of: dict[int, int], n_test: int, n_splits: int, seed: int
) -> list[tuple[list[int], list[int]]]:
    """Session-grouped splits (``cv_splits``): whole sessions until ``n_test`` frames."""
    names = sorted({int(s) for s in session_of.values()})
    if len(names) < 2:
        raise ConfigError(
            f"need frames of at least 2 driving sessions to split by session, got {names}"
        )
    sizes = pd.Series([int(s) for s in session_of.values()]).value_counts()
    out = []
    for s in range(n_splits):
        rng = np.random.default_rng((seed, s))
        held: set[int] = set()
        for j in rng.permutation(len(names)):
            if sizes[list(held)].sum() >= n_test or len(held) == len(names) - 1:
                break
            held.add(names[j])
        train = sorted(f for f, g in session_of.items() if int(g) not in held)
        test = sorted(f for f, g in session_of.items() if int(g) in held)
        out.append((train, test))
    return out


def _check(results: pd.DataFrame) -> None:
    missing = [c for c in RESULT_COLUMNS if c not in results.columns]
    if missing:
        raise ConfigError(f"results table lacks columns {missing}")


def relative_improvement(results: pd.DataFrame) -> pd.DataFrame:
    """Adds ``reference`` and ``relative`` = (value - reference) / reference per row.

    The reference is REFERENCE's value for the same split, test set, class and metric; rows
    whose reference is 0 or missing get NaN.
    """
    _check(results)
    keys = ["split", "test_set", "class", "metric"]
    ref = results[results.method == REFERENCE][[*keys, "value"]].rename(
        columns={"value": "reference"}
    )
    out = results[results.method != REFERENCE].merge(ref, on=keys, how="left")
    ok = out.reference.notna() & (out.reference != 0)
    out["relative"] = np.where(ok, (out.value - out.reference) / out.reference.where(ok), np.nan)
    return out


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread (std over splits) per method, test set, class and metric.

    Columns: ``value_mean``, ``value_std``, ``relative_mean``, ``relative_std``, ``n``.
    """
    rel = relative_improvement(results)
    groups = rel.groupby(["test_set", "class", "metric", "method"], sort=False)
    out = groups.agg(
        value_mean=("value", "mean"),
        value_std=("value", "std"),
        relative_mean=("relative", "mean"),
        relative_std=("relative", "std"),
        n=("value", "size"),
    ).reset_index()
    ref = results[results.method == REFERENCE].groupby(["test_set", "class", "metric"])
    ref_rows = ref.value.agg(["mean", "std", "size"]).reset_index()
    ref_rows = ref_rows.rename(columns={"mean": "value_mean", "std": "value_std", "size": "n"})
    ref_rows["method"] = REFERENCE
    return pd.concat([out, ref_rows], ignore_index=True)


#: REFERENCE values below this are "near zero": a relative change over them means nothing,
#: so tables show the absolute difference alone there (AP as a fraction: 5 points).
NEAR_ZERO = 0.05


def gain_ratio(
    summary: pd.DataFrame, numerator: str = "AL", denominator: str = "MANUAL"
) -> pd.DataFrame:
    """The seed's "AL gains N x more than MANUAL": ratio of mean relative improvements.

    One row per test set, class and metric; NaN where the denominator's gain is 0 or
    REFERENCE is near zero (``NEAR_ZERO``).
    """
    pivot = summary.pivot_table(
        index=["test_set", "class", "metric"],
        columns="method",
        values="relative_mean",
        dropna=False,
    )
    if numerator not in pivot or denominator not in pivot:
        raise ConfigError(f"summary lacks method {numerator!r} or {denominator!r}")
    ref = summary[summary.method == REFERENCE].set_index(["test_set", "class", "metric"])
    usable = ref.value_mean.reindex(pivot.index) >= NEAR_ZERO
    ratio = (pivot[numerator] / pivot[denominator].replace(0, np.nan)).where(usable)
    return ratio.rename(f"{numerator}/{denominator}").reset_index()


def seed_table(summary: pd.DataFrame, test_set: str, metrics: Sequence[str]) -> pd.DataFrame:
    """The seed's table for one test set: rows = methods, columns = (class, metric); REFERENCE's
    absolute value, and per method its absolute difference to REFERENCE with the relative
    improvement beside it ("+0.012 (+29.0% ± 3.1)", spread over the splits), the relative
    part left out where REFERENCE is near zero (``NEAR_ZERO``)."""
    part = summary[summary.test_set == test_set]
    ref = part[part.method == REFERENCE].set_index(["class", "metric"]).value_mean
    rows: dict[str, dict] = {}
    for _, r in part.iterrows():
        if r.metric not in metrics:
            continue
        if r.method == REFERENCE:
            text = f"{r.value_mean:.3f}"
        else:
            base = ref.get((r["class"], r.metric), np.nan)
            text = f"{r.value_mean - base:+.3f}"
            if base >= NEAR_ZERO:
                spread = 0.0 if pd.isna(r.relative_std) else 100 * r.relative_std
                text += f" ({100 * r.relative_mean:+.1f}% ± {spread:.1f})"
        rows.setdefault(r.method, {})[(r["class"], r.metric)] = text
    order = [m for m in (REFERENCE, *METHOD_ORDER) if m in rows]
    table = pd.DataFrame.from_dict(rows, orient="index").reindex(order)
    return table.reindex(columns=sorted(table.columns, key=lambda c: (c[0], metrics.index(c[1]))))


def relative_bar_figure(summary: pd.DataFrame, test_set: str, metric: str = "wMAP") -> Figure:
    """Grouped bars like the seed's: relative improvement over REFERENCE per class, one bar per
    method, error bars = spread over the splits."""
    part = summary[(summary.test_set == test_set) & (summary.metric == metric)]
    part = part[part.method != REFERENCE]
    classes = list(dict.fromkeys(part["class"]))
    methods = [m for m in METHOD_ORDER if m in set(part.method)]
    fig = Figure(figsize=(1.6 + 1.5 * len(classes), 3.2))
    ax = fig.subplots()
    width = 0.8 / max(len(methods), 1)
    for i, method in enumerate(methods):
        rows = part[part.method == method].set_index("class").reindex(classes)
        ax.bar(
            np.arange(len(classes)) + (i - (len(methods) - 1) / 2) * width,
            100 * rows.relative_mean.to_numpy(),
            width,
            yerr=100 * rows.relative_std.fillna(0).to_numpy(),
            label=method,
            color=METHOD_COLORS.get(method),
            capsize=3,
        )
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(np.arange(len(classes)), classes)
    ax.set_ylabel(f"relative {metric} over REFERENCE (%)")
    ax.set_title(f"{test_set} test set")
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def selection_figure(analysis: pd.DataFrame, classes: Sequence[str]) -> Figure:
    """Objects per class (grouped bars) and driving sessions per method, side by side.

    ``analysis``: one row per method with a count column per class and ``sessions``.
    """
    methods = [m for m in METHOD_ORDER if m in analysis.index] or list(analysis.index)
    fig = Figure(figsize=(9, 3.2))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    width = 0.8 / max(len(methods), 1)
    for i, method in enumerate(methods):
        counts = [analysis.loc[method, c] for c in classes]
        x = np.arange(len(classes)) + (i - (len(methods) - 1) / 2) * width
        left.bar(x, counts, width, label=method, color=METHOD_COLORS.get(method))
    left.set_xticks(np.arange(len(classes)), classes, rotation=15)
    left.set_ylabel("objects in selection")
    left.legend(fontsize=8, frameon=False, ncol=len(methods), loc="lower center",
                bbox_to_anchor=(0.5, 1.0))  # fmt: skip
    right.bar(methods, [analysis.loc[m, "sessions"] for m in methods],
              color=[METHOD_COLORS.get(m) for m in methods])  # fmt: skip
    right.set_ylabel("driving sessions")
    right.tick_params(axis="x", labelrotation=30, labelsize=8)
    fig.tight_layout()
    return fig


def write_csv_tables(out_dir: str | Path, tables: Mapping[str, pd.DataFrame]) -> None:
    """Each of ``tables`` as ``<out_dir>/<name>.csv`` (tidy, no index), written atomically."""
    for name, table in tables.items():
        storage.atomic_write_text(str(Path(out_dir) / f"{name}.csv"), table.to_csv(index=False))
