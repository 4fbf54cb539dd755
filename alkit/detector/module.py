"""The LightningModule that trains one detector, and its optimisation settings.

``TrainConfig`` holds a member's optimisation and schedule; ``DetectorModule`` takes
``TrainConfig.module_kwargs()`` (its defaults are ``TrainConfig``'s, written once) and saves
them as hyperparameters, so a checkpoint carries its architecture, schedule and classes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import lightning as L
import torch
from torch import Tensor

from alkit.data.classes import CLASSES
from alkit.detector.losses import detection_loss
from alkit.detector.network import DetectorConfig, UNetDetector, decode
from alkit.detector.targets import collate_targets
from alkit.errors import ConfigError, check_known_fields

SCHEDULES = ("cosine", "onecycle", "constant")


def resolve_precision(precision: str | None, accelerator: str = "auto") -> str:
    """Lightning precision for this machine: ``"auto"`` is ``"bf16-mixed"`` where bfloat16 is
    fast (a CUDA GPU that supports it; a CPU with AVX-512, where oneDNN has bf16 kernels), else
    ``"32-true"`` (on an AVX2-only CPU bf16 is emulated and about 10x slower than fp32);
    ``None`` is ``"32-true"``; any other value is returned as it is."""
    if precision is None:
        return "32-true"
    if precision != "auto":
        return precision
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "bf16-mixed" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "32-true"


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and schedule of one member (the same for every member of an ensemble).

    Attributes:
        lr: peak AdamW learning rate.
        weight_decay: AdamW weight decay.
        max_epochs: epochs; -1 = no limit (then set ``max_steps``).
        max_steps: optimiser steps; -1 = no limit. Training stops at whichever comes first.
        schedule: ``"cosine"`` (linear warm-up, cosine to ``lr / 100``), ``"onecycle"``,
            ``"constant"``.
        warmup_steps: linear warm-up steps of the cosine schedule.
        size_weight, offset_weight: weights of the size and offset L1 losses.
        hflip: random horizontal flips (boxes flipped too) during training.
        precision: Lightning precision, e.g. ``"32-true"``, ``"bf16-mixed"`` (fast on CPUs
            with AVX-512 and on GPUs), ``"16-mixed"`` (GPU), or ``"auto"``
            (``resolve_precision``: bf16 where it is fast, else fp32).
        channels_last: NHWC memory format (faster convolutions on CPU and tensor cores).
        gradient_clip_val: clip the gradient norm to this; 0 = no clipping.
        decode_k, decode_threshold: ``decode()`` settings used by ``predict_step``.
    """

    lr: float = 2e-3
    weight_decay: float = 1e-4
    max_epochs: int = 4
    max_steps: int = -1
    schedule: str = "cosine"
    warmup_steps: int = 50
    size_weight: float = 0.1
    offset_weight: float = 1.0
    hflip: bool = True
    precision: str = "auto"
    channels_last: bool = True
    gradient_clip_val: float = 0.0
    decode_k: int = 100
    decode_threshold: float = 0.01

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ConfigError(
                f"TrainConfig.schedule must be one of {SCHEDULES}, got {self.schedule!r}"
            )
        if not self.lr > 0:
            raise ConfigError(f"TrainConfig.lr must be > 0, got {self.lr!r}")
        if self.max_epochs < 1 and self.max_steps < 1:
            raise ConfigError("TrainConfig: set max_epochs >= 1 or max_steps >= 1")

    def to_dict(self) -> dict[str, Any]:
        """Plain-value dict (manifests, papermill parameters)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Inverse of ``to_dict``; unknown keys raise ``ConfigError`` naming them."""
        check_known_fields(cls, values)
        return cls(**values)

    def module_kwargs(self) -> dict[str, Any]:
        """The settings ``DetectorModule`` takes (the rest go to the ``Trainer``)."""
        trainer_only = {"max_epochs", "max_steps", "precision", "gradient_clip_val"}
        return {k: v for k, v in self.to_dict().items() if k not in trainer_only}


def as_train_config(config: TrainConfig | dict[str, Any] | None) -> TrainConfig:
    """A ``TrainConfig`` from itself, a dict or ``None`` (the defaults), with ``"auto"``
    precision resolved for this machine (``resolve_precision``), as members record it."""
    if config is None:
        config = TrainConfig()
    elif not isinstance(config, TrainConfig):
        config = TrainConfig.from_dict(dict(config))
    return replace(config, precision=resolve_precision(config.precision))


def as_model_config(config: DetectorConfig | dict[str, Any] | None) -> DetectorConfig:
    """A ``DetectorConfig`` from itself, a dict or ``None`` (the defaults)."""
    if config is None:
        return DetectorConfig()
    return config if isinstance(config, DetectorConfig) else DetectorConfig.from_dict(dict(config))


