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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alkit.errors import DataError
from alkit.evaluate.matches import RANGES, sorted_metrics
from alkit.experiments.stats import (
    VERDICT_COLUMNS,
    comparison_name,
    minimum_detectable_difference,
    verdict,
)

#: The metrics this bootstrap recomputes (AP at IoU 0.5; wMAP of the buckets' AP at IoU 0.5).
SESSION_METRICS = ("AP50", "wMAP50")


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
    """``verdicts`` (``stats.VERDICT_COLUMNS``) and ``power``: per comparison, class and metric
    the bootstrap standard error ``se`` of the difference and ``mdd_80``, the smallest true
    difference this design detects with 80% power at the 5% two-sided level,
    ``(z_0.975 + z_0.8) * se`` (``stats.minimum_detectable_difference`` with the bootstrap
    standard error as the design's)."""

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
) -> SessionBootstrap:
    """Verdicts (``stats.VERDICT_COLUMNS``, metrics ``SESSION_METRICS``) and power of
    ``comparisons`` from
    ``matches[(method, world_seed, pool_block, finetune_seed)] = (detections, truth)`` and
    ``sessions[world_seed] = {test image id: session id}`` (see the module docstring)."""
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
    for a, b in comparisons:
        for w in worlds:
            for blk in blocks[w]:
                for f in fts[(w, blk)]:
                    for m in (a, b):
                        if (m, w, blk, f) not in matches:
                            raise DataError(f"no evaluation of {m} in world {w}, block {blk}, "
                                            f"fine-tuning seed {f}")  # fmt: skip
    methods = sorted({m for pair in comparisons for m in pair})

    def unit(w: int, blk: int, weights: np.ndarray | None) -> dict[tuple[str, str], np.ndarray]:
        """Per (method, class): [AP50, wMAP50] averaged over the block's fine-tuning seeds."""
        return {
            (m, c): np.mean([prepared[((m, w, blk, f), c)].metrics(weights)
                             for f in fts[(w, blk)]], axis=0)
            for m in methods for c in classes
        }  # fmt: skip

    def statistic(draws: list[tuple[int, list[tuple[int, np.ndarray | None]]]]) -> np.ndarray:
        """(comparisons, classes, metrics) mean over worlds of the mean over their blocks."""
        out = np.zeros((len(comparisons), len(classes), len(SESSION_METRICS)))
        for w, drawn in draws:
            per_world = np.zeros_like(out)
            for blk, weights in drawn:
                values = unit(w, blk, weights)
                for i, (a, b) in enumerate(comparisons):
                    for j, c in enumerate(classes):
                        per_world[i, j] = per_world[i, j] + values[(a, c)] - values[(b, c)]
            out += per_world / len(drawn)
        return out / len(draws)

    observed = statistic([(w, [(b, None) for b in blocks[w]]) for w in worlds])
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n_resamples):
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
    tail = (1.0 - level) / 2 * 100
    low, high = np.nanpercentile(samples, [tail, 100 - tail], axis=0)
    se = np.nanstd(samples, axis=0, ddof=1)
    rows, power = [], []
    for i, (a, b) in enumerate(comparisons):
        for j, c in enumerate(classes):
            for k, metric in enumerate(SESSION_METRICS):
                lo, hi = float(low[i, j, k]), float(high[i, j, k])
                if not np.isfinite([observed[i, j, k], lo, hi]).all():
                    continue  # the class has no object in the test set
                rows.append([comparison_name(a, b), c, metric, float(observed[i, j, k]), lo, hi,
                             verdict(lo, hi, margin)])  # fmt: skip
                power.append([comparison_name(a, b), c, metric, float(se[i, j, k]),
                              minimum_detectable_difference(float(se[i, j, k]), 1)])  # fmt: skip
    return SessionBootstrap(
        verdicts=pd.DataFrame(rows, columns=list(VERDICT_COLUMNS)),
        power=pd.DataFrame(power, columns=["comparison", "class", "metric", "se", "mdd_80"]),
    )


__all__ = ["SESSION_METRICS", "ClassMatches", "SessionBootstrap", "session_bootstrap"]
