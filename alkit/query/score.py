"""Scoring a pool of any size: stream frames, run every member, write per-class score shards.

The pool's frame ids are cut into fixed shards of ``shard_size`` frames. Each finished shard
is one Parquet file ``<out>/shard-000123.parquet`` (written to a temporary name, then
renamed), so:

* memory holds one shard's rows at a time, whatever the pool's size;
* an interrupted run resumes: rerunning the same call skips the shards already on disk and
  redoes only the unfinished one; no frame is lost or scored twice;
* several processes share the work: under Lightning DDP rank ``r`` of ``n`` scores the
  shards ``i`` with ``i % n == r`` and writes its own files. ``read_scores`` merges them.

Run on several GPUs: ``score_pool(..., accelerator="gpu", devices=4, strategy="ddp")``, or
launch the same script with ``torchrun --nproc_per_node 4`` / ``srun`` (Lightning reads the
environment).
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torch import nn
from torch.utils.data import DataLoader, Sampler

from alkit.data import storage
from alkit.data.classes import CLASSES
from alkit.data.datasets import PoolImages, collate_frames
from alkit.detector.inference import prepare_for_inference
from alkit.detector.quiet import quiet_lightning
from alkit.errors import ConfigError, DataError
from alkit.query.acquisition import (
    check_probabilities,
    detection_entropy,
    detection_peaks,
    entropy_of_mean,
    frame_scores,
    mutual_information,
    predicted_count,
)
from alkit.query.kcenter import feature_name

PLAN_FILE = "_plan.json"


def shard_name(index: int) -> str:
    return f"shard-{index:06d}.parquet"


#: (prediction key, column suffix) of every score a shard holds per class.
SCORE_KINDS = (
    ("mean", ""),
    ("max", "__max"),
    ("entropy", "__entropy"),
    ("boxes", "__boxes"),
    ("count", "__count"),
    ("peaks", "__peaks"),
)


def score_columns(classes: Sequence[str]) -> list[str]:
    """Columns of a score shard after ``frame_id``: per class, mean MI (named by the class,
    the seed's score), max MI (``<class>__max``), mean predictive entropy
    (``<class>__entropy``), the box-based detection entropy (``<class>__boxes``, see
    ``alkit.query.acquisition.detection_entropy``), the mean detector's number of
    detections (``<class>__count``, ``predicted_count``: what the COUNT arm ranks by) and
    the MI summed over the ensemble's detection peaks at least
    ``acquisition.MIN_LEARNABLE_HEIGHT`` px tall (``<class>__peaks``, AL-peaks). After them,
    where the members are ``UNetDetector``s, the frame's feature vector ``feature_00``, ...
    (``ScoreMaps.features``, AL-kcenter). Shards written before ``__peaks`` and the
    features existed lack those columns and read as before."""
    return [f"{c}{suffix}" for _, suffix in SCORE_KINDS for c in classes]


class ScoreMaps(NamedTuple):
    """What scoring reads off the members for a batch.

    ``probs`` ``[M, B, C, h, w]`` sigmoid heatmaps; ``heights`` ``[B, h, w]`` px, the box
    height the members predict at each cell (``exp`` of their mean log-height, times the
    stride); ``features`` ``[B, F]``: per frame, the global average pool of each member's
    decoder features (the heads' input, before dropout), averaged over the members, or
    ``None`` where a member has no ``head_dropout`` (not a ``UNetDetector``). The members'
    channels are not aligned (different inits), so the mean is a fixed linear projection of
    their concatenation: distances between frames keep, up to scale, what the members agree
    on, in ``F`` floats (16 for the experiment's width-8, stride-2 detector) however many
    members there are."""

    probs: torch.Tensor
    heights: torch.Tensor
    features: torch.Tensor | None


def _run_member(member: nn.Module, images: torch.Tensor):
    """``(DetectorOutput, [B, F] pooled decoder features or None)`` of one member."""
    sites = [m for name, m in member.named_modules() if name.split(".")[-1] == "head_dropout"]
    if len(sites) != 1:
        return member(images), None
    site = sites[0]
    seen: list[torch.Tensor] = []
    hook = site.register_forward_hook(
        lambda module, inputs, output: seen.append(inputs[0].float().mean(dim=(2, 3)))  # [B, F]
    )
    try:
        output = member(images)
    finally:
        hook.remove()
    return output, seen[0]


def _score_maps(outputs, features, images: torch.Tensor) -> ScoreMaps:
    """``ScoreMaps`` of the members' (or passes') ``DetectorOutput``s and pooled features."""
    logits = [o.heatmap_logits.float() for o in outputs]  # M x [B, C, h, w]
    probs = torch.sigmoid(torch.stack(logits))  # [M, B, C, h, w]
    stride = images.shape[-2] / probs.shape[-2]  # px per cell
    log_h = torch.stack([o.size[:, 1].float() for o in outputs]).mean(dim=0)  # [B, h, w]
    heights = log_h.clamp(max=10.0).exp() * stride  # [B, h, w] px, clamped as decode does
    pooled = None if any(f is None for f in features) else torch.stack(features).mean(dim=0)
    return ScoreMaps(probs, heights, pooled)  # pooled: [B, F]


class EnsembleProbabilities(nn.Module):
    """Runs every member on a batch: ``[B, 3, H, W]`` -> sigmoid maps ``[M, B, C, h, w]``.

    With ``fast=True`` the members are copies prepared for inference (BatchNorm folded,
    channels-last; see ``alkit.detector.inference``): same outputs up to float rounding, faster.
    """

    def __init__(self, members: Sequence[nn.Module], fast: bool = True):
        super().__init__()
        members = list(getattr(members, "members", members))
        if not members:
            raise ConfigError("an ensemble needs at least one member")
        self.fast = fast
        prepared = [prepare_for_inference(m) if fast else m.eval() for m in members]
        self.members = nn.ModuleList(prepared)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.fast:
            images = images.contiguous(memory_format=torch.channels_last)
        logits = [m(images).heatmap_logits.float() for m in self.members]  # M x [B, C, h, w]
        return torch.sigmoid(torch.stack(logits))  # [M, B, C, h, w]

    def maps(self, images: torch.Tensor) -> ScoreMaps:
        """``forward``'s probabilities (the same values) with heights and features."""
        if self.fast:
            images = images.contiguous(memory_format=torch.channels_last)
        runs = [_run_member(m, images) for m in self.members]
        return _score_maps([o for o, _ in runs], [f for _, f in runs], images)


class MCDropout(nn.Module):
    """MC-dropout as an ensemble: ``passes`` stochastic forward passes of one model.

    The model needs ``dropout > 0`` in its config; BatchNorm stays in eval mode, only the
    dropout layers sample. ``[B, 3, H, W]`` -> ``[T, B, C, h, w]``.
    """

    def __init__(self, model: nn.Module, passes: int = 8, seed: int = 0):
        super().__init__()
        if getattr(getattr(model, "config", None), "dropout", 0.0) <= 0:
            raise ConfigError("MC-dropout needs a model trained with DetectorConfig.dropout > 0")
        if passes < 2:
            raise ConfigError(f"MC-dropout needs at least 2 passes, got {passes}")
        self.model = model.eval()
        self.passes, self.seed = passes, seed

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.model.head_dropout.train()
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(self.seed)  # the same masks for every batch: reproducible scores
        try:
            logits = [self.model(images).heatmap_logits.float() for _ in range(self.passes)]
        finally:
            torch.random.set_rng_state(generator_state)
            self.model.head_dropout.eval()
        return torch.sigmoid(torch.stack(logits))  # [T, B, C, h, w]

    def maps(self, images: torch.Tensor) -> ScoreMaps:
        """``forward``'s probabilities (the same masks) with heights and the model's pooled
        features (before dropout: the same in every pass)."""
        self.model.head_dropout.train()
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(self.seed)
        try:
            runs = [_run_member(self.model, images) for _ in range(self.passes)]
        finally:
            torch.random.set_rng_state(generator_state)
            self.model.head_dropout.eval()
        return _score_maps([o for o, _ in runs], [runs[0][1]], images)


def as_probability_model(members) -> nn.Module:
    """An ``MCDropout`` stays as it is; members (a list or an ``Ensemble``) become an
    ``EnsembleProbabilities``."""
    return members if isinstance(members, MCDropout) else EnsembleProbabilities(members)


def mi_heatmaps(members: Sequence[nn.Module], images: torch.Tensor) -> torch.Tensor:
    """Mutual-information maps for display: ``[B, 3, H, W]`` -> ``[B, C, h, w]`` nats."""
    with torch.inference_mode():
        return mutual_information(as_probability_model(members)(images))


class ScoringModule(L.LightningModule):
    """Lightning wrapper whose ``predict_step`` turns a batch into per-class frame scores."""

    def __init__(self, members: Sequence[nn.Module], classes: Sequence[str] = CLASSES):
        super().__init__()
        self.ensemble = as_probability_model(members)
        self.classes = list(classes)

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        ids = batch["frame_id"]  # [B]
        maps = self.ensemble.maps(batch["image"])
        probs = maps.probs  # [M, B, C, h, w]
        if probs.shape[2] != len(self.classes):
            raise ConfigError(
                f"members output {probs.shape[2]} classes but {len(self.classes)} were named"
            )
        check_probabilities(probs, frame_ids=ids.tolist())
        mi = mutual_information(probs)  # [B, C, h, w]
        mean = probs.mean(dim=0)  # [B, C, h, w]
        peaks = detection_peaks(mean, maps.heights)  # [B, C, h, w]
        out = {
            "frame_id": ids.cpu(),
            "mean": frame_scores(mi, "mean").float().cpu(),  # [B, C]
            "max": frame_scores(mi, "max").float().cpu(),  # [B, C]
            "entropy": frame_scores(entropy_of_mean(probs), "mean").float().cpu(),  # [B, C]
            "boxes": detection_entropy(mean).float().cpu(),  # [B, C]
            "count": predicted_count(mean).float().cpu(),  # [B, C]
            "peaks": frame_scores(mi, "peaks", peaks=peaks).float().cpu(),  # [B, C]
        }
        if maps.features is not None:
            out["features"] = maps.features.float().cpu()  # [B, F]
        return out


class ShardWriter(BasePredictionWriter):
    """Collects a shard's rows and writes the shard once all its frames are scored."""

    def __init__(self, out_url: str, shard_of: dict[int, int], sizes: dict[int, int], classes):
        super().__init__(write_interval="batch")
        self.out_url, self.shard_of, self.sizes = out_url, shard_of, sizes
        self.classes = list(classes)
        self.buffers: dict[int, list[pd.DataFrame]] = {}
        self.filled: dict[int, int] = {}
        self.written: list[int] = []

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch,
                           batch_idx, dataloader_idx=0):  # fmt: skip
        ids = prediction["frame_id"].numpy()
        columns: dict[str, Any] = {"frame_id": ids}
        for key, suffix in SCORE_KINDS:
            values = prediction[key].numpy()  # (B, C)
            for ci, c in enumerate(self.classes):
                columns[f"{c}{suffix}"] = values[:, ci]
        if "features" in prediction:
            features = prediction["features"].numpy()  # (B, F)
            for j in range(features.shape[1]):
                columns[feature_name(j)] = features[:, j]
        table = pd.DataFrame(columns)  # built at once (column by column fragments pandas)
        shards = pd.Series(ids).map(self.shard_of).to_numpy()
        for shard in sorted(set(shards.tolist())):
            part = table[shards == shard]
            self.buffers.setdefault(shard, []).append(part)
            self.filled[shard] = self.filled.get(shard, 0) + len(part)
            if self.filled[shard] == self.sizes[shard]:
                rows = pd.concat(self.buffers.pop(shard), ignore_index=True)
                rows = rows.sort_values("frame_id", ignore_index=True)
                storage.atomic_write_parquet(rows, storage.join(self.out_url, shard_name(shard)))
                self.written.append(shard)


class ShardBatches(Sampler[list[int]]):
    """Batch indices over shards laid end to end; no batch crosses a shard boundary."""

    def __init__(self, shard_sizes: Sequence[int], batch_size: int):
        self.batches: list[list[int]] = []
        start = 0
        for size in shard_sizes:
            for lo in range(0, size, batch_size):
                self.batches.append(list(range(start + lo, start + min(lo + batch_size, size))))
            start += size

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class BatchesAhead:
    """A ``DataLoader`` whose next ``depth`` batches a background thread prepares while the
    members run. With no worker processes, frames are then rendered or decoded in the gaps
    between the forward's ops instead of after it. (torchdata's ``Prefetcher`` does this too,
    but its 0.11 release raises "cannot join current thread" when garbage collection runs in
    its own thread.)"""

    def __init__(self, loader: DataLoader, depth: int = 2):
        self.loader, self.depth = loader, depth

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        ready: queue.Queue = queue.Queue(self.depth)
        stop = threading.Event()

        def offer(item) -> bool:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False  # the consumer has stopped

        def fill() -> None:
            try:
                for batch in self.loader:
                    if not offer((batch, None)):
                        return
                offer((_DONE, None))
            except BaseException as err:  # re-raised in the consumer (it names the frame)
                offer((_DONE, err))

        thread = threading.Thread(target=fill, name="alkit-batches-ahead", daemon=True)
        thread.start()
        try:
            while True:
                batch, err = ready.get()
                if err is not None:
                    raise err
                if batch is _DONE:
                    return
                yield batch
        finally:
            stop.set()


_DONE = object()


class PoolDataModule(L.LightningDataModule):
    """Frames of the unfinished shards that belong to this process's rank, in order; with no
    worker processes, prepared one batch ahead in a thread (``BatchesAhead``)."""

    def __init__(
        self, source, shards: dict[int, list[int]], batch_size: int, num_workers: int,
        ahead: bool = True,
    ):  # fmt: skip
        super().__init__()
        self.source, self.shards = source, shards
        self.batch_size, self.num_workers, self.ahead = batch_size, num_workers, ahead

    def predict_dataloader(self) -> DataLoader | BatchesAhead:
        rank, world = self.trainer.global_rank, self.trainer.world_size
        mine = [self.shards[s] for s in sorted(self.shards) if s % world == rank]
        ids = [i for shard in mine for i in shard]
        # Batches never cross a shard boundary, so every frame is scored in the same batch
        # whatever the number of ranks or a resume: scores are bit-identical across runs.
        loader = DataLoader(
            PoolImages(self.source, ids),
            batch_sampler=ShardBatches([len(shard) for shard in mine], self.batch_size),
            num_workers=self.num_workers,
            collate_fn=collate_frames,
        )
        return BatchesAhead(loader) if self.ahead and self.num_workers == 0 else loader


@dataclass(frozen=True)
class ScoreRun:
    """What a ``score_pool`` call did: shards in the pool, written now, found finished."""

    out_url: str
    n_frames: int
    n_shards: int
    written: tuple[int, ...]
    skipped: tuple[int, ...]


def _plan(frame_ids: list[int], shard_size: int, classes, member_hashes) -> dict:
    ids_hash = hashlib.sha256(json.dumps(frame_ids).encode()).hexdigest()
    return {
        "n_frames": len(frame_ids),
        "frame_ids_sha256": ids_hash,
        "shard_size": shard_size,
        "classes": list(classes),
        "members": list(member_hashes),
        "columns": ["frame_id", *score_columns(classes)],
    }


def score_pool(
    members: Sequence[nn.Module],
    source,
    frame_ids: Sequence[int],
    out_url: str,
    classes: Sequence[str] = CLASSES,
    member_hashes: Sequence[str] = (),
    batch_size: int = 32,
    shard_size: int = 1024,
    num_workers: int = 0,
    accelerator: str = "cpu",
    devices: int | str = 1,
    strategy: str = "auto",
    precision: str | None = None,
    progress: bool = True,
    ahead: bool = True,
) -> ScoreRun:
    """Score ``frame_ids`` of ``source`` (a world) with the ensemble into shards at ``out_url``.
    ``num_workers`` processes prepare the frames; with none, a thread prepares the next batch
    while the members run (``ahead=False``: between batches, for the bench's comparison).

    Restarting with the same arguments resumes; different frame ids, shard size, classes or
    members for an existing ``out_url`` raise ``ConfigError`` instead of mixing runs.
    """
    ids = [int(i) for i in frame_ids]
    if not ids:
        raise DataError("the pool is empty: no frame ids to score")
    if len(set(ids)) != len(ids):
        dup = pd.Series(ids)[pd.Series(ids).duplicated()].unique()[:5].tolist()
        raise DataError(f"duplicate frame ids in the pool: {dup}")
    plan = _plan(ids, shard_size, classes, member_hashes)
    plan_url = storage.join(out_url, PLAN_FILE)
    if storage.exists(plan_url):
        old = storage.read_json(plan_url)
        # a run begun before a score column existed resumes (its old shards lack the column)
        grown = set(old.get("columns") or ()) <= set(plan["columns"])
        changed = [k for k in plan if old.get(k) != plan[k] and not (k == "columns" and grown)]
        if changed:
            raise ConfigError(
                f"{out_url} holds scores of another run (differs in {changed}); "
                "use a new output folder"
            )
    else:
        storage.atomic_write_json(plan_url, plan)
    shards = {
        s: ids[s * shard_size : (s + 1) * shard_size]
        for s in range((len(ids) - 1) // shard_size + 1)
    }
    done = set(storage.list_names(out_url))
    finished = tuple(s for s in shards if shard_name(s) in done)
    pending = {s: v for s, v in shards.items() if s not in finished}
    written: list[int] = []
    if pending:
        shard_of = {i: s for s, v in pending.items() for i in v}
        writer = ShardWriter(out_url, shard_of, {s: len(v) for s, v in pending.items()}, classes)
        with quiet_lightning():
            trainer = L.Trainer(
                accelerator=accelerator,
                devices=devices,
                strategy=strategy,
                precision=precision,
                callbacks=[writer],
                logger=False,
                enable_progress_bar=progress,
                enable_model_summary=False,
                use_distributed_sampler=False,
            )
            module = ScoringModule(members, classes)
            data = PoolDataModule(source, pending, batch_size, num_workers, ahead)
            with warnings.catch_warnings():
                # ShardBatches yields every index (no drop_last), which Lightning cannot check;
                # ShardWriter keys rows by frame id, not by the batch indices it cannot infer
                warnings.filterwarnings("ignore", message=".*custom batch sampler.*")
                warnings.filterwarnings("ignore", message=".*infer the batch indices.*")
                trainer.predict(module, datamodule=data, return_predictions=False)
        written = writer.written
    return ScoreRun(out_url, len(ids), len(shards), tuple(sorted(written)), finished)


def read_scores(out_url: str) -> pd.DataFrame:
    """All finished shards merged, sorted by frame id; checks no frame appears twice."""
    names = [
        n for n in storage.list_names(out_url) if n.startswith("shard-") and n.endswith(".parquet")
    ]
    if not names:
        raise DataError(f"no score shards under {out_url}")
    table = pd.concat(
        [storage.read_parquet(storage.join(out_url, n)) for n in names], ignore_index=True
    )
    dup = table.frame_id[table.frame_id.duplicated()]
    if len(dup):
        raise DataError(f"{out_url}: frames scored twice: {sorted(dup.unique())[:5]}")
    return table.sort_values("frame_id", ignore_index=True)
