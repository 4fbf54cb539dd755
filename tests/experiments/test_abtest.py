"""The whole A/B protocol on a tiny world: structure of the tables, real finite numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alkit.errors import ConfigError
from alkit.experiments.abtest import ABConfig, ab_query, ab_setup, ab_splits, ab_train, run_ab_test
from alkit.query.score import read_scores
from alkit.query.selection import load_selection

TINY = ABConfig.from_dict(
    dict(
        sessions={"initial": 2, "pool": 3, "test": 2},
        initial_stride=4,
        test_stride=5,
        n_members=2,
        model={"width": 4, "depth": 2, "stride": 4, "head_width": 8},
        train={"max_epochs": 1, "max_steps": 6, "warmup_steps": 1},
        budget=10,
        retrain_steps=3,
        batch_size=8,
        manual_subsequence=5,
        manual_filters={},
    )
)


@pytest.mark.slow
def test_whole_protocol_on_a_tiny_world(tmp_path):
    result = run_ab_test(TINY, tmp_path / "run", progress=False, log=lambda _: None)
    res = result.results
    assert set(res.method) == {"REFERENCE", "AL", "MANUAL", "RANDOM", "METADATA", "RANDOM-night"}
    assert set(res.split) == {0, 1, 2}
    assert set(res.test_set) == {"global", "night_heldout", "night", "manual"}
    assert set(res.metric) >= {"wMAP", "mAP_large", "mAP_medium"}
    # a value is NaN exactly when its metric has no ground truth; otherwise a real AP in [0, 1]
    has_gt = res.n_gt > 0
    assert np.isfinite(res.value[has_gt]).all() and res.value[~has_gt].isna().all()
    assert ((res.value[has_gt] >= 0) & (res.value[has_gt] <= 1)).all()
    assert has_gt.any()
    # REFERENCE is evaluated on the same test sets as every method
    ref = res[res.method == "REFERENCE"].groupby(["split", "test_set"]).size()
    al = res[res.method == "AL"].groupby(["split", "test_set"]).size()
    pd.testing.assert_series_equal(ref, al)
    summary = result.summary
    assert {"relative_mean", "relative_std", "value_mean"} <= set(summary.columns)
    assert set(summary["class"]) <= {"person", "bicycle"}
    sel = result.selections
    assert list(sel.index) == ["AL", "MANUAL", "RANDOM", "METADATA", "RANDOM-night"]
    assert (sel.frames == 10).all() and "sessions" in sel.columns
    # the curator watches whole drives (contiguous frames); the ensemble scores every 2nd frame
    manual = np.sort(load_selection(str(result.run_dir / "selections" / "MANUAL.json")).frame_ids)
    assert (np.diff(manual) == 1).sum() >= 5
    scored = read_scores(str(result.run_dir / "scores" / "AL")).frame_id
    assert (np.diff(scored.to_numpy()) >= 2).all()
    for path in result.figures.values():
        assert path.exists() and path.stat().st_size > 1000
    # a rerun finds every step done and gives the same tables
    again = run_ab_test(TINY, tmp_path / "run", progress=False, log=lambda _: None)
    pd.testing.assert_frame_equal(again.results, result.results)
    # the 90/10 splits hold out whole driving sessions: none is on both sides
    setup = ab_setup(TINY, tmp_path / "run")
    queried = ab_query(setup, ab_train(setup, False, print), False, print)
    session = lambda ids: {setup.world.locate(f)[0] for f in ids}  # noqa: E731
    for method, splits in ab_splits(setup, queried, log=lambda _: None).items():
        for train, test in splits:
            assert sorted(train + test) == sorted(queried.selections[method].frame_ids)
            if len(session(train + test)) > 1:
                assert test and not session(train) & session(test), method


def test_config_validation(tmp_path):
    with pytest.raises(ConfigError, match="retrain"):
        ABConfig.from_dict({"retrain": "sometimes"})
    with pytest.raises(ConfigError, match="classes_of_interest"):
        ABConfig.from_dict({"classes_of_interest": ["unicorn"]})
    with pytest.raises(ConfigError, match="split_by"):
        ABConfig.from_dict({"split_by": "drive"})
    with pytest.raises(ConfigError, match="unknown parameter.*budgett"):
        ABConfig.from_dict({"budgett": 3})
