"""What a labelled batch holds and cost: objects per class, driving sessions, seconds per frame.

The seed's selection analysis compares selections (active learning, manual curation, random)
by these numbers; pass one batch or ``{name: batch}`` to compare several side by side.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from alkit.data.labels import LabelledBatch

TIMES_OF_DAY = ("day", "dusk", "night")


def _named(batches: LabelledBatch | Mapping[str, LabelledBatch]) -> dict[str, LabelledBatch]:
    if isinstance(batches, LabelledBatch):
        return {"batch": batches}
    return dict(batches)


def _column(meta: pd.DataFrame, name: str) -> pd.Series:
    return meta[name].dropna() if name in meta.columns else pd.Series([], dtype=object)


def batch_summary(batches: LabelledBatch | Mapping[str, LabelledBatch]) -> pd.DataFrame:
    """One row per batch (index: its name; ``"batch"`` for a single one).

    Columns: ``frames``; ``objects``; one column per class with its object count;
    ``sessions`` (distinct ``session_id``, NaN when frames carry none); frames per time of
    day (``day``, ``dusk``, ``night``); ``hours`` (total labelling time),
    ``seconds_per_frame`` and ``seconds_per_object`` (means; NaN without objects).
    """
    rows = {}
    for name, batch in _named(batches).items():
        counts = np.zeros(len(batch.classes), dtype=np.int64)  # (C,)
        for f in batch.frames:
            counts += np.bincount(f.labels, minlength=len(batch.classes))
        meta = batch.meta_table()
        sessions = _column(meta, "session_id")
        times = _column(meta, "time_of_day").value_counts()
        objects = int(counts.sum())
        row = {"frames": len(batch), "objects": objects}
        row |= {c: int(n) for c, n in zip(batch.classes, counts, strict=True)}
        row["sessions"] = sessions.nunique() if len(sessions) else np.nan
        row |= {t: int(times.get(t, 0)) for t in TIMES_OF_DAY}
        row["hours"] = batch.total_seconds / 3600
        row["seconds_per_frame"] = batch.total_seconds / len(batch) if len(batch) else np.nan
        row["seconds_per_object"] = batch.total_seconds / objects if objects else np.nan
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def session_table(batch: LabelledBatch) -> pd.DataFrame:
    """Frames and objects per driving session: index ``session_id``, columns ``frames``,
    ``objects``, ``seconds``; empty when the frames carry no ``session_id``."""
    meta = batch.meta_table()
    if "session_id" not in meta.columns:
        return pd.DataFrame(columns=["frames", "objects", "seconds"])
    costs = batch.cost_table()
    table = pd.DataFrame(
        {
            "session_id": meta["session_id"].to_numpy(),
            "objects": costs["boxes"].to_numpy(),
            "seconds": costs["seconds"].to_numpy(),
        }
    )
    grouped = table.groupby("session_id")
    out = grouped.agg(frames=("objects", "size"), objects=("objects", "sum"))
    return out.assign(seconds=grouped["seconds"].sum()).sort_index()


def plot_batch_summary(
    batches: LabelledBatch | Mapping[str, LabelledBatch], figsize: tuple[float, float] = (13, 3.6)
) -> Figure:
    """A figure with three panels: objects per class, driving sessions covered, and the
    labelling time per frame (s); one colour per batch. Built without pyplot, so it works
    under any backend (``Agg`` in tests) and does not pop up windows."""
    named = _named(batches)
    summary = batch_summary(named)
    classes = list(next(iter(named.values())).classes) if named else []
    fig = Figure(figsize=figsize, layout="constrained")
    ax_obj, ax_ses, ax_cost = fig.subplots(1, 3)
    width = 0.8 / max(len(named), 1)
    x = np.arange(len(classes))  # (C,)
    for k, name in enumerate(named):
        ax_obj.bar(x + k * width, summary.loc[name, classes].astype(float), width, label=name)
    ax_obj.set_xticks(x + width * (len(named) - 1) / 2, classes, rotation=30, ha="right")
    ax_obj.set_ylabel("objects")
    ax_obj.set_title("Objects per class")
    sessions = summary["sessions"].fillna(0).astype(float)
    ax_ses.bar(range(len(named)), sessions, color=[f"C{k}" for k in range(len(named))])
    ax_ses.set_xticks(range(len(named)), list(named))
    ax_ses.set_ylabel("sessions")
    ax_ses.set_title("Driving sessions covered")
    seconds = [b.seconds for b in named.values()]
    if any(len(s) for s in seconds):
        ax_cost.hist(
            seconds, bins=20, label=list(named), color=[f"C{k}" for k in range(len(named))]
        )
    ax_cost.set_xlabel("seconds per frame")
    ax_cost.set_ylabel("frames")
    ax_cost.set_title("Labelling cost per frame")
    for ax in (ax_obj, ax_ses, ax_cost):
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if len(named) > 1:
        ax_obj.legend()
    return fig
