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


def test_crossed_draw_is_right_where_a_draw_per_block_is_too_narrow():
    # the known answer: six pool blocks (two fine-tuning seeds each) of one world, every one
    # scored on the same 400 test sessions with the same outcome (A finds every person, B
    # the even sessions' ones): the whole difference is the test set's, shared by every
    # block, so its sampling sd is that of one test set, sqrt(0.25 / n) (the binomial case
    # above), however many blocks there are. A fresh session draw per block averages six
    # independent test sets: sqrt(6) too narrow.
    from alkit.experiments.session_bootstrap import AnalysisPlan

    n, n_blocks = 400, 6
    a, b = _tables([True] * n), _tables([i % 2 == 0 for i in range(n)])
    matches = {(m, 0, blk, f): (a if m == "A" else b)
               for m in ("A", "B") for blk in range(n_blocks) for f in (0, 1)}  # fmt: skip
    sessions = {0: {i: i for i in range(n)}}
    args = (matches, sessions, [("A", "B")], ["person"])
    crossed = session_bootstrap(*args, n_resamples=400, plan=AnalysisPlan(crossed=True))
    nested = session_bootstrap(*args, n_resamples=400)
    truth = math.sqrt(0.25 / n)
    se_crossed = crossed.power.set_index("metric").loc["AP50", "se"]
    se_nested = nested.power.set_index("metric").loc["AP50", "se"]
    assert se_crossed == pytest.approx(truth, rel=0.15)
    assert se_nested == pytest.approx(truth / math.sqrt(n_blocks), rel=0.15)
    row = crossed.verdicts.set_index("metric").loc["AP50"]
    assert row.ci_high - row.ci_low == pytest.approx(2 * 1.96 * truth, rel=0.15)
    assert row["diff"] == pytest.approx(1 - 51 / 101)
    # every replicate has the same difference: no replicate-level noise at all
    power = crossed.power.set_index("metric").loc["AP50"]
    assert power.n_units == 1 and power.n_replicates == 12
    assert power.sd_replicate == pytest.approx(0.0, abs=1e-12)


def test_fine_tuning_seeds_are_resampled_in_the_crossed_draw():
    # one block, two fine-tuning seeds whose B differs (even vs every third session found)
    # and a test set of one session each per image: resampling the seeds adds their spread
    from alkit.experiments.session_bootstrap import AnalysisPlan

    n = 300
    a = _tables([True] * n)
    b0, b1 = _tables([i % 2 == 0 for i in range(n)]), _tables([i % 3 == 0 for i in range(n)])
    same = {("A", 0, 0, 0): a, ("A", 0, 0, 1): a, ("B", 0, 0, 0): b0, ("B", 0, 0, 1): b0}
    differ = {**same, ("B", 0, 0, 1): b1}
    sessions = {0: {i: i for i in range(n)}}
    plan = AnalysisPlan(crossed=True)
    se = {}
    for name, m in (("same", same), ("differ", differ)):
        out = session_bootstrap(m, sessions, [("A", "B")], ["person"], n_resamples=400, plan=plan)
        se[name] = out.power.set_index("metric").loc["AP50", "se"]
    # seeds' AP(B) 51/101 and 34/101: resampling 2 seeds adds sd (17/101) / 2 / sqrt(2)
    seed_sd = (17 / 101) / 2 / math.sqrt(2)
    assert se["differ"] > 1.5 * se["same"]
    assert se["differ"] ** 2 == pytest.approx(se["same"] ** 2 + seed_sd**2, rel=0.3)


def test_holm_margin_from_random_gain_and_monte_carlo_flags():
    from alkit.experiments.session_bootstrap import PLAN_COLUMNS, AnalysisPlan

    n = 400
    found = {
        "REF": [i % 2 == 0 for i in range(n)],  # AP 51/101
        "R": [i % 2 == 0 or i % 20 == 1 for i in range(n)],  # recall 0.55: AP 56/101
        "A": [i % 4 != 3 for i in range(n)],  # recall 0.75
        "C": [i % 2 == 0 or i % 40 == 1 for i in range(n)],  # recall 0.525
    }
    matches = {(m, 0, 0, 0): _tables(f) for m, f in found.items()}
    sessions = {0: {i: i // 4 for i in range(n)}}  # 100 sessions of 4 images
    plan = AnalysisPlan(crossed=True, primary=[("A", "R"), ("C", "R")],
                        margin_from=("R", "REF"))  # fmt: skip
    comparisons = [("A", "R"), ("C", "R"), ("A", "REF")]
    out = session_bootstrap(matches, sessions, comparisons, ["person"], n_resamples=800,
                            plan=plan).verdicts  # fmt: skip
    assert list(out.columns[-len(PLAN_COLUMNS) :]) == list(PLAN_COLUMNS)
    assert "R vs REF" not in set(out.comparison)  # used for the margin, not reported
    # margin: a quarter of R's gain over REF, (56 - 51) / 101 / 4 = 0.0124 < 0.02
    assert out.margin.to_numpy() == pytest.approx(5 / 101 / 4)
    # the family: 2 comparisons x 2 metrics, Holm levels among 1 - 0.05 / (4, 3, 2, 1)
    primary = out[out.primary]
    assert len(primary) == 4 and set(out[~out.primary].comparison) == {"A vs REF"}
    allowed = [1 - 0.05 / k for k in (4, 3, 2, 1)]
    assert all(min(abs(lv - x) for x in allowed) < 1e-12 for lv in primary.level)
    assert (out[~out.primary].level == 0.95).all() and out[~out.primary].p_holm.isna().all()
    assert (primary.p_holm >= primary.p_value - 1e-12).all()
    a_row = primary[(primary.comparison == "A vs R") & (primary.metric == "AP50")].iloc[0]
    assert a_row.verdict == "win" and a_row.level == pytest.approx(1 - 0.05 / 4)
    assert (out.ci_low_mc >= 0).all() and (out.ci_low_mc.iloc[:2] > 0).all()  # AP is a step
    # a Holm interval is wider than the same comparison's interval at 0.95 would be
    plain = session_bootstrap(matches, sessions, comparisons, ["person"], n_resamples=800,
                              plan=AnalysisPlan(crossed=True)).verdicts  # fmt: skip
    key = (plain.comparison == "A vs R") & (plain.metric == "AP50")
    assert a_row.ci_high - a_row.ci_low > float((plain[key].ci_high - plain[key].ci_low).iloc[0])
    with pytest.raises(Exception, match="not among the comparisons"):
        session_bootstrap(matches, sessions, [("A", "R")], ["person"], n_resamples=5,
                          plan=AnalysisPlan(primary=[("C", "R")]))  # fmt: skip
