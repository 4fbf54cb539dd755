"""Acquisition functions: ensemble disagreement on per-class centre heatmaps.

Pure tensor functions, no models. Inputs are per-cell Bernoulli probabilities ``p`` that an
object of a class is centred in a cell, from ``M`` ensemble members (or ``T`` MC-dropout
passes): ``probs`` ``[M, B, C, H, W]`` in [0, 1]. All entropies are in nats.

For per-class sigmoid maps each cell is a Bernoulli variable, so BALD's mutual information
is computed on the pair ``(p, 1 - p)``, not on a softmax over the class axis.
"""

from __future__ import annotations

import math

import torch

from alkit.errors import DataError

LN2 = math.log(2.0)


def check_probabilities(probs: torch.Tensor, frame_ids=None) -> None:
    """Raise ``DataError`` naming the first frame with NaN/inf or values outside [0, 1].

    ``probs`` ``[M, B, ...]``; ``frame_ids`` names the ``B`` frames (default: batch index).
    """
    bad = ~torch.isfinite(probs) | (probs < 0) | (probs > 1)  # [M, B, ...]
    if bool(bad.any()):
        per_frame = bad.transpose(0, 1).reshape(probs.shape[1], -1).any(dim=1)  # [B]
        b = int(per_frame.nonzero()[0, 0])
        name = frame_ids[b] if frame_ids is not None else f"batch index {b}"
        value = probs.transpose(0, 1)[b][bad.transpose(0, 1)[b]][0].item()
        raise DataError(
            f"frame {name}: ensemble probabilities must be finite and in [0, 1], got {value}"
        )


def bernoulli_entropy(p: torch.Tensor) -> torch.Tensor:
    """``H(p) = -p ln p - (1-p) ln(1-p)`` elementwise, in nats; 0 at p = 0 and p = 1."""
    p = p.clamp(0.0, 1.0)
    return -(torch.special.xlogy(p, p) + torch.special.xlogy(1.0 - p, 1.0 - p))


def entropy_of_mean(probs: torch.Tensor) -> torch.Tensor:
    """Predictive entropy ``H(mean_m p)``: ``[M, B, C, H, W]`` -> ``[B, C, H, W]``."""
    return bernoulli_entropy(probs.mean(dim=0))  # [B, C, H, W]


