"""The runs behind ``docs/experiment/leverage*.csv`` and ``leverage.png`` (issue 19, item 1).

    .venv/bin/python docs/experiment/leverage_runs.py VARIANT WORLD [JOB ...]   # one process
    .venv/bin/python docs/experiment/leverage_runs.py --tables                  # the outputs

A job is ``<retrain>:<budgets>:<seeds>``, e.g. ``natural:0,100,300,1000:0,1,2`` or
``nf0.5:300:0,1,2``; each evaluation is saved under ``runs/leverage/<variant>/`` and a rerun
skips it. World seeds 0-3 only (10 and up are kept for checks from outside).

The variants are the experiment's quick recipe (``RECIPE_PROFILES["experiment"]["quick"]``:
width 8, depth 3, stride 2, REFERENCE 8 epochs, seed 4) on a world profile; RANDOM-night
reads no scores, so the scoring ensemble is one member trained a single step (REFERENCE is
trained apart, with the experiment's schedule and seed: ``seed + n_members`` = 3 + 1).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd
import torch

from alkit.config.profiles import profile_parameters
from alkit.ensemble.retrain import RetrainConfig
from alkit.experiments.leverage import (
    leverage_curve,
    leverage_figure,
    leverage_summary,
    saved_curve,
)
from alkit.experiments.replicated import ExperimentConfig

ROOT = Path(__file__).resolve().parents[2]
RUNS = ROOT / "runs" / "leverage"
DOCS = ROOT / "docs" / "experiment"

#: variant -> (world profile, ``ABConfig`` overrides)
VARIANTS = {
    "night": ("night", {}),  # the experiment's world now: 20 night drives of 40 initial
    "night_lean": ("night_lean", {}),  # 6 night drives of 40 initial, pool of 300 drives
}
#: the budgets whose versions nest (every run of a variant builds its versions on these)
LADDER = (0, 100, 300, 1000)
#: retraining name -> RetrainConfig (``min_epochs=1``: at least one epoch of the union)
RETRAININGS = {
    "natural": RetrainConfig(steps=60, new_fraction="natural", min_epochs=1),
    "natural_e3": RetrainConfig(steps=60, new_fraction="natural", min_epochs=3),
    "nf0.5": RetrainConfig(steps=60, new_fraction=0.5, min_epochs=1),
    # the same-length control: budget 0 trained as many steps as budget 1,000 takes under
    # "natural" (one epoch of the 2,000 + 1,000 frames at the batch of 16: 188 steps)
    "natural_s188": RetrainConfig(steps=188, new_fraction="natural", min_epochs=1),
}


def config(variant: str, world: int) -> ExperimentConfig:
    if world >= 10:
        raise SystemExit("world seeds >= 10 are kept for checks from outside")
    profile, overrides = VARIANTS[variant]
    values = profile_parameters("quick", recipe="experiment") | {"world_profile": profile}
    ab_fields = ExperimentConfig.__dataclass_fields__
    ab = {k: v for k, v in values.items() if k not in ab_fields and k in _AB_FIELDS}
    ab |= {"n_members": 1, "seed": 3, **overrides}
    # the scorer is not used by RANDOM-night: one step; REFERENCE keeps the 8 epochs
    ab["train"] = {**ab["train"], "max_steps": 1}
    reference = {**values["reference_train"], "max_steps": -1}
    return ExperimentConfig(ab=ab, reference_train=reference, world_seeds=(world,),
                            finetune_seeds=(0,), arms=("RANDOM-night",),
                            test_set=values["test_set"])  # fmt: skip


def _ab_fields() -> set[str]:
    from alkit.experiments.abtest import ABConfig

    return ABConfig.names()


_AB_FIELDS = _ab_fields()


def run(variant: str, world: int, jobs: list[str]) -> None:
    torch.set_num_threads(1)
    cfg = config(variant, world)
    start = time.time()

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')} +{(time.time() - start) / 60:5.1f} min] {msg}",
              flush=True)  # fmt: skip

    for job in jobs:
        name, budgets, seeds = job.split(":")
        rows = leverage_curve(cfg, [int(b) for b in budgets.split(",")],
                              [int(s) for s in seeds.split(",")], RUNS / variant,
                              ladder=LADDER, retraining=RETRAININGS[name], variant=variant,
                              log=log)  # fmt: skip
        ap = rows[rows.metric == "AP50"].groupby(["budget", "class"]).value.agg(["mean", "std"])
        log(f"done {job}:\n{ap}")


def tables() -> None:
    """Every saved evaluation of every variant and retraining (nothing trains), with the rows
    of ``leverage.csv`` that no saved evaluation here replaces (runs of earlier sessions,
    whose ``runs/`` folders are gone); where both hold a row, says how far they differ."""
    parts = [saved_curve(RUNS / variant, retraining, config(variant, 0).test_set,
                         variant=variant)
             for variant in VARIANTS for retraining in RETRAININGS.values()]  # fmt: skip
    fresh = pd.concat([p for p in parts if len(p)], ignore_index=True)
    key = ["variant", "retrain", "world_seed", "budget", "finetune_seed", "class", "metric"]
    rows = fresh
    if (DOCS / "leverage.csv").exists():
        kept = pd.read_csv(DOCS / "leverage.csv")
        both = kept.merge(fresh, on=key, suffixes=("_kept", "_fresh"))
        if len(both):
            gap = (both.value_kept - both.value_fresh).abs().max()
            print(f"{len(both)} rows rerun: largest difference to the kept value {gap:.3g}")
        fresh_keys = fresh.set_index(key).index
        rows = pd.concat([kept[~kept.set_index(key).index.isin(fresh_keys)], fresh])
    rows = rows.sort_values(key, ignore_index=True)
    rows.to_csv(DOCS / "leverage.csv", index=False)
    summary = leverage_summary(rows)
    summary.to_csv(DOCS / "leverage_summary.csv", index=False)
    leverage_figure(rows).savefig(DOCS / "leverage.png", dpi=110)
    print(summary.to_string())


if __name__ == "__main__":
    if sys.argv[1] == "--tables":
        tables()
    else:
        run(sys.argv[1], int(sys.argv[2]), sys.argv[3:])
