"""The profiles: what each scale changes in the configuration's defaults, written once.

A profile is a set of plain values (``alkit.config.tree.FLAT`` names, plus the drivers' own
fields) that differ from the defaults of the stages' dataclasses: ``quick`` is the defaults
themselves (CPU, minutes); ``full`` the GPU scale (384 x 640 world, bigger U-Net, 8 members, a
1% budget of the full pool, retraining from scratch like the seed); ``tiny`` runs every step
in seconds (a smoke test; its numbers mean nothing). ``RECIPE_PROFILES`` says what a recipe
changes in a profile; ``OWN_DATA`` what a team's own data changes. The notebooks' parameter
cells hold the ``quick`` values of their recipe, the step functions fill what they are not
given from a profile, and the CLI passes ``--profile``; tests keep them agreeing and check
that no profile restates a default.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from alkit.config.tree import FLAT, ABSettings, RunConfig
from alkit.errors import ConfigError

#: What own data changes in every profile: the world's night filters and its simulated
#: curator (MANUAL) and oracle do not exist there; frames go to a labelling tool.
OWN_DATA: dict[str, Any] = {
    "pool_filter": {},
    "metadata_filters": {},
    "manual_filters": {},
    "baselines": ["RANDOM"],
    "pool_stride": 1,
    "labeller": "labelstudio",
}

#: Per profile, its differences from the defaults.
PROFILES: dict[str, dict[str, Any]] = {
    "quick": {},
    "full": {
        "world_profile": "full",  # 384 x 640 frames; pool of 2000 sessions (200,000 frames)
        "n_members": 8,
        "model": {"width": 32, "depth": 4, "stride": 4, "head_width": 64},
        "train": {"max_epochs": 20, "warmup_steps": 500},  # bf16 on GPUs that support it
        "batch_size": 32,
        "budget": 2000,  # 1% of the full pool, as in the seed
        "pool_stride": 1,
        "retrain": "scratch",
        "retrain_steps": 20000,
        "score_batch_size": 64,
        "score_workers": 4,  # render frames beside the GPU's forward passes
        "n_rounds": 5,
        "input_size": [384, 640],
    },
    # a smoke test: every step of every recipe in seconds on a CPU; the numbers mean nothing
    "tiny": {
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
        "input_size": [64, 96],
    },
}


#: What a recipe changes in a profile. ``ab``: the demo's time. ``experiment``
#: (``alkit.experiments.replicated``): the regime issue 19's learning curve chose before any
#: arm ran (README, ``docs/experiment/leverage*``): world profile ``night_lean`` (6 night
#: drives of 40 in the initial set: a data-limited night learner) with a pool of 720 drives
#: (about 50,000 night frames: 50x the budget), 1,000 night frames per arm (random ones raise
#: REFERENCE's night AP@0.5 by 7x its fine-tuning noise for people, 3.5x for bicycles),
#: retraining as the seed did (the union, every frame alike, at least one epoch of it), the
#: scoring members on the learner's schedule (8 epochs, like REFERENCE), a detector that
#: predicts on a stride-2 grid (night people are a few px), narrower (width 8) to pay for it;
#: one pool block and 6 fine-tuning seeds per world (6 replicates), 4 world seeds; the
#: replicates and analysis are ``ExperimentConfig``'s fields, ``workers`` the world seeds
#: run at once (``run_experiment``).
RECIPE_PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    # the demo (``make demo``) within 15 min on 2 CPU cores: the experiment's world (half the
    # initial drives at night) and its U-Net of width 8 at output stride 2 (night people are a
    # few px), 8 epochs a member (REFERENCE's night AP@0.5 0.22 for people in 12.1 min in
    # bf16-mixed on an AVX-512 bf16 CPU; 2 epochs gave 0.09), 40 fine-tuning steps, every 3rd
    # pool frame scored; it is not powered whatever its size (``alkit experiment`` is)
    "ab": {
        "quick": {
            "world_profile": "night",
            "model": {"width": 8, "depth": 3, "stride": 2, "head_width": 16},
            "train": {"max_epochs": 8},
            "retrain_steps": 40,
            "pool_stride": 3,
        },
    },
    "experiment": {
        "quick": {
            "world_profile": "night_lean",
            "sessions": {"pool": 720},
            "model": {"width": 8, "depth": 3, "stride": 2, "head_width": 16},
            "train": {"max_epochs": 8},
            "reference_train": {"max_epochs": 8},
            "budget": 1000,
            "new_fraction": "natural",
            "retrain_steps": 60,  # at least: one epoch of the union is more (125-188 steps)
            "retrain_min_epochs": 1,
            "world_seeds": [0, 1, 2, 3],
            "pool_blocks": 1,
            "finetune_seeds": [0, 1, 2, 3, 4, 5],
            "arms": [
                "AL",
                "AL-peaks",
                "AL-kcenter",
                "AL-div",
                "COUNT",
                "MANUAL",
                "RANDOM-night",
                "ORACLE",
            ],
            "test_set": "night_test",
            "workers": 2,
        },
        "full": {"test_set": "night_heldout"},
        "tiny": {
            "world_seeds": [0],
            "pool_blocks": 1,
            "finetune_seeds": [0],
            "test_set": "global",  # the tiny world's 2 test drives: too few night objects
            "n_resamples": 200,
            "workers": 1,
        },  # fmt: skip
    },
    # the learning curves (``alkit.experiments.replicated_rounds``): 4 rounds, 2 worlds at once
    "curves": {
        "quick": {"n_rounds": 4, "workers": 2},
        "full": {"workers": 1},
        "tiny": {"n_rounds": 2, "workers": 1},
    },
    # label efficiency of a finished experiment (``alkit.experiments.followups``)
    "efficiency": {
        "quick": {"workers": 2},
        "full": {"workers": 1, "budgets": [500, 1000]},
        "tiny": {
            "budgets": [4],
            "finetune_seeds": [0],
            "n_resamples": 100,
            "diagnostic_frames": 20,
            "workers": 1,
        },  # fmt: skip
    },
}


def defaults() -> dict[str, Any]:
    """Every plain value at its default: the tree's and the A/B test's own (its splits; the
    experiment's replicates come with its recipe)."""
    return json.loads(json.dumps(RunConfig().values() | asdict(ABSettings())))


def profile_parameters(profile: str, own_data: bool = False, recipe: str = "") -> dict[str, Any]:
    """A copy of a profile's parameter values: the defaults with the profile's differences
    (with ``OWN_DATA`` for a team's own data, and what ``recipe`` changes)."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose from {sorted(PROFILES)}")
    overlay = RECIPE_PROFILES.get(recipe, {}).get(profile, {})
    values = defaults() | PROFILES[profile] | overlay | (OWN_DATA if own_data else {})
    return json.loads(json.dumps(values))


def profile_values(profile: str, **overrides: Any) -> dict[str, Any]:
    """A profile's values of the tree and the A/B test's own fields, with ``overrides``: what
    ``ABConfig.from_dict`` takes (``alkit.experiments.abtest.profile_config``)."""
    values = profile_parameters(profile) | overrides
    names = set(FLAT) | set(asdict(ABSettings()))
    return {k: v for k, v in values.items() if k in names}


__all__ = [
    "OWN_DATA",
    "PROFILES",
    "RECIPE_PROFILES",
    "defaults",
    "profile_values",
    "profile_parameters",
]