def mean_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Expected entropy ``mean_m H(p_m)``: ``[M, B, C, H, W]`` -> ``[B, C, H, W]``."""
    return bernoulli_entropy(probs).mean(dim=0)  # [B, C, H, W]


def mutual_information(probs: torch.Tensor) -> torch.Tensor:
    """BALD mutual information per cell and class.

    Args:
        probs: ``[M, B, C, H, W]`` per-cell Bernoulli probabilities from M members.

    Returns:
        ``[B, C, H, W]`` ``MI = H(mean_m p) - mean_m H(p)`` in nats, finite and within
        ``[0, ln 2]`` for any input in [0, 1] (0 when members agree; ln 2 when half say 0 and
        half say 1).
    """
    if probs.dim() != 5:
        raise ValueError(f"probs must be [M, B, C, H, W], got shape {tuple(probs.shape)}")
    p = probs.float().clamp(0.0, 1.0)  # [M, B, C, H, W]
    mi = entropy_of_mean(p) - mean_entropy(p)  # [B, C, H, W]
    return mi.clamp(0.0, LN2)  # rounding can step a hair outside the bounds


def variance(probs: torch.Tensor) -> torch.Tensor:
    """Variance of ``p`` across members (population): ``[M, B, C, H, W]`` -> ``[B, C, H, W]``."""
    return probs.float().var(dim=0, unbiased=False)  # [B, C, H, W]


REDUCTIONS = ("mean", "max", "peaks")

#: Objects shorter than this (px, in the scored images) are left out of the ``"peaks"``
#: reduction: on the experiment's 96 x 160 night frames half the bicycles are under 4 px tall
#: (2 cells at output stride 2), and a detector that cannot learn them gains nothing from
#: their labels; their disagreement is noise, not information.
MIN_LEARNABLE_HEIGHT = 4.0
#: A cell is a candidate object (a peak) where the ensemble's mean probability is a 3x3
#: maximum and at least this: low, so an object one member of four sees at 0.4 still counts.
PEAK_THRESHOLD = 0.05


def detection_peaks(
    mean_probs: torch.Tensor,
    heights: torch.Tensor | None = None,
    threshold: float = PEAK_THRESHOLD,
    min_height: float = MIN_LEARNABLE_HEIGHT,
) -> torch.Tensor:
    """The ensemble's candidate objects: cells that are a 3x3 maximum of the mean heatmap (as
    ``alkit.detector.network.decode`` finds peaks) with mean probability >= ``threshold`` and,
    where ``heights`` is given, a predicted box at least ``min_height`` px tall.

    Args:
        mean_probs: ``[B, C, H, W]`` the members' mean probabilities.
        heights: ``[B, H, W]`` px, the box height the ensemble predicts at each cell (e.g.
            ``exp(mean_m log(h / s)) * s`` from the size heads), or ``None``: no size rule.

    Returns:
        ``[B, C, H, W]`` bool.
    """
    pooled = torch.nn.functional.max_pool2d(mean_probs, 3, stride=1, padding=1)  # [B, C, H, W]
    peaks = (mean_probs == pooled) & (mean_probs >= threshold)  # [B, C, H, W]
    if heights is not None:
        peaks = peaks & (heights >= min_height).unsqueeze(1)  # [B, C, H, W]
    return peaks


def frame_scores(
    heatmap: torch.Tensor, reduction: str = "mean", peaks: torch.Tensor | None = None
) -> torch.Tensor:
    """Reduce a per-cell map to one score per frame and class.

    Args:
        heatmap: ``[B, C, H, W]`` e.g. mutual information.
        reduction: ``"mean"`` (the seed's choice: favours frames with many uncertain
            objects, and adds up the background), ``"max"`` (the single most uncertain
            cell) or ``"peaks"`` (localised: the sum over the candidate objects ``peaks`` of
            the map's 3x3 maximum around each, so a frame scores by its uncertain objects
            and not by its area; members' peaks can sit a cell apart, hence the 3x3).
        peaks: ``[B, C, H, W]`` bool, for ``"peaks"`` (``detection_peaks``).

    Returns:
        ``[B, C]``.
    """
    flat = heatmap.flatten(start_dim=2)  # [B, C, H*W]
    if reduction == "mean":
        return flat.mean(dim=2)  # [B, C]
    if reduction == "max":
        return flat.amax(dim=2)  # [B, C]
    if reduction == "peaks":
        if peaks is None or peaks.shape != heatmap.shape:
            got = None if peaks is None else tuple(peaks.shape)
            raise ValueError(
                f"reduction 'peaks' needs peaks of the heatmap's shape "
                f"{tuple(heatmap.shape)}, got {got}: see detection_peaks"
            )
        near = torch.nn.functional.max_pool2d(heatmap, 3, stride=1, padding=1)  # [B, C, H, W]
        return (near * peaks).flatten(2).sum(dim=2)  # [B, C]
    raise ValueError(f"unknown reduction {reduction!r}; choose one of {REDUCTIONS}")


def detection_entropy(mean_probs: torch.Tensor, threshold: float = 0.05) -> torch.Tensor:
    """A box-based alternative: per frame and class, the summed Bernoulli entropy of the
    confidences of the detections (peaks of the mean heatmap, found by 3x3 max-pooling as
    ``alkit.detector.network.decode`` finds them, with confidence >= ``threshold``).

    Args:
        mean_probs: ``[B, C, H, W]`` the ensemble's mean probabilities.

    Returns:
        ``[B, C]`` nats: uncertain boxes (confidence near 0.5) count most.
    """
    pooled = torch.nn.functional.max_pool2d(mean_probs, 3, stride=1, padding=1)  # [B, C, H, W]
    peaks = (mean_probs == pooled) & (mean_probs >= threshold)  # [B, C, H, W]
    return (bernoulli_entropy(mean_probs) * peaks).flatten(2).sum(dim=2)  # [B, C]


def predicted_count(mean_probs: torch.Tensor, threshold: float = 0.3) -> torch.Tensor:
    """Density without uncertainty (the COUNT arm): per frame and class, the number of
    detections of the mean heatmap (3x3 peaks, as ``decode`` finds them) with confidence >=
    ``threshold`` (``TrainConfig.decode_threshold``'s default).

    Args:
        mean_probs: ``[B, C, H, W]`` the ensemble's mean probabilities.

    Returns:
        ``[B, C]`` counts (float).
    """
    pooled = torch.nn.functional.max_pool2d(mean_probs, 3, stride=1, padding=1)  # [B, C, H, W]
    peaks = (mean_probs == pooled) & (mean_probs >= threshold)  # [B, C, H, W]
    return peaks.flatten(2).sum(dim=2).to(mean_probs.dtype)  # [B, C]
