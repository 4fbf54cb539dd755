"""Label QA's table as a Label Studio task's flags, on a constructed table."""

from __future__ import annotations

import pandas as pd

from alkit.serve.label_qa import flag_text, task_flags


def table(rows):
    cols = ["frame_id", "kind", "box", "category", "x", "y", "w", "h", "score", "flagged"]
    out = pd.DataFrame(rows, columns=cols)
    out["image_flagged"] = False
    return out


def test_flags_per_kind_and_the_worst_boxes_first():
    t = table(
        [
            (5, "overlooked", -1, "person", 10, 20, 4, 9, 0.02, True),
            (5, "swap", 0, "bicycle", 30, 40, 8, 6, 0.30, True),
            (5, "badloc", 0, "bicycle", 30, 40, 8, 6, 0.80, False),
            (5, "swap", 1, "car", 50, 60, 20, 10, 0.10, True),
        ]
    )
    flags = task_flags(t, "abc", max_boxes=2)
    assert flags["flags"] == {"overlooked": 1, "swap": 2, "badloc": 0}
    assert not flags["frame_flagged"]
    assert [(b["kind"], b["category"], b["score"]) for b in flags["boxes"]] == [
        ("overlooked", "person", 0.02),
        ("swap", "car", 0.1),
    ]
    assert flags["boxes"][0]["box"] == [10, 20, 4, 9]
    assert flag_text(flags) == "3 flags: overlooked person 0.02; swap car 0.10"


def test_a_clean_frame_reads_ok_and_a_flagged_frame_says_so():
    t = table([(1, "badloc", 0, "car", 0, 0, 5, 5, 0.9, False)])
    assert flag_text(task_flags(t, "v")) == "ok"
    t["image_flagged"] = True
    flags = task_flags(t, "v")
    assert flags["frame_flagged"] and flag_text(flags) == "0 flags (frame flagged)"
