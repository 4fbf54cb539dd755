"""Fixtures shared by test modules."""

from __future__ import annotations

import contextlib

import pytest
import torch

from alkit.workflow.pipeline import RunResult, run_recipe


@contextlib.contextmanager
def one_thread():
    """Kernels and in-process torch on one thread: on a shared 2-core machine OpenMP threads
    contending with other processes make these tiny models about 5x slower."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def one_thread_module():
    """``one_thread`` for a whole test module (``pytest.mark.usefixtures``)."""
    with one_thread():
        yield


@pytest.fixture(scope="session")
def ab_run(tmp_path_factory) -> RunResult:
    """A finished ``ab`` recipe run with the ``tiny`` profile, built once per session."""
    run_dir = tmp_path_factory.mktemp("notebooks") / "ab"
    with one_thread():
        return run_recipe("ab", run_dir, "tiny", progress=False, log=lambda _: None)
