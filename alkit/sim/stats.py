"""Statistics of a set of frames: what a pool holds, by condition, class and size."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
from tqdm.auto import tqdm

from alkit.data.classes import CLASSES, SizeBuckets
from alkit.sim.world import World


def box_table(world: World, frame_ids: Iterable[int], progress: bool = False) -> pd.DataFrame:
    """One row per ground-truth box: frame id, metadata, class, size bucket, area, tags."""
    buckets = SizeBuckets.for_height(world.config.image_height)
    rows = []
    for fid in tqdm(list(frame_ids), desc="rendering", disable=not progress, leave=False):
        frame = world.frame(int(fid))
        meta = frame.meta.as_dict()
        for (x, y, w, h), label, tags in zip(
            frame.boxes, frame.labels, frame.attributes, strict=True
        ):
            rows.append(
                {
                    "frame_id": frame.frame_id,
                    **meta,
                    "category": CLASSES[label],
                    "x": float(x),
                    "y": float(y),
                    "w": float(w),
                    "h": float(h),
                    "area": float(w * h),
                    "size": buckets.bucket(float(w * h)),
                    "tags": ",".join(tags),
                }
            )
    columns = ["frame_id", "time_of_day", "route", "category", "size", "area", "tags"]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=columns)


def pool_statistics(world: World, frame_ids: Iterable[int], progress: bool = True) -> dict:
    """Summary tables of a pool: frames per condition and objects per class and size.

    Returns a dict of DataFrames: ``frames`` (counts by time of day x route), ``objects``
    (boxes per frame by class x size bucket), ``objects_by_time`` (boxes per frame by class x
    time of day), ``tags`` (long-tail tag counts by class).
    """
    ids = list(frame_ids)
    meta = world.manifest(ids)
    boxes = box_table(world, ids, progress=progress)
    n = max(len(ids), 1)
    frames = pd.crosstab(meta.time_of_day, meta.route, margins=True)
    objects = (
        pd.crosstab(boxes.category, boxes["size"]).reindex(index=list(CLASSES), fill_value=0) / n
    )
    per_tod = meta.time_of_day.value_counts()
    by_time = pd.crosstab(boxes.category, boxes.time_of_day).reindex(
        index=list(CLASSES), fill_value=0
    )
    by_time = by_time / per_tod.reindex(by_time.columns).to_numpy()
    tags = (
        boxes.assign(tag=boxes.tags.str.split(","))
        .explode("tag")
        .query("tag != ''")
        .groupby(["category", "tag"])
        .size()
        .unstack(fill_value=0)
    )
    return {"frames": frames, "objects": objects, "objects_by_time": by_time, "tags": tags}
