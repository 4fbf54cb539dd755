"""Label QA (``alkit.annotate.qa``): known answers on predictions built for them (errors
injected into world-labelled frames: ``test_qa_injected.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alkit.annotate.qa import LabelledBoxes, QAConfig, box_scores, flagged_boxes
from alkit.detector.network import Detections

CLASSES = ("car", "person")


def dets(rows) -> Detections:
    """Detections from ``[(x, y, w, h, score, label)]``."""
    a = np.asarray(rows, np.float32).reshape(-1, 6)
    return Detections(
        torch.from_numpy(a[:, :4]),
        torch.from_numpy(a[:, 4]),
        torch.from_numpy(a[:, 5].astype(np.int64)),
    )


CAR, PERSON, FAR = [10, 10, 40, 20], [80, 30, 10, 30], [150, 60, 20, 20]
PREDICTED = dets([[*CAR, 0.9, 0], [*PERSON, 0.9, 1], [*FAR, 0.9, 0]])


def test_each_kind_of_error_is_flagged_on_its_box():
    frames = [
        LabelledBoxes(1, np.array([CAR, PERSON, FAR]), np.array([0, 1, 0])),  # right
        LabelledBoxes(2, np.array([CAR, PERSON]), np.array([0, 1])),  # FAR missed
        LabelledBoxes(3, np.array([CAR, PERSON, FAR]), np.array([1, 1, 0])),  # car -> person
        LabelledBoxes(4, np.array([[30, 20, 40, 20], PERSON, FAR]), np.array([0, 1, 0])),  # shifted
    ]
    table = box_scores(frames, dict.fromkeys([1, 2, 3, 4], PREDICTED), CLASSES, QAConfig())
    flags = flagged_boxes(table)
    got = sorted((int(r.frame_id), r.kind, int(r.box)) for r in flags.itertuples())
    assert got == [(2, "overlooked", -1), (3, "swap", 0), (4, "badloc", 0)]
    missed = flags[flags.kind == "overlooked"].iloc[0]
    assert [missed.x, missed.y, missed.w, missed.h] == pytest.approx(FAR)
    assert missed.category == "car"
    swap = flags[flags.kind == "swap"].iloc[0]
    assert (swap.category, swap.predicted_class) == ("person", "car")
    clean = table[table.frame_id == 1]
    assert not clean.flagged.any() and clean.image_score.iloc[0] > 0.9
    per_frame = table.drop_duplicates("frame_id").set_index("frame_id").image_score
    assert per_frame[1] > max(per_frame[2], per_frame[3], per_frame[4])


def test_unsure_predictions_flag_nothing():
    unsure = dets([[*CAR, 0.2, 1], [*FAR, 0.2, 0]])
    frames = [LabelledBoxes(1, np.array([CAR]), np.array([0]))]
    table = box_scores(frames, {1: unsure}, CLASSES, QAConfig())
    assert not table.flagged.any()
