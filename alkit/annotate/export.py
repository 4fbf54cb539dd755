"""The export folder: frames sent to a labelling tool, with their tasks and pre-annotations.

An export folder (any fsspec URL) holds::

    images/<frame_id:012d>.png    the frames (lossless PNG)
    labeling_config.xml           the Label Studio project's labelling interface
    tasks.json                    Label Studio tasks; ``predictions`` = pre-annotations
    coco.json                     COCO instances: the images and the same pre-annotations
    export.json                   alkit's record of the export (an ExportedBatch); written last

Frames of a team's own pool (``alkit.data.sources``) are not copied: a task's ``data.image``
is the original image's URL (prefixed by ``task_image_url`` when given), except video frames,
which are extracted to ``images/`` at their full size. Every box (pre-annotations, COCO) is
in the original image's pixels, and each task carries the frame's acquisition score as
``data.uncertainty`` and as its prediction's ``score`` (Label Studio sorts tasks by it).

Label Studio: create a project with ``labeling_config.xml``, import ``tasks.json`` (its
``data.image`` is ``<task_image_url>/<file>``: serve the images there, e.g. ``task_image_url=
"/data/local-files/?d=alkit/round1/images"`` with local-files serving AND that folder connected
to the project as Local Files source storage, which Label Studio requires before it serves a
file; or an ``s3://`` export folder with cloud storage), label, export as "JSON" and pass that
file to ``alkit.annotate.parsers.import_labels``. The pre-annotations are the ensemble's mean
detections; the ground truth is never exported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from alkit.annotate.coco_export import coco_for_labelling
from alkit.annotate.detections import in_original
from alkit.annotate.labelstudio import labeling_config, labelstudio_tasks
from alkit.annotate.validate import ExportedBatch
from alkit.data import storage
from alkit.data.classes import CLASSES
from alkit.data.coco import encode_png
from alkit.data.datasets import FrameSource
from alkit.data.labels import check_frame_ids, frame_meta
from alkit.data.version_tables import world_dict
from alkit.data.versions import sim_uri
from alkit.data.video import split_frame_uri
from alkit.detector.network import Detections
from alkit.errors import ConfigError, DataError

EXPORT_RECORD = "export.json"
#: pool metadata that a version keeps as its own columns (image_uri, size), not as metadata
OWN_TABLE_COLUMNS = ("frame_id", "uri", "height", "width")


def export_for_labelling(
    source: FrameSource,
    frame_ids: Sequence[int],
    url: str,
    detections: Mapping[int, Detections] | None = None,
    selection: str | None = None,
    min_score: float = 0.3,
    task_image_url: str | None = None,
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
        task_image_url: URL Label Studio loads the images from (default: ``<url>/images``).
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
    tasks = labelstudio_tasks(exported, detections, min_score, task_image_url, scores=scores)
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


__all__ = ["EXPORT_RECORD", "OWN_TABLE_COLUMNS", "export_for_labelling", "load_export"]
