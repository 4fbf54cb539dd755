"""The ``full`` profile (the GPU scale: 384 x 640 frames, 8 members of its U-Net, scoring with
render workers, retraining from scratch) runs end to end on a CPU slice, so the profile is
known to build, train, score, annotate, retrain and evaluate before a GPU ever runs it
(``make gpu-check`` then measures it there). The A/B arms' retraining (one from-scratch
fit per arm and split) is left out for time: REFERENCE (member 0) is evaluated instead.

The profile's own values are used as they are, except what sets the amount of work: one
drive per segment (two test drives: one day, one night), every 25th frame, one optimiser
step per member and per retraining, one split, a budget of 2 frames.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from alkit.data.datasets import VirtualFrames
from alkit.evaluate.predict import evaluate_model
from alkit.evaluate.test_sets import evaluation_set_ids
from alkit.experiments.abtest import ab_annotate, ab_query, ab_setup, ab_train
from alkit.experiments.profiles import profile_config, profile_parameters

FULL = profile_parameters("full")
SLICE = {
    "sessions": {"initial": 1, "pool": 1, "test": 2},
    "initial_stride": 25,  # 4 labelled frames
    "pool_stride": 25,  # 4 night pool frames scored
    "test_stride": 50,  # 4 global test frames, 4 night ones
    "train": {**FULL["train"], "max_steps": 1, "warmup_steps": 1},
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
    assert (config.profile, config.n_members, config.model) == ("full", 8, FULL["model"])
    assert config.retrain == "scratch" and config.score_workers == FULL["score_workers"] > 0
    quiet = lambda _: None  # noqa: E731
    setup = ab_setup(config, tmp_path / "run")
    trained = ab_train(setup, progress=False, log=quiet)  # TRAIN: 8 members, 1 step each
    assert len(trained.ensemble.members) == 8
    queried = ab_query(setup, trained, progress=False, log=quiet)  # QUERY: score the pool
    scores = pd.concat(pd.read_parquet(p) for p in (tmp_path / "run" / "scores").rglob("*.parquet"))
    assert len(scores) == 4 and scores.drop(columns="frame_id").notna().all().all()
    assert {"AL", "MANUAL", "RANDOM", "METADATA"} <= set(queried.selections)
    annotated = ab_annotate(setup, queried, log=quiet)  # ANNOTATE + APPEND
    assert all(len(v) > 0 for v in annotated.versions.values())
    test_ids = evaluation_set_ids(setup.world, "global", config.test_stride)
    result = evaluate_model(trained.ensemble.members[0], VirtualFrames(setup.world, test_ids))
    assert result.table.shape[0] == 5 and result.size_buckets.small_max_side == 32
