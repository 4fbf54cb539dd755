"""Pool scoring throughput and memory, measured side by side in one run.

(a) ours / bare ensemble forward: ``score_pool`` (render frames, run M members, MI, frame
    scores, Parquet shards) vs the same prepared members' forward alone on pre-rendered
    tensors (no scoring, no writing), both in ``--precision`` (default fp32). Ours is
    measured with each of ``--workers`` DataLoader processes rendering frames (0: in a thread
    of the scoring process, one batch ahead of the members, as the product runs; 1: a process
    beside the members, on the same 2 cores), and with 0 workers rendering between batches
    (``ahead=False``, how it ran before). The runs alternate ``--repeats`` times (best of
    each), so load from other processes hits all alike. Target >= 0.9 with the quick
    profile's ``score_workers`` (what a CPU run uses); the other ratios are printed beside it.
(b) ours / naive: the way a baal user writes it: each member in turn runs over the whole
    pool (frames rendered again for each member) in fp32, probabilities kept in RAM, BALD in
    numpy afterwards. Ours is faster by rendering once, in a worker, and by BatchNorm folding
    and channels-last; its scores equal the naive ones up to float rounding (printed).
    Target >= 2.
(c) peak memory (max RSS of a fresh process) scoring a 100k-frame virtual pool / a 10k-frame
    pool. To keep the run short, these two pools replay 512 rendered frames under new ids
    and use 2 small members: the figure is about the scoring pipeline's memory, which must
    not grow with the pool. Target <= 1.25.

Run: ``.venv/bin/python bench/score_throughput.py [--frames 256] [--members 8]
[--precision 32-true]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from torch.utils.data import DataLoader

from alkit.config.profiles import profile_parameters
from alkit.data.classes import CLASSES
from alkit.data.datasets import VirtualFrames, collate_frames
from alkit.detector.network import DetectorConfig, UNetDetector
from alkit.query.score import EnsembleProbabilities, read_scores, score_pool
from alkit.sim import World, experiment_world

MEMORY_CHILD = r"""
import resource, sys, tempfile, torch
from alkit.detector.network import DetectorConfig, UNetDetector
from alkit.query.score import score_pool
from alkit.sim import World, experiment_world
from alkit.data.frames import Frame

class Replay:
    "Serves pre-rendered world frames cyclically under any frame id."
    def __init__(self, frames):
        self.frames = frames
    def frame(self, fid):
        f = self.frames[fid % len(self.frames)]
        return Frame(fid, f.image, f.boxes, f.labels, f.meta)

torch.set_num_threads(2)
world = World(experiment_world("quick", seed=0))
frames = [world.frame(i) for i in list(world.segment_frame_ids("pool"))[:512]]
members = []
for s in range(2):
    torch.manual_seed(s)
    members.append(UNetDetector(DetectorConfig(width=4, depth=2, stride=4, head_width=8)))
n = int(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with tempfile.TemporaryDirectory() as out:
    score_pool(members, Replay(frames), range(n), out, batch_size=256, shard_size=4096,
               progress=False)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before, peak)
