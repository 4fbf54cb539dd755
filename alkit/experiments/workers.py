"""One runner for world seeds: each in the calling process, or each in a worker process of its
own on one CPU thread (the replicated experiment and its rounds)."""

from __future__ import annotations

import functools
import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any


def _exit_with_parent() -> None:
    """A worker's initializer: exit when the process that started it dies (a killed run must
    not leave workers training on and writing into its folder)."""
    parent = multiprocessing.parent_process()

    def watch() -> None:
        parent.join()  # returns when the parent process has ended, however it ended
        os._exit(1)

    if parent is not None:
        threading.Thread(target=watch, daemon=True).start()


def _alone(run: Callable, seed: int, out_dir: Path, args: tuple) -> Any:
    """``run`` in a worker process: one CPU thread, no progress bars, log lines flushed."""
    import torch

    torch.set_num_threads(1)
    return run(seed, out_dir, *args, False, functools.partial(print, flush=True))


def run_world_seeds(
    run: Callable, seeds: Sequence[int], root: Path, args: tuple, workers: int,
    progress: bool, log: Callable[[str], None],
) -> list[Any]:  # fmt: skip
    """``run(seed, root / f"world_{seed}", *args, progress, log)`` for every seed, in order;
    ``workers`` > 1: that many at once in spawned worker processes (``run`` must pickle: a
    module-level function or a ``functools.partial`` of one). On a 2-core CPU two
    single-threaded trainings do about 1.4x the work of one on two threads; floating-point
    sums may then differ in their last bits from a one-worker run."""
    if workers > 1 and len(seeds) > 1:
        log(f"{len(seeds)} world seeds, {workers} at a time in worker processes")
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_exit_with_parent
        ) as pool:
            jobs = [pool.submit(_alone, run, s, root / f"world_{s}", args) for s in seeds]
            return [job.result() for job in jobs]
    return [run(s, root / f"world_{s}", *args, progress, log) for s in seeds]


__all__ = ["run_world_seeds"]
