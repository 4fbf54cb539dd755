"""The experiment's statistics against known answers: the bootstrap on distributions whose
intervals are known, the pre-registered verdicts on constructed intervals, power by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from alkit.errors import ConfigError, DataError
from alkit.experiments.stats import (
    VERDICT_COLUMNS,
    BootstrapConfig,
    differences_figure,
    hierarchical_bootstrap,
    minimum_detectable_difference,
    paired_bootstrap,
    paired_differences,
    spearman,
    split_half_correlation,
    verdict,
    verdicts_table,
)

Z95 = 1.959964


def two_levels(effects: np.ndarray, within: np.ndarray) -> pd.DataFrame:
    """``diff`` = ``effects[u] + within[u, j]`` for unit u and sub-unit j."""
    n1, n2 = within.shape
    return pd.DataFrame(
        {
            "unit": np.repeat(np.arange(n1), n2),
            "sub": np.tile(np.arange(n2), n1),
            "diff": (effects[:, None] + within).ravel(),
        }
    )


def test_normal_differences_known_mean_and_width():
    rng = np.random.default_rng(1)
    n, mean, sd = 400, 0.3, 1.0
    d = pd.DataFrame({"replicate": np.arange(n), "diff": rng.normal(mean, sd, n)})
    got = hierarchical_bootstrap(d, ["replicate"], BootstrapConfig(n_resamples=4000))
    assert got.diff == pytest.approx(d["diff"].mean(), abs=1e-12)
    assert got.ci_low < mean < got.ci_high
    width = got.ci_high - got.ci_low
    assert width == pytest.approx(2 * Z95 * d["diff"].std() / np.sqrt(n), rel=0.05)
    assert width == pytest.approx(2 * Z95 * sd / np.sqrt(n), rel=0.15)  # this sample's sd: 0.91
    assert got.n_units == n


def test_the_interval_covers_the_true_mean_95_percent_of_the_time():
    rng = np.random.default_rng(2)
    covered = 0
    for rep in range(200):
        d = pd.DataFrame({"r": np.arange(60), "diff": rng.normal(-0.1, 0.5, 60)})
        got = hierarchical_bootstrap(d, ["r"], BootstrapConfig(n_resamples=1000, seed=rep))
        covered += got.ci_low <= -0.1 <= got.ci_high
    assert 0.89 <= covered / 200 <= 0.99  # binomial SE ~0.015 around 0.95 (percentile: ~0.94)


def test_all_equal_differences_give_a_zero_width_interval_at_that_value():
    d = two_levels(np.zeros(4), np.zeros((4, 5))).assign(diff=0.05)
    got = hierarchical_bootstrap(d, ["unit", "sub"], BootstrapConfig(n_resamples=500))
    assert got.diff == pytest.approx(0.05, abs=1e-15)
    assert got.ci_low == pytest.approx(0.05, abs=1e-15)
    assert got.ci_high == pytest.approx(0.05, abs=1e-15)
    assert verdict(got.ci_low, got.ci_high) == "win"


def test_between_unit_variance_widens_the_hierarchical_interval():
    # 10 worlds, all the variance between them: 20 identical rows each
    rng = np.random.default_rng(3)
    effects = rng.normal(0.0, 1.0, 10)
    d = two_levels(effects, np.zeros((10, 20)))
    config = BootstrapConfig(n_resamples=4000)
    hier = hierarchical_bootstrap(d, ["unit", "sub"], config)
    naive = hierarchical_bootstrap(d.assign(row=np.arange(200)), ["row"], config)
    assert hier.diff == pytest.approx(naive.diff) == pytest.approx(effects.mean())
    # the interval of 10 units, not of 200 rows: sqrt(20) ~ 4.5 times wider
    plug_in_sd = effects.std(ddof=0)
    assert hier.ci_high - hier.ci_low == pytest.approx(2 * Z95 * plug_in_sd / np.sqrt(10), rel=0.2)
    assert (hier.ci_high - hier.ci_low) > 3.5 * (naive.ci_high - naive.ci_low)
    assert hier.n_units == 10 and naive.n_units == 200


def test_resampling_both_levels_of_pure_row_noise_is_sqrt2_conservative():
    rng = np.random.default_rng(4)
    d = two_levels(np.zeros(30), rng.normal(0.0, 1.0, (30, 20)))
    both = hierarchical_bootstrap(d, ["unit", "sub"], BootstrapConfig(n_resamples=4000))
    top = BootstrapConfig(n_resamples=4000, resample_depth=1)
    cluster = hierarchical_bootstrap(d, ["unit", "sub"], top)
    width = cluster.ci_high - cluster.ci_low
    assert width == pytest.approx(2 * Z95 / np.sqrt(600), rel=0.2)  # the true SE: 1/sqrt(600)
    assert (both.ci_high - both.ci_low) / width == pytest.approx(np.sqrt(2), rel=0.15)


def test_unbalanced_design_uses_the_mean_of_means():
    # unit 0: three rows of 1.0; unit 1: one row of 0.0 -> mean of means 0.5 (row mean 0.75)
    d = pd.DataFrame({"unit": [0, 0, 0, 1], "sub": [0, 1, 2, 0], "diff": [1.0, 1.0, 1.0, 0.0]})
    got = hierarchical_bootstrap(d, ["unit", "sub"], BootstrapConfig(n_resamples=2000))
    assert got.diff == pytest.approx(0.5)
    assert got.ci_low == pytest.approx(0.0) and got.ci_high == pytest.approx(1.0)


def test_pairing_removes_the_replicates_shared_variance():
    # each world moves both arms by a large amount; AL is always exactly 0.1 better
    worlds = pd.DataFrame({"world_seed": np.arange(8), "finetune_seed": 0})
    base = np.random.default_rng(5).normal(0.3, 0.2, 8)
    table = pd.concat(
        [
            worlds.assign(method="AL", value=base + 0.1),
            worlds.assign(method="RANDOM-night", value=base),
            worlds.assign(method="MANUAL", value=base[::-1]),  # not paired with AL's worlds
        ]
    )
    got = paired_bootstrap(table, "AL", "RANDOM-night", ["world_seed", "finetune_seed"])
    assert got.diff == pytest.approx(0.1)
    assert got.ci_high - got.ci_low == pytest.approx(0.0, abs=1e-12)
    again = paired_bootstrap(table, "AL", "RANDOM-night", ["world_seed", "finetune_seed"])
    assert again == got  # seeded: bit for bit


def test_pairing_names_what_is_wrong():
    rows = pd.DataFrame({"world_seed": [0, 1, 0], "method": ["AL", "AL", "COUNT"],
                         "value": [0.2, 0.3, 0.1]})  # fmt: skip
    with pytest.raises(DataError, match=r"replicate \{'world_seed': 1\}: 'AL' has a result but"):
        paired_differences(rows, "AL", "COUNT", ["world_seed"])
    with pytest.raises(DataError, match="no results for method 'MANUAL'"):
        paired_differences(rows, "AL", "MANUAL", ["world_seed"])
    doubled = pd.concat([rows, rows])
    with pytest.raises(DataError, match="several rows for replicate"):
        paired_differences(doubled, "AL", "COUNT", ["world_seed"])
    nan = rows.assign(value=[np.nan, 0.3, 0.1]).iloc[[0, 2]]
    with pytest.raises(DataError, match="not finite"):
        paired_differences(nan, "AL", "COUNT", ["world_seed"])
    with pytest.raises(ConfigError, match=r"lacks columns \['pool_block'\]"):
        paired_differences(rows, "AL", "COUNT", ["world_seed", "pool_block"])
    with pytest.raises(ConfigError, match="level must be in"):
        BootstrapConfig(level=95)


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0.01, 0.05, "win"),
        (0.001, 0.015, "win"),  # inside the margin, but above 0: win is checked first
        (-0.05, -0.01, "loss"),
        (-0.015, -0.001, "loss"),
        (-0.015, 0.015, "equivalent"),
        (-0.02, 0.02, "equivalent"),  # the margin's ends are inside
        (0.0, 0.02, "equivalent"),  # touching 0 is no win
        (0.0, 0.0, "equivalent"),
        (0.0, 0.03, "inconclusive"),
        (-0.03, 0.0, "inconclusive"),
        (-0.021, 0.01, "inconclusive"),
        (-0.5, 0.5, "inconclusive"),
    ],
)
def test_verdict_rules(low, high, expected):
    assert verdict(low, high) == expected


def test_verdict_margin_and_bad_intervals():
    assert verdict(-0.04, 0.04, margin=0.05) == "equivalent"
    assert verdict(-0.04, 0.04, margin=0.03) == "inconclusive"
    with pytest.raises(DataError, match="low end above"):
        verdict(0.1, -0.1)
    with pytest.raises(DataError, match="not finite"):
        verdict(float("nan"), 0.1)


def results_table() -> pd.DataFrame:
    """6 replicates (3 worlds x 2 fine-tuning seeds) of 3 arms, 2 classes, 1 metric, built so
    that AL - RANDOM-night is +0.05 (person) / -0.05 (bicycle) everywhere, and AL-div - AL is
    0.0 (person) / +-0.1 alternating (bicycle)."""
    rep = pd.DataFrame({"world_seed": np.repeat([0, 1, 2], 2), "finetune_seed": [0, 1] * 3})
    base = np.array([0.20, 0.25, 0.30, 0.22, 0.28, 0.26])
    alternating = np.array([0.1, -0.1] * 3)
    rows = []
    for cls, al_gain, div_gain in (("person", 0.05, 0 * base), ("bicycle", -0.05, alternating)):
        for method, value in (
            ("RANDOM-night", base),
            ("AL", base + al_gain),
            ("AL-div", base + al_gain + div_gain),
        ):
            rows.append(rep.assign(method=method, value=value, **{"class": cls}, metric="AP50"))
    return pd.concat(rows, ignore_index=True)


def test_verdicts_table_names_comparisons_and_applies_the_rules():
    got = verdicts_table(
        results_table(),
        ["world_seed", "finetune_seed"],
        [("AL", "RANDOM-night"), ("AL-div", "AL")],
        config=BootstrapConfig(n_resamples=2000),
    )
    assert tuple(got.columns) == VERDICT_COLUMNS
    got = got.set_index(["comparison", "class"])
    assert got.loc[("AL vs RANDOM-night", "person"), "verdict"] == "win"
    assert got.loc[("AL vs RANDOM-night", "person"), "diff"] == pytest.approx(0.05)
    assert got.loc[("AL vs RANDOM-night", "bicycle"), "verdict"] == "loss"
    assert got.loc[("AL-div vs AL", "person"), "verdict"] == "equivalent"
    bicycle = got.loc[("AL-div vs AL", "bicycle")]
    assert bicycle.verdict == "inconclusive" and bicycle["diff"] == pytest.approx(0.0)
    assert bicycle.ci_low < -0.02 and bicycle.ci_high > 0.02
    assert set(got.metric) == {"AP50"}


def test_differences_figure_has_a_panel_per_metric_and_a_row_per_cell():
    table = results_table()
    table = pd.concat([table, table.assign(metric="wMAP")])
    verdicts = verdicts_table(table, ["world_seed", "finetune_seed"],
                              [("AL", "RANDOM-night"), ("AL-div", "AL")],
                              config=BootstrapConfig(n_resamples=200))  # fmt: skip
    fig = differences_figure(verdicts)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["AL vs RANDOM-night · person", "AL vs RANDOM-night · bicycle",
                      "AL-div vs AL · person", "AL-div vs AL · bicycle"]  # fmt: skip
    assert [a.get_title() for a in fig.axes] == ["AP50", "wMAP"]


def test_minimum_detectable_difference_by_hand():
    # (z_0.975 + z_0.8) * sd / sqrt(n) = (1.959964 + 0.841621) * 0.1 / 4
    assert minimum_detectable_difference(0.1, 16) == pytest.approx(0.0700396, rel=1e-5)
    assert minimum_detectable_difference(0.1, 16, power=0.5) == pytest.approx(
        1.959964 * 0.1 / 4, rel=1e-5
    )
    assert minimum_detectable_difference(0.0, 5) == 0.0
    with pytest.raises(ConfigError, match="n must be"):
        minimum_detectable_difference(0.1, 0)


def test_split_half_correlation_on_constructed_scores():
    a = np.array([0.1, 0.5, 0.2, 0.9, 0.3])
    same = split_half_correlation(a, 2 * a + 1)  # perfectly consistent ranks
    assert same.r_half == pytest.approx(1.0) and same.r_full == pytest.approx(1.0)
    # ranks 1..5 vs 1,4,2,5,3: sum d^2 = 10, rho = 1 - 6 * 10 / 120 = 0.5; full = 2/3
    half = split_half_correlation(np.arange(5.0), np.array([1, 4, 2, 5, 3.0]))
    assert half.r_half == pytest.approx(0.5) and half.r_full == pytest.approx(2 / 3)
    assert half.n_frames == 5
    reversed_ = split_half_correlation(a, -a)
    assert reversed_.r_half == pytest.approx(-1.0) and np.isnan(reversed_.r_full)
    # ties get average ranks: (1, 2.5, 2.5, 4) vs (1, 2, 3, 4) -> 3 / sqrt(10)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(3 / np.sqrt(10))
    with pytest.raises(DataError, match="two \\[N\\] arrays"):
        split_half_correlation(a, a[:3])


def test_equivalence_margin_is_the_smaller_of_the_cap_and_a_quarter_of_random_gain():
    from alkit.experiments.stats import equivalence_margin

    assert equivalence_margin(0.2) == 0.02  # a quarter is 0.05: the cap
    assert equivalence_margin(0.04) == pytest.approx(0.01)
    assert equivalence_margin(-0.004) == 0.0  # random moved nothing: nothing is equivalent
    with pytest.raises(DataError):
        equivalence_margin(float("nan"))


def test_holm_on_a_textbook_family():
    from alkit.experiments.stats import holm

    out = holm([0.01, 0.04, 0.03, 0.005], alpha=0.05)
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04 -> monotone
    assert out.p_adjusted.tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert out.rejected.tolist() == [True, False, False, True]  # 0.03 > 0.05 / 2 stops it
    # levels: 1 - 0.05/4, 1 - 0.05/3, then 1 - 0.05/2 for the first kept and every later one
    assert out.level.tolist() == pytest.approx([1 - 0.05 / 3, 1 - 0.05 / 2, 1 - 0.05 / 2,
                                                1 - 0.05 / 4])  # fmt: skip
    every = holm([0.001, 0.002], alpha=0.05)
    assert every.rejected.all() and every.level.tolist() == pytest.approx([0.975, 0.95])


def test_bootstrap_p_value_of_shifted_normals():
    from statistics import NormalDist

    from alkit.experiments.stats import bootstrap_p_value

    rng = np.random.default_rng(0)
    s = rng.normal(2.0, 1.0, 100_000)  # H0 at 2 sd: p = 2 * (1 - Phi(2)) = 0.0455
    assert bootstrap_p_value(s) == pytest.approx(2 * (1 - NormalDist().cdf(2.0)), rel=0.05)
    assert bootstrap_p_value(np.zeros(10)) == 1.0


def test_quantile_mc_error_matches_the_spread_of_repeated_bootstraps():
    from alkit.experiments.stats import quantile_mc_error

    rng = np.random.default_rng(1)
    n, q = 2000, 0.025
    runs = rng.normal(size=(400, n))
    spread = np.quantile(runs, q, axis=1).std(ddof=1)  # the 2.5% quantile's MC sd
    # asymptotically sqrt(q (1 - q) / n) / phi(z_q) = 0.0598 for n = 2,000
    assert spread == pytest.approx(np.sqrt(q * (1 - q) / n) / 0.05845, rel=0.15)
    estimates = [quantile_mc_error(r, q) / 1.96 for r in runs[:50]]
    assert np.median(estimates) == pytest.approx(spread, rel=0.2)


def test_verdict_flips_within_the_monte_carlo_error():
    from alkit.experiments.stats import verdict_flips

    # the case: high bound 0.0196 against the 0.02 margin, MC error 0.001
    assert verdict(-0.013, 0.0196, 0.02) == "equivalent"
    assert verdict_flips(-0.013, 0.0196, 0.001, 0.001, 0.02)
    assert not verdict_flips(-0.013, 0.015, 0.001, 0.001, 0.02)
    assert verdict_flips(0.0005, 0.03, 0.001, 0.001, 0.02)  # a win that may touch 0
    # a wide error crossing both of low's thresholds: the middle (inconclusive) is found
    assert verdict_flips(-0.01, 0.05, 0.03, 0.0, 0.02)
