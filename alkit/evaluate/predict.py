"""Predictions of a detector or an ensemble on a dataset, and their COCO evaluation.

``predict_coco`` gives COCO result dicts; ``evaluate_model`` predicts and evaluates in one pass
(``alkit.evaluate.metrics``), taking the ground truth from the dataset's own boxes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from alkit.data.classes import CLASSES
from alkit.data.coco import coco_annotation
from alkit.data.datasets import collate_frames
from alkit.detector.network import Detections, DetectorOutput, UNetDetector, decode
from alkit.ensemble.store import Ensemble
from alkit.errors import ConfigError
from alkit.evaluate.metrics import EvalResult, detections_to_coco, evaluate_detections


def _outputs(model: Any) -> tuple[nn.Module, Callable[[Tensor], DetectorOutput], int]:
    """``(module, images -> DetectorOutput, stride)`` for a ``UNetDetector``, a
    ``DetectorModule`` (its ``.model``) or an ``Ensemble`` (its ``mean_output``)."""
    if isinstance(model, Ensemble):
        return model, model.mean_output, model.config.stride
    detector = getattr(model, "model", model)
    if not isinstance(detector, UNetDetector):
        raise ConfigError(
            f"expected a UNetDetector, DetectorModule or Ensemble, got {type(model).__name__}"
        )
    return detector, detector, detector.config.stride


def _predictions(
    model: Any, dataset: Dataset, batch_size: int, threshold: float, k: int, num_workers: int
) -> Iterator[tuple[dict, list[Detections]]]:
    """Yield ``(batch, detections)`` over ``dataset`` in eval mode, without gradients."""
    module, forward, stride = _outputs(model)
    was_training = module.training
    module.eval()
    device = next(module.parameters()).device
    loader = DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_frames
    )
    try:
        with torch.inference_mode():
            for batch in loader:
                output = forward(batch["image"].to(device))  # maps (B, ., h, w)
                yield batch, decode(output, stride, k, threshold)
    finally:
        module.train(was_training)


def predict_coco(
    model: Any,
    dataset: Dataset,
    batch_size: int = 32,
    threshold: float = 0.01,
    k: int = 100,
    classes: Sequence[str] = CLASSES,
    num_workers: int = 0,
) -> list[dict[str, Any]]:
    """Detections of ``model`` (``UNetDetector``, ``DetectorModule`` or ``Ensemble``) on every
    frame of ``dataset`` as COCO result dicts (``image_id`` = frame id, ``category_id`` =
    label + 1, ``bbox`` xywh px, ``score``); at most ``k`` per frame, score >= ``threshold``."""
    results: list[dict[str, Any]] = []
    for batch, detections in _predictions(model, dataset, batch_size, threshold, k, num_workers):
        results.extend(detections_to_coco(batch["frame_id"].tolist(), detections, classes))
    return results


def predict_detections(
    model: Any,
    dataset: Dataset,
    batch_size: int = 32,
    threshold: float = 0.01,
    k: int = 100,
    num_workers: int = 0,
) -> dict[int, Detections]:
    """Frame id -> the detections of ``model`` on that frame of ``dataset`` (boxes ``(K, 4)``
    xywh px, scores ``(K,)``, labels ``(K,)``): pre-annotations for a labelling tool."""
    out: dict[int, Detections] = {}
    for batch, detections in _predictions(model, dataset, batch_size, threshold, k, num_workers):
        out.update(zip(batch["frame_id"].tolist(), detections, strict=True))
    return out


def _gt_coco(frames: list[tuple[int, Tensor, Tensor, int, int]], classes: Sequence[str]) -> dict:
    """COCO ground truth from ``(frame_id, boxes (N, 4), labels (N,), height, width)``."""
    images, annotations = [], []
    for frame_id, boxes, labels, height, width in frames:
        images.append({"id": frame_id, "height": height, "width": width})
        for xywh, label in zip(boxes.tolist(), labels.tolist(), strict=True):
            annotations.append(coco_annotation(len(annotations) + 1, frame_id, label, xywh))
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(classes)]
    return {"images": images, "annotations": annotations, "categories": categories}


def evaluate_model(
    model: Any,
    dataset: Dataset,
    ground_truth: dict[str, Any] | str | os.PathLike | None = None,
    batch_size: int = 32,
    threshold: float = 0.01,
    k: int = 100,
    classes: Sequence[str] = CLASSES,
    num_workers: int = 0,
    **eval_kwargs: Any,
) -> EvalResult:
    """COCO AP per class and size bucket (``alkit.evaluate.metrics``) of ``model`` on ``dataset``.

    The ground truth is ``ground_truth`` (COCO dict or path) if given, else the dataset's own
    boxes, collected in the same pass as the predictions (each frame is generated once).
    ``eval_kwargs`` go to ``evaluate_detections`` (``size_buckets``, ``iou_thresholds``,
    ``weights``).
    """
    results: list[dict[str, Any]] = []
    frames: list[tuple[int, Tensor, Tensor, int, int]] = []
    for batch, detections in _predictions(model, dataset, batch_size, threshold, k, num_workers):
        ids = batch["frame_id"].tolist()
        results.extend(detections_to_coco(ids, detections, classes))
        height, width = batch["image"].shape[-2:]
        frames.extend(
            (fid, boxes, labels, int(height), int(width))
            for fid, boxes, labels in zip(ids, batch["boxes"], batch["labels"], strict=True)
        )
    if ground_truth is None:
        ground_truth = _gt_coco(frames, classes)
    return evaluate_detections(ground_truth, results, classes=classes, **eval_kwargs)


__all__ = ["evaluate_model", "predict_coco", "predict_detections"]
