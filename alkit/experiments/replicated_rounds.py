"""Rounds of the replicated experiment: learning curves of AL, AL-div and RANDOM-night with
95% confidence intervals over world seeds, pool blocks and test sessions.

Per world seed it starts from the experiment's round-0 models in the same folder (the
scoring ensemble and REFERENCE, ``replicated.run_world``; trained there if missing) and,
in each of the first ``blocks`` pool blocks, runs ``n_rounds`` rounds per arm. Each round
the arm picks ``budget`` frames it has not labelled yet (AL and AL-div with the arm's own
ensemble: the round-0 members fine-tuned on the initial set + everything the arm labelled
so far), the oracle labels them, and REFERENCE is fine-tuned on the initial set + everything
the arm labelled so far and evaluated on the test set (its matches kept). Round 0 is
REFERENCE with the same extra steps on the initial set alone (the experiment's own
evaluation, reused). Everything lands in ``<out_dir>/world_<s>/rounds/``; a rerun reuses
the selections and evaluations made, and retrains an ensemble only for a round not picked
yet.

The analysis (``session_bootstrap``, arms named ``"<arm>@<round>"``): every arm's gain over
round 0 and every arm minus ``control`` in each round, with 95% intervals and verdicts; and
the share of labels AL needs to reach the control's final AP@0.5 (``label_share``).
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from alkit.errors import ConfigError
from alkit.experiments.replicated import (
    ExperimentConfig,
    learned_evaluation,
    pool_blocks,
    test_sessions,
    world_models,
)
from alkit.experiments.session_bootstrap import session_bootstrap
from alkit.experiments.stats import comparison_name
from alkit.experiments.tables import CURVE_COLUMNS, METHOD_COLORS, REFERENCE, write_csv_tables
from alkit.experiments.workers import run_world_seeds
from alkit.loop import Arm, acquire, retrain_members
from alkit.loop.frames import NoFrames
from alkit.loop.round import new_frames
from alkit.query.methods import SCORED_METHODS, check_methods

#: The arms of the learning curves; the last is the control the others are compared with.
ROUND_ARMS = ("AL", "AL-div", "RANDOM-night")


def selection_name(block: int, r: int, arm: str) -> str:
    """The name of an arm's round-``r`` selection (and scores) in a world's folder."""
    return f"rounds_b{block}_r{r}_{arm}"


def arm_at(arm: str, r: int) -> str:
    """``"AL@2"``: an arm after round ``r`` (round 0 is REFERENCE)."""
    return REFERENCE if r == 0 else f"{arm}@{r}"


@dataclass(frozen=True)
class WorldRounds:
    """One world seed's rounds: tidy ``results`` (``method`` = arm, ``round``, levels, class,
    metric, value), labelling ``costs`` per arm and round, ``matches`` keyed
    ``("<arm>@<round>", world, block, fine-tuning seed)``, the test frames' ``sessions`` and
    the size of the initial set."""

    results: pd.DataFrame
    costs: pd.DataFrame
    matches: dict
    sessions: dict[int, int]
    initial_frames: int = 0


def run_world_rounds(
    config: ExperimentConfig, seed: int, out_dir: Path, n_rounds: int, arms: Sequence[str],
    blocks: int, budget: int, progress: bool, log: Callable[[str], None],
) -> WorldRounds:  # fmt: skip
    """One world seed's rounds of ``budget`` frames (module docstring); ``out_dir`` is the
    experiment's ``world_<seed>`` folder."""
    c = config.world_config(seed)
    e = c.run.ensemble
    models = world_models(config, seed, out_dir, progress, log)
    setup, initial = models.setup, models.initial
    ctx = replace(models.ctx, query=c.run.query.with_budget(budget))
    rounds = out_dir / "rounds"
    (rounds / "evaluations").mkdir(parents=True, exist_ok=True)
    results, costs, matches = [], [], {}

    def evaluate(name: Path, version, part, b: int, f: int, method: str, r: int) -> None:
        what = method if r == 0 else f"{method}, round {r}"
        table, dets, truth = learned_evaluation(models, version, part, b, f, name, what, log)
        for arm in arms if r == 0 else [method]:
            matches[(arm_at(arm, r), seed, b, f)] = (dets, truth)
            results.append(table.assign(method=arm, round=r, world_seed=seed, pool_block=b,
                                        finetune_seed=f))  # fmt: skip

    for b, block in enumerate(pool_blocks(setup.pool, config.pool_blocks)[:blocks]):
        for f in config.finetune_seeds:  # round 0: the experiment's REFERENCE evaluation
            evaluate(out_dir / "evaluations" / f"block{b}_ft{f}_{REFERENCE}", initial,
                     NoFrames(), b, f, REFERENCE, 0)  # fmt: skip
        block_ctx = replace(ctx, pool=block)
        for arm in arms:
            done: list[int] = []
            scorers = list(models.trained.ensemble.members)
            version = initial
            for r in range(1, n_rounds + 1):
                name = selection_name(b, r, arm)
                shared = out_dir / "scores" / f"block{b}_AL"  # the round-0 ensemble's scores
                if r == 1 and arm in SCORED_METHODS and shared.exists():
                    shutil.copytree(shared, out_dir / "scores" / name, dirs_exist_ok=True)
                if not (out_dir / "selections" / f"{name}.json").exists():
                    log(f"world {seed}, block {b}: {arm} round {r}, QUERY, {len(done)} taken")
                picked = Arm(arm, seed=e.seed + 100 * b + r, name=name,
                             params={"round": r, "pool_block": b})  # fmt: skip
                # a selection picked by an earlier call with the same models is reused
                acquired = acquire(block_ctx, scorers, picked, version, taken=done, reuse=True)
                version, batch = acquired.version, acquired.batch
                costs.append({"method": arm, "round": r, "world_seed": seed, "pool_block": b,
                              "frames": len(batch), "boxes": batch.num_boxes,
                              "seconds": batch.total_seconds})  # fmt: skip
                done += acquired.frame_ids
                new = new_frames(ctx, version, done)
                for f in config.finetune_seeds:
                    evaluate(rounds / "evaluations" / f"block{b}_ft{f}_{arm}_r{r}", version, new,
                             b, f, arm, r)  # fmt: skip
                later = out_dir / "selections" / f"{selection_name(b, r + 1, arm)}.json"
                if arm in SCORED_METHODS and r < n_rounds and not later.exists():
                    log(f"world {seed}, block {b}: {arm} round {r}, retrain its ensemble")
                    seeds = [e.seed * 1000 + 10 * r + i for i in range(len(scorers))]
                    scorers = retrain_members(ctx, models.scorers(), version, new, seeds)
    return WorldRounds(pd.concat(results, ignore_index=True), pd.DataFrame(costs), matches,
                       test_sessions(setup.world, models.test_ids),
                       len(initial.frame_ids))  # fmt: skip


