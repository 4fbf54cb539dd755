"""After the experiment, from its kept models and selections: label efficiency and the
sensitivity to the share of new frames per batch (nothing is scored or selected again).

**Label efficiency.** REFERENCE is retrained on the first ``n`` picks of each arm's selection
(in pick order, APPENDed to the initial version as a version of their own) for every ``n``
of ``budgets``, with the experiment's retraining and the same seed as the arm's full budget
(paired). With budget 0 (REFERENCE) and the full budget of the experiment this gives each
arm's learning curve: the gain in AP@0.5 over REFERENCE at each budget, with 95% intervals
from the experiment's crossed bootstrap (world seeds, pool blocks, fine-tuning seeds, test
sessions shared by every arm of a world). ``labels_to_match`` reads off each arm's curve
(linear between the measured budgets) the frames it needs to reach RANDOM-night's gain at the
full budget, and ``seconds_per_point`` the labelling seconds per AP point gained.

**The share of new frames** (``new_fraction``): the experiment retrains as the seed did (every
frame of the union alike); ``sensitivity_arms`` are also retrained with ``new_fraction`` of
every batch drawn from the new frames (the earlier design's 0.5), and the paired difference of
the first two (AL vs RANDOM-night) is reported under both.

Writes evaluations beside the experiment's own (``world_<s>/evaluations/
block<b>_ft<f>_<arm>_first<n>`` and ``..._<arm>_nf<share>``; a rerun skips them), and into
its ``out_dir``: ``efficiency.csv`` (``arm, budget, class, metric, gain, ci_low, ci_high,
frames, seconds``), ``efficiency_summary.csv`` (per arm and class: ``labels_to_match``,
``seconds_per_point``), ``sensitivity.csv`` (verdict rows), ``score_diagnostics.csv``,
``pick_layout.csv`` and ``efficiency.png``.

**Diagnostics of the score and of the picks** (``alkit.experiments.diagnostics``), per world
and pool block: on ``diagnostic_frames`` scored frames, the share of each class's MI that falls
inside its ground-truth boxes beside the share of the cells those boxes cover (what MI spread
evenly would give), and the rank correlation of the mean-MI and peaks scores with hard-case
objects given the object count (partial) beside the raw ones (``score_diagnostics.csv``);
and for every arm the sessions its picks come from and its pairs of neighbouring frames
(``pick_layout.csv``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from torch.utils.data import DataLoader

from alkit.data.datasets import VirtualFrames, collate_frames
from alkit.errors import ConfigError
from alkit.experiments.diagnostics import (
    box_cells,
    mi_share_in_boxes,
    partial_spearman,
    pick_layout,
)
from alkit.experiments.replicated import (
    ExperimentConfig,
    _evaluated,
    analysis_plan,
    experiment_config,
    hard_cases,
    learned_evaluation,
    pool_blocks,
    test_sessions,
    world_models,
)
from alkit.experiments.session_bootstrap import session_bootstrap
from alkit.experiments.stats import spearman
from alkit.experiments.tables import REFERENCE, write_csv_tables
from alkit.experiments.workers import run_world_seeds
from alkit.loop import Arm
from alkit.loop.round import acquired_as, appended_prefix, new_frames
from alkit.query.score import mi_heatmaps, read_scores
from alkit.query.selection import load_selection

#: The arms whose learning curves are measured: the field's acquisitions, the control and
#: the ceiling.
EFFICIENCY_ARMS = ("AL", "AL-peaks", "AL-kcenter", "RANDOM-night", "ORACLE")


@dataclass(frozen=True)
class FollowUpConfig:
    """``budgets``: the prefixes (frames) each of ``curve_arms`` is also retrained on;
    ``finetune_seeds``: a subset of the experiment's; ``sensitivity_arms`` retrained with
    ``new_fraction`` of each batch from the new frames; ``n_resamples`` of the bootstrap;
    ``diagnostic_frames`` scored frames per block for the score's diagnostics;
    ``only_world_seeds``: some of the experiment's (``None``: all), e.g. those already finished."""

    budgets: tuple[int, ...] = (250, 500)
    curve_arms: tuple[str, ...] = EFFICIENCY_ARMS
    finetune_seeds: tuple[int, ...] = (0, 1)
    sensitivity_arms: tuple[str, ...] = ("AL", "RANDOM-night")
    new_fraction: float = 0.5
    n_resamples: int = 2000
    diagnostic_frames: int = 300
    only_world_seeds: tuple[int, ...] | None = None


def prefix_name(arm: str, n: int) -> str:
    """The method name of an arm cut to its first ``n`` picks, e.g. ``AL (first 250)``."""
    return f"{arm} (first {n})"


def share_name(arm: str, share: float) -> str:
    """The method name of an arm retrained with ``share`` new frames per batch."""
    return f"{arm} (new_fraction {share:g})"


