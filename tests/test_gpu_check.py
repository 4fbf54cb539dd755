"""``make gpu-check`` runs unchanged the first time a GPU is lent: its script and every bench
it calls run here on the CPU (``--cpu-smoke``: the same code, tiny sizes) and report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHES = ("gpu_train", "gpu_score", "gpu_ddp_score")


@pytest.mark.slow
def test_gpu_check_runs_every_step_on_the_cpu(tmp_path: Path):
    out = tmp_path / "gpu-check" / "results.jsonl"
    env = {**os.environ, "PY": sys.executable, "GPU_CHECK_OUT": str(out),
           "MASTER_PORT": str(29500 + os.getpid() % 1000), "OMP_NUM_THREADS": "1"}  # fmt: skip
    done = subprocess.run([str(ROOT / "bench" / "gpu_check.sh"), "--cpu-smoke"], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["bench"] for line in lines] == list(BENCHES)
    for line in lines:
        assert set(line) == {"bench", "figures", "targets", "met"} and line["met"] is True
    # the printed results end with the same lines (each bench's last stdout line)
    assert done.stdout.strip().splitlines()[-3:] == out.read_text().strip().splitlines()
    train, score, ddp = (line["figures"] for line in lines)
    assert train["members_trained"] == train["members"] == 2 and train["image_hw"] == [384, 640]
    assert train["members_per_s"] > 0
    assert score["frames_scored"] == score["frames"] and score["ours_frames_per_s_w1"] > 0
    assert score["bare_forward_frames_per_s"] > 0 and score["image_hw"] == [384, 640]
    assert ddp["ranks"] == 2 and ddp["frames_scored"] == ddp["frames"]


def test_gpu_check_without_cuda_says_what_to_install(tmp_path: Path):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible")
    env = {**os.environ, "PY": sys.executable, "GPU_CHECK_OUT": str(tmp_path / "r.jsonl")}
    done = subprocess.run([str(ROOT / "bench" / "gpu_check.sh")], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2
    assert "no CUDA device" in done.stderr and "--index-url" in done.stderr
