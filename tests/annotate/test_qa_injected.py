"""Label QA on errors injected at known rates into world-labelled frames, against baselines.

A small ensemble trains on the world's initial drives; QA checks frames of the unseen test
drives (no member trained on them) whose ground truth was damaged here: boxes dropped,
classes swapped, boxes shifted by half their size, each at ``RATE`` of the boxes at least
``MIN_H`` px tall (what a small detector can see), disjoint. A flag is right when it names a
damaged box (a dropped one: a flagged prediction overlapping it, IoU >= 0.3). Baselines:
**random** flags (as many as QA's per kind; the expected precision is the share of damaged
boxes among the candidates, computed here) and the ensemble's **disagreement** (mutual
information at the box's centre, top boxes first, as many as QA's). QA must be more precise
than both. The table goes to ``$ALKIT_QA_TABLE`` when set (README's table).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from alkit.annotate.qa import LabelledBoxes, QAConfig, box_scores
from alkit.data.classes import CLASSES
from alkit.data.datasets import VirtualFrames, collate_frames
from alkit.ensemble.store import load_ensemble
from alkit.evaluate.predict import predict_detections
from alkit.query.score import mi_heatmaps
from alkit.workflow.run_data import RunData
from alkit.workflow.steps import train_step
from tests.conftest import one_thread

pytestmark = pytest.mark.slow
RATE, MIN_H, N_FRAMES, SEED = 0.15, 14.0, 60, 3


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("qa") / "ensemble"
    with one_thread():
        t = train_step(
            out,
            profile="quick",
            n_members=2,
            initial_stride=2,
            progress=False,
            model={"width": 8, "depth": 2, "stride": 4, "head_width": 16},
            train={"max_epochs": -1, "max_steps": 400},
            batch_size=8,
        )
    return load_ensemble(t.ensemble), RunData.load(str(t.data)).sim


def iou(a, b) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(x1 - x0, 0) * max(y1 - y0, 0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def inject(world, ids, rng):
    """Damaged labels and what was done: ``{(frame, box index in the damaged labels): kind}``
    for swaps and shifts, ``[(frame, box)]`` of the dropped ones."""
    frames, damaged, dropped, candidates = [], {}, [], 0
    for fid in ids:
        f = world.frame(fid)
        h, w = np.asarray(f.image).shape[:2]
        boxes, labels = f.boxes.astype(np.float64).copy(), f.labels.copy()
        keep, kinds = [], {}
        for j, b in enumerate(boxes):
            if b[3] < MIN_H:
                keep.append(j)
                continue
            candidates += 1
            u = rng.random()
            if u < RATE:
                dropped.append((fid, b.copy()))
                continue
            if u < 2 * RATE:
                labels[j] = rng.choice([c for c in range(len(CLASSES)) if c != labels[j]])
                kinds[j] = "swap"
            elif u < 3 * RATE:
                dx, dy = rng.choice([-1, 1]) * 0.5 * b[2], rng.choice([-1, 1]) * 0.5 * b[3]
                x = float(np.clip(b[0] + dx, 0, w - b[2]))
                y = float(np.clip(b[1] + dy, 0, h - b[3]))
                boxes[j, :2] = x, y
                kinds[j] = "badloc"
            keep.append(j)
        index = {j: k for k, j in enumerate(keep)}
        damaged |= {(fid, index[j]): kind for j, kind in kinds.items()}
        frames.append(LabelledBoxes(fid, boxes[keep], labels[keep]))
    return frames, damaged, dropped, candidates


def precision_recall(flags: pd.DataFrame, kind, damaged, dropped):
    if kind == "overlooked":
        hits = [
            any(fid == r.frame_id and iou(b, (r.x, r.y, r.w, r.h)) >= 0.3 for fid, b in dropped)
            for r in flags.itertuples()
        ]
        found = sum(
            any(
                fid == r.frame_id and iou(b, (r.x, r.y, r.w, r.h)) >= 0.3
                for r in flags.itertuples()
            )
            for fid, b in dropped
        )
        total = len(dropped)
    else:
        truth = {k for k, v in damaged.items() if v == kind}
        hits = [(int(r.frame_id), int(r.box)) in truth for r in flags.itertuples()]
        found, total = sum(hits), len(truth)
    precision = float(np.mean(hits)) if hits else float("nan")
    return precision, found / max(total, 1), total


def predictions(dets, ids) -> pd.DataFrame:
    """Every detection of the mean detector >= 0.3 (what pre-annotations show) as rows."""
    rows = []
    for fid in ids:
        d = dets[fid]
        for b, s in zip(d.boxes.tolist(), d.scores.tolist(), strict=True):
            if s >= 0.3:
                rows.append({"frame_id": fid, "x": b[0], "y": b[1], "w": b[2], "h": b[3]})
    return pd.DataFrame(rows, columns=["frame_id", "x", "y", "w", "h"])


def mi_at_centres(ensemble, world, rows: pd.DataFrame) -> np.ndarray:
    """The ensemble's mutual information (summed over classes) at each row's box centre."""
    out = np.zeros(len(rows))
    stride = ensemble.config.stride
    for fid, part in rows.groupby("frame_id"):
        image = collate_frames([VirtualFrames(world, [int(fid)])[0]])["image"]  # (1, 3, H, W)
        mi = mi_heatmaps(ensemble, image)[0].sum(0).numpy()  # (h, w)
        cy = np.clip(((part.y + part.h / 2) / stride).astype(int), 0, mi.shape[0] - 1)
        cx = np.clip(((part.x + part.w / 2) / stride).astype(int), 0, mi.shape[1] - 1)
        out[rows.index.get_indexer(part.index)] = mi[cy, cx]
    return out


def test_qa_flags_injected_errors_better_than_the_baselines(trained):
    ensemble, world = trained
    rng = np.random.default_rng(SEED)
    ids = world.segment_frame_ids("test")[::4][:N_FRAMES]
    frames, damaged, dropped, n_boxes = inject(world, ids, rng)
    with one_thread():
        dets = predict_detections(ensemble, VirtualFrames(world, ids))
        table = box_scores(frames, dets, CLASSES, QAConfig(), dict.fromkeys(ids, True))
    rows = []
    for kind in ("overlooked", "swap", "badloc"):
        scored = table[table.kind == kind].reset_index(drop=True)
        flags = scored[scored.flagged]
        n = len(flags)
        p, r, total = precision_recall(flags, kind, damaged, dropped)
        # the baselines choose among every detection >= 0.3 (a missed object) or every
        # label box (a swap, a shift); random's expected precision is the damaged share
        pool = scored if kind != "overlooked" else predictions(dets, ids)
        base = float(np.mean(precision_recall(pool, kind, damaged, dropped)[0]))
        with one_thread():
            mi = mi_at_centres(ensemble, world, pool)
        top = pool.iloc[np.argsort(-mi, kind="stable")[:n]]
        pd_, rd, _ = precision_recall(top, kind, damaged, dropped)
        rows.append(
            {
                "error": {
                    "overlooked": "dropped box",
                    "swap": "swapped class",
                    "badloc": "shifted box",
                }[kind],
                "injected": total,
                "flags": n,
                "precision": p,
                "recall": r,
                "random precision": base,
                "disagreement precision": pd_,
                "disagreement recall": rd,
            }
        )
    result = pd.DataFrame(rows)
    print(f"\n{len(ids)} frames, {n_boxes} boxes of >= {MIN_H} px, each damaged at {RATE}:")
    print(result.round(3).to_string(index=False))
    if os.environ.get("ALKIT_QA_TABLE"):
        result.round(3).to_csv(os.environ["ALKIT_QA_TABLE"], index=False)
    for row in rows:
        assert row["injected"] > 0
        assert row["flags"] > 0, row
        assert row["precision"] > row["random precision"], row
        assert (
            row["precision"] > row["disagreement precision"]
            or row["recall"] > row["disagreement recall"]
        ), row
