"""``run_rounds``: several rounds of the loop on a tiny world, as tidy learning curves."""

from __future__ import annotations

import pandas as pd
import pytest

from alkit.data.lineage import lineage
from alkit.errors import ConfigError
from alkit.experiments.abtest import ABConfig, profile_config
from alkit.experiments.rounds import CURVE_COLUMNS, run_rounds
from alkit.query.selection import load_selection

pytestmark = pytest.mark.usefixtures("one_thread_module")


def _tiny() -> ABConfig:
    return profile_config("tiny")


def test_bad_settings_fail_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="unknown selection method"):
        run_rounds(_tiny(), tmp_path, methods=("AL", "COIN"))
    with pytest.raises(ConfigError, match="n_rounds"):
        run_rounds(_tiny(), tmp_path, n_rounds=0)
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_two_rounds_grow_each_methods_own_labelled_set(tmp_path):
    config = _tiny()
    curves = run_rounds(
        config,
        tmp_path,
        n_rounds=2,
        methods=("AL", "RANDOM"),
        test_set_names=("global",),
        progress=False,
        log=lambda _: None,
    )
    assert tuple(curves.columns) == CURVE_COLUMNS
    assert set(curves.method) == {"AL", "RANDOM"} and set(curves["round"]) == {0, 1, 2}
    assert set(curves.test_set) == {"global"} and {"wMAP", "AP50"} <= set(curves.metric)
    initial = len(range(0, 2 * 100, config.run.world.initial_stride))
    frames = curves.groupby(["method", "round"]).labelled_frames.first()
    assert frames[("AL", 0)] == frames[("RANDOM", 0)] == initial
    assert frames[("AL", 2)] == frames[("RANDOM", 2)] == initial + 2 * config.run.query.budget
    # round 0 is the same REFERENCE model for every method
    zero = curves[curves["round"] == 0].pivot_table(
        index=["class", "metric"], columns="method", values="value", dropna=False
    )
    pd.testing.assert_series_equal(zero.AL, zero.RANDOM, check_names=False)
    saved = pd.read_csv(tmp_path / "curves.csv")
    assert len(saved) == len(curves)
    for method in ("AL", "RANDOM"):
        first = load_selection(str(tmp_path / "selections" / f"{method}_01.json"))
        second = load_selection(str(tmp_path / "selections" / f"{method}_02.json"))
        assert not set(first.frame_ids) & set(second.frame_ids)  # never picked twice
    al = load_selection(str(tmp_path / "selections" / "AL_02.json"))
    # round 2 queried with retrained members
    assert len(al.ensemble) == config.run.ensemble.n_members
    chains = [lineage(str(tmp_path / "versions"), v) for v in _newest(tmp_path)]
    assert sorted(len(c) for c in chains) == [3, 3]  # initial -> round 1 -> round 2, per method
    assert {c[0]["params"]["method"] for c in chains} == {"AL", "RANDOM"}


def _newest(out) -> list[str]:
    """Versions no other version names as its parent."""
    from alkit.data.versions import list_versions, version_info

    root = str(out / "versions")
    hashes = list_versions(root)
    parents = {version_info(root, h).get("parent") for h in hashes}
    return [h for h in hashes if h not in parents]
