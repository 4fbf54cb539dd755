"""Frames sent to a labelling tool, and the validation of the labels that come back.

:func:`labels_from_import` checks imported boxes against the :class:`ExportedBatch` (unknown
or missing frames, unknown classes, NaN, zero-area or out-of-bounds boxes, duplicates) before
anything is appended, and raises ``DataError`` naming the frame and the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from alkit.data.classes import CLASSES
from alkit.data.coco import check_bbox
from alkit.data.labels import CostModel, LabelledBatch, LabelledFrame
from alkit.data.version_tables import show_ids
from alkit.errors import DataError


@dataclass(frozen=True)
class ExportedBatch:
    """Frames exported for labelling (``export.json`` of an export folder).

    Attributes:
        url: the export folder.
        frame_ids: ``(F,)`` in export order.
        sizes: ``(F,)`` ``(height, width)`` px.
        image_uris: ``(F,)`` what a version records: ``sim:<id>`` or the image's URL.
        file_names: ``(F,)`` image files, relative to ``<url>/images``, or own images' URLs.
        meta: ``(F,)`` frame metadata dicts.
        world: config of the world that generated ``sim:`` frames, or ``None``.
        classes: the class names the tool may use.
        selection: hash of the selection manifest the frames came from, or ``None``.
    """

    url: str
    frame_ids: tuple[int, ...]
    sizes: tuple[tuple[int, int], ...]
    image_uris: tuple[str, ...]
    file_names: tuple[str, ...]
    meta: tuple[dict, ...]
    world: dict | None = None
    classes: tuple[str, ...] = CLASSES
    selection: str | None = None

    def to_dict(self) -> dict:
        """Plain JSON values."""
        return {
            "url": self.url,
            "frame_ids": list(self.frame_ids),
            "sizes": [list(s) for s in self.sizes],
            "image_uris": list(self.image_uris),
            "file_names": list(self.file_names),
            "meta": list(self.meta),
            "world": self.world,
            "classes": list(self.classes),
            "selection": self.selection,
        }

    @classmethod
    def from_dict(cls, values: dict, url: str) -> ExportedBatch:
        """Inverse of :meth:`to_dict`; ``DataError`` naming ``url`` for a malformed record."""
        try:
            n = len(values["frame_ids"])
            out = cls(
                url=url,
                frame_ids=tuple(int(i) for i in values["frame_ids"]),
                sizes=tuple((int(h), int(w)) for h, w in values["sizes"]),
                image_uris=tuple(str(u) for u in values["image_uris"]),
                file_names=tuple(str(f) for f in values["file_names"]),
                meta=tuple(dict(m) for m in values["meta"]),
                world=values.get("world"),
                classes=tuple(values["classes"]),
                selection=values.get("selection"),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"{url}: not an alkit export record ({err!r})") from None
        lengths = {len(getattr(out, k)) for k in ("sizes", "image_uris", "file_names", "meta")}
        if lengths != {n}:
            raise DataError(f"{url}: per-frame lists differ in length from frame_ids ({n})")
        return out


class ImportedBox(NamedTuple):
    """One box as a tool wrote it, not yet checked: ``category`` (a class name), ``bbox``
    ``[x, y, w, h]`` px, ``ann_id`` (the tool's annotation id or ``None``), ``where`` (its
    place in the file, for messages)."""

    category: Any
    bbox: Any
    ann_id: str | None
    where: str


class ImportedFrame(NamedTuple):
    """One frame as a tool wrote it: its boxes, ``size`` ``(height, width)`` px the tool saw
    (or ``None``) and the measured labelling time ``seconds`` (or ``None``)."""

    frame_id: int
    boxes: tuple[ImportedBox, ...]
    where: str
    size: tuple[int, int] | None = None
    seconds: float | None = None


def _class_key(name: Any) -> str:
    return str(name).strip().lower().replace(" ", "_").replace("-", "_")


def labels_from_import(
    exported: ExportedBatch,
    imported: Sequence[ImportedFrame],
    source: str,
    cost: CostModel | None = None,
) -> LabelledBatch:
    """Check labels a tool returned against the export and make them a :class:`LabelledBatch`.

    Refused with a ``DataError`` naming ``source``, the frame and the field: a frame id not in
    the export (``frame_id``), a frame imported twice (``frame_id``), a size other than the
    exported image's (``size``), a duplicate annotation id (``id``), an unknown class name
    (``category``), a NaN, zero-area or out-of-image box or the same box twice (``bbox``), and
    exported frames missing from the import (``annotations``). Frames without a measured time
    are charged by ``cost``.
    """
    cost = cost or CostModel()
    position = {fid: i for i, fid in enumerate(exported.frame_ids)}
    first_at: dict[int, str] = {}
    for item in imported:
        fid = item.frame_id
        if fid not in position:
            raise DataError(
                f"{source}: frame {fid} ({item.where}): field 'frame_id' is not in the exported "
                f"batch (frames {show_ids(exported.frame_ids)}) of {exported.url}"
            )
        if fid in first_at:
            raise DataError(
                f"{source}: frame {fid} ({item.where}): field 'frame_id': the frame is imported "
                f"twice (first at {first_at[fid]}); keep one annotation per frame"
            )
        first_at[fid] = item.where
    class_index = {_class_key(c): i for i, c in enumerate(exported.classes)}
    first_ann: dict[str, str] = {}
    labelled: dict[int, LabelledFrame] = {}
    for item in imported:
        fid, i = item.frame_id, position[item.frame_id]
        height, width = exported.sizes[i]
        if item.size is not None and tuple(item.size) != (height, width):
            raise DataError(
                f"{source}: frame {fid} ({item.where}): field 'size' is {item.size[0]}x"
                f"{item.size[1]} (HxW) but the exported image is {height}x{width}"
            )
        boxes, labels, seen = [], [], {}
        for box in item.boxes:
            at = f"{source}: frame {fid} ({box.where})"
            if box.ann_id is not None:
                if box.ann_id in first_ann:
                    raise DataError(
                        f"{at}: field 'id': duplicate annotation id {box.ann_id!r} (first on "
                        f"{first_ann[box.ann_id]})"
                    )
                first_ann[box.ann_id] = f"frame {fid}, {box.where}"
            label = class_index.get(_class_key(box.category))
            if label is None:
                raise DataError(
                    f"{at}: field 'category' has unknown class {box.category!r}; known "
                    f"classes: {', '.join(exported.classes)}"
                )
            xywh = check_bbox(box.bbox, width, height, at)
            key = (label, *(round(v, 3) for v in xywh))
            if key in seen:
                raise DataError(
                    f"{at}: field 'bbox': duplicate annotation (same class and box as {seen[key]})"
                )
            seen[key] = box.where
            boxes.append(xywh)
            labels.append(label)
        measured = item.seconds is not None
        labelled[fid] = LabelledFrame(
            frame_id=fid,
            height=height,
            width=width,
            boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),  # (N, 4)
            labels=np.asarray(labels, dtype=np.int64),  # (N,)
            image_uri=exported.image_uris[i],
            meta=dict(exported.meta[i]),
            seconds=float(item.seconds) if measured else cost.seconds(len(labels)),
            measured=measured,
        )
    missing = [fid for fid in exported.frame_ids if fid not in labelled]
    if missing:
        raise DataError(
            f"{source}: frame(s) {show_ids(missing)}: field 'annotations': exported for "
            "labelling but missing from the import (not labelled, skipped or cancelled); "
            "finish them in the tool and export again"
        )
    frames = tuple(labelled[fid] for fid in exported.frame_ids)
    return LabelledBatch(frames, source, exported.world, exported.classes, cost)
