"""Retrain after a labelling round: fine-tune from REFERENCE, or train from scratch.

Two functions, ``fine_tune`` and ``train_from_scratch``; ``retrain`` picks one by
``RetrainConfig.mode`` (a profile value), so the A/B test and the rounds retrain one way.

Fine-tuning starts from a trained member's weights and takes a fixed number of optimiser
steps on batches that mix the new frames (``new_fraction`` of the draws on average) with
replayed frames of the data the reference was trained on, so a few hundred steps see the new
labels many times without forgetting the old ones. ``new_fraction=None`` (or ``"natural"``)
is the seed's weighting instead: every frame of the union drawn alike (the new frames'
share of the draws is their share of the union), and ``min_epochs`` makes a fine-tune take
at least that many passes over the union (``RetrainConfig.steps_for``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, WeightedRandomSampler

from alkit.data.classes import CLASSES
from alkit.data.datasets import collate_frames
from alkit.detector.module import DetectorModule, TrainConfig, as_train_config
from alkit.detector.network import DetectorConfig, UNetDetector
from alkit.detector.quiet import quiet_lightning
from alkit.errors import ConfigError, DataError

#: ``new_fraction`` values meaning the natural share: every frame of the union weighs alike.
NATURAL = (None, "natural")


def check_new_fraction(new_fraction: float | str | None) -> None:
    """``ConfigError`` unless ``new_fraction`` is in (0, 1] or one of ``NATURAL``."""
    if new_fraction in NATURAL:
        return
    if isinstance(new_fraction, str) or not 0.0 < float(new_fraction) <= 1.0:
        raise ConfigError(
            f"new_fraction must be in (0, 1], or None / 'natural' (every frame of the union "
            f"weighs alike), got {new_fraction!r}"
        )


def mixed_loader(
    old: Dataset, new: Dataset, samples: int, batch_size: int,
    new_fraction: float | str | None, seed: int,
) -> DataLoader:  # fmt: skip
    """``samples`` draws with replacement, a ``new_fraction`` share of them from ``new``
    (``None`` or ``"natural"``: every frame of ``old`` + ``new`` drawn alike, so the share is
    ``len(new) / (len(old) + len(new))``).

    With no ``new`` frames every draw comes from ``old`` (REFERENCE's same-length control).
    """
    if len(new) == 0:
        if len(old) == 0:
            raise DataError("retraining needs frames: the old and the new set are both empty")
        data, weights = old, torch.ones(len(old))  # (N,)
    elif new_fraction in NATURAL:
        data = ConcatDataset([old, new]) if len(old) else new
        weights = torch.ones(len(old) + len(new))  # (N,) every frame of the union alike
    else:
        if not 0.0 < new_fraction <= 1.0:
            raise ConfigError(f"new_fraction must be in (0, 1], got {new_fraction}")
        data = ConcatDataset([old, new]) if len(old) else new
        w_old = (1.0 - new_fraction) / max(len(old), 1)
        weights = torch.tensor([w_old] * len(old) + [new_fraction / len(new)] * len(new))  # (N,)
    generator = torch.Generator().manual_seed(seed)
    sampler = WeightedRandomSampler(weights, samples, replacement=True, generator=generator)
    return DataLoader(data, batch_size=batch_size, sampler=sampler, collate_fn=collate_frames)


@dataclass(frozen=True)
class RetrainConfig:
    """How a round retrains (plain values, one per profile parameter).

    ``mode``: ``"finetune"`` (from REFERENCE, replaying old frames) or ``"scratch"`` (the
    seed's way); ``steps`` optimiser steps at peak learning rate ``lr`` after ``warmup_steps``;
    ``new_fraction`` of each fine-tuning batch drawn from the new frames (``None`` or
    ``"natural"``: every frame of the union drawn alike, as the seed retrained);
    ``min_epochs``: at least this many passes over the union (``None``: ``steps`` as given).
    """

    mode: str = "finetune"
    steps: int = 100
    lr: float = 5e-4
    new_fraction: float | str | None = 0.5
    warmup_steps: int = 10
    min_epochs: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"retrain must be one of {MODES}, got {self.mode!r}")
        if self.steps < 1:
            raise ConfigError(f"retrain_steps must be >= 1, got {self.steps}")
        check_new_fraction(self.new_fraction)
        if self.min_epochs is not None and not self.min_epochs > 0:
            raise ConfigError(f"min_epochs must be > 0 or None, got {self.min_epochs}")

    def steps_for(self, union_size: int, batch_size: int) -> int:
        """Optimiser steps for a union of ``union_size`` frames: ``steps``, raised to
        ``ceil(min_epochs * union_size / batch_size)`` where ``min_epochs`` is set."""
        if self.min_epochs is None:
            return self.steps
        return max(self.steps, math.ceil(self.min_epochs * union_size / batch_size))

    def train_config(self, base: TrainConfig | dict[str, Any] | None) -> TrainConfig:
        """The members' ``TrainConfig`` with this retraining's ``lr`` and warm-up."""
        return replace(as_train_config(base), lr=self.lr, warmup_steps=self.warmup_steps)


MODES = ("finetune", "scratch")


class _TrainOnly(DetectorModule):
    """A retraining takes a fixed number of steps and validates nothing (so Lightning does
    not ask for a validation loader it would never use)."""

    validation_step = None


def _fit(
    module: DetectorModule,
    loader: DataLoader,
    steps: int,
    precision: str,
    progress: bool,
    out_dir: str | Path | None,
) -> UNetDetector:
    """``steps`` optimiser steps of ``module`` on ``loader``; the detector in eval mode."""
    with quiet_lightning():
        trainer = L.Trainer(
            max_steps=steps,
            max_epochs=1,
            accelerator="cpu" if not torch.cuda.is_available() else "auto",
            devices=1,
            precision=precision,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            enable_progress_bar=progress,
            default_root_dir=str(out_dir) if out_dir else None,
        )
        trainer.fit(module, train_dataloaders=loader)
    return module.model.eval()


def fine_tune(
    reference: UNetDetector,
    old: Dataset,
    new: Dataset,
    train_config: TrainConfig | dict[str, Any],
    steps: int,
    seed: int,
    new_fraction: float | str | None = 0.5,
    batch_size: int = 16,
    classes: Sequence[str] = CLASSES,
    progress: bool = True,
    out_dir: str | Path | None = None,
) -> UNetDetector:
    """A copy of ``reference`` (unchanged itself) trained ``steps`` steps on batches drawing
    ``new_fraction`` from ``new`` and the rest from ``old`` (the replay; ``None`` or
    ``"natural"``: every frame of the union alike)."""
    config = as_train_config(train_config)
    L.seed_everything(seed, workers=True, verbose=False)
    module = _TrainOnly(reference.config.to_dict(), classes, **config.module_kwargs())
    module.model.load_state_dict(reference.state_dict())
    loader = mixed_loader(old, new, steps * batch_size, batch_size, new_fraction, seed)
    return _fit(module, loader, steps, config.precision, progress, out_dir)


def train_from_scratch(
    model_config: DetectorConfig,
    old: Dataset,
    new: Dataset,
    train_config: TrainConfig | dict[str, Any],
    steps: int,
    seed: int,
    batch_size: int = 16,
    classes: Sequence[str] = CLASSES,
    progress: bool = True,
    out_dir: str | Path | None = None,
) -> UNetDetector:
    """A new detector trained ``steps`` steps on ``old`` + ``new``, drawn uniformly (the
    seed's retraining on all labelled data)."""
    config = as_train_config(train_config)
    L.seed_everything(seed, workers=True, verbose=False)
    module = _TrainOnly(model_config.to_dict(), classes, **config.module_kwargs())
    share = len(new) / max(len(old) + len(new), 1)
    loader = mixed_loader(old, new, steps * batch_size, batch_size, share, seed)
    return _fit(module, loader, steps, config.precision, progress, out_dir)


def retrain(
    reference: UNetDetector,
    old: Dataset,
    new: Dataset,
    base: TrainConfig | dict[str, Any] | None,
    config: RetrainConfig,
    seed: int,
    batch_size: int = 16,
    progress: bool = True,
    union_size: int | None = None,
) -> UNetDetector:
    """``fine_tune`` from ``reference`` or ``train_from_scratch`` with its architecture, as
    ``config.mode`` says, with the members' ``base`` train config adjusted by ``config``, for
    ``config.steps_for(union_size, batch_size)`` steps. ``union_size`` defaults to
    ``len(old) + len(new)``; REFERENCE's same-length control (no new frames) passes the
    arms' union size so that it takes as many steps as they do."""
    train = config.train_config(base)
    n = len(old) + len(new) if union_size is None else union_size
    steps = config.steps_for(n, batch_size)
    if config.mode == "finetune":
        return fine_tune(reference, old, new, train, steps, seed, config.new_fraction,
                         batch_size, progress=progress)  # fmt: skip
    return train_from_scratch(reference.config, old, new, train, steps, seed, batch_size,
                              progress=progress)  # fmt: skip


__all__ = [
    "MODES",
    "NATURAL",
    "RetrainConfig",
    "check_new_fraction",
    "fine_tune",
    "mixed_loader",
    "retrain",
    "train_from_scratch",
]
