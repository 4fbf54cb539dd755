"""Is generating frames the bottleneck of scoring? Frame generation vs U-Net forward passes.

Measures, in one run and interleaved (so machine load hits both alike), the time to render
one quick-profile frame and the time of one default U-Net member's forward pass per frame at
the scoring batch size. Scoring runs M = 8 members on every frame, so the target is
``generate / (8 x forward) <= 0.1``: data at least 10x faster than the models that consume it.

It also times the renderer of an earlier commit (``--base``, default the commit before the
rendering speed-up; ``bench/baseline.py`` loads its ``alkit/sim`` beside today's) on the same
frames, alternating old and new frame by frame, and checks that they render the same pixels,
boxes, labels and tags: ``speedup_over_base`` = old ms / new ms per frame, from one run.
``--profile full`` renders the full profile's 384x640 frames instead (no forward pass).

Run: ``.venv/bin/python bench/sim_speed.py [--base COMMIT] [--profile quick|full]``; the
last line is a JSON summary.
"""

from __future__ import annotations

import argparse
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
BASE = "bc0bc5b"  # the last commit before the rendering speed-up


def same_frame(a, b) -> bool:
    return (np.array_equal(a.image, b.image) and np.array_equal(a.boxes, b.boxes)
            and np.array_equal(a.labels, b.labels) and a.attributes == b.attributes
            and np.array_equal(a.tracks, b.tracks))  # fmt: skip


def against_base(config, base: str, n: int) -> dict:
    """Old (``base``) vs today's renderer on ``n`` consecutive pool frames, alternating which
    goes first; CPU seconds of this process (robust to other processes' load)."""
    from baseline import baseline_package, short

    old_world = baseline_package("alkit/sim", base).World(config)
    new_world = World(config, cache_mib=0)
    ids = list(new_world.segment_frame_ids("pool"))[:n]
    for fid in ids[:3]:  # warm-up: session scenes, imports
        old_world.frame(fid), new_world.frame(fid)
    spent = {"old": 0.0, "new": 0.0}
    differ = 0
    for j, fid in enumerate(ids):
        got = {}
        for name in ("old", "new") if j % 2 else ("new", "old"):
            world = old_world if name == "old" else new_world
            start = time.process_time()
            got[name] = world.frame(fid)
            spent[name] += time.process_time() - start
        differ += not same_frame(got["old"], got["new"])
    return {
        "base_commit": short(base),
        "frames_compared": n,
        "frames_differing_from_base": differ,
        "base_ms_per_frame": round(spent["old"] / n * 1e3, 3),
        "new_ms_per_frame": round(spent["new"] / n * 1e3, 3),
        "speedup_over_base": round(spent["old"] / spent["new"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default=BASE, help="commit to compare rendering with")
    parser.add_argument("--compare-frames", type=int, default=300)
    parser.add_argument("--profile", default="quick", choices=["quick", "full"])
    args = parser.parse_args()
    torch.set_num_threads(2)
    sessions = {} if args.profile == "quick" else {"initial": 1, "pool": 4, "test": 1}
    config = experiment_world(args.profile, seed=0, **sessions)
    world = World(config, cache_mib=0)  # every frame rendered
    h, w = world.config.image_height, world.config.image_width
    base = against_base(config, args.base, args.compare_frames) if args.base else {}
    if base:
        print(f"{args.profile} frames {h}x{w}: base {base['base_commit']} "
              f"{base['base_ms_per_frame']:.2f} ms, now {base['new_ms_per_frame']:.2f} ms "
              f"-> {base['speedup_over_base']:.2f}x; {base['frames_differing_from_base']} of "
              f"{base['frames_compared']} frames differ")  # fmt: skip
    if args.profile == "full":
        summary = {"bench": "sim_speed_full", "figures": base,
                   "targets": {"frames_differing_from_base_max": 0},
                   "met": base.get("frames_differing_from_base", 0) == 0}  # fmt: skip
        print(json.dumps(summary))
        return

    pool = world.segment_frame_ids("pool")
    model = UNetDetector(DetectorConfig()).eval()
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
            **base,
        },
        "targets": {"generate_over_ensemble_forward_max": 0.1},
        "met": bool(ratio <= 0.1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
