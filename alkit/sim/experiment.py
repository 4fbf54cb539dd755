"""The experiment world as a data source: building it, saving and loading its config, its
initial labelled set, its pool, and the simulated curator's view of its ground truth."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from alkit.data.classes import CLASSES
from alkit.data.lineage import lineage_info
from alkit.data.pool import Pool
from alkit.data.versions import DatasetVersion
from alkit.sim.config import experiment_world
from alkit.sim.world import World


def make_world(profile: str = "quick", world_seed: int = 0, sessions: dict | None = None) -> World:
    """The experiment world of ``alkit.sim.experiment_world`` (``sessions`` overrides sizes)."""
    return World(experiment_world(profile, seed=world_seed, **dict(sessions or {})))


def initial_frame_ids(world: World, initial_stride: int = 2) -> list[int]:
    """Every ``initial_stride``-th frame of the initial (mostly day) segment."""
    return list(world.segment_frame_ids("initial"))[::initial_stride]


def world_pool(world: World, segment: str = "pool") -> Pool:
    """The frames of a segment as an unlabelled ``Pool`` (metadata without rendering)."""
    return Pool(world, world.manifest(world.segment_frame_ids(segment)))


def visible_objects(world: World):
    """The simulated curator's eyes: ``frame_ids -> frame_id + ground-truth objects per
    class`` (``Candidates.visible``). Only the curator and the oracle read ground truth."""

    def counts(frame_ids: Sequence[int]) -> pd.DataFrame:
        rows = []
        for fid in frame_ids:
            labels = world.frame(int(fid)).labels
            rows.append([int(fid), *np.bincount(labels, minlength=len(CLASSES)).tolist()])
        return pd.DataFrame(rows, columns=["frame_id", *CLASSES])

    return counts


def initial_version(world: World, initial_stride: int = 2) -> DatasetVersion:
    """The initial labelled set: every ``initial_stride``-th frame of the initial segment."""
    ids = initial_frame_ids(world, initial_stride)
    return DatasetVersion.from_frames(
        [world.frame(i) for i in ids],
        world=world.config,
        info=lineage_info(params={"initial_stride": initial_stride}),
    )


__all__ = [
    "initial_frame_ids",
    "initial_version",
    "make_world",
    "visible_objects",
    "world_pool",
]
