"""A montage of frames with their boxes: the quickest way to see what the world looks like."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg") if matplotlib.get_backend().lower() == "agg" else None
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from alkit.data.classes import CLASSES  # noqa: E402
from alkit.data.frames import Frame  # noqa: E402

CLASS_COLORS = {
    "car": "#4cc9f0",
    "bicycle": "#f72585",
    "person": "#ffd60a",
    "traffic_light": "#80ffdb",
    "road_sign": "#fb8500",
}


def draw_frame(ax, frame: Frame, classes: tuple[str, ...] = CLASSES, title: str | None = None):
    """Show one frame with class-coloured boxes on a matplotlib axis."""
    ax.imshow(frame.image, interpolation="nearest")
    for (x, y, w, h), label in zip(frame.boxes, frame.labels, strict=True):
        color = CLASS_COLORS.get(classes[label], "white")
        ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, lw=0.8, ec=color))
    m = frame.meta
    ax.set_title(title or f"#{frame.frame_id} {m.time_of_day} {m.route} {m.weather}", fontsize=7)
    ax.set_axis_off()


def montage(frames: list[Frame], columns: int = 4, boxes: bool = True, scale: float = 2.2):
    """A grid figure of frames (with boxes and a class legend); returns the Figure."""
    rows = (len(frames) + columns - 1) // columns
    h, w = frames[0].image.shape[:2]
    fig, axes = plt.subplots(
        rows, columns, figsize=(columns * scale * w / h, rows * scale + 0.4), squeeze=False
    )
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, frame in zip(axes.ravel(), frames, strict=False):
        if boxes:
            draw_frame(ax, frame)
        else:
            ax.imshow(frame.image, interpolation="nearest")
            ax.set_axis_off()
    handles = [Rectangle((0, 0), 1, 1, fill=False, ec=c, label=n) for n, c in CLASS_COLORS.items()]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig
