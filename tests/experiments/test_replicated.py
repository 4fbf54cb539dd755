"""The replicated experiment: pool blocks by hand, and a tiny run end to end."""

from __future__ import annotations

import pandas as pd
import pytest

from alkit.data.pool import Pool
from alkit.errors import ConfigError
from alkit.experiments.replicated import (
    ARMS,
    COST_MATCHED,
    ExperimentConfig,
    cost_matched_prefix,
    oracle_errors,
    pool_blocks,
    run_experiment,
    world_models,
)
from alkit.experiments.stats import VERDICT_COLUMNS, VERDICTS
from tests.conftest import one_thread


def test_pool_blocks_deal_whole_sessions_by_time_of_day():
    sessions = {1: "night", 2: "day", 3: "night", 4: "day", 5: "night"}
    meta = pd.DataFrame(
        [(10 * s + i, s, t) for s, t in sessions.items() for i in range(3)],
        columns=["frame_id", "session_id", "time_of_day"],
    )
    blocks = pool_blocks(Pool(source=None, metadata=meta), 2)
    # sorted (day 2, day 4, night 1, night 3, night 5), dealt in turn
    assert [sorted(set(b.metadata.session_id)) for b in blocks] == [[1, 2, 5], [3, 4]]
    assert sum(len(b) for b in blocks) == len(meta)
    with pytest.raises(ConfigError, match="6 but the pool has 5 sessions"):
        pool_blocks(Pool(source=None, metadata=meta), 6)


def test_cost_matched_prefix_fits_the_budget():
    assert cost_matched_prefix([30.0, 44.0, 37.0, 30.0], 111.0) == 3  # 30 + 44 + 37 = 111
    assert cost_matched_prefix([30.0, 44.0, 37.0, 30.0], 110.9) == 2  # in pick order: stops
    assert cost_matched_prefix([50.0], 49.0) == 0


def test_config_refuses_unknown_arms_and_fields():
    with pytest.raises(ConfigError, match="COIN"):
        ExperimentConfig(arms=("AL", "COIN"))
    with pytest.raises(ConfigError, match="budgett"):
        ExperimentConfig(ab={"budgett": 3})


@pytest.mark.slow
def test_tiny_experiment_runs_every_arm_paired_and_resumes(tiny_experiment):
    config, tmp_path, out = tiny_experiment
    results = out["results"]
    per_arm = results.groupby("method")[["finetune_seed"]].nunique().finetune_seed
    arms = ("REFERENCE", *ARMS, *(a + COST_MATCHED for a in ARMS))
    assert per_arm.to_dict() == {m: 2 for m in arms}
    costs = out["costs"].set_index("method")
    assert set(costs.index) == set(ARMS) | {a + COST_MATCHED for a in ARMS}
    assert (costs.frames <= 10).all()
    cheapest = costs.loc[list(ARMS), "seconds"].min()
    matched = costs.loc[[a + COST_MATCHED for a in ARMS], "seconds"]
    assert (matched <= cheapest + 1e-9).all() and matched.max() == cheapest
    diag = out["diagnostics"]
    assert set(diag["class"]) == {"person", "bicycle"} and (diag.frames > 0).all()
    assert diag.split_half_r.between(-1, 1).all()  # two halves of 2 members each scored
    verdicts = out["verdicts"]
    assert list(verdicts.columns)[: len(VERDICT_COLUMNS)] == list(VERDICT_COLUMNS)
    names = {"AL vs RANDOM-night", "AL vs MANUAL", "AL vs COUNT", "AL-div vs AL",
             "AL vs METADATA"}  # fmt: skip
    names |= {n.replace(" vs ", f"{COST_MATCHED} vs ") + COST_MATCHED for n in names}
    primary = {"AL vs RANDOM-night", "AL-peaks vs RANDOM-night", "AL-kcenter vs RANDOM-night"}
    names |= primary | {"ORACLE vs RANDOM-night", "RANDOM-night vs REFERENCE",
                        "AL-div vs RANDOM-night", "COUNT vs RANDOM-night",
                        "MANUAL vs RANDOM-night"}  # fmt: skip
    assert set(verdicts.comparison) <= names
    # the primary family (named in advance) is Holm-adjusted, the rest is secondary
    assert set(verdicts[verdicts.primary].comparison) <= primary
    first = verdicts[verdicts.primary]
    assert len(first) and (first.p_holm >= first.p_value - 1e-12).all()
    assert verdicts[~verdicts.primary].p_holm.isna().all()
    assert set(verdicts.verdict) <= set(VERDICTS) and len(verdicts)
    assert ((verdicts.ci_low <= verdicts["diff"]) & (verdicts["diff"] <= verdicts.ci_high)).all()
    assert set(verdicts.metric) == {"AP50", "wMAP50"}  # at IoU 0.5, test sessions resampled
    test_sets = out["test_sets"].set_index("class")
    assert test_sets.loc["person", "tracks"] <= test_sets.loc["person", "objects"]
    assert (test_sets.sessions == 2).all()  # the tiny world's 2 test drives
    for name in ("results.csv", "costs.csv", "diagnostics.csv", "verdicts.csv", "test_sets.csv",
                 "differences.png"):  # fmt: skip
        assert (tmp_path / name).exists()
    again = run_experiment(config, tmp_path, progress=False, log=lambda _: None)
    pd.testing.assert_frame_equal(again["results"], results)  # evaluations reused


def test_a_resumed_experiment_reads_the_oracle_errors_a_fresh_run_computes(tiny_experiment):
    config, tmp_path, _ = tiny_experiment
    world = tmp_path / "world_0"
    kept = pd.read_parquet(world / "oracle_errors_block0.parquet")
    with one_thread():
        models = world_models(config, 0, world, progress=False, log=lambda _: None)
        fresh = oracle_errors(models, pool_blocks(models.setup.pool, 1)[0])
    assert len(kept) and kept.frame_id.is_unique
    pd.testing.assert_frame_equal(kept, fresh)  # values and dtypes through the file
