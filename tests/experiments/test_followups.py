"""Label efficiency and the new-frame-share sensitivity, from a finished experiment."""

from __future__ import annotations

import math
import shutil

import pandas as pd
import pytest

from alkit.errors import ConfigError
from alkit.experiments.followups import FollowUpConfig, labels_to_match, run_followups


def test_labels_to_match_reads_the_curve_linearly():
    budgets, gains = [0, 250, 500, 1000], [0.0, 0.01, 0.03, 0.04]
    assert labels_to_match(budgets, gains, 0.02) == pytest.approx(375.0)  # half way 250 -> 500
    assert labels_to_match(budgets, gains, 0.04) == pytest.approx(1000.0)
    assert labels_to_match(budgets, gains, 0.0) == 0.0
    assert math.isinf(labels_to_match(budgets, gains, 0.05))  # never reached


@pytest.mark.slow
def test_followups_cut_each_selection_and_pair_with_the_experiment(tiny_experiment, tmp_path):
    config, out_dir, tables = tiny_experiment
    out = tmp_path / "experiment"
    shutil.copytree(out_dir, out)  # the shared fixture's folder stays as it is
    with pytest.raises(ConfigError, match="between 0 and the budget 10"):
        run_followups(out, FollowUpConfig(budgets=(10,)), tmp_path / "t", log=lambda _: None)
    with pytest.raises(ConfigError, match=r"world seeds \[5\] are not the experiment's"):
        run_followups(out, FollowUpConfig(budgets=(4,), only_world_seeds=(5,)), tmp_path / "t")
    follow = FollowUpConfig(budgets=(4,), finetune_seeds=(0, 1), n_resamples=100)
    got = run_followups(out, follow, tmp_path / "tables", log=lambda _: None)
    eff = got["efficiency"]
    assert set(eff.budget) == {0, 4, 10}
    assert set(eff.arm) == set(follow.curve_arms)
    # the full budget is the experiment's own evaluation: its gain is the experiment's verdict
    verdicts = tables["verdicts"]
    theirs = verdicts[(verdicts.comparison == "RANDOM-night vs REFERENCE")
                      & (verdicts.metric == "AP50")].set_index("class")["diff"]  # fmt: skip
    ours = eff[(eff.arm == "RANDOM-night") & (eff.budget == 10)].set_index("class").gain
    pd.testing.assert_series_equal(ours.sort_index(), theirs.sort_index(), check_names=False)
    # a prefix is REFERENCE retrained on the initial frames + the first 4 picks
    prefix = pd.read_parquet(out / "world_0/evaluations/block0_ft0_AL_first4.parquet")
    versions = pd.read_parquet(out / "world_0/evaluations/block0_ft0_AL.parquet")
    assert prefix.version.nunique() == 1 and prefix.version[0] != versions.version[0]
    assert (eff[eff.budget == 4].seconds < eff[eff.budget == 10].seconds.max()).all()
    # the share sensitivity: AL vs RANDOM-night under both retrainings
    names = set(got["sensitivity"].comparison)
    assert names == {"AL vs RANDOM-night",
                     "AL (new_fraction 0.5) vs RANDOM-night (new_fraction 0.5)"}  # fmt: skip
    # its verdicts use the experiment's margin: min(0.02, a quarter of RANDOM-night's gain)
    sens = got["sensitivity"].set_index(["class", "metric"])
    expected = {cls: min(0.02, max(0.0, 0.25 * gain)) for cls, gain in ours.items()}
    assert min(expected.values()) < 0.02  # so the default margin would not pass
    for cls, margin in expected.items():
        assert sens.loc[(cls, "AP50"), "margin"].to_numpy() == pytest.approx([margin] * 2)
    summary = got["efficiency_summary"]
    rn = summary[summary.arm == "RANDOM-night"]
    assert (rn.labels_to_match <= 10).all()  # a curve reaches its own end
    assert (tmp_path / "tables" / "efficiency.png").stat().st_size > 1000
    # the score's diagnostics and every arm's pick layout, per world and block
    diag = got["score_diagnostics"]
    assert set(diag["class"]) == {"person", "bicycle"}
    shares = diag[["mi_share_in_boxes", "box_area_share"]].stack()
    assert ((shares >= 0) & (shares <= 1)).all()
    layout = got["pick_layout"].set_index("method")
    assert set(layout.index) == set(config.arms)
    assert (layout.sessions <= layout.frames).all() and (layout.frames <= 10).all()


def test_picks_layout_counts_sessions_and_neighbours():
    from alkit.experiments.followups import picks_layout
    from alkit.query.selection import SelectionRecord

    class Grid:  # 100 frames per session
        def locate(self, fid):
            return fid // 100, fid % 100, 0

    sel = {"A": SelectionRecord("a", (5, 7, 50, 120)), "B": SelectionRecord("b", (1, 101, 201))}
    got = picks_layout(Grid(), sel).set_index("method")
    # A: frames 5 and 7 of session 0 are 2 apart (neighbours), 50 is not; 120 alone
    assert got.loc["A", ["frames", "sessions", "neighbour_pairs"]].tolist() == [4, 2, 1]
    assert got.loc["B", ["frames", "sessions", "neighbour_pairs"]].tolist() == [3, 3, 0]
