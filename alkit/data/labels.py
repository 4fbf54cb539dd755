"""Labelled frames: what a labeller returns and APPEND stores, and the labelling cost model.

Every labeller follows one protocol, :class:`Labeller`: ``label(frame_ids) -> LabelledBatch``.

- ``alkit.annotate.oracle.OracleLabeller`` reveals the world's ground truth, charged by
  :class:`CostModel`.
- ``alkit.annotate.tool.ToolLabeller`` exports the frames for a real labelling tool (Label Studio
  tasks, COCO) as an :class:`ExportedBatch` and imports the finished labels, which
  ``alkit.annotate.validate.labels_from_import`` validates against what was exported.

A :class:`LabelledBatch` holds, per frame, the boxes ``(N, 4)`` float32 xywh px, the labels
``(N,)`` int64 class indices and the labelling time in seconds; ``batch.to_version()`` makes
it a :class:`~alkit.data.versions.DatasetVersion` that ``alkit.data.lineage.append_batch`` appends.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from alkit.data.classes import CLASSES
from alkit.data.version_tables import show_ids, world_dict
from alkit.data.versions import DatasetVersion
from alkit.errors import ConfigError, DataError


@dataclass(frozen=True)
class CostModel:
    """Labelling time of one frame: ``seconds_per_frame + seconds_per_box * boxes``.

    The defaults are assumptions, to be replaced by measured times (Label Studio records each
    annotation's ``lead_time``, which ``alkit.annotate.tool`` imports):

    - ``seconds_per_box = 7``: drawing one box by extreme clicking takes about 7 s
      (Papadopoulos et al., "Extreme clicking for efficient object annotation", ICCV 2017;
      they report about 35 s for the classic draw-and-verify protocol of Su et al. 2012);
    - ``seconds_per_frame = 30``: an assumption for opening a driving frame, searching it for
      every object of the five classes (small, dark and occluded ones included), reviewing and
      submitting; it is not taken from a publication.
    """

    seconds_per_frame: float = 30.0
    seconds_per_box: float = 7.0

    def __post_init__(self) -> None:
        for name in ("seconds_per_frame", "seconds_per_box"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"CostModel: {name} must be a finite number >= 0, got {value!r}")

    def seconds(self, num_boxes: int) -> float:
        """Modelled seconds to label a frame with ``num_boxes`` boxes."""
        return float(self.seconds_per_frame + self.seconds_per_box * int(num_boxes))


@dataclass(frozen=True, eq=False)
class LabelledFrame:
    """The labels of one frame, as a labeller returned them.

    Attributes:
        frame_id: the frame's id.
        height, width: image size in px.
        boxes: ``(N, 4)`` float32 ``[x, y, w, h]`` in px.
        labels: ``(N,)`` int64 indices into the batch's ``classes``.
        image_uri: ``sim:<frame_id>`` for a generated frame, else the image's URL.
        meta: the frame's metadata (``session_id``, ``time_of_day``, ...), may be empty.
        seconds: labelling time of this frame (s).
        measured: ``seconds`` was measured by the tool, not modelled by the ``CostModel``.
    """

    frame_id: int
    height: int
    width: int
    boxes: np.ndarray
    labels: np.ndarray
    image_uri: str
    meta: dict = field(default_factory=dict)
    seconds: float = 0.0
    measured: bool = False

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)  # (N, 4)
        labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)  # (N,)
        if len(boxes) != len(labels):
            raise DataError(
                f"frame {self.frame_id}: {len(boxes)} boxes but {len(labels)} labels "
                "(field 'labels')"
            )
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "frame_id", int(self.frame_id))


@dataclass(frozen=True, eq=False)
class LabelledBatch:
    """Labels of a batch of frames and what they cost.

    Attributes:
        frames: one :class:`LabelledFrame` per frame, in the order they were asked for.
        source: who labelled them: ``"oracle"``, ``"labelstudio:<file>"``, ``"coco:<file>"``.
        world: config of the world that generated ``sim:`` frames (``None`` when none are).
        classes: the class names ``labels`` index into.
        cost: the cost model used for frames without a measured time.
    """

    frames: tuple[LabelledFrame, ...]
    source: str
    world: dict | None = None
    classes: tuple[str, ...] = CLASSES
    cost: CostModel = field(default_factory=CostModel)

    def __post_init__(self) -> None:
        object.__setattr__(self, "frames", tuple(self.frames))
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "world", world_dict(self.world))
        dup = sorted(i for i, n in Counter(self.frame_ids).items() if n > 1)
        if dup:
            raise DataError(f"labelled batch: duplicate frame id(s) {show_ids(dup)}")
        for f in self.frames:
            if len(f.labels) and (f.labels.min() < 0 or f.labels.max() >= len(self.classes)):
                raise DataError(
                    f"frame {f.frame_id}: field 'labels' outside 0..{len(self.classes) - 1}"
                )

    def __len__(self) -> int:
        return len(self.frames)

    def __repr__(self) -> str:
        return (
            f"LabelledBatch(source={self.source!r}, frames={len(self)}, "
            f"boxes={self.num_boxes}, hours={self.total_seconds / 3600:.2f})"
        )

    @property
    def frame_ids(self) -> list[int]:
        """Frame ids, in labelling order."""
        return [f.frame_id for f in self.frames]

    @property
    def num_boxes(self) -> int:
        """Boxes in the batch."""
        return sum(len(f.labels) for f in self.frames)

    @property
    def seconds(self) -> np.ndarray:
        """``(F,)`` float64 labelling time per frame (s), in ``frame_ids`` order."""
        return np.array([f.seconds for f in self.frames], dtype=np.float64)

    @property
    def total_seconds(self) -> float:
        """Labelling time of the whole batch (s)."""
        return float(self.seconds.sum())

    def cost_table(self) -> pd.DataFrame:
        """One row per frame: ``frame_id``, ``boxes``, ``seconds``, ``measured``."""
        return pd.DataFrame(
            {
                "frame_id": pd.Series(self.frame_ids, dtype="int64"),
                "boxes": pd.Series([len(f.labels) for f in self.frames], dtype="int64"),
                "seconds": self.seconds,
                "measured": pd.Series([f.measured for f in self.frames], dtype=bool),
            }
        )

    def boxes_table(self) -> pd.DataFrame:
        """One row per box: ``frame_id``, ``category`` (class name), ``x, y, w, h`` (px)."""
        rows = [
            (f.frame_id, self.classes[label], *map(float, box))
            for f in self.frames
            for box, label in zip(f.boxes.tolist(), f.labels.tolist(), strict=True)
        ]
        return pd.DataFrame(rows, columns=["frame_id", "category", "x", "y", "w", "h"])

    def meta_table(self) -> pd.DataFrame:
        """One row per frame: ``frame_id`` and the metadata fields the frames have."""
        return pd.DataFrame([{"frame_id": f.frame_id, **f.meta} for f in self.frames])

    def to_version(self, parent: str | None = None, info: dict | None = None) -> DatasetVersion:
        """The batch as a :class:`DatasetVersion` (labels only, no pixels).

        Raises ``DataError`` naming the frame and field for a box outside its image.
        """
        return DatasetVersion.from_frames(
            self.frames,
            world=self.world,
            image_uris=[f.image_uri for f in self.frames],
            parent=parent,
            info={"labelled_by": self.source, **(info or {})},
            classes=self.classes,
        )


@runtime_checkable
class Labeller(Protocol):
    """Anything that labels frames: ``label(frame_ids) -> LabelledBatch``."""

    def label(self, frame_ids: Sequence[int]) -> LabelledBatch:
        """Labels of ``frame_ids`` (``(F,)`` distinct ids), in that order, with their cost."""
        ...


def check_frame_ids(frame_ids: Sequence[int], what: str) -> list[int]:
    """``frame_ids`` as ints; ``DataError`` for an empty list or duplicates."""
    ids = [int(i) for i in frame_ids]
    if not ids:
        raise DataError(f"{what}: no frame ids given; nothing to label")
    dup = sorted(i for i, n in Counter(ids).items() if n > 1)
    if dup:
        raise DataError(f"{what}: duplicate frame id(s) {show_ids(dup)} (field 'frame_ids')")
    return ids


def frame_meta(frame: Any) -> dict:
    """A frame's metadata as a plain dict (``{}`` when it has none)."""
    meta = getattr(frame, "meta", None)
    if meta is None:
        return {}
    meta = meta.as_dict() if hasattr(meta, "as_dict") else dict(meta)
    return {str(k): (v.item() if isinstance(v, np.generic) else v) for k, v in meta.items()}
