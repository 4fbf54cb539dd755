"""Training: the LightningModule, the DataModule, ``train_member`` and ``train_ensemble``.

An ensemble is N ``UNetDetector`` s with the same architecture, data and schedule that differ
only in their seed (initialisation, shuffling, augmentation), each trained by its own
``lightning.Trainer``. Run commands::

    # one process, CPU or one GPU (a notebook, a script):
    train_ensemble(4, data, model_config, train_config, "runs/ens")
    # one member on 8 GPUs over 2 nodes (DDP); every rank runs the same script:
    torchrun --nnodes 2 --nproc_per_node 4 --rdzv_endpoint HOST:29500 train.py
    #   -> train_ensemble(..., devices=4, num_nodes=2, strategy="ddp"), and end the script
    #      with torch.distributed.destroy_process_group() (else gloo may abort the exit)
    # SLURM: srun --nodes 2 --ntasks-per-node 4 --gpus-per-node 4 python train.py (same call;
    #   Lightning reads the ranks from SLURM's environment)
    # members in parallel, one per GPU: one process per member, e.g. a SLURM array
    #   train_ensemble(..., members=[int(os.environ["SLURM_ARRAY_TASK_ID"])], devices=1)
    #   or on one node: for i in 0 1 2 3; do python train.py --member $i & done with
    #   train_ensemble(..., members=[i], spread_members=True)  # member i -> GPU i % n_gpus

Whichever process finishes the last member writes ``ensemble.json`` (see ``alkit.ensemble.store``).
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.loggers import CSVLogger
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from alkit.data.classes import CLASSES
from alkit.data.datasets import VirtualFrames, collate_frames
from alkit.data.versions import DatasetVersion, to_frames_dataset
from alkit.detector.losses import detection_loss
from alkit.detector.network import DetectorConfig, UNetDetector, decode
from alkit.detector.targets import collate_targets
from alkit.ensemble.store import (
    MANIFEST_NAME,
    MemberRecord,
    file_sha256,
    member_name,
    read_member_record,
    write_manifest,
    write_member_record,
)
from alkit.errors import ConfigError, DataError, check_known_fields

SCHEDULES = ("cosine", "onecycle", "constant")


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
            with AVX512-BF16 and on GPUs), ``"16-mixed"`` (GPU).
        channels_last: NHWC memory format (faster convolutions on CPU and tensor cores).
        gradient_clip_val: clip the gradient norm to this; 0 = no clipping.
        decode_k, decode_threshold: ``decode()`` settings used by ``predict_step``.
    """

    lr: float = 2e-3
    weight_decay: float = 1e-4
    max_epochs: int = 10
    max_steps: int = -1
    schedule: str = "cosine"
    warmup_steps: int = 50
    size_weight: float = 0.1
    offset_weight: float = 1.0
    hflip: bool = True
    precision: str = "32-true"
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
    """A ``TrainConfig`` from itself, a dict or ``None`` (the defaults)."""
    if config is None:
        return TrainConfig()
    return config if isinstance(config, TrainConfig) else TrainConfig.from_dict(dict(config))


def as_model_config(config: DetectorConfig | dict[str, Any] | None) -> DetectorConfig:
    """A ``DetectorConfig`` from itself, a dict or ``None`` (the defaults)."""
    if config is None:
        return DetectorConfig()
    return config if isinstance(config, DetectorConfig) else DetectorConfig.from_dict(dict(config))


# ---------------------------------------------------------------------------------------------
# data


class CachedFrames(Dataset):
    """A frames dataset held in memory: images as one uint8 tensor ``(N, 3, H, W)``.

    Generating a world frame costs ~5 ms; caching once makes every later epoch cost only
    indexing. Items are those of ``alkit.data.datasets`` (float image in [0, 1]).
    """

    def __init__(self, dataset: Dataset, num_workers: int = 0, batch_size: int = 64) -> None:
        loader = DataLoader(
            dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_frames
        )
        images, self.boxes, self.labels, ids = [], [], [], []
        for batch in loader:
            images.append(batch["image"].mul(255).round_().to(torch.uint8))  # (b, 3, H, W)
            self.boxes.extend(batch["boxes"])
            self.labels.extend(batch["labels"])
            ids.append(batch["frame_id"])
        if not images:
            raise DataError("CachedFrames: the dataset is empty")
        self.images = torch.cat(images)  # (N, 3, H, W) uint8
        self.frame_ids: list[int] = torch.cat(ids).tolist()

    def __len__(self) -> int:
        return len(self.frame_ids)

    def __getitem__(self, index: int) -> dict:
        return {
            "image": self.images[index].float().div_(255.0),  # (3, H, W)
            "boxes": self.boxes[index],  # (N, 4)
            "labels": self.labels[index],  # (N,)
            "frame_id": self.frame_ids[index],
        }


