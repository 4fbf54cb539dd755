"""The three ways of running the loop (the notebook steps, the A/B test, the rounds) go through
the same stage functions: TRAIN, QUERY, ANNOTATE, APPEND and EVALUATE each exist once."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import pytest

from alkit.annotate.oracle import OracleLabeler
from alkit.data.lineage import append_batch
from alkit.ensemble.retrain import retrain
from alkit.ensemble.train import train_members
from alkit.evaluate.test_sets import evaluation_table
from alkit.experiments.abtest import run_ab_test
from alkit.experiments.profiles import profile_config
from alkit.experiments.rounds import run_rounds
from alkit.query.pool_query import query_pool
from alkit.workflow.steps import (
    annotate_step,
    append_step,
    evaluate_step,
    query_step,
    train_step,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread_module")]

STAGES = {
    "TRAIN": train_members,
    "QUERY": query_pool,
    "ANNOTATE": OracleLabeler.label,
    "APPEND": append_batch,
    "EVALUATE": evaluation_table,
}
QUIET = {"progress": False, "log": lambda _: None}


@contextlib.contextmanager
def stages_called():
    """The names of ``STAGES`` whose code runs inside the block (a profile hook sees calls)."""
    codes = {f.__code__: name for name, f in {**STAGES, "RETRAIN": retrain}.items()}
    seen: set[str] = set()

    def hook(frame, event, arg):
        if event == "call" and frame.f_code in codes:
            seen.add(codes[frame.f_code])

    sys.setprofile(hook)
    try:
        yield seen
    finally:
        sys.setprofile(None)


def _notebook_steps(out: Path) -> None:
    trained = train_step(out / "01", profile="tiny")
    queried = query_step(out / "02", str(trained.data), str(trained.ensemble), profile="tiny")
    data = str(trained.data)
    annotated = annotate_step(out / "03", data, str(queried.paths["AL"]), profile="tiny")
    appended = append_step(out / "04", data, str(annotated.batch), str(queried.paths["AL"]),
                           profile="tiny")  # fmt: skip
    again = train_step(out / "05", str(out / "04" / "version.json"), profile="tiny")
    assert again.version == appended.version  # the next TRAIN trains on the appended version
    evaluate_step(out / "06", str(again.data), str(again.ensemble), profile="tiny")


def test_the_notebook_steps_the_ab_test_and_the_rounds_share_the_stage_functions(tmp_path):
    with stages_called() as steps:
        _notebook_steps(tmp_path / "steps")
    with stages_called() as ab:
        run_ab_test(profile_config("tiny"), tmp_path / "ab", **QUIET)
    with stages_called() as rounds:
        run_rounds(profile_config("tiny"), tmp_path / "rounds", 1, ("AL", "RANDOM"), **QUIET)
    assert steps >= set(STAGES), sorted(steps)
    assert ab == set(STAGES) | {"RETRAIN"}, sorted(ab)
    assert rounds == set(STAGES) | {"RETRAIN"}, sorted(rounds)
