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

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import Dataset

from alkit.data.classes import CLASSES
from alkit.data.versions import DatasetVersion
from alkit.detector.module import DetectorModule, TrainConfig, as_model_config, as_train_config
from alkit.detector.network import DetectorConfig
from alkit.detector.quiet import quiet_lightning
from alkit.ensemble.datamodule import DetectionDataModule
from alkit.ensemble.store import (
    ENSEMBLE_RECORD,
    Ensemble,
    MemberRecord,
    file_sha256,
    load_ensemble,
    member_name,
    read_member_record,
    write_ensemble_record,
    write_member_record,
)
from alkit.errors import ConfigError


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
    data.setup("fit")  # (cached: the fit reuses it) to log at least once per epoch of few batches
    batches = max(1, len(data.train_dataloader()))
    defaults: dict[str, Any] = {"log_every_n_steps": min(10, batches)}
    defaults["enable_model_summary"] = False
    if data.val_fraction == 0:
        defaults["limit_val_batches"] = 0
    trainer_kwargs = defaults | trainer_kwargs
    with quiet_lightning():
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
        trainer.save_checkpoint(partial, weights_only=False)  # every rank; rank 0 writes
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
        The ensemble record's path (``ensemble.json``), or ``None`` while members are missing.
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
    path = out / ENSEMBLE_RECORD
    if rank_zero_only.rank == 0:
        write_ensemble_record(out, records)
    return path


# ---------------------------------------------------------------------------------------------
# TRAIN, as the loop calls it


@dataclass(frozen=True)
class EnsembleConfig:
    """An ensemble to train (plain values, one per profile parameter): ``n_members`` detectors
    of architecture ``model`` (``DetectorConfig`` fields) with schedule ``train``
    (``TrainConfig`` fields), ``batch_size`` images per step, member seeds ``seed + i``."""

    n_members: int = 4
    model: Mapping = field(default_factory=dict)
    train: Mapping = field(default_factory=dict)
    batch_size: int = 16
    seed: int = 0


@dataclass(frozen=True)
class TrainedEnsemble:
    """``ensemble_json``: the ``ensemble.json``; ``ensemble``: its members, loaded and verified;
    ``frames``: the labelled frames they trained on, in memory (replayed when fine-tuning)."""

    ensemble_json: Path
    ensemble: Ensemble
    frames: Dataset


def train_members(
    labelled: DatasetVersion | tuple[Any, Sequence[int]],
    out_dir: str | os.PathLike,
    config: EnsembleConfig,
    world: Any = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    input_size: Sequence[int] | None = None,
    classes: Sequence[str] | None = None,
) -> TrainedEnsemble:
    """TRAIN: ``config.n_members`` detectors of ``classes`` (default: the version's, else
    the world's ``CLASSES``) on a labelled dataset version
    (``world`` renders its generated frames; image files are letterboxed into
    ``input_size``) or a ``(source, frame_ids)`` pair, into ``out_dir``; finished members are
    kept on a rerun."""
    if classes is None:
        classes = labelled.classes if isinstance(labelled, DatasetVersion) else CLASSES
    data = DetectionDataModule(
        labelled, config.batch_size, seed=config.seed, world=world, cache=True,
        input_size=input_size,
    )  # fmt: skip
    path = train_ensemble(
        config.n_members,
        data,
        {"num_classes": len(classes), **dict(config.model)},
        dict(config.train) or None,
        out_dir,
        base_seed=config.seed,
        classes=classes,
        enable_progress_bar=progress,
        log=log,
    )
    data.setup("fit")  # a resumed ensemble trained nothing, so build the data here
    return TrainedEnsemble(Path(path), load_ensemble(path), data.dataset)
