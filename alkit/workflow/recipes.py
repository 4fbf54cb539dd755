"""Recipes (which notebooks run, wired how) and ``-p`` values.

A recipe is a sequence of ``Step`` s, each a notebook of ``notebooks/`` plus the parameters
the pipeline wires to an upstream step's output (``"<step>/<path in its out_dir>"``) or to a
folder of the run (``"{run}/<path>"``, e.g. ``{run}/to_label``, the frames exported for a
labelling tool, kept when the step reruns); every step also gets ``out_dir`` =
``<run>/out/<step>``. Other parameters come, in this order, from
a step-scoped override (``-p 02_query.budget=5``), a global override (``-p budget=5``), the
profile, else the notebook's own default. Only parameters a notebook declares in its
``parameters`` cell are passed to it.

The profiles are ``alkit.config.profiles``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from alkit.errors import ConfigError


@dataclass(frozen=True)
class Step:
    """One notebook of a recipe; ``inputs``: parameter -> ``"<upstream step>/<relative path>"``;
    ``label``: the step's name when one notebook runs twice in a recipe (else the notebook's)."""

    notebook: str
    inputs: Mapping[str, str] = field(default_factory=dict)
    label: str = ""

    @property
    def name(self) -> str:
        """The step's name: its ``out/`` folder, ``steps/`` notebook and ``-p STEP.key`` scope."""
        return self.label or self.notebook

    @property
    def upstream(self) -> tuple[str, ...]:
        """The steps whose outputs this one reads, in first-use order."""
        return tuple(dict.fromkeys(v.split("/", 1)[0] for v in self.step_inputs.values()))

    @property
    def step_inputs(self) -> dict[str, str]:
        """The inputs that are outputs of upstream steps (not folders of the run)."""
        return {k: v for k, v in self.inputs.items() if not v.startswith(RUN_PREFIX)}


#: An input wired to a path in the run folder itself rather than a step's out_dir.
RUN_PREFIX = "{run}/"


_TRAIN = "01_train_ensemble"
_RETRAIN = "round2_01_train_ensemble"
_DATA = {"data_path": f"{_TRAIN}/data.json"}
_ENSEMBLE = {"ensemble_path": f"{_TRAIN}/ensemble.json"}
_SELECTION = {"selection_path": "02_query/selections/AL.json"}
_TO_LABEL = {"export_dir": f"{RUN_PREFIX}to_label"}

RECIPES: dict[str, tuple[Step, ...]] = {
    "ab": (Step("10_ab_test"),),
    # one round of the loop, closed: round 2's TRAIN trains on the appended version, and
    # EVALUATE evaluates that ensemble
    "loop": (
        Step(_TRAIN),
        Step("02_query", {**_DATA, **_ENSEMBLE}),
        Step("03_annotate", {**_DATA, **_SELECTION, **_ENSEMBLE, **_TO_LABEL}),
        Step("04_append", {**_DATA, **_SELECTION, "batch_path": "03_annotate/batch.json"}),
        Step(_TRAIN, {"version_path": "04_append/version.json"}, label=_RETRAIN),
        Step(
            "05_evaluate",
            {"data_path": f"{_RETRAIN}/data.json", "ensemble_path": f"{_RETRAIN}/ensemble.json"},
        ),
    ),
    "rounds": (Step("30_active_learning_loop"),),
    # every arm over world seeds x pool blocks x fine-tuning seeds, with verdicts
    "experiment": (Step("40_experiment"),),
    # rounds from an experiment's models (its folder: -p experiment_dir=...), learning curves
    "curves": (Step("41_learning_curves"),),
    # label efficiency, new-frame share and the score's diagnostics of a finished experiment
    "efficiency": (Step("42_label_efficiency"),),
}


def recipe_steps(recipe: str) -> tuple[Step, ...]:
    """The steps of a named recipe (``ConfigError`` naming the known ones otherwise)."""
    if recipe not in RECIPES:
        raise ConfigError(f"unknown recipe {recipe!r}; choose from {sorted(RECIPES)}")
    return RECIPES[recipe]


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
        k.split(".", 1)[1]: v for k, v in overrides.items() if k.split(".", 1)[0] == step.name
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
    "RECIPES",
    "RUN_PREFIX",
    "Step",
    "check_overrides",
    "parse_assignments",
    "parse_value",
    "recipe_steps",
    "step_parameters",
]
