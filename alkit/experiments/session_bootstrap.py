"""Paired differences of AP@0.5 and wMAP@0.5 with a bootstrap down to the test sessions:
world seed -> pool block -> test sessions, AP recomputed on every resample.

``alkit.experiments.stats`` resamples replicates of a metric that was computed once on the
whole test set, so the test set's own sampling noise (which drives, which objects) is not in
its intervals. Here every evaluation keeps its matches (``alkit.evaluate.matches``), and each
resample:

1. draws world seeds with replacement;
2. inside each drawn world, draws its pool blocks with replacement;
3. inside each drawn block, draws that world's test sessions with replacement (a fresh draw for
   every drawn block) and recomputes, for both arms of a comparison on the same drawn
   sessions (paired), AP@0.5 and wMAP@0.5 with each test image counted as often as its
   session was drawn; a block's value is the mean over fine-tuning seeds of ``a - b``;

the statistic is the mean over drawn worlds of the mean over their drawn blocks. The point
estimate is the same statistic on the data as observed (every session once). The interval is
the percentile interval; verdicts follow ``stats.verdict``. A class without objects in the
test set has no AP and no row.

**Crossed** (``AnalysisPlan(crossed=True)``, the replicated experiment's design): every pool
block, fine-tuning seed and arm of a world is scored on the same test drives, so a resample
draws that world's test sessions **once** and shares the draw with every block, seed and arm
of the world (a world drawn twice gets two draws); inside each drawn block its fine-tuning
seeds are drawn with replacement too. The nested draw above (a fresh session draw per drawn
block) averages the test set's noise over the blocks, as if each block had its own test set,
and its interval is then too narrow by up to sqrt(blocks) (tested on a known answer).

**The plan fixed in advance** (``AnalysisPlan``): the primary comparisons (e.g. each
recommended acquisition vs RANDOM-night, every class of interest and metric of
``primary_metrics``) form one family, with Holm-adjusted intervals (``stats.holm``: the
j-th smallest bootstrap p-value's interval at level ``1 - alpha / (m - j)``); the other rows
are secondary, at ``level``. The equivalence margin of each class and metric is the smaller of
``margin`` and a quarter of the observed gain of ``margin_from`` (RANDOM-night over REFERENCE,
``stats.equivalence_margin``). Each bound carries its Monte-Carlo error
(``stats.quantile_mc_error``) and ``mc_flip`` says where the verdict changes within it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alkit.errors import ConfigError, DataError
from alkit.evaluate.matches import RANGES, sorted_metrics
from alkit.experiments.stats import (
    VERDICT_COLUMNS,
    bootstrap_p_value,
    comparison_name,
    equivalence_margin,
    holm,
    minimum_detectable_difference,
    quantile_mc_error,
    verdict,
    verdict_flips,
)

#: The metrics this bootstrap recomputes (AP at IoU 0.5; wMAP of the buckets' AP at IoU 0.5).
SESSION_METRICS = ("AP50", "wMAP50")
#: The verdict table's columns after ``VERDICT_COLUMNS``: the ``margin`` the verdict used,
#: ``primary`` (in the Holm family), the interval's ``level``, the bootstrap ``p_value`` and
#: Holm's ``p_holm`` (NaN for secondary rows), each bound's Monte-Carlo error and ``mc_flip``.
PLAN_COLUMNS = ("margin", "primary", "level", "p_value", "p_holm", "ci_low_mc", "ci_high_mc",
                "mc_flip")  # fmt: skip
#: ``power``'s columns.
POWER_COLUMNS = ("comparison", "class", "metric", "se", "mdd_80", "n_units", "n_replicates",
                 "sd_replicate", "mdd_80_replicate")  # fmt: skip


@dataclass(frozen=True)
class AnalysisPlan:
    """The analysis, fixed before the results are seen (see the module docstring).

    ``crossed``: test sessions drawn once per world and shared by its blocks, seeds and arms,
    fine-tuning seeds resampled (``False``: the nested draw, a fresh one per drawn block, as
    before). ``primary``: the comparisons ``(a, b)`` in the Holm family, each over every class
    and every metric of ``primary_metrics``. ``margin_from``: ``(a, b)`` whose observed gain
    sets the margin (``min(margin, margin_share * gain)`` per class and metric), e.g.
    ``("RANDOM-night", "REFERENCE")``; ``None``: ``margin`` as given. ``mc_z``: the
    Monte-Carlo error of a bound is the half-width of its ``mc_z`` order-statistic interval
    (1.96: about two standard errors)."""

    crossed: bool = False
    primary: tuple[tuple[str, str], ...] = ()
    primary_metrics: tuple[str, ...] = SESSION_METRICS
    margin_from: tuple[str, str] | None = None
    margin_share: float = 0.25
    mc_z: float = 1.96

    def __post_init__(self) -> None:
        unknown = [m for m in self.primary_metrics if m not in SESSION_METRICS]
        if unknown:
            raise ConfigError(f"primary_metrics {unknown} are not among {SESSION_METRICS}")


@dataclass(frozen=True)
class ClassMatches:
    """One evaluation's matches of one class, as arrays in descending score order:
    ``session`` ``(D,)`` test-session index of each detection, ``codes`` ``(4, D)`` per range
    of ``RANGES``; ``truth_session`` ``(G,)`` and ``truth_counts`` ``(4, G)``: objects per image."""

    session: np.ndarray
    codes: np.ndarray
    truth_session: np.ndarray
    truth_counts: np.ndarray

    @classmethod
    def of(cls, detections: pd.DataFrame, truth: pd.DataFrame, name: str,
           session_index: Mapping[int, int]) -> ClassMatches:  # fmt: skip
        d = detections[detections["class"] == name]
        d = d.iloc[np.argsort(-d.score.to_numpy(), kind="mergesort")]
        g = truth[truth["class"] == name]
        missing = set(d.image_id) - set(session_index) | set(g.image_id) - set(session_index)
        if missing:
            raise DataError(f"test images {sorted(missing)[:5]} have no test session")
        return cls(
            session=d.image_id.map(session_index).to_numpy(np.int64),
            codes=d[list(RANGES)].to_numpy(np.int8).T,
            truth_session=g.image_id.map(session_index).to_numpy(np.int64),
            truth_counts=g[list(RANGES)].to_numpy(float).T,
        )

    def metrics(self, session_weights: np.ndarray | None = None) -> np.ndarray:
        """``[AP50, wMAP50]``, each test session counted ``session_weights[s]`` times."""
        w = None if session_weights is None else session_weights[self.session]  # (D,)
        gw = 1.0 if session_weights is None else session_weights[self.truth_session]  # (G,)
        return sorted_metrics(self.codes, (self.truth_counts * gw).sum(axis=1), w)


@dataclass(frozen=True)
class SessionBootstrap:
    """``verdicts`` (``stats.VERDICT_COLUMNS`` then ``PLAN_COLUMNS``) and ``power``
    (``POWER_COLUMNS``): per comparison, class and metric the bootstrap standard error ``se``
    of the difference and ``mdd_80``, the smallest true difference this design detects with
    80% power at the 5% two-sided level, ``(z_0.975 + z_0.8) * se``
    (``stats.minimum_detectable_difference`` with the bootstrap standard error as the
    design's: world, replicate and, crossed, the shared test set's noise); beside it
    ``n_units`` (world seeds, the top-level units), ``n_replicates`` (world x block x
    fine-tuning seed), ``sd_replicate`` (ddof=1) of the replicates' differences on the whole
    test set, and ``mdd_80_replicate = 2.80 * sd_replicate / sqrt(n_replicates)``: what the
    replicates' own noise allows, without the test set's (shared by all of them, so more
    replicates do not shrink it) or the worlds' beyond it."""

    verdicts: pd.DataFrame
    power: pd.DataFrame


