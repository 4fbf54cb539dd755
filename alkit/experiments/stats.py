"""The powered experiment's statistics: paired hierarchical bootstrap, pre-registered verdicts,
power, and the reliability of the ensemble's frame scores.

Results come as tidy rows, one per evaluation of one arm (as ``tables.RESULT_COLUMNS``)::

    method | <level columns, top first> | class | metric | value

e.g. ``levels = ["world_seed", "pool_block", "finetune_seed"]`` (optionally ``test_session``
last, with per-session metric values). Two arms are *paired* on the level columns: the
difference ``value(a) - value(b)`` is taken row by row for the same world, pool block,
fine-tuning seed (and session). Differences are absolute (AP points as fractions: 0.02 is two
AP points), never relative.

**What is resampled** (``paired_bootstrap``): the top level's units with replacement; then,
inside each drawn unit, its units of the next level with replacement, independently for every
draw (a unit drawn twice gets two independent resamples of its sub-units); and so on down to
the rows. Each unit's value is the mean of its sub-units' values, so the statistic is the
*mean of means* down the hierarchy (for a balanced design, the plain mean of the paired
differences). The confidence interval is the percentile interval of that statistic over
``n_resamples`` resamples.

Resampling every level is conservative: a unit's mean already carries its sub-units' noise,
and resampling the sub-units adds it again. With all the variance at the rows of a two-level
design the interval is about sqrt(2) too wide (tested); with the variance between top-level
units, as in a replicated experiment where worlds differ, it is about right.
``BootstrapConfig.resample_depth=1`` resamples the top level only (the cluster bootstrap,
nearly unbiased when there are enough top-level units, too narrow with very few).

**AP over test sessions**: AP is not a mean over frames, so resampling test sessions properly
means recomputing AP from the detections of the drawn sessions: that is
``alkit.experiments.session_bootstrap`` (the replicated experiment's verdicts). This module
takes one metric value per replicate, so test-set sampling noise is not in its intervals (the
A/B demo's ``ab_verdicts`` says so).

**Verdicts** (fixed in advance, applied in this order to the interval ``[low, high]``):
``win`` if ``low > 0``; ``loss`` if ``high < 0``; ``equivalent`` if
``-margin <= low`` and ``high <= margin`` (default ``margin`` = 0.02 AP); else
``inconclusive``. An interval touching 0 is no win or loss; an interval inside ``(0, margin]``
is a ``win`` (the win/loss checks come first, as the issue orders them), and its small
``diff`` shows how small.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from alkit.errors import ConfigError, DataError

#: The issue's pre-registered comparisons (first arm minus second arm).
COMPARISONS: tuple[tuple[str, str], ...] = (
    ("AL", "RANDOM-night"),
    ("AL", "MANUAL"),
    ("AL", "COUNT"),
    ("AL-div", "AL"),
    ("AL", "METADATA"),
)
VERDICTS = ("win", "loss", "equivalent", "inconclusive")
VERDICT_COLUMNS = ("comparison", "class", "metric", "diff", "ci_low", "ci_high", "verdict")
VERDICT_COLORS = {"win": "#2ca02c", "loss": "#d62728", "equivalent": "#1f77b4",
                  "inconclusive": "#7f7f7f"}  # fmt: skip
#: Leaf slots drawn at once (memory of one chunk of resamples: about 40 bytes per slot).
_CHUNK_SLOTS = 1_000_000


@dataclass(frozen=True)
class BootstrapConfig:
    """``level`` of the percentile interval, ``n_resamples`` and the ``seed`` of the draws
    (the same seed and data give the same interval, bit for bit). ``resample_depth``: how many
    levels, from the top, are resampled; deeper levels are kept as observed (their units'
    mean enters every resample). ``None``: every level (the default, see the module
    docstring on why this is conservative); ``1``: the plain cluster bootstrap of the top
    level."""

    level: float = 0.95
    n_resamples: int = 2000
    seed: int = 0
    resample_depth: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.level < 1:
            raise ConfigError(f"level must be in (0, 1), got {self.level}")
        if self.n_resamples < 1:
            raise ConfigError(f"n_resamples must be >= 1, got {self.n_resamples}")
        if self.resample_depth is not None and self.resample_depth < 1:
            raise ConfigError(f"resample_depth must be >= 1 or None, got {self.resample_depth}")


@dataclass(frozen=True)
class PairedDifference:
    """``diff`` (mean of means of ``a - b``), its interval ``[ci_low, ci_high]`` and the
    number of top-level units ``n_units`` it rests on."""

    diff: float
    ci_low: float
    ci_high: float
    n_units: int


def comparison_name(a: str, b: str) -> str:
    """``"AL vs RANDOM-night"``: the difference ``a - b``."""
    return f"{a} vs {b}"


def paired_differences(table: pd.DataFrame, a: str, b: str, levels: Sequence[str]) -> pd.DataFrame:
    """``levels`` columns + ``diff`` = value of ``a`` - value of ``b``, one row per replicate.

    ``table`` has ``method``, the ``levels`` columns and ``value`` (one class and metric).
    Raises ``DataError`` naming the replicates where an arm is missing, duplicated (a level
    column is missing from ``levels``) or not finite.
    """
    levels = list(levels)
    _check_levels(table, levels, "method", "value")
    arms = {}
    for arm in (a, b):
        rows = table[table.method == arm]
        if rows.empty:
            raise DataError(
                f"no results for method {arm!r}; methods: {sorted(table.method.unique())}"
            )
        dup = rows[rows.duplicated(levels, keep=False)]
        if len(dup):
            first = _replicate(levels, tuple(dup[levels].iloc[0]))
            raise DataError(
                f"method {arm!r} has several rows for replicate {first}: add the column that "
                "tells them apart to levels, or select one class, metric and test set first"
            )
        arms[arm] = rows.set_index(levels).value.astype(np.float64)
    for one, other in ((a, b), (b, a)):
        lone = arms[one].index.difference(arms[other].index)
        if len(lone):
            key = _replicate(levels, lone[0])
            raise DataError(
                f"replicate {key}: {one!r} has a result but {other!r} has none to pair with "
                f"({len(lone)} such replicates)"
            )
    both = pd.concat({"a": arms[a], "b": arms[b]}, axis=1, join="inner")
    diff = (both.a - both.b).rename("diff")
    bad = diff[~np.isfinite(diff.to_numpy())]
    if len(bad):
        key = _replicate(levels, bad.index[0])
        raise DataError(
            f"replicate {key}: difference {a} - {b} is not finite ({len(bad)} such); drop "
            "replicates without a value (e.g. sessions where the class has no object) first"
        )
    return diff.reset_index().sort_values(levels, kind="stable").reset_index(drop=True)


def _replicate(levels: list[str], key) -> dict:
    """``{level: value}`` of one replicate's index key, with plain Python values."""
    values = key if isinstance(key, tuple) else (key,)
    plain = [v.item() if isinstance(v, np.generic) else v for v in values]
    return dict(zip(levels, plain, strict=True))


def _check_levels(table: pd.DataFrame, levels: list[str], *needed: str) -> None:
    if not levels:
        raise ConfigError("levels must name at least one replicate column, top level first")
    missing = [c for c in (*needed, *levels) if c not in table.columns]
    if missing:
        raise ConfigError(f"results table lacks columns {missing}; it has {list(table.columns)}")
    if table.empty:
        raise DataError("the results table is empty: nothing to compare")
    blank = [c for c in levels if table[c].isna().any()]
    if blank:
        raise DataError(f"replicate columns {blank} have missing values")


def _tree(diffs: pd.DataFrame, levels: list[str]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per depth d = 1..L: ``start[d-1][p]`` and ``count[d-1][p]``, the contiguous children of
    node ``p`` of depth d-1 among the (sorted) nodes of depth d. Leaves are the rows."""
    starts, counts = [], []
    parent = np.zeros(len(diffs), np.int64)  # depth 0: one root
    for d in range(1, len(levels) + 1):
        prefix = diffs[levels[:d]]
        new_node = np.ones(len(diffs), bool)
        new_node[1:] = (prefix.iloc[1:].to_numpy() != prefix.iloc[:-1].to_numpy()).any(axis=1)
        first_rows = np.flatnonzero(new_node)
        parent_of_node = parent[first_rows]  # nodes sorted, so siblings are contiguous
        n_parents = int(parent.max()) + 1
        count = np.bincount(parent_of_node, minlength=n_parents)
        starts.append(np.concatenate([[0], np.cumsum(count)[:-1]]))
        counts.append(count)
        parent = np.cumsum(new_node) - 1
    return starts, counts


def _resample_means(
    values: np.ndarray, starts: list[np.ndarray], counts: list[np.ndarray], n: int,
    rng: np.random.Generator, depth: int,
) -> np.ndarray:  # fmt: skip
    """``n`` hierarchical-bootstrap means of means of ``values`` (the leaves, in tree order),
    resampling the first ``depth`` levels."""
    nodes = np.zeros(n, np.int64)  # the node each slot holds; depth 0: n root slots
    parents, sizes = [], []
    for d, (start, count) in enumerate(zip(starts, counts, strict=True)):
        size = count[nodes]  # (S,) children per slot
        parent_slot = np.repeat(np.arange(len(nodes)), size)  # (S',)
        if d < depth:  # a child of each parent, drawn with replacement
            local = rng.integers(0, np.repeat(size, size))
        else:  # every child once, as observed
            local = np.arange(len(parent_slot)) - np.repeat(np.cumsum(size) - size, size)
        nodes = start[nodes][parent_slot] + local
        parents.append(parent_slot)
        sizes.append(size)
    means = values[nodes]  # (S_L,)
    for parent_slot, size in zip(reversed(parents), reversed(sizes), strict=True):
        means = np.bincount(parent_slot, weights=means, minlength=len(size)) / size
    return means  # (n,)


def _mean_of_means(diffs: pd.DataFrame, levels: list[str]) -> float:
    means = diffs
    for d in range(len(levels), 0, -1):
        means = means.groupby(levels[:d], sort=False, as_index=False)["diff"].mean()
    return float(means["diff"].mean())


def hierarchical_bootstrap(
    diffs: pd.DataFrame, levels: Sequence[str], config: BootstrapConfig = BootstrapConfig()
) -> PairedDifference:
    """The mean of means of ``diffs.diff`` and its percentile interval, resampling ``levels``
    (top first) as the module docstring says. ``diffs``: ``paired_differences``' output (or
    any table with the ``levels`` columns and a ``diff`` column)."""
    levels = list(levels)
    _check_levels(diffs, levels, "diff")
    diffs = diffs.sort_values(levels, kind="stable").reset_index(drop=True)
    if diffs.duplicated(levels).any():
        first = _replicate(levels, tuple(diffs[diffs.duplicated(levels)][levels].iloc[0]))
        raise DataError(f"several differences for replicate {first}: levels must identify rows")
    starts, counts = _tree(diffs, levels)
    values = diffs["diff"].to_numpy(np.float64)
    rng = np.random.default_rng(config.seed)
    depth = len(levels) if config.resample_depth is None else config.resample_depth
    per_chunk = max(1, _CHUNK_SLOTS // len(values))
    stats, done = [], 0
    while done < config.n_resamples:
        n = min(per_chunk, config.n_resamples - done)
        stats.append(_resample_means(values, starts, counts, n, rng, depth))
        done += n
    tail = (1 - config.level) / 2
    low, high = np.quantile(np.concatenate(stats), [tail, 1 - tail])
    return PairedDifference(
        _mean_of_means(diffs, levels), float(low), float(high), int(counts[0][0])
    )


def paired_bootstrap(
    table: pd.DataFrame,
    a: str,
    b: str,
    levels: Sequence[str],
    config: BootstrapConfig = BootstrapConfig(),
) -> PairedDifference:
    """``a - b`` paired on the ``levels`` columns, with its hierarchical bootstrap interval.

    ``table``: tidy results of one class and metric (``method``, ``levels``..., ``value``).
    """
    return hierarchical_bootstrap(paired_differences(table, a, b, levels), levels, config)


def verdict(ci_low: float, ci_high: float, margin: float = 0.02) -> str:
    """The pre-registered verdict on an interval, checked in this order: ``win`` if
    ``ci_low > 0``; ``loss`` if ``ci_high < 0``; ``equivalent`` if ``-margin <= ci_low`` and
    ``ci_high <= margin``; else ``inconclusive``."""
    if not (np.isfinite(ci_low) and np.isfinite(ci_high)):
        raise DataError(f"interval [{ci_low}, {ci_high}] is not finite")
    if ci_low > ci_high:
        raise DataError(f"interval [{ci_low}, {ci_high}] has its low end above its high end")
    if margin < 0:
        raise ConfigError(f"margin must be >= 0, got {margin}")
    if ci_low > 0:
        return "win"
    if ci_high < 0:
        return "loss"
    if -margin <= ci_low and ci_high <= margin:
        return "equivalent"
    return "inconclusive"


def verdicts_table(
    results: pd.DataFrame,
    levels: Sequence[str],
    comparisons: Sequence[tuple[str, str]] = COMPARISONS,
    margin: float = 0.02,
    config: BootstrapConfig = BootstrapConfig(),
) -> pd.DataFrame:
    """One row per comparison, class and metric: ``VERDICT_COLUMNS``.

    ``results``: tidy rows ``method, <levels>, class, metric, value`` of one test set (filter
    other columns first). ``comparisons``: ``(a, b)`` pairs, the difference being ``a - b``
    and the name ``"a vs b"``. Every cell uses the same ``config`` (its seed included), and
    the same ``margin`` for every metric (an AP-type one).
    """
    missing = [c for c in ("class", "metric") if c not in results.columns]
    if missing:
        raise ConfigError(f"results table lacks columns {missing}")
    rows = []
    for a, b in comparisons:
        for (cls, metric), cell in results.groupby(["class", "metric"], sort=False):
            d = paired_bootstrap(cell, a, b, levels, config)
            rows.append((comparison_name(a, b), cls, metric, d.diff, d.ci_low, d.ci_high,
                         verdict(d.ci_low, d.ci_high, margin)))  # fmt: skip
    return pd.DataFrame(rows, columns=list(VERDICT_COLUMNS))


def minimum_detectable_difference(
    sd: float, n: int, alpha: float = 0.05, power: float = 0.8
) -> float:
    """The smallest true mean difference a paired design detects with ``power`` at two-sided
    level ``alpha``: ``(z_{1-alpha/2} + z_{power}) * sd / sqrt(n)`` (normal approximation;
    with few replicates the t distribution would give a larger value).

    ``sd``: the standard deviation (ddof=1) of the ``n`` independent replicate differences
    (in a hierarchical design, one per top-level unit, averaged over its sub-units).
    0.05 and 0.8 give ``2.8016 * sd / sqrt(n)``.
    """
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    if sd < 0 or not np.isfinite(sd):
        raise DataError(f"sd must be finite and >= 0, got {sd}")
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ConfigError(f"alpha and power must be in (0, 1), got {alpha}, {power}")
    z = NormalDist()
    return (z.inv_cdf(1 - alpha / 2) + z.inv_cdf(power)) * sd / np.sqrt(n)


def equivalence_margin(random_gain: float, cap: float = 0.02, share: float = 0.25) -> float:
    """The equivalence margin fixed in advance: the smaller of ``cap`` (0.02 AP) and ``share``
    (a quarter) of RANDOM-night's gain over REFERENCE, ``random_gain`` (AP as a fraction).
    A gain <= 0 gives 0: where random labels move nothing, nothing can be shown equivalent."""
    if not np.isfinite(random_gain):
        raise DataError(f"RANDOM-night's gain must be finite, got {random_gain}")
    if cap < 0 or not 0 < share <= 1:
        raise ConfigError(f"cap must be >= 0 and share in (0, 1], got {cap}, {share}")
    return float(min(cap, max(0.0, share * random_gain)))


def bootstrap_p_value(samples: np.ndarray) -> float:
    """Two-sided bootstrap p-value of ``H0: difference = 0`` from resampled differences
    ``[n]`` (NaN ignored): ``2 * min(#(s <= 0) + 1, #(s >= 0) + 1) / (n + 1)``, at most 1. The
    percentile interval at level ``1 - alpha`` leaves out 0 about when this is below alpha."""
    s = np.asarray(samples, np.float64)
    s = s[np.isfinite(s)]
    if not s.size:
        return float("nan")
    tails = min(int((s <= 0).sum()), int((s >= 0).sum())) + 1
    return float(min(1.0, 2.0 * tails / (s.size + 1)))


@dataclass(frozen=True)
class Holm:
    """Holm's step-down over a family fixed in advance: per hypothesis (in the input order)
    ``p_adjusted`` (Holm's adjusted p-value) and ``level``, the confidence level of its
    interval: ``1 - alpha / (m - j)`` for the ``j``-th smallest p-value (0-based) up to the
    first one not rejected, and that one's level for every later one, so an interval leaves
    out 0 exactly where Holm rejects (up to the percentile/p-value correspondence)."""

    p_adjusted: np.ndarray
    level: np.ndarray
    rejected: np.ndarray


def holm(p_values: Sequence[float], alpha: float = 0.05) -> Holm:
    """Holm's procedure at family-wise level ``alpha`` for ``p_values`` ``[m]``."""
    p = np.asarray(p_values, np.float64)
    if p.ndim != 1 or not np.isfinite(p).all() or ((p < 0) | (p > 1)).any():
        raise DataError(f"p-values must be finite and in [0, 1], got {p_values}")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
    m = len(p)
    if m == 0:
        return Holm(np.zeros(0), np.zeros(0), np.zeros(0, bool))
    order = np.argsort(p, kind="mergesort")
    steps = m - np.arange(m)  # (m,) m, m-1, ..., 1
    sorted_adjusted = np.maximum.accumulate(np.minimum(1.0, steps * p[order]))
    rejected_sorted = p[order] <= alpha / steps
    first_kept = int(np.argmin(rejected_sorted)) if not rejected_sorted.all() else m
    rejected_sorted[first_kept:] = False
    alphas = alpha / steps[np.minimum(np.arange(m), min(first_kept, m - 1))]  # (m,) sorted
    adjusted, level, rejected = np.empty(m), np.empty(m), np.empty(m, bool)
    adjusted[order], level[order], rejected[order] = sorted_adjusted, 1 - alphas, rejected_sorted
    return Holm(adjusted, level, rejected)


def quantile_mc_error(samples: np.ndarray, q: float, z: float = 1.96) -> float:
    """The Monte-Carlo error of the ``q``-quantile of ``samples`` ``[n]`` (NaN ignored) as
    an estimate of the bootstrap distribution's quantile: half the width of its
    distribution-free ``z`` interval, the order statistics ``n q -+ z sqrt(n q (1 - q))``
    (with z = 1.96, about 1.96 standard errors)."""
    s = np.sort(np.asarray(samples, np.float64)[np.isfinite(samples)])
    n = s.size
    if n < 2 or not 0 < q < 1:
        return float("nan")
    half = z * np.sqrt(n * q * (1 - q))
    lo = int(np.clip(np.floor(n * q - half), 0, n - 1))
    hi = int(np.clip(np.ceil(n * q + half), 0, n - 1))
    return float((s[hi] - s[lo]) / 2)


def verdict_flips(
    ci_low: float, ci_high: float, low_error: float, high_error: float, margin: float
) -> bool:
    """Whether ``verdict`` changes for some bounds within their Monte-Carlo errors:
    ``low`` in ``ci_low -+ low_error``, ``high`` in ``ci_high -+ high_error`` (each range's
    ends and every verdict threshold inside it are tried)."""
    if not np.isfinite([low_error, high_error]).all():
        return True
    base = verdict(ci_low, ci_high, margin)
    lows = [ci_low - low_error, ci_low + low_error]
    highs = [ci_high - high_error, ci_high + high_error]
    lows += [t for t in (0.0, -margin) if lows[0] <= t <= lows[1]]
    highs += [t for t in (0.0, margin) if highs[0] <= t <= highs[1]]
    return any(verdict(lo, hi, margin) != base for lo in lows for hi in highs if lo <= hi)


@dataclass(frozen=True)
class SplitHalf:
    """``r_half``: Spearman's rank correlation between two halves' scores; ``r_full``: its
    Spearman-Brown correction ``2 r / (1 + r)``, the predicted correlation between two whole
    ensembles of the same size (assuming the halves are parallel: equally reliable)."""

    r_half: float
    r_full: float
    n_frames: int


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (Pearson's on average ranks, so ties are handled); NaN if
    either input is constant."""
    rx = pd.Series(np.asarray(x, np.float64)).rank().to_numpy()
    ry = pd.Series(np.asarray(y, np.float64)).rank().to_numpy()
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = np.sqrt((rx**2).sum() * (ry**2).sum())
    return float((rx * ry).sum() / denom) if denom > 0 else float("nan")


def split_half_correlation(half_a: np.ndarray, half_b: np.ndarray) -> SplitHalf:
    """How reliably the ensemble ranks frames: ``half_a`` and ``half_b`` are the frame scores
    ``[N]`` (e.g. mean MI of one class) computed by two disjoint halves of the ensemble's
    members on the same frames, in the same order. MI is a property of an ensemble, so each
    half scores as an ensemble of its own; the Spearman-Brown correction then predicts the
    whole ensemble's reliability from the halves' agreement."""
    a, b = np.asarray(half_a, np.float64), np.asarray(half_b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise DataError(f"the halves' scores must be two [N] arrays, got {a.shape} and {b.shape}")
    if len(a) < 3:
        raise DataError(f"need at least 3 frames for a rank correlation, got {len(a)}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise DataError("the halves' scores must be finite")
    r = spearman(a, b)
    full = 2 * r / (1 + r) if r > -1 else float("nan")
    return SplitHalf(r, full, len(a))


def differences_figure(verdicts: pd.DataFrame, margin: float = 0.02, level: float = 0.95) -> Figure:
    """Per metric (one panel each), every comparison and class's difference (dot, coloured by
    its verdict) with its ``level`` confidence interval (bar), a line at 0 and the ``+-margin``
    equivalence band shaded. ``verdicts``: ``verdicts_table``'s output."""
    missing = [c for c in VERDICT_COLUMNS if c not in verdicts.columns]
    if missing:
        raise ConfigError(f"verdicts table lacks columns {missing}")
    metrics = list(dict.fromkeys(verdicts.metric))
    rows = verdicts[["comparison", "class"]].drop_duplicates()
    labels = [f"{c} · {k}" for c, k in rows.itertuples(index=False)]
    fig = Figure(figsize=(3.6 * max(1, len(metrics)), 0.9 + 0.32 * len(labels)))
    axes = np.atleast_1d(fig.subplots(1, max(1, len(metrics)), sharey=True))
    for ax, metric in zip(axes, metrics, strict=False):
        ax.axvspan(-margin, margin, color="#1f77b4", alpha=0.12, lw=0)
        ax.axvline(0, color="black", lw=0.8)
        cell = verdicts[verdicts.metric == metric]
        for y, (comp, cls) in enumerate(rows.itertuples(index=False)):
            r = cell[(cell.comparison == comp) & (cell["class"] == cls)]
            if r.empty:
                continue
            r = r.iloc[0]
            color = VERDICT_COLORS.get(r.verdict, "black")
            ax.plot([r.ci_low, r.ci_high], [y, y], color=color, lw=2)
            ax.plot([r["diff"]], [y], "o", color=color, ms=5)
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel(f"difference (absolute), {level:.0%} CI")
    axes[0].set_yticks(range(len(labels)), labels, fontsize=8)
    axes[0].invert_yaxis()
    handles = [axes[0].plot([], [], "o", color=c, label=v)[0] for v, c in VERDICT_COLORS.items()]
    axes[-1].legend(handles=handles, fontsize=7, frameon=False, loc="upper left",
                    bbox_to_anchor=(1.0, 1.0))  # fmt: skip
    fig.tight_layout()
    return fig


__all__ = [
    "COMPARISONS",
    "VERDICTS",
    "VERDICT_COLUMNS",
    "BootstrapConfig",
    "Holm",
    "PairedDifference",
    "SplitHalf",
    "bootstrap_p_value",
    "comparison_name",
    "differences_figure",
    "equivalence_margin",
    "hierarchical_bootstrap",
    "holm",
    "minimum_detectable_difference",
    "paired_bootstrap",
    "paired_differences",
    "quantile_mc_error",
    "spearman",
    "split_half_correlation",
    "verdict",
    "verdict_flips",
    "verdicts_table",
]
