"""Reading what labelling tools wrote: a Label Studio JSON export or COCO instances.

The parsers turn a file into :class:`~alkit.annotate.validate.ImportedFrame` s, naming the
place of every field; ``alkit.annotate.validate.labels_from_import`` checks them against the
export before anything is appended.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Mapping
from typing import Any

from alkit.annotate.export import load_export
from alkit.annotate.validate import ExportedBatch, ImportedBox, ImportedFrame, labels_from_import
from alkit.data import storage
from alkit.data.labels import CostModel, LabelledBatch
from alkit.errors import DataError


def int_field(value: Any, field: str, where: str) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or int(value) != value:
        raise DataError(f"{where}: field {field!r} must be an integer, got {value!r}")
    return int(value)


def objects(items: Any, field: str, where: str) -> list[Mapping]:
    """``items`` (a JSON list of objects, ``None`` = empty); ``DataError`` naming ``field``."""
    items = [] if items is None else items
    if not isinstance(items, list) or not all(isinstance(x, Mapping) for x in items):
        raise DataError(f"{where}: field {field!r} must be a list of JSON objects")
    return items


def parse_labelstudio(obj: Any, exported: ExportedBatch, source: str) -> list[ImportedFrame]:
    """Frames of a Label Studio JSON export (a list of tasks with ``annotations``).

    A task's frame is ``data.frame_id`` (else the image file name); cancelled annotations are
    ignored, so a task without a finished one is missing from the import; ``lead_time`` (s) is
    the measured labelling time. Regions other than ``rectanglelabels`` are ignored.
    """
    obj = objects(obj, "tasks", source)
    by_name = {n: fid for fid, n in zip(exported.frame_ids, exported.file_names, strict=True)}
    size = dict(zip(exported.frame_ids, exported.sizes, strict=True))
    frames = []
    for i, task in enumerate(obj):
        where = f"tasks[{i}]"
        data = task.get("data")
        if not isinstance(data, Mapping):
            raise DataError(f"{source}: {where}: field 'data' is missing")
        if "frame_id" in data:
            fid = int_field(data["frame_id"], "data.frame_id", f"{source}: {where}")
        elif posixpath.basename(str(data.get("image", "")).split("?d=")[-1]) in by_name:
            fid = by_name[posixpath.basename(str(data["image"]).split("?d=")[-1])]
        else:
            raise DataError(
                f"{source}: {where}: field 'data.frame_id' is missing and 'data.image' "
                f"{data.get('image')!r} is no exported image"
            )
        where = f"{where}, task id {task.get('id')}"
        at = f"{source}: frame {fid} ({where})"
        annotations = objects(task.get("annotations"), "annotations", at)
        done = [a for a in annotations if not a.get("was_cancelled")]
        if not done:
            continue
        if len(done) > 1:
            raise DataError(
                f"{source}: frame {fid} ({where}): field 'annotations' has {len(done)} finished "
                "annotations; keep one per task (e.g. the reviewed one) before importing"
            )
        height, width = size.get(fid, (None, None))
        boxes = []
        for j, region in enumerate(objects(done[0].get("result"), "result", at)):
            if region.get("type") != "rectanglelabels":
                continue
            at = f"{source}: frame {fid} ({where}, result[{j}])"
            value = region.get("value")
            if not isinstance(value, Mapping):
                raise DataError(f"{at}: field 'value' must be a JSON object")
            names = value.get("rectanglelabels")
            if not isinstance(names, list) or len(names) != 1:
                raise DataError(f"{at}: field 'rectanglelabels' must hold one class, got {names!r}")
            if value.get("rotation", 0):
                raise DataError(
                    f"{at}: field 'rotation' is {value['rotation']}; rotated boxes "
                    "are not supported, draw axis-aligned boxes"
                )
            for key, expected in (("original_width", width), ("original_height", height)):
                if key in region and expected is not None and region[key] != expected:
                    raise DataError(
                        f"{at}: field {key!r} is {region[key]} but the exported image has "
                        f"{expected} px"
                    )
            pct = [value.get(k) for k in ("x", "y", "width", "height")]
            scale = [width, height, width, height]
            numeric = width is not None and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in pct
            )
            bbox = [p / 100.0 * s for p, s in zip(pct, scale, strict=True)] if numeric else pct
            ann_id = None if region.get("id") is None else str(region["id"])
            boxes.append(ImportedBox(names[0], bbox, ann_id, f"{where}, result[{j}] id {ann_id}"))
        lead = done[0].get("lead_time")
        seconds = float(lead) if isinstance(lead, int | float) and math.isfinite(lead) else None
        frames.append(ImportedFrame(fid, tuple(boxes), where, None, seconds))
    return frames


def parse_coco_labels(obj: Any, source: str) -> list[ImportedFrame]:
    """Frames of a COCO instances file (image ``id`` = frame id); crowd regions are ignored."""
    if not isinstance(obj, Mapping):
        raise DataError(f"{source}: a COCO file is a JSON object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(obj.get(key), list):
            raise DataError(f"{source}: top-level field {key!r} must be a list")
    for key in ("images", "annotations", "categories"):
        objects(obj[key], key, source)
    names = {}
    for i, cat in enumerate(obj["categories"]):
        at = f"{source}: categories[{i}]"
        names[int_field(cat.get("id"), "id", at)] = cat.get("name")
    images: dict[int, list] = {}
    frames = []
    for i, image in enumerate(obj["images"]):
        at = f"{source}: images[{i}]"
        fid = int_field(image.get("id"), "id", at)
        size = (
            int_field(image.get("height"), "height", at),
            int_field(image.get("width"), "width", at),
        )
        images.setdefault(fid, [])
        frames.append((fid, f"images[{i}]", size))
    for i, ann in enumerate(obj["annotations"]):
        where = f"annotations[{i}]"
        fid = int_field(ann.get("image_id"), "image_id", f"{source}: {where}")
        if fid not in images:
            raise DataError(
                f"{source}: frame {fid} ({where}): field 'image_id' is no image of the file"
            )
        cat = int_field(ann.get("category_id"), "category_id", f"{source}: frame {fid} ({where})")
        if cat not in names:
            raise DataError(
                f"{source}: frame {fid} ({where}): field 'category_id' {cat} is not in 'categories'"
            )
        if ann.get("iscrowd", 0):
            continue
        ann_id = None if ann.get("id") is None else str(ann["id"])
        images[fid].append(ImportedBox(names[cat], ann.get("bbox"), ann_id, f"{where} id {ann_id}"))
    return [ImportedFrame(fid, tuple(images[fid]), where, size) for fid, where, size in frames]


def import_labels(export_url: str, labels_url: str, cost: CostModel | None = None) -> LabelledBatch:
    """The finished labels at ``labels_url`` (Label Studio JSON export or COCO instances),
    validated against the export at ``export_url``
    (``alkit.annotate.validate.labels_from_import``)."""
    exported = load_export(export_url)
    try:
        obj = storage.read_json(labels_url)
    except FileNotFoundError:
        raise DataError(f"labels file not found: {labels_url}") from None
    if isinstance(obj, list):
        source = f"labelstudio:{labels_url}"
        frames = parse_labelstudio(obj, exported, source)
    elif isinstance(obj, Mapping) and "images" in obj:
        source = f"coco:{labels_url}"
        frames = parse_coco_labels(obj, source)
    else:
        raise DataError(
            f"{labels_url}: neither a Label Studio JSON export (a list of tasks) nor COCO "
            "instances (an object with 'images')"
        )
    return labels_from_import(exported, frames, source, cost)


__all__ = ["import_labels", "int_field", "objects", "parse_coco_labels", "parse_labelstudio"]
