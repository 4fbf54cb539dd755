"""Labelling tools: export a selection for Label Studio (or a COCO tool), import the result.

An export folder (any fsspec URL) holds::

    images/<frame_id:012d>.png    the frames (lossless PNG)
    labeling_config.xml           the Label Studio project's labelling interface
    tasks.json                    Label Studio tasks; ``predictions`` = pre-annotations
    coco.json                     COCO instances: the images and the same pre-annotations
    export.json                   alkit's record of the export (an ExportedBatch); written last

Frames of a team's own pool (``alkit.data.sources``) are not copied: a task's ``data.image``
is the original image's URL (prefixed by ``image_root`` when given), except video frames,
which are extracted to ``images/`` at their full size. Every box (pre-annotations, COCO) is
in the original image's pixels, and each task carries the frame's acquisition score as
``data.uncertainty`` and as its prediction's ``score`` (Label Studio sorts tasks by it).

Label Studio: create a project with ``labeling_config.xml``, import ``tasks.json`` (its
``data.image`` is ``<image_root>/<file>``: serve the images there, e.g. ``image_root=
"/data/local-files/?d=alkit/round1/images"`` with local-files serving AND that folder connected
to the project as Local Files source storage, which Label Studio requires before it serves a
file; or an ``s3://`` export folder with cloud storage), label, export as "JSON" and pass that
file to :func:`import_labels`. Boxes are in PERCENT of the image in Label Studio, px in alkit
and COCO. The pre-annotations are the ensemble's mean detections; the ground truth is never
exported.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np

from alkit.annotate.validate import ExportedBatch, ImportedBox, ImportedFrame, labels_from_import
from alkit.data import storage
from alkit.data.classes import CLASSES
from alkit.data.coco import CocoRecord, encode_png, frames_to_coco
from alkit.data.datasets import FrameSource
from alkit.data.labels import CostModel, LabelledBatch, check_frame_ids, frame_meta
from alkit.data.letterbox import Letterbox
from alkit.data.version_tables import world_dict
from alkit.data.versions import sim_uri
from alkit.data.video import split_frame_uri
from alkit.detector.network import Detections
from alkit.errors import AlkitError, ConfigError, DataError

FROM_NAME, TO_NAME = "label", "image"
EXPORT_RECORD = "export.json"
#: pool metadata that a version keeps as its own columns (image_uri, size), not as metadata
OWN_TABLE_COLUMNS = ("frame_id", "uri", "height", "width")


class LabelsPending(AlkitError):
    """The frames were exported, but the finished labels are not there yet."""


def labeling_config(classes: Sequence[str] = CLASSES) -> str:
    """Label Studio labelling config XML: one ``RectangleLabels`` tool over the image."""
    labels = "\n".join(f"    <Label value={quoteattr(c)}/>" for c in classes)
    return (
        "<View>\n"
        f'  <Image name="{TO_NAME}" value="$image" zoom="true"/>\n'
        f'  <RectangleLabels name="{FROM_NAME}" toName="{TO_NAME}">\n'
        f"{labels}\n"
        "  </RectangleLabels>\n"
        "</View>\n"
    )


def _numpy(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def _kept_boxes(
    dets: Detections, height: int, width: int, min_score: float
) -> list[tuple[list[float], int, float]]:
    """Detections with score >= ``min_score``, clipped to the image: ``[(xywh px, label,
    score)]``."""
    boxes = _numpy(dets.boxes).astype(np.float64).reshape(-1, 4)  # (K, 4)
    scores = _numpy(dets.scores).astype(np.float64).reshape(-1)  # (K,)
    labels = _numpy(dets.labels).astype(np.int64).reshape(-1)  # (K,)
    if not len(boxes) == len(scores) == len(labels):
        raise DataError(
            f"detections: {len(boxes)} boxes, {len(scores)} scores, {len(labels)} labels"
        )
    x0 = np.clip(boxes[:, 0], 0, width)
    y0 = np.clip(boxes[:, 1], 0, height)
    x1 = np.clip(boxes[:, 0] + boxes[:, 2], 0, width)
    y1 = np.clip(boxes[:, 1] + boxes[:, 3], 0, height)
    keep = (scores >= min_score) & (x1 > x0) & (y1 > y0) & np.isfinite(scores)
    return [
        ([x0[k], y0[k], x1[k] - x0[k], y1[k] - y0[k]], int(labels[k]), float(scores[k]))
        for k in np.flatnonzero(keep)
    ]


def in_original(dets: Detections, box: Letterbox) -> Detections:
    """Detections on a letterboxed input, with their boxes in the original image's px."""
    boxes = box.to_original(_numpy(dets.boxes))  # (K, 4)
    return Detections(boxes.astype(np.float32), _numpy(dets.scores), _numpy(dets.labels))


