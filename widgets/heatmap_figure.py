"""The heatmap overlay figure: a frame with one class map upsampled on top, plus boxes.

Pure functions (no widget), so notebooks can draw the same figure as ``HeatmapViewer``.
The image area is exactly ``scale`` times the frame in pixels; a colour bar strip of
``COLORBAR_PX`` px sits on the right, so the PNG is ``(W * scale + COLORBAR_PX, H * scale)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from alkit.data.classes import CLASSES
from alkit.sim.montage import CLASS_COLORS

from .render import DPI, as_rgb_uint8

#: Width in px of the colour bar strip right of the image.
COLORBAR_PX = 90


class Boxes(NamedTuple):
    """Boxes to draw: ``boxes (N, 4)`` xywh px, ``labels (N,)`` int class indices and
    ``scores (N,)`` in [0, 1] or ``None`` (ground truth)."""

    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray | None = None


#: Box colours of classes without one in ``CLASS_COLORS`` (own data), by class index.
OTHER_COLORS = ("#ffd60a", "#4cc9f0", "#f72585", "#80ffdb", "#fb8500", "#b5e48c", "#ff70a6")


def class_color(name: str, index: int) -> str:
    """The box colour of class ``name`` (channel ``index``)."""
    return CLASS_COLORS.get(name) or OTHER_COLORS[index % len(OTHER_COLORS)]


def upsample(heat: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a map ``(h, w)`` -> ``(height, width)`` float32."""
    pil = Image.fromarray(np.ascontiguousarray(heat, dtype=np.float32), mode="F")
    return np.asarray(pil.resize((width, height), Image.Resampling.BILINEAR))  # (H, W)


def luminance(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` float32 luminance in [0, 255] of an ``(H, W, 3)`` uint8 image (show it with
    ``cmap="gray", vmin=0, vmax=255``)."""
    return image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def figure_size_px(image_shape: Sequence[int], scale: int) -> tuple[int, int]:
    """``(width, height)`` in px of ``heatmap_figure`` for an ``(H, W, ...)`` image."""
    return int(image_shape[1]) * scale + COLORBAR_PX, int(image_shape[0]) * scale


def _draw_boxes(ax, boxes: Boxes, classes: Sequence[str], selected: str | None, dashed: bool):
    scores = boxes.scores if boxes.scores is not None else [None] * len(boxes.labels)
    for (x, y, w, h), label, score in zip(boxes.boxes, boxes.labels, scores, strict=True):
        name = classes[int(label)]
        color = class_color(name, int(label))
        lw = 1.8 if name == selected else 0.9
        ax.add_patch(
            Rectangle(
                (x - 0.5, y - 0.5), w, h, fill=False, lw=lw, ec=color, ls="--" if dashed else "-"
            )  # fmt: skip
        )
        if score is not None:
            ax.text(x - 0.5, y - 1.0, f"{score:.2f}", color=color, fontsize=6, va="bottom")


def heatmap_figure(
    image: np.ndarray,
    heat: np.ndarray,
    *,
    vmin: float = 0.0,
    vmax: float | None = None,
    opacity: float = 0.5,
    grey: bool = True,
    cmap: str = "turbo",
    label: str = "MI (nats)",
    gt: Boxes | None = None,
    detections: Boxes | None = None,
    classes: Sequence[str] = CLASSES,
    selected: str | None = None,
    scale: int = 4,
) -> Figure:
    """A frame with a class map overlaid.

    Args:
        image: ``(H, W, 3)`` uint8 (or float in [0, 1]).
        heat: ``(h, w)`` map at output stride, upsampled bilinearly to ``(H, W)``.
        vmin, vmax: colour range; ``vmax=None`` takes the map's maximum.
        opacity: alpha of the map in [0, 1].
        grey: show the image as luminance so the colours belong to the map.
        gt: ground-truth boxes (solid); detections: detections (dashed, with scores).
        selected: class drawn with thicker boxes.
        scale: screen px per image px.

    Returns:
        A Figure of ``figure_size_px(image.shape, scale)`` px at ``render.DPI``.
    """
    image = as_rgb_uint8(image)
    h, w = image.shape[:2]
    fig_w, fig_h = figure_size_px(image.shape, scale)
    fig = Figure(figsize=(fig_w / DPI, fig_h / DPI), dpi=DPI)
    ax = fig.add_axes((0.0, 0.0, w * scale / fig_w, 1.0))
    ax.set_axis_off()
    if grey:
        ax.imshow(luminance(image), cmap="gray", vmin=0, vmax=255, interpolation="nearest",
                  aspect="auto")  # fmt: skip
    else:
        ax.imshow(image, interpolation="nearest", aspect="auto")
    top = float(np.max(heat)) if vmax is None else float(vmax)
    norm = Normalize(vmin=vmin, vmax=max(top, vmin + 1e-9))
    shown = ax.imshow(
        upsample(heat, h, w), cmap=cmap, norm=norm, alpha=float(opacity), aspect="auto",
        interpolation="nearest",
    )  # fmt: skip
    if gt is not None:
        _draw_boxes(ax, gt, classes, selected, dashed=False)
    if detections is not None:
        _draw_boxes(ax, detections, classes, selected, dashed=True)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    cax = fig.add_axes(((w * scale + 10) / fig_w, 0.08, 12 / fig_w, 0.84))
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=shown.get_cmap()), cax=cax)
    bar.ax.tick_params(labelsize=7)
    bar.set_label(label, fontsize=8)
    return fig
