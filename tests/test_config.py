"""One configuration: every default written once, with one meaning.

Walks every config dataclass of the package and every profile: a field name that two configs
give two defaults must be listed here with the reason they mean different things; a profile
(or a recipe's change to one) that restates a default is a default written twice; a function
whose parameter is one of the tree's one-meaning names must not default it to another value;
and the plain-value form of the tree goes there and back.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import pkgutil

import pytest

import alkit
from alkit.config.profiles import PROFILES, RECIPE_PROFILES, defaults, profile_parameters
from alkit.config.tree import FLAT, RunConfig
from alkit.errors import ConfigError

#: (field, {config classes}) -> why the two defaults are two meanings, not one value twice
DIFFERENT_MEANINGS = {
    ("lr", frozenset({"TrainConfig", "RetrainConfig"})): "a member's peak rate vs a retraining's",
    ("warmup_steps", frozenset({"TrainConfig", "RetrainConfig"})): "a member's vs a retraining's",
    ("precision", frozenset({"TrainConfig", "ScoringConfig"})): "training's vs scoring's "
    "(None: as the members trained)",
    ("batch_size", frozenset({"EnsembleConfig", "ScoringConfig"})): "training vs scoring batch",
}

#: Names in the tree with one meaning wherever a function takes them.
ONE_MEANING = (
    "initial_stride", "test_stride", "pool_stride", "min_score", "classes_of_interest",
    "al_session_cap", "al_min_frame_gap", "al_div_session_cap", "al_div_min_frame_gap",
    "manual_subsequence", "n_members", "seconds_per_frame", "seconds_per_box", "world_seed",
    "n_rounds", "new_fraction", "retrain_steps", "kcenter_factor", "world_profile",
)  # fmt: skip


def _modules():
    for info in pkgutil.walk_packages(alkit.__path__, "alkit."):
        if info.name != "alkit.__main__":
            yield importlib.import_module(info.name)


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _plain(value) -> str:
    return json.dumps(list(value) if isinstance(value, tuple) else value, sort_keys=True,
                      default=repr)  # fmt: skip


def _config_classes():
    for module in _modules():
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and dataclasses.is_dataclass(obj)
                    and obj.__module__ == module.__name__
                    and name.endswith(("Config", "Settings", "CostModel"))):  # fmt: skip
                yield obj


def test_no_field_has_two_defaults_with_two_meanings():
    seen: dict[str, dict[str, object]] = {}
    for cls in _config_classes():
        for f in dataclasses.fields(cls):
            value = _default(f)
            if value is not dataclasses.MISSING and not dataclasses.is_dataclass(value):
                seen.setdefault(f.name, {})[cls.__name__] = value
    clashes = []
    for name, where in seen.items():
        if len({_plain(v) for v in where.values()}) > 1:
            groups = {frozenset(c for c in where if _plain(where[c]) == _plain(v))
                      for v in where.values()}  # fmt: skip
            owners = frozenset(where)
            if (name, owners) not in DIFFERENT_MEANINGS:
                clashes.append(f"{name}: {where} ({len(groups)} values)")
    assert not clashes, clashes
    assert seen["budget"]  # the walk found the configs (not an empty pass)
    assert {"RunConfig", "QueryConfig", "SelectionSettings", "TrainConfig"} <= {
        c.__name__ for c in _config_classes()
    }


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_profiles_are_differences_from_the_defaults(profile):
    base = defaults()
    restated = {k: v for k, v in PROFILES[profile].items() if k in base and base[k] == v}
    assert not restated, f"profile {profile!r} restates defaults: {restated}"
    for recipe, per_profile in RECIPE_PROFILES.items():
        plain = profile_parameters(profile)
        again = {k: v for k, v in per_profile.get(profile, {}).items() if plain.get(k) == v}
        assert not again, f"recipe {recipe!r} restates profile {profile!r}'s values: {again}"


def test_functions_default_a_one_meaning_name_as_the_tree_does():
    tree = RunConfig().values()
    wrong = []
    for module in _modules():
        for name, obj in vars(module).items():
            if not (inspect.isfunction(obj) and obj.__module__ == module.__name__):
                continue
            for p in inspect.signature(obj).parameters.values():
                if p.name in ONE_MEANING and p.default is not inspect.Parameter.empty:
                    if _plain(p.default) != _plain(tree[p.name]):
                        wrong.append(f"{module.__name__}.{name}({p.name}={p.default!r}), "
                                     f"the tree's default is {tree[p.name]!r}")  # fmt: skip
    assert not wrong, wrong


def test_the_plain_values_go_there_and_back():
    values = profile_parameters("full")
    run = RunConfig.from_values({k: v for k, v in values.items() if k in FLAT})
    assert run.ensemble.n_members == 8 and run.query.budget == 2000  # known: the full scale
    assert run.retraining.mode == "scratch" and run.world.world_profile == "full"
    assert run.query.selection.seed == run.ensemble.seed == values["seed"]  # one seed
    again = run.values()
    assert {k: again[k] for k in FLAT} == {k: values[k] for k in FLAT}
    assert RunConfig.from_values(RunConfig().values()) == RunConfig()
    with pytest.raises(ConfigError, match="budgett"):
        RunConfig.from_values({"budgett": 3})
