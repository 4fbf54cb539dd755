"""The full profile's pool scoring on a GPU: frames/s of 8 members at 384 x 640 in bf16.

``score_pool`` (``alkit.query.score``) scores ``--frames`` night frames of the full profile's
world with its ``n_members`` U-Nets (its ``model``, randomly initialised: the speed is the
same, the scores mean nothing), its ``score_batch_size``, bf16-mixed, the frames rendered by
``--workers`` DataLoader processes feeding the device (each count in the list is one run:
the profile's ``score_workers`` and more). Beside it the bare ensemble forward: the same
prepared members on one pre-rendered batch already on the device, repeated, in bf16
autocast: the most the device can do. ``ours_over_bare`` (best worker count) says whether
rendering and the rest of the pipeline keep the device busy; ``render_frames_per_s_one_worker``
how many workers it takes (``workers_needed``). Target: ours / bare >= 0.9 (on the CPU smoke
run only that every frame is scored).

Run: ``.venv/bin/python bench/gpu_score.py [--frames 1024] [--workers 4 14]``;
``--cpu-smoke`` runs the same code on the CPU (2 small members, 4 frames, fp32). The last
line is a JSON summary.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_common import device, full_values, full_world, print_summary, seeded_members  # noqa: E402

from alkit.data.datasets import PoolImages, collate_frames  # noqa: E402
from alkit.query.score import EnsembleProbabilities, read_scores, score_pool  # noqa: E402

TARGET = 0.9


def night_ids(world, n: int) -> list[int]:
    pool = world.manifest(world.segment_frame_ids("pool"))
    ids = pool[pool.time_of_day == "night"].frame_id.tolist()[:n]
    if len(ids) < n:
        raise SystemExit(f"the world has {len(ids)} night pool frames, fewer than {n}")
    return ids


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=1024)
    parser.add_argument("--members", type=int, default=None, help="default: the profile's")
    parser.add_argument("--workers", type=int, nargs="+", default=None,
                        help="render workers, one run each; default: the profile's "
                        "score_workers and all CPU cores but two")  # fmt: skip
    parser.add_argument("--bare-repeats", type=int, default=20)
    parser.add_argument("--cpu-smoke", action="store_true")
    args = parser.parse_args()
    dev = device(args.cpu_smoke)
    values = full_values(args.cpu_smoke)
    n_members = args.members or (2 if args.cpu_smoke else values["n_members"])
    n = 4 if args.cpu_smoke else args.frames
    batch = 2 if args.cpu_smoke else values["score_batch_size"]
    many = max(1, (os.cpu_count() or 4) - 2)
    default_workers = [0, 1] if args.cpu_smoke else sorted({values["score_workers"], many})
    workers = args.workers or default_workers
    repeats = 2 if args.cpu_smoke else args.bare_repeats
    world = full_world(pool=max(2, math.ceil(n / 70) + 2), initial=1, test=1)
    ids = night_ids(world, n)
    members = seeded_members(values["model"], n_members)

    start = time.perf_counter()
    images = [PoolImages(world, ids)[i] for i in range(min(batch, n))]
    render_fps = len(images) / (time.perf_counter() - start)
    x = collate_frames(images)["image"].to(dev.device)  # (B, 3, H, W)
    ensemble = EnsembleProbabilities(members).to(dev.device)
    bf16 = dev.precision.startswith("bf16")

    def sync() -> None:
        if dev.device == "cuda":
            torch.cuda.synchronize()

    with torch.inference_mode(), torch.autocast(dev.device, torch.bfloat16, enabled=bf16):
        for _ in range(2):
            ensemble(x)  # warm-up (kernel choice, allocator)
        sync()
        start = time.perf_counter()
        for _ in range(repeats):
            ensemble(x)
        sync()
    bare_fps = repeats * len(x) / (time.perf_counter() - start)

    ours: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for w in workers:
            out = f"{tmp}/w{w}"
            start = time.perf_counter()
            score_pool(members, world, ids, out, batch_size=batch, shard_size=max(batch, 256),
                       num_workers=w, accelerator=dev.accelerator, devices=1,
                       precision=dev.precision, progress=False)  # fmt: skip
            ours[w] = n / (time.perf_counter() - start)
            scored = len(read_scores(out))
    best = max(ours, key=ours.get)
    ratio = ours[best] / bare_fps
    figures = {
        "device": dev.name,
        "precision": dev.precision,
        "members": n_members,
        "frames": n,
        "batch_size": batch,
        "image_hw": [world.config.image_height, world.config.image_width],
        "model": values["model"],
        "bare_forward_frames_per_s": round(bare_fps, 1),
        **{f"ours_frames_per_s_w{w}": round(f, 1) for w, f in ours.items()},
        "best_workers": best,
        "ours_over_bare": round(ratio, 3),
        "render_frames_per_s_one_worker": round(render_fps, 1),
        "workers_needed": math.ceil(bare_fps / render_fps),
        "cpu_cores": os.cpu_count(),
        "frames_scored": scored,
    }
    for w, f in ours.items():
        print(f"score_pool with {w} render worker(s): {f:8.1f} frames/s")
    print(f"bare forward ({n_members} members, batch {len(x)}, {dev.precision}, {dev.name}): "
          f"{bare_fps:.1f} frames/s; ours / bare = {ratio:.3f} with {best} workers; one "
          f"worker renders {render_fps:.1f} frames/s -> {figures['workers_needed']} workers "
          "to keep up")  # fmt: skip
    if args.cpu_smoke:  # tiny sizes on a CPU: the speed means nothing, completing does
        print_summary("gpu_score", figures, {"frames_scored": n}, scored == n)
    else:
        print_summary("gpu_score", figures, {"ours_over_bare_min": TARGET},
                      ratio >= TARGET and scored == n)  # fmt: skip


if __name__ == "__main__":
    main()