def label_share(curves: pd.DataFrame, arm: str, control: str, metric: str = "AP50") -> pd.DataFrame:
    """Per class: the new frames ``arm`` needs (its mean curve, linear between rounds) to
    reach ``control``'s final value, as a share of the control's final new frames. NaN, with
    the reason in ``note``, where it does not within the rounds, or where the control ends no
    higher than round 0 (then there is nothing to reach)."""
    rows = []
    part = curves[curves.metric == metric]
    for cls, group in part.groupby("class", sort=False):
        ctrl = group[group.method == control].sort_values("round")
        own = group[group.method == arm].sort_values("round")
        target, total = float(ctrl.value.iloc[-1]), float(ctrl.new_frames.iloc[-1])
        x, y = own.new_frames.to_numpy(float), own.value.to_numpy(float)
        needed, note = np.nan, "not reached within the rounds"
        if target <= y[0]:
            note = "the control ends no higher than round 0"
        else:
            for i in range(1, len(y)):
                if y[i] >= target:
                    needed = x[i - 1] + (target - y[i - 1]) / (y[i] - y[i - 1]) * (x[i] - x[i - 1])
                    note = "reached"
                    break
        rows.append({"method": arm, "control": control, "class": cls, "metric": metric,
                     "control_final": target, "control_frames": total, "frames_needed": needed,
                     "share": needed / total, "note": note})  # fmt: skip
    return pd.DataFrame(rows)


