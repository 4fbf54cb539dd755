"""Images of any size in the model's fixed input size, and boxes back to the original pixels.

An image ``(h, w)`` is scaled by one factor to fit inside the input ``(H, W)``, keeping its
aspect ratio, and centred on a black canvas (a letterbox). Boxes go into the input with
:meth:`Letterbox.to_input` and come back with :meth:`Letterbox.to_original`: every box that
leaves alkit (exports, widgets, COCO files, dataset versions) is in the original image's
pixels. An image already of the input size is left as it is (the synthetic world's frames).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from alkit.errors import ConfigError, DataError


def input_size(value) -> tuple[int, int]:
    """``[H, W]`` as a checked ``(H, W)`` of positive ints (``ConfigError`` naming the value)."""
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"input_size must be [height, width], got {value!r}") from None
    if h < 1 or w < 1 or [h, w] != [float(v) for v in value]:
        raise ConfigError(f"input_size must be two positive ints [height, width], got {value!r}")
    return h, w


@dataclass(frozen=True)
class Letterbox:
    """Where an ``height x width`` image sits in an ``in_height x in_width`` input."""

    height: int
    width: int
    in_height: int
    in_width: int

    def __post_init__(self) -> None:
        if min(self.height, self.width, self.in_height, self.in_width) < 1:
            raise DataError(
                f"letterbox: sizes must be positive, got image {self.height}x{self.width}, "
                f"input {self.in_height}x{self.in_width}"
            )

    @classmethod
    def of(cls, image_hw: tuple[int, int], size: tuple[int, int]) -> Letterbox:
        """The letterbox of an image ``(h, w)`` in the input ``size`` ``(H, W)``."""
        return cls(int(image_hw[0]), int(image_hw[1]), int(size[0]), int(size[1]))

    @property
    def resized(self) -> tuple[int, int]:
        """``(h', w')``: the image's size inside the input, aspect ratio kept."""
        scale = min(self.in_height / self.height, self.in_width / self.width)
        h = min(max(round(self.height * scale), 1), self.in_height)
        w = min(max(round(self.width * scale), 1), self.in_width)
        return h, w

    @property
    def offset(self) -> tuple[int, int]:
        """``(pad_x, pad_y)``: the resized image's top-left corner in the input."""
        h, w = self.resized
        return (self.in_width - w) // 2, (self.in_height - h) // 2

    @property
    def identity(self) -> bool:
        return (self.height, self.width) == (self.in_height, self.in_width)

    def _scale(self) -> tuple[float, float]:
        h, w = self.resized
        return w / self.width, h / self.height

    def image(self, image: np.ndarray) -> np.ndarray:
        """``(h, w, 3)`` uint8 -> ``(H, W, 3)`` uint8: resized (bilinear, Pillow) and padded."""
        if tuple(image.shape[:2]) != (self.height, self.width):
            raise DataError(
                f"letterbox: image is {image.shape[0]}x{image.shape[1]}, "
                f"expected {self.height}x{self.width}"
            )
        return self.fit(image)

    def fit(self, image: np.ndarray) -> np.ndarray:
        """``image`` (the original, or a reduced-scale decode of it: any ``(h, w, 3)`` uint8)
        resized to ``resized`` (bilinear, Pillow) and padded to ``(H, W, 3)``."""
        h, w = self.resized
        if self.identity and tuple(image.shape[:2]) == (h, w):
            return image
        pad_x, pad_y = self.offset
        small = np.asarray(
            Image.fromarray(np.ascontiguousarray(image)).resize((w, h), Image.Resampling.BILINEAR)
        )  # (h', w', 3)
        out = np.zeros((self.in_height, self.in_width, 3), np.uint8)  # (H, W, 3)
        out[pad_y : pad_y + h, pad_x : pad_x + w] = small
        return out

    def to_input(self, boxes: np.ndarray) -> np.ndarray:
        """``(N, 4)`` xywh in original px -> xywh in input px (float32)."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)  # (N, 4)
        if self.identity:
            return boxes.astype(np.float32)
        sx, sy = self._scale()
        pad_x, pad_y = self.offset
        out = boxes * np.array([sx, sy, sx, sy]) + np.array([pad_x, pad_y, 0.0, 0.0])
        return out.astype(np.float32)

    def to_original(self, boxes: np.ndarray) -> np.ndarray:
        """``(N, 4)`` xywh in input px -> xywh in original px (float64), clipped to the image."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)  # (N, 4)
        if not self.identity:
            sx, sy = self._scale()
            pad_x, pad_y = self.offset
            boxes = (boxes - np.array([pad_x, pad_y, 0.0, 0.0])) / np.array([sx, sy, sx, sy])
        x0 = np.clip(boxes[:, 0], 0.0, self.width)
        y0 = np.clip(boxes[:, 1], 0.0, self.height)
        x1 = np.clip(boxes[:, 0] + boxes[:, 2], 0.0, self.width)
        y1 = np.clip(boxes[:, 1] + boxes[:, 3], 0.0, self.height)
        return np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)  # (N, 4)


__all__ = ["Letterbox", "input_size"]
