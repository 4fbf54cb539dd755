"""Every driver of the loop runs the loop the product runs.

The notebook steps, the A/B test and the rounds go through the same stage functions (TRAIN,
QUERY, ANNOTATE, APPEND, RETRAIN and EVALUATE each exist once), and in every driver (those
three, the replicated experiment and its rounds) each evaluated learner trained on a version
that APPEND wrote: its hash is recorded beside the evaluation, and that version's lineage names
the arm (and round) whose labels it appended."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import pytest

from alkit.annotate.oracle import OracleLabeller
from alkit.data.lineage import append_batch, lineage
from alkit.ensemble.retrain import retrain
from alkit.ensemble.train import train_members
from alkit.evaluate.predict import evaluate_model
from alkit.experiments.abtest import profile_config, run_ab_test
from alkit.experiments.replicated import COST_MATCHED
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
    "ANNOTATE": OracleLabeller.label,
    "APPEND": append_batch,
    "EVALUATE": evaluate_model,
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
        result = run_ab_test(profile_config("tiny"), tmp_path / "ab", **QUIET)
    with stages_called() as rounds:
        curves = run_rounds(profile_config("tiny"), tmp_path / "rounds", 1, ("AL", "RANDOM"),
                            **QUIET)  # fmt: skip
    assert steps >= set(STAGES), sorted(steps)
    assert ab == set(STAGES) | {"RETRAIN"}, sorted(ab)
    assert rounds == set(STAGES) | {"RETRAIN"}, sorted(rounds)
    # every learner trained on a version APPEND wrote
    _check_versions(result.results, str(tmp_path / "ab" / "versions"))
    _check_versions(curves, str(tmp_path / "rounds" / "versions"), rounds="round")


def _check_versions(results, root: str, rounds: str = "") -> None:
    """Each row's ``version`` is stored under ``root``; REFERENCE's (round 0's) is the initial
    set; any other's lineage ends in the initial set and its newest entry appended an arm's
    labels (in the row's round)."""
    assert results.version.notna().all()
    initial = set()
    for (method, version), rows in results.groupby(["method", "version"]):
        chain = lineage(root, version)
        first = rows[rounds].iloc[0] if rounds else None
        if method == "REFERENCE" or first == 0:
            assert len(chain) == 1, (method, version)
            initial.add(version)
            continue
        params = chain[0]["params"]
        # versions are content-addressed: arms that picked the same frames share one, whose
        # lineage names the arm that appended it first
        assert params["method"] in set(results.method), method
        if rounds:
            assert set(rows[rounds]) == {params["round"]} and len(chain) == params["round"] + 1
        assert chain[0]["labelling"]["frames"] > 0
        initial.add(chain[-1]["hash"])
    assert len(initial) == 1  # one initial set per world


def test_the_experiment_and_its_rounds_train_on_appended_versions(tiny_experiment, tiny_curves):
    _, out, tables = tiny_experiment
    results = tables["results"]
    assert set(results.method) > {"REFERENCE", "AL"}
    _check_versions(results, str(out / "world_0" / "versions"))
    # an arm cut to equal seconds trains on its prefix, appended as a version of its own
    root = str(out / "world_0" / "versions")
    for arm in ("AL", "RANDOM-night"):
        cut, whole = (
            results[results.method == m].version.iloc[0] for m in (arm + COST_MATCHED, arm)
        )
        assert lineage(root, cut)[0]["frames"] <= lineage(root, whole)[0]["frames"]
    _, out, tables = tiny_curves
    rounds = tables["rounds_results"]
    assert set(rounds["round"]) == {0, 1, 2}
    _check_versions(rounds, str(out / "world_0" / "versions"), rounds="round")
