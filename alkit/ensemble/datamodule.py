"""The training data of an ensemble as a LightningDataModule."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
from torch.utils.data import DataLoader, Dataset, Subset

from alkit.data.datasets import CachedFrames, VirtualFrames, collate_frames, to_frames_dataset
from alkit.data.versions import DatasetVersion
from alkit.errors import ConfigError, DataError


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
        input_size: ``(H, W)`` a version's image files are letterboxed into (own data).
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
        input_size: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
        self.data, self.world = data, world
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.val_fraction, self.cache = val_fraction, cache
        self.input_size = input_size
        self.dataset: Dataset | None = None
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    def _build(self) -> Dataset:
        if isinstance(self.data, DatasetVersion):
            return to_frames_dataset(self.data, self.world, self.input_size)
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
            if pd.api.types.is_numeric_dtype(sessions):
                keys = sessions.fillna(0).to_numpy(np.int64)
            else:  # named sessions (own data: subfolders, video files)
                keys = pd.factorize(sessions.astype(str))[0]
            return np.where(sessions.isna(), -1 - ids, keys)
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
