"""One runner for world seeds: each in the calling process, or each in a worker process of its
own on one CPU thread (the replicated experiment and its rounds)."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
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


#: In a worker process: the queue its log lines go to (``_start_worker``).
_LINES = None


def _start_worker(lines) -> None:
    """A worker's initializer: its log lines go to ``lines``; it exits with its parent."""
    global _LINES
    _LINES = lines
    _exit_with_parent()


def _alone(run: Callable, seed: int, out_dir: Path, args: tuple) -> Any:
    """``run`` in a worker process: one CPU thread, no progress bars, log lines sent to the
    process that started it (which logs them once, where its own lines go: a notebook's
    output or the terminal)."""
    import torch

    torch.set_num_threads(1)
    return run(seed, out_dir, *args, False, _LINES.put)


def _relay(lines, log: Callable[[str], None], stop: threading.Event) -> None:
    """Log the workers' lines, each after the time since the workers started (``+h:mm:ss``),
    until ``stop`` is set and none is left. It only reads: a worker killed while writing
    cannot make the run hang here."""
    start = time.monotonic()
    while not (lines.empty() and stop.is_set()):
        if lines.empty():
            time.sleep(0.05)
            continue
        seconds = int(time.monotonic() - start)
        log(f"+{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d} {lines.get()}")


def run_world_seeds(
    run: Callable, seeds: Sequence[int], root: Path, args: tuple, workers: int,
    progress: bool, log: Callable[[str], None],
) -> list[Any]:  # fmt: skip
    """``run(seed, root / f"world_{seed}", *args, progress, log)`` for every seed, in order;
    ``workers`` > 1: that many at once in spawned worker processes (``run`` must pickle: a
    module-level function or a ``functools.partial`` of one); their log lines come back to
    ``log`` in this process, each after the time since the workers started. On a 2-core CPU two
    single-threaded trainings do about 1.4x the work of one on two threads; floating-point
    sums may then differ in their last bits from a one-worker run."""
    if workers > 1 and len(seeds) > 1:
        log(f"{len(seeds)} world seeds, {workers} at a time in worker processes")
        context = multiprocessing.get_context("spawn")
        lines = context.SimpleQueue()
        stop = threading.Event()
        relay = threading.Thread(target=_relay, args=(lines, log, stop), daemon=True)
        relay.start()
        try:
            with ProcessPoolExecutor(
                workers, mp_context=context, initializer=_start_worker, initargs=(lines,)
            ) as pool:
                jobs = [pool.submit(_alone, run, s, root / f"world_{s}", args) for s in seeds]
                return [job.result() for job in jobs]
        finally:
            stop.set()
            relay.join()
    return [run(s, root / f"world_{s}", *args, progress, log) for s in seeds]


__all__ = ["run_world_seeds"]