def curves_figure(curves: pd.DataFrame, metric: str = "AP50") -> Figure:
    """Per class (one panel each): each arm's gain in ``metric`` over round 0 against the new
    frames it labelled, with 95% intervals."""
    part = curves[curves.metric == metric]
    classes = list(dict.fromkeys(part["class"]))
    fig = Figure(figsize=(4.2 * len(classes), 3.4))
    axes = np.atleast_1d(fig.subplots(1, len(classes), sharey=True))
    for ax, cls in zip(axes, classes, strict=True):
        ax.axhline(0, color="black", lw=0.8)
        for k, (arm, g) in enumerate(part[part["class"] == cls].groupby("method", sort=False)):
            g = g.sort_values("round")
            x = g.new_frames.to_numpy(float) + (k - 1) * 1.2  # side by side
            ax.errorbar(x, g.gain, yerr=[g.gain - g.ci_low, g.ci_high - g.gain], marker="o",
                        ms=4, capsize=2, color=METHOD_COLORS.get(arm), label=arm)  # fmt: skip
        ax.set_title(cls, fontsize=9)
        ax.set_xlabel("new labelled frames")
    axes[0].set_ylabel(f"{metric} gain over REFERENCE (95% CI)")
    axes[-1].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def run_rounds_experiment(
    config: ExperimentConfig, experiment_dir: str | Path, out_dir: str | Path | None = None,
    n_rounds: int = 3,
    arms: Sequence[str] = ROUND_ARMS, blocks: int = 1, budget: int | None = None,
    workers: int = 1, progress: bool = True, log: Callable[[str], None] = print,
) -> dict[str, pd.DataFrame]:  # fmt: skip
    """Every world seed's rounds (``run_world_rounds``) in the folder of the experiment
    ``config`` (``experiment_dir``: its ``world_<s>`` folders, models and scores), then the
    analysis; writes ``rounds_results.csv``, ``rounds_costs.csv``, ``curves.csv``,
    ``rounds_verdicts.csv``, ``label_share.csv`` and ``learning_curves.png`` into
    ``out_dir`` (default: ``experiment_dir``). The last of ``arms`` is the control;
    ``budget``: frames per round (None: the experiment's budget spread over the rounds, so
    the last round has labelled as many as one selection of the experiment); ``workers`` > 1
    runs world seeds at once, one CPU thread each."""
    arms = check_methods(arms)
    if n_rounds < 1 or not 1 <= blocks <= config.pool_blocks or len(arms) < 2:
        raise ConfigError(f"need n_rounds >= 1 (got {n_rounds}), 1 <= blocks <= pool_blocks "
                          f"(got {blocks}) and at least 2 arms (got {list(arms)})")  # fmt: skip
    budget = budget or config.world_config(config.world_seeds[0]).run.query.budget // n_rounds
    if budget < 1:
        raise ConfigError(f"budget per round must be >= 1, got {budget}")
    worlds, out = Path(experiment_dir), Path(out_dir or experiment_dir)
    out.mkdir(parents=True, exist_ok=True)
    args = (n_rounds, tuple(arms), blocks, budget)
    run = functools.partial(run_world_rounds, config)
    parts = run_world_seeds(run, config.world_seeds, worlds, args, workers, progress, log)
    results = pd.concat([p.results for p in parts], ignore_index=True)
    results["new_frames"] = results["round"] * budget
    classes = list(config.world_config(config.world_seeds[0]).run.query.classes_of_interest)
    control = arms[-1]
    gains = [(arm_at(a, r), REFERENCE) for a in arms for r in range(1, n_rounds + 1)]
    versus = [(arm_at(a, r), arm_at(control, r))
              for a in arms[:-1] for r in range(1, n_rounds + 1)]  # fmt: skip
    log(f"bootstrap: {config.n_resamples} resamples of world seeds, pool blocks, test sessions")
    boot = session_bootstrap(
        {k: v for p in parts for k, v in p.matches.items()},
        {s: p.sessions for s, p in zip(config.world_seeds, parts, strict=True)},
        gains + versus, classes, config.margin, config.n_resamples,
    ).verdicts  # fmt: skip
    # the curves: mean over replicates (pycocotools' AP@0.5), gain and interval (bootstrap)
    wanted = (results.metric == "AP50") & results["class"].isin(classes)
    by = ["method", "round", "new_frames", "class", "metric"]
    mean = results[wanted].groupby(by, sort=False)[["value", "n_gt"]].mean().reset_index()
    initial = parts[0].initial_frames  # the same initial set size in every world
    gain = boot[boot.metric == "AP50"].set_index(["comparison", "class"])
    rows = []
    for row in mean.to_dict("records"):
        g = {"diff": 0.0, "ci_low": 0.0, "ci_high": 0.0}  # round 0 is REFERENCE itself
        if row["round"] > 0:
            g = gain.loc[(comparison_name(arm_at(row["method"], row["round"]), REFERENCE),
                          row["class"])]  # fmt: skip
        rows.append({**row, "labelled_frames": initial + row["new_frames"],
                     "test_set": config.test_set, "gain": g["diff"], "ci_low": g["ci_low"],
                     "ci_high": g["ci_high"], "version": ""})  # fmt: skip
    curves = pd.DataFrame(rows)[list(CURVE_COLUMNS)]
    share = pd.concat([label_share(curves, a, control) for a in arms[:-1]], ignore_index=True)
    verdicts = boot[boot.comparison.isin([comparison_name(a, b) for a, b in versus])]
    costs = pd.concat([p.costs for p in parts], ignore_index=True)
    tables = {"rounds_results": results, "rounds_costs": costs, "curves": curves,
              "rounds_verdicts": verdicts, "label_share": share}  # fmt: skip
    write_csv_tables(out, tables)
    curves_figure(curves).savefig(out / "learning_curves.png", dpi=110)
    return tables


__all__ = [
    "CURVE_COLUMNS",
    "ROUND_ARMS",
    "arm_at",
    "curves_figure",
    "label_share",
    "run_rounds_experiment",
    "run_world_rounds",
]