def _ids_sha256(frame_ids: Sequence[int]) -> str:
    return hashlib.sha256(np.asarray(frame_ids, dtype=np.int64).tobytes()).hexdigest()


class DetectionDataModule(L.LightningDataModule):
    """Training data of one ensemble: a dataset version, a ``(world, frame_ids)`` pair, or any
    dataset with ``alkit.data.datasets`` items.

    The optional validation split holds out whole driving sessions (``val_fraction`` of them,
    chosen with ``seed``), since frames of one session are near-duplicates. Shuffling uses the
    global seed, so each ensemble member (seeded by ``train_member``) sees its own order.

    Args:
        data: ``DatasetVersion`` (pass ``world`` if it has generated frames),
            ``(world, frame_ids)`` or a ``Dataset``.
        batch_size: images per batch (per device under DDP).
        num_workers: DataLoader worker processes (also used to fill the cache).
        seed: seed of the validation split.
        val_fraction: share of sessions held out for validation (0 = none).
        world: the version's world, for ``sim:`` frames.
        cache: hold all frames in memory as uint8 (``CachedFrames``) after the first setup.
    """

    def __init__(
        self,
        data: DatasetVersion | tuple[Any, Sequence[int]] | Dataset,
        batch_size: int = 16,
        num_workers: int = 0,
        seed: int = 0,
        val_fraction: float = 0.0,
        world: Any = None,
        cache: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 <= val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
        self.data, self.world = data, world
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.val_fraction, self.cache = val_fraction, cache
        self.dataset: Dataset | None = None
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    def _build(self) -> Dataset:
        if isinstance(self.data, DatasetVersion):
            return to_frames_dataset(self.data, self.world)
        if isinstance(self.data, tuple) and len(self.data) == 2:
            world, frame_ids = self.data
            return VirtualFrames(world, frame_ids)
        if isinstance(self.data, Dataset):
            return self.data
        raise ConfigError(
            f"DetectionDataModule: data must be a DatasetVersion, a (world, frame_ids) pair or a "
            f"Dataset, got {type(self.data).__name__}"
        )

    def _sessions(self, frame_ids: Sequence[int]) -> np.ndarray:
        """Session key per frame (frame id when sessions are unknown)."""
        ids = np.asarray(frame_ids, dtype=np.int64)  # (N,)
        if isinstance(self.data, DatasetVersion) and "session_id" in self.data.frames:
            sessions = self.data.frames.set_index("frame_id")["session_id"].reindex(ids)
            return np.where(sessions.isna(), -1 - ids, sessions.fillna(0).to_numpy(np.int64))
        world = self.data[0] if isinstance(self.data, tuple) else self.world
        fps = getattr(getattr(world, "config", None), "frames_per_session", None)
        return ids // fps if fps else ids

    def setup(self, stage: str | None = None) -> None:
        """Build (and cache) the dataset once, then split it into train / val."""
        if self.dataset is not None:
            return
        dataset = self._build()
        if len(dataset) == 0:
            raise DataError("DetectionDataModule: the training data has no frames")
        if self.cache and not isinstance(dataset, CachedFrames):
            dataset = CachedFrames(dataset, num_workers=self.num_workers)
        self.dataset = dataset
        if self.val_fraction == 0:
            self.train_set = dataset
            return
        sessions = self._sessions(dataset.frame_ids)  # (N,)
        unique = np.unique(sessions)
        n_val = max(1, round(self.val_fraction * len(unique)))
        if n_val >= len(unique):
            raise DataError(f"val_fraction {self.val_fraction} leaves no training session")
        val_sessions = np.random.default_rng(self.seed).choice(unique, n_val, replace=False)
        is_val = np.isin(sessions, val_sessions)  # (N,)
        self.train_set = Subset(dataset, np.flatnonzero(~is_val).tolist())
        self.val_set = Subset(dataset, np.flatnonzero(is_val).tolist())

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=shuffle and len(dataset) > self.batch_size,
            num_workers=0 if self.cache else self.num_workers,
            persistent_workers=self.num_workers > 0 and not self.cache,
            collate_fn=collate_frames,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader(self.val_set, shuffle=False) if self.val_set is not None else []

    def predict_dataloader(self) -> DataLoader:
        self.setup("predict")
        return self._loader(self.dataset, shuffle=False)

    def describe(self) -> dict[str, Any]:
        """Fingerprint of the data for the ensemble manifest (plain values)."""
        loader = {"batch_size": self.batch_size, "val_fraction": self.val_fraction}
        loader["split_seed"] = self.seed
        if isinstance(self.data, DatasetVersion):
            return {"kind": "version", "version_hash": self.data.hash, **loader}
        if isinstance(self.data, tuple):
            world, frame_ids = self.data
            config = getattr(world, "config", None)
            return {
                "kind": "world",
                "world_hash": getattr(config, "hash", None),
                "n_frames": len(frame_ids),
                "frame_ids_sha256": _ids_sha256(list(frame_ids)),
                **loader,
            }
        ids = getattr(self.data, "frame_ids", None)
        return {
            "kind": "dataset",
            "type": type(self.data).__name__,
            "n_frames": len(self.data),
            "frame_ids_sha256": _ids_sha256(ids) if ids is not None else None,
            **loader,
        }


# ---------------------------------------------------------------------------------------------
# model


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
        lr ... decode_threshold: as in ``TrainConfig`` (``TrainConfig.module_kwargs()``).
    """

    def __init__(
        self,
        model_config: dict[str, Any] | None = None,
        classes: Sequence[str] = CLASSES,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        schedule: str = "cosine",
        warmup_steps: int = 100,
        size_weight: float = 0.1,
        offset_weight: float = 1.0,
        hflip: bool = True,
        channels_last: bool = False,
        decode_k: int = 100,
        decode_threshold: float = 0.01,
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


# ---------------------------------------------------------------------------------------------
# ensembles


def train_member(
    data: DetectionDataModule,
    model_config: DetectorConfig | dict[str, Any] | None = None,
    train_config: TrainConfig | dict[str, Any] | None = None,
    out_dir: str | os.PathLike = "runs/ensemble",
    seed: int = 0,
    index: int = 0,
    classes: Sequence[str] = CLASSES,
    devices: Any = "auto",
    accelerator: str = "auto",
    strategy: Any = "auto",
    num_nodes: int = 1,
    callbacks: Sequence[L.Callback] = (),
    enable_progress_bar: bool = True,
    **trainer_kwargs: Any,
) -> MemberRecord:
    """Train one member with its own ``lightning.Trainer``; write ``member_XX.ckpt`` + ``.json``.

    ``seed`` seeds everything (``L.seed_everything``): initialisation, shuffling, flips.
    ``devices``, ``accelerator``, ``strategy``, ``num_nodes`` and ``trainer_kwargs`` (e.g.
    ``limit_train_batches``, ``fast_dev_run``) go straight to the ``Trainer``, so one member
    may train with DDP over several devices and nodes. Losses are logged by a ``CSVLogger``
    to ``<out_dir>/logs/member_XX/metrics.csv``. Under DDP, rank 0 writes the files and every
    rank returns the same record.
    """
    model_config, train_config = as_model_config(model_config), as_train_config(train_config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = member_name(index)
    L.seed_everything(seed, workers=True, verbose=False)
    module = DetectorModule(model_config.to_dict(), classes, **train_config.module_kwargs())
    defaults: dict[str, Any] = {"log_every_n_steps": 10, "enable_model_summary": False}
    if data.val_fraction == 0:
        defaults["limit_val_batches"] = 0
    trainer_kwargs = defaults | trainer_kwargs
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        num_nodes=num_nodes,
        max_epochs=train_config.max_epochs if train_config.max_epochs >= 1 else -1,
        max_steps=train_config.max_steps,
        precision=train_config.precision,
        gradient_clip_val=train_config.gradient_clip_val or None,
        logger=CSVLogger(out, name="logs", version=name),
        callbacks=list(callbacks),
        enable_checkpointing=False,
        enable_progress_bar=enable_progress_bar,
        default_root_dir=out,
        **trainer_kwargs,
    )
    start = time.perf_counter()
    trainer.fit(module, datamodule=data)
    seconds = time.perf_counter() - start
    checkpoint, partial = out / f"{name}.ckpt", out / f"{name}.ckpt.partial"
    trainer.save_checkpoint(partial)  # every rank calls it, rank 0 writes, then a barrier
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    metrics |= {"train_seconds": seconds, "global_step": float(trainer.global_step)}
    record = None
    if trainer.is_global_zero:
        os.replace(partial, checkpoint)
        record = MemberRecord(
            index=index,
            seed=seed,
            checkpoint=checkpoint.name,
            sha256=file_sha256(checkpoint),
            model_config=model_config.to_dict(),
            train_config=train_config.to_dict(),
            data=data.describe(),
            classes=tuple(classes),
            metrics=metrics,
        )
        write_member_record(out, record)
    return trainer.strategy.broadcast(record, src=0)


def member_device_plan(
    n_members: int,
    devices: Any = "auto",
    accelerator: str = "auto",
    member_devices: Sequence[Any] | None = None,
    spread_members: bool = False,
) -> list[Any]:
    """The ``devices`` argument of each member's ``Trainer``.

    ``member_devices[i % len(member_devices)]`` if given (e.g. ``[[0], [1]]``); with
    ``spread_members`` and several visible GPUs, ``[i % n_gpus]`` (member i on GPU
    i % n_gpus); else ``devices`` for every member.
    """
    if member_devices is not None and spread_members:
        raise ConfigError("pass member_devices or spread_members=True, not both")
    if member_devices is not None:
        if not member_devices:
            raise ConfigError("member_devices is empty")
        return [member_devices[i % len(member_devices)] for i in range(n_members)]
    n_gpus = torch.cuda.device_count() if accelerator in ("auto", "gpu", "cuda") else 0
    if spread_members and n_gpus > 1:
        return [[i % n_gpus] for i in range(n_members)]
    return [devices] * n_members


def _check_resumable(record: MemberRecord, expected: dict[str, Any], out: Path) -> None:
    for key, value in expected.items():
        if getattr(record, key) != value:
            raise ConfigError(
                f"{out / member_name(record.index)}.json was trained with a different {key} "
                f"({getattr(record, key)!r} vs {value!r}); use a new out_dir or delete that member"
            )


def train_ensemble(
    n_members: int,
    data: DetectionDataModule,
    model_config: DetectorConfig | dict[str, Any] | None = None,
    train_config: TrainConfig | dict[str, Any] | None = None,
    out_dir: str | os.PathLike = "runs/ensemble",
    devices: Any = "auto",
    accelerator: str = "auto",
    strategy: Any = "auto",
    num_nodes: int = 1,
    base_seed: int = 0,
    members: Sequence[int] | None = None,
    member_devices: Sequence[Any] | None = None,
    spread_members: bool = False,
    classes: Sequence[str] = CLASSES,
    resume: bool = True,
    callbacks: Sequence[L.Callback] = (),
    enable_progress_bar: bool = True,
    log: Callable[[str], None] | None = None,
    **trainer_kwargs: Any,
) -> Path | None:
    """Train ``n_members`` detectors that differ only in their seed (``base_seed + i``).

    Each member is trained by ``train_member`` with its own ``Trainer`` (progress bar, a
    CSVLogger under ``out_dir/logs``); ``devices``, ``accelerator``, ``strategy``,
    ``num_nodes`` go straight to Lightning. Launching (see the module docstring):

    - one process: members train one after the other on ``devices``;
    - DDP per member: ``torchrun``/``srun`` starts every rank running this same call with
      ``strategy="ddp"``, ``devices`` per node and ``num_nodes``; ``out_dir`` must be on a
      filesystem all ranks share;
    - members in parallel: one process per member (``members=[i]``, e.g. from
      ``SLURM_ARRAY_TASK_ID``), each on its own device through ``member_devices=[[0], [1],
      ...]`` (member i gets entry ``i % len``) or ``spread_members=True`` (member i gets GPU
      ``i % n_gpus`` when several GPUs are visible).

    ``log``: called with a line as each member finishes (progress where bars do not show,
    e.g. a notebook run headless). Finished members (``member_XX.json`` + a checkpoint with
    a matching sha256) are skipped when ``resume``, so an interrupted run continues where it
    stopped. The process that completes the last member writes ``out_dir/ensemble.json``
    (``alkit.ensemble.store``).

    Returns:
        The manifest's path, or ``None`` while members of the ensemble are still missing.
    """
    if n_members < 1:
        raise ConfigError(f"n_members must be >= 1, got {n_members}")
    indices = list(range(n_members)) if members is None else [int(i) for i in members]
    bad = [i for i in indices if not 0 <= i < n_members]
    if bad:
        raise ConfigError(f"members {bad} are outside 0..{n_members - 1}")
    model_config, train_config = as_model_config(model_config), as_train_config(train_config)
    out = Path(out_dir)
    plan = member_device_plan(n_members, devices, accelerator, member_devices, spread_members)
    expected = {
        "model_config": model_config.to_dict(),
        "train_config": train_config.to_dict(),
        "classes": tuple(classes),
    }
    for k, i in enumerate(indices, 1):
        done = read_member_record(out, i) if resume else None
        if done is not None:
            _check_resumable(done, {**expected, "seed": base_seed + i}, out)
            if log:
                log(f"member {i} ({k}/{len(indices)}): finished earlier, kept")
            continue
        record = train_member(
            data, model_config, train_config, out, seed=base_seed + i, index=i, classes=classes,
            devices=plan[i], accelerator=accelerator, strategy=strategy, num_nodes=num_nodes,
            callbacks=callbacks, enable_progress_bar=enable_progress_bar, **trainer_kwargs,
        )  # fmt: skip
        if log:
            seconds = record.metrics.get("train_seconds", float("nan"))
            log(f"member {i} ({k}/{len(indices)}): trained in {seconds:.0f} s")
    records = [read_member_record(out, i) for i in range(n_members)]
    if any(r is None for r in records):
        return None
    path = out / MANIFEST_NAME
    if rank_zero_only.rank == 0:
        write_manifest(out, records)
    return path
