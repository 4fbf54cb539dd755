"""CenterNet losses: penalty-reduced focal loss on the centre heatmap, masked L1 on the
box size and offset maps. All normalised by the number of objects in the batch (at least 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from alkit.detector.network import DetectorOutput
from alkit.detector.targets import Targets


def focal_loss_from_logits(
    logits: Tensor, target_heatmap: Tensor, alpha: float = 2.0, beta: float = 4.0
) -> Tensor:
    """CenterNet's penalty-reduced pixel-wise focal loss, from logits.

    ``loss = -1/max(P, 1) * sum( (1-p)^a log p             where y == 1
                               + (1-y)^b p^a log(1-p)      elsewhere )``

    with ``p = sigmoid(logits)`` and ``P`` the number of cells with ``y == 1``. ``log p`` and
    ``log(1-p)`` come from ``F.logsigmoid``, so the loss and its gradient stay finite for any
    finite logits (e.g. +-1e4) and for all-zero targets (images without objects).

    Args:
        logits: ``(B, C, h, w)`` heatmap logits.
        target_heatmap: ``(B, C, h, w)`` Gaussian targets in [0, 1], exactly 1 at centres.

    Returns:
        Scalar loss (float32).
    """
    logits = logits.float()  # (B, C, h, w)
    target = target_heatmap.float()  # (B, C, h, w)
    pos = target >= 1.0  # (B, C, h, w)
    prob = torch.sigmoid(logits)  # (B, C, h, w)
    pos_term = (1 - prob) ** alpha * F.logsigmoid(logits)  # (B, C, h, w)
    neg_term = (1 - target) ** beta * prob**alpha * F.logsigmoid(-logits)  # (B, C, h, w)
    loss = torch.where(pos, pos_term, neg_term).sum()
    return -loss / pos.sum().clamp(min=1)


def regression_l1(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """L1 over the cells in ``mask``, summed over channels, divided by max(#mask cells, 1).

    Args:
        pred: ``(B, K, h, w)`` predicted maps.
        target: ``(B, K, h, w)`` target maps.
        mask: ``(B, h, w)`` bool, True at object centre cells.
    """
    pred_at = pred.float().permute(0, 2, 3, 1)[mask]  # (P, K) values elsewhere never touched
    target_at = target.float().permute(0, 2, 3, 1)[mask]  # (P, K)
    return (pred_at - target_at).abs().sum() / mask.sum().clamp(min=1)


def detection_loss(
    output: DetectorOutput,
    targets: Targets,
    size_weight: float = 0.1,
    offset_weight: float = 1.0,
) -> dict[str, Tensor]:
    """CenterNet's total loss for a batch.

    ``total = heatmap + size_weight * size + offset_weight * offset``, with the size loss on
    log box size in cells (see ``alkit.detector.network``).

    Returns:
        ``{"total", "heatmap", "size", "offset"}``, scalar tensors.
    """
    heatmap = focal_loss_from_logits(output.heatmap_logits, targets.heatmap)
    size = regression_l1(output.size, targets.size, targets.mask)
    offset = regression_l1(output.offset, targets.offset, targets.mask)
    total = heatmap + size_weight * size + offset_weight * offset
    return {"total": total, "heatmap": heatmap, "size": size, "offset": offset}
