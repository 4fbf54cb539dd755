"""The README's first picture: AL's top frames of an A/B run beside their MI heatmaps.

.venv/bin/python docs/first_screen.py runs/demo/out/10_ab_test docs/first_screen.png
"""

from __future__ import annotations

import sys

from alkit.experiments.abfolder import open_ab_folder
from alkit_widgets import EnsembleMaps, top_frames_figure


def main(run_dir: str, out: str, n: int = 2) -> None:
    run = open_ab_folder(run_dir)
    picks = run.selections[run.selections.method == "AL"].sort_values("rank")
    classes = list(run.config.run.query.classes_of_interest)
    title = "AL's first picks from the night pool: the frame, then the ensemble's disagreement"
    maps = EnsembleMaps(run.world, run.ensemble)
    fig = top_frames_figure(maps, picks.frame_id.tolist(), classes, n=n, title=title)
    fig.savefig(out, dpi=130)
    print(out)


if __name__ == "__main__":
    main(*sys.argv[1:3])
