"""AL's top frames beside their mutual-information heatmaps: a report's first figure.

One row per frame: the frame with its ground-truth boxes (what a labeller will see), then the
ensemble's MI of each class of interest over the frame in grey, with the frame's mean MI of
that class (the seed's score) in the panel's title. Rows share one colour range per class,
so a brighter map is a frame the ensemble disagrees on more.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from alkit.errors import ConfigError

from .ensemble_maps import EnsembleMaps
from .heatmap_figure import Boxes, _draw_boxes, luminance, upsample


def top_frames_figure(
    maps: EnsembleMaps,
    frame_ids: Sequence[int],
    classes: Sequence[str],
    n: int = 4,
    title: str = "AL's top frames",
    cmap: str = "turbo",
) -> Figure:
    """The first ``n`` of ``frame_ids`` (in pick order): each frame with its ground truth,
    then its MI map of each class of ``classes`` (names of ``maps.classes``).

    Returns a Figure of ``n`` rows and ``1 + len(classes)`` columns.
    """
    ids = [int(f) for f in frame_ids[:n]]
    if not ids:
        raise ConfigError("top_frames_figure: no frames to show (the selection is empty)")
    unknown = [c for c in classes if c not in maps.classes]
    if unknown:
        raise ConfigError(f"classes {unknown} are not the ensemble's {list(maps.classes)}")
    channels = [list(maps.classes).index(c) for c in classes]
    mi = {fid: maps.heatmap(fid) for fid in ids}  # fid -> (C, h, w) nats
    vmax = [max(float(mi[f][k].max()) for f in ids) or 1.0 for k in channels]
    image0 = maps.image(ids[0])
    h, w = image0.shape[:2]
    cols = 1 + len(channels)
    panel = 2.6  # inches per panel's width
    fig = Figure(figsize=(panel * cols, panel * h / w * len(ids) + 0.7), dpi=100)
    axes = fig.subplots(len(ids), cols, squeeze=False)
    for row, fid in enumerate(ids):
        image = maps.image(fid)  # (H, W, 3) uint8
        grey = luminance(image)  # (H, W)
        ax = axes[row][0]
        ax.imshow(image, interpolation="nearest")
        if maps.has_gt:
            boxes, labels = maps.gt(fid)
            _draw_boxes(ax, Boxes(boxes, labels), maps.classes, None, dashed=False)
        ax.set_title(maps.caption(fid), fontsize=7)
        for col, (k, name) in enumerate(zip(channels, classes, strict=True), start=1):
            ax = axes[row][col]
            ax.imshow(grey, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            heat = upsample(mi[fid][k], image.shape[0], image.shape[1])  # (H, W)
            shown = ax.imshow(heat, cmap=cmap, alpha=0.55, vmin=0.0, vmax=vmax[col - 1])
            ax.set_title(f"MI {name}: mean {mi[fid][k].mean():.4f} nats", fontsize=7)
            if row == len(ids) - 1:
                fig.colorbar(shown, ax=ax, orientation="horizontal", fraction=0.06, pad=0.04)
        for ax in axes[row]:
            ax.set_axis_off()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(h_pad=1.5)
    return fig


__all__ = ["top_frames_figure"]