def session_bootstrap(
    matches: Mapping[tuple[str, int, int, int], tuple[pd.DataFrame, pd.DataFrame]],
    sessions: Mapping[int, Mapping[int, int]],
    comparisons: Sequence[tuple[str, str]],
    classes: Sequence[str],
    margin: float = 0.02,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    *,
    plan: AnalysisPlan = AnalysisPlan(),
) -> SessionBootstrap:
    """Verdicts (``stats.VERDICT_COLUMNS`` + ``PLAN_COLUMNS``, metrics ``SESSION_METRICS``)
    and power of ``comparisons`` from
    ``matches[(method, world_seed, pool_block, finetune_seed)] = (detections, truth)`` and
    ``sessions[world_seed] = {test image id: session id}`` (see the module docstring).

    ``plan`` is the analysis fixed in advance; the default is the nested draw with one
    ``margin``, no primary family, as before (the same verdicts, bit for bit). The
    replicated experiment's: ``AnalysisPlan(crossed=True, primary=[(arm, "RANDOM-night")
    for arm in recommended], margin_from=("RANDOM-night", "REFERENCE"))``, with
    ``("RANDOM-night", "REFERENCE")`` among ``comparisons`` or not (it is computed either
    way)."""
    comparisons = [tuple(c) for c in comparisons]
    primary = [tuple(c) for c in plan.primary]
    stray = [c for c in primary if c not in comparisons]
    if stray:
        raise ConfigError(f"primary comparisons {stray} are not among the comparisons")
    wanted = list(comparisons)
    if plan.margin_from is not None and tuple(plan.margin_from) not in wanted:
        wanted.append(tuple(plan.margin_from))
    keys = list(matches)
    worlds = sorted({k[1] for k in keys})
    index = {w: {img: i for i, img in enumerate(sorted(set(sessions[w].values())))}
             for w in worlds}  # fmt: skip
    image_session = {w: {img: index[w][s] for img, s in sessions[w].items()} for w in worlds}
    prepared = {
        (k, c): ClassMatches.of(*matches[k], c, image_session[k[1]]) for k in keys for c in classes
    }
    blocks = {w: sorted({k[2] for k in keys if k[1] == w}) for w in worlds}
    fts = {(w, b): sorted({k[3] for k in keys if k[1] == w and k[2] == b})
           for w in worlds for b in blocks[w]}  # fmt: skip
    for a, b in wanted:
        for w in worlds:
            for blk in blocks[w]:
                for f in fts[(w, blk)]:
                    for m in (a, b):
                        if (m, w, blk, f) not in matches:
                            raise DataError(f"no evaluation of {m} in world {w}, block {blk}, "
                                            f"fine-tuning seed {f}")  # fmt: skip
    methods = sorted({m for pair in wanted for m in pair})

    def unit(w: int, blk: int, weights: np.ndarray | None) -> dict[tuple[str, str], np.ndarray]:
        """Per (method, class): [AP50, wMAP50] averaged over the block's fine-tuning seeds."""
        return {
            (m, c): np.mean([prepared[((m, w, blk, f), c)].metrics(weights)
                             for f in fts[(w, blk)]], axis=0)
            for m in methods for c in classes
        }  # fmt: skip

    def statistic(draws: list[tuple[int, list[tuple[int, np.ndarray | None]]]]) -> np.ndarray:
        """(comparisons, classes, metrics) mean over worlds of the mean over their blocks."""
        out = np.zeros((len(wanted), len(classes), len(SESSION_METRICS)))
        for w, drawn in draws:
            per_world = np.zeros_like(out)
            for blk, weights in drawn:
                values = unit(w, blk, weights)
                for i, (a, b) in enumerate(wanted):
                    for j, c in enumerate(classes):
                        per_world[i, j] = per_world[i, j] + values[(a, c)] - values[(b, c)]
            out += per_world / len(drawn)
        return out / len(draws)

    def crossed_world(w: int, weights: np.ndarray | None, drawn) -> np.ndarray:
        """(comparisons, classes, metrics) of one drawn world: every metric on the world's one
        session draw ``weights``; ``drawn``: (block, [fine-tuning seeds]) pairs."""
        cache: dict[tuple[str, int, int, str], np.ndarray] = {}

        def value(m: str, blk: int, f: int, c: str) -> np.ndarray:
            if (m, blk, f, c) not in cache:
                cache[(m, blk, f, c)] = prepared[((m, w, blk, f), c)].metrics(weights)
            return cache[(m, blk, f, c)]

        out = np.zeros((len(wanted), len(classes), len(SESSION_METRICS)))
        for blk, seeds in drawn:
            for i, (a, b) in enumerate(wanted):
                for j, c in enumerate(classes):
                    d = [value(a, blk, f, c) - value(b, blk, f, c) for f in seeds]
                    out[i, j] += np.mean(d, axis=0) / len(drawn)
        return out

    observed = statistic([(w, [(b, None) for b in blocks[w]]) for w in worlds])
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n_resamples):
        if plan.crossed:
            total = np.zeros_like(observed)
            drawn_worlds = rng.choice(worlds, len(worlds))
            for w in (int(x) for x in drawn_worlds):
                n_sessions = len(index[w])
                weights = np.bincount(rng.integers(0, n_sessions, n_sessions),
                                      minlength=n_sessions).astype(float)  # fmt: skip
                drawn = [(int(b), [int(f) for f in rng.choice(fts[(w, int(b))],
                                                              len(fts[(w, int(b))]))])
                         for b in rng.choice(blocks[w], len(blocks[w]))]  # fmt: skip
                total += crossed_world(w, weights, drawn)
            samples.append(total / len(drawn_worlds))
            continue
        draws = []
        for w in rng.choice(worlds, len(worlds)):
            n_sessions = len(index[int(w)])
            drawn = [
                (int(b), np.bincount(rng.integers(0, n_sessions, n_sessions),
                                     minlength=n_sessions).astype(float))
                for b in rng.choice(blocks[int(w)], len(blocks[int(w)]))
            ]  # fmt: skip
            draws.append((int(w), drawn))
        samples.append(statistic(draws))
    samples = np.stack(samples)  # (n_resamples, comparisons, classes, metrics)
    se = np.nanstd(samples, axis=0, ddof=1)
    replicates = [(w, blk, f) for w in worlds for blk in blocks[w] for f in fts[(w, blk)]]
    per_replicate = np.zeros((len(replicates), *observed.shape))  # (R, comparisons, C, metrics)
    for n, r in enumerate(replicates):
        for i, (a, b) in enumerate(wanted):
            for j, c in enumerate(classes):
                per_replicate[n, i, j] = (prepared[((a, *r), c)].metrics()
                                          - prepared[((b, *r), c)].metrics())  # fmt: skip

    def margin_of(j: int, k: int) -> float:
        if plan.margin_from is None:
            return margin
        gain = observed[wanted.index(tuple(plan.margin_from)), j, k]
        if not np.isfinite(gain):
            return float("nan")
        return equivalence_margin(float(gain), margin, plan.margin_share)

    cells = [(i, j, k) for i in range(len(comparisons)) for j in range(len(classes))
             for k in range(len(SESSION_METRICS))]  # fmt: skip
    finite = {cell: np.isfinite(observed[cell]) and np.isfinite(samples[(slice(None), *cell)]).any()
              for cell in cells}  # fmt: skip
    family = [cell for cell in cells if finite[cell] and comparisons[cell[0]] in primary
              and SESSION_METRICS[cell[2]] in plan.primary_metrics]  # fmt: skip
    p_values = {cell: bootstrap_p_value(samples[(slice(None), *cell)]) for cell in cells
                if finite[cell]}  # fmt: skip
    adjusted = holm([p_values[c] for c in family], 1.0 - level)
    cell_level = {cell: float(adjusted.level[n]) for n, cell in enumerate(family)}
    cell_holm = {cell: float(adjusted.p_adjusted[n]) for n, cell in enumerate(family)}
    rows, power = [], []
    for i, j, k in cells:
        a, b = comparisons[i]
        c, metric = classes[j], SESSION_METRICS[k]
        if not finite[(i, j, k)]:
            continue  # the class has no object in the test set
        s_ijk = samples[:, i, j, k]
        at = cell_level.get((i, j, k), level)
        tail = (1.0 - at) / 2
        lo, hi = (float(v) for v in np.nanpercentile(s_ijk, [tail * 100, 100 - tail * 100]))
        lo_mc = quantile_mc_error(s_ijk, tail, plan.mc_z)
        hi_mc = quantile_mc_error(s_ijk, 1 - tail, plan.mc_z)
        m_ijk = margin_of(j, k)
        v = verdict(lo, hi, m_ijk) if np.isfinite(m_ijk) else "inconclusive"
        flips = verdict_flips(lo, hi, lo_mc, hi_mc, m_ijk) if np.isfinite(m_ijk) else True
        p_holm = cell_holm.get((i, j, k), float("nan"))
        rows.append([comparison_name(a, b), c, metric, float(observed[i, j, k]), lo, hi, v,
                     m_ijk, (i, j, k) in cell_level, at, p_values[(i, j, k)], p_holm,
                     lo_mc, hi_mc, bool(flips)])  # fmt: skip
        reps = per_replicate[:, i, j, k]
        reps = reps[np.isfinite(reps)]
        sd = float(np.std(reps, ddof=1)) if len(reps) > 1 else float("nan")
        mdd_rep = minimum_detectable_difference(sd, len(reps)) if np.isfinite(sd) else sd
        power.append([comparison_name(a, b), c, metric, float(se[i, j, k]),
                      minimum_detectable_difference(float(se[i, j, k]), 1), len(worlds),
                      len(reps), sd, mdd_rep])  # fmt: skip
    return SessionBootstrap(
        verdicts=pd.DataFrame(rows, columns=[*VERDICT_COLUMNS, *PLAN_COLUMNS]),
        power=pd.DataFrame(power, columns=list(POWER_COLUMNS)),
    )


__all__ = [
    "PLAN_COLUMNS",
    "POWER_COLUMNS",
    "SESSION_METRICS",
    "AnalysisPlan",
    "ClassMatches",
    "SessionBootstrap",
    "session_bootstrap",
]