"""


def frames_per_second(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def naive_scores(members, world, ids, batch_size) -> np.ndarray:
    """Members one after another over the pool, then BALD in numpy: ``(N, C)`` mean MI."""
    per_member = []
    for m in members:
        m.eval()
        loader = DataLoader(VirtualFrames(world, ids), batch_size=batch_size,
                            collate_fn=collate_frames)  # fmt: skip
        probs = []
        with torch.no_grad():
            for batch in loader:
                probs.append(torch.sigmoid(m(batch["image"]).heatmap_logits).numpy())
        per_member.append(np.concatenate(probs))  # (N, C, h, w)
    p = np.clip(np.stack(per_member), 1e-7, 1 - 1e-7)  # (M, N, C, h, w)

    def h(q):
        return -(q * np.log(q) + (1 - q) * np.log(1 - q))

    mi = h(p.mean(axis=0)) - h(p).mean(axis=0)  # (N, C, h, w)
    return mi.mean(axis=(2, 3))  # (N, C)


def measure_memory(n: int) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(n)], check=True,
                         capture_output=True, text=True)  # fmt: skip
    before, peak = map(int, out.stdout.split()[-2:])
    return before, peak  # KiB


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=256)
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--repeats", type=int, default=2,
                        help="bare and ours alternate this many times; best of each")  # fmt: skip
    parser.add_argument(
        "--precision", default="32-true",
        help="ours and bare forward: 32-true (like the naive way) or bf16-mixed (as the A/B "
        "scores on CPU; with random members MI is ~1e-9 and bf16 rounding reorders frames)",
    )  # fmt: skip
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1],
                        help="DataLoader worker processes rendering frames for ours, each "
                        "measured")  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(2)
    world = World(experiment_world("quick", seed=0), cache_mib=0)  # every render counted
    pool = world.manifest(world.segment_frame_ids("pool"))
    ids = pool[pool.time_of_day == "night"].frame_id.tolist()[: args.frames]
    members = []
    for seed in range(args.members):
        torch.manual_seed(seed)
        members.append(UNetDetector(DetectorConfig()).eval())
    n, bs = len(ids), args.batch_size

    start = time.perf_counter()
    images = torch.stack([VirtualFrames(world, ids)[i]["image"] for i in range(n)])
    render_fps = frames_per_second(n, time.perf_counter() - start)

    ensemble = EnsembleProbabilities(members)
    bf16 = args.precision.startswith("bf16")

    def bare() -> float:
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            start = time.perf_counter()
            for i in range(0, n, bs):
                ensemble(images[i : i + bs])
            return frames_per_second(n, time.perf_counter() - start)

    def score(out: str, workers: int, ahead: bool = True) -> float:
        start = time.perf_counter()
        score_pool(members, world, ids, out, batch_size=bs, shard_size=128, progress=False,
                   precision=args.precision, num_workers=workers, ahead=ahead)  # fmt: skip
        return frames_per_second(n, time.perf_counter() - start)

    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        ensemble(images[:bs])  # warm-up
    bare_fps, ours_by, between_fps = 0.0, {w: 0.0 for w in args.workers}, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):  # alternating, so machine load hits all alike
            runs = ["bare", "between", *args.workers]
            for run in runs if rep % 2 == 0 else runs[::-1]:
                if run == "bare":
                    bare_fps = max(bare_fps, bare())
                elif run == "between":
                    fps = score(f"{tmp}/scores-{rep}-between", 0, ahead=False)
                    between_fps = max(between_fps, fps)
                else:
                    fps = score(f"{tmp}/scores-{rep}-{run}", run)
                    ours_by[run] = max(ours_by[run], fps)
        first = f"{tmp}/scores-0-{args.workers[0]}"
        ours = read_scores(first).set_index("frame_id").loc[ids]
    profile_workers = profile_parameters("quick")["score_workers"]
    ours_fps = ours_by.get(profile_workers, max(ours_by.values()))

    start = time.perf_counter()
    naive = naive_scores(members, world, ids, bs)
    naive_fps = frames_per_second(n, time.perf_counter() - start)
    agree = float(np.abs(ours[list(CLASSES)].to_numpy() - naive).max())  # the mean-MI columns

    figures = {
        "members": args.members,
        "frames": n,
        "render_frames_per_s": round(render_fps, 1),
        "bare_forward_frames_per_s": round(bare_fps, 2),
        "ours_frames_per_s": round(ours_fps, 2),
        **{f"ours_frames_per_s_{w}_workers": round(f, 2) for w, f in ours_by.items()},
        **{f"ours_over_bare_{w}_workers": round(f / bare_fps, 3) for w, f in ours_by.items()},
        "ours_frames_per_s_0_workers_between_batches": round(between_fps, 2),
        "ours_over_bare_0_workers_between_batches": round(between_fps / bare_fps, 3),
        "profile_score_workers": profile_workers,
        "naive_frames_per_s": round(naive_fps, 2),
        "ours_over_bare": round(ours_fps / bare_fps, 3),
        "ours_over_naive": round(ours_fps / naive_fps, 3),
        "precision": args.precision,
        "render_workers": args.workers,
        "repeats": args.repeats,
        "max_abs_score_difference_vs_naive": agree,
    }
    print(f"{n} night pool frames, M = {args.members} members, batch {bs}, 2 CPU threads, "
          f"ours and bare in {args.precision}, naive in fp32, ours with {args.workers} "
          f"render worker(s); the quick profile scores with {profile_workers}")  # fmt: skip
    print(f"render:            {render_fps:8.1f} frames/s")
    print(f"bare forward:      {bare_fps:8.2f} frames/s (prepared members, pre-rendered input)")
    for w, fps in ours_by.items():
        print(f"ours, {w} render worker(s): {fps:8.2f} frames/s -> {fps / bare_fps:.3f} x bare")
    print(f"ours, 0 workers, rendering between batches: {between_fps:8.2f} frames/s -> "
          f"{between_fps / bare_fps:.3f} x bare")  # fmt: skip
    print(f"naive (baal-like): {naive_fps:8.2f} frames/s -> ours is {ours_fps / naive_fps:.2f}x")
    print(f"scores agree with the naive fp32 numpy BALD to {agree:.2e}")
    met = figures["ours_over_bare"] >= 0.9 and figures["ours_over_naive"] >= 2.0
    if not args.skip_memory:
        b10, p10 = measure_memory(10_000)
        b100, p100 = measure_memory(100_000)
        figures.update({
            "peak_rss_mib_10k": round(p10 / 1024, 1),
            "peak_rss_mib_100k": round(p100 / 1024, 1),
            "peak_ratio_100k_over_10k": round(p100 / p10, 3),
            "growth_over_start_mib_10k": round((p10 - b10) / 1024, 1),
            "growth_over_start_mib_100k": round((p100 - b100) / 1024, 1),
        })  # fmt: skip
        print(f"peak RSS: 10k pool {p10 / 1024:.0f} MiB, 100k pool {p100 / 1024:.0f} MiB "
              f"-> ratio {p100 / p10:.3f}")  # fmt: skip
        met = met and figures["peak_ratio_100k_over_10k"] <= 1.25
    summary = {
        "bench": "score_throughput",
        "figures": figures,
        "targets": {"ours_over_bare_min": 0.9, "ours_over_naive_min": 2.0,
                    "peak_ratio_100k_over_10k_max": 1.25},
        "met": bool(met),
    }  # fmt: skip
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
