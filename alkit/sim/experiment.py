"""The experiment world as a pool source: building it, saving and loading its config, and its
initial labelled set."""

from __future__ import annotations

from alkit.data import storage
from alkit.data.lineage import lineage_info
from alkit.data.versions import DatasetVersion
from alkit.sim.config import WorldConfig, experiment_world
from alkit.sim.world import World


def make_world(profile: str = "quick", world_seed: int = 0, sessions: dict | None = None) -> World:
    """The experiment world of ``alkit.sim.experiment_world`` (``sessions`` overrides sizes)."""
    return World(experiment_world(profile, seed=world_seed, **dict(sessions or {})))


def save_world(world: World, url: str) -> str:
    """Write the world's config as JSON (atomically); returns ``url``."""
    storage.atomic_write_json(url, world.config.to_dict())
    return url


def load_world(url: str) -> World:
    """The world whose config ``save_world`` wrote to ``url``."""
    return World(WorldConfig.from_dict(storage.read_json(url)))


def initial_version(world: World, initial_stride: int = 2) -> DatasetVersion:
    """The initial labelled set: every ``initial_stride``-th frame of the initial segment."""
    ids = list(world.segment_frame_ids("initial"))[::initial_stride]
    return DatasetVersion.from_frames(
        [world.frame(i) for i in ids],
        world=world.config,
        info=lineage_info(params={"initial_stride": initial_stride}),
    )


__all__ = ["initial_version", "load_world", "make_world", "save_world"]
