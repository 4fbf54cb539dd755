"""Rounds of the replicated experiment: the label share by hand, and a tiny run end to end."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from alkit.errors import ConfigError
from alkit.experiments.abtest import profile_config
from alkit.experiments.replicated import ExperimentConfig
from alkit.experiments.replicated_rounds import (
    CURVE_COLUMNS,
    label_share,
    run_rounds_experiment,
)
from alkit.experiments.stats import VERDICTS
from alkit.query.selection import load_selection


def _curves(values: dict[str, list[float]]) -> pd.DataFrame:
    rows = [
        (m, r, 1000 + 25 * r, 25 * r, "night_test", "person", "AP50", v, 9, 0.0, 0.0, 0.0, "")
        for m, vs in values.items()
        for r, v in enumerate(vs)
    ]
    return pd.DataFrame(rows, columns=list(CURVE_COLUMNS))


def test_label_share_interpolates_between_rounds():
    # RANDOM-night ends at 0.30 after 100 frames; AL passes 0.30 between 25 (0.20) and 50
    # (0.40) frames: 25 + 0.5 * 25 = 37.5 frames, 37.5% of 100
    curves = _curves({"AL": [0.1, 0.2, 0.4, 0.5, 0.5], "RANDOM-night": [0.1, 0.15, 0.2, 0.25, 0.3]})
    row = label_share(curves, "AL", "RANDOM-night").iloc[0]
    assert row.frames_needed == pytest.approx(37.5) and row.share == pytest.approx(0.375)
    assert row.note == "reached"
    assert row.control_final == pytest.approx(0.3) and row.control_frames == 100
    # never reaching it within the rounds: NaN, not a number made up
    behind = _curves({"AL": [0.1, 0.1, 0.1, 0.2, 0.2], "RANDOM-night": [0.1, 0.2, 0.2, 0.3, 0.3]})
    row = label_share(behind, "AL", "RANDOM-night").iloc[0]
    assert math.isnan(row.share) and row.note == "not reached within the rounds"
    # a control that ends no higher than round 0 leaves nothing to reach: NaN, not 0%
    flat = _curves({"AL": [0.3, 0.2, 0.3, 0.3, 0.4], "RANDOM-night": [0.3, 0.3, 0.2, 0.3, 0.29]})
    row = label_share(flat, "AL", "RANDOM-night").iloc[0]
    assert math.isnan(row.share) and row.note == "the control ends no higher than round 0"


def test_rounds_refuse_a_bad_configuration(tmp_path):
    config = ExperimentConfig(ab=profile_config("tiny").to_dict(), pool_blocks=1)
    with pytest.raises(ConfigError, match="n_rounds"):
        run_rounds_experiment(config, tmp_path, n_rounds=0)
    with pytest.raises(ConfigError, match="blocks"):
        run_rounds_experiment(config, tmp_path, blocks=2)


@pytest.mark.slow
def test_tiny_rounds_give_curves_with_intervals_and_resume(tiny_curves):
    config, tmp_path, out = tiny_curves
    curves = out["curves"]
    assert list(curves.columns) == list(CURVE_COLUMNS)
    assert set(curves.method) == {"AL", "AL-div", "RANDOM-night"}
    assert set(curves["round"]) == {0, 1, 2}
    assert set(curves.new_frames) == {0, 4, 8}
    # round 0 is REFERENCE for every arm: the same value, no gain
    zero = curves[curves["round"] == 0]
    assert zero.groupby("class").value.nunique().eq(1).all() and (zero.gain == 0).all()
    later = curves[curves["round"] > 0]
    assert (later.ci_low <= later.gain + 1e-12).all()
    assert (later.gain <= later.ci_high + 1e-12).all()
    # each arm's frames: 4 per round, none picked twice
    costs = out["rounds_costs"]
    assert (costs.frames == 4).all() and len(costs) == 3 * 2
    for arm in ("AL", "AL-div", "RANDOM-night"):
        picked = [
            load_selection(
                str(tmp_path / "world_0" / "selections" / f"rounds_b0_r{r}_{arm}.json")
            ).frame_ids
            for r in (1, 2)
        ]
        assert len(set(picked[0]) | set(picked[1])) == 8, arm
    verdicts = out["rounds_verdicts"]
    assert set(verdicts.comparison) <= {f"{a}@{r} vs RANDOM-night@{r}"
                                        for a in ("AL", "AL-div") for r in (1, 2)}  # fmt: skip
    assert set(verdicts.verdict) <= set(VERDICTS)
    assert set(out["label_share"].method) == {"AL", "AL-div"}
    assert (tmp_path / "learning_curves.png").stat().st_size > 1000
    # a rerun reuses every selection and evaluation: no query, no training, the same curves
    lines: list[str] = []
    again = run_rounds_experiment(config, tmp_path, n_rounds=2, progress=False, log=lines.append)
    pd.testing.assert_frame_equal(again["curves"], curves)
    assert not [line for line in lines if "QUERY" in line or "retrain" in line or ": AL" in line]
