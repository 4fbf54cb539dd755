"""The full profile's ensemble training on a GPU: members per second in bf16.

Trains the full profile's ``n_members`` U-Nets (its ``model`` and ``train`` values, 384 x 640
frames of its world, its batch size) for ``--steps`` optimiser steps each, one member after
another on one device (``alkit.ensemble.train.train_ensemble``), in bf16-mixed. The frames are
rendered and cached first (``cache_s``, not in the figure); ``members_per_s`` = members /
training seconds (Trainer start-up included, as a real run pays it), with steps/s and
images/s beside it. Target: every member trains (its checkpoint is written) and its loss is
finite.

Run: ``.venv/bin/python bench/gpu_train.py [--steps 50] [--frames 256]``; ``--cpu-smoke``
runs the same code on the CPU with 2 small members, 1 step, 2 frames, fp32. The last line is a JSON
summary.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_common import device, full_values, full_world, print_summary  # noqa: E402

from alkit.detector.module import TrainConfig  # noqa: E402
from alkit.detector.network import DetectorConfig  # noqa: E402
from alkit.ensemble.datamodule import DetectionDataModule  # noqa: E402
from alkit.ensemble.store import load_ensemble  # noqa: E402
from alkit.ensemble.train import train_ensemble  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=50, help="optimiser steps per member")
    parser.add_argument("--frames", type=int, default=256, help="cached training frames")
    parser.add_argument("--members", type=int, default=None, help="default: the profile's")
    parser.add_argument("--workers", type=int, default=8, help="workers rendering the cache")
    parser.add_argument("--cpu-smoke", action="store_true")
    args = parser.parse_args()
    dev = device(args.cpu_smoke)
    values = full_values(args.cpu_smoke)
    members = args.members or (2 if args.cpu_smoke else values["n_members"])
    steps, frames = (1, 2) if args.cpu_smoke else (args.steps, args.frames)
    batch = min(values["batch_size"], frames)
    workers = 0 if args.cpu_smoke else args.workers
    world = full_world(initial=max(1, math.ceil(frames / 100)), pool=1, test=1)
    ids = list(world.segment_frame_ids("initial"))[:frames]
    model = DetectorConfig(**values["model"])
    train = TrainConfig(**{**values["train"], "max_steps": steps, "max_epochs": 10_000,
                           "warmup_steps": min(values["train"].get("warmup_steps", 50), steps),
                           "precision": dev.precision})  # fmt: skip

    data = DetectionDataModule((world, ids), batch_size=batch, num_workers=workers, cache=True)
    start = time.perf_counter()
    data.setup("fit")
    cache_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        manifest = train_ensemble(members, data, model, train, out_dir=out,
                                  accelerator=dev.accelerator, devices=1,
                                  enable_progress_bar=False, log=lambda _: None)  # fmt: skip
        if dev.device == "cuda":
            torch.cuda.synchronize()
        train_s = time.perf_counter() - start
        ensemble = load_ensemble(manifest)
        trained = len(ensemble.members)
        x = data.dataset[0]["image"][None]  # (1, 3, H, W)
        with torch.inference_mode():
            finite = all(bool(torch.isfinite(m(x).heatmap_logits).all()) for m in ensemble.members)
    figures = {
        "device": dev.name,
        "precision": dev.precision,
        "members": members,
        "steps_per_member": steps,
        "batch_size": batch,
        "image_hw": [world.config.image_height, world.config.image_width],
        "model": values["model"],
        "cache_frames": len(ids),
        "cache_s": round(cache_s, 2),
        "train_s": round(train_s, 2),
        "members_per_s": round(members / train_s, 4),
        "steps_per_s": round(members * steps / train_s, 2),
        "images_per_s": round(members * steps * batch / train_s, 1),
        "members_trained": trained,
        "outputs_finite": finite,
    }
    print(f"{members} members x {steps} steps (batch {batch}, {figures['image_hw']}, "
          f"{dev.precision}) on {dev.name}: {train_s:.1f} s -> {figures['members_per_s']} "
          f"members/s, {figures['images_per_s']} images/s; cache {cache_s:.1f} s")  # fmt: skip
    print_summary("gpu_train", figures, {"members_trained": members, "outputs_finite": True},
                  trained == members and finite)  # fmt: skip


if __name__ == "__main__":
    main()