def labelstudio_result(
    xywh: Sequence[float],
    label: str,
    height: int,
    width: int,
    result_id: str,
    score: float | None = None,
) -> dict:
    """One Label Studio ``rectanglelabels`` region for a box ``[x, y, w, h]`` in px."""
    x, y, w, h = (float(v) for v in xywh)
    region = {
        "id": result_id,
        "type": "rectanglelabels",
        "from_name": FROM_NAME,
        "to_name": TO_NAME,
        "original_width": int(width),
        "original_height": int(height),
        "image_rotation": 0,
        "value": {
            "x": 100.0 * x / width,
            "y": 100.0 * y / height,
            "width": 100.0 * w / width,
            "height": 100.0 * h / height,
            "rotation": 0,
            "rectanglelabels": [label],
        },
    }
    if score is not None:
        region["score"] = float(score)
    return region


def _frame_detections(
    detections: Mapping[int, Detections] | None,
    fid: int,
    size: tuple[int, int],
    min_score: float,
    classes: Sequence[str],
) -> list[tuple[list[float], int, float]]:
    """The kept pre-annotations of frame ``fid`` of ``size`` (H, W) px; ``[]`` without any."""
    dets = (detections or {}).get(fid)
    if dets is None:
        return []
    try:
        kept = _kept_boxes(dets, size[0], size[1], min_score)
    except DataError as err:
        raise DataError(f"frame {fid}: {err}") from None
    bad = [c for _, c, _ in kept if not 0 <= c < len(classes)]
    if bad:
        raise DataError(
            f"frame {fid}: detections field 'labels' has {bad[0]}, outside 0..{len(classes) - 1}"
        )
    return kept


def task_image(exported: ExportedBatch, name: str, image_root: str | None) -> str:
    """A task's ``data.image``: an exported file under ``image_root`` (default the export's
    ``images/``), or an own image's URL, with ``image_root`` put before its path (without
    the leading ``/``): ``image_root="/data/local-files/?d="`` serves ``/data/x/a.jpg`` from a
    Label Studio whose local-files document root is ``/``."""
    if storage.is_absolute(name):
        if not image_root:
            return name
        prefix = image_root if image_root.endswith(("=", "/")) else image_root + "/"
        return prefix + name.split("://")[-1].lstrip("/")
    return storage.join(image_root or storage.join(exported.url, "images"), name)


def labelstudio_tasks(
    exported: ExportedBatch,
    detections: Mapping[int, Detections] | None = None,
    min_score: float = 0.3,
    image_root: str | None = None,
    model_version: str = "alkit-ensemble-mean",
    scores: Mapping[int, float] | None = None,
) -> list[dict]:
    """Label Studio tasks for an export, with ``detections`` (score >= ``min_score``, clipped
    to the image) as ``predictions``; ``data.frame_id`` maps the task back to its frame.
    With ``scores`` (frame id -> acquisition score) each task has it as
    ``data.uncertainty`` and as its prediction's ``score``; else the prediction's score is the
    mean of its boxes'."""
    tasks = []
    for fid, (h, w), name in zip(
        exported.frame_ids, exported.sizes, exported.file_names, strict=True
    ):
        task: dict = {"data": {"image": task_image(exported, name, image_root), "frame_id": fid}}
        if scores is not None and fid in scores:
            task["data"]["uncertainty"] = float(scores[fid])
        if detections is not None and fid in detections:
            kept = _frame_detections(detections, fid, (h, w), min_score, exported.classes)
            result = [
                labelstudio_result(b, exported.classes[c], h, w, f"{fid}-p{k}", s)
                for k, (b, c, s) in enumerate(kept)
            ]
            score = float(np.mean([s for _, _, s in kept])) if kept else 0.0
            if scores is not None and fid in scores:
                score = float(scores[fid])
            task["predictions"] = [
                {"model_version": model_version, "score": score, "result": result}
            ]
        tasks.append(task)
    return tasks


def coco_for_labelling(
    exported: ExportedBatch,
    detections: Mapping[int, Detections] | None = None,
    min_score: float = 0.3,
) -> dict:
    """COCO instances of an export: images (``file_name`` relative to ``images/``) and the
    kept detections as annotations with their ``score``."""
    records, scores = [], []
    for i, fid in enumerate(exported.frame_ids):
        h, w = exported.sizes[i]
        kept = _frame_detections(detections, fid, (h, w), min_score, exported.classes)
        scores += [s for _, _, s in kept]
        records.append(
            CocoRecord(
                frame_id=fid,
                file_name=exported.file_names[i],
                height=h,
                width=w,
                boxes=np.asarray([b for b, _, _ in kept], dtype=np.float64).reshape(-1, 4),
                labels=np.asarray([c for _, c, _ in kept], dtype=np.int64),
                meta=dict(exported.meta[i]),
            )
        )
    coco = frames_to_coco(records, exported.file_names, exported.classes)
    for annotation, score in zip(coco["annotations"], scores, strict=True):
        annotation["score"] = score
    return coco


