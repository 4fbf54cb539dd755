"""Killed, not failed: the CLI in a real process, SIGKILLed (with its kernel) during training and
again during scoring, then rerun, ends with what an uninterrupted run gives."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from alkit.query.score import read_scores
from alkit.query.selection import load_selection

pytestmark = pytest.mark.slow

#: the tiny profile, with round 1's training and scoring long enough (seconds) to be killed
#: inside; round 2's training (after the kills) as short as the profile's
PARAMS = [
    "-p", 'train={"max_epochs": 1, "max_steps": 40, "warmup_steps": 1}',
    "-p", 'round2_01_train_ensemble.train={"max_epochs": 1, "max_steps": 4, "warmup_steps": 1}',
    "-p", 'sessions={"initial": 2, "pool": 8, "test": 2}',
]  # fmt: skip


def _command(run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "alkit", "run", "loop", "--profile", "tiny",
            "--run-dir", str(run_dir), "--no-progress", *PARAMS]  # fmt: skip


def _env() -> dict:
    return os.environ | {"OMP_NUM_THREADS": "1"}


def _kill_when(run_dir: Path, ready, what: str, timeout: float = 300.0) -> None:
    """Start the CLI; SIGKILL it and every process under it once ``ready()`` holds."""
    proc = subprocess.Popen(_command(run_dir), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    start = time.monotonic()
    try:
        while not ready():
            assert proc.poll() is None, f"the run ended before {what}"
            assert time.monotonic() - start < timeout, f"no {what} within {timeout} s"
            time.sleep(0.02)
    finally:
        # the Jupyter kernel runs in a session of its own: kill the whole tree, no goodbyes
        children = psutil.Process(proc.pid).children(recursive=True)
        os.killpg(proc.pid, signal.SIGKILL)
        for child in children:
            try:
                child.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        proc.wait(30)
        psutil.wait_procs(children, timeout=30)


def _finish(run_dir: Path) -> None:
    done = subprocess.run(_command(run_dir), env=_env(), capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


def _results(run_dir: Path) -> dict:
    out = run_dir / "out"
    return {
        "scores": read_scores(str(out / "02_query/scores/AL")),
        "selections": {
            p.stem: load_selection(str(p)).frame_ids
            for p in sorted((out / "02_query/selections").glob("*.json"))
        },
        "version": json.loads((out / "04_append/version.json").read_text())["hash"],
        "evaluation": pd.read_csv(out / "05_evaluate/evaluation.csv"),
    }


def test_sigkill_during_training_and_scoring_then_rerun_equals_an_uninterrupted_run(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    _finish(whole)
    train = killed / "out/01_train_ensemble"
    _kill_when(
        killed,
        lambda: (train / "member_00.json").exists() and not (train / "member_01.json").exists(),
        "training of member 1",
    )
    assert not (train / "ensemble.json").exists()  # killed inside TRAIN
    scores = killed / "out/02_query/scores/AL"
    _kill_when(
        killed,
        lambda: (scores / "_plan.json").exists() and not list(scores.glob("shard-*.parquet")),
        "scoring",
    )
    assert not (killed / "out/02_query/selections").exists()  # killed inside QUERY
    _finish(killed)
    a, b = _results(whole), _results(killed)
    pd.testing.assert_frame_equal(a["scores"], b["scores"])
    assert a["selections"] == b["selections"] and set(a["selections"]) == {
        "AL", "MANUAL", "RANDOM", "METADATA"}  # fmt: skip
    assert a["version"] == b["version"]
    pd.testing.assert_frame_equal(a["evaluation"], b["evaluation"])
