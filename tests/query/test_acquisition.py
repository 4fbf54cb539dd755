"""Mutual information and friends: bounds, agreement, exact values, reductions, bad input."""

import math

import pytest
import torch

from alkit.errors import DataError
from alkit.query.acquisition import (
    bernoulli_entropy,
    check_probabilities,
    entropy_of_mean,
    frame_scores,
    mutual_information,
    variance,
)


def reference_mi(probs: torch.Tensor) -> torch.Tensor:
    """The formula written out directly in float64."""
    p = probs.double()

    def h(q):
        q = q.clamp(1e-300, 1 - 1e-16)
        return -(q * q.log() + (1 - q) * (1 - q).log())

    return h(p.mean(0)) - h(p).mean(0)


def test_zero_when_members_agree():
    p = torch.rand(1, 2, 3, 4, 5).expand(6, -1, -1, -1, -1)
    assert torch.allclose(mutual_information(p), torch.zeros(2, 3, 4, 5), atol=1e-6)


def test_largest_when_members_split_zero_one():
    p = torch.zeros(4, 1, 1, 2, 2)
    p[:2] = 1.0
    mi = mutual_information(p)
    assert torch.allclose(mi, torch.full_like(mi, math.log(2)), atol=1e-6)
    random = mutual_information(torch.rand(4, 8, 5, 6, 6))
    assert random.max() < mi.max()


def test_matches_float64_formula_and_stays_in_bounds():
    torch.manual_seed(0)
    p = torch.rand(8, 3, 5, 6, 7) ** 3  # many values near 0
    p[0, 0, 0, 0, :3] = torch.tensor([0.0, 1.0, 0.5])
    mi = mutual_information(p)
    assert mi.shape == (3, 5, 6, 7)
    assert torch.isfinite(mi).all()
    assert (mi >= 0).all() and (mi <= math.log(2) + 1e-7).all()
    assert torch.allclose(mi.double(), reference_mi(p), atol=2e-6)


def test_no_nan_at_exact_zero_and_one():
    p = torch.tensor([0.0, 1.0]).view(2, 1, 1, 1, 1).repeat(1, 1, 1, 3, 3)
    assert torch.isfinite(mutual_information(p)).all()
    assert bernoulli_entropy(torch.tensor([0.0, 1.0])).tolist() == [0.0, 0.0]
    assert torch.isfinite(entropy_of_mean(p)).all()


def test_variance_across_members():
    p = torch.tensor([0.2, 0.6]).view(2, 1, 1, 1, 1)
    assert variance(p).item() == pytest.approx(0.04)


def test_mean_and_max_reductions_differ_as_documented():
    mi = torch.zeros(2, 1, 4, 4)
    mi[0, 0, 0, 0] = 0.6  # one very uncertain cell
    mi[1, 0] = 0.1  # uncertain everywhere
    mean, mx = frame_scores(mi, "mean"), frame_scores(mi, "max")
    assert mean.shape == (2, 1) and mx.shape == (2, 1)
    assert mean[1, 0] > mean[0, 0]  # mean prefers many uncertain cells
    assert mx[0, 0] > mx[1, 0]  # max prefers the single most uncertain one
    with pytest.raises(ValueError, match="reduction"):
        frame_scores(mi, "median")


def test_bad_probabilities_name_the_frame():
    p = torch.rand(3, 4, 2, 5, 5)
    p[1, 2, 0, 1, 1] = float("nan")
    with pytest.raises(DataError, match="frame 1002"):
        check_probabilities(p, frame_ids=[1000, 1001, 1002, 1003])
    p = torch.rand(3, 4, 2, 5, 5)
    p[0, 3, 1, 0, 0] = float("inf")
    with pytest.raises(DataError, match="batch index 3"):
        check_probabilities(p)
    check_probabilities(torch.rand(2, 2, 1, 3, 3))  # fine input passes


def test_detection_entropy_counts_uncertain_peaks():
    from alkit.query.acquisition import detection_entropy

    p = torch.zeros(2, 2, 8, 8)
    p[0, 0, 2, 2] = 0.5  # one maximally uncertain detection of class 0
    p[1, 1, 4, 4] = 0.99  # one confident detection of class 1
    p[1, 1, 4, 5] = 0.6  # a neighbour that is not a peak
    s = detection_entropy(p)
    assert s.shape == (2, 2)
    assert s[0, 0].item() == pytest.approx(math.log(2), rel=1e-5)
    assert s[1, 1].item() == pytest.approx(bernoulli_entropy(torch.tensor(0.99)).item(), rel=1e-5)
    assert s[0, 1] == 0 and s[1, 0] == 0


def test_predicted_count_counts_confident_peaks():
    from alkit.query.acquisition import predicted_count

    maps = torch.zeros(1, 2, 6, 6)  # [B, C, H, W]
    maps[0, 0, 1, 1], maps[0, 0, 4, 4], maps[0, 0, 1, 4] = 0.9, 0.5, 0.2  # 2 over 0.3
    maps[0, 0, 1, 2] = 0.8  # next to the 0.9 peak: not a peak itself
    maps[0, 1, 3, 3] = 0.31
    assert predicted_count(maps).tolist() == [[2.0, 1.0]]
    assert predicted_count(maps, threshold=0.95).tolist() == [[0.0, 0.0]]


def test_peaks_reduction_scores_objects_not_background_and_leaves_small_ones_out():
    from alkit.query.acquisition import MIN_LEARNABLE_HEIGHT, detection_peaks

    # frame 0: the background (0.003 nats in every one of 48 x 80 cells, no object);
    # frame 1: one uncertain object (0.5 nats at its centre, 0.2 beside it) and a tiny one
    # (0.4 nats, predicted 2 px tall); frame 2: the same objects on a 1-cell offset peak
    mi = torch.full((3, 1, 48, 80), 0.003, dtype=torch.float64)
    mi[1:] = 0.0
    mi[1, 0, 10, 10], mi[1, 0, 10, 11] = 0.5, 0.2
    mi[1, 0, 30, 40] = 0.4
    mi[2] = mi[1]
    mean_p = torch.zeros(3, 1, 48, 80, dtype=torch.float64)
    mean_p[0] = 0.01  # a flat map: every cell ties with its 3x3 max, but is under threshold
    mean_p[1, 0, 10, 10], mean_p[1, 0, 30, 40] = 0.3, 0.2
    mean_p[2, 0, 10, 11], mean_p[2, 0, 30, 40] = 0.3, 0.2  # peak a cell right of the MI
    heights = torch.full((3, 48, 80), 12.0, dtype=torch.float64)
    heights[:, 30, 40] = 2.0  # under MIN_LEARNABLE_HEIGHT
    assert MIN_LEARNABLE_HEIGHT == 4.0
    peaks = detection_peaks(mean_p, heights)
    assert peaks.sum(dim=(1, 2, 3)).tolist() == [0, 1, 1]
    mean = frame_scores(mi, "mean")[:, 0]
    local = frame_scores(mi, "peaks", peaks=peaks)[:, 0]
    assert mean[0] > mean[1]  # the seed's mean ranks background first
    # the object's 3x3 maximum, the small one left out; 0 for the background frame
    assert local.tolist() == pytest.approx([0.0, 0.5, 0.5])
    without_size = frame_scores(mi, "peaks", peaks=detection_peaks(mean_p))[:, 0]
    assert without_size.tolist() == pytest.approx([0.0, 0.9, 0.9])
    with pytest.raises(ValueError, match="needs peaks"):
        frame_scores(mi, "peaks")
