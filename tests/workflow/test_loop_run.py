"""What a later round reads of a loop run: the QUERY step's scoring precision."""

from __future__ import annotations

from pathlib import Path

from alkit.workflow.loop_run import LoopRun


def _run(profile: str, values: dict) -> LoopRun:
    p = Path("run")
    return LoopRun(p, p / "data.json", p / "ensemble.json", None, "quick", {}, profile, values)


def test_score_precision_is_the_query_steps_value_else_its_profiles():
    assert _run("quick", {}).score_precision is None  # the members' training precision
    assert _run("quick", {"score_precision": "32-true"}).score_precision == "32-true"
