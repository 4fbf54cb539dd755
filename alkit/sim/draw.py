"""Rasterising primitives on a clipped window of the image (an object's sprite).

Shapes are given in image pixel coordinates (floats); a pixel belongs to a shape when its
centre does. Every shape records its extent per *part* (0 = the object, 1 = a rider,
-1 = an unlabelled part such as a pole), so boxes come from geometry, not from pixels.

A rectangle is painted as a slice of the window (its pixels found from its bounds, exactly
the pixels whose centre it holds); the other shapes test pixel centres on the part of the
window around them (their bounding box plus a pixel; a triangle on the whole window), so a
shape costs in proportion to its own size, not the sprite's.
"""

from __future__ import annotations

import functools
import math

import numpy as np

#: A shape's test region reaches this many pixels past its bounding box, far more than the
#: float rounding of any pixel-centre test, so no pixel outside it could pass the test.
MARGIN_PX = 1


def _bound(value) -> float:
    """A bound as the value the float32 pixel centres are compared with: a Python number is
    a weak scalar to NumPy (the comparison runs in float32), a NumPy float keeps its own
    precision; either way the result is exact in float64."""
    return float(value if isinstance(value, np.floating) else np.float32(value))


@functools.cache
def _centres(n: int) -> np.ndarray:
    """Pixel centres ``0.5, 1.5, ..., n - 0.5`` ``(n,)`` float32 (read-only, shared)."""
    centres = np.arange(n, dtype=np.float32) + 0.5  # (n,)
    centres.flags.writeable = False
    return centres