def _check(config: ExperimentConfig, follow: FollowUpConfig) -> None:
    budget = config.world_config(config.world_seeds[0]).run.query.budget
    wrong = [n for n in follow.budgets if not 0 < n < budget]
    if wrong:
        raise ConfigError(f"follow-up budgets {wrong} must lie between 0 and the budget {budget}")
    missing = sorted((set(follow.curve_arms) | set(follow.sensitivity_arms)) - set(config.arms))
    if missing:
        raise ConfigError(f"arms {missing} are not in the experiment (its arms: {config.arms})")
    seeds = sorted(set(follow.finetune_seeds) - set(config.finetune_seeds))
    if seeds:
        raise ConfigError(f"fine-tuning seeds {seeds} are not the experiment's")
    worlds = sorted(set(follow.only_world_seeds or ()) - set(config.world_seeds))
    if worlds:
        raise ConfigError(f"world seeds {worlds} are not the experiment's")


def run_world_followups(
    config: ExperimentConfig, follow: FollowUpConfig, seed: int, out_dir: Path,
    progress: bool, log: Callable,
) -> tuple[dict, list[dict], dict[int, int], pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """One world: ``(matches, costs, test sessions, score diagnostics, pick layout)``: the
    matches of the prefixes, the shares and the experiment's own evaluations they are
    compared with."""
    models = world_models(config, seed, out_dir, progress, log)
    e = config.world_config(seed).run.ensemble
    shares = replace(models, ctx=replace(models.ctx, retraining=replace(
        models.ctx.retraining, new_fraction=follow.new_fraction)))  # fmt: skip
    evals = out_dir / "evaluations"
    classes = list(config.world_config(seed).run.query.classes_of_interest)
    matches, costs, diagnostics, layouts = {}, [], [], []

    def kept(name: str, b: int, f: int, file: str) -> None:
        def missing():
            raise ConfigError(f"{evals / file} is missing: finish the experiment first")

        _, dets, truth = _evaluated(evals / file, missing)
        matches[(name, seed, b, f)] = (dets, truth)

    for b, block in enumerate(pool_blocks(models.setup.pool, config.pool_blocks)):
        ctx = replace(models.ctx, pool=block)
        arms, paths, selections = {}, {}, {}
        for method in config.arms:
            arms[method] = arm = Arm(method, seed=e.seed + b, name=f"block{b}_{{method}}",
                                     params={"pool_block": b})  # fmt: skip
            paths[method] = path = ctx.out_dir / "selections" / f"{arm.file_name}.json"
            if not path.exists():
                raise ConfigError(f"{path} is missing: finish the experiment first")
            selections[method] = load_selection(str(path))
        layouts.append(picks_layout(models.setup.world, selections)
                       .assign(world_seed=seed, pool_block=b))  # fmt: skip
        scored = read_scores(str(ctx.out_dir / "scores" / f"block{b}_AL"))
        diag = score_diagnostics(models, scored, classes, follow.diagnostic_frames, seed=b)
        diagnostics.append(diag.assign(world_seed=seed, pool_block=b))
        got = {}
        for method in dict.fromkeys((*follow.curve_arms, *follow.sensitivity_arms)):
            got[method] = acquired_as(ctx, arms[method], selections[method], paths[method],
                                      models.initial)  # fmt: skip
        prefixes = {(method, n): appended_prefix(ctx, got[method], n, models.initial,
                                                 prefix_name(method, n))
                    for method in follow.curve_arms for n in follow.budgets}  # fmt: skip
        for method in follow.curve_arms:
            seconds = got[method].batch.seconds
            for n in follow.budgets:
                costs.append({"arm": method, "world_seed": seed, "pool_block": b, "budget": n,
                              "seconds": float(seconds[:n].sum())})  # fmt: skip
            costs.append({"arm": method, "world_seed": seed, "pool_block": b,
                          "budget": len(seconds), "seconds": float(seconds.sum())})  # fmt: skip
        for f in follow.finetune_seeds:
            for method in (
                REFERENCE,
                *dict.fromkeys((*follow.curve_arms, *follow.sensitivity_arms)),
            ):
                kept(method, b, f, f"block{b}_ft{f}_{method}")
            for method in follow.curve_arms:
                for n in follow.budgets:
                    version = prefixes[(method, n)]
                    part = new_frames(ctx, version, got[method].frame_ids[:n])
                    file = evals / f"block{b}_ft{f}_{method}_first{n}"
                    _, dets, truth = learned_evaluation(models, version, part, b, f, file,
                                                        prefix_name(method, n), log)  # fmt: skip
                    matches[(prefix_name(method, n), seed, b, f)] = (dets, truth)
            for method in follow.sensitivity_arms:
                a = got[method]
                name = share_name(method, follow.new_fraction)
                file = evals / f"block{b}_ft{f}_{method}_nf{follow.new_fraction:g}"
                part = new_frames(ctx, a.version, a.frame_ids)
                _, dets, truth = learned_evaluation(shares, a.version, part, b, f, file, name,
                                                    log)  # fmt: skip
                matches[(name, seed, b, f)] = (dets, truth)
    sessions = test_sessions(models.setup.world, models.test_ids)
    return matches, costs, sessions, pd.concat(diagnostics), pd.concat(layouts)


def score_diagnostics(
    models, scored: pd.DataFrame, classes, n_frames: int, seed: int = 0, batch_size: int = 32
) -> pd.DataFrame:
    """Per class of interest, on up to ``n_frames`` of the ``scored`` frames (the score shards'
    table): the mean share of the class's MI inside its ground-truth boxes over the frames
    that hold the class, beside the mean share of cells those boxes cover; and Spearman's
    correlation of the mean-MI and peaks scores with the frame's hard-case objects, raw and
    given its object count (``partial_spearman``)."""
    world, ensemble = models.setup.world, models.trained.ensemble
    sample = scored.sample(min(n_frames, len(scored)), random_state=seed).set_index("frame_id")
    frames = [world.frame(int(f)) for f in sample.index]
    loader = DataLoader(VirtualFrames(world, list(sample.index)), batch_size=batch_size,
                        collate_fn=collate_frames)  # fmt: skip
    members = list(ensemble.members)
    mi = np.concatenate([mi_heatmaps(members, b["image"]).float().numpy() for b in loader])
    h, w = mi.shape[-2:]  # [N, C, h, w] nats
    stride = frames[0].image.shape[1] / w
    share = mi_share_in_boxes(mi, [f.boxes for f in frames], [f.labels for f in frames], stride)
    rows = []
    for cls in classes:
        ci = list(ensemble.classes).index(cls)
        count = np.array([int((f.labels == ci).sum()) for f in frames])
        hard = np.array([hard_cases(f, ci) for f in frames])
        area = np.array([box_cells(f.boxes[f.labels == ci], (h, w), stride).mean() for f in frames])
        held = count > 0
        row = {"class": cls, "frames": len(frames), "frames_with_class": int(held.sum()),
               "mi_share_in_boxes": float(np.nanmean(share[held, ci])) if held.any() else np.nan,
               "box_area_share": float(area[held].mean()) if held.any() else np.nan}  # fmt: skip
        for kind, column in (("mean", cls), ("peaks", f"{cls}__peaks")):
            if column not in sample:
                continue
            score = sample[column].to_numpy()
            row[f"spearman_{kind}_vs_objects"] = spearman(score, count)
            row[f"spearman_{kind}_vs_hard"] = spearman(score, hard)
            row[f"partial_{kind}_vs_hard_given_objects"] = partial_spearman(score, hard, count)
        rows.append(row)
    return pd.DataFrame(rows)


def picks_layout(world, selections: dict) -> pd.DataFrame:
    """``pick_layout`` of every arm's picks (``{method: SelectionRecord}``)."""
    picks = pd.DataFrame(
        [
            {"method": m, "session_id": world.locate(f)[0], "frame_index": world.locate(f)[1]}
            for m, sel in selections.items()
            for f in sel.frame_ids
        ]  # fmt: skip
    )
    return pick_layout(picks)


def labels_to_match(budgets: Sequence[float], gains: Sequence[float], target: float) -> float:
    """The frames at which a curve through ``(budgets, gains)`` (budget order, linear between
    points) first reaches ``target``; ``inf`` if it never does."""
    x, y = np.asarray(budgets, float), np.asarray(gains, float)
    for i in range(len(x)):
        if y[i] >= target:
            if i == 0 or y[i] == y[i - 1]:
                return float(x[i])
            return float(x[i - 1] + (target - y[i - 1]) * (x[i] - x[i - 1]) / (y[i] - y[i - 1]))
    return float("inf")


def run_followups(
    experiment_dir: str | Path, follow: FollowUpConfig = FollowUpConfig(),
    out_dir: str | Path | None = None, workers: int = 1, progress: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, pd.DataFrame]:  # fmt: skip
    """The follow-ups of the finished experiment in ``experiment_dir`` (see the module
    docstring): evaluations beside the experiment's, tables and figure into ``out_dir``
    (default: the experiment's folder)."""
    experiment = Path(experiment_dir)
    config = experiment_config(experiment)
    _check(config, follow)
    out = Path(out_dir) if out_dir is not None else experiment
    out.mkdir(parents=True, exist_ok=True)
    run = functools.partial(run_world_followups, config, follow)
    worlds = tuple(follow.only_world_seeds or config.world_seeds)
    parts = run_world_seeds(run, worlds, experiment, (), workers, progress, log)
    matches = {k: v for p in parts for k, v in p[0].items()}
    sessions = {s: p[2] for s, p in zip(worlds, parts, strict=True)}
    costs = pd.DataFrame([c for p in parts for c in p[1]])
    budget = config.world_config(config.world_seeds[0]).run.query.budget
    classes = list(config.world_config(config.world_seeds[0]).run.query.classes_of_interest)
    curve = [(prefix_name(a, n), a, n) for a in follow.curve_arms for n in follow.budgets]
    curve += [(a, a, budget) for a in follow.curve_arms]
    first, second = (follow.sensitivity_arms + (None, None))[:2]
    pairs = (
        [
            (first, second),
            (share_name(first, follow.new_fraction), share_name(second, follow.new_fraction)),
        ]
        if second
        else []
    )
    comparisons = [(name, REFERENCE) for name, _, _ in curve] + pairs
    log(f"bootstrap: {follow.n_resamples} resamples of world seeds, pool blocks, test sessions")
    boot = session_bootstrap(matches, sessions, comparisons, classes, config.margin,
                             follow.n_resamples, plan=analysis_plan(follow.curve_arms))  # fmt: skip
    v = boot.verdicts
    rows = []
    seconds = costs.groupby(["arm", "budget"]).seconds.mean()
    for name, arm, n in curve:
        found = v[(v.comparison == f"{name} vs {REFERENCE}") & (v.metric == "AP50")]
        for r in found.to_dict("records"):
            rows.append({"arm": arm, "budget": n, "class": r["class"], "metric": "AP50",
                         "gain": r["diff"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                         "frames": n, "seconds": float(seconds[(arm, n)])})  # fmt: skip
    zero = [{"arm": a, "budget": 0, "class": c, "metric": "AP50", "gain": 0.0, "ci_low": 0.0,
             "ci_high": 0.0, "frames": 0, "seconds": 0.0}
            for a in follow.curve_arms for c in classes]  # fmt: skip
    efficiency = pd.DataFrame(zero + rows).sort_values(["arm", "class", "budget"])
    summary = efficiency_summary(efficiency, budget)
    sensitivity = v[v.comparison.isin([f"{a} vs {b}" for a, b in pairs])]
    diagnostics = pd.concat([p[3] for p in parts], ignore_index=True)
    layout = pd.concat([p[4] for p in parts], ignore_index=True)
    tables = {"efficiency": efficiency, "efficiency_summary": summary, "sensitivity": sensitivity,
              "score_diagnostics": diagnostics, "pick_layout": layout}  # fmt: skip
    write_csv_tables(out, tables)
    efficiency_figure(efficiency).savefig(out / "efficiency.png", dpi=110)
    return tables


def efficiency_summary(efficiency: pd.DataFrame, budget: int) -> pd.DataFrame:
    """Per arm and class: the frames it needs to reach RANDOM-night's gain at ``budget``
    (``labels_to_match``), and the labelling seconds per AP point (x 100) at ``budget``."""
    rows = []
    for (arm, cls), curve in efficiency.groupby(["arm", "class"]):
        target = efficiency[(efficiency.arm == "RANDOM-night") & (efficiency["class"] == cls)
                            & (efficiency.budget == budget)].gain  # fmt: skip
        full = curve[curve.budget == budget].iloc[0]
        points = 100 * full.gain
        match = labels_to_match(curve.budget, curve.gain, float(target.iloc[0])) \
            if len(target) else float("nan")  # fmt: skip
        per_point = full.seconds / points if points > 0 else np.inf
        rows.append({"arm": arm, "class": cls, "gain_at_budget": full.gain,
                     "labels_to_match": match, "seconds_per_point": per_point})  # fmt: skip
    return pd.DataFrame(rows)


def efficiency_figure(efficiency: pd.DataFrame) -> Figure:
    """Each arm's gain over REFERENCE against the frames labelled, one panel per class, with
    95% intervals."""
    classes = sorted(efficiency["class"].unique())
    fig = Figure(figsize=(5 * len(classes), 3.6))
    for i, cls in enumerate(classes):
        ax = fig.add_subplot(1, len(classes), i + 1)
        for arm, curve in efficiency[efficiency["class"] == cls].groupby("arm"):
            ax.errorbar(curve.budget, curve.gain,
                        yerr=[curve.gain - curve.ci_low, curve.ci_high - curve.gain],
                        marker="o", capsize=3, label=arm)  # fmt: skip
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_title(f"{cls}: night AP@0.5 gain over REFERENCE")
        ax.set_xlabel("frames labelled")
        if i == 0:
            ax.set_ylabel("gain (AP)")
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


__all__ = [
    "EFFICIENCY_ARMS",
    "FollowUpConfig",
    "efficiency_figure",
    "efficiency_summary",
    "labels_to_match",
    "prefix_name",
    "run_followups",
    "share_name",
]
