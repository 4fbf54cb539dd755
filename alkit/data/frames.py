"""One generated (or loaded) frame: image, ground-truth boxes and metadata."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Metadata columns every frame has (pool manifests carry them as Parquet columns).
META_FIELDS: tuple[str, ...] = (
    "session_id",
    "frame_index",
    "time_of_day",
    "weather",
    "route",
    "geo_cell",
    "segment",
)


@dataclass(frozen=True)
class FrameMeta:
    """Per-frame metadata, as a fleet's logging would record it.

    ``time_of_day`` is ``day``/``dusk``/``night``; ``weather`` is ``clear``/``rain``/``fog``;
    ``route`` is ``highway``/``urban``/``suburban``; ``geo_cell`` names a map tile;
    ``segment`` names the part of the experiment world the frame belongs to
    (``initial``, ``pool``, ``test``).
    """

    session_id: int
    frame_index: int
    time_of_day: str
    weather: str
    route: str
    geo_cell: str
    segment: str

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in META_FIELDS}


@dataclass(frozen=True)
class Frame:
    """An image with its ground truth.

    Attributes:
        frame_id: globally unique id (int64).
        image: ``(H, W, 3)`` uint8 RGB.
        boxes: ``(N, 4)`` float32 boxes ``[x, y, w, h]`` in pixels (COCO convention).
        labels: ``(N,)`` int64 class indices into ``alkit.CLASSES``.
        meta: the frame's metadata: a ``FrameMeta`` (the synthetic world), or a dict of the
            frame's pool metadata row (own data, ``alkit.data.sources``).
        attributes: per-box tags, ``(N,)`` list of tuples such as ``("dark_clothing",)``,
            ``("truncated",)``, ``("wheelie",)``: the long tail, for analysis only.
        tracks: per-box object ids within the drive (the synthetic world), ``(N,)`` int64, or
            ``None``: which boxes of a session's frames are the same object.
    """

    frame_id: int
    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    meta: FrameMeta | dict
    attributes: tuple[tuple[str, ...], ...] = field(default=())
    tracks: np.ndarray | None = None

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])