class Sprite:
    """An object's layers over the window ``[ix0, ix1) x [iy0, iy1)`` of an ``(H, W)`` image.

    ``albedo`` ``(h, w, 3)`` float32; ``emit`` ``(h, w, 3)`` float32 once a shape emits light,
    else ``None`` (nothing emits); ``part`` ``(h, w)`` int8 (-2 = empty). ``unlabelled``:
    whether a part -1 was ever painted.
    """

    def __init__(self, x0: float, y0: float, x1: float, y1: float, height: int, width: int):
        self.ix0, self.iy0 = max(int(math.floor(x0)), 0), max(int(math.floor(y0)), 0)
        self.ix1, self.iy1 = min(int(math.ceil(x1)), width), min(int(math.ceil(y1)), height)
        h, w = max(self.iy1 - self.iy0, 0), max(self.ix1 - self.ix0, 0)
        self.yy = _centres(height)[self.iy0 : self.iy0 + h, None]  # (h, 1)
        self.xx = _centres(width)[None, self.ix0 : self.ix0 + w]  # (1, w)
        self.albedo = np.zeros((h, w, 3), np.float32)  # (h, w, 3)
        self.emit: np.ndarray | None = None  # (h, w, 3) once something emits
        self.part = np.empty((h, w), np.int8)  # (h, w)
        self.part.fill(-2)
        self.extents: dict[int, list[float]] = {}
        self.unlabelled = False
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

    def _span(self, lo, hi, vertical: bool) -> tuple[int, int] | None:
        """Window indices ``[a, b)`` of the rows (``vertical``) or columns whose pixel centre
        ``c`` has ``lo <= c < hi``; ``None`` when a bound is not finite.

        The same pixels as the test ``(centres >= lo) & (centres < hi)`` on the float32
        centres ``n + 0.5`` (exact): ``n + 0.5 >= lo`` is ``n >= ceil(lo - 0.5)`` and
        ``n + 0.5 < hi`` is ``n < ceil(hi - 0.5)``.
        """
        lo, hi = _bound(lo), _bound(hi)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return None
        i0, i1 = (self.iy0, self.iy1) if vertical else (self.ix0, self.ix1)
        a = min(max(math.ceil(lo - 0.5), i0), i1) - i0
        b = min(max(math.ceil(hi - 0.5), i0), i1) - i0
        return a, b

    def _region(self, x0, y0, x1, y1):
        """The window slice around the box ``[x0, x1] x [y0, y1]`` (plus ``MARGIN_PX``) and
        its pixel centres ``(rows, cols)``; ``None`` when it holds no pixel."""
        try:
            c0 = max(math.floor(x0) - MARGIN_PX - self.ix0, 0)
            c1 = min(math.ceil(x1) + MARGIN_PX - self.ix0, self.ix1 - self.ix0)
            r0 = max(math.floor(y0) - MARGIN_PX - self.iy0, 0)
            r1 = min(math.ceil(y1) + MARGIN_PX - self.iy0, self.iy1 - self.iy0)
        except (OverflowError, ValueError):  # a bound that is not finite: the whole window
            c0, c1, r0, r1 = 0, self.ix1 - self.ix0, 0, self.iy1 - self.iy0
        if c0 >= c1 or r0 >= r1:
            return None
        return np.s_[r0:r1, c0:c1], self.yy[r0:r1], self.xx[:, c0:c1]  # -, (h', 1), (1, w')

    def _paint(self, where, color, part: int, emit, mask=None) -> None:
        """Paint the pixels of window slice ``where`` (all of them, or those of ``mask``)."""
        albedo, parts = self.albedo[where], self.part[where]
        if mask is None:
            albedo[...], parts[...] = color, part
        else:
            albedo[mask], parts[mask] = color, part
        if emit is not None and self.emit is None:
            self.emit = np.zeros_like(self.albedo)  # (h, w, 3)
        if self.emit is not None:
            target = self.emit[where]
            value = 0.0 if emit is None else emit
            if mask is None:
                target[...] = value
            else:
                target[mask] = value
        self.unlabelled |= part == -1

    def rect(self, x0, y0, x1, y1, color, part=0, emit=None) -> None:
        """Axis-aligned rectangle ``[x0, x1) x [y0, y1)``."""
        self._extend(part, x0, y0, x1, y1)
        cols, rows = self._span(x0, x1, False), self._span(y0, y1, True)
        if cols is None or rows is None:
            m = (self.xx >= x0) & (self.xx < x1) & (self.yy >= y0) & (self.yy < y1)  # (h, w)
            self._paint(np.s_[:, :], color, part, emit, m)
        elif cols[0] < cols[1] and rows[0] < rows[1]:
            self._paint(np.s_[rows[0] : rows[1], cols[0] : cols[1]], color, part, emit)

    def ellipse(self, cx, cy, rx, ry, color, part=0, emit=None) -> None:
        """Filled ellipse; radii are floored at half a pixel so small ones still show."""
        rx, ry = max(rx, 0.5), max(ry, 0.5)
        self._extend(part, cx - rx, cy - ry, cx + rx, cy + ry)
        region = self._region(cx - rx, cy - ry, cx + rx, cy + ry)
        if region is None:
            return
        where, yy, xx = region
        m = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0  # (h', w')
        self._paint(where, color, part, emit, m)

    def ring(self, cx, cy, rx, ry, thick, color, part=0, upper_only=False) -> None:
        """Elliptic ring of width ``thick`` px (a wheel); ``upper_only`` keeps the top half."""
        rx, ry, thick = max(rx, 0.5), max(ry, 0.5), max(thick, 0.6)
        self._extend(part, cx - rx, cy - ry, cx + rx, cy if upper_only else cy + ry)
        grow = 1.0 + thick / 2 / min(rx, ry)  # the ring's outer edge, in radii
        region = self._region(cx - rx * grow, cy - ry * grow, cx + rx * grow, cy + ry * grow)
        if region is None:
            return
        where, yy, xx = region
        d = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)  # (h', w')
        m = np.abs(d - 1.0) * min(rx, ry) <= thick / 2
        if upper_only:
            m &= yy <= cy
        self._paint(where, color, part, None, m)

    def segment(self, ax, ay, bx, by, thick, color, part=0) -> None:
        """Thick line segment from ``(ax, ay)`` to ``(bx, by)``; ``thick`` in px."""
        thick = max(thick, 0.8)
        r = thick / 2
        x0, y0, x1, y1 = min(ax, bx) - r, min(ay, by) - r, max(ax, bx) + r, max(ay, by) + r
        self._extend(part, x0, y0, x1, y1)
        region = self._region(x0, y0, x1, y1)
        if region is None:
            return
        where, yy, xx = region
        dx, dy = bx - ax, by - ay
        length2 = max(dx * dx + dy * dy, 1e-6)
        px, py = xx - ax, yy - ay  # (1, w'), (h', 1)
        s = np.add(px * dx, py * dy)  # (h', w'), then the projection clamped to [0, 1]
        np.divide(s, length2, out=s)
        np.minimum(np.maximum(s, 0.0, out=s), 1.0, out=s)
        ex = np.multiply(s, dx)  # (h', w') the pixel's offset from its nearest point, x ...
        np.subtract(px, ex, out=ex)
        np.square(ex, out=ex)
        ey = np.multiply(s, dy, out=s)  # ... and y
        np.subtract(py, ey, out=ey)
        np.square(ey, out=ey)
        m = np.add(ex, ey, out=ex) <= r * r
        self._paint(where, color, part, None, m)

    def triangle(self, ax, ay, bx, by, cx, cy, color, part=0) -> None:
        """Filled triangle through three points (tested on the whole window: a degenerate,
        flat triangle holds every pixel centre on its line, also outside its box)."""
        self._extend(part, min(ax, bx, cx), min(ay, by, cy), max(ax, bx, cx), max(ay, by, cy))

        def side(px, py, qx, qy):
            return (qx - px) * (self.yy - py) - (qy - py) * (self.xx - px)

        s1, s2, s3 = side(ax, ay, bx, by), side(bx, by, cx, cy), side(cx, cy, ax, ay)
        m = ((s1 >= 0) & (s2 >= 0) & (s3 >= 0)) | ((s1 <= 0) & (s2 <= 0) & (s3 <= 0))
        self._paint(np.s_[:, :], color, part, None, m)

    def light(self, x, y, radius, color) -> None:
        """Register a light source for glare (drawn later over the whole image)."""
        self.lights.append((x, y, radius, color))
