"""Boxes -> CenterNet training targets at the model's output stride.

Conventions match ``alkit.detector.network``: a box with centre ``(cx, cy)`` px belongs to cell
``(j, i) = (floor(cy / s), floor(cx / s))``; its targets there are ``size = (log(w / s),
log(h / s))`` and ``offset = (cx / s - i, cy / s - j)``. The heatmap holds, per class, a
Gaussian splat centred on that cell (value exactly 1 at the cell), with CenterNet's radius
(``gaussian_radius``, min_overlap 0.7, computed on the box size in cells) and
``sigma = (2 * radius + 1) / 6``; overlapping splats of one class take the maximum.

Boxes whose centre falls outside the image, or with zero/negative width or height, are
skipped (they cannot be detected). If two boxes share a centre cell, both heatmap peaks are
drawn but the size/offset targets of only one of them survive (CenterNet's limitation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from alkit.errors import ConfigError, DataError

#: CenterNet's minimum IoU between a box and one whose corners are shifted within the radius.
MIN_OVERLAP = 0.7


class Targets(NamedTuple):
    """CenterNet targets, for one image or (with a leading B axis) a batch.

    ``heatmap (C, h, w)`` float32 in [0, 1]; ``size (2, h, w)`` log box size in cells;
    ``offset (2, h, w)`` centre offset in cells; ``mask (h, w)`` bool, True at centre cells.
    ``size`` and ``offset`` are 0 where ``mask`` is False.
    """

    heatmap: Tensor
    size: Tensor
    offset: Tensor
    mask: Tensor


def output_hw(image_hw: tuple[int, int], stride: int) -> tuple[int, int]:
    """Output map size ``(H / s, W / s)``; raises ``ConfigError`` unless H, W divide by s."""
    height, width = image_hw
    if height % stride or width % stride:
        raise ConfigError(
            f"image size {height}x{width} (HxW) is not a multiple of the output stride {stride}"
        )
    return height // stride, width // stride


def gaussian_radius(height: Tensor, width: Tensor, min_overlap: float = MIN_OVERLAP) -> Tensor:
    """CenterNet's ``gaussian_radius`` (same formula, including its ``/ 2`` quirk),
    elementwise for box sizes in cells ``(N,)`` -> radii ``(N,)`` in cells (not rounded)."""
    hw_sum, area = height + width, height * width
    b1, c1 = hw_sum, area * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + torch.sqrt(b1**2 - 4 * c1)) / 2
    b2, c2 = 2 * hw_sum, (1 - min_overlap) * area
    r2 = (b2 + torch.sqrt(b2**2 - 16 * c2)) / 2
    a3, b3, c3 = 4 * min_overlap, -2 * min_overlap * hw_sum, (min_overlap - 1) * area
    r3 = (b3 + torch.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return torch.minimum(torch.minimum(r1, r2), r3)


def _as_boxes_labels(boxes: Tensor | np.ndarray, labels: Tensor | np.ndarray, num_classes: int):
    boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)  # (N, 4)
    labels = torch.as_tensor(labels, dtype=torch.int64).reshape(-1)  # (N,)
    if boxes.shape[0] != labels.shape[0]:
        raise DataError(f"got {boxes.shape[0]} boxes but {labels.shape[0]} labels")
    if not torch.isfinite(boxes).all():
        bad = (~torch.isfinite(boxes)).any(1).nonzero().flatten().tolist()
        raise DataError(f"non-finite box coordinates at box index(es) {bad}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        bad = ((labels < 0) | (labels >= num_classes)).nonzero().flatten().tolist()
        raise DataError(f"labels at index(es) {bad} are outside [0, {num_classes})")
    return boxes, labels


def encode_targets(
    boxes: Tensor | np.ndarray,
    labels: Tensor | np.ndarray,
    num_classes: int,
    image_hw: tuple[int, int],
    stride: int,
) -> Targets:
    """Boxes of one image -> ``Targets`` at the output stride.

    Args:
        boxes: ``(N, 4)`` COCO xywh in pixels.
        labels: ``(N,)`` class indices in ``[0, num_classes)``.
        num_classes: C, the number of heatmap channels.
        image_hw: image ``(H, W)`` in pixels, multiples of ``stride``.
        stride: output stride s in pixels per cell.
    """
    boxes, labels = _as_boxes_labels(boxes, labels, num_classes)
    img_h, img_w = image_hw
    h, w = output_hw(image_hw, stride)
    heatmap = torch.zeros(num_classes, h * w)  # (C, h*w)
    size = torch.zeros(2, h * w)  # (2, h*w)
    offset = torch.zeros(2, h * w)  # (2, h*w)
    mask = torch.zeros(h * w, dtype=torch.bool)  # (h*w,)

    cx = boxes[:, 0] + boxes[:, 2] / 2  # (N,) px
    cy = boxes[:, 1] + boxes[:, 3] / 2  # (N,) px
    keep = (cx >= 0) & (cx < img_w) & (cy >= 0) & (cy < img_h)  # (N,)
    keep &= (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
    if keep.any():
        cx, cy, labels = cx[keep] / stride, cy[keep] / stride, labels[keep]  # (N',) cells
        bw, bh = boxes[keep, 2] / stride, boxes[keep, 3] / stride  # (N',) cells
        ci = cx.floor().long().clamp(0, w - 1)  # (N',)
        cj = cy.floor().long().clamp(0, h - 1)  # (N',)
        radius = gaussian_radius(bh, bw).floor().clamp(min=0)  # (N',) cells
        sigma = (2 * radius + 1) / 6  # (N',) cells
        dx = torch.arange(w).view(1, 1, w) - ci.view(-1, 1, 1)  # (N', 1, w)
        dy = torch.arange(h).view(1, h, 1) - cj.view(-1, 1, 1)  # (N', h, 1)
        r, two_var = radius.view(-1, 1, 1), 2 * sigma.view(-1, 1, 1) ** 2  # (N', 1, 1)
        gx = torch.exp(-(dx**2) / two_var) * (dx.abs() <= r)  # (N', 1, w) separable Gaussian
        gy = torch.exp(-(dy**2) / two_var) * (dy.abs() <= r)  # (N', h, 1)
        splat = gy * gx  # (N', h, w)
        index = labels.view(-1, 1).expand(-1, h * w)  # (N', h*w)
        heatmap.scatter_reduce_(0, index, splat.view(-1, h * w), reduce="amax")  # (C, h*w)
        flat = cj * w + ci  # (N',)
        size[:, flat] = torch.stack([bw.log(), bh.log()])  # (2, N')
        offset[:, flat] = torch.stack([cx - ci, cy - cj])  # (2, N')
        mask[flat] = True
    return Targets(
        heatmap=heatmap.view(num_classes, h, w),  # (C, h, w)
        size=size.view(2, h, w),  # (2, h, w)
        offset=offset.view(2, h, w),  # (2, h, w)
        mask=mask.view(h, w),  # (h, w)
    )


def collate_targets(
    boxes: Sequence[Tensor | np.ndarray],
    labels: Sequence[Tensor | np.ndarray],
    num_classes: int,
    image_hw: tuple[int, int],
    stride: int,
) -> Targets:
    """Per-image boxes and labels -> batched ``Targets`` with maps ``(B, ...)``."""
    if len(boxes) != len(labels):
        raise DataError(f"got boxes for {len(boxes)} images but labels for {len(labels)}")
    if not boxes:
        raise DataError("cannot collate targets for an empty batch")
    per_image = []
    for i, (b, l) in enumerate(zip(boxes, labels, strict=True)):
        try:
            per_image.append(encode_targets(b, l, num_classes, image_hw, stride))
        except DataError as err:
            raise DataError(f"image {i} of the batch: {err}") from err
    return Targets(*(torch.stack(parts) for parts in zip(*per_image, strict=True)))
