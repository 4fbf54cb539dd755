"""Copy a finished experiment's tables into ``docs/experiment/`` and print the README's tables.

    .venv/bin/python docs/experiment/publish.py [RUN [DEST [FOLLOW_UPS]]]

RUN: default runs/experiment/out/40_experiment; DEST: default docs/experiment; FOLLOW_UPS:
the follow-ups' folder (``alkit efficiency``), default runs/efficiency/out/42_label_efficiency.

Copies the experiment's tidy CSVs (``results``, ``costs``, ``verdicts``, ``power``,
``diagnostics``, ``test_sets``; the follow-ups' ``efficiency``, ``efficiency_summary``,
``sensitivity``, ``score_diagnostics``, ``pick_layout`` where they exist) and its figures,
then prints Markdown: the verdicts (95% intervals, the margin each used, Holm's family,
Monte-Carlo flips), the power, AP@0.5 per arm, labelling costs, and the follow-ups' tables.
Nothing is computed here that the run did not write but means over replicates.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "experiment"
TABLES = ("results", "costs", "verdicts", "power", "diagnostics", "test_sets", "efficiency",
          "efficiency_summary", "sensitivity", "score_diagnostics", "pick_layout")  # fmt: skip
FIGURES = ("differences.png", "efficiency.png")
FOLLOW_UPS = "runs/efficiency/out/42_label_efficiency"


def source(run: Path, follow: Path, name: str) -> Path:
    """Where ``name`` is: the experiment's folder, else the follow-ups'."""
    return run / name if (run / name).exists() else follow / name


def md(table: pd.DataFrame) -> str:
    """A Markdown table of ``table`` (its index as the first columns)."""
    t = table.reset_index() if table.index.name or table.index.names[0] else table
    t.columns = [" ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in t.columns]
    lines = ["| " + " | ".join(t.columns) + " |", "|" + "---|" * len(t.columns)]
    lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in t.itertuples(index=False)]
    return "\n".join(lines)


def pct(x: float) -> str:
    return f"{x:+.3f}"


def verdict_rows(v: pd.DataFrame) -> list[str]:
    head = "| comparison | class | difference | 95% interval | margin | verdict | MC error |"
    out = [head, "|---|---|---|---|---|---|---|"]
    for r in v.to_dict("records"):
        flip = " (flips within MC error)" if r.get("mc_flip") else ""
        family = " (primary, Holm)" if r.get("primary") else ""
        out.append(f"| {r['comparison']}{family} | {r['class']} | {pct(r['diff'])} | "
                   f"[{pct(r['ci_low'])}, {pct(r['ci_high'])}] | {r['margin']:.3f} | "
                   f"**{r['verdict']}**{flip} | "
                   f"{r['ci_low_mc']:.4f} / {r['ci_high_mc']:.4f} |")  # fmt: skip
    return out


def main() -> None:
    run = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "runs/experiment/out/40_experiment"
    dest = Path(sys.argv[2]) if len(sys.argv) > 2 else DOCS
    follow = Path(sys.argv[3]) if len(sys.argv) > 3 else ROOT / FOLLOW_UPS
    for name in [f"{t}.csv" for t in TABLES] + list(FIGURES):
        if (found := source(run, follow, name)).exists():
            shutil.copyfile(found, dest / name)
    v = pd.read_csv(run / "verdicts.csv")
    ap = v[v.metric == "AP50"]
    print("\n".join(verdict_rows(ap)))
    power = pd.read_csv(run / "power.csv")
    print("\npower (AP50):")
    print(power[power.metric == "AP50"].round(4).set_index("comparison").pipe(md))
    results = pd.read_csv(run / "results.csv")
    night = results[(results.metric == "AP50") & results["class"].isin(["person", "bicycle"])]
    print("\nAP@0.5 per arm (mean over worlds, blocks, seeds; sd over worlds of world means):")
    world = night.groupby(["method", "class", "world_seed"]).value.mean()
    table = world.groupby(["method", "class"]).agg(["mean", "std"]).unstack("class")
    print(md(table.round(3)))
    costs = pd.read_csv(run / "costs.csv").groupby("method")[["frames", "boxes", "seconds"]]
    print("\ncosts:\n" + md(costs.mean().round(0)))
    for name in TABLES[6:]:
        if (found := source(run, follow, f"{name}.csv")).exists():
            t = pd.read_csv(found)
            if name in ("score_diagnostics", "pick_layout"):
                keys = ["class"] if name == "score_diagnostics" else ["method"]
                t = t.drop(columns=["world_seed", "pool_block"]).groupby(keys).mean()
            print(f"\n{name}:\n" + md(t.round(4)))


if __name__ == "__main__":
    main()
