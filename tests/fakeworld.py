"""A tiny stand-in for ``alkit.sim.World`` in data-layer tests: random rectangles on noise."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from alkit.data.frames import Frame, FrameMeta

H, W = 48, 80


@dataclass(frozen=True)
class FakeConfig:
    seed: int = 0
    image_height: int = H
    image_width: int = W

    def to_dict(self) -> dict:
        return asdict(self)


class FakeWorld:
    """Random rectangles on noise, seeded by frame id; boxes at sub-pixel positions.

    ``min_boxes``: fewest boxes per frame; ``time_of_day``: fixed, or None to cycle
    day / dusk / night by frame id.
    """

    def __init__(self, seed: int = 0, min_boxes: int = 0, time_of_day: str | None = None):
        self.config = FakeConfig(seed)
        self.min_boxes = min_boxes
        self.time_of_day = time_of_day

    def frame(self, frame_id: int) -> Frame:
        rng = np.random.default_rng([self.config.seed, frame_id])
        image = rng.integers(0, 60, size=(H, W, 3), dtype=np.uint8)
        n = int(rng.integers(self.min_boxes, 4))
        x = rng.uniform(0, W - 10, n)
        y = rng.uniform(0, H - 10, n)
        w = rng.uniform(2, W - x)
        h = rng.uniform(2, H - y)
        boxes = np.stack([x, y, w, h], axis=1).astype(np.float32).reshape(-1, 4)
        for bx, by, bw, bh in boxes:
            image[int(by) : int(by + bh), int(bx) : int(bx + bw)] = rng.integers(0, 256, 3)
        tod = self.time_of_day or ("day", "dusk", "night")[frame_id % 3]
        meta = FrameMeta(frame_id // 10, frame_id % 10, tod, "clear", "urban", "00-00", "pool")
        labels = rng.integers(0, 5, n).astype(np.int64)
        return Frame(frame_id, image, boxes, labels, meta, tuple(("tag",) for _ in range(n)))
