"""A loop run folder for the backend's tests: the ``loop`` recipe, tiny, stopped for labels."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from alkit.workflow.pipeline import run_recipe
from alkit.workflow.runfolder import StepFailed
from tests.conftest import one_thread


@pytest.fixture(scope="session")
def loop_run(tmp_path_factory) -> Path:
    """``python -m alkit run loop --profile tiny -p labeller=labelstudio``: 01 TRAIN and 02
    QUERY finished, 03 ANNOTATE stopped for the tool's labels (as a team's run does)."""
    run_dir = tmp_path_factory.mktemp("serve") / "loop"
    with one_thread():
        with pytest.raises(StepFailed, match="LabelsPending"):
            run_recipe(
                "loop",
                run_dir,
                "tiny",
                {"labeller": "labelstudio"},
                progress=False,
                log=lambda _: None,
            )
    return run_dir


@pytest.fixture
def run_dir(loop_run, tmp_path) -> Path:
    """A copy of the loop run for one test (the backend writes ``serve/`` into it)."""
    out = tmp_path / "run"
    shutil.copytree(loop_run, out)
    return out
