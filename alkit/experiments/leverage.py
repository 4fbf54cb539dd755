"""Do labels have leverage? RANDOM-night's learning curve, measured before any arm runs.

An acquisition can be seen to win only where labels move the learner: the budget of random
night frames must raise REFERENCE's night AP@0.5 by several times its fine-tuning noise (the
spread over fine-tuning seeds on identical data). :func:`leverage_curve` measures both with
the experiment's own loop (``alkit.loop``): per world seed, the experiment's scoring ensemble
and REFERENCE (``replicated.world_models``), then RANDOM-night acquisitions APPENDed in turn
(budget 100 is the first 100 picks' version, 300 adds 200 more to it, ...: a nested curve,
every version a child of the one before), and REFERENCE retrained on each version with each
fine-tuning seed (``learn``) and evaluated on the experiment's test set. Budget 0 is
REFERENCE's own control: the initial version, retrained the same way with no new frames.
The fine-tuning seed of a replicate is the same at every budget (paired).

Retraining is ``retraining`` (default: as the seed did, every frame of the union weighed
alike, at least one epoch of the union: ``RetrainConfig(new_fraction="natural",
min_epochs=1)``). Each evaluation is saved under
``<out_dir>/world_<s>/leverage/<retrain tag>/`` and a rerun skips it.

:func:`leverage_summary` reduces the tidy rows to mean AP@0.5 per budget, its sd over
fine-tuning seeds, the gain over budget 0 and the gain in units of the noise (the pooled sd
over seeds); :func:`leverage_figure` draws the curve.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from alkit.data import storage
from alkit.data.versions import DatasetVersion
from alkit.ensemble.retrain import NATURAL, RetrainConfig
from alkit.errors import ConfigError
from alkit.experiments.replicated import ExperimentConfig, WorldModels, world_models
from alkit.loop import Arm, learn
from alkit.loop.frames import NoFrames
from alkit.loop.round import acquire, new_frames

#: The seed's retraining: every frame of the union alike, at least one epoch of it.
SEED_RETRAINING = RetrainConfig(new_fraction="natural", min_epochs=1)
#: The tidy rows' columns.
COLUMNS = ("variant", "retrain", "world_seed", "budget", "finetune_seed", "class", "metric",
           "value", "n_gt", "version")  # fmt: skip
#: The arm whose learning curve is measured.
ARM = "RANDOM-night"


def retrain_tag(config: RetrainConfig) -> str:
    """A short name of a retraining, e.g. ``finetune_natural_e1_s60`` (file and table key)."""
    share = "natural" if config.new_fraction in NATURAL else f"nf{float(config.new_fraction):g}"
    epochs = "" if config.min_epochs is None else f"_e{config.min_epochs:g}"
    return f"{config.mode}_{share}{epochs}_s{config.steps}_lr{config.lr:g}"


def _check_budgets(budgets: Sequence[int]) -> list[int]:
    out = sorted({int(b) for b in budgets})
    if not out or out[0] < 0:
        raise ConfigError(f"budgets must be non-negative frame counts, got {list(budgets)}")
    return out


def nested_versions(
    models: WorldModels, budgets: Sequence[int], pool=None, seed: int = 0
) -> dict[int, DatasetVersion]:
    """``{budget: version}``: budget 0 is the initial version; each larger budget is the one
    before plus ``budget - previous`` more RANDOM-night frames (``acquire`` with the frames
    already taken left out), APPENDed as its child. ``pool``: what they are drawn from
    (default the context's). The same ``budgets`` (the ladder) give the same versions, bit
    for bit; a selection saved already is reused."""
    ctx = models.ctx if pool is None else replace(models.ctx, pool=pool)
    versions = {0: models.initial}
    parent, previous = models.initial, 0
    for budget in _check_budgets(budgets):
        if budget == 0:
            continue
        step = replace(ctx, query=ctx.query.with_budget(budget - previous))
        arm = Arm(ARM, seed=1000 * models.seed + 7919 * seed + budget,
                  name=f"leverage_{{method}}_s{seed}_b{budget}",
                  params={"leverage_budget": budget})  # fmt: skip
        taken = set(parent.frame_ids) - set(models.initial.frame_ids)
        # RANDOM-night reads no scores: the ensemble only names the selection's scorer
        got = acquire(step, models.trained.ensemble, arm, parent, taken=taken, reuse=True)
        versions[budget] = parent = got.version
        previous = budget
    return versions


def _learned(
    out: Path, ctx, models: WorldModels, version: DatasetVersion, part, seed: int,
    say: Callable[[], None],
) -> pd.DataFrame:  # fmt: skip
    """REFERENCE retrained on ``version`` (its frames + ``part``) with ``seed`` and evaluated
    (``alkit.loop.learn``): the table saved as ``out`` (parquet, atomically); read back if
    it is there."""
    if not out.exists():
        say()
        learned = learn(ctx, models.learner(), version, part, seed=seed)
        storage.atomic_write_parquet(learned.evaluation.table, str(out))
    return pd.read_parquet(out)


def leverage_curve(
    config: ExperimentConfig | Mapping,
    budgets: Sequence[int],
    finetune_seeds: Sequence[int],
    out_dir: str | Path,
    *,
    ladder: Sequence[int] | None = None,
    retraining: RetrainConfig = SEED_RETRAINING,
    variant: str = "",
    world_seeds: Iterable[int] | None = None,
    classes: Sequence[str] | None = None,
    progress: bool = False,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """RANDOM-night's learning curve of REFERENCE (see the module docstring): tidy rows
    ``COLUMNS`` (``variant``, the ``retrain`` tag, ``world_seed``, ``budget`` frames added,
    ``finetune_seed``, ``class``, ``metric``, ``value``, ``n_gt`` and the hash of the
    ``version`` trained on) for ``classes`` (default: the classes of interest) on the
    experiment's test set, for each of ``world_seeds`` (default ``config.world_seeds``).
    ``ladder``: the budgets whose versions nest (``nested_versions``; default ``budgets``):
    a run of some budgets of a longer curve passes the curve's so that its versions are the
    curve's."""
    if not isinstance(config, ExperimentConfig):
        config = ExperimentConfig(**dict(config))
    budgets = _check_budgets(budgets)
    seeds = [int(f) for f in finetune_seeds]
    if not seeds:
        raise ConfigError("finetune_seeds must not be empty")
    tag = retrain_tag(retraining)
    rows = []
    for ws in config.world_seeds if world_seeds is None else world_seeds:
        c = config.world_config(ws)
        keep = list(classes or c.run.query.classes_of_interest)
        world_dir = Path(out_dir) / f"world_{ws}"
        models = world_models(config, ws, world_dir, progress, log)
        ctx = replace(models.ctx, retraining=retraining)
        versions = nested_versions(models, sorted({*budgets, *(ladder or ())}))
        own = set(models.initial.frame_ids)
        evals = world_dir / "leverage" / tag
        evals.mkdir(parents=True, exist_ok=True)
        for budget in budgets:
            version = versions[budget]
            ids = [f for f in version.frame_ids if f not in own]
            part = new_frames(ctx, version, ids) if ids else NoFrames()
            for f in seeds:
                what = (f"{variant or 'leverage'} [{tag}] world {ws}: budget {budget}, "
                        f"fine-tuning seed {f}")  # fmt: skip
                table = _learned(evals / f"b{budget}_ft{f}.parquet", ctx, models, version, part,
                                 1000 * ws + f, lambda what=what: log(what))  # fmt: skip
                rows.append(_rows(table, config.test_set, keep, variant, tag, ws, budget, f))
    return pd.concat(rows, ignore_index=True)[list(COLUMNS)]


def _rows(
    table: pd.DataFrame, test_set: str, classes: Sequence[str], variant: str, tag: str,
    world_seed: int, budget: int, finetune_seed: int,
) -> pd.DataFrame:  # fmt: skip
    table = table[(table.test_set == test_set) & table["class"].isin(list(classes))]
    return table.assign(variant=variant, retrain=tag, world_seed=world_seed, budget=budget,
                        finetune_seed=finetune_seed)[list(COLUMNS)]  # fmt: skip


def saved_curve(
    out_dir: str | Path, retraining: RetrainConfig, test_set: str,
    classes: Sequence[str] = ("person", "bicycle"), variant: str = "",
) -> pd.DataFrame:  # fmt: skip
    """The rows of every evaluation :func:`leverage_curve` saved in ``out_dir`` with
    ``retraining`` (every world, budget and seed found; nothing trains): a partial run's
    tables."""
    tag = retrain_tag(retraining)
    rows = []
    for world_dir in sorted(Path(out_dir).glob("world_*")):
        ws = int(world_dir.name.removeprefix("world_"))
        for path in sorted((world_dir / "leverage" / tag).glob("b*_ft*.parquet")):
            budget, seed = (int(x) for x in path.stem.removeprefix("b").split("_ft"))
            rows.append(_rows(pd.read_parquet(path), test_set, classes, variant, tag, ws,
                              budget, seed))  # fmt: skip
    if not rows:
        return pd.DataFrame(columns=list(COLUMNS))
    return pd.concat(rows, ignore_index=True).sort_values(
        ["world_seed", "budget", "finetune_seed", "class", "metric"], ignore_index=True
    )


def leverage_summary(rows: pd.DataFrame, metric: str = "AP50") -> pd.DataFrame:
    """Per variant, retraining, world seed (and ``"all"``: the worlds' means) , budget and
    class: ``mean`` ``metric`` over fine-tuning seeds, its ``sd`` over them, the ``gain`` over
    budget 0, the ``noise`` (the sd over seeds pooled over every budget of that world, or of
    every world for ``"all"``) and ``gain_over_noise``; ``leverage`` is whether the gain is at
    least 3x the noise. Each ``gain`` is paired: the mean over seeds of the seed's own
    difference to its budget-0 control."""
    x = rows[rows.metric == metric]
    keys = ["variant", "retrain", "world_seed", "class"]
    base = x[x.budget == 0].set_index([*keys, "finetune_seed"]).value.rename("base")
    x = x.join(base, on=[*keys, "finetune_seed"])
    x = x.assign(diff=x.value - x.base)
    per = x.groupby([*keys, "budget"]).agg(
        mean=("value", "mean"), sd=("value", "std"), gain=("diff", "mean"),
        seeds=("value", "size"),
    )  # fmt: skip
    per = per.reset_index()
    var = x.groupby([*keys, "budget"]).value.var(ddof=1).rename("var").reset_index()
    pooled = var.groupby(keys)["var"].mean().pow(0.5).rename("noise")
    per = per.join(pooled, on=keys)
    everyone = per.groupby(["variant", "retrain", "budget", "class"]).agg(
        mean=("mean", "mean"), sd=("sd", lambda s: float(np.sqrt(np.mean(np.square(s))))),
        gain=("gain", "mean"), seeds=("seeds", "sum"),
        noise=("noise", lambda s: float(np.sqrt(np.mean(np.square(s))))),
    ).reset_index().assign(world_seed="all")  # fmt: skip
    out = pd.concat([per.assign(world_seed=per.world_seed.astype(str)), everyone],
                    ignore_index=True)  # fmt: skip
    out = out.assign(gain_over_noise=out.gain / out.noise)
    out = out.assign(leverage=out.gain_over_noise >= 3.0)
    cols = ["variant", "retrain", "world_seed", "budget", "class", "seeds", "mean", "sd", "gain",
            "noise", "gain_over_noise", "leverage"]  # fmt: skip
    return out[cols].sort_values(["variant", "retrain", "world_seed", "class", "budget"],
                                 ignore_index=True)  # fmt: skip


def leverage_figure(rows: pd.DataFrame, metric: str = "AP50"):
    """``metric`` against frames added, one panel per class, one line per variant and
    retraining (the worlds' mean; error bars: the sd over fine-tuning seeds, pooled over
    worlds), the worlds' own means faint beside it."""
    summary = leverage_summary(rows, metric)
    classes = list(dict.fromkeys(summary["class"]))
    fig = Figure(figsize=(5.2 * len(classes), 4))
    axes = fig.subplots(1, len(classes), squeeze=False)
    for ax, cls in zip(axes[0], classes, strict=True):
        s = summary[summary["class"] == cls]
        for k, ((variant, tag), g) in enumerate(s.groupby(["variant", "retrain"], sort=False)):
            color = f"C{k}"
            for _, w in g[g.world_seed != "all"].groupby("world_seed"):
                ax.plot(w.budget, w["mean"], color=color, alpha=0.25, lw=1)
            a = g[g.world_seed == "all"]
            ax.errorbar(a.budget, a["mean"], yerr=a.sd, color=color, marker="o", capsize=3,
                        label=f"{variant} ({tag})")  # fmt: skip
        ax.set_xscale("symlog", linthresh=100)
        ax.set_xlabel("random night frames added")
        ax.set_ylabel(f"night {metric}")
        ax.set_title(cls)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


__all__ = [
    "ARM",
    "COLUMNS",
    "SEED_RETRAINING",
    "leverage_curve",
    "leverage_figure",
    "leverage_summary",
    "nested_versions",
    "retrain_tag",
    "saved_curve",
]
