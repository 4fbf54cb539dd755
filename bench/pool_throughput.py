"""Scoring a folder of camera JPEGs vs the virtual world: does JPEG decoding slow scoring down?

A team's own pool is a folder of photographs: every frame ``score_pool`` scores is read from
disk, decoded (Pillow) and letterboxed into the model's input, while the virtual world renders
its frames already at the input size. This bench measures, in one run and on the same 2 CPU
threads, the same ensemble scoring

(a) a **JPEG folder pool**: ``--frames`` files of 720x1280 (a dashcam's size), quality 90, in
    ``--sessions`` session subfolders, made in a temporary folder from the photographs shipped
    with scikit-image (astronaut, coffee, chelsea, motorcycle, rocket) and matplotlib (Grace
    Hopper): random 16:9 crops, flips and exposure changes, upscaled, with mild sensor noise so
    the files carry real-photo detail. Opened with ``alkit.data.sources.open_pool(folder,
    input_size=(96, 160))`` (the quick profile's input); files are in the page cache, so the
    figure is decoding, not disk or network I/O;
(b) the **virtual world's** pool (quick profile, seed 0), the same number of frames,

with ``alkit.query.score.score_pool`` (fp32, CPU, the same members, batch size and DataLoader
workers; ``--workers`` 1 and 0). The score_pool runs alternate folder / world (order swapped
each repeat) so machine load hits both alike; each figure is the best of ``--repeats``.

It also splits one frame's load from the folder (``source.frame``) into JPEG decode (Pillow,
file read included) and letterbox (resize + pad), and sets it against the ensemble's forward
per frame on pre-loaded batches (interleaved rounds, medians):
``decode_share = load_ms / (load_ms + ensemble_forward_ms)``, and the same for the world's
rendering. ``draft_decode_ms`` (informational) is the same JPEG decoded with Pillow's
``draft`` (DCT-domain downscale to the nearest 1/2, 1/4, 1/8 of the input size) + letterbox.

Target: the folder pool scores at >= 0.9x the world's frames/s with 1 worker (JPEG decoding
is not what scoring waits for).

Run: ``.venv/bin/python bench/pool_throughput.py [--frames 256] [--members 4]
[--workers 1 0]``; the last
line is a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from alkit.data.classes import CLASSES
from alkit.data.datasets import frame_item
from alkit.data.sources import open_pool
from alkit.detector.network import DetectorConfig, UNetDetector
from alkit.query.score import EnsembleProbabilities, score_pool
from alkit.sim import World, experiment_world

INPUT_SIZE = (96, 160)  # (H, W) of the quick profile's model input
CAMERA_SIZE = (720, 1280)  # (H, W) of the JPEG files
JPEG_QUALITY = 90
PHOTOS = (
    "astronaut.png",
    "coffee.png",
    "chelsea.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "rocket.jpg",
)
ROUNDS = 5  # interleaved rounds of the load / render / forward split
TARGET = 0.9


def photo_paths() -> list[Path]:
    """The colour photographs shipped with scikit-image and matplotlib that are present."""
    import matplotlib
    import skimage

    data = Path(os.path.dirname(skimage.__file__)) / "data"
    paths = [data / name for name in PHOTOS]
    paths.append(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")
    found = [p for p in paths if p.is_file()]
    if not found:
        raise SystemExit("no sample photographs found (scikit-image / matplotlib data)")
    return found


def camera_variant(photo: np.ndarray, noise: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A 720x1280 'camera frame' of ``photo`` ``(h, w, 3)``: a random 16:9 crop, maybe
    mirrored, exposure and contrast changed, upscaled (bicubic), plus ``noise`` (sensor)."""
    h, w = photo.shape[:2]
    ch = min(h, w * 9 // 16)  # the largest 16:9 crop ...
    ch = max(int(ch * rng.uniform(0.6, 1.0)), 9)  # ... or part of it
    cw = ch * 16 // 9
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = photo[y : y + ch, x : x + cw]  # (ch, cw, 3)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    big = Image.fromarray(np.ascontiguousarray(crop)).resize(
        CAMERA_SIZE[::-1], Image.Resampling.BICUBIC
    )
    pixels = np.asarray(big, np.float32)  # (720, 1280, 3)
    pixels = (pixels - 128) * rng.uniform(0.8, 1.2) + 128 * rng.uniform(0.7, 1.3)
    pixels += noise  # (720, 1280, 3)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def build_folder(root: Path, n: int, sessions: int, seed: int = 0) -> float:
    """Writes ``n`` JPEGs into ``sessions`` subfolders of ``root``; returns mean MiB/file."""
    rng = np.random.default_rng(seed)
    photos = [np.asarray(Image.open(p).convert("RGB")) for p in photo_paths()]
    noises = [rng.normal(0.0, 3.0, (*CAMERA_SIZE, 3)).astype(np.float32) for _ in range(4)]
    total = 0
    for i in range(n):
        folder = root / f"session_{i % sessions:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"frame_{i // sessions:05d}.jpg"
        camera_variant(photos[i % len(photos)], noises[i % 4], rng).save(path, quality=JPEG_QUALITY)
        total += path.stat().st_size
    return total / n / 2**20


def draft_load(uri: str) -> np.ndarray:
    """The JPEG at ``uri`` decoded at a reduced DCT scale (Pillow ``draft``), letterboxed."""
    with Image.open(uri) as img:
        img.draft("RGB", (INPUT_SIZE[1], INPUT_SIZE[0]))
        small = img.convert("RGB")
        scale = min(INPUT_SIZE[0] / small.height, INPUT_SIZE[1] / small.width)
        h, w = round(small.height * scale), round(small.width * scale)
        small = np.asarray(small.resize((w, h), Image.Resampling.BILINEAR))  # (h, w, 3)
    out = np.zeros((*INPUT_SIZE, 3), np.uint8)  # (H, W, 3)
    y, x = (INPUT_SIZE[0] - h) // 2, (INPUT_SIZE[1] - w) // 2
    out[y : y + h, x : x + w] = small
    return out


def split_times(source, world, ensemble, folder_ids, world_ids, batch: int) -> dict:
    """Medians over interleaved rounds: ms per frame to decode, letterbox, load (whole
    ``source.frame``), draft-decode a folder frame; to render a world frame; of the
    ensemble's forward on a batch of folder / world frames."""
    times: dict[str, list[float]] = {
        k: [] for k in ("decode", "letterbox", "load", "draft", "render", "fwd_folder", "fwd_world")
    }

    def per_frame(key: str, start: float, count: int) -> None:
        times[key].append((time.perf_counter() - start) / count * 1e3)

    def forward(images: list[np.ndarray], key: str | None) -> None:
        x = torch.stack([frame_item(0, im, [], [])["image"] for im in images])  # (B, 3, H, W)
        start = time.perf_counter()
        with torch.inference_mode():
            ensemble(x)
        if key:
            per_frame(key, start, len(images))

    for r in range(ROUNDS + 1):  # round 0 warms up
        ids = folder_ids[(r * batch) % len(folder_ids) :][:batch]
        wids = world_ids[(r * batch) % len(world_ids) :][:batch]
        decode = letterbox = 0.0
        for fid in ids:
            t0 = time.perf_counter()
            original = source.original(fid)  # (720, 1280, 3)
            t1 = time.perf_counter()
            source.letterbox(fid).image(original)
            decode, letterbox = decode + t1 - t0, letterbox + time.perf_counter() - t1
        start = time.perf_counter()
        images = [source.frame(fid).image for fid in ids]
        load = (time.perf_counter() - start) / len(ids) * 1e3
        start = time.perf_counter()
        for fid in ids:
            draft_load(source.uri(fid))
        draft = (time.perf_counter() - start) / len(ids) * 1e3
        start = time.perf_counter()
        rendered = [world.frame(fid).image for fid in wids]
        render = (time.perf_counter() - start) / len(wids) * 1e3
        key = r > 0
        forward(images, "fwd_folder" if key else None)
        forward(rendered, "fwd_world" if key else None)
        if key:
            times["decode"].append(decode / len(ids) * 1e3)
            times["letterbox"].append(letterbox / len(ids) * 1e3)
            times["load"].append(load)
            times["draft"].append(draft)
            times["render"].append(render)
    return {k: statistics.median(v) for k, v in times.items()}


def score_fps(members, source, ids, batch: int, workers: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        score_pool(members, source, ids, out, classes=CLASSES, batch_size=batch,
                   shard_size=1024, num_workers=workers, accelerator="cpu",
                   precision="32-true", progress=False)  # fmt: skip
        return len(ids) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=256)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 0],
        help="DataLoader worker counts to score with; the target is on the first",
    )  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(2)
    n, bs = args.frames, args.batch_size
    world = World(experiment_world("quick", seed=0), cache_mib=0)  # every render counted
    world_ids = list(world.segment_frame_ids("pool"))[:n]
    members = []
    for seed in range(args.members):
        torch.manual_seed(seed)
        members.append(UNetDetector(DetectorConfig()).eval())

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        mib = build_folder(Path(tmp), n, args.sessions)
        build_s = time.perf_counter() - start
        pool = open_pool(tmp, input_size=INPUT_SIZE)
        source = pool.source
        folder_ids = pool.metadata.frame_id.tolist()
        assert len(folder_ids) == len(world_ids) == n, (len(folder_ids), len(world_ids))

        split = split_times(source, world, EnsembleProbabilities(members), folder_ids,
                            world_ids, bs)  # fmt: skip
        score_fps(members, world, world_ids[:bs], bs, 0)  # warm-up: first Trainer, imports
        fps: dict[tuple[str, int], float] = {}
        runs = {"folder": (source, folder_ids), "world": (world, world_ids)}
        for rep in range(args.repeats):
            for workers in args.workers:
                order = ("folder", "world") if rep % 2 == 0 else ("world", "folder")
                for name in order:
                    got = score_fps(members, *runs[name], bs, workers)
                    fps[name, workers] = max(fps.get((name, workers), 0.0), got)

    fwd = (split["fwd_folder"] + split["fwd_world"]) / 2  # the same ensemble, same input size
    folder_share = split["load"] / (split["load"] + fwd)
    world_share = split["render"] / (split["render"] + fwd)
    main_workers = args.workers[0]
    ratio = fps["folder", main_workers] / fps["world", main_workers]
    figures: dict = {
        "frames": n,
        "members": args.members,
        "batch_size": bs,
        "jpeg_hw": list(CAMERA_SIZE),
        "jpeg_mib_per_file": round(mib, 3),
        "input_hw": list(INPUT_SIZE),
    }
    for workers in args.workers:
        f, w = fps["folder", workers], fps["world", workers]
        figures[f"folder_frames_per_s_w{workers}"] = round(f, 2)
        figures[f"world_frames_per_s_w{workers}"] = round(w, 2)
        figures[f"folder_over_world_w{workers}"] = round(f / w, 3)
    figures.update({
        "load_ms_per_frame": round(split["load"], 3),
        "decode_ms_per_frame": round(split["decode"], 3),
        "letterbox_ms_per_frame": round(split["letterbox"], 3),
        "draft_decode_letterbox_ms_per_frame": round(split["draft"], 3),
        "render_ms_per_frame": round(split["render"], 3),
        "ensemble_forward_ms_per_frame": round(fwd, 3),
        "decode_share_folder": round(folder_share, 4),
        "decode_share_world": round(world_share, 4),
    })  # fmt: skip

    print(f"{n} frames: {n} JPEGs {CAMERA_SIZE[0]}x{CAMERA_SIZE[1]} q{JPEG_QUALITY} "
          f"({mib:.2f} MiB each, {args.sessions} sessions, built in {build_s:.1f} s) vs the "
          f"quick world's pool; M = {args.members} members, batch {bs}, fp32, 2 CPU threads, "
          f"best of {args.repeats}")  # fmt: skip
    for workers in args.workers:
        f, w = fps["folder", workers], fps["world", workers]
        print(f"score_pool, {workers} worker(s): folder {f:7.2f} frames/s, world {w:7.2f} "
              f"frames/s -> folder/world {f / w:.3f}")  # fmt: skip
    print(f"folder frame load:  {split['load']:7.2f} ms = decode {split['decode']:.2f} ms "
          f"+ letterbox {split['letterbox']:.2f} ms (+ table look-ups)")  # fmt: skip
    print(f"  with Pillow draft (DCT downscale): {split['draft']:7.2f} ms (informational)")
    print(f"world frame render: {split['render']:7.2f} ms")
    print(f"ensemble forward:   {fwd:7.2f} ms/frame (folder batch {split['fwd_folder']:.2f}, "
          f"world batch {split['fwd_world']:.2f})")  # fmt: skip
    print(f"decode share: folder {folder_share:.3f}, world {world_share:.3f}")
    print(f"folder/world with {main_workers} worker(s) = {ratio:.3f} (target >= {TARGET})")
    summary = {
        "bench": "pool_throughput",
        "figures": figures,
        "targets": {f"folder_over_world_w{main_workers}_min": TARGET},
        "met": bool(ratio >= TARGET),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
