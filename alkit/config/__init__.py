"""The configuration: one tree of the stages' configs (``tree``) and the profiles, written as
differences from its defaults (``profiles``). Stages never import this package; the drivers,
the notebook steps and the CLI build the tree once and pass each stage its part."""

from alkit.config.profiles import PROFILES, RECIPE_PROFILES, profile_parameters, profile_values
from alkit.config.tree import FLAT, ABSettings, RunConfig

__all__ = ["FLAT", "PROFILES", "RECIPE_PROFILES", "ABSettings", "RunConfig",
           "profile_parameters", "profile_values"]  # fmt: skip
