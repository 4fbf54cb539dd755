"""REFERENCE's errors per frame, and ORACLE picking the frames with the most of them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from alkit.data.classes import CLASSES
from alkit.errors import ConfigError, DataError
from alkit.evaluate.errors import box_iou, frame_errors, match_errors
from alkit.query.methods import Candidates, SelectionSettings, select_frames

PERSON, BICYCLE = CLASSES.index("person"), CLASSES.index("bicycle")


def test_iou_against_hand_computed_values():
    a = np.array([[0.0, 0.0, 10.0, 10.0]])
    b = np.array([[5.0, 0.0, 10.0, 10.0], [20.0, 20.0, 5.0, 5.0], [0.0, 0.0, 10.0, 10.0]])
    assert box_iou(a, b)[0].tolist() == pytest.approx([50 / 150, 0.0, 1.0])


def test_matching_counts_missed_and_false_as_coco_greedy_does():
    gt = np.array([[0.0, 0.0, 10.0, 10.0], [30.0, 0.0, 10.0, 10.0], [60.0, 0.0, 10.0, 10.0]])
    dets = np.array(
        [
            [0.0, 0.0, 10.0, 10.0],  # 0.9: matches gt 0
            [1.0, 0.0, 10.0, 10.0],  # 0.8: gt 0 taken, IoU with the others 0: false
            [31.0, 0.0, 10.0, 10.0],  # 0.7: IoU 81/119 = 0.68 with gt 1: match
            [65.0, 0.0, 10.0, 10.0],  # 0.6: IoU 50/150 with gt 2: under 0.5, false
            [60.0, 0.0, 10.0, 10.0],  # 0.1: would match gt 2, but under the score threshold
        ]
    )
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.1])
    assert match_errors(dets, scores, gt) == (1, 2)  # gt 2 missed; dets 1 and 3 false
    assert match_errors(dets, scores, gt, score_threshold=0.05) == (0, 2)
    assert match_errors(np.zeros((0, 4)), np.zeros(0), gt) == (3, 0)
    assert match_errors(dets[:1], scores[:1], np.zeros((0, 4))) == (0, 1)


def _box(x: float) -> list[float]:
    return [x, 10.0, 8.0, 16.0]


def test_oracle_picks_the_frames_with_the_most_reference_errors():
    # six night frames; REFERENCE's errors (missed + false) per frame, by construction:
    #   person:  frame 0: 3 missed; 1: 1 false; 2: 0; 3: 2 missed + 2 false; 4: 0; 5: 1 missed
    #   bicycle: frame 0: 0; 1: 2 missed; 2: 5 false; 3: 0; 4: 1 missed; 5: 0
    truth, dets = {}, {}

    def frame(fid, p_found, p_missed, p_false, b_found, b_missed, b_false):
        boxes, labels, d_boxes, d_labels = [], [], [], []
        x = 0.0
        for label, found, missed, false in ((PERSON, p_found, p_missed, p_false),
                                            (BICYCLE, b_found, b_missed, b_false)):  # fmt: skip
            for _ in range(found):  # an object and a detection on it
                boxes.append(_box(x)), labels.append(label)
                d_boxes.append(_box(x)), d_labels.append(label)
                x += 20
            for _ in range(missed):  # an object nobody detects
                boxes.append(_box(x)), labels.append(label)
                x += 20
            for _ in range(false):  # a detection on nothing
                d_boxes.append(_box(x)), d_labels.append(label)
                x += 20
        truth[fid] = (np.array(boxes).reshape(-1, 4), np.array(labels, np.int64))
        dets[fid] = (torch.tensor(d_boxes).reshape(-1, 4), torch.full((len(d_labels),), 0.9),
                     torch.tensor(d_labels, dtype=torch.int64))  # fmt: skip

    frame(0, 1, 3, 0, 1, 0, 0)
    frame(1, 2, 0, 1, 0, 2, 0)
    frame(2, 4, 0, 0, 1, 0, 5)
    frame(3, 0, 2, 2, 0, 0, 0)
    frame(4, 1, 0, 0, 2, 1, 0)
    frame(5, 0, 1, 0, 0, 0, 0)
    errors = frame_errors(dets, truth, ["person", "bicycle"])
    assert errors.person__missed.tolist() == [3, 0, 0, 2, 0, 1]
    assert errors.person__false.tolist() == [0, 1, 0, 2, 0, 0]
    assert errors.bicycle__missed.tolist() == [0, 2, 0, 0, 1, 0]
    assert errors.bicycle__false.tolist() == [0, 0, 5, 0, 0, 0]
    meta = pd.DataFrame({"frame_id": range(6), "session_id": [0, 0, 1, 1, 2, 2]})
    candidates = Candidates(meta, meta, errors=errors.merge(meta, on="frame_id"))
    settings = SelectionSettings(budget=4, classes_of_interest=("person", "bicycle"))
    picks = select_frames(["ORACLE"], candidates, settings)["ORACLE"]
    # person's most: 3 (4 errors); bicycle's: 2 (5); person's next: 0 (3); bicycle's: 1 (2)
    assert picks.frame_id.tolist() == [3, 2, 0, 1]
    assert picks.score.tolist() == [4.0, 5.0, 3.0, 2.0]
    assert picks.picked_for.tolist() == ["person", "bicycle", "person", "bicycle"]
    assert "session_id" in picks
    with pytest.raises(ConfigError, match="REFERENCE's errors"):
        select_frames(["ORACLE"], Candidates(meta, meta), settings)
    with pytest.raises(ConfigError, match=r"\['bicycle__missed', 'bicycle__false'\]"):
        select_frames(["ORACLE"], Candidates(meta, meta, errors=errors.iloc[:, :3]), settings)


def test_bad_input_is_named():
    truth = {1: (np.zeros((0, 4)), np.zeros(0, np.int64))}
    with pytest.raises(DataError, match=r"frames \[7\]"):
        frame_errors({7: (np.zeros((0, 4)), np.zeros(0), np.zeros(0))}, truth, ["person"])
    with pytest.raises(ConfigError, match="unicycle"):
        frame_errors({}, truth, ["unicycle"])


def test_reference_errors_agree_with_predicted_detections():
    from alkit.data.datasets import VirtualFrames
    from alkit.detector.network import DetectorConfig, UNetDetector
    from alkit.evaluate.errors import reference_errors
    from alkit.evaluate.predict import predict_detections
    from alkit.sim import World, experiment_world

    world = World(experiment_world("quick", seed=0, initial=1, pool=1, test=1))
    ids = list(world.segment_frame_ids("pool"))[:6]
    torch.manual_seed(0)
    model = UNetDetector(DetectorConfig(width=4, depth=2, stride=4, head_width=8)).eval()
    frames = VirtualFrames(world, ids)
    got = reference_errors(model, frames, ["person", "bicycle"], batch_size=4)
    found = predict_detections(model, frames, threshold=0.3)
    truth = {i: (world.frame(i).boxes, world.frame(i).labels) for i in ids}
    want = frame_errors({i: tuple(found[i]) for i in ids}, truth, ["person", "bicycle"])
    pd.testing.assert_frame_equal(got, want)
    assert got.frame_id.tolist() == ids


def test_reference_errors_keep_no_view_of_a_batch(monkeypatch):
    # with views of the batches' tensors kept, peak memory grew by about 0.15 MB a frame,
    # gigabytes over the experiment's 25,200 scored frames
    import alkit.evaluate.errors as errors
    from alkit.data.datasets import VirtualFrames
    from alkit.detector.network import DetectorConfig, UNetDetector
    from alkit.sim import World, experiment_world

    kept = {}

    def capture(detections, truth, *args, **kwargs):
        kept.update(detections=detections, truth=truth)
        return frame_errors(detections, truth, *args, **kwargs)

    monkeypatch.setattr(errors, "frame_errors", capture)
    world = World(experiment_world("quick", seed=0, initial=1, pool=1, test=1))
    ids = list(world.segment_frame_ids("pool"))[:5]
    torch.manual_seed(0)
    model = UNetDetector(DetectorConfig(width=4, depth=2, stride=4, head_width=8)).eval()
    errors.reference_errors(model, VirtualFrames(world, ids), ["person"], batch_size=4)
    arrays = [a for d in (kept["detections"], kept["truth"]) for t in d.values() for a in t]
    assert len(arrays) == 5 * 5 and all(a.flags.owndata for a in arrays)
