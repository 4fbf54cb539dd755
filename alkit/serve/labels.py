"""A submitted annotation: validated as ``-p labels=`` is, then APPENDed as a new version.

:func:`annotation_batch` turns a webhook's task + annotation into a one-frame
``LabelledBatch`` through the same parser and checks as an imported Label Studio export
(``alkit.annotate.parsers.parse_labelstudio``, ``alkit.annotate.validate.labels_from_import``).
:func:`add_labels` appends it (``alkit.data.lineage.append_batch``) or, for a frame labelled
before (``ANNOTATION_UPDATED``), stores the parent with that frame's labels replaced. The
same labels twice give the same version: nothing is duplicated.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from alkit.annotate.parsers import parse_labelstudio
from alkit.annotate.validate import labels_from_import
from alkit.data.labels import CostModel, LabelledBatch
from alkit.data.lineage import append_batch, labelling_info, lineage_info
from alkit.data.versions import DatasetVersion, load_version
from alkit.errors import DataError
from alkit.serve.frames import RequestError, ServedFrames


def annotation_batch(
    frames: ServedFrames, task: Mapping, annotation: Mapping, cost: CostModel | None = None
) -> LabelledBatch | None:
    """The annotation's labels of the task's frame, validated; ``None`` for a cancelled
    (skipped) annotation. ``RequestError`` naming the task and field otherwise."""
    if not isinstance(task, Mapping) or not isinstance(annotation, Mapping):
        raise RequestError(
            "webhook: fields 'task' and 'annotation' must be JSON objects",
            None,
            "task" if not isinstance(task, Mapping) else "annotation",
        )
    tid = task.get("id")
    fid = frames.frame_of(task)
    if fid is None:
        raise RequestError(
            f"task {tid}: field 'data.image' {task['data'].get('image')!r} is no frame of the "
            "run's pool and the task has no 'data.frame_id'; only pool frames can be appended",
            tid,
            "data.frame_id",
        )
    exported = frames.exported([fid])
    source = f"labelstudio:task {tid}"
    one = {"id": tid, "data": {**task["data"], "frame_id": fid}, "annotations": [annotation]}
    try:
        imported = parse_labelstudio([one], exported, source)
        if not imported:
            return None
        return labels_from_import(exported, imported, source, cost)
    except DataError as err:
        field = _field_of(str(err))
        raise RequestError(str(err), tid, field) from None


def _field_of(message: str) -> str:
    """The field a ``DataError`` message names (``field 'x'``), else ``annotation``."""
    if "field '" in message:
        return message.split("field '", 1)[1].split("'", 1)[0]
    return "annotation"


def replaced(parent: DatasetVersion, batch: LabelledBatch, info: dict) -> DatasetVersion:
    """``parent`` with the labels of ``batch``'s frames replaced by the batch's."""
    new = batch.to_version()
    ids = set(new.frame_ids)
    frames = pd.concat(
        [parent.frames[~parent.frames.frame_id.isin(ids)], new.frames], ignore_index=True
    )
    boxes = pd.concat(
        [parent.boxes[~parent.boxes.frame_id.isin(ids)], new.boxes], ignore_index=True
    )
    return DatasetVersion(
        frames, boxes, world=parent.world, parent=parent.hash, info=info, classes=parent.classes
    )


def add_labels(
    root: str, head: DatasetVersion, batch: LabelledBatch, params: dict
) -> DatasetVersion:
    """APPEND ``batch`` to ``head`` (frames new to it) or replace its frames' labels (frames
    labelled before); the stored version (``head`` itself when nothing changed)."""
    if not set(batch.frame_ids) & set(head.frame_ids):
        return append_batch(root, head, batch, params=params)
    info = lineage_info(None, (), params, head.hash)
    info["labelling"] = labelling_info(batch)
    info["replaced_frames"] = batch.frame_ids
    child = replaced(head, batch, info)
    if child.hash == head.hash:
        return head
    head.save(root)
    child.save(root)
    return load_version(root, child.hash)


__all__ = ["add_labels", "annotation_batch", "replaced"]
