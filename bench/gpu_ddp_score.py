"""Pool scoring under Lightning DDP over every visible GPU: frames/s, every frame once.

``score_pool(..., accelerator="gpu", devices=<all visible>, strategy="ddp")`` scores
``--frames`` night frames of the full profile's world with its members (random weights) in
bf16; rank r scores the shards ``i % ranks == r`` and writes its own files, each rank's frames
rendered by its own DataLoader workers (the CPU cores but two, shared out). Lightning starts
the other ranks by running this script again; only rank 0 reports. Target: every frame
scored exactly once (``read_scores`` checks for duplicates) across the ranks' shards.

Run: ``.venv/bin/python bench/gpu_ddp_score.py [--frames 1024]``; ``--cpu-smoke`` runs the
same code as 2 CPU processes (gloo) with 2 small members and 8 frames. The last line is a
JSON summary.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_common import device, full_values, full_world, print_summary, rank, seeded_members  # noqa: E402
from gpu_score import night_ids  # noqa: E402

from alkit.query.score import read_scores, score_pool, shard_name  # noqa: E402

WAIT_S = 600  # at most this long for every rank's shards


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=1024)
    parser.add_argument("--members", type=int, default=None, help="default: the profile's")
    parser.add_argument("--out", default="", help="score folder (default: a temporary one)")
    parser.add_argument("--cpu-smoke", action="store_true")
    args = parser.parse_args()
    dev = device(args.cpu_smoke)
    values = full_values(args.cpu_smoke)
    ranks = 2 if args.cpu_smoke else dev.count
    n_members = args.members or (2 if args.cpu_smoke else values["n_members"])
    n = 8 if args.cpu_smoke else args.frames
    batch = 2 if args.cpu_smoke else values["score_batch_size"]
    workers = 0 if args.cpu_smoke else max(1, ((os.cpu_count() or 4) - 2) // ranks)
    world = full_world(pool=max(2, math.ceil(n / 70) + 2), initial=1, test=1)
    ids = night_ids(world, n)
    members = seeded_members(values["model"], n_members)

    # every rank runs this script: they must agree on the folder (a temporary one is made
    # once by rank 0 and handed down through the environment, which Lightning passes on)
    out = args.out or os.environ.get("ALKIT_DDP_BENCH_OUT") or tempfile.mkdtemp(prefix="ddp-")
    os.environ["ALKIT_DDP_BENCH_OUT"] = out
    start = time.perf_counter()
    run = score_pool(members, world, ids, out, batch_size=batch, shard_size=2 * batch,
                     num_workers=workers, accelerator=dev.accelerator, devices=ranks,
                     strategy="ddp", precision=dev.precision, progress=False)  # fmt: skip
    if rank() != 0:
        return
    # the ranks do not meet at the end of predict: wait for the other ranks' shards
    expected = {shard_name(i) for i in range(run.n_shards)}
    while not expected <= set(os.listdir(out)) and time.perf_counter() - start < WAIT_S:
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    scored = read_scores(out)  # raises if a frame was scored twice
    complete = sorted(scored.frame_id.tolist()) == sorted(ids)
    figures = {
        "device": dev.name,
        "ranks": ranks,
        "precision": dev.precision,
        "members": n_members,
        "frames": n,
        "batch_size": batch,
        "workers_per_rank": workers,
        "frames_per_s": round(n / seconds, 1),
        "frames_per_s_per_rank": round(n / seconds / ranks, 1),
        "frames_scored": len(scored),
    }
    print(f"DDP scoring over {ranks} rank(s) ({dev.name}, {dev.precision}): {n} frames in "
          f"{seconds:.1f} s -> {n / seconds:.1f} frames/s; once each: {complete}")  # fmt: skip
    print_summary("gpu_ddp_score", figures, {"every_frame_scored_once": True}, complete)


if __name__ == "__main__":
    main()
