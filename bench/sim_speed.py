"""Is generating frames the bottleneck of scoring? Frame generation vs U-Net forward passes.

Measures, in one run and interleaved (so machine load hits both alike), the time to render
one quick-profile frame and the time of one default U-Net member's forward pass per frame at
the scoring batch size. Scoring runs M = 8 members on every frame, so the target is
``generate / (8 x forward) <= 0.1``: data at least 10x faster than the models that consume it.

Run: ``.venv/bin/python bench/sim_speed.py``; the last line is a JSON summary.
"""

from __future__ import annotations

import json
import statistics
import time

import numpy as np
import torch

from alkit.detector.network import DetectorConfig, UNetDetector
from alkit.sim import World, experiment_world

MEMBERS = 8
BATCH = 32
ROUNDS = 5


def main() -> None:
    torch.set_num_threads(2)
    world = World(experiment_world("quick", seed=0))
    pool = world.segment_frame_ids("pool")
    model = UNetDetector(DetectorConfig()).eval()
    h, w = world.config.image_height, world.config.image_width
    next_id = pool.start

    def generate_batch() -> tuple[float, np.ndarray]:
        nonlocal next_id
        start = time.perf_counter()
        images = np.stack([world.frame(next_id + i).image for i in range(BATCH)])
        next_id += BATCH
        return (time.perf_counter() - start) / BATCH, images

    def forward_batch(images: np.ndarray) -> float:
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)  # (B, 3, H, W)
        start = time.perf_counter()
        with torch.inference_mode():
            model(x)
        return (time.perf_counter() - start) / BATCH

    _, warm = generate_batch()
    forward_batch(warm)
    gen, fwd = [], []
    for _ in range(ROUNDS):
        g, images = generate_batch()
        gen.append(g)
        fwd.append(forward_batch(images))
    gen_ms, fwd_ms = statistics.median(gen) * 1e3, statistics.median(fwd) * 1e3
    ratio = gen_ms / (MEMBERS * fwd_ms)
    print(f"image {h}x{w}, batch {BATCH}, {ROUNDS} interleaved rounds, 2 threads")
    print(f"generate one frame:           {gen_ms:7.2f} ms  ({1e3 / gen_ms:6.0f} frames/s)")
    print(f"one member forward per frame: {fwd_ms:7.2f} ms  ({1e3 / fwd_ms:6.0f} frames/s)")
    print(f"{MEMBERS}-member ensemble per frame:  {MEMBERS * fwd_ms:7.2f} ms")
    print(f"generate / ({MEMBERS} x forward) = {ratio:.3f}  (target <= 0.1)")
    summary = {
        "bench": "sim_speed",
        "figures": {
            "generate_ms_per_frame": round(gen_ms, 3),
            "forward_ms_per_frame_one_member": round(fwd_ms, 3),
            "generate_over_ensemble_forward": round(ratio, 4),
            "generate_over_one_forward": round(gen_ms / fwd_ms, 4),
        },
        "targets": {"generate_over_ensemble_forward_max": 0.1},
        "met": bool(ratio <= 0.1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
