"""The summary of labelled batches: objects per class, sessions, labelling cost; a figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from alkit.annotate.oracle import OracleLabeller  # noqa: E402
from alkit.annotate.summary import batch_summary, plot_batch_summary, session_table  # noqa: E402
from alkit.data.classes import CLASSES  # noqa: E402
from alkit.data.labels import CostModel  # noqa: E402
from tests.fakeworld import FakeWorld  # noqa: E402

WORLD = FakeWorld(min_boxes=1)  # session = frame_id // 10, time of day cycles with frame_id


def test_summary_counts_objects_sessions_and_cost():
    batch = OracleLabeller(WORLD, CostModel(10.0, 2.0)).label([1, 2, 3, 15, 27])
    row = batch_summary(batch).loc["batch"]
    labels = np.concatenate([WORLD.frame(i).labels for i in batch.frame_ids])
    assert row["frames"] == 5 and row["objects"] == len(labels)
    assert [row[c] for c in CLASSES] == np.bincount(labels, minlength=len(CLASSES)).tolist()
    assert row["sessions"] == 3  # sessions 0, 1, 2
    assert (row["day"], row["dusk"], row["night"]) == (3, 1, 1)  # frame_id % 3: 0 = day
    assert row["hours"] == pytest.approx((50 + 2 * len(labels)) / 3600)
    assert row["seconds_per_frame"] == pytest.approx((50 + 2 * len(labels)) / 5)
    sessions = session_table(batch)
    assert sessions.index.tolist() == [0, 1, 2] and sessions.frames.tolist() == [3, 1, 1]
    assert sessions.seconds.sum() == pytest.approx(batch.total_seconds)


def test_summary_compares_batches_and_plots():
    batches = {
        "al": OracleLabeller(WORLD).label([3, 13, 23]),
        "manual": OracleLabeller(WORLD).label([30, 31, 32, 33]),
    }
    table = batch_summary(batches)
    assert table.index.tolist() == ["al", "manual"]
    assert table.sessions.tolist() == [3, 1] and table.frames.tolist() == [3, 4]
    fig = plot_batch_summary(batches)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes] == [
        "Objects per class",
        "Driving sessions covered",
        "Labelling cost per frame",
    ]
    fig.canvas.draw()  # renders with the Agg backend
