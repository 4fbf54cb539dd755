"""Recipes (which notebooks run, wired how), profiles (parameter sets) and ``-p`` values.

A recipe is a sequence of ``Step`` s, each a notebook of ``notebooks/`` plus the parameters
the pipeline wires to an upstream step's output (``"<step>/<path in its out_dir>"``); every
step also gets ``out_dir`` = ``<run>/out/<step>``. Other parameters come, in this order, from
a step-scoped override (``-p 02_query.budget=5``), a global override (``-p budget=5``), the
profile, else the notebook's own default. Only parameters a notebook declares in its
``parameters`` cell are passed to it.

Profiles: ``quick`` is exactly ``ABConfig()``'s A/B quick settings (CPU, minutes); ``full`` is
the GPU-scale configuration (384 x 640 world, bigger U-Net, 8 members, a 1% budget of the full
pool, retraining from scratch like the seed); ``tiny`` runs every notebook in seconds (a smoke
test; its numbers mean nothing).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from alkit.errors import ConfigError
from alkit.experiments.abtest import ABConfig


@dataclass(frozen=True)
class Step:
    """One notebook of a recipe; ``inputs``: parameter -> ``"<upstream step>/<relative path>"``."""

    notebook: str
    inputs: Mapping[str, str] = field(default_factory=dict)

    @property
    def upstream(self) -> tuple[str, ...]:
        """The steps whose outputs this one reads, in first-use order."""
        return tuple(dict.fromkeys(v.split("/", 1)[0] for v in self.inputs.values()))


_TRAIN = "01_train_ensemble"
_WORLD = {"world_path": f"{_TRAIN}/world.json"}
_ENSEMBLE = {"ensemble_path": f"{_TRAIN}/ensemble.json"}
_SELECTION = {"selection_path": "02_query/selections/AL.json"}

RECIPES: dict[str, tuple[Step, ...]] = {
    "ab": (Step("10_ab_test"),),
    "loop": (
        Step(_TRAIN),
        Step("02_query", {**_WORLD, **_ENSEMBLE}),
        Step("03_annotate", {**_WORLD, **_SELECTION}),
        Step("04_append", {**_WORLD, **_SELECTION, "batch_path": "03_annotate/batch.json"}),
        Step("05_evaluate", {**_WORLD, **_ENSEMBLE}),
    ),
    "rounds": (Step("30_active_learning_loop"),),
}

#: ``quick``: the A/B quick settings (``ABConfig`` defaults); ``full``: GPU scale; ``tiny``:
#: a smoke test of the notebooks and the pipeline.
PROFILES: dict[str, dict[str, Any]] = {
    "quick": ABConfig().to_dict(),
    "full": ABConfig().to_dict()
    | {
        "profile": "full",  # 384 x 640 frames; pool of 2000 sessions (200,000 frames)
        "n_members": 8,
        "model": {"width": 32, "depth": 4, "stride": 4, "head_width": 64},
        "train": {
            "max_epochs": 20,
            "warmup_steps": 500,
            "precision": "bf16-mixed",
            "channels_last": True,
        },
        "batch_size": 32,
        "budget": 2000,  # 1% of the full pool, as in the seed
        "pool_stride": 1,
        "retrain": "scratch",
        "retrain_steps": 20000,
        "n_rounds": 5,
    },
    # a smoke test: every step of every recipe in seconds on a CPU; the numbers mean nothing
    "tiny": ABConfig().to_dict()
    | {
        "sessions": {"initial": 2, "pool": 3, "test": 2},
        "initial_stride": 4,
        "test_stride": 25,
        "n_members": 2,
        "model": {"width": 4, "depth": 2, "stride": 4, "head_width": 8},
        "train": {"max_epochs": 1, "max_steps": 4, "warmup_steps": 1},
        "batch_size": 8,
        "budget": 10,
        "manual_subsequence": 5,
        "manual_filters": {},
        "retrain_steps": 2,
        "n_splits": 1,
        "n_rounds": 1,
        "progress": False,
    },
}


def recipe_steps(recipe: str) -> tuple[Step, ...]:
    """The steps of a named recipe (``ConfigError`` naming the known ones otherwise)."""
    if recipe not in RECIPES:
        raise ConfigError(f"unknown recipe {recipe!r}; choose from {sorted(RECIPES)}")
    return RECIPES[recipe]


def profile_parameters(profile: str) -> dict[str, Any]:
    """A copy of a profile's parameter values."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose from {sorted(PROFILES)}")
    return json.loads(json.dumps(PROFILES[profile]))


def parse_value(text: str) -> Any:
    """A ``-p`` value: JSON when it parses (``5``, ``true``, ``[1, 2]``, ``{"a": 1}``,
    ``null``), else the string itself (``full``, ``runs/x``)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignments(items: Sequence[str]) -> dict[str, Any]:
    """``["budget=5", "02_query.seed=1"]`` -> ``{"budget": 5, "02_query.seed": 1}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"-p expects key=value, got {item!r}")
        out[key] = parse_value(value)
    return out


def step_parameters(
    step: Step,
    declared: Sequence[str],
    profile: Mapping[str, Any],
    overrides: Mapping[str, Any],
    wired: Mapping[str, str],
) -> dict[str, Any]:
    """The values passed to one step: wired paths (incl. ``out_dir``) first, then the step's
    own overrides, global overrides, the profile; names the notebook does not declare are left
    out (the notebook keeps its default for declared names nobody sets)."""
    scoped = {
        k.split(".", 1)[1]: v for k, v in overrides.items() if k.split(".", 1)[0] == step.notebook
    }
    values: dict[str, Any] = {}
    for name in declared:
        for source in (wired, scoped, overrides, profile):
            if name in source:
                values[name] = source[name]
                break
    return values


def check_overrides(
    overrides: Mapping[str, Any], declared: Mapping[str, Sequence[str]], wired: Sequence[str]
) -> None:
    """Every override must name a parameter some step declares (``step.name`` for one step);
    wired parameters and ``out_dir`` belong to the pipeline. ``declared``: step -> names."""
    every = {n for names in declared.values() for n in names}
    for key in overrides:
        step, _, name = key.rpartition(".")
        if name in wired:
            raise ConfigError(
                f"-p {key}: {name!r} is set by the pipeline (a path in the run folder); "
                "run the notebook with papermill yourself to point it elsewhere"
            )
        if step and step not in declared:
            raise ConfigError(f"-p {key}: no step {step!r} in this recipe; steps: {list(declared)}")
        if name not in (declared[step] if step else every):
            where = f"step {step}" if step else "any step of this recipe"
            known = sorted(declared[step] if step else every)
            raise ConfigError(f"-p {key}: {where} has no parameter {name!r}; parameters: {known}")


__all__ = [
    "PROFILES",
    "RECIPES",
    "Step",
    "check_overrides",
    "parse_assignments",
    "parse_value",
    "profile_parameters",
    "recipe_steps",
    "step_parameters",
]
