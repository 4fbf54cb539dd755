"""The test-session bootstrap against a case with a known sampling distribution."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from alkit.errors import DataError
from alkit.evaluate.matches import RANGES
from alkit.experiments.session_bootstrap import session_bootstrap


def _tables(found: list[bool]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One image per session with one small person; a detection (a TP) where ``found``."""
    codes = {"all": 1, "small": 1, "medium": -1, "large": -1}
    dets = pd.DataFrame([{"class": "person", "image_id": i, "score": 0.9, **codes}
                         for i, hit in enumerate(found) if hit],
                        columns=["class", "image_id", "score", *RANGES])  # fmt: skip
    truth = pd.DataFrame([{"class": "person", "image_id": i, "all": 1, "small": 1, "medium": 0,
                           "large": 0} for i in range(len(found))])  # fmt: skip
    return dets, truth


def test_ci_of_a_recall_difference_matches_the_binomial():
    # arm A finds every person, arm B half of them (no false positives): AP(A) = 1 and
    # AP(B) = (recall points <= p) / 101 with p the share of drawn sessions B finds, so the
    # difference's sampling distribution is that of 1 - p: sd = sqrt(0.25 / n)
    n = 400
    a, b = _tables([True] * n), _tables([i % 2 == 0 for i in range(n)])
    matches = {("A", 0, 0, 0): a, ("B", 0, 0, 0): b}
    sessions = {0: {i: i for i in range(n)}}
    boot = session_bootstrap(matches, sessions, [("A", "B")], ["person"], n_resamples=600)
    out = boot.verdicts
    row = out[out.metric == "AP50"].iloc[0]
    assert row["diff"] == pytest.approx(1 - 51 / 101)  # recall points 0, 0.01, ..., 0.5
    half = 1.96 * math.sqrt(0.25 / n)
    assert row.ci_low == pytest.approx(0.5 - half, abs=0.015)
    assert row.ci_high == pytest.approx(0.5 + half, abs=0.015)
    assert row.verdict == "win"
    se = boot.power.set_index("metric").loc["AP50", "se"]
    assert se == pytest.approx(math.sqrt(0.25 / n), rel=0.15)
    assert boot.power.set_index("metric").loc["AP50", "mdd_80"] == pytest.approx(
        2.8016 * se, rel=1e-4
    )
    wmap = out[out.metric == "wMAP50"].iloc[0]  # every object is small: wMAP = AP(small)
    assert wmap["diff"] == pytest.approx(row["diff"])


def test_identical_arms_are_equivalent_and_missing_evaluations_are_named():
    n = 50
    a = _tables([i % 3 == 0 for i in range(n)])
    matches = {(m, w, blk, 0): a for m in ("A", "B") for w in (0, 1) for blk in (0, 1)}
    sessions = {w: {i: i // 2 for i in range(n)} for w in (0, 1)}  # two images per session
    out = session_bootstrap(matches, sessions, [("A", "B")], ["person"], n_resamples=50).verdicts
    assert (out["diff"] == 0).all() and (out.ci_low == 0).all() and (out.ci_high == 0).all()
    assert set(out.verdict) == {"equivalent"}
    del matches[("B", 1, 1, 0)]
    with pytest.raises(DataError, match="no evaluation of B in world 1, block 1"):
        session_bootstrap(matches, sessions, [("A", "B")], ["person"], n_resamples=5)
