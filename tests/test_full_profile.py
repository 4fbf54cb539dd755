"""The ``full`` profile (the GPU scale: 384 x 640 frames, 8 members of its U-Net, scoring with
render workers, retraining from scratch) runs end to end on a CPU slice, so the profile is
known to build, train, score, annotate, retrain and evaluate before a GPU ever runs it
(``make gpu-check`` then measures it there).

The profile's own values are used as they are, except what sets the amount of work: one
drive per segment (two test drives: one day, one night), every 25th frame, one optimiser
step per member and per retraining, batches of 2 (the profile's 32 would make each retraining
step draw 32 frames of 384 x 640: minutes a step and 11 GB here), one
split, a budget of 2 frames.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from alkit.config.profiles import profile_parameters
from alkit.experiments.abtest import profile_config, run_ab_test

FULL = profile_parameters("full")
SLICE = {
    "sessions": {"initial": 1, "pool": 1, "test": 2},
    "initial_stride": 25,  # 4 labelled frames
    "pool_stride": 25,  # 4 night pool frames scored
    "test_stride": 50,  # 4 global test frames, 4 night ones
    "train": {**FULL["train"], "max_steps": 1, "warmup_steps": 1},
    "batch_size": 2,
    "budget": 2,
    "manual_subsequence": 2,
    "retrain_steps": 1,
    "n_splits": 1,
    "accelerator": "cpu",
}


@pytest.mark.slow
def test_full_profile_runs_end_to_end_on_a_cpu_slice(tmp_path: Path):
    config = profile_config("full", **SLICE)
    # what makes it the full profile is kept
    run = config.run
    assert (run.world.world_profile, run.ensemble.n_members) == ("full", 8)
    assert run.ensemble.model == FULL["model"]
    assert run.retraining.mode == "scratch"
    assert run.scoring.num_workers == FULL["score_workers"] > 0
    result = run_ab_test(config, tmp_path / "run", progress=False, log=lambda _: None)

    ensemble = pd.read_json(tmp_path / "run" / "ensemble" / "ensemble.json", typ="series")
    assert len(ensemble["members"]) == 8
    scores = pd.concat(pd.read_parquet(p) for p in (tmp_path / "run" / "scores").rglob("*.parquet"))
    assert len(scores) == 4 and scores.drop(columns="frame_id").notna().all().all()
    selections = result.selections
    assert len(selections) >= 4  # AL, MANUAL, RANDOM, METADATA
    results = result.results
    assert {"REFERENCE", "AL", "MANUAL", "RANDOM", "METADATA"} <= set(results.method)
    assert {"global", "night_heldout"} <= set(results.test_set)
    assert results.value.notna().any()
    assert (tmp_path / "run" / "tables.txt").read_text().strip()
