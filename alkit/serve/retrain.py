"""Retraining in the background: the loop's TRAIN and QUERY steps on the newest version.

A round is ``<serve>/rounds/NNN/``: ``job.json`` (the version to train on and the steps'
parameters, as the run's own steps ran), then ``train_step`` (``train/``) and ``query_step``
(``query/``, the pool rescored, AL picked) run in a child process,
``python -m alkit.serve.retrain <round folder>``, whose output goes to a log file; its
``done.json``, written last, says the round is finished. :class:`Retrainer` runs one such
process at a time and calls back when it ends; the server keeps answering meanwhile.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from alkit.data import storage

JOB, DONE = "job.json", "done.json"


def write_job(folder: Path, version: dict, run: dict) -> None:
    """``job.json`` of a round: ``version`` ({root, hash, data}) and the run's TRAIN / QUERY
    profiles and values (``run``)."""
    folder.mkdir(parents=True, exist_ok=True)
    storage.atomic_write_json(str(folder / "version.json"), version)
    storage.atomic_write_json(str(folder / JOB), run)


def run_round(folder: Path) -> dict:
    """TRAIN on the round's version, QUERY the pool with the new ensemble; ``done.json``."""
    from alkit.workflow.steps import query_step, train_step

    job = storage.read_json(str(folder / JOB))
    trained = train_step(
        folder / "train", str(folder / "version.json"), job["train_profile"], **job["train_values"]
    )
    queried = query_step(
        folder / "query",
        str(trained.data),
        str(trained.ensemble),
        [],
        job["query_profile"],
        **job["query_values"],
    )
    done = {
        "ensemble": str(trained.ensemble),
        "data": str(trained.data),
        "scores": str(folder / "query" / "scores" / "AL"),
        "selection": str(queried.paths["AL"]),
        "trained_on": trained.version,
        "frames": trained.frames,
    }
    storage.atomic_write_json(str(folder / DONE), done)
    return done


class Retrainer:
    """At most one retraining process at a time.

    ``start(folder, on_done)`` launches the round in ``folder`` unless one is running
    (``False`` then); ``on_done(folder, returncode)`` is called from a watcher thread when it
    ends. ``stop()`` terminates a running one (the round resumes on the next start).
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.lock = threading.Lock()
        self.process: subprocess.Popen | None = None
        self.folder: Path | None = None

    @property
    def running(self) -> bool:
        with self.lock:
            return self.process is not None and self.process.poll() is None

    def start(self, folder: Path, on_done: Callable[[Path, int], None]) -> bool:
        with self.lock:
            if self.process is not None and self.process.poll() is None:
                return False
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log = open(self.log_dir / f"round-{folder.name}.log", "a")  # noqa: SIM115
            self.process = subprocess.Popen(
                [sys.executable, "-m", "alkit.serve.retrain", str(folder)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            log.close()
            self.folder = folder
            process = self.process

        def watch() -> None:
            code = process.wait()
            on_done(folder, code)

        threading.Thread(target=watch, name=f"alkit-retrain-{folder.name}", daemon=True).start()
        return True

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the running process (its return code; ``None`` when none runs)."""
        process = self.process
        return None if process is None else process.wait(timeout)

    def stop(self) -> None:
        with self.lock:
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(20)
                except subprocess.TimeoutExpired:
                    self.process.kill()


def main(argv: list[str] | None = None) -> int:
    """``python -m alkit.serve.retrain <round folder>``."""
    args = sys.argv[1:] if argv is None else argv
    run_round(Path(args[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
