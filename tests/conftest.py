"""Fixtures shared by test modules."""

from __future__ import annotations

import contextlib

import pytest
import torch

from alkit.workflow.pipeline import RunResult, run_recipe
from tests.labelstudio import labelstudio  # noqa: F401 - one Label Studio server per session

#: Session fixtures that train: a test that uses one is ``slow`` (``make test-fast`` trains
#: nothing).
TRAINING_FIXTURES = frozenset({"ab_run", "tiny_experiment", "tiny_curves", "loop_run"})


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark ``slow`` every test that uses a training fixture (before ``-m`` selects), and put
    each test in its ``xdist_group`` (``one_worker_each``)."""
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    one_worker_each(items)


def _session_fixtures(item) -> set[str]:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return set()
    return {name for name, defs in info.name2fixturedefs.items()
            if defs and defs[-1].scope == "session"}  # fmt: skip


def one_worker_each(items) -> None:
    """``make test`` runs on two workers (pytest-xdist, ``--dist loadgroup``): a test module
    and every module that shares a session fixture with it (a trained run, a server) form one
    group, run by one worker, so nothing expensive is built twice. Groups holding slow tests
    go first, the most slow tests first, so the long ones start early and the short ones
    fill in (``--no-loadscope-reorder`` keeps this order). pytest-xdist 3.8 groups by
    rewriting ``item._nodeid``, which pytest 9 no longer reads: pytest stays below 9."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    cheap = {"tmp_path_factory", "worker_id", "testrun_uid"}
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        for name in sorted(_session_fixtures(item) - cheap):
            if not name.startswith("_"):
                a, b = sorted((find(module), find("fixture:" + name)))
                parent[b] = a  # the smaller name is the root: the same on every worker
        find(module)
    group = {id(item): find(item.nodeid.split("::", 1)[0]) for item in items}
    slow: dict[str, int] = {}
    for item in items:
        item.add_marker(pytest.mark.xdist_group(group[id(item)]))
        if item.get_closest_marker("slow"):
            slow[group[id(item)]] = slow.get(group[id(item)], 0) + 1
    order = {id(item): i for i, item in enumerate(items)}
    items.sort(key=lambda item: (-slow.get(group[id(item)], 0), order[id(item)]))


def pytest_configure(config):
    """A worker of ``make test`` (pytest-xdist) runs torch and its kernels on one thread:
    two workers share the two cores."""
    import os

    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def fast_tests_train_nothing(request, monkeypatch):
    """A test not marked ``slow`` fails if it starts a Lightning fit (in this process)."""
    if request.node.get_closest_marker("slow") is None:
        import lightning.pytorch as pl

        def refuse(*args, **kwargs):
            raise AssertionError(f"{request.node.nodeid} trains (Trainer.fit): mark it slow")

        monkeypatch.setattr(pl.Trainer, "fit", refuse)
    yield


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


#: The tiny replicated experiment every test that only reads it shares (4 members: halves of
#: 2 for the diagnostics; the tiny world's test drives have night objects too rarely: global).
TINY_EXPERIMENT = {
    "world_seeds": (0,),
    "pool_blocks": 1,
    "finetune_seeds": (0, 1),
    "test_set": "global",
    "n_resamples": 200,
    "cost_matched": True,
}
#: The tiny learning curves (4 frames per round, 2 rounds).
TINY_CURVES = {
    "world_seeds": (0,),
    "pool_blocks": 1,
    "finetune_seeds": (0,),
    "test_set": "global",
    "n_resamples": 50,
}


@pytest.fixture(scope="session")
def tiny_experiment(tmp_path_factory):
    """``(config, out_dir, tables)`` of a finished tiny replicated experiment."""
    from alkit.experiments.abtest import profile_config
    from alkit.experiments.replicated import ExperimentConfig, run_experiment

    config = ExperimentConfig(ab=profile_config("tiny", n_members=4).to_dict(), **TINY_EXPERIMENT)
    out = tmp_path_factory.mktemp("experiment")
    with one_thread():
        tables = run_experiment(config, out, progress=False, log=lambda _: None)
    return config, out, tables


@pytest.fixture(scope="session")
def tiny_curves(tmp_path_factory):
    """``(config, out_dir, tables)`` of finished tiny learning curves (2 rounds of 4)."""
    from alkit.experiments.abtest import profile_config
    from alkit.experiments.replicated import ExperimentConfig
    from alkit.experiments.replicated_rounds import run_rounds_experiment

    config = ExperimentConfig(ab=profile_config("tiny", budget=8).to_dict(), **TINY_CURVES)
    out = tmp_path_factory.mktemp("curves")
    with one_thread():
        tables = run_rounds_experiment(config, out, n_rounds=2, progress=False,
                                       log=lambda _: None)  # fmt: skip
    return config, out, tables
