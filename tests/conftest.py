"""Fixtures shared by test modules."""

from __future__ import annotations

import pytest
import torch

from alkit.pipeline import RunResult, run_recipe


@pytest.fixture(scope="session")
def ab_run(tmp_path_factory) -> RunResult:
    """A finished ``ab`` recipe run with the ``tiny`` profile, built once per session (one
    thread: OpenMP threads contending on a shared 2-core machine make it about 5x slower)."""
    run_dir = tmp_path_factory.mktemp("notebooks") / "ab"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return run_recipe("ab", run_dir, "tiny", progress=False, log=lambda _: None)
        finally:
            torch.set_num_threads(threads)
