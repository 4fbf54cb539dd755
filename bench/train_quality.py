"""Train ONE ensemble member on the quick world's `initial` frames and measure its quality.

    .venv/bin/python bench/train_quality.py                  # the default run (2 CPU cores)
    .venv/bin/python bench/train_quality.py epochs=2 width=8 # override any setting below

Trains on every `subsample`-th frame of the `initial` segment (mostly day; consecutive frames
of a session are near-duplicates), cached in memory as uint8. Evaluates AP@0.5 per class and
per size bucket on a day test set (`test` segment, day frames) and a night test set (`pool`
segment, night frames). The last stdout line is one JSON object:
{"bench": "train_quality", "figures": {...}, "targets": {...}, "met": true|false}.
"""

from __future__ import annotations

import ast
import json
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path

from alkit.data.datasets import VirtualFrames
from alkit.detector.module import DetectorModule, TrainConfig
from alkit.detector.network import DetectorConfig
from alkit.ensemble.datamodule import DetectionDataModule
from alkit.ensemble.train import train_member
from alkit.evaluate.metrics import EvalResult
from alkit.evaluate.predict import evaluate_model
from alkit.sim import World, experiment_world

# -- settings (override on the command line as key=value) -----------------------------------
world_seed = 0
subsample = 1  # every frame of `initial`: 4000 frames (2: 2000 frames, similar quality)
test_frames = 400  # frames per test set (day, night)
width, depth, stride, head_width = 16, 3, 2, 32  # stride 2: many objects are 3-8 px
batch_size = 32
epochs = 7  # 9 epochs: day mAP@0.5 +0.02 for +50% time
lr = 3e-3
weight_decay = 1e-4
schedule = "cosine"
warmup_steps = 100
size_weight = 0.1
precision = "bf16-mixed"  # fast on CPUs with AVX512-BF16; use "32-true" elsewhere
channels_last = True
threshold = 0.01  # decode score threshold for evaluation
workers = 2  # processes generating frames for the cache and the test sets
seed = 0
progress_bar = False
targets = {"day_map50_min": 0.5, "night_gap_min": 0.1}  # gap: day - night AP50, person & bicycle

for _arg in sys.argv[1:]:
    _key, _, _value = _arg.lstrip("-").partition("=")
    if _key not in globals() or _key.startswith("_"):
        raise SystemExit(f"unknown setting {_key!r}")
    try:
        globals()[_key] = ast.literal_eval(_value)
    except (ValueError, SyntaxError):
        globals()[_key] = _value


def every_kth(ids: list[int], n: int) -> list[int]:
    """About ``n`` ids spread evenly over ``ids``."""
    return ids[:: max(1, len(ids) // n)][:n]


def _r(x: float) -> float | None:
    return None if math.isnan(x) else round(float(x), 4)


def report(name: str, result: EvalResult) -> dict:
    """Print AP@0.5 per class and per size bucket; return the figures."""
    cols = ["AP", "AP_small", "AP_medium", "AP_large", "n_small", "n_medium", "n_large"]
    table = result.table[cols].rename(columns={"AP": "AP50"})
    print(f"\n{name}: mAP@0.5 = {result.mAP50:.3f}  (AP50 per class and per size bucket)")
    print(table.round(3).to_string())
    return {
        "map50": _r(result.mAP50),
        "ap50": {c: _r(v) for c, v in result.table["AP50"].items()},
        "ap50_by_size": {
            s: {c: _r(v) for c, v in result.table[f"AP_{s}"].items()}
            for s in ("small", "medium", "large")
        },
    }


def main() -> None:
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    start = time.perf_counter()
    world = World(experiment_world("quick", seed=world_seed))
    train_ids = list(world.segment_frame_ids("initial"))[::subsample]
    test = world.manifest(world.segment_frame_ids("test"))
    pool = world.manifest(world.segment_frame_ids("pool"))
    day_ids = every_kth(test.frame_id[test.time_of_day == "day"].tolist(), test_frames)
    night_ids = every_kth(pool.frame_id[pool.time_of_day == "night"].tolist(), test_frames)

    data = DetectionDataModule(
        (world, train_ids), batch_size=batch_size, num_workers=workers, cache=True, seed=seed
    )
    t = time.perf_counter()
    data.setup("fit")
    print(f"cached {len(train_ids)} training frames in {time.perf_counter() - t:.1f} s")

    model_config = DetectorConfig(width=width, depth=depth, stride=stride, head_width=head_width)
    train_config = TrainConfig(
        lr=lr,
        weight_decay=weight_decay,
        max_epochs=epochs,
        schedule=schedule,
        warmup_steps=warmup_steps,
        size_weight=size_weight,
        precision=precision,
        channels_last=channels_last,
        decode_threshold=threshold,
    )
    print(f"model {model_config}\ntrain {train_config}")
    with tempfile.TemporaryDirectory() as out_dir:
        record = train_member(
            data, model_config, train_config, out_dir, seed=seed, accelerator="cpu",
            devices=1, enable_progress_bar=progress_bar,
        )  # fmt: skip
        module = DetectorModule.load_from_checkpoint(Path(out_dir) / record.checkpoint)
    train_s = record.metrics["train_seconds"]
    frames_seen = record.metrics["global_step"] * batch_size
    fps = frames_seen / train_s
    print(f"trained {frames_seen:.0f} frames in {train_s / 60:.1f} min: {fps:.1f} frames/s")

    t = time.perf_counter()
    figures: dict = {"train_frames": len(train_ids), "train_frames_per_s": round(fps, 1)}
    for name, ids in (("day", day_ids), ("night", night_ids)):
        result = evaluate_model(
            module,
            VirtualFrames(world, ids),
            threshold=threshold,
            num_workers=workers,
            iou_thresholds=(0.5,),
        )
        figures[name] = report(f"{name} ({len(ids)} frames)", result)
    eval_s = time.perf_counter() - t
    minutes = (time.perf_counter() - start) / 60
    figures |= {"train_minutes": round(train_s / 60, 2), "eval_seconds": round(eval_s, 1)}
    figures["total_minutes"] = round(minutes, 2)

    day, night = figures["day"]["ap50"], figures["night"]["ap50"]
    gaps = {c: (day[c] or 0.0) - (night[c] or 0.0) for c in ("person", "bicycle")}
    figures["night_gap"] = {c: round(v, 4) for c, v in gaps.items()}
    met = (figures["day"]["map50"] or 0.0) >= targets["day_map50_min"] and all(
        v >= targets["night_gap_min"] for v in gaps.values()
    )
    print(f"\ntotal {minutes:.1f} min (training {train_s / 60:.1f} min, eval {eval_s:.0f} s)")
    print(
        json.dumps({"bench": "train_quality", "figures": figures, "targets": targets, "met": met})
    )


if __name__ == "__main__":
    main()
