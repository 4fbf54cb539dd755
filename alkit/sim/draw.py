"""Rasterising primitives on a clipped window of the image (an object's sprite).

Shapes are given in image pixel coordinates (floats); a pixel belongs to a shape when its
centre does. Every shape records its extent per *part* (0 = the object, 1 = a rider,
-1 = an unlabelled part such as a pole), so boxes come from geometry, not from pixels.
"""

from __future__ import annotations

import math

import numpy as np


class Sprite:
    """An object's layers over the window ``[ix0, ix1) x [iy0, iy1)`` of an ``(H, W)`` image.

    ``albedo``/``emit`` ``(h, w, 3)`` float32; ``part`` ``(h, w)`` int8 (-2 = empty).
    """

    def __init__(self, x0: float, y0: float, x1: float, y1: float, height: int, width: int):
        self.ix0, self.iy0 = max(int(math.floor(x0)), 0), max(int(math.floor(y0)), 0)
        self.ix1, self.iy1 = min(int(math.ceil(x1)), width), min(int(math.ceil(y1)), height)
        h, w = max(self.iy1 - self.iy0, 0), max(self.ix1 - self.ix0, 0)
        self.yy = (np.arange(self.iy0, self.iy0 + h, dtype=np.float32) + 0.5)[:, None]  # (h, 1)
        self.xx = (np.arange(self.ix0, self.ix0 + w, dtype=np.float32) + 0.5)[None, :]  # (1, w)
        self.albedo = np.zeros((h, w, 3), np.float32)  # (h, w, 3)
        self.emit = np.zeros((h, w, 3), np.float32)  # (h, w, 3)
        self.part = np.full((h, w), -2, np.int8)  # (h, w)
        self.extents: dict[int, list[float]] = {}
        self._emits = False
        self.lights: list[tuple[float, float, float, tuple[float, float, float]]] = []

    @property
    def empty(self) -> bool:
        return self.albedo.shape[0] == 0 or self.albedo.shape[1] == 0

    def _extend(self, part: int, x0: float, y0: float, x1: float, y1: float) -> None:
        e = self.extents.get(part)
        if e is None:
            self.extents[part] = [x0, y0, x1, y1]
        else:
            e[0], e[1], e[2], e[3] = min(e[0], x0), min(e[1], y0), max(e[2], x1), max(e[3], y1)

    def _paint(self, m: np.ndarray, color, part: int, emit) -> None:
        self.albedo[m] = color
        self.part[m] = part
        if emit is not None:
            self.emit[m] = emit
            self._emits = True
        elif self._emits:
            self.emit[m] = 0.0

    def rect(self, x0, y0, x1, y1, color, part=0, emit=None) -> None:
        """Axis-aligned rectangle ``[x0, x1) x [y0, y1)``."""
        self._extend(part, x0, y0, x1, y1)
        m = (self.xx >= x0) & (self.xx < x1) & (self.yy >= y0) & (self.yy < y1)  # (h, w)
        self._paint(m, color, part, emit)

    def ellipse(self, cx, cy, rx, ry, color, part=0, emit=None) -> None:
        """Filled ellipse; radii are floored at half a pixel so small ones still show."""
        rx, ry = max(rx, 0.5), max(ry, 0.5)
        self._extend(part, cx - rx, cy - ry, cx + rx, cy + ry)
        m = ((self.xx - cx) / rx) ** 2 + ((self.yy - cy) / ry) ** 2 <= 1.0  # (h, w)
        self._paint(m, color, part, emit)

    def ring(self, cx, cy, rx, ry, thick, color, part=0, upper_only=False) -> None:
        """Elliptic ring of width ``thick`` px (a wheel); ``upper_only`` keeps the top half."""
        rx, ry, thick = max(rx, 0.5), max(ry, 0.5), max(thick, 0.6)
        self._extend(part, cx - rx, cy - ry, cx + rx, cy if upper_only else cy + ry)
        d = np.sqrt(((self.xx - cx) / rx) ** 2 + ((self.yy - cy) / ry) ** 2)  # (h, w)
        m = np.abs(d - 1.0) * min(rx, ry) <= thick / 2
        if upper_only:
            m &= self.yy <= cy
        self._paint(m, color, part, None)

    def segment(self, ax, ay, bx, by, thick, color, part=0) -> None:
        """Thick line segment from ``(ax, ay)`` to ``(bx, by)``; ``thick`` in px."""
        thick = max(thick, 0.8)
        r = thick / 2
        self._extend(part, min(ax, bx) - r, min(ay, by) - r, max(ax, bx) + r, max(ay, by) + r)
        dx, dy = bx - ax, by - ay
        length2 = max(dx * dx + dy * dy, 1e-6)
        s = np.clip(((self.xx - ax) * dx + (self.yy - ay) * dy) / length2, 0.0, 1.0)  # (h, w)
        m = (self.xx - ax - s * dx) ** 2 + (self.yy - ay - s * dy) ** 2 <= r * r
        self._paint(m, color, part, None)

    def triangle(self, ax, ay, bx, by, cx, cy, color, part=0) -> None:
        """Filled triangle through three points."""
        self._extend(part, min(ax, bx, cx), min(ay, by, cy), max(ax, bx, cx), max(ay, by, cy))

        def side(px, py, qx, qy):
            return (qx - px) * (self.yy - py) - (qy - py) * (self.xx - px)

        s1, s2, s3 = side(ax, ay, bx, by), side(bx, by, cx, cy), side(cx, cy, ax, ay)
        m = ((s1 >= 0) & (s2 >= 0) & (s3 >= 0)) | ((s1 <= 0) & (s2 <= 0) & (s3 <= 0))
        self._paint(m, color, part, None)

    def light(self, x, y, radius, color) -> None:
        """Register a light source for glare (drawn later over the whole image)."""
        self.lights.append((x, y, radius, color))
