"""A/B tables: CV splits, relative improvement, summaries, gain ratio, figures."""

import numpy as np
import pandas as pd
import pytest

from alkit.errors import ConfigError
from alkit.experiments.tables import (
    cv_splits,
    gain_ratio,
    relative_bar_figure,
    relative_improvement,
    seed_table,
    selection_figure,
    summary_table,
)


def test_cv_splits_are_seeded_disjoint_ninety_ten():
    ids = list(range(100, 200))
    splits = cv_splits(ids, n_splits=3, test_fraction=0.1, seed=4)
    assert splits == cv_splits(ids, n_splits=3, test_fraction=0.1, seed=4)
    tests = [set(t) for _, t in splits]
    for train, test in splits:
        assert len(test) == 10 and len(train) == 90
        assert not set(train) & set(test) and set(train) | set(test) == set(ids)
    assert tests[0] != tests[1]
    with pytest.raises(ConfigError):
        cv_splits([1], 3)


def test_session_splits_hold_out_whole_sessions():
    ids = list(range(100, 200))
    sessions = [i // 10 % 7 for i in ids]  # 7 sessions of 10-20 frames, interleaved
    splits = cv_splits(ids, n_splits=4, test_fraction=0.1, seed=1, sessions=sessions)
    assert splits == cv_splits(ids, n_splits=4, test_fraction=0.1, seed=1, sessions=sessions)
    session_of = dict(zip(ids, sessions, strict=True))
    for train, test in splits:
        assert sorted(train + test) == ids and len(test) >= 10
        held = {session_of[i] for i in test}
        assert not held & {session_of[i] for i in train}  # no session on both sides
        assert 1 <= len(held) < 7
    assert len({tuple(t) for _, t in splits}) > 1
    # MANUAL-like: 3 sessions, one of them is more than 10%: one session held out
    few = cv_splits(list(range(30)), 3, 0.1, 0, sessions=[i // 10 for i in range(30)])
    assert all(len(t) == 10 and len({i // 10 for i in t}) == 1 for _, t in few)
    with pytest.raises(ConfigError, match="at least 2 driving sessions"):
        cv_splits([1, 2, 3], 3, sessions=[5, 5, 5])
    with pytest.raises(ConfigError, match="2 sessions given for 3 frames"):
        cv_splits([1, 2, 3], 3, sessions=[5, 6])


def results() -> pd.DataFrame:
    rows = []
    for split in range(3):
        for method, value in (("REFERENCE", 0.40), ("AL", 0.52), ("MANUAL", 0.44)):
            v = value + 0.01 * split
            rows.append((method, split, "night", "person", "wMAP", v))
    return pd.DataFrame(rows, columns=["method", "split", "test_set", "class", "metric", "value"])


def test_relative_improvement_and_summary():
    rel = relative_improvement(results())
    al = rel[(rel.method == "AL") & (rel.split == 0)]
    assert al.relative.item() == pytest.approx((0.52 - 0.40) / 0.40)
    summary = summary_table(results())
    al_row = summary[summary.method == "AL"].iloc[0]
    expect = np.mean([(0.52 + d - 0.40 - d) / (0.40 + d) for d in (0, 0.01, 0.02)])
    assert al_row.relative_mean == pytest.approx(expect)
    assert al_row.n == 3 and al_row.relative_std > 0
    ref_row = summary[summary.method == "REFERENCE"].iloc[0]
    assert ref_row.value_mean == pytest.approx(0.41)
    ratio = gain_ratio(summary)
    # per split AL gains 0.12 and MANUAL 0.04 over the same REFERENCE: 3x
    assert ratio["AL/MANUAL"].item() == pytest.approx(3.0)


def test_seed_table_and_figures():
    summary = summary_table(results())
    table = seed_table(summary, "night", ["wMAP"])
    assert list(table.index) == ["REFERENCE", "AL", "MANUAL"]
    # AL - REFERENCE = 0.12 in every split; relative (0.12 / 0.41 on average) beside it
    assert table.loc["AL", ("person", "wMAP")].startswith("+0.120 (+29.")
    # REFERENCE near zero (0.01-0.03): the absolute difference alone, no ratio either
    low = results().assign(value=lambda t: t.value - 0.39)
    low_summary = summary_table(low)
    assert seed_table(low_summary, "night", ["wMAP"]).loc["AL", ("person", "wMAP")] == "+0.120"
    assert gain_ratio(low_summary)["AL/MANUAL"].isna().all()
    fig = relative_bar_figure(summary, "night")
    assert len(fig.axes[0].patches) == 2
    analysis = pd.DataFrame({"person": [30, 12], "bicycle": [20, 5], "sessions": [40, 3]},
                            index=["AL", "MANUAL"])  # fmt: skip
    fig = selection_figure(analysis, ["person", "bicycle"])
    assert len(fig.axes) == 2


def test_missing_columns_are_named():
    with pytest.raises(ConfigError, match="value"):
        relative_improvement(results().drop(columns="value"))
