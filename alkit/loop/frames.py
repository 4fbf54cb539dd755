"""The labelled frames a learner draws from: a dataset version's labels over its images.

A version stores labels, not pixels. :class:`FrameCache` renders each generated (``sim:``)
frame of a world once and keeps its image, so the initial set, the test sets and every
round's new frames are rendered once per world however many arms, seeds and rounds train on
them. :func:`version_frames` pairs those images with the VERSION's boxes and labels: what a
learner trains on is what APPEND wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from alkit.data.datasets import SIM_PREFIX, CachedFrames, FrameSource, VirtualFrames, cached_frames
from alkit.data.versions import DatasetVersion
from alkit.errors import DataError


class FrameCache:
    """A world's frames by id, each rendered once: its image ``uint8 [3, H, W]`` and its
    ground truth (``boxes`` float32 ``[N, 4]`` xywh px, ``labels`` int64 ``[N]``)."""

    def __init__(self, world: FrameSource) -> None:
        self.world = world
        self._frames: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self._frames)

    def _render(self, frame_ids: Sequence[int]) -> None:
        missing = [int(i) for i in dict.fromkeys(frame_ids) if int(i) not in self._frames]
        if missing:
            done = CachedFrames(VirtualFrames(self.world, missing))
            for k, fid in enumerate(done.frame_ids):
                self._frames[int(fid)] = (done.images[k], done.boxes[k], done.labels[k])

    def images(self, frame_ids: Sequence[int]) -> list[torch.Tensor]:
        """The images of ``frame_ids`` (``F x uint8 [3, H, W]``), rendering the missing ones."""
        self._render(frame_ids)
        return [self._frames[int(i)][0] for i in frame_ids]

    def frames(self, frame_ids: Sequence[int]) -> CachedFrames:
        """``frame_ids`` with the world's own labels (a test set's ground truth), in order."""
        ids = [int(i) for i in frame_ids]
        self._render(ids)
        parts = [self._frames[i] for i in ids]
        return LabelledFrames(ids, [p[0] for p in parts], [p[1] for p in parts],
                              [p[2] for p in parts])  # fmt: skip


def frame_ids_of(frames: Dataset) -> list[int]:
    """The frame ids of a frames dataset, also through ``Subset`` s."""
    if isinstance(frames, torch.utils.data.Subset):
        inner = frame_ids_of(frames.dataset)
        return [inner[i] for i in frames.indices]
    return [int(i) for i in getattr(frames, "frame_ids", [])]


class LabelledFrames(CachedFrames):
    """Frames held in memory (items as ``CachedFrames``) from images and labels given."""

    def __init__(self, frame_ids, images, boxes, labels) -> None:  # no DataLoader pass
        if not frame_ids:
            raise DataError("LabelledFrames: no frames")
        self.frame_ids = [int(i) for i in frame_ids]
        self.images = torch.stack(list(images))  # (N, 3, H, W) uint8
        self.boxes = [torch.tensor(np.asarray(b), dtype=torch.float32).view(-1, 4) for b in boxes]
        self.labels = [torch.tensor(np.asarray(x), dtype=torch.int64).reshape(-1) for x in labels]


class NoFrames(Dataset):
    """No frames: what REFERENCE's same-length control draws as new."""

    frame_ids: list[int] = []

    def __len__(self) -> int:
        return 0

    def __getitem__(self, index: int) -> dict:
        raise IndexError(index)


def version_frames(
    version: DatasetVersion, frame_ids: Iterable[int], cache: FrameCache | None = None,
    world: FrameSource | None = None, input_size=None,
) -> Dataset:  # fmt: skip
    """The frames ``frame_ids`` of ``version``, in that order, with the version's labels.

    Generated frames take their images from ``cache`` (rendered once per world); other images
    are read from their URLs (``cached_frames``). Raises ``DataError`` naming the frames that
    the version does not hold: a learner trains only on what APPEND wrote.
    """
    ids = [int(i) for i in frame_ids]
    if not ids:
        return NoFrames()
    held = set(version.frame_ids)
    outside = [i for i in ids if i not in held]
    if outside:
        raise DataError(
            f"frame(s) {outside[:8]} are not in version {version.hash[:12]}: a learner trains "
            "only on the version APPEND wrote"
        )
    uris = dict(zip(version.frames.frame_id.tolist(), version.frames.image_uri.astype(str),
                    strict=True))  # fmt: skip
    if cache is None or not all(uris[i].startswith(SIM_PREFIX) for i in ids):
        full = cached_frames(version, world or (cache.world if cache else None), ids, input_size)
        order = {fid: k for k, fid in enumerate(full.frame_ids)}
        return torch.utils.data.Subset(full, [order[i] for i in ids])
    labels = version.labels_by_frame()
    return LabelledFrames(ids, cache.images(ids), [labels[i][0] for i in ids],
                          [labels[i][1] for i in ids])  # fmt: skip


__all__ = ["FrameCache", "LabelledFrames", "NoFrames", "frame_ids_of", "version_frames"]
