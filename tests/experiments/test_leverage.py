"""RANDOM-night's learning curve on the tiny profile: the rows, the control, the versions."""

from __future__ import annotations

import pandas as pd
import pytest

from alkit.data.versions import load_version
from alkit.ensemble.retrain import RetrainConfig
from alkit.errors import ConfigError
from alkit.experiments.abtest import profile_config
from alkit.experiments.leverage import (
    COLUMNS,
    leverage_curve,
    leverage_figure,
    leverage_summary,
    retrain_tag,
    saved_curve,
)
from alkit.experiments.replicated import ExperimentConfig

pytestmark = pytest.mark.usefixtures("one_thread_module")

BUDGETS = (0, 4, 10)
SEEDS = (0, 1)
CLASSES = ("person", "bicycle")
RETRAIN = RetrainConfig(steps=2, new_fraction="natural", min_epochs=0.1)


def tiny_config() -> ExperimentConfig:
    return ExperimentConfig(ab=profile_config("tiny", n_members=1).to_dict(), world_seeds=(0,),
                            finetune_seeds=(0,), test_set="global")  # fmt: skip


def test_retrain_tag_names_the_share_and_epochs():
    assert retrain_tag(RetrainConfig(new_fraction="natural", min_epochs=1)) == (
        "finetune_natural_e1_s100_lr0.0005"
    )
    assert retrain_tag(RetrainConfig(new_fraction=0.5, steps=60)) == "finetune_nf0.5_s60_lr0.0005"


def test_budgets_must_be_frame_counts(tmp_path):
    with pytest.raises(ConfigError, match="budgets"):
        leverage_curve(tiny_config(), [-1, 4], SEEDS, tmp_path)
    with pytest.raises(ConfigError, match="finetune_seeds"):
        leverage_curve(tiny_config(), [0, 4], [], tmp_path)


@pytest.mark.slow  # 12 s alone, 40 s on the shared 2 cores
def test_tiny_curve_rows_control_and_appended_versions(tmp_path):
    logged = []
    rows = leverage_curve(tiny_config(), BUDGETS, SEEDS, tmp_path, retraining=RETRAIN,
                          variant="tiny", classes=CLASSES, log=logged.append)  # fmt: skip
    assert list(rows.columns) == list(COLUMNS)
    metrics = set(rows.metric)
    assert "AP50" in metrics
    # one row per budget x seed x class x metric, nothing missing, nothing twice
    assert len(rows) == len(BUDGETS) * len(SEEDS) * len(CLASSES) * len(metrics)
    assert not rows.duplicated(["budget", "finetune_seed", "class", "metric"]).any()
    assert set(rows.variant) == {"tiny"} and set(rows.retrain) == {retrain_tag(RETRAIN)}

    world = tmp_path / "world_0"
    initial = load_version(str(world / "versions"), rows[rows.budget == 0].version.iloc[0])
    # budget 0 is REFERENCE's own control: retrained on the initial version, no frames added
    assert (rows[rows.budget == 0].version == initial.hash).all()
    assert initial.parent is None
    held = set(initial.frame_ids)
    previous = initial
    for budget in BUDGETS[1:]:
        (tag,) = set(rows[rows.budget == budget].version)  # every seed trained on one version
        version = load_version(str(world / "versions"), tag)
        assert len(version.frame_ids) == len(initial.frame_ids) + budget
        assert held < set(version.frame_ids)
        assert version.parent == previous.hash  # APPENDed to the smaller budget's version
        assert set(previous.frame_ids) < set(version.frame_ids)  # nested
        previous = version
    # the seeds differ at one budget (fine-tuning noise), and are paired across budgets
    ap = rows[rows.metric == "AP50"].pivot_table("value", ["budget", "class"], "finetune_seed")
    assert ap.notna().all().all()

    # resumable: a rerun trains nothing and gives the same rows
    trained = sum("fine-tuning seed" in m for m in logged)
    assert trained == len(BUDGETS) * len(SEEDS)
    logged.clear()
    again = leverage_curve(tiny_config(), BUDGETS, SEEDS, tmp_path, retraining=RETRAIN,
                           variant="tiny", classes=CLASSES, log=logged.append)  # fmt: skip
    assert not any("fine-tuning seed" in m for m in logged)
    pd.testing.assert_frame_equal(rows, again)
    # a part of the curve on the curve's ladder: the same versions, nothing trained
    part = leverage_curve(tiny_config(), [BUDGETS[-1]], [0], tmp_path, ladder=BUDGETS,
                          retraining=RETRAIN, variant="tiny", classes=CLASSES,
                          log=logged.append)  # fmt: skip
    assert set(part.version) == set(rows[rows.budget == BUDGETS[-1]].version)
    assert not any("fine-tuning seed" in m for m in logged)
    # the saved evaluations read back without training: the same rows
    saved = saved_curve(tmp_path, RETRAIN, "global", CLASSES, variant="tiny")
    keys = ["budget", "finetune_seed", "class", "metric"]
    pd.testing.assert_frame_equal(saved.sort_values(keys, ignore_index=True),
                                  rows.sort_values(keys, ignore_index=True))  # fmt: skip

    summary = leverage_summary(rows)
    assert set(summary.world_seed) == {"0", "all"}
    zero = summary[summary.budget == 0]
    assert (zero.gain.abs() < 1e-12).all()
    assert (summary.seeds[summary.world_seed == "0"] == len(SEEDS)).all()
    leverage_figure(rows)


def test_summary_gain_noise_on_a_known_case():
    # two seeds, gains of exactly 0.1 at budget 100; sd over seeds 0.01 at both budgets
    values = {(0, 0): 0.20, (0, 1): 0.21, (100, 0): 0.30, (100, 1): 0.31}
    rows = pd.DataFrame([
        {"variant": "v", "retrain": "r", "world_seed": 0, "budget": b, "finetune_seed": f,
         "class": "person", "metric": "AP50", "value": v, "n_gt": 1, "version": "x"}
        for (b, f), v in values.items()
    ])  # fmt: skip
    s = leverage_summary(rows).set_index(["world_seed", "budget"])
    sd = 0.01 / 2**0.5
    assert s.loc[("0", 100), "gain"] == pytest.approx(0.1)
    assert s.loc[("0", 100), "noise"] == pytest.approx(sd)
    assert s.loc[("0", 100), "gain_over_noise"] == pytest.approx(0.1 / sd)
    assert bool(s.loc[("0", 100), "leverage"])
    assert s.loc[("all", 100), "gain"] == pytest.approx(0.1)
