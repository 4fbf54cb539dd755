"""One evaluation with pycocotools vs faster-coco-eval: seconds and the largest AP difference.

Ground truth: ``--frames`` quick-profile pool frames (world seed 0); detections: a U-Net's
own (decoded, threshold 0.01, at most 100 per frame; an untrained member, so many false
ones) and boxes near the objects (80% found, jittered, ~3 false per frame, scores tied at
0.05 steps). Each engine evaluates both sets ``--repeats`` times, alternating, CPU seconds
of this process (robust to load from other processes). ``speedup`` = pycocotools s /
faster-coco-eval s; ``max_ap_difference`` over every AP of the tables (per class, per size
bucket, .50:.95 and .50, wMAP). Targets: difference <= 1e-9, speed-up >= 2.

Run: ``.venv/bin/python bench/eval_speed.py [--frames 400]``; the last line is a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from alkit.data.datasets import VirtualFrames
from alkit.detector.network import DetectorConfig, UNetDetector
from alkit.evaluate.metrics import evaluate_detections
from alkit.evaluate.predict import predict_coco
from alkit.sim import World, experiment_world

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.evaluate.test_engines import AP_COLUMNS, near_boxes, world_truth  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(2)
    world = World(experiment_world("quick", seed=0))
    ids = list(world.segment_frame_ids("pool"))[::5][: args.frames]
    truth = world_truth(world, ids)
    torch.manual_seed(0)
    detector = UNetDetector(DetectorConfig())
    cases = {"detector": predict_coco(detector, VirtualFrames(world, ids)),
             "near": near_boxes(truth, 0)}  # fmt: skip
    seconds = {"pycocotools": 0.0, "faster-coco-eval": 0.0}
    worst = 0.0
    for rep in range(args.repeats):
        for dets in cases.values():
            tables = {}
            for engine in seconds if rep % 2 == 0 else reversed(seconds):
                start = time.process_time()
                tables[engine] = evaluate_detections(truth, dets, engine=engine).table
                seconds[engine] += time.process_time() - start
            a, b = (tables[e][AP_COLUMNS].to_numpy(float) for e in seconds)
            assert np.array_equal(np.isnan(a), np.isnan(b))
            worst = max(worst, float(np.nanmax(np.abs(a - b))))
    n_eval = args.repeats * len(cases)
    speedup = seconds["pycocotools"] / seconds["faster-coco-eval"]
    figures = {
        "frames": len(ids),
        "objects": len(truth["annotations"]),
        "detections": {k: len(v) for k, v in cases.items()},
        "pycocotools_s_per_eval": round(seconds["pycocotools"] / n_eval, 3),
        "faster_coco_eval_s_per_eval": round(seconds["faster-coco-eval"] / n_eval, 3),
        "speedup": round(speedup, 2),
        "max_ap_difference": worst,
    }
    print(f"{len(ids)} frames, {figures['objects']} objects, detections {figures['detections']}")
    print(f"pycocotools {figures['pycocotools_s_per_eval']:.3f} s, faster-coco-eval "
          f"{figures['faster_coco_eval_s_per_eval']:.3f} s per evaluation -> {speedup:.2f}x; "
          f"largest AP difference {worst:.2e}")  # fmt: skip
    summary = {"bench": "eval_speed", "figures": figures,
               "targets": {"max_ap_difference_max": 1e-9, "speedup_min": 2.0},
               "met": bool(worst <= 1e-9 and speedup >= 2.0)}  # fmt: skip
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
