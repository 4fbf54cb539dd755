"""The text reports the command line prints at the end of a run, read from its tables.

``ab_report`` (``python -m alkit demo``: the seed's A/B test), ``experiment_report``
(``python -m alkit experiment``), ``curves_report`` (``python -m alkit curves``) and
``efficiency_report`` (``python -m alkit efficiency``) each take
the run's output folder and return the text; nothing is recomputed but the A/B verdicts (from
``results.csv``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

#: the A/B test's test sets, as the report explains them
AB_TEST_SETS = (
    ("night", "the union of the AL and MANUAL held-out 10% (the seed's night test)"),
    ("night_heldout", "night frames of the test drives, never selectable"),
    ("global", "the mostly-day test drives"),
)


@contextmanager
def _wide() -> Iterator[None]:
    with pd.option_context("display.width", 200, "display.max_columns", None):
        yield


def ab_report(out_dir: str | Path) -> str:
    """The seed's tables of an A/B run: differences to REFERENCE per test set, the AL / MANUAL
    gain ratios, what each selection holds, and the paired differences with their verdicts."""
    from alkit.experiments.abtest import ab_verdicts
    from alkit.experiments.tables import NEAR_ZERO, seed_table

    out = Path(out_dir)
    summary = pd.read_csv(out / "summary.csv")
    gains = pd.read_csv(out / "gains.csv")
    analysis = pd.read_csv(out / "selection_analysis.csv", index_col=0)
    results = pd.read_csv(out / "results.csv")
    lines: list[str] = []
    with _wide():
        for test_set, what in AB_TEST_SETS:
            lines += [
                f"\nDifference to REFERENCE, {test_set} test set ({what}): absolute, with the",
                "relative improvement (mean ± spread over the splits) beside it where REFERENCE",
                f"is at least {NEAR_ZERO}:",
                seed_table(summary, test_set, ["wMAP", "mAP_large", "mAP_medium"]).to_string(),
            ]
        wmap = gains[(gains.metric == "wMAP") & gains.test_set.isin(["night", "night_heldout"])]
        lines += [f"\nAL gain / MANUAL gain (wMAP; NaN where REFERENCE is under {NEAR_ZERO}):",
                  wmap.to_string(index=False),
                  "\nWhat each selection holds (objects per class, sessions, cost):",
                  analysis.to_string()]  # fmt: skip
        verdicts = ab_verdicts(results, sorted(set(summary["class"])))
        lines += [
            "\nPaired differences (absolute AP, night_heldout) with 95% confidence intervals",
            f"over the {results.split.nunique()} splits; verdicts by the rules fixed in advance "
            "(win / loss /",
            "equivalent within +-0.02 AP / inconclusive):",
            "(none: night_heldout holds no object of the classes of interest)"
            if verdicts.empty
            else verdicts.round(4).to_string(index=False),
            "These rest on one world, one ensemble and one test set: the demo is not powered to",
            "tell the arms apart. The powered one is `python -m alkit experiment` (README).",
        ]
    return "\n".join(lines)


def experiment_report(out_dir: str | Path) -> str:
    """The replicated experiment's verdicts, power, test set and labelling costs."""
    out = Path(out_dir)
    verdicts = pd.read_csv(out / "verdicts.csv")
    costs = pd.read_csv(out / "costs.csv")
    power = pd.read_csv(out / "power.csv")
    test_sets = pd.read_csv(out / "test_sets.csv")
    with _wide():
        return "\n".join([
            "\nPaired differences (absolute AP) with 95% confidence intervals; verdicts by the",
            "rules fixed in advance (win / loss / equivalent within the margin / inconclusive):",
            verdicts.round(4).to_string(index=False),
            "\nThe smallest true difference detectable with 80% power (mdd_80; se: the",
            "bootstrap standard error of the difference):",
            power.round(4).to_string(index=False),
            "\nThe test set: frames, drives, objects and distinct objects (tracks) per class:",
            test_sets.to_string(index=False),
            "\nLabelling cost of each selection (mean over worlds and pool blocks):",
            costs.groupby("method")[["frames", "boxes", "seconds"]].mean().to_string(),
        ])  # fmt: skip


def curves_report(out_dir: str | Path) -> str:
    """Learning curves: AP@0.5 and its gain per round, each arm minus the control round by
    round, and the label share each arm needs."""
    out = Path(out_dir)
    curves = pd.read_csv(out / "curves.csv")
    with _wide():
        return "\n".join([
            "\nAP@0.5 after each round (mean over the replicates) and its gain over REFERENCE",
            "with 95% confidence intervals:",
            curves[curves.metric == "AP50"].round(4).to_string(index=False),
            "\nEach arm minus the control, round by round (verdicts fixed in advance):",
            pd.read_csv(out / "rounds_verdicts.csv").round(4).to_string(index=False),
            "\nShare of the control's labels each arm needs to reach its final AP@0.5 (NaN: not",
            "within the rounds):",
            pd.read_csv(out / "label_share.csv").round(3).to_string(index=False),
        ])  # fmt: skip


def efficiency_report(out_dir: str | Path) -> str:
    """Label efficiency, the new-frame share's sensitivity and the score's diagnostics."""
    out = Path(out_dir)
    read = {n: pd.read_csv(out / f"{n}.csv") for n in ("efficiency", "efficiency_summary",
            "sensitivity", "score_diagnostics", "pick_layout")}  # fmt: skip
    per = ["world_seed", "pool_block"]
    with _wide():
        return "\n".join([
            "\nAP@0.5 gain over REFERENCE after each arm's first n frames, with 95% intervals:",
            read["efficiency"].round(4).to_string(index=False),
            "\nFrames each arm needs to reach RANDOM-night's gain at the full budget, and the",
            "labelling seconds per AP point gained (inf: no gain):",
            read["efficiency_summary"].round(3).to_string(index=False),
            "\nAL vs RANDOM-night under both retrainings:",
            read["sensitivity"].round(4).to_string(index=False),
            "\nWhat the score looks at (mean over worlds and blocks):",
            read["score_diagnostics"].drop(columns=per).groupby("class").mean().round(3)
            .to_string(),
            "\nWhere each arm's picks come from (mean over worlds and blocks):",
            read["pick_layout"].drop(columns=per).groupby("method").mean().round(1).to_string(),
        ])  # fmt: skip


__all__ = ["ab_report", "curves_report", "efficiency_report", "experiment_report"]
