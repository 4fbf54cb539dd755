"""What an ensemble's training recorded, for people: one row per member, the loss curves."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from alkit.data import storage


def member_table(ensemble_path: str | Path) -> pd.DataFrame:
    """One row per member of an ``ensemble.json``: seed, checkpoint hash, steps, seconds and
    the last logged losses."""
    manifest = storage.read_json(str(ensemble_path))
    rows = []
    for m in manifest["members"]:
        metrics = m.get("metrics") or {}
        rows.append(
            {
                "member": m["index"],
                "seed": m["seed"],
                "sha256": m["sha256"][:12],
                "steps": int(metrics.get("global_step", 0)),
                "seconds": round(metrics.get("train_seconds", float("nan")), 1),
                **{k: v for k, v in metrics.items() if k.startswith("train/")},
            }
        )
    return pd.DataFrame(rows).set_index("member")


def training_losses(ensemble_path: str | Path) -> pd.DataFrame:
    """Logged training losses of every member (``<ensemble dir>/logs/member_XX/metrics.csv``):
    ``member | step | loss``; empty when nothing was logged yet."""
    parts = []
    for path in sorted((Path(ensemble_path).parent / "logs").glob("member_*/metrics.csv")):
        table = pd.read_csv(path)
        if "train/loss" in table:
            rows = table.dropna(subset=["train/loss"])
            member = int(path.parent.name.removeprefix("member_"))
            parts.append(
                pd.DataFrame({"member": member, "step": rows.step, "loss": rows["train/loss"]})
            )
    if not parts:
        return pd.DataFrame({"member": [], "step": [], "loss": []})
    return pd.concat(parts, ignore_index=True)


def loss_figure(losses: pd.DataFrame) -> Figure:
    """Training loss against step, one line per member."""
    fig = Figure(figsize=(6.0, 3.0))
    ax = fig.subplots()
    for member, rows in losses.groupby("member"):
        ax.plot(rows.step, rows.loss, label=f"member {member}")
    if losses.empty:
        ax.text(0.5, 0.5, "no losses logged (too few steps)", ha="center", transform=ax.transAxes)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    if len(losses):
        ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


__all__ = ["loss_figure", "member_table", "training_losses"]
