"""The world-seed runner's worker processes: results in order, and none outlives a killed run."""

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from alkit.experiments.workers import run_world_seeds


def _square(seed, out_dir, factor, progress, log):
    log(f"world {seed}: squared")
    return (seed * seed * factor, out_dir.name, progress)


def test_results_and_log_lines_come_back_from_workers(tmp_path: Path, capfd):
    logged: list[str] = []
    got = run_world_seeds(_square, [3, 1, 2], tmp_path, (10,), 2, True, logged.append)
    assert got == [(90, "world_3", False), (10, "world_1", False), (40, "world_2", False)]
    # every worker line reaches the caller's log once, and nothing goes around it to the
    # inherited stdout (a notebook's kernel would echo that and send it to the output too)
    assert sorted(line.split(" ", 1)[1] for line in logged[1:]) == [
        f"world {s}: squared" for s in (1, 2, 3)
    ]
    assert all(re.fullmatch(r"\+0:00:\d\d world \d: squared", line) for line in logged[1:])
    assert "squared" not in capfd.readouterr().out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_workers_exit_when_the_run_that_started_them_is_killed(tmp_path: Path):
    # a run whose two workers sleep; SIGKILL the run: its workers must not go on
    script = textwrap.dedent(f"""
        import os, time
        from pathlib import Path
        from alkit.experiments.workers import run_world_seeds

        def sleeper(seed, out_dir, progress, log):
            Path({str(tmp_path)!r}, f"pid-{{seed}}").write_text(str(os.getpid()))
            time.sleep(120)

        if __name__ == "__main__":
            run_world_seeds(sleeper, [0, 1], Path({str(tmp_path)!r}), (), 2, False, print)
    """)
    (tmp_path / "run.py").write_text(script)
    run = subprocess.Popen([sys.executable, str(tmp_path / "run.py")], cwd=tmp_path)
    pid_files = [tmp_path / "pid-0", tmp_path / "pid-1"]
    deadline = time.monotonic() + 60
    while not all(p.exists() and p.read_text() for p in pid_files):
        assert time.monotonic() < deadline and run.poll() is None, "workers did not start"
        time.sleep(0.2)
    workers = [int(p.read_text()) for p in pid_files]
    assert all(_alive(w) for w in workers)
    run.send_signal(signal.SIGKILL)
    run.wait()
    deadline = time.monotonic() + 15
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers), "a worker outlived the killed run"
