"""What the GPU benches share: the full profile's values, its world, the device, a summary.

``make gpu-check`` (``bench/gpu_check.sh``) runs ``gpu_train.py``, ``gpu_score.py`` and
``gpu_ddp_score.py`` on a CUDA machine; each takes ``--cpu-smoke`` to run the same code on a
CPU in seconds (tiny sizes, fp32), which ``tests/test_gpu_check.py`` does in ``make test``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Any

import torch

from alkit.config.profiles import profile_parameters
from alkit.detector.network import DetectorConfig, UNetDetector
from alkit.sim import World, experiment_world

#: Each bench script's last stdout line: {"bench", "figures", "targets", "met"}.
SUMMARY_KEYS = ("bench", "figures", "targets", "met")
#: The U-Net of a ``--cpu-smoke`` run: the same code path as the profile's, in seconds on a
#: CPU (the profile's own network runs on a CPU in ``tests/test_full_profile.py``).
SMOKE_MODEL = {"width": 4, "depth": 2, "stride": 4, "head_width": 8}


@dataclass(frozen=True)
class Device:
    """Where a bench runs: ``accelerator`` for Lightning, ``device`` for torch, ``precision``
    (bf16-mixed on a GPU, as the full profile trains and scores there; fp32 on the CPU smoke
    run), ``name`` for the report."""

    accelerator: str
    device: str
    precision: str
    name: str
    count: int


def device(cpu_smoke: bool) -> Device:
    """The CUDA device (exits with a message naming the fix when there is none), or the CPU
    for ``--cpu-smoke``."""
    if cpu_smoke:
        return Device("cpu", "cpu", "32-true", "cpu (smoke run)", 1)
    if not torch.cuda.is_available():
        sys.exit(
            f"no CUDA device visible to torch {torch.__version__} (the Makefile installs the CPU "
            "wheel): install a CUDA build of the same version, e.g. .venv/bin/pip install "
            f"torch=={torch.__version__.split('+')[0]} --index-url "
            "https://download.pytorch.org/whl/cu128, or run with --cpu-smoke"
        )
    name = torch.cuda.get_device_name(0)
    return Device("gpu", "cuda", "bf16-mixed", name, torch.cuda.device_count())


def full_values(cpu_smoke: bool = False) -> dict[str, Any]:
    """The ``full`` profile's parameter values (``alkit.config.profiles``); with
    ``cpu_smoke`` its model is ``SMOKE_MODEL``."""
    values = profile_parameters("full")
    return values | {"model": SMOKE_MODEL} if cpu_smoke else values


def full_world(seed: int = 0, **sessions: int) -> World:
    """The full profile's 384 x 640 world (``sessions``: segment sizes, e.g. ``pool=20``)."""
    return World(experiment_world("full", seed=seed, **sessions))


def seeded_members(model: dict[str, Any], n: int) -> list[UNetDetector]:
    """``n`` untrained members of the ``model`` architecture, member i seeded with i (the
    benches time the forward pass, not what the weights learned)."""
    members = []
    for seed in range(n):
        torch.manual_seed(seed)
        members.append(UNetDetector(DetectorConfig(**model)).eval())
    return members


def print_summary(bench: str, figures: dict, targets: dict, met: bool) -> dict:
    summary = {"bench": bench, "figures": figures, "targets": targets, "met": bool(met)}
    print(json.dumps(summary), flush=True)
    return summary


def rank() -> int:
    """This process's rank under a DDP launch (0 outside one)."""
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")))