def export_for_labelling(
    source: FrameSource,
    frame_ids: Sequence[int],
    url: str,
    detections: Mapping[int, Detections] | None = None,
    selection: str | None = None,
    min_score: float = 0.3,
    image_root: str | None = None,
    classes: Sequence[str] = CLASSES,
    scores: Mapping[int, float] | None = None,
) -> ExportedBatch:
    """Write ``frame_ids`` of ``source`` to the export folder ``url`` (see the module docstring).

    Args:
        source: generates the frames (a world); its ground truth is NOT exported.
        detections: frame id -> the ensemble's mean detections (boxes ``[K, 4]`` xywh px,
            scores ``[K]``, labels ``[K]``), written as pre-annotations; optional.
        selection: hash of the selection manifest, recorded for lineage.
        min_score: detections below this score are left out of the pre-annotations.
        image_root: URL Label Studio loads the images from (default: ``<url>/images``).
        scores: frame id -> acquisition score, written into the tasks.

    Every file is written atomically, ``export.json`` last (a previous one is removed first,
    so an interrupted export is never taken for a finished one). Frames of a source without a
    world config are recorded with the exported PNG as their image: keep the folder.
    """
    ids = check_frame_ids(frame_ids, "export_for_labelling")
    try:
        world = world_dict(source)
    except ConfigError:
        world = None
    record = storage.join(url, EXPORT_RECORD)
    if storage.exists(record):
        fs, path = storage.filesystem(record)
        fs.rm(path)
    names, sizes, uris, metas = [], [], [], []
    detections = dict(detections or {}) if detections is not None else None
    own = hasattr(source, "letterbox")  # a pool source of own images (alkit.data.sources)
    for fid in ids:
        frame = source.frame(fid)
        if int(frame.frame_id) != fid:
            raise DataError(f"export_for_labelling: asked for frame {fid}, got {frame.frame_id}")
        if own:
            box = source.letterbox(fid)
            if detections is not None and fid in detections:
                detections[fid] = in_original(detections[fid], box)
            uri = source.uri(fid)
            meta = frame_meta(frame)
            metas.append({k: v for k, v in meta.items() if k not in OWN_TABLE_COLUMNS})
            sizes.append((box.height, box.width))
            uris.append(uri)
            if split_frame_uri(uri) is None:  # an image file: the tool loads it where it is
                names.append(uri)
                continue
            image = np.asarray(source.original(fid))  # a video frame, at its full size
        else:
            image = np.asarray(frame.image)  # (H, W, 3) uint8
        name = f"{fid:012d}.png"
        image_url = storage.join(url, "images", name)
        try:
            png = encode_png(image)
        except DataError as err:
            raise DataError(f"frame {fid}: field 'image': {err}") from None
        storage.atomic_write_bytes(image_url, png)
        names.append(name)
        if own:
            continue
        sizes.append((int(image.shape[0]), int(image.shape[1])))
        uris.append(sim_uri(fid) if world is not None else image_url)
        metas.append(frame_meta(frame))
    exported = ExportedBatch(
        url,
        tuple(ids),
        tuple(sizes),
        tuple(uris),
        tuple(names),
        tuple(metas),
        world,
        tuple(classes),
        selection,
    )
    storage.atomic_write_text(storage.join(url, "labeling_config.xml"), labeling_config(classes))
    tasks = labelstudio_tasks(exported, detections, min_score, image_root, scores=scores)
    storage.atomic_write_json(storage.join(url, "tasks.json"), tasks)
    coco = coco_for_labelling(exported, detections, min_score)
    storage.atomic_write_json(storage.join(url, "coco.json"), coco)
    storage.atomic_write_json(storage.join(url, EXPORT_RECORD), exported.to_dict())
    return exported


def load_export(url: str) -> ExportedBatch:
    """The :class:`ExportedBatch` recorded in the export folder ``url``."""
    record = storage.join(url, EXPORT_RECORD)
    if not storage.exists(record):
        raise DataError(f"{url} is not a finished export: {record} is missing")
    return ExportedBatch.from_dict(storage.read_json(record), url)


# ---------------------------------------------------------------------------------------------
# reading what the tools wrote


