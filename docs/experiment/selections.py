"""What each arm's selection holds, read from a finished experiment's dataset versions.

    .venv/bin/python docs/experiment/selections.py [RUN [DEST]]

RUN: default runs/experiment/out/40_experiment; DEST: default docs/experiment/selections.csv.

Every arm's selection was labelled and APPENDed to the initial set as a dataset version
(``world_<s>/versions``); the version's ``info.params`` names the arm and pool block. Per arm,
world and block this writes the added frames, their boxes (all classes and per class of
interest), the labelling seconds the run charged, and the picks' layout
(``alkit.experiments.diagnostics.pick_layout``: drives, neighbouring pairs at most 2 frames
apart), then prints the mean over worlds as Markdown.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from alkit.data import storage
from alkit.data.versions import list_versions, load_version
from alkit.experiments.diagnostics import pick_layout

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ("person", "bicycle")


def world_selections(world: Path) -> pd.DataFrame:
    """One row per APPENDed selection in ``world``'s version store."""
    root = str(world / "versions")
    rows, picks = [], []
    for h in list_versions(root):
        version = load_version(root, h)
        info = version.info
        params = info.get("params") or {}
        if "method" not in params or "prefix" in params:
            continue  # the initial set, or a follow-up's prefix of a selection
        parent = load_version(root, version.parent)
        added = version.frames[~version.frames.frame_id.isin(parent.frames.frame_id)]
        boxes = version.boxes[version.boxes.frame_id.isin(added.frame_id)]
        method = params["method"]
        per_class = boxes.category.value_counts()
        rows.append({"method": method, "pool_block": params.get("pool_block", 0),
                     "frames": len(added), "boxes": len(boxes),
                     **{c: int(per_class.get(c, 0)) for c in CLASSES},
                     "seconds": info["labelling"]["seconds"]})  # fmt: skip
        picks.append(added.assign(method=method, pool_block=rows[-1]["pool_block"]))
    layout = pd.concat([pick_layout(part).assign(pool_block=b) for b, part in
                        pd.concat(picks, ignore_index=True).groupby("pool_block")])  # fmt: skip
    table = pd.DataFrame(rows).merge(layout.drop(columns="frames"), on=["method", "pool_block"])
    return table.sort_values(["pool_block", "method"], ignore_index=True)


def main() -> None:
    run = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "runs/experiment/out/40_experiment"
    dest = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs/experiment/selections.csv"
    worlds = sorted((int(p.name.split("_")[1]), p) for p in run.glob("world_*"))
    table = pd.concat([world_selections(w).assign(world_seed=s) for s, w in worlds],
                      ignore_index=True)  # fmt: skip
    storage.atomic_write_text(str(dest), table.to_csv(index=False))
    mean = (
        table.groupby("method").mean(numeric_only=True).drop(columns=["pool_block", "world_seed"])
    )
    mean["hours"] = mean.seconds / 3600
    cols = ["boxes", *CLASSES, "hours", "sessions", "neighbour_pairs"]
    print(f"{dest}: {len(table)} selections of {len(worlds)} worlds; the mean over worlds:")
    print("| arm | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for method, r in mean.iterrows():
        cells = [f"{r[c]:,.1f}" if c == "hours" else f"{r[c]:,.0f}" for c in cols]
        print(f"| {method} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
