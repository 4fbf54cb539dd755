"""Retrain after a labelling round: fine-tune from REFERENCE, or train from scratch.

Fine-tuning starts from a trained member's weights and takes a fixed number of optimiser
steps on batches that mix the new frames (``new_fraction`` of the draws on average) with
replayed frames of the data the reference was trained on, so a few hundred steps see the new
labels many times without forgetting the old ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, WeightedRandomSampler

from alkit.data.classes import CLASSES
from alkit.data.datasets import collate_frames
from alkit.detector.module import DetectorModule, TrainConfig, as_train_config
from alkit.detector.network import DetectorConfig, UNetDetector
from alkit.errors import ConfigError, DataError


def mixed_loader(
    old: Dataset, new: Dataset, samples: int, batch_size: int, new_fraction: float, seed: int
) -> DataLoader:
    """``samples`` draws with replacement, a ``new_fraction`` share of them from ``new``.

    With no ``new`` frames every draw comes from ``old`` (REFERENCE's same-length control).
    """
    if len(new) == 0:
        if len(old) == 0:
            raise DataError("retraining needs frames: the old and the new set are both empty")
        data, weights = old, torch.ones(len(old))  # (N,)
    else:
        if not 0.0 < new_fraction <= 1.0:
            raise ConfigError(f"new_fraction must be in (0, 1], got {new_fraction}")
        data = ConcatDataset([old, new]) if len(old) else new
        w_old = (1.0 - new_fraction) / max(len(old), 1)
        weights = torch.tensor([w_old] * len(old) + [new_fraction / len(new)] * len(new))  # (N,)
    generator = torch.Generator().manual_seed(seed)
    sampler = WeightedRandomSampler(weights, samples, replacement=True, generator=generator)
    return DataLoader(data, batch_size=batch_size, sampler=sampler, collate_fn=collate_frames)


def retrain(
    old: Dataset,
    new: Dataset,
    train_config: TrainConfig | dict[str, Any],
    steps: int,
    seed: int,
    init: UNetDetector | None = None,
    model_config: DetectorConfig | None = None,
    new_fraction: float | None = 0.5,
    batch_size: int = 16,
    classes: Sequence[str] = CLASSES,
    out_dir: str | Path | None = None,
    enable_progress_bar: bool = True,
    **trainer_kwargs: Any,
) -> UNetDetector:
    """Train a detector for ``steps`` steps on ``old`` + ``new`` and return it (eval mode).

    Args:
        init: the REFERENCE detector to fine-tune from (its weights are copied; it is not
            changed). ``None`` trains from scratch with ``model_config`` (the seed's way).
        new_fraction: share of draws from ``new``; ``None`` draws uniformly from the union.
    """
    if (init is None) == (model_config is None):
        raise ConfigError("retrain: pass init= (fine-tune) or model_config= (from scratch)")
    config = as_train_config(train_config)
    arch = init.config if init is not None else model_config
    L.seed_everything(seed, workers=True, verbose=False)
    module = DetectorModule(arch.to_dict(), classes, **config.module_kwargs())
    if init is not None:
        module.model.load_state_dict(init.state_dict())
    if new_fraction is None:
        new_fraction = len(new) / max(len(old) + len(new), 1)
    loader = mixed_loader(old, new, steps * batch_size, batch_size, new_fraction, seed)
    trainer = L.Trainer(
        max_steps=steps,
        max_epochs=1,
        accelerator="cpu" if not torch.cuda.is_available() else "auto",
        devices=1,
        precision=config.precision,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=enable_progress_bar,
        default_root_dir=str(out_dir) if out_dir else None,
        **trainer_kwargs,
    )
    trainer.fit(module, train_dataloaders=loader)
    return module.model.eval()