def _int_field(value: Any, field: str, where: str) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or int(value) != value:
        raise DataError(f"{where}: field {field!r} must be an integer, got {value!r}")
    return int(value)


def _objects(items: Any, field: str, where: str) -> list[Mapping]:
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
    obj = _objects(obj, "tasks", source)
    by_name = {n: fid for fid, n in zip(exported.frame_ids, exported.file_names, strict=True)}
    size = dict(zip(exported.frame_ids, exported.sizes, strict=True))
    frames = []
    for i, task in enumerate(obj):
        where = f"tasks[{i}]"
        data = task.get("data")
        if not isinstance(data, Mapping):
            raise DataError(f"{source}: {where}: field 'data' is missing")
        if "frame_id" in data:
            fid = _int_field(data["frame_id"], "data.frame_id", f"{source}: {where}")
        elif posixpath.basename(str(data.get("image", "")).split("?d=")[-1]) in by_name:
            fid = by_name[posixpath.basename(str(data["image"]).split("?d=")[-1])]
        else:
            raise DataError(
                f"{source}: {where}: field 'data.frame_id' is missing and 'data.image' "
                f"{data.get('image')!r} is no exported image"
            )
        where = f"{where}, task id {task.get('id')}"
        at = f"{source}: frame {fid} ({where})"
        annotations = _objects(task.get("annotations"), "annotations", at)
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
        for j, region in enumerate(_objects(done[0].get("result"), "result", at)):
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
        _objects(obj[key], key, source)
    names = {}
    for i, cat in enumerate(obj["categories"]):
        at = f"{source}: categories[{i}]"
        names[_int_field(cat.get("id"), "id", at)] = cat.get("name")
    images: dict[int, list] = {}
    frames = []
    for i, image in enumerate(obj["images"]):
        at = f"{source}: images[{i}]"
        fid = _int_field(image.get("id"), "id", at)
        size = (
            _int_field(image.get("height"), "height", at),
            _int_field(image.get("width"), "width", at),
        )
        images.setdefault(fid, [])
        frames.append((fid, f"images[{i}]", size))
    for i, ann in enumerate(obj["annotations"]):
        where = f"annotations[{i}]"
        fid = _int_field(ann.get("image_id"), "image_id", f"{source}: {where}")
        if fid not in images:
            raise DataError(
                f"{source}: frame {fid} ({where}): field 'image_id' is no image of the file"
            )
        cat = _int_field(ann.get("category_id"), "category_id", f"{source}: frame {fid} ({where})")
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


class ToolLabeler:
    """Labelling by people in a tool, through files; a :class:`~alkit.data.labels.Labeler`.

    ``label(frame_ids)`` exports the frames to ``url`` (once), then imports the finished
    labels from ``labels_url`` (default ``<url>/labelled.json``: the Label Studio export or a
    COCO file) and raises :class:`LabelsPending` saying what to do while it is absent.
    """

    def __init__(
        self,
        source: FrameSource,
        url: str,
        detections: Mapping[int, Detections] | None = None,
        labels_url: str | None = None,
        cost: CostModel | None = None,
        selection: str | None = None,
        min_score: float = 0.3,
        image_root: str | None = None,
        classes: Sequence[str] = CLASSES,
        scores: Mapping[int, float] | None = None,
    ) -> None:
        self.source, self.url, self.detections = source, url, detections
        self.scores = scores
        self.labels_url = labels_url or storage.join(url, "labelled.json")
        self.cost, self.selection, self.min_score = cost, selection, min_score
        self.image_root, self.classes = image_root, tuple(classes)

    def label(self, frame_ids: Sequence[int]) -> LabelledBatch:
        """The imported labels of ``frame_ids``; exports them first if not yet done."""
        ids = check_frame_ids(frame_ids, "ToolLabeler.label")
        if storage.exists(storage.join(self.url, EXPORT_RECORD)):
            if list(load_export(self.url).frame_ids) != ids:
                raise ConfigError(
                    f"{self.url} holds an export of other frames; use one folder per batch"
                )
        else:
            export_for_labelling(
                self.source,
                ids,
                self.url,
                self.detections,
                self.selection,
                self.min_score,
                self.image_root,
                self.classes,
                self.scores,
            )
        if not storage.exists(self.labels_url):
            raise LabelsPending(
                f"{len(ids)} frames are exported to {self.url}: create a Label Studio project "
                "with labeling_config.xml, import tasks.json, label, export as JSON (or COCO) "
                f"and give that file as the labels (-p labels=FILE; default {self.labels_url})"
            )
        return import_labels(self.url, self.labels_url, self.cost)