def hflip_batch(
    images: Tensor, boxes: Sequence[Tensor], flip: Tensor
) -> tuple[Tensor, list[Tensor]]:
    """Mirror the images where ``flip (B,)`` is True, and their xywh boxes (``x -> W - x - w``).

    ``images (B, 3, H, W)``; ``boxes`` B tensors ``(N_i, 4)`` px.
    """
    width = images.shape[-1]
    images = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)  # (B, 3, H, W)
    flipped = []
    for b, f in zip(boxes, flip.tolist(), strict=True):
        if f:
            b = torch.stack([width - b[:, 0] - b[:, 2], b[:, 1], b[:, 2], b[:, 3]], dim=1)  # (N, 4)
        flipped.append(b)
    return images, flipped


class DetectorModule(L.LightningModule):
    """Trains a ``UNetDetector`` with CenterNet losses; the checkpoint carries its config.

    Args:
        model_config: ``DetectorConfig.to_dict()`` (a plain dict, saved as a hyperparameter).
        classes: class names of the heatmap channels.
        lr ... decode_threshold: as in ``TrainConfig``, with its defaults
            (``TrainConfig.module_kwargs()``).
    """

    def __init__(
        self,
        model_config: dict[str, Any] | None = None,
        classes: Sequence[str] = CLASSES,
        lr: float = TrainConfig.lr,
        weight_decay: float = TrainConfig.weight_decay,
        schedule: str = TrainConfig.schedule,
        warmup_steps: int = TrainConfig.warmup_steps,
        size_weight: float = TrainConfig.size_weight,
        offset_weight: float = TrainConfig.offset_weight,
        hflip: bool = TrainConfig.hflip,
        channels_last: bool = TrainConfig.channels_last,
        decode_k: int = TrainConfig.decode_k,
        decode_threshold: float = TrainConfig.decode_threshold,
    ) -> None:
        super().__init__()
        model_config = as_model_config(model_config).to_dict()
        classes = list(classes)
        self.save_hyperparameters()
        config = DetectorConfig.from_dict(model_config)
        if config.num_classes != len(classes):
            raise ConfigError(
                f"model_config.num_classes = {config.num_classes} but {len(classes)} classes"
            )
        self.model = UNetDetector(config)
        if channels_last:
            self.model.to(memory_format=torch.channels_last)

    @property
    def config(self) -> DetectorConfig:
        return self.model.config

    def forward(self, images: Tensor):
        """``images (B, 3, H, W)`` -> ``DetectorOutput``."""
        if self.hparams.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)  # (B, 3, H, W)
        return self.model(images)

    def _loss(self, batch: dict, augment: bool) -> dict[str, Tensor]:
        images, boxes = batch["image"], batch["boxes"]  # (B, 3, H, W), B x (N_i, 4)
        if augment:
            flip = torch.rand(images.shape[0]) < 0.5  # (B,)
            images, boxes = hflip_batch(images, boxes, flip.to(images.device))
        targets = collate_targets(
            [b.cpu() for b in boxes],
            [l.cpu() for l in batch["labels"]],
            self.config.num_classes,
            tuple(images.shape[-2:]),
            self.config.stride,
        )
        targets = type(targets)(*(t.to(images.device) for t in targets))  # maps (B, ., h, w)
        return detection_loss(
            self(images), targets, self.hparams.size_weight, self.hparams.offset_weight
        )

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        losses = self._loss(batch, augment=self.hparams.hflip)
        bs = batch["image"].shape[0]
        self.log("train/loss", losses["total"], prog_bar=True, batch_size=bs)
        self.log_dict({f"train/{k}": v for k, v in losses.items() if k != "total"}, batch_size=bs)
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], batch_size=bs)
        return losses["total"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        losses = self._loss(batch, augment=False)
        self.log_dict(
            {f"val/{k}": v for k, v in losses.items()},
            prog_bar=False,
            sync_dist=True,
            batch_size=batch["image"].shape[0],
        )

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, Any]:
        """``{"frame_id" (B,), "probs" (B, C, h, w) sigmoid heatmaps, "detections"}``."""
        output = self(batch["image"])
        detections = decode(
            output, self.config.stride, self.hparams.decode_k, self.hparams.decode_threshold
        )
        probs = torch.sigmoid(output.heatmap_logits.float())  # (B, C, h, w)
        return {"frame_id": batch["frame_id"], "probs": probs, "detections": detections}

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        optimizer = torch.optim.AdamW(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        if hp.schedule == "constant":
            return {"optimizer": optimizer}
        total = max(1, int(self.trainer.estimated_stepping_batches))
        if hp.schedule == "onecycle":
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=hp.lr, total_steps=total + 1, pct_start=0.15
            )
        else:
            warmup = min(hp.warmup_steps, total // 4)

            def factor(step: int) -> float:
                if step < warmup:
                    return (step + 1) / warmup
                progress = min(1.0, (step - warmup) / max(1, total - warmup))
                return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))

            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
