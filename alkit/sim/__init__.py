"""The synthetic driving world: sessions of frames generated on demand, deterministically."""

from alkit.data.frames import META_FIELDS, Frame, FrameMeta
from alkit.sim.config import (
    PROFILE_SIZES,
    ROUTES,
    TIMES_OF_DAY,
    WEATHERS,
    SegmentSpec,
    WorldConfig,
    experiment_world,
)
from alkit.sim.world import World

__all__ = [
    "META_FIELDS",
    "PROFILE_SIZES",
    "ROUTES",
    "TIMES_OF_DAY",
    "WEATHERS",
    "Frame",
    "FrameMeta",
    "SegmentSpec",
    "World",
    "WorldConfig",
    "experiment_world",
]
